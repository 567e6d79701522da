"""The Bayes limit of pinwheel clustering: the true density's own rule on each test draw.

The pinwheel of ``vmonf_jax.data.pinwheel`` maps f ~ N((1, 0), diag(radial_std,
tangential_std)^2) to x = R(-theta) f with theta = base_k + rate * exp(f_0). Inverting it
per wing (f = R(theta) x, theta a root of f_0 = [R(theta(f_0)) x]_0, found on a grid and
refined by bisection) and dividing by |det dx/df| = |1 + rate * exp(f_0) * f_1| gives the
exact density of each wing. argmax_k p_k(x) is the Bayes rule: no model clusters the draw
better on average, so its ARI is the ceiling of issue 13's pinwheel target.

Usage: python studies/pinwheel_bayes.py [--seeds 5] [--fit] [--posterior-hidden H]
Prints one JSON line per seed (the test draw of ``train_test(pinwheel, seed)``, as ``make
pinwheel``): Bayes ARI and accuracy, the true density's mean test log-likelihood. With
``--fit``, also fits ``make pinwheel``'s recipe on the seed's training draw (posterior MLP
width ``H`` if given) and says where its ``predict`` disagrees with the Bayes rule: how
many test points, their radii |x| (the wings run from the centre, |x| ~ 1 +- 0.3, out to
their curled tips) and the model's confidence max_k p(k|x) there.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp

from vmonf_jax import VMoNF
from vmonf_jax.data import pinwheel, train_test
from vmonf_jax.metrics import clustering_scores

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
from pinwheel import PAPER  # noqa: E402  (the recipe of make pinwheel)

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


def _spread(v):
    """min, median, max of ``v`` to 2 decimals (empty: [])."""
    return [round(float(a), 2) for a in np.quantile(v, (0, 0.5, 1))] if len(v) else []


def disagreement(seed, x_train, x, y, bayes, posterior_hidden=None) -> dict:
    """Fit ``make pinwheel``'s recipe; its ARI on ``(x, y)`` and where it differs from
    ``bayes`` (components matched one-to-one to the Bayes rule's wings)."""
    settings = {**PAPER, **({"posterior_hidden": posterior_hidden} if posterior_hidden else {})}
    model = VMoNF(**settings, seed=seed, verbose=False).fit(x_train)
    pred = model.predict(x)
    k = max(bayes.max(), pred.max()) + 1
    overlap = np.zeros((k, k))
    np.add.at(overlap, (bayes, pred), 1)
    rows, cols = linear_sum_assignment(-overlap)
    wing_of = dict(zip(cols, rows))
    wrong = np.array([wing_of[p] for p in pred]) != bayes
    radius = np.linalg.norm(x[wrong], axis=1)
    conf = model.predict_proba(x[wrong]).max(1) if wrong.any() else np.zeros(0)
    return {"model_ari": round(float(clustering_scores(y, pred)["ari"]), 4),
            "disagreements": int(wrong.sum()), "radius_min_median_max": _spread(radius),
            "confidence_min_median_max": _spread(conf),
            "model_loglik": round(float(model.score(x)), 4)}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--fit", action="store_true", help="also fit make pinwheel's recipe")
    ap.add_argument("--posterior-hidden", type=int, help="posterior MLP width (with --fit)")
    args = ap.parse_args()
    opts = {k: WING[k] for k in ("radial_std", "tangential_std", "rate")}
    bases = np.linspace(0.0, 2.0 * np.pi, WING["n_wings"], endpoint=False)
    for seed in range(args.seeds):
        (x_train, _), (x, y) = train_test(pinwheel, seed=seed, **WING)
        log_p = np.stack([wing_log_density(x, b, **opts) for b in bases], 1)
        scores = clustering_scores(y, log_p.argmax(1))
        row = {"seed": seed, "bayes_ari": round(float(scores["ari"]), 4),
               "bayes_acc": round(float(scores["acc"]), 4),
               "true_loglik": round(float(np.mean(logsumexp(log_p, 1) - np.log(len(bases)))),
                                    4)}
        if args.fit:
            hidden = (args.posterior_hidden,) if args.posterior_hidden else None
            row.update(disagreement(seed, x_train, x, y, log_p.argmax(1), hidden))
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
