"""``train_restarts="best"``: the restarts compete at their Gaussian starts and one trains."""

import numpy as np
import pytest

from vmonf_jax import VMoNF
from vmonf_jax.data import pinwheel
from vmonf_jax.model.mixture import Mixture
from vmonf_jax.train import merge, start_run

pytestmark = pytest.mark.usefixtures("fast_compile")

SMALL = dict(n_components=3, n_blocks=1, hidden=(4,), posterior_hidden=(4,), epochs=6,
             warm_epochs=2, n_init=3, batch_size=64, verbose=False, seed=1)


def _gaussians(shift):
    means = np.array([[0.0, 0.0], [4.0, 0.0]]) + shift
    return means, np.stack([np.eye(2)] * 2), np.array([0.8, 0.2])


def test_best_start_scores_each_start_as_the_mixture_it_sets():
    rng = np.random.default_rng(0)
    x_val = np.concatenate([rng.normal(size=(40, 2)), rng.normal(size=(40, 2)) + [4, 0]])
    starts = [_gaussians(3.0), _gaussians(0.0), _gaussians(-2.0)]
    fixed = Mixture(dim=2, n_components=2, prior="uniform")
    learned = Mixture(dim=2, n_components=2, prior="learned")
    assert start_run.best_start(fixed, starts, x_val) == 1
    # the weights count where the prior is trained from them: 80/20 fits an 80/20 split
    skewed = x_val[:50]
    even, weighted = _gaussians(0.0), _gaussians(0.0)
    even = (even[0], even[1], np.array([0.2, 0.8]))
    assert start_run.best_start(learned, [even, weighted], skewed) == 1
    assert start_run.best_start(fixed, [even, weighted], skewed) == 0  # equal weights: a tie
    ll = merge.joint_log_prob(x_val, *starts[1])
    assert ll.shape == (80, 2) and np.all(np.isfinite(ll))
    broken = (starts[1][0], np.stack([np.eye(2) * np.nan] * 2), starts[1][2])
    assert start_run.best_start(fixed, [broken, starts[2]], x_val) == 1  # NaN ranks last


def test_best_trains_exactly_the_chosen_restart_of_the_stacked_run():
    x, _ = pinwheel(n_per_wing=60, seed=0)
    best = VMoNF(**SMALL).fit(x)
    every = VMoNF(**SMALL, train_restarts="all").fit(x)
    r = best.best_restart_
    assert 0 <= r < SMALL["n_init"]
    assert {e["restart"] for e in best.history_} == {r}
    assert {e["restart"] for e in every.history_} == {0, 1, 2}
    mine = [e["loss"] for e in best.history_]
    same = [e["loss"] for e in every.history_ if e["restart"] == r][:len(mine)]
    np.testing.assert_allclose(mine, same, rtol=1e-4)  # restarts train independently
    assert best.get_params()["train_restarts"] == "best"


def test_without_validation_rows_every_restart_trains():
    x, _ = pinwheel(n_per_wing=60, seed=0)
    m = VMoNF(**SMALL, early_stopping=False).fit(x)
    assert {e["restart"] for e in m.history_} == {0, 1, 2}
