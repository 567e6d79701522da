"""Preparing a fit: the split, the device arrays, the warm-start partition, the weights.

The helpers of ``setup``, what ``fit`` computes once before training: the validation
split, one seed per restart, the run's device arrays (neighbour graph and warm-start
labels), the consistency regulariser's weight, the dequantisation widths and the epochs per
compiled call.
"""

import jax
import jax.numpy as jnp
import numpy as np

from vmonf_jax.train.consistency import AUTO, auto_weight, knn_graph
from vmonf_jax.train.partition import grid_rows, warm_labels
from vmonf_jax.train.run import Data
from vmonf_jax.validation import held_out


def consistency_weight(config, dim, nbrs) -> float:
    """The regulariser's weight: ``config.consistency``, or ``"auto"``'s for ``dim`` columns.

    ``nbrs``: the rows' neighbour graph (None: none was built, so no penalty).
    """
    if config.consistency != AUTO:
        return float(config.consistency)
    return 0.0 if nbrs is None else auto_weight(dim)


def noise_widths(noise, dim):
    """``noise`` as a (dim,) float32 device array of finite widths >= 0, or None."""
    if noise is None:
        return None
    noise = np.asarray(noise, np.float64)
    if noise.shape != (dim,) or not np.all(np.isfinite(noise) & (noise >= 0)):
        raise ValueError(f"noise must be {dim} finite widths >= 0, got shape {noise.shape}")
    return jnp.asarray(noise, jnp.float32) if noise.any() else None


def chunk_length(n_epochs: int, most: int) -> int:
    """Epochs per call: at most ``most``, evened out so the last call wastes few epochs."""
    calls = -(-n_epochs // most)
    return -(-n_epochs // calls)


def split(x, labels, fraction, key):
    """``(x_train, labels_train, x_val)``; the validation rows are drawn from ``key``."""
    if not fraction:
        return x, labels, None
    n = x.shape[0]
    n_val = held_out(n, fraction)
    perm = np.asarray(jax.random.permutation(jax.random.fold_in(key, 2**20), n))
    val, tr = perm[:n_val], perm[n_val:]
    return x[tr], None if labels is None else labels[tr], x[val]


def seeds(keys) -> list:
    """One integer seed per restart key (k-means and the Gaussian start's EM)."""
    return [int(jax.random.randint(k, (), 0, 2**31 - 1)) for k in keys]


def arrays_of(x, labels, x_val, schedule, model, keys, graph, partition=False,
              noise=None) -> Data:
    """Device arrays of the run; the warm start partitions the rows once per restart.

    ``graph``: also the neighbour graph of the rows (the consistency regulariser's); the
    warm start then clusters the graph's spectral embedding (spectral clustering), except
    with the sparse prior. Both warm starts fit on at most ``WARM_START_ROWS`` rows and
    extend to the rest (``consistency.spectral_labels``, ``step.kmeans_labels``). Graph
    and partition are computed on ``partition.grid_rows(x, noise)``: in grid steps when
    every column is dequantised (``noise``: the widths of ``fit``, host array or None).
    ``partition``: label the rows even without warm-start epochs (the Gaussian start needs
    the partition).
    """
    rows = grid_rows(x, noise)
    y_warm, nbrs = None, knn_graph(rows) if graph else None
    if (schedule.warm and not schedule.balanced) or partition:
        # the sparse prior's upper bound K would cut connected clusters into spectral pieces
        # large enough to survive pruning (README, "Automatic K"): it clusters the rows
        y_warm = warm_labels(rows, model.n_components, seeds(keys),
                             None if model.prior.prunes else nbrs)
        if labels is not None:
            y_warm = [matched_to_labels(y, labels, model.n_components) for y in y_warm]
        y_warm = jnp.stack(y_warm)
    lab = (None, None) if labels is None else (jnp.asarray(x[labels >= 0]),
                                               jnp.asarray(labels[labels >= 0]))
    return Data(jnp.asarray(x), y_warm, *lab, None if x_val is None else jnp.asarray(x_val),
                None if nbrs is None else jnp.asarray(nbrs))


def rival_partitions(x, noise, k: int, keys) -> list:
    """k-means partitions of the rows ``x``, one per restart (``keys``).

    In ``arrays_of``'s space: the rivals of the graph's spectral partitions in the Gaussian
    start (``gaussian_start.fit_gaussians``'s ``rival``) where the graph only partitions.
    """
    return warm_labels(grid_rows(x, noise), k, seeds(keys))


def kind_of(setting: str, warm: int) -> str:
    """The key of ``run.KINDS``: joint semi-supervised fits with a warm start need its kind."""
    return "joint-warm" if setting == "joint" and warm else setting


def matched_to_labels(clusters, labels, k: int) -> np.ndarray:
    """Warm-start labels of a semi-supervised fit.

    Clusters are renamed to the labelled classes they hold most of (one-to-one); labelled
    rows keep their own labels.
    """
    from scipy.optimize import linear_sum_assignment

    known = labels >= 0
    counts = np.zeros((k, k))
    np.add.at(counts, (clusters[known], labels[known]), 1)
    rows, cols = linear_sum_assignment(-counts)
    rename = np.empty(k, np.int32)
    rename[rows] = cols
    return np.where(known, labels, rename[clusters]).astype(np.int32)
