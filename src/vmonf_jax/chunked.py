"""Apply a jitted row-wise function to any number of rows in fixed-size chunks.

Chunks hold a power of two of rows (64 to ``chunk``); the last is padded by repeating its last
row. So the function compiles for a few shapes only, whatever N is, and any N fits (a new N
reuses compiled code, also from JAX's persistent compilation cache).
"""

import jax.numpy as jnp
import numpy as np


def bucket(n: int, chunk: int = 4096) -> int:
    """Rows per chunk for ``n`` rows: the power of two >= n, at least 64, at most ``chunk``."""
    return min(chunk, max(64, 1 << max(n - 1, 0).bit_length()))


def map_rows(fn, x, chunk: int = 4096):
    """``fn(rows) -> pytree of arrays with leading axis n``, applied chunk by chunk."""
    xp = np if isinstance(x, np.ndarray) else jnp  # pad host data on the host: no compiling
    x = xp.asarray(x)
    n = x.shape[0]
    size = bucket(n, chunk)
    outs = []
    for start in range(0, n, size):
        part = x[start : start + size]
        m = part.shape[0]
        if m < size:
            part = xp.concatenate([part, xp.repeat(part[-1:], size - m, axis=0)])
        outs.append(np.asarray(fn(part))[:m])
    return np.concatenate(outs) if outs else np.zeros((0,))
