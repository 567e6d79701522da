"""LU-decomposed affine layer (Glow; Kingma & Dhariwal 2018)."""

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from vmonf_jax.model._distrax import Bijector, Chain, LowerUpperTriangularAffine
from vmonf_jax.model.bijectors.permutation import Permutation


class _KeepDtype(Bijector):
    """Casts a wrapped bijector's outputs back to the input dtype.

    ``distrax.LowerUpperTriangularAffine`` adds ``jnp.eye(dim)`` (default dtype) to the
    matrix, which promotes float32 to float64 when ``jax_enable_x64`` is on.
    """

    def __init__(self, bijector):
        super().__init__(event_ndims_in=1)
        self._bijector = bijector

    def forward_and_log_det(self, z):
        x, log_det = self._bijector.forward_and_log_det(z)
        return x.astype(z.dtype), log_det.astype(z.dtype)

    def inverse_and_log_det(self, x):
        z, log_det = self._bijector.inverse_and_log_det(x)
        return z.astype(x.dtype), log_det.astype(x.dtype)


@dataclass(frozen=True)
class LUAffine:
    """x = P L (U + diag(s)) z + b with s = exp(log_s) > 0; log|det dx/dz| = sum log s.

    P is a fixed random permutation drawn from ``seed``; L (unit diagonal) and U (zero
    diagonal) are free triangular matrices. Built from ``distrax.LowerUpperTriangularAffine``
    chained after a permutation. Identity at init apart from P.
    """

    dim: int
    seed: int = 0
    stateful = False

    def init(self, key, dtype):
        """Parameters at the identity map (``key`` unused)."""
        d = self.dim
        return {
            "lower": jnp.zeros((d, d), dtype),
            "upper": jnp.zeros((d, d), dtype),
            "log_s": jnp.zeros((d,), dtype),
            "bias": jnp.zeros((d,), dtype),
        }

    def bijector(self, params, state=None):
        """The distrax bijector of ``params`` (``state`` unused: no running statistics)."""
        matrix = (
            jnp.tril(params["lower"], -1)
            + jnp.triu(params["upper"], 1)
            + jnp.diag(jnp.exp(params["log_s"]))
        )
        perm = np.random.default_rng(self.seed).permutation(self.dim)
        lu = _KeepDtype(LowerUpperTriangularAffine(matrix, params["bias"]))
        return Chain([Permutation(perm), lu])
