"""Measure clustering robustness of training recipes over seeds (chooses the VMoNF defaults).

Usage: python studies/defaults.py [--seeds 5] [--epochs 400] [--recipes paper,kmeans]
Prints one JSON line per (recipe, seed) and a min/median/max summary per recipe.
"""

import argparse
import json
import time

import numpy as np

from vmonf_jax import VMoNF
from vmonf_jax.data import pinwheel, train_test
from vmonf_jax.metrics import clustering_scores

RECIPES = {
    "paper": dict(init="random", warm_epochs=0, n_init=1),
    "paper-3init": dict(init="random", warm_epochs=0, n_init=3),
    "kmeans": dict(init="kmeans", n_init=1),
    "kmeans-3init": dict(init="kmeans", n_init=3),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=400)
    ap.add_argument("--recipes", default="paper,kmeans")
    args = ap.parse_args()
    for name in args.recipes.split(","):
        rows = []
        for seed in range(args.seeds):
            (X, _), (Xt, yt) = train_test(pinwheel, seed=seed)
            t = time.time()
            m = VMoNF(n_components=5, n_blocks=8, hidden=(8,), posterior_hidden=(3,),
                      epochs=args.epochs, batch_size=512, learning_rate=1e-3, seed=seed,
                      verbose=False, **RECIPES[name]).fit(X)
            row = {"recipe": name, "seed": seed, "wall_s": round(time.time() - t, 1),
                   "test_loglik": m.score(Xt), **clustering_scores(yt, m.predict(Xt))}
            rows.append(row)
            print(json.dumps(row), flush=True)
        for key in ("ari", "test_loglik"):
            v = np.array([r[key] for r in rows])
            print(f"{name} {key}: min {v.min():.3f} median {np.median(v):.3f} max {v.max():.3f}",
                  flush=True)


if __name__ == "__main__":
    main()
