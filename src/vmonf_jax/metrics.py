"""Clustering scores and density units used in experiments and reports."""

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix


def cluster_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Accuracy under the best one-to-one matching of clusters to classes.

    The matching (Hungarian algorithm on the class-by-cluster counts) may leave classes or
    clusters unmatched when their numbers differ; points in those count as errors.
    """
    y_true, y_pred = _check_labels(y_true, y_pred)
    counts = contingency_matrix(y_true, y_pred)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / len(y_true))


def contingency_table(
    y_true: np.ndarray, y_pred: np.ndarray, n_clusters: int, normalize: bool = True
) -> np.ndarray:
    """Counts of each true class (rows, sorted label values) in each cluster 0..n_clusters-1.

    Empty clusters keep their (zero) column, so tables of models with the same K line up.
    With ``normalize``, each row is divided by its class size (rows sum to 1).
    """
    y_true, y_pred = _check_labels(y_true, y_pred)
    if y_pred.min() < 0 or y_pred.max() >= n_clusters:
        raise ValueError(f"cluster ids must lie in [0, {n_clusters}), got {np.unique(y_pred)}")
    classes, rows = np.unique(y_true, return_inverse=True)
    table = np.zeros((len(classes), n_clusters), dtype=np.int64)
    np.add.at(table, (rows, y_pred), 1)
    return table / table.sum(axis=1, keepdims=True) if normalize else table


def clustering_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Matched accuracy, adjusted Rand index and normalised mutual information."""
    y_true, y_pred = _check_labels(y_true, y_pred)
    return {
        "acc": cluster_accuracy(y_true, y_pred),
        "ari": float(adjusted_rand_score(y_true, y_pred)),
        "nmi": float(normalized_mutual_info_score(y_true, y_pred)),
    }


def bits_per_dim(loglik_nats: float | np.ndarray, dim: int) -> float | np.ndarray:
    """Converts a log-likelihood in nats of a ``dim``-dimensional point to bits per dimension.

    Returns a float for a scalar input, an array otherwise.
    """
    bpd = -np.asarray(loglik_nats, dtype=np.float64) / (dim * np.log(2.0))
    return float(bpd) if bpd.ndim == 0 else bpd


def _check_labels(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim != 1 or y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(
            f"y_true and y_pred must be non-empty 1-D arrays of equal length, got shapes "
            f"{y_true.shape} and {y_pred.shape}"
        )
    return y_true, y_pred
