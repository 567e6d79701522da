"""The mixture (functional core): ELBO bound, vmap vs loop, gradients, normalisation, sampling.

Tiny models (2 blocks, hidden 4) with parameters perturbed away from the identity init.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vmonf_jax as vm
from vmonf_jax import flows, train
from vmonf_jax.model.mixture import Mixture, elbo_from_terms

FLOWS = ("realnvp", "maf")


def _model(flow="realnvp", k=3, dim=2, **kw):
    return Mixture(dim=dim, n_components=k, flow_name=flow, n_blocks=2, hidden=(4,),
                   posterior_hidden=(4,), **kw)


def _params(model, perturb, seed, scale=0.3):
    return perturb(seed, model.init(jax.random.key(seed))[0], scale)


def _points(seed, n=64, dim=2, scale=2.0):
    return jnp.asarray(scale * np.random.default_rng(seed).standard_normal((n, dim)), jnp.float32)


@pytest.mark.parametrize("flow", FLOWS)
def test_elbo_bounds_log_prob_with_equality_at_exact_posterior(flow, perturb):
    model = _model(flow, dim=3)
    params = _params(model, perturb, 0, scale=0.5)
    x = _points(1, dim=3)

    @jax.jit
    def terms(params, x, temperatures):
        log_p = vm.log_prob(model, params, x)
        elbos = jax.vmap(lambda t: vm.elbo(model, params, x, t))(temperatures)
        resp = vm.responsibilities(model, params, x)
        exact = elbo_from_terms(model.joint(params, x), jnp.log(resp))
        return log_p, elbos, exact

    temperatures = jnp.array([0.05, 0.3, 1.0, 4.0])
    log_p, elbos, exact = terms(params, x, temperatures)
    assert log_p.shape == (64,) and bool(jnp.all(jnp.isfinite(log_p)))
    assert elbos.shape == (4, 64) and bool(jnp.all(jnp.isfinite(elbos)))
    assert bool(jnp.all(elbos <= log_p + 1e-5)), float(jnp.max(elbos - log_p))
    # the gap KL(q || p(k|x)) is positive for a q unrelated to the model
    assert float(jnp.mean(log_p - elbos[2])) > 1e-3
    np.testing.assert_allclose(exact, log_p, atol=1e-4)


def test_elbo_from_terms_counts_zero_weight_terms_as_zero():
    joint = jnp.array([[-1.0, -jnp.inf], [-2.0, -3.0]])
    log_q = jnp.array([[0.0, -jnp.inf], [jnp.log(0.5), jnp.log(0.5)]])
    out = elbo_from_terms(joint, log_q)
    np.testing.assert_allclose(out, [-1.0, 0.5 * (-2.0 - 3.0) + jnp.log(2.0)], rtol=1e-6)


@pytest.mark.parametrize("flow", FLOWS)
def test_vmap_over_components_equals_python_loop(flow, perturb):
    model = _model(flow, k=4, dim=3)
    params = _params(model, perturb, 2, scale=0.5)
    x = _points(3, n=50, dim=3)
    got = jax.jit(lambda p, x: vm.component_log_prob(model, p, x))(params, x)
    assert got.shape == (50, 4)
    loop = jax.jit(model.flow.log_prob)  # one component at a time
    for k in range(4):
        p_k = jax.tree.map(lambda a, k=k: a[k], params["components"])
        np.testing.assert_allclose(got[:, k], loop(p_k, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("prior", ["uniform", "learned"])
def test_training_loss_gradients_finite_for_labelled_and_unlabelled(prior, perturb):
    model = _model("realnvp", k=3, prior=prior)
    params = _params(model, perturb, 4, scale=0.5)
    x = _points(5, n=12)
    y_unl = jnp.full((12,), -1, jnp.int32)
    y_lab = jnp.asarray(np.arange(12) % 3, jnp.int32)
    y_mix = jnp.where(jnp.arange(12) % 2 == 0, y_lab, -1)

    def loss(p, y, t):
        losses, (state, metrics) = train.point_losses(model, p, None, x, y, t)
        return losses.mean(), losses

    value_and_grad = jax.jit(jax.value_and_grad(loss, has_aux=True))
    for y in (y_unl, y_lab, y_mix):
        for t in (0.1, 1.0):
            (value, losses), grads = value_and_grad(params, y, t)
            assert np.isfinite(float(value))
            leaves = jax.tree.leaves(grads)
            assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
            assert sum(float(jnp.abs(g).sum()) for g in leaves) > 0
    # unlabelled rows: -ELBO; labelled rows: -log p_y(x) - log pi_y - log q(y|x)
    (_, losses), _ = value_and_grad(params, y_mix, 0.5)
    joint, log_q = jax.jit(lambda p: (model.joint(p, x), model.log_posterior(p, x, 0.5)))(params)
    rows = np.arange(12)
    want = np.where(np.asarray(y_mix) >= 0,
                    -(joint[rows, y_lab] + log_q[rows, y_lab]),
                    -elbo_from_terms(joint, log_q))
    np.testing.assert_allclose(losses, want, rtol=1e-5, atol=1e-5)


def test_labelled_point_trains_only_its_own_component(perturb):
    model = _model("realnvp", k=3)
    params = _params(model, perturb, 6, scale=0.5)
    x = _points(7, n=8)
    y = jnp.full((8,), 1, jnp.int32)
    grads = jax.jit(jax.grad(
        lambda p: train.point_losses(model, p, None, x, y, 1.0)[0].mean()))(params)
    for k in range(3):
        norm = sum(float(jnp.abs(g[k]).sum()) for g in jax.tree.leaves(grads["components"]))
        assert (norm > 0) if k == 1 else (norm == 0), (k, norm)
    assert sum(float(jnp.abs(g).sum()) for g in jax.tree.leaves(grads["posterior"])) > 0


@pytest.mark.parametrize("flow", [*FLOWS, "glow"])
def test_mixture_density_integrates_to_one_on_2d_grid(flow, perturb):
    model = _model(flow, k=3, prior="learned")
    params = _params(model, perturb, 1, scale=0.3)  # perturbed prior too: non-uniform pi
    assert float(jnp.ptp(jax.nn.softmax(params["prior_logits"]))) > 0.05
    half, n = 12.0, 601
    g = np.linspace(-half, half, n, dtype=np.float32)
    grid = jnp.asarray(np.stack(np.meshgrid(g, g), -1).reshape(-1, 2))
    dens = np.exp(np.asarray(jax.jit(lambda p, x: model.log_prob(p, x))(params, grid),
                             np.float64)).reshape(n, n)
    total = dens.sum() * float(g[1] - g[0]) ** 2
    assert abs(total - 1.0) <= 0.01, total
    edge = max(dens[[0, -1], :].max(), dens[:, [0, -1]].max())
    assert edge < 1e-4  # the grid covers the mass


def test_sample_components_follow_learned_prior(perturb):
    model = _model("realnvp", k=3, prior="learned")
    params = _params(model, perturb, 8)
    pi = np.array([0.6, 0.3, 0.1], np.float32)
    params = {**params, "prior_logits": jnp.log(jnp.asarray(pi)) + 1.7}  # shift-invariant
    n = 20000
    x, k = jax.jit(lambda p, key: model.sample(p, key, n))(params, jax.random.key(9))
    assert x.shape == (n, 2) and k.shape == (n,)
    assert bool(jnp.all(jnp.isfinite(x)))
    freq = np.bincount(np.asarray(k), minlength=3) / n
    np.testing.assert_allclose(freq, pi, atol=0.02)
    # each row comes from its own component: the rows labelled c, mapped back through flow
    # c, are standard normal (mean within 4.5 standard errors, covariance within 0.12 of I;
    # rows shuffled against their labels miss both by far: z-scores ~ 10-50, variances ~ 3)
    inverse = jax.jit(lambda p, x: model.flow.inverse(p, x)[0])
    k = np.asarray(k)
    for c in range(3):
        p_c = jax.tree.map(lambda a, c=c: a[c], params["components"])
        z = np.asarray(inverse(p_c, x[k == c]), np.float64)
        np.testing.assert_array_less(np.abs(z.mean(0)) * np.sqrt(len(z)), 4.5)
        np.testing.assert_allclose(np.cov(z.T), np.eye(2), atol=0.12)


def test_sample_component_maps_back_to_standard_normal(perturb):
    model = _model("maf", k=3)
    params = _params(model, perturb, 10, scale=0.5)
    n, comp = 8000, 2
    key = jax.random.key(11)
    xs = jax.jit(lambda p, c: model.sample_component(p, key, n, c))(params, comp)  # traced c
    assert xs.shape == (n, 2)
    p_k = jax.tree.map(lambda a: a[comp], params["components"])
    np.testing.assert_allclose(xs, jax.jit(lambda p: model.flow.sample(p, key, n))(p_k),
                               rtol=1e-5, atol=1e-5)
    z, _ = jax.jit(model.flow.inverse)(p_k, xs)
    z = np.asarray(z, np.float64)
    np.testing.assert_allclose(z.mean(0), 0.0, atol=0.05)
    np.testing.assert_allclose(np.cov(z.T), np.eye(2), atol=0.06)


def test_posterior_is_a_softmax_over_components(perturb):
    model = _model("realnvp", k=3)
    params = _params(model, perturb, 12, scale=0.5)
    x = _points(13, n=20)
    post = jax.jit(lambda p, t: vm.posterior(model, p, x, t))
    for t in (0.1, 1.0, 3.0):
        q = post(params, t)
        assert q.shape == (20, 3)
        np.testing.assert_allclose(q.sum(1), 1.0, rtol=1e-5)
    r = jax.jit(lambda p: vm.responsibilities(model, p, x))(params)
    np.testing.assert_allclose(r.sum(1), 1.0, rtol=1e-5)
    # a lower temperature sharpens q
    assert float(post(params, 0.1).max(1).mean()) >= float(post(params, 3.0).max(1).mean())


@pytest.mark.parametrize("flow", FLOWS)
def test_batch_norm_mixture(flow, perturb):
    model = _model(flow, k=2, batch_norm=True)
    out = vm.init(model, jax.random.key(14))
    assert isinstance(out, tuple) and len(out) == 2
    params, state = out
    params = perturb(15, params, 0.3)
    x = _points(16, n=40)

    @jax.jit
    def run(params, state):
        pick = lambda k: lambda a: a[k]  # noqa: E731
        return {
            "comp": model.component_log_prob(params, x, state=state),
            "train": model.component_log_prob(params, x, state=state, train=True),
            "log_p": model.log_prob(params, x, state=state),
            "elbo": model.elbo(params, x, 0.5, state=state),
            "loop": [model.flow.log_prob(jax.tree.map(pick(k), params["components"]), x,
                                         state=jax.tree.map(pick(k), state))
                     for k in range(2)],
            "loss": train.point_losses(model, params, state, x, jnp.full((40,), -1), 1.0),
            "sample": model.sample(params, jax.random.key(17), 30, state=state),
            "one": model.sample_component(params, jax.random.key(18), 5, 1, state=state),
        }

    r = run(params, state)
    assert r["comp"].shape == (40, 2) and bool(jnp.all(jnp.isfinite(r["comp"])))
    comp_t, new_state = r["train"]
    assert comp_t.shape == (40, 2)
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    changed = [not np.array_equal(a, b)
               for a, b in zip(jax.tree.leaves(new_state), jax.tree.leaves(state))]
    assert any(changed)  # running statistics were updated
    assert bool(jnp.all(r["elbo"] <= r["log_p"] + 1e-5))
    for k in range(2):
        np.testing.assert_allclose(r["comp"][:, k], r["loop"][k], rtol=1e-5, atol=1e-5)
    losses, (st, _) = r["loss"]
    assert bool(jnp.all(jnp.isfinite(losses)))
    assert jax.tree.structure(st) == jax.tree.structure(state)
    xs, ks = r["sample"]
    assert xs.shape == (30, 2) and ks.shape == (30,) and bool(jnp.all(jnp.isfinite(xs)))
    assert r["one"].shape == (5, 2)
    if flow != "realnvp":
        return
    # and a (two-epoch) fit carries the state through
    res = train.fit(jax.random.key(19), np.asarray(x),
                    train.FitConfig(model=model, epochs=2, batch_size=16, init="random",
                                    verbose=False))
    assert res.state is not None
    assert jax.tree.structure(res.state) == jax.tree.structure(state)
    assert all(bool(jnp.all(jnp.isfinite(a))) for a in jax.tree.leaves(res.params))


def test_flow_object_name_and_spec_build_the_same_mixture():
    by_name = Mixture(2, 3, "glow", n_blocks=2, hidden=(4,), prelu=True)
    by_spec = Mixture(2, 3, {"name": "glow", "n_blocks": 2, "hidden": (4,), "prelu": True})
    by_object = Mixture(2, 3, flows.glow(2, n_blocks=2, hidden=(4,), prelu=True))
    assert by_name == by_spec == by_object and hash(by_name) == hash(by_object)
    assert by_name.flow is by_name.flow  # built once, not per access
    assert Mixture(2, flow_name="maf", n_blocks=2, hidden=(4,)) == Mixture(
        2, flow=flows.maf(2, n_blocks=2, hidden=(4,)))
    assert Mixture(2, flow=flows.glow(2, n_blocks=2, batch_norm=True)).batch_norm


@pytest.mark.parametrize("kwargs, match", [
    ({"flow": flows.maf(3)}, "dim 3"),
    ({"flow": flows.maf(2), "n_blocks": 2}, "Flow object"),
    ({"flow": "maf", "flow_name": "maf"}, "not both"),
    ({"flow": {"n_blocks": 2}}, "'name'"),
    ({"flow": {"name": "maf", "n_blocks": 2}, "n_blocks": 3}, "twice"),
    ({"flow": {"name": "maf", "depth": 2}}, "depth"),
    ({"flow": "nice"}, "unknown flow"),
])
def test_bad_flow_spec_is_a_clear_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Mixture(2, 2, **kwargs)


def test_glow_prelu_mixture_fits_a_few_epochs():
    rng = np.random.default_rng(20)
    centres = np.array([[-3.0, 0.0], [3.0, 0.0]], np.float32)
    y = np.arange(256) % 2
    x = (centres[y] + 0.5 * rng.standard_normal((256, 2))).astype(np.float32)
    model = Mixture(2, 2, "glow", n_blocks=2, hidden=(8,), prelu=True, posterior_hidden=(8,))
    config = train.FitConfig(model=model, epochs=30, batch_size=64, learning_rate=1e-2,
                             init="random", warm_epochs=0, verbose=False)
    res = train.fit(jax.random.key(21), x, config)
    start = float(jnp.mean(model.log_prob(model.init(jax.random.key(21))[0], jnp.asarray(x))))
    end = float(jnp.mean(model.log_prob(res.params, jnp.asarray(x))))
    print(f"\nglow mixture: log-likelihood {start:.3f} at init, {end:.3f} after 30 epochs")
    assert np.isfinite(end) and end > start + 0.5
    slopes = np.exp(np.asarray(res.params["components"][2]["log_alpha"]))  # the PReLU layer
    assert slopes.shape == (2, 2) and np.abs(slopes - 1).max() > 1e-3  # PReLU layers train
