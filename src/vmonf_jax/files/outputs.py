"""Writing the CLI's outputs (``.csv``, ``.npy``, ``.npz``; CSV also to stdout), safely.

Outputs are written atomically: to a temporary file beside the target, then ``os.replace``,
so a failure never leaves a partial file. An existing output is replaced only when asked
(``check_output(overwrite=True)``), never when it is one of the inputs; a new file gets the
umask's mode, a replaced one keeps its mode.
"""

import contextlib
import json
import os
import secrets
import stat
import sys

import numpy as np

from vmonf_jax.files.io import FORMATS, suffix_of
from vmonf_jax.files.streams import STDIN, DataError


def check_output(path, allowed=FORMATS, what="output", *, overwrite=False,
                 inputs=()) -> str:
    """Validate an output path before any work; return its extension.

    Checks: a known extension, an existing parent folder, not an existing file unless
    ``overwrite``, never a non-regular file or one of ``inputs`` (compared by identity on
    disk, so links and other spellings are caught).
    """
    ext = suffix_of(path, allowed, what)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise DataError(f"{path}: folder {parent} does not exist")
    if os.path.isdir(path):
        raise DataError(f"{path}: is a directory")
    for other in inputs:
        if other is not None and _same_file(path, other):
            raise DataError(f"{path}: is an input of this command, or inside one "
                            f"({'stdin' if str(other) == STDIN else other}); refusing to "
                            "write there")
    if os.path.exists(path):
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise DataError(f"{path}: not a regular file; refusing to replace it")
        if not overwrite:
            raise DataError(f"{path}: already exists; pass --overwrite to replace it")
    return ext


def _same_file(a, b):
    """Whether ``a`` names ``b`` or a file inside the folder ``b``.

    ``b`` ``-`` is stdin: the same file when stdin is redirected from ``a`` (compared by
    device and inode).
    """
    if str(b) == STDIN:
        try:
            st, out = os.fstat(0), os.stat(a)
        except OSError:
            return False
        return stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) == (out.st_dev, out.st_ino)
    with contextlib.suppress(OSError):
        if os.path.samefile(a, b):
            return True
    real_a, real_b = os.path.realpath(a), os.path.realpath(b)
    return os.path.isdir(real_b) and real_a.startswith(real_b.rstrip(os.sep) + os.sep)


@contextlib.contextmanager
def atomic_file(path, mode="wb"):
    """Open a temporary file beside ``path``; on success it replaces ``path``, else vanishes.

    A link is written through (its target is replaced). The new file gets the umask's mode,
    or the mode of the file it replaces.
    """
    path = os.path.realpath(path)
    parent, name = os.path.split(path)
    while True:
        tmp = os.path.join(parent, f".{name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"newline": ""})) as f:
            with contextlib.suppress(FileNotFoundError):
                os.fchmod(f.fileno(), stat.S_IMODE(os.stat(path).st_mode))
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_columns(path, columns: dict, *, npy=None):
    """Write named columns (1-D arrays, or 2-D blocks) to ``path``.

    ``path`` None writes CSV to stdout. CSV: a header row (a 2-D block ``X`` becomes columns
    ``x0, x1, ...``), then one row per data row; a column of strings is quoted where CSV
    needs it. ``.npz``: one array per name (a trailing ``*`` dropped). ``.npy``: the array
    named by ``npy`` (default: the first).
    """
    ext = ".csv" if path is None else suffix_of(path)
    if ext == ".csv":
        names, blocks = [], []
        for name, a in columns.items():
            a = np.asarray(a)
            if a.dtype.kind == "U":
                a = np.array([_quoted(v) for v in a], object)
            if a.ndim == 1:
                names.append(name)
                blocks.append(a[:, None])
            else:
                names += [f"{name.rstrip('*').lower()}{j}" for j in range(a.shape[1])]
                blocks.append(a)
        fmts = [{"b": "%d", "i": "%d", "u": "%d", "O": "%s"}.get(b.dtype.kind, "%.9g")
                for b in blocks for _ in b.T]
        if path is None:
            _write_csv(sys.stdout, names, blocks, fmts)
            sys.stdout.flush()
        else:
            with atomic_file(path, "w") as f:
                _write_csv(f, names, blocks, fmts)
        return
    clean = {k.rstrip("*"): np.asarray(v) for k, v in columns.items()}
    with atomic_file(path, "wb") as f:
        if ext == ".npy":
            np.save(f, clean[npy or next(iter(clean))], allow_pickle=False)
        else:
            np.savez(f, **clean)


def _quoted(text: str) -> str:
    """A CSV cell holding ``text``: quoted (quotes doubled) where a separator would split it.

    Separators: a comma, a quote or a line break.
    """
    if not any(c in text for c in ',"\r\n'):
        return text
    return '"' + text.replace('"', '""') + '"'



def _write_csv(f, names, blocks, fmts):
    f.write(",".join(names) + "\n")
    n = blocks[0].shape[0] if blocks else 0
    line = ",".join(fmts) + "\n"
    cols = [c for b in blocks for c in b.T]
    for i in range(n):
        f.write(line % tuple(c[i] for c in cols))


def json_default(o):
    """``json.dump``'s ``default``: numpy (and JAX) scalars and arrays as Python values."""
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"cannot serialise {type(o).__name__} as JSON")


def plain(v):
    """``v`` as plain JSON values: tuples as lists, numpy scalars and arrays as Python ones."""
    return json.loads(json.dumps(v, default=json_default))
