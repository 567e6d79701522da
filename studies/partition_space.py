"""In which space should the warm start partition the rows? (issue 21, digits' accuracy)

The Gaussian start alone, no flow training: on each stratified 70/30 split of a
``realdata_sets`` data set, the training rows are preprocessed as ``VMoNF``'s defaults do
(``standardize``, ``dequantize="auto"``), 20% of them held out for validation, and each of
3 restarts partitions the other 80% into K = C clusters in one space:

* ``std``: the standardised rows (the default before ``train.partition``);
* ``grid``: ``partition.grid_rows`` (grid steps where every column is dequantised; else
  the same as ``std``);
* ``pca90``: the standardised rows' principal components that explain 90% of the variance;
* ``kaiser``: those with eigenvalue above 1 (Kaiser's rule: more variance than one column);
* ``grid_pca``: ``grid`` reduced to its first ``step.PCA_DIMS`` principal components (the
  features k-means already clusters on wider data; the spectral partition's graph too here).

by spectral clustering of the 10-nearest-neighbour graph (``partition.warm_labels``) or by
k-means. ``gaussian_start.fit_gaussians`` then runs EM on one dequantised draw of the
standardised rows from each partition, as ``fit`` does. Recorded per split, space and
partition: each restart's partition accuracy (training rows), validation log-likelihood and
held-out matched accuracy, and for the restart of best validation log-likelihood its held-out
log-likelihood (nats per row, the data's units) and accuracy.

Usage: python studies/partition_space.py digits [--splits 0,1,2] [--spaces grid,grid_pca]
    [--out results/partition_space/digits.json]
"""

import argparse
import json
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.decomposition import PCA

from vmonf_jax.preprocess import make_preprocessor
from vmonf_jax.train.consistency import knn_graph
from vmonf_jax.train.gaussian_start import fit_gaussians
from vmonf_jax.train.partition import grid_rows, warm_labels
from vmonf_jax.train.step import PCA_DIMS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from realdata_sets import load, split  # noqa: E402

RESTARTS = 3
VAL_FRACTION = 0.2
SPACES = ("std", "grid", "pca90", "kaiser", "grid_pca")
METHODS = ("spectral", "kmeans", "refined")


def refined(rows, labels, k, seed):
    """``labels`` refined by Lloyd's k-means iterations from their clusters' means.

    On ``step.PCA_DIMS`` principal components of wider rows, as ``kmeans_labels``.
    """
    from sklearn.cluster import KMeans

    feats = PCA(PCA_DIMS, random_state=seed).fit_transform(rows) if rows.shape[1] > PCA_DIMS \
        else rows
    centres = np.stack([feats[labels == j].mean(0) for j in range(k)])
    return KMeans(k, init=centres, n_init=1).fit(feats).labels_


def matched_accuracy(y, labels, k):
    counts = np.zeros((k, k))
    np.add.at(counts, (labels, y), 1)
    rows, cols = linear_sum_assignment(-counts)
    return counts[rows, cols].sum() / len(y)


def spaces(z, noise, names=SPACES):
    """``{name: rows}`` of the spaces ``names`` (those of the module docstring)."""
    eig = np.linalg.eigvalsh(np.cov(z, rowvar=False))[::-1]
    n90 = int(np.searchsorted(np.cumsum(eig) / eig.sum(), 0.9)) + 1
    n_kaiser = max(2, int((eig > 1).sum()))
    grid = grid_rows(z, noise)
    make = {"std": lambda: z, "grid": lambda: grid,
            "pca90": lambda: PCA(n90, random_state=0).fit_transform(z),
            "kaiser": lambda: PCA(n_kaiser, random_state=0).fit_transform(z),
            "grid_pca": lambda: grid if grid.shape[1] <= PCA_DIMS else PCA(
                PCA_DIMS, random_state=0).fit_transform(grid)}
    return {name: make[name]() for name in names}


