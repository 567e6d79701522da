"""JAX for the CLI: imported on demand, with a per-user persistent compilation cache.

The cache makes a repeated ``vmonf predict``/``score`` skip compiling the same programs again.
It lives in ``$XDG_CACHE_HOME/vmonf-jax/jax`` (default ``~/.cache/vmonf-jax/jax``, created
private to the user: JAX treats its cache as trusted code). ``VMONF_NO_CACHE=1`` switches it
off; a cache folder set by the user (``JAX_COMPILATION_CACHE_DIR``) is left as it is.
"""

import contextlib
import os
import platform

NO_CACHE_ENV = "VMONF_NO_CACHE"


def cache_dir():
    """The folder of the compilation cache, or None when ``VMONF_NO_CACHE`` is set."""
    if os.environ.get(NO_CACHE_ENV, "") not in ("", "0"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "vmonf-jax", "jax")


def import_jax():
    """Import and return ``jax``, its compilation cache set up (once per process)."""
    import jax

    path = cache_dir()
    if path and not os.environ.get("JAX_COMPILATION_CACHE_DIR") and (
            not jax.config.jax_compilation_cache_dir):
        with contextlib.suppress(OSError):  # no writable cache: run without one
            os.makedirs(path, mode=0o700, exist_ok=True)
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
