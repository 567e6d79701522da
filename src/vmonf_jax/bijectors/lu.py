"""LU-decomposed affine layer (Glow; Kingma & Dhariwal 2018)."""

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from vmonf_jax._distrax import Chain, LowerUpperTriangularAffine
from vmonf_jax.bijectors.permutation import Permutation


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
        d = self.dim
        return {
            "lower": jnp.zeros((d, d), dtype),
            "upper": jnp.zeros((d, d), dtype),
            "log_s": jnp.zeros((d,), dtype),
            "bias": jnp.zeros((d,), dtype),
        }

    def bijector(self, params, state=None):
        matrix = (
            jnp.tril(params["lower"], -1)
            + jnp.triu(params["upper"], 1)
            + jnp.diag(jnp.exp(params["log_s"]))
        )
        perm = np.random.default_rng(self.seed).permutation(self.dim)
        return Chain([Permutation(perm), LowerUpperTriangularAffine(matrix, params["bias"])])
