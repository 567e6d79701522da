"""Cluster by the exact posterior p(k|x) or by the trained q(k|x)? (issue 13, item 1)

Fits the paper's pinwheel configuration per seed and scores both rules on a fresh draw of
held-out points: ``predict(X)`` (argmax of the fitted mixture's p(k|x), the Bayes rule) and
``predict(X, posterior="q")`` (argmax of q(k|x) at the kept parameters' temperature).

Usage: python studies/posterior.py [--seeds 3] [--epochs 400]
Prints one JSON line per seed and a min/median/max summary per rule.
"""

import argparse
import json
import time

import numpy as np

from vmonf_jax import VMoNF
from vmonf_jax.data import pinwheel, train_test
from vmonf_jax.metrics import clustering_scores

RULES = ("exact", "q")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=400)
    args = ap.parse_args()
    rows = []
    for seed in range(args.seeds):
        (X, _), (Xt, yt) = train_test(pinwheel, seed=seed)
        t = time.time()
        m = VMoNF(n_components=5, n_blocks=8, hidden=(8,), posterior_hidden=(3,),
                  epochs=args.epochs, batch_size=512, seed=seed, verbose=False).fit(X)
        pred = {rule: m.predict(Xt, posterior=rule) for rule in RULES}
        row = {"seed": seed, "wall_s": round(time.time() - t, 1),
               "temperature": m.temperature_,
               "agreement": float(np.mean(pred["exact"] == pred["q"])),
               **{f"ari_{rule}": clustering_scores(yt, p)["ari"] for rule, p in pred.items()}}
        rows.append(row)
        print(json.dumps(row), flush=True)
    for rule in RULES:
        v = np.array([r[f"ari_{rule}"] for r in rows])
        print(f"ari {rule}: min {v.min():.3f} median {np.median(v):.3f} max {v.max():.3f}",
              flush=True)


if __name__ == "__main__":
    main()
