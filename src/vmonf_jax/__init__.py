"""vmonf-jax: Variational Mixture of Normalizing Flows (Pires & Figueiredo, 2020) in JAX.

Functional core: ``Mixture`` (static model description) with pure, jit-able ``init``,
``elbo``, ``log_prob``, ``posterior``, ``responsibilities``, ``component_log_prob`` and
``sample``, re-exported here as functions of ``(model, params, ...)``; ``fit`` drives
jit-compiled epochs. ``VMoNF`` is the scikit-learn style estimator.
"""

__version__ = "0.1.0"

from vmonf_jax import flows  # noqa: E402
from vmonf_jax.estimator import VMoNF  # noqa: E402
from vmonf_jax.mixture import Mixture  # noqa: E402
from vmonf_jax.train import FitConfig, FitResult, NonFiniteLossError, fit  # noqa: E402


def init(model: Mixture, key, dtype=None):
    """Parameters of ``model`` (``(params, state)`` with batch-norm flows)."""
    return model.init(key) if dtype is None else model.init(key, dtype)


def elbo(model: Mixture, params, x, temperature=1.0, *, state=None):
    """Per-point ELBO (paper eq. 31)."""
    return model.elbo(params, x, temperature, state=state)


def log_prob(model: Mixture, params, x, *, state=None):
    """Exact per-point log p(x)."""
    return model.log_prob(params, x, state=state)


def posterior(model: Mixture, params, x, temperature=1.0):
    """q(k|x) at temperature T."""
    return model.posterior(params, x, temperature)


def responsibilities(model: Mixture, params, x, *, state=None):
    """Exact p(k|x)."""
    return model.responsibilities(params, x, state=state)


def component_log_prob(model: Mixture, params, x, *, state=None):
    """log p_k(x), shape (n, K)."""
    return model.component_log_prob(params, x, state=state)


def sample(model: Mixture, params, key, n, *, state=None):
    """``(x, k)``: n mixture samples and their components."""
    return model.sample(params, key, n, state=state)


__all__ = [
    "FitConfig", "FitResult", "Mixture", "NonFiniteLossError", "VMoNF", "__version__",
    "component_log_prob", "elbo", "fit", "flows", "init", "log_prob", "posterior",
    "responsibilities", "sample",
]
