"""Masked autoregressive affine layer (MAF; Papamakarios et al. 2017) with a MADE conditioner."""

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from vmonf_jax.model._distrax import Bijector
from vmonf_jax.model.bijectors._util import bounded_log_scale, flax_init
from vmonf_jax.model.nets import MADE


class MaskedAutoregressiveAffine(Bijector):
    """x_i = z_i * exp(a_i) + m_i with (m_i, a_i) = g(x_<i) in the conditioner's ordering.

    Inverse (data -> base, the density direction) is one pass: z = (x - m(x)) * exp(-a(x)),
    log|det dz/dx| = -sum a(x). Forward (sampling) is sequential: ``dim`` passes of g in a
    ``lax.fori_loop``; after pass j the first j coordinates in the ordering are exact.
    """

    def __init__(self, conditioner, dim: int):
        """Wrap ``conditioner`` as a bijector on vectors of width ``dim``.

        Args:
            conditioner: maps x (..., dim) to ``(shift, raw log-scale)``, each (..., dim), with
                output i a function of x_<i only; the log-scale is soft-clamped to (-3, 3).
            dim: the number of coordinates, and so of sequential passes when sampling.
        """
        super().__init__(event_ndims_in=1)
        self._conditioner = conditioner
        self._dim = dim

    def _params(self, x):
        shift, raw = self._conditioner(x)
        return shift, bounded_log_scale(raw)

    def forward_and_log_det(self, z):
        """Map base ``z`` to data ``x`` (``dim`` sequential passes); also log|det dx/dz|."""

        def step(_, x):
            shift, log_scale = self._params(x)
            return z * jnp.exp(log_scale) + shift

        x = jax.lax.fori_loop(0, self._dim, step, jnp.zeros_like(z))
        _, log_scale = self._params(x)
        return x, log_scale.sum(-1)

    def inverse_and_log_det(self, x):
        """Map data ``x`` to base ``z`` in one pass; also log|det dz/dx| = -sum a(x)."""
        shift, log_scale = self._params(x)
        return (x - shift) * jnp.exp(-log_scale), -log_scale.sum(-1)


@dataclass(frozen=True)
class MAFLayer:
    """One MAF block: MADE with ``hidden`` sizes (ReLU); ``reverse`` flips the ordering."""

    dim: int
    hidden: tuple[int, ...] = (200,)
    reverse: bool = False
    stateful = False

    @property
    def _net(self):
        return MADE(self.dim, tuple(self.hidden), self.reverse)

    def init(self, key, dtype):
        """MADE parameters; its zero output layer makes the layer start as the identity."""
        return flax_init(self._net, key, self.dim, dtype)

    def bijector(self, params, state=None):
        """The distrax bijector of ``params`` (``state`` unused: no running statistics)."""
        return MaskedAutoregressiveAffine(lambda x: self._net.apply(params, x), self.dim)
