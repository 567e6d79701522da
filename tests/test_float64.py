"""float64 layers and flows, with x64 enabled only inside each test (``jax.enable_x64``).

``jax.enable_x64(True)`` is a context manager in jax 0.10 (``jax.experimental.enable_x64`` is
gone); it is thread-local and restored on exit, so the other tests keep the float32 default.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vmonf_jax import flows
from vmonf_jax.model.bijectors import (
    BatchNorm,
    LUAffine,
    PermutationLayer,
    PReLULayer,
)

pytestmark = pytest.mark.usefixtures("fast_compile")  # compile-bound tiny shapes

ATOL64 = 1e-9

# coupling, MAF and batch-norm layers are also covered through the flows below
LAYERS = {
    "lu-affine": (LUAffine(3, seed=2), 3),
    "prelu": (PReLULayer(3), 3),
    "permutation": (PermutationLayer.reversal(3), 3),
    "batchnorm": (BatchNorm(3), 3),
}

# both coupling parities and batch-norm; both MADE orderings; LU mixing with PReLU between;
# spline coupling over a Student-t base, autoregressive splines with batch-norm
FLOWS = {
    "realnvp-bn": lambda: flows.realnvp(3, n_blocks=2, hidden=(8,), batch_norm=True),
    "maf": lambda: flows.maf(3, n_blocks=2, hidden=(8,)),
    "glow-prelu": lambda: flows.glow(3, n_blocks=2, hidden=(8,), prelu=True),
    "spline-student_t": lambda: flows.make_flow("spline", 3, n_blocks=2, hidden=(8,),
                                                base="student_t"),
    "spline_ar-bn": lambda: flows.make_flow("spline_ar", 3, n_blocks=2, hidden=(8,),
                                            batch_norm=True),
}


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield
    assert not jax.config.jax_enable_x64


def _state(layer, dtype, rng):
    if not getattr(layer, "stateful", False):
        return {}
    return {"mean": jnp.asarray(rng.standard_normal(layer.dim), dtype),
            "var": jnp.asarray(np.exp(rng.standard_normal(layer.dim)), dtype)}


def _flow_kwargs(init):
    return init[0], {"state": init[1]}


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_float64_round_trip(name, x64, perturb):
    layer, dim = LAYERS[name]
    rng = np.random.default_rng(0)
    params = perturb(rng, layer.init(jax.random.key(0), jnp.float64))
    assert all(leaf.dtype == jnp.float64 for leaf in jax.tree.leaves(params))
    bij = layer.bijector(params, _state(layer, jnp.float64, rng))
    z = jnp.asarray(1.5 * rng.standard_normal((16, dim)), jnp.float64)
    x, ld_f = jax.jit(bij.forward_and_log_det)(z)
    z_back, ld_i = jax.jit(bij.inverse_and_log_det)(x)
    for out in (x, ld_f, z_back, ld_i):
        assert out.dtype == jnp.float64
    print(f"\n{name}: float64 round trip max err {np.abs(np.asarray(z_back - z)).max():.1e}")
    np.testing.assert_allclose(np.asarray(z_back), np.asarray(z), rtol=0, atol=ATOL64)
    np.testing.assert_allclose(np.asarray(ld_f), -np.asarray(ld_i), rtol=0, atol=ATOL64)


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_float32_stays_float32_with_x64(name, x64):
    layer, dim = LAYERS[name]
    rng = np.random.default_rng(1)
    bij = layer.bijector(layer.init(jax.random.key(0), jnp.float32),
                         _state(layer, jnp.float32, rng))
    z = jnp.asarray(rng.standard_normal((5, dim)), jnp.float32)
    for out in (*bij.forward_and_log_det(z), *bij.inverse_and_log_det(z)):
        assert out.dtype == jnp.float32


@pytest.mark.parametrize("name", list(FLOWS))
def test_flow_float64_round_trip(name, x64, perturb):
    flow = FLOWS[name]()
    rng = np.random.default_rng(2)
    params, kw = _flow_kwargs(flow.init(jax.random.key(0), dtype=jnp.float64))
    params = perturb(rng, params, 0.5)
    z = jnp.asarray(rng.standard_normal((16, flow.dim)), jnp.float64)

    @jax.jit
    def run(params, kw, z):
        x, ld_f = flow.forward(params, z, **kw)
        z_back, ld_i = flow.inverse(params, x, **kw)
        return x, ld_f, z_back, ld_i, flow.log_prob(params, x, **kw)

    outs = run(params, kw, z)
    for out in outs:
        assert out.dtype == jnp.float64
    assert flow.sample(params, jax.random.key(1), 3, **kw).dtype == jnp.float64
    x, ld_f, z_back, ld_i, _ = map(np.asarray, outs)
    print(f"\n{name}: float64 round trip max err {np.abs(z_back - np.asarray(z)).max():.1e}")
    assert np.abs(x - np.asarray(z)).max() > 0.1
    np.testing.assert_allclose(z_back, np.asarray(z), rtol=0, atol=ATOL64)
    np.testing.assert_allclose(ld_f, -ld_i, rtol=0, atol=ATOL64)


@pytest.mark.parametrize("name", list(FLOWS))
def test_flow_float32_stays_float32_with_x64(name, x64):
    flow = FLOWS[name]()
    params, kw = _flow_kwargs(flow.init(jax.random.key(0)))
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves((params, kw)))
    x = jnp.ones((4, flow.dim), jnp.float32)

    @jax.jit  # outputs have the same dtypes as eagerly (both trace the same code)
    def run(params, kw, x):
        outs = [*flow.forward(params, x, **kw), *flow.inverse(params, x, **kw),
                flow.log_prob(params, x, **kw), flow.sample(params, jax.random.key(1), 4, **kw)]
        if flow.has_state:
            lp, new_state = flow.log_prob(params, x, train=True, **kw)
            outs += [lp, *jax.tree.leaves(new_state)]
        return outs

    outs = run(params, kw, x)
    for out in outs:
        assert out.dtype == jnp.float32


def test_x64_does_not_leak():
    assert not jax.config.jax_enable_x64
    assert jnp.asarray(1.0).dtype == jnp.float32
