"""Base distributions of a flow: the standard normal and a product of Student-t marginals.

A base is a small static object with ``init(dtype)`` (its trained parameters, or None when it
has none), ``log_prob(params, z)`` (per row) and ``sample(params, key, n, dim, dtype)``.
The normal base has no parameters, so a normal-base flow's parameters are exactly those of
its layers (models saved before bases existed still load); a Student-t flow carries one
extra, trailing entry (``flows.Flow``).
"""

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from vmonf_jax.model._distrax import MultivariateNormalDiag

STUDENT_T_START_DF = 30.0
"""Degrees of freedom a Student-t base starts with: close to a normal (kurtosis 3.23)."""
LOG_DF_BOUND = 7.0
"""log(nu - 1) is soft-clamped to (-7, 7): nu in (1.001, 1098)."""


@dataclass(frozen=True)
class NormalBase:
    """N(0, I): no parameters (distrax's ``MultivariateNormalDiag``)."""

    name = "normal"

    def init(self, dtype):
        """None: nothing to train."""
        return None

    @staticmethod
    def _dist(dim, dtype):
        return MultivariateNormalDiag(jnp.zeros(dim, dtype), jnp.ones(dim, dtype))

    def log_prob(self, params, z):
        """log N(z; 0, I) per row."""
        return self._dist(z.shape[-1], z.dtype).log_prob(z)

    def sample(self, params, key, n, dim, dtype):
        """``n`` draws, shape (n, dim)."""
        return self._dist(dim, dtype).sample(seed=key, sample_shape=(n,))


@dataclass(frozen=True)
class StudentTBase:
    """prod_i t_nu(z_i): independent standard Student-t marginals sharing one nu per flow.

    nu = 1 + exp(7 tanh(raw_df / 7)), learned: nu > 1 (a finite mean), at most 1098 (beyond
    it float32's log-gamma terms lose precision, and the base is a normal anyway). A log
    scale, because Adam moves a parameter by about the learning rate per step: with nu = 1 +
    softplus(raw), nu moved from 30 to 29.5-31.1 in a whole pinwheel fit (studies/
    spline_toy.py); on a log scale each step changes nu by a fraction. ``raw_df`` starts
    where nu = ``STUDENT_T_START_DF``, near the normal. Scored with ``jax.scipy.stats.t``
    and sampled with ``jax.random.t`` (both exact). Heavier tails let a component put mass
    on rows far from its bulk (extrapolated wing tips, thin rings) without stretching its
    layers.
    """

    name = "student_t"

    def init(self, dtype):
        """``{"raw_df": ()}`` at nu = ``STUDENT_T_START_DF``."""
        raw = LOG_DF_BOUND * np.arctanh(np.log(STUDENT_T_START_DF - 1.0) / LOG_DF_BOUND)
        return {"raw_df": jnp.asarray(raw, dtype)}

    @staticmethod
    def df(params):
        """Degrees of freedom nu = 1 + exp(7 tanh(raw_df / 7))."""
        return 1.0 + jnp.exp(LOG_DF_BOUND * jnp.tanh(params["raw_df"] / LOG_DF_BOUND))

    def log_prob(self, params, z):
        """sum_i log t_nu(z_i) per row."""
        df = self.df(params).astype(z.dtype)
        return jax.scipy.stats.t.logpdf(z, df).sum(-1)

    def sample(self, params, key, n, dim, dtype):
        """``n`` draws, shape (n, dim)."""
        return jax.random.t(key, self.df(params).astype(dtype), (n, dim), dtype)


NORMAL, STUDENT_T = NormalBase(), StudentTBase()
"""The built-in bases (``registry.BASES`` names them)."""
