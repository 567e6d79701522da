"""The Bayes limit of pinwheel clustering: the true density's own rule on each test draw.

The pinwheel of ``vmonf_jax.data.pinwheel`` maps f ~ N((1, 0), diag(radial_std,
tangential_std)^2) to x = R(-theta) f with theta = base_k + rate * exp(f_0). Inverting it
per wing (f = R(theta) x, theta a root of f_0 = [R(theta(f_0)) x]_0, found on a grid and
refined by bisection) and dividing by |det dx/df| = |1 + rate * exp(f_0) * f_1| gives the
exact density of each wing. argmax_k p_k(x) is the Bayes rule: no model clusters the draw
better on average, so its ARI is the ceiling of issue 13's pinwheel target.

Usage: python studies/pinwheel_bayes.py [--seeds 5]
Prints one JSON line per seed (the test draw of ``train_test(pinwheel, seed)``, as ``make
pinwheel``): Bayes ARI and accuracy, the true density's mean test log-likelihood.
"""

import argparse
import json

import numpy as np
from scipy.special import logsumexp

from vmonf_jax.data import pinwheel, train_test
from vmonf_jax.metrics import clustering_scores

WING = dict(n_per_wing=512, n_wings=5, radial_std=0.3, tangential_std=0.05, rate=0.25)
GRID = np.linspace(1.0 - 8 * 0.3, 1.0 + 8 * 0.3, 2001)  # f_0 within 8 standard deviations


def wing_log_density(x, base, radial_std, tangential_std, rate):
    """log p(x | wing) for rows ``x`` (n, 2): a sum over every preimage f of x."""
    out = np.full(len(x), -np.inf)
    for i, (x0, x1) in enumerate(np.asarray(x, np.float64)):
        def gap(f0, x0=x0, x1=x1):
            t = base + rate * np.exp(f0)
            return f0 - (np.cos(t) * x0 - np.sin(t) * x1)

        g = gap(GRID)
        terms = []
        for j in np.flatnonzero(np.sign(g[:-1]) != np.sign(g[1:])):
            lo, hi = GRID[j], GRID[j + 1]
            for _ in range(60):  # bisection to float64 precision
                mid = 0.5 * (lo + hi)
                lo, hi = (mid, hi) if np.sign(gap(mid)) == np.sign(gap(lo)) else (lo, mid)
            f0 = 0.5 * (lo + hi)
            t = base + rate * np.exp(f0)
            f1 = np.sin(t) * x0 + np.cos(t) * x1
            terms.append(-0.5 * ((f0 - 1) / radial_std) ** 2 - 0.5 * (f1 / tangential_std) ** 2
                         - np.log(2 * np.pi * radial_std * tangential_std)
                         - np.log(abs(1 + rate * np.exp(f0) * f1)))
        if terms:
            out[i] = logsumexp(terms)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    opts = {k: WING[k] for k in ("radial_std", "tangential_std", "rate")}
    bases = np.linspace(0.0, 2.0 * np.pi, WING["n_wings"], endpoint=False)
    for seed in range(args.seeds):
        _, (x, y) = train_test(pinwheel, seed=seed, **WING)
        log_p = np.stack([wing_log_density(x, b, **opts) for b in bases], 1)
        scores = clustering_scores(y, log_p.argmax(1))
        print(json.dumps({"seed": seed, "bayes_ari": round(float(scores["ari"]), 4),
                          "bayes_acc": round(float(scores["acc"]), 4),
                          "true_loglik": round(float(np.mean(logsumexp(log_p, 1)
                                                             - np.log(len(bases)))), 4)}),
              flush=True)


if __name__ == "__main__":
    main()
