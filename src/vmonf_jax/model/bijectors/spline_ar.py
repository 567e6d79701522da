"""Masked autoregressive rational-quadratic spline layer (Durkan et al. 2019) with MADE."""

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from vmonf_jax.model._distrax import Bijector
from vmonf_jax.model.bijectors._util import flax_init
from vmonf_jax.model.bijectors.spline import n_spline_params, rq_spline
from vmonf_jax.model.nets import MADE


class MaskedAutoregressiveSpline(Bijector):
    """z_i = s_i(x_i; theta_i(x_<i)) in the conditioner's ordering; s_i as ``rq_spline``.

    Data -> base (the density direction) is one pass: theta(x) for every coordinate at
    once, then the splines; log|det dz/dx| = sum_i log s_i'(x_i). Base -> data (sampling) is
    sequential: ``dim`` passes in a ``lax.fori_loop``, pass j inverting the splines with
    theta of the current x; after pass j the first j coordinates in the ordering are exact.
    """

    def __init__(self, conditioner, dim: int, bound: float):
        """Wrap ``conditioner`` as a bijector on vectors of width ``dim``.

        Args:
            conditioner: maps x (..., dim) to raw spline parameters (..., dim, 3 bins - 1),
                row i a function of x_<i only.
            dim: the number of coordinates, and so of sequential passes when sampling.
            bound: the splines act on [-bound, bound], the identity outside.
        """
        super().__init__(event_ndims_in=1)
        self._conditioner = conditioner
        self._dim = dim
        self._bound = bound

    def _spline(self, x):
        return rq_spline(self._conditioner(x), self._bound)

    def forward_and_log_det(self, z):
        """Map base ``z`` to data ``x`` (``dim`` sequential passes); also log|det dx/dz|."""
        step = lambda _, x: self._spline(x).inverse(z)  # noqa: E731
        x = jax.lax.fori_loop(0, self._dim - 1, step, jnp.zeros_like(z))
        x, log_det = self._spline(x).inverse_and_log_det(z)
        return x, log_det.sum(-1)

    def inverse_and_log_det(self, x):
        """Map data ``x`` to base ``z`` in one pass; also log|det dz/dx|."""
        z, log_det = self._spline(x).forward_and_log_det(x)
        return z, log_det.sum(-1)


@dataclass(frozen=True)
class SplineARLayer:
    """One autoregressive spline block over a MADE conditioner (``hidden`` sizes, ReLU).

    MADE has one head per spline parameter and a zero-initialised output layer (identity at
    init); ``reverse`` flips the ordering.
    """

    dim: int
    hidden: tuple[int, ...] = (200,)
    reverse: bool = False
    bins: int = 8
    bound: float = 4.0
    stateful = False

    @property
    def _net(self):
        return MADE(self.dim, tuple(self.hidden), self.reverse,
                    heads=n_spline_params(self.bins))

    def init(self, key, dtype):
        """MADE parameters; its zero output layer makes the layer start as the identity."""
        return flax_init(self._net, key, self.dim, dtype)

    def bijector(self, params, state=None):
        """The distrax bijector of ``params`` (``state`` unused: no running statistics)."""
        conditioner = lambda x: jnp.stack(self._net.apply(params, x), axis=-1)  # noqa: E731
        return MaskedAutoregressiveSpline(conditioner, self.dim, self.bound)
