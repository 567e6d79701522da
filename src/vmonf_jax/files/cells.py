"""What the cells of a data file mean: numbers, labels, and the columns chosen.

Shared by ``files.io``'s readers of CSV files and arrays. Numpy only. Positions in messages
follow ``files.io``: CSV lines and columns 1-based, with the header's names.
"""

import array
import math
import re

import numpy as np

from vmonf_jax.files.streams import SEPARATORS, DataError

MAX_LABELS = 4096
"""Distinct label cells a label column may hold: far more than a mixture has components
(a column of more is not labels of a mixture; read as they come, it stops there)."""
MISSING = frozenset({"", "na", "nan", "n/a", "null"})
"""CSV cells (lower case) that ``drop_incomplete`` reads as a missing value."""


def as_labels(path, arr):
    """An array's labels as ``(codes, classes)``, or a DataError naming a bad one.

    Integers (integer-valued floats too) are the codes (``classes`` None); an array of
    strings is read as a CSV's label cells (``LabelCells``: class names, or numbers).
    """
    arr = np.asarray(arr)
    if arr.dtype.kind == "U":
        cells = LabelCells(path, "labels", place="row")
        for c in arr.tolist():
            cells.add(c.strip())
        return cells.coded(range(len(arr)))
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            i = int(np.argmax(~np.isfinite(arr) | (arr != np.round(arr))))
            raise DataError(f"{path}: label {arr[i]} at row {i} is not an integer "
                            "(use -1 for unlabelled)")
        arr = arr.astype(np.int64)
    elif arr.dtype.kind not in "biu":
        raise DataError(f"{path}: labels must be integers or strings, got dtype {arr.dtype}")
    return arr.astype(np.int64), None


def column_index(path, spec, header, width, where=None):
    """Index of a column: a header name, or an integer index (negative allowed).

    ``where``: the header's names mapped to their indices (``_positions``), when many
    columns are looked up in one header.
    """
    spec = str(spec)
    where = _positions(header) if where is None else where
    if spec in where:
        if where[spec] is None:
            raise DataError(f"{path}: the header names {header.count(spec)} columns "
                            f"{spec!r}; choose one by its 0-based index")
        return where[spec]
    try:
        j = int(spec)
    except ValueError:
        names = ", ".join(header) if header else "no header; give a 0-based column index"
        raise DataError(f"{path}: no column named {spec!r} ({names[:2000]})") from None
    if not -width <= j < width:
        raise DataError(f"{path}: column index {j} is out of range for {width} columns")
    return j % width


def _positions(header) -> dict:
    """Each header name's column index (None for a name the header holds twice)."""
    where = {}
    for j, name in enumerate(header or ()):
        where[name] = None if name in where else j
    return where


def unnamed(header) -> list[int]:
    """The columns under a blank header cell that are not data: ``[first, last]`` or fewer.

    The last, when its header cell is blank: each line ends with a separator. The first,
    when its header cell alone is blank (the last's aside): row names, as R's ``write.csv``
    and pandas' ``to_csv`` write tables by default (row numbers, or names such as mtcars'
    cars), which read as data would be a column of row numbers.
    """
    if header is None or len(header) < 2:
        return []
    trailing = [len(header) - 1] if header[-1] == "" else []
    named = header[1:len(header) - len(trailing)]
    return ([0] if header[0] == "" and named and all(named) else []) + trailing


def chosen_columns(path, columns, header, width, label):
    """0-based indices of the data columns (``read_data``'s ``columns``), in order."""
    if columns is None:
        return [j for j in range(width) if j != label]
    where = _positions(header)
    chosen = [column_index(path, c, header, width, where) for c in columns]
    if not chosen:
        raise DataError(f"{path}: no data columns chosen")
    seen = set()
    for j in chosen:
        what = cell_name(header, j)
        if j == label:
            raise DataError(f"{path}: {what} is the label column; it cannot also be data")
        if j in seen:
            raise DataError(f"{path}: {what} is chosen twice")
        seen.add(j)
    return chosen


