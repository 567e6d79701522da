"""Reading the CLI's data files: ``.csv`` (also ``.tsv``), ``.npy`` and ``.npz``.

Inputs may also be gzip-compressed (``.csv.gz``, ``.tsv.gz``, ``.npy.gz``) or CSV text on
stdin (the path ``-``, named ``<stdin>`` in messages). What is read from stdin or
decompressed (also a compressed ``.npz`` member) is capped at ``MAX_STREAM_BYTES`` (a gzip
bomb stops there), and a ``.npy``/``.npy.gz`` header is checked against what the file can
hold before anything is allocated. CSV text is parsed as a stream, row by row, into a flat
array: memory about twice the parsed numbers, whatever the text's size.

Numpy only (no JAX), so every input problem is found before any model is built. Every
problem is a :class:`DataError` (a ``ValueError``) whose message names the file and, where
it applies, the line/row and column.

CSV rules: comma-separated (or ``;`` or tabs, as the first row shows; ``.tsv``: tabs); LF,
CRLF or CR line endings; blank lines are skipped; the first row is a header when any of its
cells holds text (not a number, blank or ``MISSING``); after it, every row must have the
same number of cells and every cell of a data column must be a number as written in ASCII
(``1e3``, ``-0.5``; not ``1_000`` nor full-width digits, which Python's ``float`` would
take). ``columns`` chooses the data columns (header names or 0-based indices, in the order
given); the cells of the other columns are never read, so a table may carry text columns
(names, categories) beside its numbers; without ``columns``, a first column whose header
cell alone is blank holds row names (R's ``write.csv``, pandas' ``to_csv``) and a last one
under a blank header cell follows a separator ending each line: neither is read. With
``drop_incomplete`` a row with a missing data cell (blank, ``NA``, ``NaN``, ``N/A``,
``null``; in arrays NaN) is left out instead of refused. A label column may also hold
blanks, read as -1 = unlabelled; in a label file a blank line is such a blank cell. Labels
are integers (component indices, -1 unlabelled) or, when any label cell is not a number,
class names (``Table.classes``, sorted; ``-1`` and blank still unlabelled).
Positions in CSV messages are the file's line numbers (1-based, header included) and 1-based
column numbers; in ``.npy``/``.npz`` messages they are 0-based array indices.

The bounded reading of files and streams lives in ``vmonf_jax.files.streams``; writing
outputs in ``vmonf_jax.files.outputs``.
"""

import array
import hashlib
import itertools
import os
from dataclasses import dataclass

import numpy as np

from vmonf_jax.files.cells import (
    MISSING,
    LabelCells,
    as_labels,
    cell_name,
    chosen_columns,
    column_index,
    floats,
    is_number,
    not_a_number,
    unnamed,
)
from vmonf_jax.files.streams import STDIN, DataError, check_readable, csv_rows, load_array
from vmonf_jax.validation import first_bad_value

FORMATS = (".csv", ".npy", ".npz")
"""Formats of plain data files, read and written."""
TEXT_FORMATS = (".csv", ".csv.gz", ".tsv", ".tsv.gz")
"""Formats read as CSV text (``.tsv``: tab-separated)."""
INPUT_FORMATS = FORMATS + (".csv.gz", ".npy.gz", ".tsv", ".tsv.gz")
"""Formats read (``read_data``, ``read_labels``); ``-`` is CSV on stdin."""


