"""Reading the CLI's data files: ``.csv``, ``.npy`` and ``.npz``.

Inputs may also be gzip-compressed (``.csv.gz``, ``.npy.gz``) or CSV text on stdin (the
path ``-``, named ``<stdin>`` in messages). What is read from stdin or decompressed (also a
compressed ``.npz`` member) is capped at ``MAX_STREAM_BYTES`` (a gzip bomb stops there), and
a ``.npy``/``.npy.gz`` header is checked against what the file can hold before anything is
allocated. CSV text is parsed as a stream, row by row, into a flat array: memory about
twice the parsed numbers, whatever the text's size.

Numpy only (no JAX), so every input problem is found before any model is built. Every
problem is a :class:`DataError` (a ``ValueError``) whose message names the file and, where
it applies, the line/row and column.

CSV rules: comma-separated; LF, CRLF or CR line endings; blank lines are skipped; the first
row is a header when any of its cells is not a number; after it, every row must have the
same number of cells and every cell must be a number as written in ASCII (``1e3``,
``-0.5``; not ``1_000`` nor full-width digits, which Python's ``float`` would take). A label
column may also hold blanks, read as -1 = unlabelled; in a label file a blank line is such a
blank cell.
Positions in CSV messages are the file's line numbers (1-based, header included) and 1-based
column numbers; in ``.npy``/``.npz`` messages they are 0-based array indices.

The bounded reading of files and streams lives in ``vmonf_jax.files.streams``; writing
outputs in ``vmonf_jax.files.outputs``.
"""

import array
import hashlib
import itertools
import math
import os
from dataclasses import dataclass

import numpy as np

from vmonf_jax.files.streams import STDIN, DataError, check_readable, csv_rows, load_array
from vmonf_jax.validation import first_bad_value

FORMATS = (".csv", ".npy", ".npz")
"""Formats of plain data files, read and written."""
INPUT_FORMATS = FORMATS + (".csv.gz", ".npy.gz")
"""Formats read (``read_data``, ``read_labels``); ``-`` is CSV on stdin."""


@dataclass
class Table:
    """Data read from a file: ``X`` float64 (n, d), optional ``labels`` (n,), column names."""

    X: np.ndarray
    labels: np.ndarray | None = None
    columns: list[str] | None = None


def suffix_of(path, allowed=FORMATS, what="file") -> str:
    """Return the lower-case extension of ``path`` among ``allowed``.

    The longest match wins, so ``.csv.gz`` is recognised as such.

    Raises:
        DataError: ``path`` ends with none of ``allowed``.
    """
    name = os.path.basename(str(path)).lower()
    for ext in sorted(allowed, key=len, reverse=True):
        if name.endswith(ext) and len(name) > len(ext):
            return ext
    ext = os.path.splitext(name)[1]
    raise DataError(f"{path}: unsupported {what} type {ext or '(no extension)'!r}; "
                    f"use one of {', '.join(allowed)}")


def _input_format(path, what):
    """``(format, name in messages)`` of an input path; ``-`` is CSV on stdin."""
    if str(path) == STDIN:
        return ".csv", "<stdin>"
    ext = suffix_of(path, INPUT_FORMATS, what)
    check_readable(path)
    return ext, path


# -- reading ------------------------------------------------------------------------------
def read_data(path, *, key=None, label_column=None) -> Table:
    """Read a data table; ``label_column`` (CSV header name or integer index) is split off.

    ``path`` may be ``.csv``, ``.npy``, ``.npz``, ``.csv.gz``, ``.npy.gz`` or ``-`` (CSV on
    stdin).

    Raises:
        DataError: missing/unreadable file, non-numeric or empty cells, ragged rows, NaN or
            inf (with row and column), empty data, an array that is not 1-D or 2-D, more
            than ``MAX_STREAM_BYTES`` from stdin or a ``.gz`` file.
    """
    ext, name = _input_format(path, "data file")
    if ext in (".csv", ".csv.gz"):
        with csv_rows(path, name) as rows:
            return _read_csv_table(name, rows, label_column)
    arr = load_array(path, ext, key)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise DataError(f"{path}: data must be a 2-D array (rows, columns), got shape "
                        f"{arr.shape}")
    labels = None
    if label_column is not None:
        j = _column_index(path, label_column, None, arr.shape[1])
        labels = arr[:, j]
        arr = np.delete(arr, j, axis=1)
    # a memory map stays one (VMoNF.fit reads it a chunk at a time); checks go by blocks
    X = arr if isinstance(arr, np.memmap) and arr.dtype.kind in "iuf" else _as_float(path, arr)
    _check_table(path, X, csv_lines=None)
    return Table(X, None if labels is None else _as_labels(path, labels), None)


def read_labels(path, *, key=None) -> np.ndarray:
    """Read one label per row, in the formats of ``read_data``.

    A CSV label file has one column, an optional header, and blank cells meaning -1: in
    it a blank line is a blank cell (blank lines at the end of the file are ignored).
    """
    ext, name = _input_format(path, "label file")
    if ext in (".csv", ".csv.gz"):
        with csv_rows(path, name, keep_blank=True) as rows:
            return _read_csv_labels(name, rows)
    arr = load_array(path, ext, key)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise DataError(f"{path}: labels must be a 1-D array, got shape {arr.shape}")
    return _as_labels(path, arr)


