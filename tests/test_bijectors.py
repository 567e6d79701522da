"""Property tests of every flow layer on small dims (float32; tolerances from API.md).

One registry lists every layer; each is evaluated once (one jit of a function vmapped over
several random parameter draws) by a module-scoped fixture, and the tests read its results.
"""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vmonf_jax.model.bijectors import (
    AffineCoupling,
    BatchNorm,
    LUAffine,
    MAFLayer,
    PermutationLayer,
    PReLULayer,
    SplineARLayer,
    SplineCoupling,
    Whiten,
)
from vmonf_jax.model.nets import made_masks

N_DRAWS = 3
N_POINTS = 16
pytestmark = pytest.mark.usefixtures("fast_compile")  # compile-bound tiny shapes

RT_ATOL = 1e-4  # round trip, float32
LD_ATOL = 1e-3  # log-det vs slogdet(jacfwd), float32


def _default_draw(perturb):
    def draw(layer, rng):
        params = layer.init(jax.random.key(int(rng.integers(2**31))), jnp.float32)
        return perturb(rng, params), {}

    return draw


def _spline_draw(perturb):
    # milder than the default 0.5: those draws give bins 1e-3 wide of slope ~1e3, where
    # float32's own spacing of x moves z by 4e-4 (conditioning, not an error of the layer)
    def draw(layer, rng):
        params = layer.init(jax.random.key(int(rng.integers(2**31))), jnp.float32)
        return perturb(rng, params, 0.3), {}

    return draw


def _prelu_draw(perturb):
    def draw(layer, rng):
        # slopes from exp(-3) to exp(3): several far from 1
        far = jnp.linspace(-3.0, 3.0, layer.dim, dtype=jnp.float32)
        return perturb(rng, {"log_alpha": far}, 0.3), {}

    return draw


def _batch_norm_draw(perturb):
    def draw(layer, rng):
        params = perturb(rng, layer.init(None, jnp.float32))
        state = {"mean": jnp.asarray(rng.standard_normal(layer.dim), jnp.float32),
                 "var": jnp.asarray(np.exp(rng.standard_normal(layer.dim)), jnp.float32)}
        return params, state

    return draw


# id -> (layer, dim, draw-factory). BatchNorm runs in eval mode with a random running state.
LAYERS = {
    "coupling-parity0": (AffineCoupling(4, (8,), parity=0), 4, _default_draw),
    "coupling-parity1": (AffineCoupling(5, (6,), parity=1), 5, _default_draw),
    "maf-natural": (MAFLayer(4, (8,), reverse=False), 4, _default_draw),
    "maf-reversed": (MAFLayer(5, (8, 8), reverse=True), 5, _default_draw),
    "spline-coupling-parity0": (SplineCoupling(4, (8,), parity=0, bins=4, bound=2.0), 4,
                                _spline_draw),
    "spline-coupling-parity1": (SplineCoupling(5, (6,), parity=1, bins=6), 5, _spline_draw),
    "spline-ar-natural": (SplineARLayer(3, (8,), reverse=False, bins=5, bound=2.0), 3,
                          _spline_draw),
    "spline-ar-reversed": (SplineARLayer(4, (8,), reverse=True, bins=3), 4, _spline_draw),
    "lu-affine": (LUAffine(4, seed=3), 4, _default_draw),
    "whiten": (Whiten(4), 4, _default_draw),
    "prelu": (PReLULayer(5), 5, _prelu_draw),
    "permutation-random": (PermutationLayer.random(5, seed=1), 5, _default_draw),
    "permutation-reversal": (PermutationLayer.reversal(4), 4, _default_draw),
    "batchnorm-eval": (BatchNorm(3), 3, _batch_norm_draw),
}

def _evaluate(layer, params, state, z):
    bij = layer.bijector(params, state)
    x, ld_f = bij.forward_and_log_det(z)
    z_back, ld_i = bij.inverse_and_log_det(x)
    return x, ld_f, z_back, ld_i


@pytest.fixture(scope="module", params=list(LAYERS), ids=list(LAYERS))
def results(request, fast_compile, perturb, jacobian_log_det):
    layer, dim, draw_factory = LAYERS[request.param]
    rng = np.random.default_rng(list(LAYERS).index(request.param))
    draws = [draw_factory(perturb)(layer, rng) for _ in range(N_DRAWS)]
    params, state = jax.tree.map(lambda *a: jnp.stack(a), *draws)
    z = jnp.asarray(1.5 * rng.standard_normal((N_DRAWS, N_POINTS, dim)), jnp.float32)

    def all_checks(p, s, z):
        x, ld_f, z_back, ld_i = _evaluate(layer, p, s, z)
        bij = layer.bijector(p, s)
        jac_f = jacobian_log_det(lambda a: bij.forward(a), z)
        jac_i = jacobian_log_det(lambda a: bij.inverse(a), x)
        return x, ld_f, z_back, ld_i, jac_f, jac_i

    jitted = jax.jit(jax.vmap(all_checks))(params, state, z)
    eager = _evaluate(layer, *draws[0], z[0])  # not jitted: compared with draw 0 of the jit
    out = dict(zip(["x", "ld_f", "z_back", "ld_i", "jac_f", "jac_i"], map(np.asarray, jitted)))
    out["eager"] = tuple(map(np.asarray, eager))
    out["z"] = np.asarray(z)
    out["name"] = request.param
    return out


def test_round_trip(results):
    z = results["z"]
    np.testing.assert_allclose(results["z_back"], z, rtol=0, atol=RT_ATOL)
    assert np.all(np.isfinite(results["x"]))


def test_forward_log_det_matches_jacobian(results):
    np.testing.assert_allclose(results["ld_f"], results["jac_f"], rtol=0, atol=LD_ATOL)
    assert results["ld_f"].shape == (N_DRAWS, N_POINTS)


