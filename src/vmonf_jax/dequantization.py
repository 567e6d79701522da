"""Dequantisation noise drawn afresh in every training step, as batch transforms.

A transform is a pure function ``(batch, key) -> batch`` of a step's rows ``batch.x`` (a
``NamedTuple`` with a field ``x``), and a pytree: its arrays are arguments of the compiled
epoch, not constants, so one compile serves any widths. ``transforms`` builds those of a
fit from its preprocessing (``preprocess``): the data are stored at their cells' midpoints
and scored there; training sees a fresh uniform draw within each cell.
"""

from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp

from vmonf_jax.preprocess import PIXEL_LEVELS


@partial(jax.tree_util.register_dataclass, data_fields=["widths"], meta_fields=[])
@dataclass(frozen=True)
class UniformNoise:
    """Adds ``(u - 1/2) * widths``, u ~ U[0, 1) per entry, to the rows.

    ``widths`` (D,): the image of unit-width noise of each dequantised column in the data's
    units (``Preprocessor.noise_width``; 0 for the others).
    """

    widths: Any

    def __call__(self, batch, key):
        """``batch`` with noised rows."""
        x = batch.x
        u = jax.random.uniform(key, x.shape, x.dtype)
        return batch._replace(x=x + (u - 0.5) * self.widths.astype(x.dtype))


@partial(jax.tree_util.register_dataclass, data_fields=[], meta_fields=["lam"])
@dataclass(frozen=True)
class Redequantize:
    """Logit pixels at their bins' midpoints (``LogitPixels``, lambda ``lam``), noised again.

    Each pixel's level is read back from its value, and level + u, u ~ U[0, 1), goes
    through the same logit transform.
    """

    lam: float

    def __call__(self, batch, key):
        """``batch`` with its pixels dequantised afresh."""
        z, lam = batch.x, self.lam
        levels = jnp.round((jax.nn.sigmoid(z) - lam) / (1.0 - 2.0 * lam) * PIXEL_LEVELS - 0.5)
        u = jax.random.uniform(key, z.shape, z.dtype)
        y = lam + (1.0 - 2.0 * lam) * (levels + u) / PIXEL_LEVELS
        return batch._replace(x=jnp.log(y) - jnp.log1p(-y))


def transforms(lam: float | None, widths) -> tuple:
    """The transforms of a fit, in the order they apply.

    ``lam``: the data are ``LogitPixels`` of this lambda (None: they are not); ``widths``:
    (D,) ``UniformNoise`` widths as a device array, or None.
    """
    out = () if lam is None else (Redequantize(float(lam)),)
    return out if widths is None else (*out, UniformNoise(widths))
