"""What ``consistency="auto"`` sees: agreement of the graph's and k-means' partitions.

For each data set and split (the real data sets of ``studies/realdata.py``, its 70/30
splits; the toys' training draws of seeds 0-2), on the standardised training rows: the
adjusted Rand index of the neighbour graph's spectral partition and the k-means partition
(``train.consistency.partition_agreement``: what ``auto_weight`` thresholds), the weight
``auto_weight`` gives, each partition's ARI against the classes and the share of graph edges
it cuts. No training; seconds per data set.

Usage: python studies/consistency_rule.py [--datasets pinwheel,circles,iris,...]
Prints one JSON line per data set and split.
"""

import argparse
import json

import numpy as np
import realdata
from sklearn.metrics import adjusted_rand_score as ari

from vmonf_jax.data import pinwheel, train_test, two_circles
from vmonf_jax.train.consistency import auto_weight, knn_graph, spectral_labels
from vmonf_jax.train.step import kmeans_labels

TOYS = {"pinwheel": (pinwheel, 5), "circles": (two_circles, 2)}


def rows(name, seed):
    """``(training rows, classes, K)`` of split ``seed``."""
    if name in TOYS:
        gen, k = TOYS[name]
        (x, y), _ = train_test(gen, seed=seed)
        return np.asarray(x, np.float64), np.asarray(y), k
    X, y, k = realdata.load(name)
    x, _, y, _ = realdata.split(X, y, seed)
    return x, y, k


def measure(x, y, k, seed) -> dict:
    x = (x - x.mean(0)) / np.maximum(x.std(0), 1e-6)
    nbrs = knn_graph(x)
    spectral = spectral_labels(x, nbrs, k, [seed], kmeans_labels)[0]
    km = kmeans_labels(x, k, seed)
    agreement = float(ari(spectral, km))
    out = {"n": x.shape[0], "d": x.shape[1], "k": k, "agreement": round(agreement, 3),
           "auto_weight": auto_weight(x.shape[1], agreement),
           "cut_spectral": round(float(np.mean(spectral[nbrs] != spectral[:, None])), 4),
           "cut_kmeans": round(float(np.mean(km[nbrs] != km[:, None])), 4)}
    if y is not None:
        out.update(ari_spectral=round(ari(y, spectral), 3), ari_kmeans=round(ari(y, km), 3))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="pinwheel,circles,faithful,crabs,iris,wine,penguins,"
                   "diabetes,olive,breast_cancer")
    for name in p.parse_args().datasets.split(","):
        for seed in (0, 1, 2):
            print(json.dumps({"dataset": name, "split": seed, **measure(*rows(name, seed),
                                                                         seed)}), flush=True)


if __name__ == "__main__":
    main()