def mixture_scores(start, z):
    """(log p(z) per row, most probable component) of a ``(means, covs, weights)`` start."""
    means, covs, weights = start
    lp = np.stack([np.log(w) + multivariate_normal(m, c, allow_singular=True).logpdf(z)
                   for m, c, w in zip(means, covs, weights)], 1)
    return logsumexp(lp, 1), lp.argmax(1)


class Prepared(NamedTuple):
    """One split as ``VMoNF``'s defaults see it (``prepared``)."""

    k: int
    z: np.ndarray  # standardised training rows
    noisy: np.ndarray  # z, dequantised once (as fit's Gaussian start sees it)
    tr: np.ndarray  # indices of z that train
    val: np.ndarray  # indices of z that validate
    z_te: np.ndarray  # standardised test rows
    y_tr: np.ndarray
    y_te: np.ndarray
    noise: np.ndarray  # dequantisation widths (standardised units), or None
    log_det: float  # standardised -> the data's units, per row


def prepared(name, s, val_rows) -> Prepared:
    """Split ``s`` of data set ``name`` preprocessed as the defaults do (``standardize``,
    ``dequantize="auto"``); ``val_rows(n)`` of the n training rows validate (drawn by
    seed ``s``, as is the one dequantisation draw)."""
    X, y, k = load(name)
    x_tr, x_te, y_tr, y_te = split(X, y, s)
    pre = make_preprocessor("standardize", "auto").fit(x_tr)
    z, z_te = (pre.transform(a)[0].astype(np.float64) for a in (x_tr, x_te))
    noise = pre.noise_width()
    rng = np.random.default_rng(s)
    perm = rng.permutation(len(z))
    n_val = val_rows(len(z))
    noisy = z + (rng.random(z.shape) - 0.5) * (0 if noise is None else noise)
    return Prepared(k, z, noisy, perm[n_val:], perm[:n_val], z_te, y_tr, y_te, noise,
                    -np.log(pre.scale).sum())


def run_split(name, s, names=SPACES, methods=METHODS):
    k, z, z_noisy, tr, val, z_te, y_tr, y_te, noise, log_det = prepared(
        name, s, lambda n: int(VAL_FRACTION * n))
    seeds = [10 * s + r for r in range(RESTARTS)]
    out = []
    for space, rows in spaces(z[tr], noise, names).items():
        for method in methods:
            t0 = time.perf_counter()
            nbrs = knn_graph(rows) if method != "kmeans" else None
            partitions = warm_labels(rows, k, seeds, nbrs)
            if method == "refined":
                partitions = [refined(rows, p, k, seed) for p, seed in zip(partitions, seeds)]
            restarts, reg = [], None
            for labels, seed in zip(partitions, seeds):
                *start, _, reg = fit_gaussians(z_noisy[tr], labels, k, seed, z_noisy[val], reg)
                ll_test, pred = mixture_scores(start, z_te)
                restarts.append({"partition_acc": matched_accuracy(y_tr[tr], labels, k),
                                 "val_loglik": mixture_scores(start, z[val])[0].mean() + log_det,
                                 "test_loglik": ll_test.mean() + log_det,
                                 "test_acc": matched_accuracy(y_te, pred, k)})
            best = max(restarts, key=lambda r: r["val_loglik"])
            out.append({"dataset": name, "split": s, "space": space, "partition": method,
                        "dims": rows.shape[1], "reg": reg, "restarts": restarts,
                        "chosen_test_loglik": best["test_loglik"],
                        "chosen_test_acc": best["test_acc"],
                        "wall_s": time.perf_counter() - t0})
            print(json.dumps({key: out[-1][key] for key in (
                "dataset", "split", "space", "partition", "dims", "chosen_test_loglik",
                "chosen_test_acc")}), flush=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dataset")
    ap.add_argument("--splits", default="0,1,2")
    ap.add_argument("--spaces", default=",".join(SPACES))
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    out = Path(args.out or f"results/partition_space/{args.dataset}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for s in (int(v) for v in args.splits.split(",")):
        rows += run_split(args.dataset, s, args.spaces.split(","), args.methods.split(","))
        out.write_text(json.dumps({"argv": sys.argv, "runs": rows}, indent=1))


if __name__ == "__main__":
    main()
