"""Clustering metrics and bits/dim."""

import numpy as np
import pytest

from vmonf_jax.metrics import bits_per_dim, cluster_accuracy, clustering_scores, contingency_table


def test_permuted_labels_score_perfectly():
    y = np.repeat(np.arange(4), 5)
    scores = clustering_scores(y, np.array([2, 0, 3, 1])[y])
    assert scores == pytest.approx({"acc": 1.0, "ari": 1.0, "nmi": 1.0})


def test_known_accuracies():
    assert cluster_accuracy([0, 0, 0, 1, 1, 1], [1, 1, 0, 0, 0, 0]) == pytest.approx(5 / 6)
    # More clusters than classes: the best matching uses clusters 0 and 2.
    assert cluster_accuracy([0, 0, 1, 1], [0, 1, 2, 2]) == pytest.approx(3 / 4)
    # Fewer clusters than classes: one class stays unmatched.
    assert cluster_accuracy([0, 1, 2, 2], [0, 0, 1, 1]) == pytest.approx(3 / 4)


def test_contingency_table():
    y_true = np.array([3, 3, 3, 7, 7])
    y_pred = np.array([0, 0, 2, 2, 2])
    counts = contingency_table(y_true, y_pred, n_clusters=4, normalize=False)
    assert np.array_equal(counts, [[2, 0, 1, 0], [0, 0, 2, 0]])
    table = contingency_table(y_true, y_pred, n_clusters=4)
    np.testing.assert_allclose(table.sum(axis=1), 1.0)
    np.testing.assert_allclose(table[0], [2 / 3, 0, 1 / 3, 0])
    with pytest.raises(ValueError, match="cluster ids"):
        contingency_table(y_true, y_pred, n_clusters=2)


def test_bits_per_dim():
    assert bits_per_dim(-784 * np.log(2), 784) == pytest.approx(1.0)
    np.testing.assert_allclose(bits_per_dim(np.array([0.0, -2 * np.log(2)]), 2), [0.0, 1.0])


def test_mismatched_lengths():
    with pytest.raises(ValueError, match="equal length"):
        cluster_accuracy([0, 1], [0])
