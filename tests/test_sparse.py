"""The sparse prior (K found by pruning) and the dead-component warning of every prior.

The default tests train little: pruning, saving and the warning are checked on initial
parameters, and one tiny fit checks the minimum-message-length rule (two flows sharing a blob:
one goes). The slow ones fit two blobs and a far cluster of 5 points (k-means gives it its own
component), which the sparse prior prunes and the "em" prior keeps, dead; and issue 14's three
blobs with 8 components.
"""

import json
import shutil
import warnings
from dataclasses import replace
from functools import partial

import jax
import numpy as np
import optax
import pytest
from scipy.special import logsumexp, softmax

from vmonf_jax import VMoNF
from vmonf_jax.model.mixture import Mixture
from vmonf_jax.preprocess import make_preprocessor
from vmonf_jax.train import prune

pytestmark = pytest.mark.usefixtures("fast_compile")

TINY = {"n_components": 3, "n_blocks": 2, "hidden": (4,), "posterior_hidden": (4,),
        "epochs": 100, "warm_epochs": 20, "batch_size": 64, "learning_rate": 0.02,
        "n_init": 1, "verbose": False}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A sparse model with components 0 and 2 of 3 kept (initial parameters), saved."""
    est = VMoNF(**{**TINY, "n_blocks": 1}, prior="sparse")
    config = est._config(2)
    small = prune.with_components(config.model, 2)
    params = prune.prune_tree(config.model.init(jax.random.key(0))[0], np.array([0, 2]),
                              config.model)
    est._set_fitted(model_=small, config_=replace(config, model=small),
                    preprocessor_=make_preprocessor("standardize").fit(np.eye(2)),
                    classes_=None, n_features_in_=2, params_=params, state_=None,
                    history_=[], fit_score_=-1.0, best_restart_=0, usage_=np.array([0.6, 0.4]),
                    base_="normal",
                    temperature_=config.final_temperature())
    path = tmp_path_factory.mktemp("sparse") / "m"
    est.save(path)
    return est, path


def test_prune_tree_keeps_the_chosen_components_everywhere(perturb):
    model = Mixture(dim=2, n_components=4, n_blocks=1, hidden=(4,), posterior_hidden=(5,),
                    prior="sparse")
    params = perturb(1, model.init(jax.random.key(0))[0], scale=0.3)
    opt = optax.adam(1e-3).init(params)
    idx = np.array([0, 2])
    small = prune.with_components(model, 2)
    p2, opt2 = prune.prune_tree((params, opt), idx, model)
    shapes = partial(jax.tree.map, lambda a: a.shape)
    assert shapes(p2) == shapes(jax.eval_shape(small.init, jax.random.key(1))[0])
    assert shapes(opt2[0].mu) == shapes(p2)
    x = jax.random.normal(jax.random.key(2), (7, 2))

    @partial(jax.jit, static_argnums=0)
    def terms(m, p):
        return m.component_log_prob(p, x), m.log_prob(p, x), m.posterior(p, x)

    comp, _, q = map(np.asarray, terms(model, params))
    comp2, log_p2, q2 = terms(small, p2)
    np.testing.assert_allclose(comp2, comp[:, idx], rtol=1e-5)
    # still a normalised mixture: the kept weights renormalised, over the kept components
    log_pi = np.asarray(params["prior_logits"])[idx]
    want = logsumexp(comp[:, idx] + log_pi - logsumexp(log_pi), axis=1)
    np.testing.assert_allclose(log_p2, want, rtol=1e-5)
    np.testing.assert_allclose(q2, softmax(np.log(q[:, idx]), 1), rtol=1e-4)


def test_keep_indices_share_one_k_across_restarts():
    log_pi = np.log([[0.6, 0.39, 0.01, 1e-9], [0.3, 0.3, 0.3, 0.1]])
    np.testing.assert_array_equal(prune.keep_indices(log_pi, 0.05), [[0, 1, 2, 3], [0, 1, 2, 3]])
    np.testing.assert_array_equal(prune.keep_indices(log_pi, 0.2), [[0, 1, 2], [0, 1, 2]])
    np.testing.assert_array_equal(prune.keep_indices(log_pi[:1], 0.2), [[0, 1]])
    np.testing.assert_array_equal(prune.keep_indices(log_pi[:1], 0.2, protect=3), [[0, 1, 2]])


def test_pruned_model_saves_and_loads(saved):
    est, path = saved
    loaded = VMoNF.load(path)
    assert loaded.n_components == 3 and loaded.n_components_ == 2
    assert loaded.params_["prior_logits"].shape == (2,)
    for a, b in zip(jax.tree.leaves(loaded.params_), jax.tree.leaves(est.params_)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.usage_, [0.6, 0.4])


@pytest.mark.parametrize("part, edit, field", [
    ("training", {"n_components": 4}, "training.n_components"),  # above the upper bound
    ("training", {"dead_components": [2]}, "training.dead_components"),  # K kept is 2
    ("estimator", {"prior": "em"}, "training.n_components"),  # fewer only when sparse
])
def test_manifest_checks_the_kept_components(saved, tmp_path, part, edit, field):
    path = shutil.copytree(saved[1], tmp_path / "m")
    with open(path / "manifest.json") as f:
        m = json.load(f)
    m[part].update(edit)
    with open(path / "manifest.json", "w") as f:
        json.dump(m, f)
    with pytest.raises(ValueError, match=field):
        VMoNF.load(path)


def test_dead_component_warning_names_them_and_only_them():
    with pytest.warns(UserWarning, match=r"dead components: 1 \(0\.01\), 3 \(0\.02\)"):
        assert prune.warn_dead(np.array([0.5, 0.01, 0.47, 0.02])) == [1, 3]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert prune.warn_dead(np.array([0.5, 0.04, 0.46])) == []  # 0.04 >= 1/30


@pytest.fixture(scope="module")
def x():
    rng = np.random.default_rng(0)
    blobs = [rng.normal(c, 0.3, (n, 2)) for c, n in (((-3, 0), 100), ((3, 0), 100),
                                                      ((0, 20), 5))]
    return np.concatenate(blobs)


@pytest.mark.slow
def test_sparse_fit_prunes_the_small_cluster_during_training(x):
    with warnings.catch_warnings():
        # no dead component is left to warn about, and no Gaussian start of the unpruned K
        # is said to be kept
        warnings.simplefilter("error")
        sparse = VMoNF(**TINY, prior="sparse").fit(x)
    assert [len(h["usage"]) for h in sparse.history_[::len(sparse.history_) - 1]] == [3, 2]
    assert sparse.n_components_ == 2
    assert jax.tree.leaves(sparse.params_["components"])[0].shape[0] == 2
    np.testing.assert_array_equal(np.bincount(sparse.predict(x[:200])), [100, 100])


@pytest.mark.slow
def test_em_fit_warns_of_the_dead_component(x, tmp_path):
    with pytest.warns(UserWarning, match=r"dead components: \d \(0\.0"):
        em = VMoNF(**TINY, prior="em").fit(x)
    far = int(em.predict(x[-5:])[0])  # the Gaussian start's EM orders the components
    em.save(tmp_path / "m")
    with open(tmp_path / "m" / "manifest.json") as f:
        assert json.load(f)["training"]["dead_components"] == [far]


def test_mml_removes_one_component_at_a_time_and_lets_the_others_absorb_its_rows():
    q = np.zeros((300, 5))  # blob A shared by 0 and 1, blob B by 2 and 3, blob C by 4 alone
    q[:100, :2] = 0.6, 0.4
    q[100:200, 2:4] = 0.5
    q[200:, 4] = 1.0
    # removed at once, 0-3 (60, 40, 50, 50 rows < 70) would all go and leave blobs A, B bare
    assert prune.mml_survivors(q, min_rows=70).tolist() == [True, False, False, True, True]
    assert prune.mml_survivors(q, min_rows=70, protect=2).tolist() == [True, True, False,
                                                                        True, True]
    assert prune.mml_survivors(q, min_rows=1e9).sum() == 1  # the last component stays
    assert prune.mml_survivors(q, min_rows=39).all()


def test_keep_indices_drops_the_components_mml_removed():
    log_pi = np.log([[0.3, 0.3, 0.2, 0.2]])
    alive = np.array([[True, False, True, True]])
    np.testing.assert_array_equal(prune.keep_indices(log_pi, 0.03, alive=alive), [[0, 2, 3]])


def test_sparse_fit_gives_each_blob_one_flow():
    """Four flows of 132 scalars (66 rows each) on two blobs of 100 rows: two are pruned."""
    rng = np.random.default_rng(1)
    X = np.concatenate([rng.normal(c, 0.3, (100, 2)) for c in ((-3, 0), (3, 0))])
    m = VMoNF(**{**TINY, "n_components": 4, "hidden": (16,)}, prior="sparse").fit(X)
    assert m.n_components_ == 2
    assert sorted(np.bincount(m.predict(X)).tolist()) == [100, 100]
    assert len(set(m.predict(X[:100]))) == 1


def test_sparse_warm_start_clusters_the_rows_not_the_graph(x):
    """At the upper bound K the graph's spectral clusters cut connected clusters in pieces
    (README, "Automatic K"): with the sparse prior the warm start runs k-means on the rows."""
    from vmonf_jax.train import prepare
    from vmonf_jax.train.schedule import Schedule
    from vmonf_jax.train.step import kmeans_labels

    keys = jax.random.split(jax.random.key(0), 1)
    seed = int(jax.random.randint(keys[0], (), 0, 2**31 - 1))
    for prior, spectral in (("sparse", False), ("uniform", True)):
        model = Mixture(2, 3, n_blocks=1, hidden=(4,), posterior_hidden=(4,), prior=prior)
        data = prepare.arrays_of(x, None, None, Schedule(warm=2), model, keys, graph=True)
        assert data.nbrs is not None  # the penalty's graph is built either way
        rows = kmeans_labels(x, 3, seed)
        assert np.array_equal(np.asarray(data.y_warm[0]), rows) != spectral


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3))
def test_sparse_prior_finds_three_blobs_of_eight(seed):
    """Issue 14's target: three well-separated Gaussian blobs, ``n_components=8`` -> 3."""
    from sklearn.datasets import make_blobs
    from sklearn.metrics import adjusted_rand_score

    centers = [(0.0, 0.0), (6.0, 0.0), (3.0, 5.2)]  # 6 standard deviations apart
    X, y = make_blobs(n_samples=600, centers=centers, cluster_std=1.0, random_state=seed)
    m = VMoNF(n_components=8, prior="sparse", verbose=False, seed=seed).fit(X)
    assert m.n_components_ == 3
    assert adjusted_rand_score(y, m.predict(X)) > 0.95
