"""Choose the default ``consistency`` weight: clustering and held-out fit over seeds and weights.

Fits each experiment's configuration (``experiments/<target>.py``: the paper's settings, the
library's other defaults) per (weight, seed) on that seed's train draw and scores a fresh
held-out draw: matched accuracy, ARI (exact posterior, the default ``predict``) and mean
log-likelihood (nats).

Usage: python studies/consistency.py [--target circles] [--weights 0,1] [--seeds 5]
    [--epochs E]
Prints one JSON line per fit and a min/median/max summary per weight.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from vmonf_jax import VMoNF
from vmonf_jax.data import pinwheel, train_test, two_circles
from vmonf_jax.metrics import clustering_scores

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
TARGETS = {"circles": two_circles, "pinwheel": pinwheel}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--target", choices=sorted(TARGETS), default="circles")
    ap.add_argument("--weights", default="0,1")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int)
    args = ap.parse_args()
    exp = __import__(args.target)  # experiments/<target>.py: PAPER settings and DATA
    settings = {**exp.PAPER, **({"epochs": args.epochs} if args.epochs else {})}
    for w in map(float, args.weights.split(",")):
        rows = []
        for seed in range(args.seeds):
            (X, _), (Xt, yt) = train_test(TARGETS[args.target], seed=seed, **exp.DATA)
            t = time.time()
            m = VMoNF(**settings, consistency=w, seed=seed, verbose=False).fit(X)
            row = {"target": args.target, "consistency": w, "seed": seed,
                   "wall_s": round(time.time() - t, 1), "test_loglik": m.score(Xt),
                   **clustering_scores(yt, m.predict(Xt))}
            rows.append(row)
            print(json.dumps(row), flush=True)
        for key in ("acc", "ari", "test_loglik"):
            v = np.array([r[key] for r in rows])
            print(f"{args.target} consistency={w:g} {key}: min {v.min():.3f} median "
                  f"{np.median(v):.3f} max {v.max():.3f}", flush=True)


if __name__ == "__main__":
    main()
