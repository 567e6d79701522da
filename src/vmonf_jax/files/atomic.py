"""Files read and folders replaced safely: the handling checkpoints and model directories share.

Reading: only plain files and folders (no links, FIFOs or devices), under a size cap
(:func:`read_file`, :func:`read_json`, :func:`check_tree`).

Replacing a folder: a writer builds the replacement in a unique ``.NAME.vmonf-new-XXXXXXXX``
beside it (:func:`writing`) and swaps it into place with :func:`swap_dir`: the old folder is
moved to a unique ``.NAME.vmonf-old-XXXXXXXX`` until the new one is in place, so at every
instant the folder holds the old or the new version, or :func:`recover` finds a complete one
under its temporary name.

Concurrency: a writer holds an exclusive ``flock`` on its temporary folder (:func:`writing`)
and on the folder it swaps away (:func:`swap_dir`); readers hold a shared one while they read
(:func:`reading`), so what they read comes from one version, and :func:`recover` never takes
the temporary folder of a live writer. Locks die with their process, so after ``kill -9``
the temporary folder is recovered as before.
"""

import contextlib
import errno
import fcntl
import json
import os
import secrets
import shutil
import stat
import time

NEW, OLD = ".vmonf-new-", ".vmonf-old-"
MAX_JSON_BYTES = 64 * 2**20
"""Largest JSON file read (a manifest or a checkpoint's ``meta.json``)."""
MAX_FILES = 10_000
"""Most files and folders a checkpoint may hold."""


