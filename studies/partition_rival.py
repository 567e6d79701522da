"""Spectral against k-means partitions for the Gaussian start of wide data (issue 21).

Where ``consistency="auto"`` turns the penalty off (more than 15 columns) the neighbour
graph only partitions the rows, and each restart's k-means partition competes with the
graph's spectral one (``gaussian_start.fit_gaussians``'s ``rival``, margin
``RIVAL_MARGIN`` nats a row). This study sets that margin: on one stratified 70/30 split
of a ``realdata_sets`` data set, preprocessed as ``VMoNF``'s defaults do, 15% of the
training rows held out for validation, it fits the Gaussian start from each partition of 3
restarts and prints, per restart, the mixture's in-sample and validation log-likelihood
(nats a row, standardised units: only differences count) and its held-out matched accuracy.

Usage: python studies/partition_rival.py DATASET SPLIT   (prints one JSON line)
"""

import json
import sys
from pathlib import Path

from vmonf_jax.metrics import clustering_scores
from vmonf_jax.train.consistency import knn_graph
from vmonf_jax.train.gaussian_start import fit_gaussians
from vmonf_jax.train.partition import grid_rows, warm_labels

sys.path.insert(0, str(Path(__file__).resolve().parent))
from partition_space import mixture_scores, prepared  # noqa: E402

RESTARTS = 3
VAL_FRACTION = 0.15


def main(name: str, s: int) -> dict:
    k, z, noisy, tr, val, z_te, _, y_te, noise, _ = prepared(
        name, s, lambda n: int(VAL_FRACTION * n))
    rows = grid_rows(z[tr], noise)
    seeds = [1000 * s + r for r in range(RESTARTS)]
    out = {"dataset": name, "split": s, "dims": z.shape[1]}
    for method in ("spectral", "kmeans"):
        nbrs = knn_graph(rows) if method == "spectral" else None
        out[method] = []
        for labels, seed in zip(warm_labels(rows, k, seeds, nbrs), seeds):
            *start, _, reg = fit_gaussians(noisy[tr], labels, k, seed, noisy[val])
            pred = mixture_scores(start, z_te)[1]
            out[method].append({"in_sample": round(mixture_scores(start, noisy[tr])[0].mean(), 2),
                                "validation": round(mixture_scores(start, noisy[val])[0].mean(), 2),
                                "acc": round(clustering_scores(y_te, pred)["acc"], 3),
                                "reg": reg})
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]))))
