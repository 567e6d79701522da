"""Contingency tables (true class x cluster) as a dict, CSV and Markdown."""

import os

import numpy as np
from scipy.optimize import linear_sum_assignment

from vmonf_jax.files import outputs
from vmonf_jax.metrics import contingency_table


def contingency(y_true, y_pred, n_clusters: int) -> dict:
    """Counts and row-normalised table (true class x cluster) with their row labels, and
    per class the cluster matched to it and the fraction of the class in that cluster.

    The matching is the one of the matched accuracy (``metrics.cluster_accuracy``: one-to-one,
    Hungarian); a class left unmatched (more classes than clusters) has cluster -1 and
    accuracy 0.
    """
    counts = contingency_table(y_true, y_pred, n_clusters, normalize=False)
    norm = counts / counts.sum(1, keepdims=True)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    matched = np.full(len(counts), -1)
    matched[rows] = cols
    acc = np.where(matched >= 0, norm[np.arange(len(norm)), matched], 0.0)
    return {"classes": [int(c) for c in np.unique(y_true)], "counts": counts.tolist(),
            "normalized": norm.tolist(), "matched_cluster": matched.tolist(),
            "per_class_acc": acc.tolist()}


def contingency_markdown(table: dict) -> str:
    """The normalised table as Markdown (rows: true class, columns: clusters; each row's
    largest entry in bold) with the per-class accuracy of the matching in the last column."""
    norm, classes = np.asarray(table["normalized"]), table["classes"]
    lines = ["| digit | " + " | ".join(f"cluster {j}" for j in range(norm.shape[1]))
             + " | matched acc |", "|---|" + "---|" * (norm.shape[1] + 1)]
    for c, r, a in zip(classes, norm, table["per_class_acc"]):
        cells = [f"**{v:.2f}**" if j == r.argmax() else f"{v:.2f}" for j, v in enumerate(r)]
        lines.append(f"| {c} | " + " | ".join(cells) + f" | {a:.3f} |")
    return "\n".join(lines) + "\n"


def write_contingency(table: dict, stem) -> list[str]:
    """Write the normalised table as ``<stem>.csv`` and ``<stem>.md``; returns the paths."""
    stem = os.fspath(stem)
    norm, classes = np.asarray(table["normalized"]), table["classes"]
    header = ["digit"] + [f"cluster {j}" for j in range(norm.shape[1])]
    rows = [[str(c)] + [f"{v:.3f}" for v in r] for c, r in zip(classes, norm)]
    with outputs.atomic_file(stem + ".csv", "w") as f:
        f.writelines(",".join(r) + "\n" for r in [header, *rows])
    with outputs.atomic_file(stem + ".md", "w") as f:
        f.write(contingency_markdown(table))
    return [stem + ".csv", stem + ".md"]
