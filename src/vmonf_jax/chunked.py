"""Apply a jitted row-wise function to any number of rows in fixed-size chunks.

The last chunk is padded to the chunk size, so the function compiles once and any N fits.
"""

import jax.numpy as jnp
import numpy as np


def map_rows(fn, x, chunk: int = 4096):
    """``fn(rows) -> pytree of arrays with leading axis n``, applied chunk by chunk."""
    x = jnp.asarray(x)
    n = x.shape[0]
    size = min(chunk, max(n, 1))
    outs = []
    for start in range(0, n, size):
        part = x[start : start + size]
        m = part.shape[0]
        if m < size:
            part = jnp.concatenate([part, jnp.repeat(part[-1:], size - m, axis=0)])
        outs.append(np.asarray(fn(part))[:m])
    return np.concatenate(outs) if outs else np.zeros((0,))