# -- safe reading -------------------------------------------------------------------------
def read_file(path, max_bytes=MAX_JSON_BYTES) -> bytes:
    """Read the bytes of ``path``, a regular file (not a link) of at most ``max_bytes``.

    The file is opened without following links and without blocking, and checked to be a
    regular file before it is read, so a FIFO or device is never waited on or read.

    Args:
        path: the file to read.
        max_bytes: the largest size accepted.

    Returns:
        The file's contents.

    Raises:
        ValueError: a link, FIFO, device or folder, or a file over ``max_bytes``.
        OSError: the file is missing or unreadable.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as err:
        if os.path.islink(path):
            raise ValueError(f"{path}: is a symbolic link, expected a regular file") from None
        raise err
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{path}: not a regular file")
        if st.st_size > max_bytes:
            raise ValueError(f"{path}: {st.st_size} bytes, more than the limit of {max_bytes}")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(max_bytes + 1)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise ValueError(f"{path}: more than the limit of {max_bytes} bytes")
    return data


def read_json(path, max_bytes=MAX_JSON_BYTES):
    """``read_file`` then JSON; a ValueError for invalid UTF-8, JSON or nesting too deep."""
    data = read_file(path, max_bytes)
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text") from None
    except RecursionError:
        raise ValueError(f"{path}: JSON nested too deeply") from None
    except ValueError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None


def check_tree(path, max_bytes, max_files=MAX_FILES) -> None:
    """Check that folder ``path`` holds only regular files and folders, within the caps.

    Raises:
        ValueError: a link, FIFO, device or other special file (named), too many entries,
            or more than ``max_bytes`` in all.
    """
    total, count, todo = 0, 0, [path]
    while todo:
        with os.scandir(todo.pop()) as it:
            for e in it:
                count += 1
                if count > max_files:
                    raise ValueError(f"{path}: more than {max_files} files")
                rel = os.path.relpath(e.path, os.path.dirname(path))
                if e.is_symlink():
                    raise ValueError(f"{rel}: is a symbolic link")
                if e.is_dir(follow_symlinks=False):
                    todo.append(e.path)
                elif e.is_file(follow_symlinks=False):
                    total += e.stat(follow_symlinks=False).st_size
                else:
                    raise ValueError(f"{rel}: not a regular file")
    if total > max_bytes:
        raise ValueError(f"{path}: {total} bytes, more than the {max_bytes} its arrays can "
                         "need")


def first_line(err):
    """The first line of an error message (at most 300 characters)."""
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:300]


# -- locks --------------------------------------------------------------------------------
def _open_dir(path):
    """A read-only descriptor of the folder ``path`` (links followed), or None if absent."""
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _flock(fd, how) -> bool:
    """``fcntl.flock``; False when non-blocking and held elsewhere. No locks: always True."""
    try:
        fcntl.flock(fd, how)
    except BlockingIOError:
        return False
    except OSError:  # a file system without locks: proceed unlocked
        pass
    return True


def _same(fd, path) -> bool:
    """Whether ``path`` still names the folder open as ``fd``."""
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


class DirLock:
    """An exclusive ``flock`` on a folder (``fcntl.flock`` of a descriptor of it).

    Writers hold one on a folder they write or swap away; readers take a shared one while
    they read (:func:`reading`), so nothing is swapped from under them. Locks vanish with
    their process, so after a crash (``kill -9``) nothing stays locked.
    """

    def __init__(self, fd):
        self.fd = fd

    @classmethod
    def take(cls, path, blocking=True):
        """The lock on the folder at ``path`` (it must exist).

        None if it is held elsewhere and ``blocking`` is False. Once locked, the folder is
        checked to still be at ``path`` (else the one there now is locked).
        """
        while True:
            fd = _open_dir(path)
            if fd is None:
                raise FileNotFoundError(errno.ENOENT, "no such folder", str(path))
            if not _flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB)):
                os.close(fd)
                return None
            if _same(fd, path):
                return cls(fd)
            os.close(fd)  # swapped while we waited: lock what is there now

    def release(self):
        """Drop the lock (idempotent)."""
        if self.fd is not None:
            os.close(self.fd)  # closing the only descriptor drops the lock
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def held_elsewhere(path) -> bool:
    """Whether another process (or descriptor) holds a lock on the folder ``path``."""
    fd = _open_dir(path)
    if fd is None:
        return False
    try:
        return not _flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    finally:
        os.close(fd)


@contextlib.contextmanager
def reading(path, marker):
    """Yield the folder ``path`` (recovered as :func:`recover` does) under a shared lock.

    While the block runs, no writer can swap the folder away, so everything read in it
    comes from one version. Yields None when there is no such folder.

    Raises:
        NotADirectoryError: ``path`` is a file, or a link to nothing or to a file.
    """
    while True:
        found = recover(path, marker)
        if found is None:
            yield None
            return
        fd = _open_dir(found)
        if fd is None:
            if os.path.lexists(found) and not os.path.isdir(found):
                raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(found))
            continue  # swapped or recovered meanwhile
        try:
            _flock(fd, fcntl.LOCK_SH)
            if not _same(fd, found):
                continue  # a writer swapped it while we waited: read the new one
            yield found
            return
        finally:
            os.close(fd)


# -- swapping folders ---------------------------------------------------------------------
def new_sibling(path, tag=NEW) -> str:
    """Create and return an empty folder ``.NAME<tag>XXXXXXXX`` beside ``path`` (umask mode)."""
    parent, name = os.path.split(os.path.abspath(path))
    while True:
        tmp = os.path.join(parent, f".{name}{tag}{secrets.token_hex(4)}")
        try:
            os.mkdir(tmp)
            return tmp
        except FileExistsError:
            continue


@contextlib.contextmanager
def writing(path):
    """A new locked temporary folder beside ``path`` to build a replacement in.

    Yields its path; the lock (which keeps :func:`recover` in other processes off it) is
    held until the block ends, and the folder is deleted then unless :func:`swap_dir` moved
    it into place.
    """
    tmp = new_sibling(path)
    lock = DirLock.take(tmp)
    failed = True
    try:
        yield tmp
        failed = False
    finally:
        try:
            if os.path.lexists(tmp) and _same(lock.fd, tmp):
                shutil.rmtree(tmp, ignore_errors=True)
            # Orbax's own ".orbax-checkpoint-tmp" sibling; after a failure (a full disk)
            # its native writer threads may still create files for a moment
            for _ in range(5 if failed else 1):
                parent, name = os.path.split(tmp)
                left = [o for o in os.listdir(parent) if o.startswith(name + ".")]
                for other in left:
                    shutil.rmtree(os.path.join(parent, other), ignore_errors=True)
                if failed:
                    time.sleep(0.1)
        finally:
            lock.release()


def swap_dir(src, dst) -> None:
    """Move folder ``src`` to ``dst``, replacing any existing ``dst`` (crash-safe with recover).

    An existing ``dst`` (which the caller has checked may be replaced) is locked (waiting for
    readers), passes its mode to ``src`` and is renamed to a unique sibling until ``src`` is
    in place, then deleted (or renamed back if moving ``src`` fails). Nothing else is
    touched. If the process dies between the two renames, :func:`recover` puts ``src`` in
    place.
    """
    lock = DirLock.take(dst) if os.path.isdir(dst) and not os.path.islink(dst) else None
    try:
        if not os.path.lexists(dst):
            os.rename(src, dst)
            return
        os.chmod(src, stat.S_IMODE(os.stat(dst).st_mode))
        old = new_sibling(dst, OLD)
        os.rename(dst, old)  # onto the empty folder reserved for it
        try:
            os.rename(src, dst)
        except BaseException:
            with contextlib.suppress(OSError):
                os.rename(old, dst)
            raise
    finally:
        if lock is not None:
            lock.release()
    shutil.rmtree(old, ignore_errors=True)


def recover(path, marker) -> str | None:
    """Find the folder ``path``, recovering it if a swap was interrupted.

    Args:
        path: the folder.
        marker: a file name that only a complete copy holds (e.g. ``meta.json``).

    Returns:
        ``path`` if it exists. Otherwise its complete temporary copy (one holding
        ``marker``; the newest new one, else the newest old one), renamed back to ``path``
        where possible (then ``path``, else the copy's own path). None when there is
        neither. A copy locked by a live writer is not taken: that writer is between its
        two renames, so this waits for it and looks again.
    """
    while True:
        if os.path.lexists(path):
            return path
        parent, name = os.path.split(os.path.abspath(path))
        try:
            names = os.listdir(parent)
        except OSError:
            return None
        busy = False
        for tag in (NEW, OLD):
            found = [os.path.join(parent, n) for n in names if n.startswith(f".{name}{tag}")
                     and os.path.isfile(os.path.join(parent, n, marker))]
            for best in sorted(found, key=_mtime, reverse=True):
                try:
                    lock = DirLock.take(best, blocking=False)
                except (FileNotFoundError, NotADirectoryError):
                    lock = None  # moved meanwhile (into place?): look again
                if lock is None:
                    busy = True
                    continue
                with lock:
                    if os.path.lexists(path):
                        return path
                    try:
                        os.rename(best, path)
                        return path
                    except OSError:
                        return best
        if not busy:  # a writer may have finished between our two looks
            return path if os.path.lexists(path) else None
        time.sleep(0.01)  # a writer is between its renames: it holds them for an instant


def _mtime(p):
    try:
        return os.path.getmtime(p)
    except OSError:
        return 0.0
