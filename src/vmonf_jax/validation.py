"""Input checks that run before any maths, with messages that say what is wrong."""

import numpy as np

FLOAT32_MAX = float(np.finfo(np.float32).max)


CHECK_ROWS = 16384  # rows checked at a time: bounded temporaries (a memory-mapped file too)


def first_bad_value(arr: np.ndarray):
    """The first NaN, infinity or value beyond float32's range in a numeric (n, d) array.

    Checked ``CHECK_ROWS`` rows at a time, so a memory-mapped array is never read whole.

    Returns:
        ``None``, or ``(row, column, what, count)``: the position of the first bad value
        (row-major), what is wrong with it ("non-finite value" or "value outside the float32
        range (...)") and how many such values the array holds.
    """
    for test, what in ((lambda a: ~np.isfinite(a), "non-finite value"),
                       (lambda a: np.abs(a) > FLOAT32_MAX,
                        f"value outside the float32 range (|x| <= {FLOAT32_MAX:.4g})")):
        first, count = None, 0
        for start in range(0, max(len(arr), 1), CHECK_ROWS):
            bad = test(np.asarray(arr[start : start + CHECK_ROWS]))
            if bad.any():
                count += int(bad.sum())
                if first is None:
                    row, col = np.argwhere(bad)[0]
                    first = (start + int(row), int(col))
        if first is not None:
            return *first, what, count
    return None


def check_values(arr: np.ndarray, name: str = "data", columns=None) -> None:
    """Raise ValueError at the first bad value of ``arr`` (see ``first_bad_value``).

    The message names its row and column (by name, from ``columns``, where the data have
    names), and says "NaN" or "inf" as scikit-learn does; NaN, a missing value, comes with
    the way to leave such rows out.
    """
    found = first_bad_value(arr)
    if found is not None:
        row, col, what, count = found
        v = arr[row, col]
        column = col if columns is None else repr(columns[col])
        hint = ("; missing values: leave those rows out first (a data frame's .dropna())"
                if np.isnan(v) else "")
        raise ValueError(f"{name} has a {what} ({'NaN' if np.isnan(v) else f'{v:.6g}'}) at "
                         f"row {row}, column {column} ({count} such values in all){hint}")


def listed(items, first: int = 8) -> str:
    """``items`` as "a, b, c and 5 more": messages name the first few, then count the rest."""
    items = [str(i) for i in items]
    more = f" and {len(items) - first} more" if len(items) > first else ""
    return ", ".join(items[:first]) + more


def check_numeric_columns(x, name: str = "data") -> None:
    """Raise ValueError naming the non-numeric columns of a pandas data frame ``x``.

    The conversion to floats would otherwise report only the first bad value, not its
    column. Arrays and other inputs pass through (their values are checked when converted).
    """
    dtypes = getattr(x, "dtypes", None)
    if not hasattr(dtypes, "items"):
        return
    bad = [str(c) for c, t in dtypes.items() if getattr(t, "kind", "O") not in "biuf"]
    if bad:
        raise ValueError(f"{name} has non-numeric columns {listed(map(repr, bad))}: "
                         "encode them as numbers or drop them")


def check_data(x, *, dim: int | None = None, min_rows: int = 1, name: str = "data",
               dtype=np.float32) -> np.ndarray:
    """Return ``x`` as a ``dtype`` (n, d) array, or raise ValueError naming the problem.

    Values must be finite and within float32's range (|x| <= 3.4e38), the dtype models
    compute in; ``dtype=np.float64`` keeps full precision for preprocessing.
    """
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} is not numeric: {err}") from None
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (rows, features), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    check_values(arr, name)
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{name} has {arr.shape[1]} columns but the model expects {dim}")
    check_rows(arr.shape[0], min_rows, name)
    return arr.astype(dtype)


def check_rows(n_rows: int, n_components: int, name: str = "data") -> None:
    """ValueError unless there is at least one row per component."""
    if n_rows < n_components:
        raise ValueError(f"{name} has {n_rows} rows, fewer than the {n_components} "
                         "components: need at least one point per component")


def held_out(n_rows: int, val_fraction: float) -> int:
    """Rows a validation split of ``val_fraction`` holds out: at least one, 0 without one."""
    return max(1, int(round(val_fraction * n_rows))) if val_fraction else 0


def check_split(n_rows: int, n_components: int, val_fraction: float, name: str = "data") -> None:
    """ValueError unless a validation split of ``val_fraction`` leaves a row per component.

    The split holds ``held_out(n_rows, val_fraction)`` rows out (as ``train.fit``).
    """
    if not val_fraction:
        return
    n_val = held_out(n_rows, val_fraction)
    if n_rows - n_val < n_components:
        raise ValueError(f"{name} has {n_rows} rows; a validation fraction of {val_fraction} "
                         f"holds out {n_val}, leaving {n_rows - n_val} to train "
                         f"{n_components} components: need at least one training row per "
                         "component (lower the validation fraction or add rows)")


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
