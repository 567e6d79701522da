"""Affine coupling layer (RealNVP; Dinh et al. 2017), built on ``distrax.MaskedCoupling``."""

from dataclasses import dataclass

import numpy as np

from vmonf_jax._distrax import MaskedCoupling, ScalarAffine
from vmonf_jax.bijectors._util import bounded_log_scale, flax_init
from vmonf_jax.nets import CouplingNet


@dataclass(frozen=True)
class AffineCoupling:
    """x_B = z_B * exp(s(z_A)) + t(z_A), x_A = z_A, where A is the kept half.

    The kept half A is every other coordinate, starting at ``parity``; consecutive blocks use
    alternating parities. s and t are separate MLPs with ``hidden`` sizes (tanh activations);
    s is soft-clamped to (-3, 3). log|det dx/dz| = sum_B s(z_A); the inverse
    z_B = (x_B - t(x_A)) * exp(-s(x_A)) is one pass too, so both directions are fast.
    """

    dim: int
    hidden: tuple[int, ...] = (8,)
    parity: int = 0
    stateful = False

    @property
    def mask(self) -> np.ndarray:
        """True where the coordinate passes through unchanged."""
        return np.arange(self.dim) % 2 == self.parity

    @property
    def _net(self):
        return CouplingNet(tuple(self.hidden))

    def init(self, key, dtype):
        return flax_init(self._net, key, self.dim, dtype)

    def bijector(self, params, state=None):
        def conditioner(z_kept):
            shift, raw = self._net.apply(params, z_kept)
            return shift, bounded_log_scale(raw)

        return MaskedCoupling(
            mask=self.mask,
            conditioner=conditioner,
            bijector=lambda p: ScalarAffine(shift=p[0], log_scale=p[1]),
        )
