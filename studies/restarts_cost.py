"""Do the default fit's restarts pay for their cost (issue 22's cold-fit bar)?

The default pinwheel fit of ``benchmarks/flowjax_side.py`` (the paper's component size,
batch 512, 400 epochs, every other parameter at its default) with ``n_init`` = 1 and 3, on
seeds 0-4: held-out log-likelihood per row (the test rows of another draw, standardised
with the training rows' statistics), ARI against the wings, fit wall time and epochs run.

Usage: python studies/restarts_cost.py [--seeds 0 1 2 3 4] [--n-init 1 3] [--out F.json]
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import flowjax_side as fs  # noqa: E402

from vmonf_jax.data import pinwheel  # noqa: E402


def one(seed: int, n_init: int) -> dict:
    cfg = fs.config(False)
    x, y = pinwheel(n_per_wing=cfg["n_per_wing"], seed=seed)
    xt, yt = pinwheel(n_per_wing=cfg["n_per_wing"], seed=1000 + seed)
    mu, sd = x.mean(0), x.std(0)
    x, xt = ((x - mu) / sd).astype(np.float32), ((xt - mu) / sd).astype(np.float32)
    t = time.perf_counter()
    m = fs.estimator(cfg, 5, epochs=cfg["epochs"], n_init=n_init, seed=seed).fit(x)
    fit_s = time.perf_counter() - t
    return {"seed": seed, "n_init": n_init, "fit_s": round(fit_s, 2),
            "epochs_run": len(m.history_), "test_loglik": float(m.score(xt)),
            "ari": float(adjusted_rand_score(yt, m.predict(xt)))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--n-init", type=int, nargs="+", default=[1, 3])
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    rows = []
    for seed in args.seeds:
        for n in args.n_init:
            rows.append(one(seed, n))
            print(json.dumps(rows[-1]), flush=True)
            if args.out:
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
