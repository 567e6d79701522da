"""The training objective's parts: weighted terms, and the batch transforms of training."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vmonf_jax.dequantization import Redequantize, UniformNoise, transforms
from vmonf_jax.model.mixture import Mixture
from vmonf_jax.train import objective

pytestmark = pytest.mark.usefixtures("fast_compile")


def test_combine_adds_each_term_times_its_constant_or_named_weight(perturb):
    model = Mixture(dim=2, n_components=3, n_blocks=1, hidden=(4,), posterior_hidden=(4,),
                    prior="learned")
    params, state = model.init(jax.random.key(0))
    params = perturb(1, params)
    x = jax.random.normal(jax.random.key(2), (12, 2))
    batch = objective.Batch(x, jnp.where(jnp.arange(12) < 3, 1, -1))
    loss = objective.combine(objective.Term(objective.marginal_kl, "balance"),
                             objective.Term(objective.marginal_kl, 0.5))
    got, (_, metrics) = jax.jit(lambda p: loss(model, p, state, batch, 0.7, {"balance": 2.0}))(
        params)
    data = objective.point_losses(model, params, state, x, batch.y, 0.7)[0].mean()
    kl = objective.marginal_kl(model, params, batch, 0.7)
    np.testing.assert_allclose(got, data + 2.0 * kl + 0.5 * kl, rtol=1e-6)
    assert float(kl) > 0 and metrics["usage"].shape == (3,)


def test_transforms_apply_in_order_and_noise_only_the_rows():
    widths = jnp.asarray([0.0, 2.0], jnp.float32)
    assert transforms(None, None) == ()
    assert [type(t) for t in transforms(1e-6, widths)] == [Redequantize, UniformNoise]
    x = jnp.zeros((500, 2), jnp.float32)
    batch = objective.Batch(x, jnp.full(500, -1))
    out = UniformNoise(widths)(batch, jax.random.key(0))
    assert out.y is batch.y
    assert np.all(np.asarray(out.x[:, 0]) == 0.0)
    assert np.all(np.abs(np.asarray(out.x[:, 1])) <= 1.0) and float(out.x[:, 1].std()) > 0.4
    # a pytree: the widths are an argument of a compiled function, not a constant
    assert jax.tree.leaves(UniformNoise(widths)) == [widths]
    assert jax.tree.leaves(Redequantize(1e-6)) == []


def test_marginal_objective_has_the_elbo_value_and_the_likelihood_gradient(perturb):
    """objective="marginal": value -ELBO; the flows' and weights' gradient is that of
    -log p(x), the posterior network's that of -ELBO (the exact posterior held constant)."""
    model = Mixture(dim=2, n_components=3, n_blocks=2, hidden=(4,), posterior_hidden=(4,),
                    prior="learned")
    params, state = model.init(jax.random.key(0))
    params = perturb(3, params)
    x = jax.random.normal(jax.random.key(4), (16, 2))
    y = jnp.full(16, -1)

    def mean_loss(objective_name):
        return jax.jit(jax.value_and_grad(lambda p: objective.point_losses(
            model, p, state, x, y, 0.4, objective_name)[0].mean()))(params)

    (marginal, g_marginal), (elbo, g_elbo) = mean_loss("marginal"), mean_loss("elbo")
    g_loglik = jax.jit(jax.grad(lambda p: -jax.nn.logsumexp(model.joint(p, x), -1).mean()))(
        params)
    np.testing.assert_allclose(marginal, elbo, rtol=1e-6)
    for part in ("components", "prior_logits"):
        for got, want in zip(jax.tree.leaves(g_marginal[part]), jax.tree.leaves(g_loglik[part])):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    for got, want in zip(jax.tree.leaves(g_marginal["posterior"]),
                         jax.tree.leaves(g_elbo["posterior"])):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    # the two objectives differ where q(k|x) is not the exact posterior
    differ = [float(jnp.abs(a - b).max()) for a, b in zip(
        jax.tree.leaves(g_marginal["components"]), jax.tree.leaves(g_elbo["components"]))]
    assert max(differ) > 1e-3
