"""Batch-normalisation bijector (Dinh et al. 2017) with running statistics as explicit state."""

from dataclasses import dataclass

import jax.numpy as jnp

from vmonf_jax.model._distrax import Bijector


class BatchNormAffine(Bijector):
    """Density direction z = (x - mean) / sqrt(var + eps) * exp(log_gamma) + beta.

    log|det dz/dx| = sum(log_gamma - 0.5 log(var + eps)); forward (base -> data) inverts it.
    The statistics are given: batch statistics in training, running averages otherwise.
    """

    def __init__(self, mean, var, log_gamma, beta, eps):
        super().__init__(event_ndims_in=1)
        self._mean, self._var, self._eps = mean, var, eps
        self._log_gamma, self._beta = log_gamma, beta

    def _log_scale(self):
        return self._log_gamma - 0.5 * jnp.log(self._var + self._eps)

    def forward_and_log_det(self, z):
        """Base -> data: ``(x, log|det dx/dz|)`` per row."""
        log_scale = self._log_scale()
        x = (z - self._beta) * jnp.exp(-log_scale) + self._mean
        return x, jnp.broadcast_to(-log_scale.sum(), z.shape[:-1])

    def inverse_and_log_det(self, x):
        """Data -> base: ``(z, log|det dz/dx|)`` per row."""
        log_scale = self._log_scale()
        z = (x - self._mean) * jnp.exp(log_scale) + self._beta
        return z, jnp.broadcast_to(log_scale.sum(), x.shape[:-1])


@dataclass(frozen=True)
class BatchNorm:
    """Stateful layer: parameters (log_gamma, beta), state (running mean, var).

    ``train_bijector`` normalises with the statistics of the batch it sees (in the density
    direction) and returns the updated running averages (``momentum`` of the old ones).
    """

    dim: int
    momentum: float = 0.9
    eps: float = 1e-5
    stateful = True

    def init(self, key, dtype):
        """``log_gamma`` and ``beta`` at zero (``key`` unused)."""
        return {"log_gamma": jnp.zeros((self.dim,), dtype), "beta": jnp.zeros((self.dim,), dtype)}

    def init_state(self, dtype):
        """Running mean 0 and variance 1."""
        return {"mean": jnp.zeros((self.dim,), dtype), "var": jnp.ones((self.dim,), dtype)}

    def _make(self, params, mean, var):
        return BatchNormAffine(mean, var, params["log_gamma"], params["beta"], self.eps)

    def bijector(self, params, state):
        """Normalise with the running statistics in ``state`` (evaluation)."""
        return self._make(params, state["mean"], state["var"])

    def train_bijector(self, params, state, x):
        """Normalise with the statistics of ``x``; also the updated running ``state``."""
        mean, var = x.mean(0), x.var(0)
        m = self.momentum
        new_state = {"mean": m * state["mean"] + (1 - m) * mean,
                     "var": m * state["var"] + (1 - m) * var}
        return self._make(params, mean, var), new_state
