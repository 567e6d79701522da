"""The scikit-learn style estimator: parameters, inference consistency, units, persistence.

One tiny fitted model is shared by the module; each other fit is as small as it can be.
"""

import copy
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp, softmax
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from vmonf_jax import VMoNF
from vmonf_jax.data import toy

pytestmark = pytest.mark.usefixtures("fast_compile")

TINY = {"n_components": 3, "n_blocks": 2, "hidden": (4,), "posterior_hidden": (4,),
        "epochs": 3, "warm_epochs": 2, "batch_size": 32, "prior": "learned", "verbose": False,
        "n_init": 1, "early_stopping": False}


SCALE, SHIFT = 3.0, np.array([20.0, -10.0], np.float32)


@pytest.fixture(scope="module")
def xy():
    (x, y), (xt, yt) = toy.train_test(toy.pinwheel, seed=0, n_per_wing=20, n_wings=3)
    # far from standardised, so a missing (inverse) preprocessing shows in every result
    return SCALE * x + SHIFT, SCALE * xt + SHIFT


@pytest.fixture(scope="module")
def fitted(xy):
    return VMoNF(**TINY).fit(xy[0])


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "model"
    fitted.save(path)
    return path


# -- scikit-learn protocol ------------------------------------------------------------------
API_DEFAULTS = {
    "n_components": 2, "flow": "realnvp", "n_blocks": 8, "hidden": (8,), "batch_norm": False,
    "posterior_hidden": (16,), "prior": "uniform", "epochs": 100, "batch_size": 256,
    "learning_rate": 1e-3, "weight_decay": 0.0, "decoupled_weight_decay": False,
    "semi_supervised": "joint", "val_fraction": 0.0, "patience": None,
    "preprocess": "standardize", "seed": 0, "verbose": True,
}


def test_get_params_set_params_clone(fitted):
    params = VMoNF().get_params()
    for name, value in API_DEFAULTS.items():
        assert params[name] == value, name
    for name in ("temperature_start", "temperature_decay", "temperature_min", "clip_norm",
                 "n_init", "init", "pretrain_epochs"):
        assert name in params
    with pytest.raises(TypeError):
        VMoNF(3)  # every argument is keyword-only
    m = VMoNF(n_components=4, hidden=(5, 6))
    assert m.set_params(epochs=7, flow="maf") is m
    assert m.get_params()["epochs"] == 7 and m.flow == "maf"
    with pytest.raises(ValueError):
        m.set_params(no_such_parameter=1)
    c = clone(m)
    assert c is not m and c.get_params() == m.get_params()
    cf = clone(fitted)
    assert cf.get_params() == fitted.get_params()
    assert not hasattr(cf, "params_")
    with pytest.raises(NotFittedError):
        cf.predict(np.zeros((2, 2), np.float32))


