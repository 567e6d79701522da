"""Compare the semi-supervised modes on two circles (64 labels, 32 per class) over seeds.

Usage: python studies/semi.py [--seeds 3] [--modes paper,joint] [--arch paper|wide]
``paper`` architecture: K=2 RealNVP, 10 blocks, hidden 8, posterior 2x16 (the paper's);
``wide``: 16 blocks, hidden (16, 16). 300 pre-training epochs, 500 epochs, batch 128, one run
per seed (n_init=1). Prints one JSON line per run and a min/median/max summary per mode.
"""

import argparse
import json
import time

import numpy as np

from vmonf_jax import VMoNF
from vmonf_jax.data import semi_supervised_labels, train_test, two_circles

ARCHS = {"paper": dict(n_blocks=10, hidden=(8,)), "wide": dict(n_blocks=16, hidden=(16, 16))}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--modes", default="paper,joint")
    ap.add_argument("--arch", choices=list(ARCHS), default="paper")
    args = ap.parse_args()
    for mode in args.modes.split(","):
        accs = []
        for seed in range(args.seeds):
            (X, y), (Xt, yt) = train_test(two_circles, seed=seed)
            t = time.time()
            m = VMoNF(n_components=2, posterior_hidden=(16, 16), epochs=500, pretrain_epochs=300,
                      batch_size=128, n_init=1, semi_supervised=mode, seed=seed, verbose=False,
                      **ARCHS[args.arch]).fit(X, semi_supervised_labels(y, 32, seed=seed))
            acc = float(np.mean(m.classes_[m.predict(Xt)] == yt))
            accs.append(acc)
            print(json.dumps({"mode": mode, "arch": args.arch, "seed": seed, "test_acc": acc,
                              "test_loglik": m.score(Xt), "wall_s": round(time.time() - t, 1)}),
                  flush=True)
        a = np.array(accs)
        print(f"{mode} ({args.arch}) acc: min {a.min():.3f} median {np.median(a):.3f} "
              f"max {a.max():.3f}", flush=True)


if __name__ == "__main__":
    main()
