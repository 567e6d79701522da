"""The estimator's side of a memory-mapped ``X``: checks, statistics and labels in chunks.

A mapped ``X`` (``np.load(path, mmap_mode="r")``, ``np.memmap``) is never read whole by
``VMoNF.fit``: its values are checked a block of rows at a time, the data warnings and the
preprocessing's statistics come from a random sample of ``feeder.chunk_rows`` rows, training
reads one chunk an epoch (``train.feeder``), and ``labels_`` and ``usage_`` are computed a
chunk at a time (as they are for any ``X``).
"""

import numpy as np

from vmonf_jax.train import feeder

SAMPLE_SEED = 0  # the rows the preprocessing's statistics and the data warnings see


def validated(est, X, reset: bool):
    """``X`` checked in blocks (shape, dtype, NaN, inf); with ``reset`` records its width."""
    rows = feeder.Rows(X)
    rows.check("X")
    if reset:
        est.n_features_in_ = rows.dim
    elif rows.dim != est.n_features_in_:
        raise ValueError(f"X has {rows.dim} features, but {type(est).__name__} is expecting "
                         f"{est.n_features_in_} features as input.")
    return X


def sample(X):
    """``X``, or of a mapped ``X`` a random sample of ``feeder.chunk_rows`` of its rows."""
    if not feeder.is_mapped(X):
        return X
    return feeder.Rows(X).sample(feeder.chunk_rows(X.shape[1]), SAMPLE_SEED)


def training_rows(pre, X):
    """The rows ``train.fit`` trains on: preprocessed ``X``, or a map preprocessed as read."""
    if feeder.is_mapped(X):
        return feeder.Rows(X, lambda raw: pre.transform(raw)[0])
    return pre.transform(X)[0]


def assign(fitted, X):
    """``(labels, usage)``: each row's most probable component and the mean p(k|x).

    ``fitted``: a ``FittedModel``; rows are scored ``feeder.chunk_rows`` at a time.
    """
    size = feeder.chunk_rows(X.shape[1])
    labels, total = np.empty(len(X), np.int64), 0.0
    for start in range(0, len(X), size):
        proba = fitted.predict_proba(np.asarray(X[start : start + size], np.float64))
        labels[start : start + size] = proba.argmax(1)
        total = total + proba.sum(0, dtype=np.float64)
    return labels, total / len(X)
