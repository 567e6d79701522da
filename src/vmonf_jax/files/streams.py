"""Bounded reading of the CLI's input files and streams: nothing is trusted to be small.

What is read from stdin (the path ``-``, named ``<stdin>`` in messages) or decompressed
(``.gz``, also a compressed ``.npz`` member) is capped at ``MAX_STREAM_BYTES`` (a gzip bomb
stops there), and a ``.npy``/``.npy.gz`` header is checked against what the file can hold
before anything is allocated. CSV text is read as a stream, row by row (:func:`csv_rows`).
Every problem is a :class:`DataError`. What the rows mean (header, labels, numbers) is
:mod:`vmonf_jax.files.io`'s.
"""

import contextlib
import csv
import gzip
import io
import itertools
import math
import os
import re
import stat
import sys
import zipfile
import zlib

import numpy as np

STDIN = "-"
MAX_STREAM_BYTES = 2**30
"""Most bytes read from stdin or decompressed from one ``.gz`` file (1 GiB)."""
SEPARATORS = (",", ";", "\t")
"""Cell separators a CSV file may use; the first row decides (:func:`csv_rows`)."""
_PIECE = 2**20  # bytes per read of a stream: nothing large is allocated before it arrives


class DataError(ValueError):
    """Bad input file: the message says which file and what is wrong."""


def check_readable(path):
    """Raise a DataError unless ``path`` is an existing, readable regular file."""
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    if os.path.isdir(path):
        raise DataError(f"{path}: is a directory, not a data file")
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise DataError(f"{path}: not a regular file (a pipe or device is not read)")
    if not os.access(path, os.R_OK):
        raise DataError(f"{path}: permission denied")


def load_array(path, ext, key, kinds="biuf"):
    """The array in ``path``: a ``.npy`` memory map, a capped ``.npy.gz`` or an ``.npz`` member.

    ``kinds``: the dtype kinds accepted (numbers; labels also take strings, ``"U"``).
    """
    try:
        if ext != ".npz" and key is not None:
            raise DataError(f"{path}: --key applies to .npz files only")
        if ext == ".npy":
            with open(path, "rb") as f:
                _check_npy_header(path, f, os.fstat(f.fileno()).st_size, kinds=kinds)
            arr = np.load(path, mmap_mode="r", allow_pickle=False)  # read as it is used
        elif ext == ".npy.gz":
            arr = _load_npy_gz(path, kinds)
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
                    _check_npy_header(f"{path}[{key}]", f, info.file_size, kinds=kinds)
                arr = z[key]
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise DataError(f"{path}: cannot read as {ext}: {err}") from None
    return arr


def _load_npy_gz(path, kinds):
    """Load a ``.npy.gz`` array without trusting its size.

    Its header is read and checked first, then exactly the bytes it claims (at most
    ``MAX_STREAM_BYTES``) are decompressed.
    """
    with gzip.open(path, "rb") as f:
        need = _check_npy_header(path, f, MAX_STREAM_BYTES, "a .gz file may decompress to",
                                 kinds)
        f.seek(0)
        raw = _read_upto(f, need)
    if len(raw) < need:
        raise DataError(f"{path}: its header claims {need} bytes but it decompresses to "
                        f"{len(raw)}: truncated or damaged")
    return np.load(io.BytesIO(raw), allow_pickle=False)


def _check_npy_header(name, f, size, holds="the file holds", kinds="biuf"):
    """Read and check the ``.npy`` header at the start of ``f``.

    It must give a dtype of ``kinds`` (numeric by default) and an array that the ``size``
    bytes of the file can hold (checked before anything is allocated).

    Returns:
        The bytes the header implies (header and data).
    """
    version = np.lib.format.read_magic(f)
    if version not in ((1, 0), (2, 0)):
        raise DataError(f"{name}: unsupported .npy format version {version}")
    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
            else np.lib.format.read_array_header_2_0)
    shape, _, dtype = read(f)
    if dtype.kind not in kinds:
        what = "numeric" if kinds == "biuf" else "numbers or strings"
        raise DataError(f"{name}: array must be {what}, got dtype {dtype}")
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
def csv_rows(path, name, keep_blank=False):
    """The rows of a CSV or TSV file, gzipped or not, or of stdin (``-``), read as a stream.

    Yields an iterator of ``(line, cells)``: the 1-based line number and the stripped cells
    of each row; blank rows are skipped (or, with ``keep_blank``, yielded as ``[""]``
    except at the end). Nothing but the current row is held, so memory stays that of the
    parsed numbers. Line endings may be LF, CRLF or CR. The text is UTF-8 (a byte-order mark
    skipped), or UTF-16 after its byte-order mark. Cells are separated by tabs in a
    ``.tsv`` file, else by the commonest of ``SEPARATORS`` in the first row that is not
    blank (ties go to the comma): spreadsheets in many locales save ``;``-separated CSV.
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
            if raw is not None and (str(path) == STDIN or str(path).lower().endswith(".gz")):
                raw = io.BufferedReader(_Capped(raw, name, MAX_STREAM_BYTES), _PIECE)
        except OSError as err:
            raise DataError(f"{name}: cannot read: {err.strerror or err}") from None
        tab = str(path).lower().endswith((".tsv", ".tsv.gz"))
        try:
            if raw is not None:
                text = io.TextIOWrapper(raw, encoding=_encoding(raw), newline="")
            yield _rows(name, text, keep_blank, tab)
        except OSError as err:
            raise DataError(f"{name}: cannot read: {err.strerror or err}") from None
        except (EOFError, zlib.error, gzip.BadGzipFile) as err:  # a damaged .gz file
            raise DataError(f"{name}: cannot read: {err}") from None
        except UnicodeDecodeError:
            raise DataError(f"{name}: not a text CSV file (cannot decode it as UTF-8, nor as "
                            "UTF-16 with a byte-order mark)") from None


def _encoding(raw) -> str:
    """UTF-16 after its byte-order mark (spreadsheets' "Unicode text"), else UTF-8."""
    return "utf-16" if raw.peek(2)[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"


def separator(line) -> str:
    """The commonest of ``SEPARATORS`` in ``line``, quoted cells aside; ties go to the comma."""
    bare = re.sub(r'"[^"]*"', "", line)
    return max(SEPARATORS, key=bare.count)


def _rows(name, text, keep_blank, tab):
    def lines():
        for line in text:
            if "\0" in line:
                raise DataError(f"{name}: not a text CSV file (contains NUL bytes)")
            yield line

    source, first = lines(), []
    for line in source:  # up to the first row that is not blank, to choose the separator
        first.append(line)
        if line.strip():
            break
    sep = "\t" if tab else separator(first[-1] if first else "")
    reader = csv.reader(itertools.chain(first, source), delimiter=sep)
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
