"""Shared test helpers, exposed as fixtures. Nothing global is configured here."""

import importlib.util
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest


def _perturb(seed, tree, scale=0.5):
    """Add ``scale * N(0, 1)`` noise to every floating leaf (moves layers away from identity).

    The noise comes from NumPy (``seed``: an int or a ``np.random.Generator``): drawing it with
    ``jax.random`` costs a compilation per leaf shape, which dominates these tiny tests.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    def add(leaf):
        if not jnp.issubdtype(leaf.dtype, jnp.floating):
            return leaf
        return leaf + jnp.asarray(scale * rng.standard_normal(leaf.shape), leaf.dtype)

    return jax.tree.map(add, tree)


def _jacobian_log_det(fn, points):
    """``log|det d fn(p) / dp|`` per row of ``points``, from ``jax.jacfwd`` (fn maps rows)."""
    def one(p):
        return jnp.linalg.slogdet(jax.jacfwd(lambda q: fn(q[None])[0])(p))[1]

    return jax.vmap(one)(points)


def _grid_density(log_prob, half_width=16.0, n=801):
    """``(mass, density)`` of a 2-D ``log_prob(points)`` on an n x n grid over +-half_width.

    The mass is the trapezoid rule's integral; the density (n, n) is evaluated in one jit.
    """
    g = np.linspace(-half_width, half_width, n)
    xx, yy = np.meshgrid(g, g, indexing="ij")
    grid = jnp.asarray(np.stack([xx.ravel(), yy.ravel()], 1), jnp.float32)
    density = np.exp(np.asarray(jax.jit(log_prob)(grid), np.float64)).reshape(n, n)
    w = np.full(n, g[1] - g[0])
    w[[0, -1]] /= 2
    return w @ density @ w, density


@pytest.fixture(scope="session")
def grid_density():
    """``grid_density(log_prob, half_width=16, n=801)``: ``(mass, density)`` on a 2-D grid."""
    return _grid_density


@pytest.fixture(scope="session")
def perturb():
    """``perturb(seed, tree, scale=0.5)``: a random draw around a (usually identity) init."""
    return _perturb


@pytest.fixture(scope="session")
def jacobian_log_det():
    """``jacobian_log_det(fn, points)``: per-row ``slogdet(jax.jacfwd(fn))`` log-abs-det."""
    return _jacobian_log_det


@pytest.fixture(scope="module")
def no_disk_cache():
    """``cli.main`` in this process leaves JAX's persistent cache (and the user's home) alone."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VMONF_NO_CACHE", "1")
        yield


@pytest.fixture(scope="module")
def fast_compile():
    """Compile with most XLA optimisations off while one module runs, then restore.

    Pays off for the compile-bound property tests on tiny shapes (about a quarter of their
    CPU time); modules opt in with ``pytestmark = pytest.mark.usefixtures("fast_compile")``.
    """
    old = jax.config.values["jax_disable_most_optimizations"]
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", old)


@pytest.fixture(scope="session")
def load_study():
    """``load_study(name)``: the module ``studies/<name>.py`` (studies are scripts)."""
    def load(name):
        path = Path(__file__).resolve().parent.parent / "studies" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(f"{name}_study", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