@dataclass
class Table:
    """Data read from a file.

    ``X`` float64 (n, d); ``labels`` (n,) int64 codes in [-1, C) or None; ``columns`` the
    header names of ``X``'s columns (None without a header); ``classes`` the class names the
    codes index (None: the labels are component indices); ``kept`` which of the file's rows
    ``X`` holds when ``drop_incomplete`` left some out (else None), ``first_dropped`` the
    first one's place (a line, or a row); ``unnamed`` the CSV columns under a blank header
    cell left out as no data (``cells.unnamed``, when no columns are chosen: row names first,
    a trailing separator's column last).
    """

    X: np.ndarray
    labels: np.ndarray | None = None
    columns: list[str] | None = None
    classes: list[str] | None = None
    kept: np.ndarray | None = None
    first_dropped: str | None = None
    unnamed: tuple = ()

    @property
    def dropped(self) -> int:
        """Rows of the file left out (``drop_incomplete``)."""
        return 0 if self.kept is None else int((~self.kept).sum())


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
def read_data(path, *, key=None, label_column=None, columns=None, names=None,
              drop_incomplete=False) -> Table:
    """Read a data table; ``label_column`` (CSV header name or integer index) is split off.

    Args:
        path: ``.csv``, ``.tsv``, ``.npy``, ``.npz``, any of them but ``.npz`` gzipped
            (``.csv.gz``), or ``-`` (CSV on stdin).
        key: the array of a ``.npz`` file holding several.
        label_column: the column holding labels (header name or 0-based index), or None.
        columns: the data columns, header names or 0-based indices (strings or ints), in
            this order; None: every column but the label column.
        names: the columns a model was fitted on: taken by name, in this order, when the
            file has a CSV header (a name it lacks is an error); ignored without a header or
            when ``columns`` is given.
        drop_incomplete: leave out rows with a missing data cell (``MISSING``; NaN in an
            array) instead of refusing them (``Table.kept`` says which rows stay).

    Raises:
        DataError: missing/unreadable file, non-numeric or empty cells, ragged rows, NaN or
            inf (with row and column), empty data, an array that is not 1-D or 2-D, more
            than ``MAX_STREAM_BYTES`` from stdin or a ``.gz`` file, a column that is not
            there or is chosen twice.
    """
    ext, name = _input_format(path, "data file")
    if ext in TEXT_FORMATS:
        with csv_rows(path, name) as rows:
            return _read_csv_table(name, rows, label_column, columns, names, drop_incomplete)
    arr = load_array(path, ext, key)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise DataError(f"{path}: data must be a 2-D array (rows, columns), got shape "
                        f"{arr.shape}")
    labels = None
    j = None if label_column is None else column_index(path, label_column, None, arr.shape[1])
    if j is not None:
        labels = arr[:, j]
    chosen = chosen_columns(path, columns, None, arr.shape[1], j)
    if chosen != list(range(arr.shape[1])):
        arr = arr[:, chosen]
    # a memory map stays one (VMoNF.fit reads it a chunk at a time); checks go by blocks
    X = arr if isinstance(arr, np.memmap) and arr.dtype.kind in "iuf" else _as_float(path, arr)
    kept, first = None, None
    if drop_incomplete:
        gaps = np.isnan(X).any(axis=1)
        if gaps.all():
            raise DataError(f"{path}: every row ({len(X)}) has a missing value (NaN)")
        if gaps.any():
            kept, first = ~gaps, f"row {int(np.argmax(gaps))}"
            X = X[kept]
            labels = None if labels is None else labels[kept]
    _check_table(path, X, csv_lines=None)
    codes, classes = (None, None) if labels is None else as_labels(path, labels)
    return Table(X, codes, None, classes, kept, first)


def read_labels(path, *, key=None) -> Table:
    """Read one label per row, in the formats of ``read_data``: ``Table(labels, classes)``.

    A CSV label file has one column, an optional header, and blank cells meaning -1: in
    it a blank line is a blank cell (blank lines at the end of the file are ignored). Its
    labels may be class names (the module docstring), and so may an array of strings.
    """
    ext, name = _input_format(path, "label file")
    if ext in TEXT_FORMATS:
        with csv_rows(path, name, keep_blank=True) as rows:
            return _read_csv_labels(name, rows)
    arr = load_array(path, ext, key, kinds="biufU")
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise DataError(f"{path}: labels must be a 1-D array, got shape {arr.shape}")
    codes, classes = as_labels(path, arr)
    return Table(np.zeros((len(arr), 0)), codes, classes=classes)


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


