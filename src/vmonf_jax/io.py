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

Writing outputs lives in ``vmonf_jax.outputs``.
"""

import array
import contextlib
import csv
import gzip
import hashlib
import io
import itertools
import math
import os
import stat
import sys
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np

from vmonf_jax.validation import first_bad_value

FORMATS = (".csv", ".npy", ".npz")
"""Formats of plain data files, read and written."""
INPUT_FORMATS = FORMATS + (".csv.gz", ".npy.gz")
"""Formats read (``read_data``, ``read_labels``); ``-`` is CSV on stdin."""
STDIN = "-"
MAX_STREAM_BYTES = 2**30
"""Most bytes read from stdin or decompressed from one ``.gz`` file (1 GiB)."""
_PIECE = 2**20  # bytes per read of a stream: nothing large is allocated before it arrives


class DataError(ValueError):
    """Bad input file: the message says which file and what is wrong."""


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
    _check_readable(path)
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
        with _csv_rows(path, name) as rows:
            return _read_csv_table(name, rows, label_column)
    arr = _load_array(path, ext, key)
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
        with _csv_rows(path, name, keep_blank=True) as rows:
            return _read_csv_labels(name, rows)
    arr = _load_array(path, ext, key)
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


def _check_readable(path):
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    if os.path.isdir(path):
        raise DataError(f"{path}: is a directory, not a data file")
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise DataError(f"{path}: not a regular file (a pipe or device is not read)")
    if not os.access(path, os.R_OK):
        raise DataError(f"{path}: permission denied")


def _load_array(path, ext, key):
    try:
        if ext != ".npz" and key is not None:
            raise DataError(f"{path}: --key applies to .npz files only")
        if ext == ".npy":
            with open(path, "rb") as f:
                _check_npy_header(path, f, os.fstat(f.fileno()).st_size)
            arr = np.load(path, mmap_mode="r", allow_pickle=False)  # read as it is used
        elif ext == ".npy.gz":
            arr = _load_npy_gz(path)
        else:
            with np.load(path, allow_pickle=False) as z:
                names = list(z.files)
                if key is None:
                    if len(names) != 1:
                        raise DataError(f"{path}: holds {len(names)} arrays "
                                        f"({', '.join(names) or 'none'}); choose one with --key")
                    key = names[0]
                elif key not in names:
                    raise DataError(f"{path}: no array named {key!r}; it holds "
                                    f"{', '.join(names) or 'none'}")
                info = z.zip.getinfo(key if key in z.zip.namelist() else key + ".npy")
                if info.compress_type != zipfile.ZIP_STORED and (
                        info.file_size > MAX_STREAM_BYTES):
                    raise DataError(f"{path}[{key}]: a compressed member of "
                                    f"{info.file_size} bytes, more than the limit of "
                                    f"{MAX_STREAM_BYTES} for compressed input; save it "
                                    "uncompressed (np.savez)")
                with z.zip.open(info) as f:
                    _check_npy_header(f"{path}[{key}]", f, info.file_size)
                arr = z[key]
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise DataError(f"{path}: cannot read as {ext}: {err}") from None
    return arr


def _load_npy_gz(path):
    """Load a ``.npy.gz`` array without trusting its size.

    Its header is read and checked first, then exactly the bytes it claims (at most
    ``MAX_STREAM_BYTES``) are decompressed.
    """
    with gzip.open(path, "rb") as f:
        need = _check_npy_header(path, f, MAX_STREAM_BYTES, "a .gz file may decompress to")
        f.seek(0)
        raw = _read_upto(f, need)
    if len(raw) < need:
        raise DataError(f"{path}: its header claims {need} bytes but it decompresses to "
                        f"{len(raw)}: truncated or damaged")
    return np.load(io.BytesIO(raw), allow_pickle=False)


def _check_npy_header(name, f, size, holds="the file holds"):
    """Read and check the ``.npy`` header at the start of ``f``.

    It must give a numeric dtype and an array that the ``size`` bytes of the file can hold
    (checked before anything is allocated).

    Returns:
        The bytes the header implies (header and data).
    """
    version = np.lib.format.read_magic(f)
    if version not in ((1, 0), (2, 0)):
        raise DataError(f"{name}: unsupported .npy format version {version}")
    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
            else np.lib.format.read_array_header_2_0)
    shape, _, dtype = read(f)
    if dtype.kind not in "biuf":
        raise DataError(f"{name}: array must be numeric, got dtype {dtype}")
    need = f.tell() + math.prod(shape) * dtype.itemsize
    if need > size:
        raise DataError(f"{name}: its header claims shape {shape} ({need} bytes) but {holds} "
                        f"{size} bytes: truncated or damaged")
    return need


def _read_upto(f, limit):
    """Up to ``limit`` bytes (or characters) of ``f``, read piece by piece."""
    parts, total = [], 0
    while total < limit and (part := f.read(min(_PIECE, limit - total))):
        parts.append(part)
        total += len(part)
    return parts[0][:0].join(parts) if parts else b""


class _Capped(io.RawIOBase):
    """A binary stream that raises a DataError once more than ``limit`` bytes are read."""

    def __init__(self, f, name, limit):
        self.f, self.name, self.left = f, name, limit

    def readable(self):
        return True

    def readinto(self, b):
        data = self.f.read(min(len(b), self.left + 1))
        if len(data) > self.left:
            raise DataError(f"{self.name}: more than {MAX_STREAM_BYTES} bytes to read, the "
                            "limit for stdin and .gz input; use an uncompressed file")
        self.left -= len(data)
        b[:len(data)] = data
        return len(data)


@contextlib.contextmanager
def _csv_rows(path, name, keep_blank=False):
    """The rows of a CSV file, ``.csv.gz`` or stdin (``-``), read as a stream.

    Yields an iterator of ``(line, cells)``: the 1-based line number and the stripped cells
    of each row; blank rows are skipped (or, with ``keep_blank``, yielded as ``[""]``
    except at the end). Nothing but the current row is held, so memory stays that of the
    parsed numbers. Line endings may be LF, CRLF or CR.
    """
    with contextlib.ExitStack() as stack:
        try:
            if str(path) == STDIN:
                raw = getattr(sys.stdin, "buffer", None)
                text = sys.stdin if raw is None else None
            elif str(path).lower().endswith(".gz"):
                raw = stack.enter_context(gzip.open(path, "rb"))
            else:
                raw, text = stack.enter_context(open(path, "rb")), None
            if raw is not None:
                if str(path) == STDIN or str(path).lower().endswith(".gz"):
                    raw = io.BufferedReader(_Capped(raw, name, MAX_STREAM_BYTES), _PIECE)
                text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        except OSError as err:
            raise DataError(f"{name}: cannot read: {err.strerror or err}") from None
        try:
            yield _rows(name, text, keep_blank)
        except OSError as err:
            raise DataError(f"{name}: cannot read: {err.strerror or err}") from None
        except (EOFError, zlib.error, gzip.BadGzipFile) as err:  # a damaged .gz file
            raise DataError(f"{name}: cannot read: {err}") from None
        except UnicodeDecodeError:
            raise DataError(f"{name}: not a text CSV file (cannot decode as UTF-8)") from None


def _rows(name, text, keep_blank):
    def lines():
        for line in text:
            if "\0" in line:
                raise DataError(f"{name}: not a text CSV file (contains NUL bytes)")
            yield line

    reader = csv.reader(lines())
    blank = []  # line numbers of blank rows not yet known to be followed by data
    try:
        for cells in reader:
            if not cells or all(not c.strip() for c in cells):
                if keep_blank:
                    blank.append(reader.line_num)
                continue
            for line in blank:
                yield line, [""]
            blank = []
            yield reader.line_num, [c.strip() for c in cells]
    except csv.Error as err:
        raise DataError(f"{name}: line {reader.line_num}: malformed CSV: {err}") from None


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