# -- inference ------------------------------------------------------------------------------
def test_inference_shapes_and_consistency(fitted, xy):
    x = xy[1]
    n, k = x.shape[0], TINY["n_components"]
    ss, clp = fitted.score_samples(x), fitted.component_log_prob(x)
    q, p = fitted.predict_proba(x, posterior="q"), fitted.predict_proba(x)
    pred = fitted.predict(x)
    assert ss.shape == (n,) and clp.shape == (n, k) and q.shape == (n, k) and p.shape == (n, k)
    assert pred.shape == (n,) and set(np.unique(pred)) <= set(range(k))
    for a in (ss, clp, q, p):
        assert np.all(np.isfinite(a))
    log_pi = np.asarray(fitted.params_["prior_logits"], np.float64)
    log_pi = log_pi - logsumexp(log_pi)
    assert np.ptp(log_pi) > 0  # a learned, non-uniform prior makes the check meaningful
    joint = clp.astype(np.float64) + log_pi
    np.testing.assert_allclose(ss, logsumexp(joint, axis=1), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(q.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(p, softmax(joint, axis=1), atol=1e-5)
    np.testing.assert_array_equal(pred, p.argmax(1))  # the Bayes rule by default
    np.testing.assert_array_equal(fitted.predict(x, posterior="q"), q.argmax(1))
    # q is the recognition network at temperature_, the temperature of the kept parameters
    np.testing.assert_allclose(q, _q_at(fitted, x, fitted.temperature_), rtol=1e-5, atol=1e-6)
    assert fitted.temperature_ < 1.0
    assert not np.allclose(q, _q_at(fitted, x, 1.0), atol=1e-4)  # T matters on these rows
    np.testing.assert_array_equal(fitted.labels_, fitted.predict(xy[0]))
    assert fitted.temperature_ == pytest.approx(fitted.history_[-1]["T"])  # the kept params'
    with pytest.raises(ValueError, match="posterior must be one of"):
        fitted.predict(x, posterior="p")
    assert fitted.score(x) == pytest.approx(float(np.mean(ss)), rel=1e-6)
    n_par = fitted.n_parameters()
    assert fitted.bic(x) == pytest.approx(-2 * ss.sum() + n_par * np.log(n), rel=1e-5)
    assert fitted.aic(x) == pytest.approx(-2 * ss.sum() + 2 * n_par, rel=1e-5)
    # a plain list input works too
    np.testing.assert_allclose(fitted.score_samples(x.tolist()), ss, rtol=1e-6)


def _q_at(fitted, x, temperature):
    """q(k|x) of the fitted recognition network at ``temperature``, from the functional core."""
    z, _ = fitted.preprocessor_.transform(np.asarray(x))
    return np.asarray(fitted.model_.posterior(fitted.params_, z, temperature))


def test_elbo_samples(fitted, xy):
    """The per-row ELBO at temperature_, in user units: log p(x) - ELBO = KL(q || p) >= 0."""
    x = xy[1]
    elbo, ll = fitted.elbo_samples(x), fitted.score_samples(x)
    assert elbo.shape == (x.shape[0],) and np.all(np.isfinite(elbo))
    q = fitted.predict_proba(x, posterior="q").astype(np.float64)
    # log p(k|x) from the joint (p itself underflows to 0 in float32 far from a component)
    joint = (fitted.component_log_prob(x).astype(np.float64)
             + np.asarray(fitted.model_.log_prior(fitted.params_), np.float64))
    log_p = joint - logsumexp(joint, axis=1, keepdims=True)
    kl = np.sum(np.where(q > 0, q * (np.log(np.maximum(q, 1e-300)) - log_p), 0.0), axis=1)
    np.testing.assert_allclose(ll - elbo, kl, rtol=1e-3, atol=1e-4)
    assert np.all(elbo <= ll + 1e-4) and np.mean(ll - elbo) > 1e-3
    # units: the core's ELBO of the standardised rows plus log|det| of the standardisation
    z, log_det = fitted.preprocessor_.transform(x)
    core = np.asarray(fitted.model_.elbo(fitted.params_, z, fitted.temperature_))
    np.testing.assert_allclose(elbo, core + log_det, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(log_det, -np.sum(np.log(fitted.preprocessor_.scale)), rtol=1e-6)


def test_scoring_in_chunks_matches_row_by_row(fitted, xy):
    rng = np.random.default_rng(0)
    big = rng.standard_normal((9000, 2)).astype(np.float32)  # > one chunk, ragged tail
    whole = fitted.score_samples(big)
    assert whole.shape == (9000,)
    parts = np.concatenate([fitted.score_samples(big[:4500]), fitted.score_samples(big[4500:])])
    np.testing.assert_allclose(whole, parts, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fitted.score_samples(big[8997:]), whole[8997:], rtol=1e-6,
                               atol=1e-6)


def _mixture_draw(fitted, n, seed, component=None):
    """What ``sample`` must return (n <= one chunk): k by the inverse CDF of pi for the first
    half of the key of ``seed`` (or ``component``), and the rows of each k drawn by
    ``sample_component`` from the second half folded with k, in the user's units."""
    from vmonf_jax.chunked import bucket
    from vmonf_jax.estimator import SAMPLE_CHUNK

    k_cat, k_flow = jax.random.split(jax.random.key(seed))
    model, params = fitted.model_, fitted.params_
    if component is None:
        pi = np.exp(np.asarray(model.log_prior(params), np.float64))
        u = np.asarray(jax.random.uniform(k_cat, (n,)), np.float64)
        k = np.minimum(np.searchsorted(np.cumsum(pi) / pi.sum(), u, side="right"),
                       len(pi) - 1)
    else:
        k = np.full(n, component)
    z = np.empty((n, fitted.n_features_in_), np.float32)
    draw = jax.jit(model.sample_component, static_argnums=2)
    for c in np.unique(k):
        rows = np.flatnonzero(k == c)
        key = jax.random.fold_in(jax.random.fold_in(k_flow, int(c)), 0)
        z[rows] = np.asarray(draw(params, key, bucket(len(rows), SAMPLE_CHUNK), jnp.int32(c),
                                  state=fitted.state_))[:len(rows)]
    return fitted.preprocessor_.inverse(z), k


def test_sample(fitted, xy):
    x, k = fitted.sample(200, seed=1)
    assert x.shape == (200, 2) and x.dtype == np.float32 and k.shape == (200,)
    assert np.all(np.isfinite(x)) and set(np.unique(k)) <= {0, 1, 2}
    x2, k2 = fitted.sample(200, seed=1)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(k, k2)
    # the mixture's draw for this key, in the user's units (inverse preprocessing)
    xm, km = _mixture_draw(fitted, 200, 1)
    np.testing.assert_array_equal(k, km)
    np.testing.assert_allclose(x, xm, rtol=1e-5, atol=1e-5)
    # in the user's units: centred where the data are, not at the origin of the standardised
    np.testing.assert_array_less(np.abs(x.mean(0) - xy[0].mean(0)), xy[0].std(0))
    # one component: that component's draw for this key, not the mixture's relabelled
    for c in range(TINY["n_components"]):
        xc, kc = fitted.sample(50, component=c, seed=2)
        assert xc.shape == (50, 2) and np.all(kc == c)
        np.testing.assert_allclose(xc, _mixture_draw(fitted, 50, 2, c)[0], rtol=1e-5,
                                   atol=1e-5)
    xa, xb = fitted.sample(50, component=0, seed=2)[0], fitted.sample(50, component=1, seed=2)[0]
    assert not np.allclose(xa, xb, atol=1e-3)  # the components differ, so the check can fail
    index = r"component must be an integer index in \[0, 3\)"
    for bad, match in (({"n_samples": 0}, "n_samples"),
                       ({"n_samples": 5, "component": 3}, index),
                       ({"n_samples": 5, "component": -1}, index)):
        with pytest.raises(ValueError, match=match):
            fitted.sample(**bad)


def test_bad_inputs_at_inference(fitted):
    with pytest.raises(ValueError, match="X has 3 features, but VMoNF is expecting 2"):
        fitted.predict(np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"NaN\) at row 1, column 0"):
        fitted.score_samples(np.array([[0.0, 0.0], [np.nan, 1.0]]))
    with pytest.raises(ValueError, match="Expected 2D array"):
        fitted.predict_proba(np.zeros(4))
    with pytest.raises(ValueError, match=r"0 sample\(s\)"):
        fitted.score(np.zeros((0, 2)))


@pytest.mark.parametrize("X,y,kw,match", [
    (np.zeros(6), None, {}, "Expected 2D array"),
    (np.ones((2, 2)), None, {"n_components": 3}, "fewer"),
    (np.ones((6, 2)), None, {"n_components": 0}, "n_components"),
    (np.array([[1.0, np.inf]] * 6), None, {}, "row 0, column 1"),
    (np.ones((6, 2)), [0, 1, 2, -1, -1, -1], {"n_components": 2}, "3 distinct labels"),
    (np.ones((6, 2)), np.array(["a", "b", "c", -1, -1, -1], object), {"n_components": 2},
     "3 distinct labels"),
    (np.ones((6, 2)), [0, -1], {}, "inconsistent numbers of samples"),
    (np.ones((6, 2)), [[0, -1]] * 6, {}, "y should be a 1d array"),
    (np.ones((6, 2)), [0.0, 1.0, np.nan, -1, -1, -1], {}, "y holds NaN"),
    (np.ones((6, 2)), None, {"flow": "no-such-flow"}, "flow"),
    (np.ones((6, 2)), None, {"prior": "flat"}, "prior"),
    (np.ones((6, 2)), None, {"epochs": 0}, "epochs"),
    (np.ones((6, 2)), None, {"preprocess": "whiten"}, "whiten"),
])
def test_bad_fit_input_is_a_value_error(X, y, kw, match):
    with pytest.raises(ValueError, match=match):
        VMoNF(**{**TINY, **kw}).fit(X, y)


# -- units ----------------------------------------------------------------------------------
def test_log_densities_are_in_user_units(fitted, xy):
    x, xt = xy
    scaled = clone(fitted).fit(10 * x)
    d = fitted.score_samples(xt) - scaled.score_samples(10 * xt)
    # dim 2: log|det 10 I| = 2 log 10 (the Gaussian start's EM is fitted in float64 on
    # standardised rows that agree to rounding, so the two fits differ by float32 noise)
    np.testing.assert_allclose(d, 2 * np.log(10), atol=3e-4)
    np.testing.assert_array_equal(fitted.predict(xt), scaled.predict(10 * xt))
    np.testing.assert_allclose(fitted.component_log_prob(xt) - scaled.component_log_prob(10 * xt),
                               2 * np.log(10), atol=3e-4)
    xs, ks = scaled.sample(100, seed=3)
    x1, k1 = fitted.sample(100, seed=3)
    np.testing.assert_array_equal(ks, k1)
    np.testing.assert_allclose(xs, 10 * x1, rtol=1e-4, atol=1e-4)


# -- persistence ----------------------------------------------------------------------------
def test_save_load_round_trip(fitted, saved, xy):
    xt = xy[1]
    loaded = VMoNF.load(saved)
    assert loaded.get_params() == fitted.get_params()
    np.testing.assert_array_equal(loaded.predict(xt), fitted.predict(xt))
    np.testing.assert_array_equal(loaded.predict_proba(xt), fitted.predict_proba(xt))
    np.testing.assert_array_equal(loaded.score_samples(xt), fitted.score_samples(xt))
    assert loaded.score(xt) == fitted.score(xt)
    for a, b in zip(loaded.sample(30, seed=4), fitted.sample(30, seed=4)):
        np.testing.assert_array_equal(a, b)
    assert loaded.classes_ is None and loaded.n_features_in_ == 2
    assert loaded.temperature_ == fitted.temperature_
    assert loaded.n_components_ == fitted.n_components_ == TINY["n_components"]
    assert not hasattr(loaded, "feature_names_in_") and not hasattr(loaded, "labels_")
    assert len(loaded.history_) == len(fitted.history_)
    np.testing.assert_array_equal(loaded.usage_, fitted.usage_)
    assert loaded.fit_score_ == fitted.fit_score_ and loaded.best_restart_ == fitted.best_restart_
    with open(os.path.join(saved, "manifest.json")) as f:
        manifest = json.load(f)
    for key in ("format_version", "dim", "preprocessing", "classes", "library_version"):
        assert key in manifest
    # saving over an existing model replaces it atomically (no stray temporaries)
    fitted.save(saved)
    assert sorted(os.listdir(os.path.dirname(saved))) == ["model"]


def test_load_restores_parameters_exactly(fitted, saved, xy):
    loaded = VMoNF.load(saved)
    assert loaded.get_params() == fitted.get_params()
    for got, ref in ((loaded.params_, fitted.params_), (loaded.state_, fitted.state_)):
        got_leaves, got_tree = jax.tree.flatten_with_path(got)
        ref_leaves, ref_tree = jax.tree.flatten_with_path(ref)
        assert got_tree == ref_tree
        assert [p for p, _ in got_leaves] == [p for p, _ in ref_leaves]
        for (path, a), (_, b) in zip(got_leaves, ref_leaves, strict=True):
            assert np.asarray(a).dtype == np.asarray(b).dtype, path
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=str(path))
    assert len(jax.tree.leaves(loaded.params_)) > 3
    assert loaded.temperature_ == fitted.temperature_
    assert loaded.preprocessor_.to_dict() == fitted.preprocessor_.to_dict()
    # q(k|x) at temperature_ before and after the round trip, and as the core computes it
    q = loaded.predict_proba(xy[1], posterior="q")
    np.testing.assert_array_equal(q, fitted.predict_proba(xy[1], posterior="q"))
    np.testing.assert_allclose(q, _q_at(fitted, xy[1], fitted.temperature_), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_array_equal(loaded.elbo_samples(xy[1]), fitted.elbo_samples(xy[1]))


def test_fitted_model_loads_what_the_estimator_saved(fitted, saved, xy):
    """``FittedModel`` (what ``vmonf predict``/``score`` use): the estimator's results, with
    the exact posterior by default."""
    from vmonf_jax.inference import FittedModel

    x = xy[1]
    fm, manifest = FittedModel.load(saved)
    assert fm.n_features_in_ == 2 and manifest["dim"] == 2
    assert fm.temperature == fitted.temperature_
    assert manifest["training"]["temperature"] == fitted.temperature_
    np.testing.assert_array_equal(fm.predict_proba(x), fitted.predict_proba(x))
    np.testing.assert_array_equal(fm.predict(x), fitted.predict(x))  # default: exact
    np.testing.assert_array_equal(fm.predict(x, "q"), fitted.predict(x, posterior="q"))
    np.testing.assert_array_equal(fm.predict_proba(x, "q"), fitted.predict_proba(x, "q"))
    np.testing.assert_array_equal(fm.score_samples(x), fitted.score_samples(x))
    np.testing.assert_array_equal(fm.elbo_samples(x), fitted.elbo_samples(x))
    np.testing.assert_array_equal(fm.component_log_prob(x), fitted.component_log_prob(x))


def test_feature_names_survive_save_and_load(fitted, xy, tmp_path):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(xy[0], columns=["u", "v"])
    clone(fitted).fit(frame).save(tmp_path / "named")
    loaded = VMoNF.load(tmp_path / "named")
    np.testing.assert_array_equal(loaded.feature_names_in_, ["u", "v"])
    with pytest.raises(ValueError, match="same order"):
        loaded.predict(frame[["v", "u"]])


def test_a_manifest_without_the_kept_temperature_loads(saved, tmp_path):
    """Models saved before ``temperature_`` was recorded use the schedule's last T."""
    path = _copy(saved, tmp_path)
    _edit_manifest(path, lambda m: {**m, "training": {k: v for k, v in m["training"].items()
                                                      if k != "temperature"}})
    loaded = VMoNF.load(path)
    assert loaded.temperature_ == pytest.approx(loaded.config_.final_temperature())


def _copy(saved, tmp_path):
    dst = tmp_path / "model"
    shutil.copytree(saved, dst)
    return dst


def _edit_manifest(path, edit):
    p = os.path.join(path, "manifest.json")
    with open(p) as f:
        m = json.load(f)
    with open(p, "w") as f:
        json.dump(edit(m), f)


def _set(key, value):
    def edit(m):
        m[key] = value
        return m
    return edit


def test_load_of_a_directory_that_is_not_a_model(tmp_path):
    with pytest.raises(ValueError, match="not a VMoNF model"):
        VMoNF.load(tmp_path)
    with pytest.raises(ValueError, match="not a VMoNF model"):
        VMoNF.load(tmp_path / "missing")


def test_load_of_a_corrupted_manifest(saved, tmp_path):
    path = _copy(saved, tmp_path)
    with open(path / "manifest.json", "w") as f:
        f.write('{"format_version": 1, "estimator": {')
    with pytest.raises(ValueError, match="damaged"):
        VMoNF.load(path)


@pytest.mark.parametrize("edit", [
    _set("format_version", 99), _set("format_version", None), _set("format_version", "1"),
    lambda m: {k: v for k, v in m.items() if k != "format_version"},
])
def test_load_of_an_unknown_format_version(saved, tmp_path, edit):
    path = _copy(saved, tmp_path)
    _edit_manifest(path, edit)
    with pytest.raises(ValueError, match="format_version"):
        VMoNF.load(path)


def _more_components(m):
    """K = 4 in a manifest consistent with itself, not with the stored arrays (K = 3)."""
    m["estimator"]["n_components"] = 4
    m["training"].update(n_components=4, usage=None, dead_components=[])
    return m


@pytest.mark.parametrize("edit,match", [
    (lambda m: {k: v for k, v in m.items() if k != "estimator"}, "estimator is missing"),
    (_set("estimator", {"n_components": 3, "no_such_parameter": 1}),
     "estimator.no_such_parameter is not a parameter"),
    (_set("dim", "two"), r"dim must be an integer in \[1, 1000000\], got 'two'"),
    (lambda m: {**m, "estimator": {**m["estimator"], "n_components": 4}},
     r"training.n_components must equal estimator.n_components \(4\)"),
    (_more_components, r"components.* has shape .*3.*the model needs .*4"),
    (lambda m: [1, 2], "must be a JSON object, got list"),  # valid JSON, not an object
    (lambda m: {k: v for k, v in m.items() if k != "preprocessing"}, "preprocessing is missing"),
    (lambda m: {k: v for k, v in m.items() if k != "training"}, "training is missing"),
    (lambda m: {**m, "training": {**m["training"], "temperature": -1.0}},
     "training.temperature must be a positive number, got -1.0"),
    (lambda m: {**m, "training": {**m["training"], "temperature": "hot"}},
     "training.temperature must be a positive number, got 'hot'"),
    (_set("feature_names", ["only-one"]), r"feature_names must be null or a list of 2 distinct"),
    (_set("feature_names", ["a", "a"]), r"list of 2 distinct strings \(dim\), got \['a', 'a'\]"),
    (_set("feature_names", [1, 2]), r"list of 2 distinct strings \(dim\), got \[1, 2\]"),
])
def test_load_of_an_inconsistent_manifest(saved, tmp_path, edit, match):
    path = _copy(saved, tmp_path)
    _edit_manifest(path, edit)
    with pytest.raises(ValueError, match="damaged model directory: ") as info:
        VMoNF.load(path)
    assert info.match(match)


def _damage_data_files(path):
    """Zero the second half of every array data file of the Orbax checkpoint."""
    n = 0
    for root, _, files in os.walk(os.path.join(path, "state")):
        if os.path.basename(root) != "d":
            continue
        for name in files:
            p = os.path.join(root, name)
            with open(p, "rb") as f:
                b = bytearray(f.read())
            b[len(b) // 2:] = bytes(len(b) - len(b) // 2)
            with open(p, "wb") as f:
                f.write(bytes(b))
            n += 1
    assert n


def _truncate_all(path):
    for root, _, files in os.walk(os.path.join(path, "state")):
        for name in files:
            open(os.path.join(root, name), "w").close()


def _remove_checkpoint(path):
    shutil.rmtree(os.path.join(path, "state"))


@pytest.mark.parametrize("damage", [
    _damage_data_files, _truncate_all,
    _remove_checkpoint,
])
def test_load_of_a_damaged_checkpoint(saved, tmp_path, damage):
    path = _copy(saved, tmp_path)
    damage(path)
    with pytest.raises(ValueError, match="damaged|checkpoint"):
        VMoNF.load(path)


# -- labels ---------------------------------------------------------------------------------
def _blobs(n=80, seed=0):
    """Two separated Gaussian blobs in 2-D and each row's blob (0 or 1)."""
    rng = np.random.default_rng(seed)
    blob = np.arange(n) % 2
    x = rng.normal(0.0, 0.6, (n, 2)) + np.where(blob[:, None] == 0, [-2.0, 0.0], [2.0, 1.0])
    return x, blob


@pytest.fixture(scope="module")
def steered():
    """Two semi-supervised fits of the same data and seed, with opposite names for the blobs.

    Unsupervised, both fits would put each blob in the same component; the labels must
    decide which component each class (sorted: "inner" = 0, "outer" = 1) gets.
    """
    x, blob = _blobs()
    labelled = np.random.default_rng(1).permutation(len(x))[:16]
    fits = {}
    for inner in (0, 1):  # the blob named "inner"
        names = np.where(blob == inner, "inner", "outer").astype(object)
        y = np.full(len(x), -1, object)
        y[labelled] = names[labelled]
        m = VMoNF(**{**TINY, "n_components": 2, "prior": "uniform", "epochs": 10,
                     "learning_rate": 2e-2}).fit(x, y)
        fits[inner] = (m, names)
    return x, labelled, fits


@pytest.mark.parametrize("inner", [0, 1])
def test_labels_steer_a_semi_supervised_fit(steered, inner):
    """Labelled rows are predicted as their class, and q(class|x) is high on them."""
    x, labelled, fits = steered
    m, names = fits[inner]
    assert list(m.classes_) == ["inner", "outer"]
    np.testing.assert_array_equal(m.classes_[m.predict(x[labelled])], names[labelled])
    assert np.mean(m.classes_[m.predict(x)] == names) > 0.9  # and the unlabelled rows too
    q = m.predict_proba(x[labelled], posterior="q")
    code = np.searchsorted(m.classes_, names[labelled].astype(str))
    assert np.mean(q[np.arange(len(labelled)), code]) > 0.75


def test_the_labels_not_the_data_decide_the_components(steered):
    x, _, fits = steered
    a, b = fits[0][0].predict(x), fits[1][0].predict(x)
    assert np.mean(a != b) > 0.9  # swapped names: swapped components


def test_string_labels_go_through_classes(steered, tmp_path):
    x, labelled, fits = steered
    m, names = fits[0]
    m.save(tmp_path / "m")
    loaded = VMoNF.load(tmp_path / "m")
    assert list(loaded.classes_) == ["inner", "outer"]
    np.testing.assert_array_equal(loaded.classes_[loaded.predict(x)], m.classes_[m.predict(x)])
    y = np.full(len(x), -1, object)
    y[labelled] = names[labelled]
    classes, codes = VMoNF(n_components=2)._encode_labels(x, y)
    assert list(classes) == ["inner", "outer"]
    np.testing.assert_array_equal(codes[labelled], (names[labelled] == "outer").astype(int))
    assert np.all(codes[np.setdiff1d(np.arange(len(x)), labelled)] == -1)


def test_label_encoding():
    from sklearn.exceptions import DataConversionWarning

    x = np.zeros((6, 2))
    enc = VMoNF(n_components=2)._encode_labels
    classes, codes = enc(x, [1.5, -1, 0.5, -1, 1.5, -1])  # float labels without NaN
    np.testing.assert_array_equal(classes, [0.5, 1.5])
    np.testing.assert_array_equal(codes, [1, -1, 0, -1, 1, -1])
    classes, codes = enc(x, np.array(["a", -1, -1, "a", -1, -1], object))  # one class: a label
    assert list(classes) == ["a"] and codes.tolist() == [0, -1, -1, 0, -1, -1]
    assert enc(x, [-1] * 6) == (None, None)  # nothing labelled
    with pytest.warns(DataConversionWarning):
        classes, codes = enc(x, np.array([[0], [-1], [1], [-1], [-1], [-1]]))
    assert codes.tolist() == [0, -1, 1, -1, -1, -1]
    with pytest.raises(ValueError, match=r"the labels of y cannot be sorted \(mixed types\?\)"):
        enc(x, np.array([1, "a", -1, -1, -1, -1], object))


def test_y_without_unlabelled_rows_is_ignored_as_by_clusterers(fitted, xy):
    """A y with no -1 (e.g. the true classes a clustering score needs) is not training data."""
    x = xy[0]
    truth = np.arange(len(x)) % 3
    m = clone(fitted).fit(x, truth)
    assert m.classes_ is None
    np.testing.assert_array_equal(m.predict_proba(xy[1]), fitted.predict_proba(xy[1]))
    assert VMoNF(n_components=2)._encode_labels(x, np.where(truth == 0, "a", "b")) == (None,
                                                                                        None)


# -- atomic fits and precision ----------------------------------------------------------------
FITTED_ATTRS = ("model_", "config_", "preprocessor_", "classes_", "n_features_in_", "params_",
                "state_", "history_", "fit_score_", "best_restart_", "temperature_", "labels_",
                "n_components_")


def _raise_non_finite(*args, **kwargs):
    from vmonf_jax import NonFiniteLossError

    raise NonFiniteLossError("non-finite loss (simulated)", "last-good", None, [])


@pytest.mark.parametrize("failure", ["devices", "non-finite loss", "bad labels"])
def test_a_failed_refit_leaves_the_estimator_as_it_was(fitted, xy, monkeypatch, failure):
    """Every fitted attribute is the very object it was, and the scores do not move."""
    m = copy.copy(fitted)
    before = {k: getattr(m, k) for k in FITTED_ATTRS}
    scores = m.score_samples(xy[1])
    from vmonf_jax import NonFiniteLossError

    y = None
    if failure == "devices":
        m.set_params(parallel="data", devices=7)
        error, match = ValueError, "asked for 7 devices but 1 are available"
    elif failure == "bad labels":
        y = np.arange(len(xy[0])) - 1  # -1 marks row 0 unlabelled; too many classes
        error, match = ValueError, f"y has {len(xy[0]) - 1} distinct labels but only 3"
    else:
        monkeypatch.setattr("vmonf_jax.estimator.fit", _raise_non_finite)
        error, match = NonFiniteLossError, "non-finite loss"
    with pytest.raises(error, match=match) as info:
        m.fit(10 * xy[0] + 5, y)
    if failure == "non-finite loss":
        assert info.value.params == "last-good"  # the error carries the last good params
    for k, v in before.items():
        assert getattr(m, k) is v, k
    np.testing.assert_array_equal(m.score_samples(xy[1]), scores)


def test_data_are_standardised_in_float64(fitted, xy):
    """1e8 + small offsets: a cast to float32 before standardising would merge them."""
    x = xy[0].astype(np.float64) + 1e8
    m = clone(fitted).fit(x)
    z, _ = m.preprocessor_.transform(x)
    assert z.dtype == np.float32
    np.testing.assert_array_equal(np.argsort(z[:, 0], kind="stable"),
                                  np.argsort(x[:, 0], kind="stable"))
    assert len(np.unique(z[:, 0])) == len(np.unique(x[:, 0]))
    assert np.all(np.isfinite(m.score_samples(x)))


@pytest.mark.parametrize("kw,match", [
    ({"n_blocks": 10**9}, r"n_blocks must be an integer in \[1, 64\]"),
    ({"hidden": (10**6,)}, "hidden"),
    ({"seed": 10**23}, "seed"),
])
def test_documented_limits_at_fit(xy, kw, match):
    with pytest.raises(ValueError, match=match):
        VMoNF(**{**TINY, **kw}).fit(xy[0])


def test_sample_bounds(fitted, monkeypatch):
    # the documented ranges, at their ends: n_samples in [1, MAX_SAMPLES], seed in [0, 2**32)
    assert fitted.sample(1, seed=0)[0].shape == (1, 2)
    assert fitted.sample(2, seed=2**32 - 1)[0].shape == (2, 2)
    for a, b in zip(fitted.sample(20), fitted.sample(20, seed=fitted.seed)):  # default: seed
        np.testing.assert_array_equal(a, b)
    monkeypatch.setattr("vmonf_jax.estimator.MAX_SAMPLES", 3)
    assert fitted.sample(3, seed=1)[0].shape == (3, 2)
    with pytest.raises(ValueError, match=r"n_samples must be an integer in \[1, 3\], got 4"):
        fitted.sample(4)
    monkeypatch.undo()
    for bad in ({"n_samples": 10**12}, {"n_samples": 2.5}, {"n_samples": 3, "seed": -1},
                {"n_samples": 3, "seed": 2**32}):
        with pytest.raises(ValueError, match="n_samples|seed"):
            fitted.sample(**bad)


def test_checkpointed_fit_records_and_checks_what_it_resumes(xy, tmp_path):
    """``fit(checkpoint_dir=...)`` keeps fit.json; resuming with other settings or data fails."""
    x = xy[0]
    m = VMoNF(**TINY).fit(x, checkpoint_dir=tmp_path)
    record = json.loads((tmp_path / "fit.json").read_text())
    assert record["estimator"]["n_components"] == TINY["n_components"]
    before = m.params_
    with pytest.raises(ValueError, match=r"these differ: epochs=4 \(was 3\)"):
        clone(m).set_params(epochs=4).fit(x, checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(ValueError, match="not the data the interrupted fit started on"):
        m.fit(x[::-1], checkpoint_dir=tmp_path, resume=True)
    assert m.params_ is before
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        m.fit(x, checkpoint_dir=tmp_path / "empty", resume=True)
    with pytest.raises(ValueError, match="needs the checkpoint_dir"):
        m.fit(x, resume=True)
