"""vmonf-jax: Variational Mixture of Normalizing Flows (Pires & Figueiredo, 2020) in JAX."""

from vmonf_jax import flows

__version__ = "0.1.0"
__all__ = ["flows", "__version__"]