def is_number(cell):
    """A number as written in a CSV file: ASCII, no ``_`` separators (``float`` takes both)."""
    if not cell.isascii() or "_" in cell:
        return False
    try:
        float(cell)
    except ValueError:
        return False
    return True


def floats(cells):
    """The cells as floats, or None if one is not a number (see ``is_number``)."""
    joined = "".join(cells)
    if not joined.isascii() or "_" in joined:
        return None
    try:
        return [float(c) for c in cells]
    except ValueError:
        return None


def not_a_number(cell, columns_chosen, last=False) -> str:
    """Why ``cell`` is refused as a number, with the way out a user most likely needs.

    ``last``: the cell is in the last column of a file without a header, where an empty
    cell may come from a separator that ends each line.
    """
    if cell == "":
        return "empty cell (--drop-incomplete leaves such rows out" + (
            "; if each line ends with a separator, --columns chooses the others)" if last
            else ")")
    what = f"{cell!r} is not a number"
    if cell.lower() in MISSING:
        return what + " (--drop-incomplete leaves such rows out)"
    if re.fullmatch(r"[+-]?[\d,]*,\d+(?:[eE][+-]?\d+)?", cell):
        return what + (" (a comma in a number: write a decimal point and no thousands "
                       "separators)")
    if any(s in cell for s in SEPARATORS):
        return what + (" (rows are split at the first row's commonest separator of ',', ';' "
                       "and tab; in a .tsv file at tabs)")
    mistyped = set(cell) <= set("0123456789+-.eE_") and not re.fullmatch(r"\d+-\d+-\d+", cell)
    if not columns_chosen and not mistyped:  # a word, a date: a column that is not numbers
        return what + " (--columns chooses the numeric columns; the others are not read)"
    return what


def cell_name(header, j):
    """Column ``j`` (0-based) as messages name it: 1-based, with its header name if any."""
    return f"column {j + 1}" + (f" ({header[j]!r})" if header else "")


class LabelCells:
    """Label cells coded as they are read: one integer a row, one entry a distinct cell.

    Memory stays that of the numbers (8 bytes a row) however long the cells; more distinct
    cells than ``MAX_LABELS`` is an error as soon as it is seen.
    """

    def __init__(self, path, where, place="line"):
        self.path, self.where, self.place = path, where, place  # place: "line" or "row"
        self.distinct, self.rows = {}, array.array("q")

    def add(self, cell):
        """Code the next row's label cell."""
        code = self.distinct.setdefault(cell, len(self.distinct))
        if len(self.distinct) > MAX_LABELS:
            raise DataError(f"{self.path}: {self.where} holds more than {MAX_LABELS} "
                            "distinct labels: not the classes of a mixture's components")
        self.rows.append(code)

    def coded(self, lines):
        """``(codes, classes)``: integers (blank: -1) or class names.

        When every non-blank cell is a number they must be integers, the components'
        indices (``classes`` None); otherwise every cell but a blank or ``-1`` is a class
        name, and the codes index the sorted names. ``lines``: each row's line (or row
        index), for messages.
        """
        cells = list(self.distinct)
        rows = np.frombuffer(self.rows, np.int64) if self.rows else np.zeros(0, np.int64)
        if all(c == "" or is_number(c) for c in cells):
            value = np.full(len(cells), -1, np.int64)
            for i, c in enumerate(cells):
                v = float(c) if c else -1.0
                if not math.isfinite(v) or v != round(v):
                    line = lines[int(np.argmax(rows == i))]
                    raise DataError(f"{self.path}: {self.place} {line}, {self.where}: label "
                                    f"{c!r} is not an integer (use -1 or leave blank for "
                                    "unlabelled)")
                value[i] = int(v)
            return value[rows], None
        classes = sorted(set(cells) - {"", "-1"})
        index = {c: k for k, c in enumerate(classes)}
        return np.array([index.get(c, -1) for c in cells], np.int64)[rows], classes
