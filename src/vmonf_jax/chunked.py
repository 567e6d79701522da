"""Row-wise functions over any number of rows in fixed-size chunks: bounded memory.

``map_rows`` (on the host, calling a jitted function): chunks hold a power of two of rows
(64 to ``chunk``); the last is padded by repeating its last row. So the function compiles
for a few shapes only, whatever N is, and any N fits (a new N reuses compiled code, also from
JAX's persistent compilation cache). ``mean_rows`` (inside a traced function): the mean over
rows of a row-wise function, one chunk at a time (``lax.map``), so the intermediates of one
chunk are all that is ever held.
"""

import jax
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


def mean_rows(fn, x, chunk: int = 4096):
    """Mean over the rows of ``x`` of ``fn(rows) -> (m, ...)``, ``chunk`` rows at a time.

    Traceable (use it inside ``jax.jit``); equal to ``fn(x).mean(0)`` up to the order of the
    sums. The last chunk is padded with copies of the last row, masked out of the mean.
    """
    n = x.shape[0]
    size = min(chunk, n)
    m = -(-n // size)
    pad = jnp.concatenate([x, jnp.repeat(x[-1:], m * size - n, axis=0)])
    real = (jnp.arange(m * size) < n).reshape(m, size)

    def part(args):
        rows, keep = args
        out = fn(rows)
        return jnp.where(keep.reshape((-1,) + (1,) * (out.ndim - 1)), out, 0).sum(0)

    return jax.lax.map(part, (pad.reshape((m, size) + x.shape[1:]), real)).sum(0) / n
