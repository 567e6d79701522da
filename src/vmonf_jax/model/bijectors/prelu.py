"""PReLU bijector with a positive slope (paper section 2.4.2)."""

from dataclasses import dataclass

import jax.numpy as jnp

from vmonf_jax.model._distrax import Bijector


class PReLU(Bijector):
    """x_i = z_i if z_i >= 0 else alpha_i z_i, alpha = exp(log_alpha) > 0 (so invertible).

    log|det dx/dz| = sum_i [z_i < 0] log alpha_i; the inverse divides by alpha where x < 0.
    """

    def __init__(self, log_alpha):
        super().__init__(event_ndims_in=1)
        self._log_alpha = log_alpha

    def forward_and_log_det(self, z):
        """Base -> data: ``(x, log|det dx/dz|)`` per row."""
        neg = z < 0
        x = jnp.where(neg, z * jnp.exp(self._log_alpha), z)
        return x, jnp.where(neg, self._log_alpha, 0.0).sum(-1).astype(z.dtype)

    def inverse_and_log_det(self, x):
        """Data -> base: ``(z, log|det dz/dx|)`` per row."""
        neg = x < 0
        z = jnp.where(neg, x * jnp.exp(-self._log_alpha), x)
        return z, -jnp.where(neg, self._log_alpha, 0.0).sum(-1).astype(x.dtype)


@dataclass(frozen=True)
class PReLULayer:
    """Per-coordinate slopes, parametrised in log space; identity (alpha = 1) at init."""

    dim: int
    stateful = False

    def init(self, key, dtype):
        """Parameters at the identity map (``key`` unused)."""
        return {"log_alpha": jnp.zeros((self.dim,), dtype)}

    def bijector(self, params, state=None):
        """The distrax bijector of ``params`` (``state`` unused: no running statistics)."""
        return PReLU(params["log_alpha"])
