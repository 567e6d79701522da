"""JAX for the CLI: imported on demand, with a per-user persistent compilation cache.

The cache makes a repeated ``vmonf predict``/``score`` skip compiling the same programs again.
It lives in ``$XDG_CACHE_HOME/vmonf-jax/jax`` (default ``~/.cache/vmonf-jax/jax``; a
relative ``XDG_CACHE_HOME`` is ignored, as the XDG specification says). JAX treats its cache
as trusted code, so the folders are created private to the user (0700) and an existing one is
used only if it is a folder (not a link) owned by the user and writable by nobody else;
otherwise the command runs without a cache and says why in one warning.
``VMONF_NO_CACHE=1`` switches it off; a cache folder set by the user
(``JAX_COMPILATION_CACHE_DIR``) is left as it is.
"""

import contextlib
import os
import platform
import stat
import sys

NO_CACHE_ENV = "VMONF_NO_CACHE"
_checked = False  # the cache folder is checked (and a warning printed) once per process


def cache_dir():
    """The folder of the compilation cache, or None when ``VMONF_NO_CACHE`` is set."""
    if os.environ.get(NO_CACHE_ENV, "") not in ("", "0"):
        return None
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # unset, empty or relative: the XDG default
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "vmonf-jax", "jax")


def untrusted(path):
    """Why the cache folder ``path`` (and its parent ``vmonf-jax``) may not be used, or None.

    Both are created 0700 if absent; each must be a folder, not a link, owned by this user
    and not writable by group or others.
    """
    for p in (os.path.dirname(path), path):
        try:
            os.mkdir(p, 0o700)
        except FileExistsError:
            pass
        except OSError as err:
            return f"cannot create it ({err.strerror or err})"
        st = os.lstat(p)
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
            return f"{p} is not a folder (a link or a file)"
        if st.st_uid != os.getuid():
            return f"{p} is owned by another user (uid {st.st_uid})"
        if st.st_mode & 0o022:
            return f"{p} is writable by others (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def import_jax():
    """Import and return ``jax``, its compilation cache set up (once per process)."""
    import jax

    global _checked
    path = cache_dir()
    if path and not _checked and not os.environ.get("JAX_COMPILATION_CACHE_DIR") and (
            not jax.config.jax_compilation_cache_dir):
        _checked = True
        try:
            os.makedirs(os.path.dirname(os.path.dirname(path)), exist_ok=True)
        except OSError:  # no writable home: run without a cache
            return jax
        why = untrusted(path)
        if why:
            print(f"vmonf: warning: running without the compilation cache {path}: {why}",
                  file=sys.stderr)
            return jax
        with contextlib.suppress(OSError):
            jax.config.update("jax_compilation_cache_dir", path)
            # small CPU programs compile in well under JAX's default 1 s: cache them all
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
            jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return jax


def versions() -> dict:
    """Versions of vmonf-jax, jax, jaxlib, numpy and Python, and the device JAX uses."""
    import jaxlib
    import numpy as np

    from vmonf_jax import __version__

    jx = import_jax()
    dev = jx.devices()[0]
    return {"vmonf_jax": __version__, "jax": jx.__version__, "jaxlib": jaxlib.__version__,
            "numpy": np.__version__, "python": platform.python_version(),
            "device": f"{dev.platform}: {jx.device_count()} x {dev.device_kind}"}


def version_text() -> str:
    """What ``vmonf --version`` prints."""
    v = versions()
    return (f"vmonf {v['vmonf_jax']} (jax {v['jax']}, jaxlib {v['jaxlib']}, numpy "
            f"{v['numpy']}, python {v['python']}; device {v['device']})")
