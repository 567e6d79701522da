"""Location and triangular scale, whitening in the density direction (a Gaussian start)."""

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from vmonf_jax.model._distrax import Bijector


class TriangularWhiten(Bijector):
    """z = W (x - loc), W = tril(lower, -1) + diag(exp(log_scale)).

    Data -> base (the fast direction, a matrix product): ``inverse``, log|det dz/dx| =
    sum log_scale. Base -> data: x = W^-1 z + loc by a triangular solve, log|det dx/dz| =
    -sum log_scale. With W^-1 = C the Cholesky factor of a covariance, x = C z + loc maps
    N(0, I) to N(loc, C C^T). The density direction avoids LAPACK's triangular solve, which
    deadlocked XLA's CPU threads in vmapped training steps (64 columns, 30 flows).
    """

    def __init__(self, lower, log_scale, loc):
        super().__init__(event_ndims_in=1)
        self._w = jnp.tril(lower, -1) + jnp.diag(jnp.exp(log_scale))
        self._log_det = jnp.sum(log_scale)
        self._loc = loc

    def forward_and_log_det(self, z):
        """Base -> data: ``(x, log|det dx/dz|)`` per row."""
        x = jax.scipy.linalg.solve_triangular(self._w, z.T, lower=True).T + self._loc
        return x.astype(z.dtype), jnp.full(z.shape[:-1], -self._log_det, z.dtype)

    def inverse_and_log_det(self, x):
        """Data -> base: ``(z, log|det dz/dx|)`` per row."""
        z = (x - self._loc) @ self._w.T
        return z.astype(x.dtype), jnp.full(x.shape[:-1], self._log_det, x.dtype)


@dataclass(frozen=True)
class Whiten:
    """The last layer (data side) of a flow with ``affine=True``: ``TriangularWhiten``.

    Identity at init; ``train.gaussian_start`` sets it to a Gaussian (``loc`` its mean, W
    the inverse of its covariance's Cholesky factor).
    """

    dim: int
    stateful = False

    def init(self, key, dtype):
        """Parameters at the identity map (``key`` unused)."""
        d = self.dim
        return {"lower": jnp.zeros((d, d), dtype), "log_scale": jnp.zeros((d,), dtype),
                "loc": jnp.zeros((d,), dtype)}

    def bijector(self, params, state=None):
        """The bijector of ``params`` (``state`` unused: no running statistics)."""
        return TriangularWhiten(params["lower"], params["log_scale"], params["loc"])
