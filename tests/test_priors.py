"""The prior over components as one object: what each kind trains, sets and prunes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vmonf_jax.model.mixture import Mixture
from vmonf_jax.model.priors import PRIORS, prior_named
from vmonf_jax.train import FitConfig, make_optimizer, step


def test_each_prior_says_what_it_does():
    flags = {name: (p.fixed, p.trained, p.from_posterior, p.prunes) for name, p in PRIORS.items()}
    assert flags == {"uniform": (True, False, False, False),
                     "learned": (False, True, False, False),
                     "em": (False, False, True, False), "sparse": (False, False, True, True)}
    assert prior_named("em") is PRIORS["em"] is prior_named(PRIORS["em"])
    for bad in ("dirichlet", ["em"]):
        with pytest.raises(ValueError, match="unknown prior"):
            Mixture(2, prior=bad)
    with pytest.raises(TypeError, match="not set from q"):
        PRIORS["learned"].logits(None, None, None, 1.0, 0.01)


def _model_and_params(prior):
    model = Mixture(2, 3, n_blocks=1, hidden=(4,), posterior_hidden=(4,), prior=prior)
    params, _ = step.init_params(model, jax.random.key(0))
    return model, params


def test_posterior_priors_set_the_weights_from_q():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(200, 2)), jnp.float32)
    model, params = _model_and_params("em")
    q = np.asarray(model.posterior(params, x, 1.0)).mean(0)
    np.testing.assert_allclose(np.exp(model.prior.logits(model, params, x, 1.0)), q, rtol=1e-5)
    model, params = _model_and_params("sparse")
    pi = np.exp(np.asarray(model.prior.logits(model, params, x, 1.0, 0.01)))
    assert abs(pi.sum() - 1) < 1e-5 and np.argmax(pi) == np.argmax(q)  # the largest keeps most


@pytest.mark.parametrize("prior", list(PRIORS))
def test_only_a_trained_prior_moves_under_the_optimizer_and_fixed_is_not_counted(prior):
    model, params = _model_and_params(prior)
    tx = make_optimizer(FitConfig(model=model))
    grads = jax.tree.map(jnp.ones_like, params)
    updates, _ = tx.update(grads, tx.init(params), params)
    moved = bool(jnp.any(updates["prior_logits"] != 0))
    assert moved == PRIORS[prior].trained
    counted = model.n_parameters(params) - model.n_parameters(
        {k: v for k, v in params.items() if k != "prior_logits"})
    assert counted == (0 if PRIORS[prior].fixed else 3)
