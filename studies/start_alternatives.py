"""Two rejected alternatives to the Gaussian start's EM, on the start alone (issue 21).

On the held-out data sets the defaults cluster below k-means where the classes are not the
density's clusters (two_class, pima): EM moves the partition's Gaussians to the mixture
that fits best, and that mixture cuts the rows differently. Two ways to keep closer to what
the partition found, each judged on the validation rows, are measured here against the
start as it is (``current``: ``gaussian_start.fit_gaussians``):

* ``moments``: the partition's own Gaussians (its clusters' moments, regulariser chosen on
  the validation rows), kept unless EM from them (fitted on the training rows) beats them on
  the validation rows by more than two standard errors of the mean per-row difference.
* ``diag``: diagonal covariances where their EM scores better on the validation rows than
  the full covariances' (each with its best regulariser of ``REG_GRID``).

One stratified 70/30 split of a ``realdata_sets`` data set per call, preprocessed as
``VMoNF``'s defaults do, 15% of the training rows (at least 10) for validation, the first
restart's partition (the neighbour graph's spectral clusters up to 15 columns, else
k-means). Prints one JSON line per data set and split: the rule's pick and, for each
mixture, the held-out log-likelihood (nats a row, standardised units: compare within a row)
and matched accuracy.

Usage: python studies/start_alternatives.py DATASETS SPLITS   (e.g. two_class,pima 0,1,2)
"""

import json
import sys
from pathlib import Path

import numpy as np
from sklearn.mixture import GaussianMixture

from vmonf_jax.metrics import clustering_scores
from vmonf_jax.train.consistency import knn_graph
from vmonf_jax.train.gaussian_start import EM_ITER, REG_GRID, fit_gaussians
from vmonf_jax.train.partition import grid_rows, warm_labels

sys.path.insert(0, str(Path(__file__).resolve().parent))
from partition_space import mixture_scores, prepared  # noqa: E402

GRAPH_MAX_COLUMNS = 15  # as consistency="auto": the graph partitions up to this many columns


def moments(x, labels, k, reg):
    """``(means, covs, weights)`` of the clusters ``labels`` of ``x``, ``reg`` on each diagonal."""
    eye = reg * np.eye(x.shape[1])
    parts = [x[labels == j] if np.sum(labels == j) > 1 else x for j in range(k)]
    weights = np.array([max(np.sum(labels == j), 1) for j in range(k)], float)
    return (np.array([p.mean(0) for p in parts]),
            np.array([np.cov(p, rowvar=False) + eye for p in parts]), weights / weights.sum())


def em(rows, start, kind, reg, seed):
    """EM (``kind``: full or diag covariances) on ``rows`` from the Gaussians ``start``."""
    means, covs, weights = start
    prec = np.linalg.inv(covs)
    prec = (prec + prec.transpose(0, 2, 1)) / 2 if kind == "full" else 1 / np.diagonal(
        covs, axis1=1, axis2=2)
    gmm = GaussianMixture(len(weights), covariance_type=kind, reg_covar=reg, max_iter=EM_ITER,
                          weights_init=weights, means_init=means, precisions_init=prec,
                          random_state=seed).fit(rows)
    c = gmm.covariances_
    return gmm.means_, c if kind == "full" else np.stack([np.diag(v) for v in c]), gmm.weights_


def best_reg(fit, val):
    """The regulariser of ``REG_GRID`` whose mixture ``fit(reg)`` scores best on ``val``."""
    return max(REG_GRID, key=lambda r: mixture_scores(fit(r), val)[0].mean())


def run(name, s):
    k, z, noisy, tr, val, z_te, _, y_te, noise, _ = prepared(
        name, s, lambda n: max(10, round(0.15 * n)))
    x, x_val = noisy[tr], noisy[val]
    rows = grid_rows(z[tr], noise)
    nbrs = knn_graph(rows) if z.shape[1] <= GRAPH_MAX_COLUMNS else None
    labels = warm_labels(rows, k, [1000 * s], nbrs)[0]
    current = tuple(fit_gaussians(x, labels, k, s, x_val)[:3])
    reg = best_reg(lambda r: moments(x, labels, k, r), x_val)
    mom = moments(x, labels, k, reg)
    diff = (mixture_scores(em(x, mom, "full", reg, s), x_val)[0]
            - mixture_scores(mom, x_val)[0])
    z_gain = diff.mean() / (diff.std(ddof=1) / np.sqrt(len(diff)))
    fits = {kind: (lambda r, kind=kind: em(x, moments(x, labels, k, r), kind, r, s))
            for kind in ("full", "diag")}
    regs = {kind: best_reg(f, x_val) for kind, f in fits.items()}
    val_ll = {kind: mixture_scores(fits[kind](regs[kind]), x_val)[0].mean() for kind in fits}
    both = np.concatenate([x, x_val])
    diag = em(both, moments(x, labels, k, regs["diag"]), "diag", regs["diag"], s)
    out = {"dataset": name, "split": s, "em_gain_z": round(float(z_gain), 2),
           "moments_kept": bool(z_gain <= 2), "diag_chosen": bool(val_ll["diag"] > val_ll["full"])}
    for tag, start in (("current", current), ("moments", mom), ("diag", diag)):
        ll, pred = mixture_scores(start, z_te)
        out[tag] = {"loglik": round(float(ll.mean()), 3),
                    "acc": None if y_te is None else round(clustering_scores(y_te, pred)["acc"],
                                                           3)}
    return out


if __name__ == "__main__":
    for name in sys.argv[1].split(","):
        for s in sys.argv[2].split(","):
            print(json.dumps(run(name, int(s))), flush=True)