def test_inverse_log_det_matches_jacobian(results):
    np.testing.assert_allclose(results["ld_i"], results["jac_i"], rtol=0, atol=LD_ATOL)


def test_forward_log_det_is_minus_inverse(results):
    np.testing.assert_allclose(results["ld_f"], -results["ld_i"], rtol=0, atol=LD_ATOL)


def test_jit_matches_eager(results):
    for key, value in zip(["x", "ld_f", "z_back", "ld_i"], results["eager"]):
        np.testing.assert_allclose(value, results[key][0], rtol=1e-5, atol=1e-5, err_msg=key)


def test_draws_are_not_identity(results):
    """Sanity of the draws: every layer really moves points; non-volume-preserving ones
    have log-dets far from zero."""
    assert np.abs(results["x"] - results["z"]).max() > 0.1
    if not results["name"].startswith("permutation"):
        assert np.abs(results["ld_f"]).max() > 0.1


# --- MADE / MAF autoregressive structure -------------------------------------------------

MADE_CASES = [(3, (2,), False), (4, (3,), True), (5, (4, 4), False), (5, (16,), True)]


def _ordering(dim, reverse):
    return np.arange(dim)[::-1] if reverse else np.arange(dim)


@pytest.mark.parametrize("dim,hidden,reverse", MADE_CASES)
def test_made_masks_connect_every_earlier_input(dim, hidden, reverse):
    """Mask product: output i reaches input j iff j is strictly earlier (flowjax #147)."""
    masks = made_masks(dim, hidden, reverse)
    reach = masks[0]
    for m in masks[1:]:
        reach = (reach @ m) > 0
    order = _ordering(dim, reverse)
    for head in (reach[:, :dim], reach[:, dim:]):  # shift and log-scale heads
        in_order = head[np.ix_(order, order)]  # [input position, output position]
        np.testing.assert_array_equal(in_order, np.triu(np.ones((dim, dim), bool), 1))


@pytest.mark.parametrize("dim,hidden,reverse", MADE_CASES)
def test_maf_jacobian_triangular_and_dense(dim, hidden, reverse, perturb):
    layer = MAFLayer(dim, hidden, reverse=reverse)
    rng = np.random.default_rng(dim * 10 + len(hidden) + reverse)
    params = [perturb(rng, layer.init(jax.random.key(i), jnp.float32)) for i in range(N_DRAWS)]
    params = jax.tree.map(lambda *a: jnp.stack(a), *params)
    x = jnp.asarray(2.0 * rng.standard_normal((16, dim)), jnp.float32)

    @jax.jit
    @partial(jax.vmap, in_axes=(0, None))
    def jacobians(p, x):
        bij = layer.bijector(p)
        inv = jax.vmap(jax.jacfwd(lambda a: bij.inverse(a[None])[0]))(x)
        fwd = jax.vmap(jax.jacfwd(lambda a: bij.forward(a[None])[0]))(x)
        return inv, fwd

    # several parameter draws: a ReLU path can be dead for one draw at every point
    jacs = jacobians(params, x)
    order = _ordering(dim, reverse)
    strictly_upper = np.triu(np.ones((dim, dim), bool), 1)
    strictly_lower = strictly_upper.T
    for jac in jacs:
        jac = np.asarray(jac).reshape(-1, dim, dim)  # draws x points
        j = jac[:, order][:, :, order]  # [point, output position, input position]
        # no output depends on a later input (exactly, as masked weights are zero) ...
        np.testing.assert_array_equal(j[:, strictly_upper], 0.0)
        assert np.all(np.abs(np.diagonal(j, axis1=1, axis2=2)) > 0)
        # ... and every output depends on every earlier one (at some of the points)
        assert np.all(np.abs(j[:, strictly_lower]).max(0) > 1e-6), np.abs(j).max(0)


# --- BatchNorm in training mode ----------------------------------------------------------

def test_batch_norm_train_mode_normalises_and_updates_state():
    dim = 3
    layer = BatchNorm(dim)
    params = layer.init(jax.random.key(0), jnp.float32)
    state = {"mean": jnp.array([0.5, -1.0, 0.0]), "var": jnp.array([2.0, 0.5, 1.0])}
    x = (jax.random.normal(jax.random.key(1), (512, dim)) * jnp.array([3.0, 0.2, 1.0])
         + jnp.array([4.0, -2.0, 0.3]))
    bij, new_state = layer.train_bijector(params, state, x)
    z, ld = bij.inverse_and_log_det(x)
    np.testing.assert_allclose(np.asarray(z.mean(0)), 0.0, atol=1e-4)
    np.testing.assert_allclose(np.asarray(z.var(0)), 1.0, atol=1e-3)
    batch_mean, batch_var = np.asarray(x.mean(0)), np.asarray(x.var(0))
    np.testing.assert_allclose(
        np.asarray(ld), np.full(512, -0.5 * np.log(batch_var + layer.eps).sum()), rtol=1e-5)
    # the running statistics move towards the batch statistics, by (1 - momentum)
    for key, batch in [("mean", batch_mean), ("var", batch_var)]:
        old, new = np.asarray(state[key]), np.asarray(new_state[key])
        assert np.all(np.abs(new - batch) < np.abs(old - batch)), key
        np.testing.assert_allclose(new, layer.momentum * old + (1 - layer.momentum) * batch,
                                   rtol=1e-6)
    # train and eval bijectors agree once the state holds the batch statistics
    eval_z, _ = layer.bijector(params, {"mean": x.mean(0), "var": x.var(0)}).inverse_and_log_det(x)
    np.testing.assert_allclose(np.asarray(eval_z), np.asarray(z), rtol=1e-6, atol=1e-6)