def fingerprint(*arrays) -> str:
    """SHA-256 of the arrays' shapes, dtypes and bytes (None entries count as absent)."""
    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            h.update(b"none")
            continue
        a = np.asarray(a)  # hashed a block of rows at a time: a memory map is not read whole
        h.update(f"{a.shape}{a.dtype}".encode())
        rows = np.atleast_1d(a)
        for start in range(0, max(len(rows), 1), 65536):
            h.update(np.ascontiguousarray(rows[start : start + 65536]).tobytes())
    return h.hexdigest()


def _as_float(path, arr):
    return np.asarray(arr, dtype=np.float64)


def _as_labels(path, arr):
    arr = np.asarray(arr)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            i = int(np.argmax(~np.isfinite(arr) | (arr != np.round(arr))))
            raise DataError(f"{path}: label {arr[i]} at row {i} is not an integer "
                            "(use -1 for unlabelled)")
        arr = arr.astype(np.int64)
    elif arr.dtype.kind not in "biu":
        raise DataError(f"{path}: labels must be integers, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def _column_index(path, spec, header, width):
    """Index of the label column: a header name, or an integer index (negative allowed)."""
    spec = str(spec)
    if header is not None and spec in header:
        return header.index(spec)
    try:
        j = int(spec)
    except ValueError:
        names = ", ".join(header) if header else "no header; give a 0-based column index"
        raise DataError(f"{path}: no column named {spec!r} ({names})") from None
    if not -width <= j < width:
        raise DataError(f"{path}: column index {j} is out of range for {width} columns")
    return j % width


def _is_number(cell):
    """A number as written in a CSV file: ASCII, no ``_`` separators (``float`` takes both)."""
    if not cell.isascii() or "_" in cell:
        return False
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _floats(cells):
    """The cells as floats, or None if one is not a number (see ``_is_number``)."""
    joined = "".join(cells)
    if not joined.isascii() or "_" in joined:
        return None
    try:
        return [float(c) for c in cells]
    except ValueError:
        return None


def _cell_name(header, j):
    return f"column {j + 1}" + (f" ({header[j]!r})" if header else "")


def _label(path, c, line, where):
    """A label cell as an int (blank: -1), or a DataError naming its place."""
    if c == "":
        return -1
    v = _floats([c])
    if v is None or not math.isfinite(v[0]) or v[0] != round(v[0]):
        raise DataError(f"{path}: line {line}, {where}: label {c!r} is not an integer (use "
                        "-1 or leave blank for unlabelled)")
    return int(v[0])


def _header(rows):
    """``(header or None, first data row or None)`` of an iterator of ``(line, cells)``."""
    first = next(rows, None)
    if first is not None and not all(_is_number(c) for c in first[1]):
        return first[1], next(rows, None)
    return None, first


def _read_csv_labels(path, rows):
    header, first = _header(rows)
    width = len(header) if header is not None else len(first[1]) if first else 0
    if width != 1:
        raise DataError(f"{path}: a label file must have exactly one column, got {width}")
    out = array.array("q")
    for line, cells in itertools.chain([first] if first else [], rows):
        if len(cells) != 1:
            raise DataError(f"{path}: line {line} has {len(cells)} columns, expected 1")
        out.append(_label(path, cells[0], line, "column 1"))
    return np.frombuffer(out, np.int64) if out else np.zeros(0, np.int64)


def _read_csv_table(path, rows, label_column):
    """Stream the CSV rows into a float64 table (labels split off; see the module docstring).

    Values go straight into a flat ``array``: memory about that of the parsed numbers (and
    one line number per row, for messages).
    """
    header, first = _header(rows)
    if first is None:
        raise DataError(f"{path}: no data rows" + (" (only a header)" if header else ""))
    width = len(header) if header is not None else len(first[1])
    j = None
    if label_column is not None:
        j = _column_index(path, label_column, header, width)
        if width == 1:
            raise DataError(f"{path}: no data columns besides the label column")
    values, lines, labels = array.array("d"), array.array("q"), array.array("q")
    for line, cells in itertools.chain([first], rows):
        if len(cells) != width:
            raise DataError(f"{path}: line {line} has {len(cells)} columns, expected {width} "
                            "(ragged rows)")
        if j is not None:
            labels.append(_label(path, cells[j], line, _cell_name(header, j)))
            cells = cells[:j] + cells[j + 1:]
        v = _floats(cells)
        if v is None:
            names = header if j is None or header is None else header[:j] + header[j + 1:]
            k = next(k for k, c in enumerate(cells) if not _is_number(c))
            what = "empty cell" if cells[k] == "" else f"{cells[k]!r} is not a number"
            raise DataError(f"{path}: line {line}, {_cell_name(names, k)}: {what}")
        values.extend(v)
        lines.append(line)
    if header is not None and j is not None:
        header = header[:j] + header[j + 1:]
    X = np.frombuffer(values, np.float64).reshape(len(lines), -1)
    _check_table(path, X, csv_lines=lines, header=header)
    return Table(X, None if j is None else np.frombuffer(labels, np.int64), header)


def _check_table(path, X, csv_lines, header=None):
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise DataError(f"{path}: empty data (shape {X.shape})")
    found = first_bad_value(X)
    if found is not None:
        i, j, what, count = found
        where = (f"row {i}, column {j}" if csv_lines is None
                 else f"line {csv_lines[i]}, {_cell_name(header, j)}")
        raise DataError(f"{path}: {where}: {what} {X[i, j]:.6g} ({count} such values in all)")
