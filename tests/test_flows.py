"""Whole flows (RealNVP, MAF, Glow; with PReLU layers; batch-norm flows in eval mode) on
small dims, float32."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vmonf_jax import flows

pytestmark = pytest.mark.usefixtures("fast_compile")  # tiny, compile-bound shapes

RT_ATOL = 1e-4
LD_ATOL = 1e-3

# id -> builder; dims 2-3, few blocks, small hidden layers
FLOWS = {
    "realnvp": lambda: flows.realnvp(3, n_blocks=4, hidden=(8,)),
    "realnvp-bn": lambda: flows.realnvp(3, n_blocks=3, hidden=(8,), batch_norm=True),
    "maf": lambda: flows.maf(3, n_blocks=3, hidden=(8,)),
    "glow": lambda: flows.glow(3, n_blocks=3, hidden=(8,)),
    "glow-prelu-bn": lambda: flows.glow(3, n_blocks=2, hidden=(8,), prelu=True,
                                        batch_norm=True),
    "maf-prelu": lambda: flows.maf(3, n_blocks=2, hidden=(8,), prelu=True),
}


def _perturbed(flow, perturb, seed, scale=0.5):
    """Perturbed params and a kwargs dict (``state=`` random running stats for batch-norm)."""
    rng = np.random.default_rng(seed)
    params, state = flow.init(jax.random.key(seed))
    if not flow.has_state:
        return perturb(rng, params, scale), {}
    state = tuple(
        {"mean": jnp.asarray(rng.standard_normal(s["mean"].shape), jnp.float32),
         "var": jnp.asarray(np.exp(0.5 * rng.standard_normal(s["var"].shape)), jnp.float32)}
        if s else s
        for s in state)
    return perturb(rng, params, scale), {"state": state}


@pytest.fixture(scope="module", params=list(FLOWS), ids=list(FLOWS))
def flow_results(request, fast_compile, perturb, jacobian_log_det):
    flow = FLOWS[request.param]()
    params, kw = _perturbed(flow, perturb, seed=list(FLOWS).index(request.param))
    z = jnp.asarray(np.random.default_rng(9).standard_normal((24, flow.dim)), jnp.float32)

    @jax.jit
    def run(params, kw, z):
        x, ld_f = flow.forward(params, z, **kw)
        z_back, ld_i = flow.inverse(params, x, **kw)
        jac_f = jacobian_log_det(lambda a: flow.forward(params, a, **kw)[0], z)
        lp = flow.log_prob(params, x, **kw)
        return x, ld_f, z_back, ld_i, jac_f, lp

    names = ["x", "ld_f", "z_back", "ld_i", "jac_f", "lp"]
    out = dict(zip(names, map(np.asarray, run(params, kw, z))))
    out["z"] = np.asarray(z)
    return out


def test_flow_round_trip(flow_results):
    r = flow_results
    print(f"\nround trip max err {np.abs(r['z_back'] - r['z']).max():.2e}, log-det max err "
          f"{np.abs(r['ld_f'] - r['jac_f']).max():.2e}")
    assert np.abs(r["x"] - r["z"]).max() > 0.1  # the perturbed flow is not the identity
    np.testing.assert_allclose(r["z_back"], r["z"], rtol=0, atol=RT_ATOL)


def test_flow_log_det_matches_jacobian(flow_results):
    r = flow_results
    np.testing.assert_allclose(r["ld_f"], r["jac_f"], rtol=0, atol=LD_ATOL)
    np.testing.assert_allclose(r["ld_f"], -r["ld_i"], rtol=0, atol=LD_ATOL)
    # change of variables: log p(x) = log N(z) - log|det dx/dz|
    log_normal = -0.5 * (r["z"] ** 2).sum(1) - 0.5 * r["z"].shape[1] * np.log(2 * np.pi)
    np.testing.assert_allclose(r["lp"], log_normal - r["ld_f"], rtol=0, atol=LD_ATOL)


# --- densities integrate to one, samples invert to the base ------------------------------

TWO_D = {
    "realnvp": lambda: flows.realnvp(2, n_blocks=4, hidden=(8,)),
    "maf": lambda: flows.maf(2, n_blocks=3, hidden=(8,)),
    "glow-prelu": lambda: flows.glow(2, n_blocks=3, hidden=(8,), prelu=True),
}


@pytest.mark.parametrize("name", list(TWO_D))
def test_2d_density_integrates_to_one(name, perturb, grid_density):
    flow = TWO_D[name]()
    params, _ = _perturbed(flow, perturb, seed=11, scale=0.3)
    # spacing 0.04; a wide draw keeps mass past +-8
    mass, density = grid_density(lambda x: flow.log_prob(params, x))
    print(f"\n{name}: mass {mass:.5f}, peak {density.max():.3f}")
    assert density.max() < 5.0  # the perturbation keeps the density resolvable on this grid
    assert abs(mass - 1.0) < 0.01


@pytest.mark.parametrize("name", list(TWO_D))
def test_samples_invert_to_standard_normal(name, perturb):
    flow = TWO_D[name]()
    params, _ = _perturbed(flow, perturb, seed=12, scale=0.3)

    @jax.jit
    def pushed_back(params, key):
        xs = flow.sample(params, key, 20_000)
        return xs, flow.inverse(params, xs)[0]

    xs, z = map(np.asarray, pushed_back(params, jax.random.key(3)))
    assert xs.shape == (20_000, 2) and np.all(np.isfinite(xs))
    assert np.abs(np.cov(xs.T) - np.eye(2)).max() > 0.05  # the data are not the base
    np.testing.assert_allclose(z.mean(0), 0.0, atol=0.05)
    np.testing.assert_allclose(np.cov(z.T), np.eye(2), atol=0.05)


# --- stacked flows, dtypes, argument checks ----------------------------------------------

@pytest.mark.parametrize("name", ["maf", "realnvp-bn"])
def test_vmapped_stacked_flows_match_per_flow(name, perturb):
    flow = FLOWS[name]()
    k = 3
    params, state = jax.vmap(flow.init)(jax.random.split(jax.random.key(0), k))
    params = perturb(np.random.default_rng(5), params, 0.5)
    state = perturb(np.random.default_rng(7), state, 0.3)  # var stays > 0 at this scale
    x = jnp.asarray(np.random.default_rng(6).standard_normal((10, flow.dim)), jnp.float32)
    take = [jax.tree.map(lambda a, i=i: a[i], (params, state)) for i in range(k)]
    lp = jax.jit(lambda p, s: flow.log_prob(p, x, state=s))
    stacked = jax.jit(jax.vmap(lp))(params, state)
    single = [lp(p, s) for p, s in take]
    assert stacked.shape == (k, 10)
    np.testing.assert_allclose(np.asarray(stacked), np.stack(single), rtol=1e-5, atol=1e-6)
    assert np.ptp(np.asarray(stacked)[:, 0]) > 1e-3  # the k flows really differ


@pytest.mark.parametrize("name", ["maf", "realnvp-bn", "glow-prelu-bn"])
def test_float32_in_float32_out(name):
    flow = FLOWS[name]()
    params, state = flow.init(jax.random.key(0))
    kw = {"state": state}
    x = jnp.ones((4, flow.dim), jnp.float32)

    @jax.jit  # the dtypes are those of eager calls (both trace the same code)
    def run(params, kw, x):
        return [*flow.forward(params, x, **kw), *flow.inverse(params, x, **kw),
                flow.log_prob(params, x, **kw), flow.sample(params, jax.random.key(1), 4, **kw)]

    for out in run(params, kw, x):
        assert out.dtype == jnp.float32


def test_batch_norm_flow_train_mode_returns_new_state():
    flow = FLOWS["realnvp-bn"]()
    params, state = flow.init(jax.random.key(0))
    x = 3.0 + 2.0 * jax.random.normal(jax.random.key(1), (64, flow.dim))
    lp, new_state = jax.jit(partial(flow.log_prob, train=True))(params, x, state=state)
    assert lp.shape == (64,) and len(new_state) == len(state)
    assert np.all(np.isfinite(np.asarray(lp)))
    # the batch-norm layer next to the data moves its running mean by (1 - momentum) towards
    # the batch mean; the inner ones see already-normalised data (the couplings start as
    # identities), so their statistics stay near (0, 1)
    last = max(i for i, s in enumerate(state) if s)
    momentum = flow.layers[last].momentum
    np.testing.assert_allclose(np.asarray(new_state[last]["mean"]),
                               (1 - momentum) * np.asarray(x.mean(0)), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(new_state[last]["var"]),
                               momentum + (1 - momentum) * np.asarray(x.var(0)), rtol=1e-5)
    for i, (n, s) in enumerate(zip(new_state, state)):
        if s and i != last:
            np.testing.assert_allclose(np.asarray(n["mean"]), 0.0, atol=1e-4)
    with pytest.raises(ValueError, match="state"):
        flow.log_prob(params, x)


def test_glow_blocks_are_lu_mixing_then_coupling_with_prelu_between():
    flow = flows.glow(4, n_blocks=3, hidden=(8,), prelu=True)
    kinds = [type(layer).__name__ for layer in flow.layers]
    block = ["AffineCoupling", "LUAffine"]  # base -> data order: mixing acts first on data
    assert kinds == block + ["PReLULayer"] + block + ["PReLULayer"] + block
    lus = [layer for layer in flow.layers if type(layer).__name__ == "LUAffine"]
    assert len({layer.seed for layer in lus}) == 3  # a different permutation per block
    assert flows.make_flow("glow", 4, 3, (8,), prelu=True) == flow


def test_realnvp_needs_two_dims():
    with pytest.raises(ValueError, match="at least 2 features"):
        flows.realnvp(1)


@pytest.mark.parametrize("build", [
    lambda: flows.realnvp(0),
    lambda: flows.maf(0),
    lambda: flows.maf(-2),
    lambda: flows.realnvp(2, n_blocks=0),
    lambda: flows.maf(2, n_blocks=-1),
    lambda: flows.realnvp(2, hidden=(0,)),
    lambda: flows.maf(2, hidden=(8, -1)),
    lambda: flows.glow(1),
    lambda: flows.glow(2, hidden=(0,)),
    lambda: flows.make_flow("nice", 2, 2, (8,)),
])
def test_bad_sizes_raise(build):
    with pytest.raises(ValueError):
        build()


# --- maximum likelihood on a non-Gaussian toy --------------------------------------------

def _banana(rng, n):
    a = rng.standard_normal(n)
    b = 0.5 * a**2 - 1.0 + 0.3 * rng.standard_normal(n)
    return np.stack([a, b], 1).astype(np.float32)


def test_realnvp_fit_beats_full_covariance_gaussian():
    rng = np.random.default_rng(0)
    train, test = _banana(rng, 1024), _banana(rng, 2048)
    mu, cov = train.mean(0), np.cov(train.T, bias=True)
    d = test - mu
    gauss = (-0.5 * np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d)
             - 0.5 * np.log(np.linalg.det(2 * np.pi * cov))).mean()

    flow = flows.realnvp(2, n_blocks=6, hidden=(16,))
    opt = optax.adam(1e-2)
    x = jnp.asarray(train)

    @jax.jit
    def fit(params):
        def step(carry, _):
            params, opt_state = carry
            loss, grads = jax.value_and_grad(lambda p: -flow.log_prob(p, x).mean())(params)
            updates, opt_state = opt.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, _), losses = jax.lax.scan(step, (params, opt.init(params)), None, length=300)
        return params, losses

    params, losses = fit(flow.init(jax.random.key(0))[0])
    held_out = float(flow.log_prob(params, jnp.asarray(test)).mean())
    print(f"\nheld-out loglik: flow {held_out:.3f}, gaussian {gauss:.3f}")
    assert np.all(np.isfinite(np.asarray(losses)))
    assert held_out > gauss + 0.3
