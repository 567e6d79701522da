"""vmonf-jax: Variational Mixture of Normalizing Flows (Pires & Figueiredo, 2020) in JAX.

Functional core: ``Mixture`` (static model description) with pure, jit-able ``init``,
``elbo``, ``log_prob``, ``posterior``, ``responsibilities``, ``component_log_prob`` and
``sample``, re-exported here as functions of ``(model, params, ...)``; ``fit`` drives
jit-compiled epochs. ``VMoNF`` is the scikit-learn style estimator.
"""

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = "0.2.0"

# Imported on first use, so `vmonf --help` and input errors answer without loading JAX.
_LAZY = {
    "flows": ("vmonf_jax.model.flows", None),
    "VMoNF": ("vmonf_jax.estimator", "VMoNF"),
    "Mixture": ("vmonf_jax.model.mixture", "Mixture"),
    "FitConfig": ("vmonf_jax.train", "FitConfig"),
    "FitResult": ("vmonf_jax.train", "FitResult"),
    "NonFiniteLossError": ("vmonf_jax.train", "NonFiniteLossError"),
    "LossExplodedError": ("vmonf_jax.train", "LossExplodedError"),
    "fit": ("vmonf_jax.train", "fit"),
}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'vmonf_jax' has no attribute {name!r}")
    module, attr = _LAZY[name]
    mod = importlib.import_module(module)
    return mod if attr is None else getattr(mod, attr)


class _PublicModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``import vmonf_jax.flows`` (its public name, docs/api.md) gives ``vmonf_jax.model.flows``.

    The module itself, not a copy, and imported only when asked for.
    """

    NAMES = {f"vmonf_jax.{name}": module for name, (module, attr) in _LAZY.items()
             if attr is None}

    def find_spec(self, name, path=None, target=None):
        if name not in self.NAMES:
            return None
        return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec):
        return importlib.import_module(self.NAMES[spec.name])

    def exec_module(self, module):
        pass  # already imported under its own name


sys.meta_path.append(_PublicModules())


def init(model, key, dtype=None):
    """``(params, state)`` of ``model`` (the state has arrays only with batch-norm flows)."""
    return model.init(key) if dtype is None else model.init(key, dtype)


def elbo(model, params, x, temperature=1.0, *, state=None):
    """Per-point ELBO (paper eq. 31)."""
    return model.elbo(params, x, temperature, state=state)


def log_prob(model, params, x, *, state=None):
    """Exact per-point log p(x)."""
    return model.log_prob(params, x, state=state)


def posterior(model, params, x, temperature=1.0):
    """q(k|x) at temperature T."""
    return model.posterior(params, x, temperature)


def responsibilities(model, params, x, *, state=None):
    """Exact p(k|x)."""
    return model.responsibilities(params, x, state=state)


def component_log_prob(model, params, x, *, state=None):
    """log p_k(x), shape (n, K)."""
    return model.component_log_prob(params, x, state=state)


def sample(model, params, key, n, *, state=None):
    """``(x, k)``: n mixture samples and their components."""
    return model.sample(params, key, n, state=state)


__all__ = [
    "FitConfig", "FitResult", "LossExplodedError", "Mixture", "NonFiniteLossError", "VMoNF",
    "__version__",
    "component_log_prob", "elbo", "fit", "flows", "init", "log_prob", "posterior",
    "responsibilities", "sample",
]