def _header(rows):
    """``(header or None, first data row or None)`` of an iterator of ``(line, cells)``.

    The first row is a header when a cell holds text: neither a number nor a missing value
    (``MISSING``, blank included), so a first data row with a gap stays data.
    """
    first = next(rows, None)
    if first is not None and not all(is_number(c) or c.lower() in MISSING for c in first[1]):
        return first[1], next(rows, None)
    return None, first


def _read_csv_labels(path, rows):
    header, first = _header(rows)
    width = len(header) if header is not None else len(first[1]) if first else 0
    if width != 1:
        raise DataError(f"{path}: a label file must have exactly one column, got {width}")
    cells, lines = LabelCells(path, "column 1"), array.array("q")
    for line, row in itertools.chain([first] if first else [], rows):
        if len(row) != 1:
            raise DataError(f"{path}: line {line} has {len(row)} columns, expected 1")
        cells.add(row[0])
        lines.append(line)
    codes, classes = cells.coded(lines)
    return Table(np.zeros((len(codes), 0)), codes, None, classes)


def _read_csv_table(path, rows, label_column, columns, names, drop_incomplete):
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
        j = column_index(path, label_column, header, width)
        if width == 1:
            raise DataError(f"{path}: no data columns besides the label column")
    if columns is None and names is not None and header is not None:
        have = set(header)
        missing = next((c for c in names if c not in have), None)
        if missing is not None:
            raise DataError(f"{path}: no column named {missing!r}, which the model was "
                            f"fitted on (its columns: {', '.join(names)[:2000]}); choose "
                            "DATA's columns with --columns")
        columns = names
    chosen = chosen_columns(path, columns, header, width, j)
    skip = [k for k in unnamed(header) if k in chosen] if columns is None else []
    if len(skip) == len(chosen):  # nothing else to read: they are the data
        skip = []
    chosen = [k for k in chosen if k not in skip]  # row names, a trailing separator's column
    every = chosen == list(range(width))
    values, lines = array.array("d"), array.array("q")
    labels = None if j is None else LabelCells(path, cell_name(header, j))
    kept, first_dropped = array.array("b"), None
    for line, cells in itertools.chain([first], rows):
        if len(cells) != width:
            raise DataError(f"{path}: line {line} has {len(cells)} columns, expected {width} "
                            "(ragged rows)")
        data = cells if every else [cells[k] for k in chosen]
        gap = drop_incomplete and any(c.lower() in MISSING for c in data)
        kept.append(not gap)
        if gap:
            first_dropped = first_dropped or f"line {line}"
            continue
        v = floats(data)
        if v is None:
            k = next(k for k, c in enumerate(data) if not is_number(c))
            last = header is None and chosen[k] == width - 1
            raise DataError(f"{path}: line {line}, {cell_name(header, chosen[k])}: "
                            f"{not_a_number(data[k], columns is not None, last)}")
        if j is not None:
            labels.add(cells[j])
        values.extend(v)
        lines.append(line)
    if not lines:
        raise DataError(f"{path}: every row ({len(kept)}) has a missing cell")
    X = np.frombuffer(values, np.float64).reshape(len(lines), len(chosen))
    codes, classes = (None, None) if j is None else labels.coded(lines)
    header = None if header is None else [header[k] for k in chosen]
    _check_table(path, X, csv_lines=lines, header=header)
    kept = np.frombuffer(kept, np.int8).astype(bool)
    return Table(X, codes, header, classes, None if kept.all() else kept, first_dropped,
                 tuple(skip))


def _check_table(path, X, csv_lines, header=None):
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise DataError(f"{path}: empty data (shape {X.shape})")
    found = first_bad_value(X)
    if found is not None:
        i, j, what, count = found
        where = (f"row {i}, column {j}" if csv_lines is None
                 else f"line {csv_lines[i]}, {cell_name(header, j)}")
        hint = " (--drop-incomplete leaves such rows out)" if np.isnan(X[i, j]) else ""
        raise DataError(f"{path}: {where}: {what} {X[i, j]:.6g} ({count} such values in "
                        f"all){hint}")
