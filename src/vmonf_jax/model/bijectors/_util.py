"""Helpers shared by the layers."""

import jax
import jax.numpy as jnp

LOG_SCALE_BOUND = 3.0


def bounded_log_scale(raw):
    """Soft-clamp a raw log-scale to (-3, 3): identity near 0, keeps flows stable early on."""
    return LOG_SCALE_BOUND * jnp.tanh(raw / LOG_SCALE_BOUND)


def cast_tree(tree, dtype):
    """Cast every floating leaf of a pytree to ``dtype``."""
    return jax.tree.map(lambda a: a.astype(dtype), tree)


def flax_init(module, key, dim, dtype):
    """Initialise a Flax module on a dummy row of width ``dim``; parameters in ``dtype``."""
    return cast_tree(module.init(key, jnp.zeros((1, dim), dtype)), dtype)
