"""Input checks that run before any maths, with messages that say what is wrong."""

import numpy as np


def check_data(x, *, dim: int | None = None, min_rows: int = 1, name: str = "data") -> np.ndarray:
    """Return ``x`` as a float32 (n, d) array, or raise ValueError naming the problem."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} is not numeric: {err}") from None
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (rows, features), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    bad = ~np.isfinite(arr)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(f"{name} has a non-finite value ({arr[row, col]}) at row {row}, "
                         f"column {col} ({int(bad.sum())} non-finite values in all)")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{name} has {arr.shape[1]} columns but the model expects {dim}")
    if arr.shape[0] < min_rows:
        raise ValueError(f"{name} has {arr.shape[0]} rows, fewer than the {min_rows} "
                         "components: need at least one point per component")
    return arr.astype(np.float32)


def check_labels(y, n_rows: int, n_components: int) -> np.ndarray:
    """Return labels as int32 (-1 = unlabelled), or raise ValueError naming the problem."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {arr.shape}")
    if arr.shape[0] != n_rows:
        raise ValueError(f"labels have length {arr.shape[0]} but the data have {n_rows} rows")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError("labels must be integers (-1 for unlabelled)")
    elif arr.dtype.kind not in "iub":
        raise ValueError(f"labels must be integers (-1 for unlabelled), got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    out = (arr < -1) | (arr >= n_components)
    if out.any():
        i = int(np.argmax(out))
        raise ValueError(f"label {arr[i]} at row {i} is outside [-1, {n_components}) "
                         f"for {n_components} components")
    return arr.astype(np.int32)
