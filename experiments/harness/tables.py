"""Contingency tables (true class x cluster) as a dict, CSV and Markdown."""

import os

import numpy as np

from vmonf_jax import outputs
from vmonf_jax.metrics import contingency_table


def contingency(y_true, y_pred, n_clusters: int) -> dict:
    """Counts and row-normalised table (true class x cluster) with their row labels."""
    counts = contingency_table(y_true, y_pred, n_clusters, normalize=False)
    return {"classes": [int(c) for c in np.unique(y_true)], "counts": counts.tolist(),
            "normalized": (counts / counts.sum(1, keepdims=True)).tolist()}


def contingency_markdown(table: dict) -> str:
    """The normalised table as Markdown (rows: true class, columns: clusters; each row's
    largest entry in bold)."""
    norm, classes = np.asarray(table["normalized"]), table["classes"]
    lines = ["| digit | " + " | ".join(f"cluster {j}" for j in range(norm.shape[1])) + " |",
             "|---|" + "---|" * norm.shape[1]]
    for c, r in zip(classes, norm):
        cells = [f"**{v:.2f}**" if j == r.argmax() else f"{v:.2f}" for j, v in enumerate(r)]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
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
