"""The scikit-learn style estimator: parameters, inference consistency, units, persistence.

One tiny fitted model is shared by the module; each other fit is as small as it can be.
"""

import copy
import json
import os
import shutil

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


@pytest.fixture(scope="module")
def xy():
    (x, y), (xt, yt) = toy.train_test(toy.pinwheel, seed=0, n_per_wing=20, n_wings=3)
    return x, xt


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


def test_scoring_in_chunks_matches_row_by_row(fitted, xy):
    rng = np.random.default_rng(0)
    big = rng.standard_normal((9000, 2)).astype(np.float32)  # > one chunk, ragged tail
    whole = fitted.score_samples(big)
    assert whole.shape == (9000,)
    parts = np.concatenate([fitted.score_samples(big[:4500]), fitted.score_samples(big[4500:])])
    np.testing.assert_allclose(whole, parts, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fitted.score_samples(big[8997:]), whole[8997:], rtol=1e-6,
                               atol=1e-6)


def test_sample(fitted, xy):
    x, k = fitted.sample(200, seed=1)
    assert x.shape == (200, 2) and x.dtype == np.float32 and k.shape == (200,)
    assert np.all(np.isfinite(x)) and set(np.unique(k)) <= {0, 1, 2}
    x2, k2 = fitted.sample(200, seed=1)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(k, k2)
    xc, kc = fitted.sample(50, component=1, seed=2)
    assert xc.shape == (50, 2) and np.all(kc == 1)
    # samples are in the user's units (the preprocessing is undone)
    assert np.all(np.abs(x.mean(0) - xy[0].mean(0)) < 3 * xy[0].std(0))
    for bad in ({"n_samples": 0}, {"n_samples": 5, "component": 3},
                {"n_samples": 5, "component": -1}):
        with pytest.raises(ValueError):
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
    with open(os.path.join(saved, "manifest.json")) as f:
        manifest = json.load(f)
    for key in ("format_version", "dim", "preprocessing", "classes", "library_version"):
        assert key in manifest
    # saving over an existing model replaces it atomically (no stray temporaries)
    fitted.save(saved)
    assert sorted(os.listdir(os.path.dirname(saved))) == ["model"]


def test_load_restores_parameters_exactly(fitted, saved):
    assert VMoNF.load(saved).get_params() == fitted.get_params()


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


@pytest.mark.parametrize("edit", [
    lambda m: {k: v for k, v in m.items() if k != "estimator"},
    _set("estimator", {"n_components": 3, "no_such_parameter": 1}),
    _set("dim", "two"),
    lambda m: {**m, "estimator": {**m["estimator"], "n_components": 4}},  # shape mismatch
    lambda m: [1, 2],  # valid JSON, not an object
    lambda m: {k: v for k, v in m.items() if k != "preprocessing"},
    lambda m: {k: v for k, v in m.items() if k != "training"},
    lambda m: {**m, "training": {**m["training"], "temperature": -1.0}},
    lambda m: {**m, "training": {**m["training"], "temperature": "hot"}},
    _set("feature_names", ["only-one"]),
    _set("feature_names", ["a", "a"]),
    _set("feature_names", [1, 2]),
])
def test_load_of_an_inconsistent_manifest(saved, tmp_path, edit):
    path = _copy(saved, tmp_path)
    _edit_manifest(path, edit)
    with pytest.raises(ValueError):
        VMoNF.load(path)


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
def test_string_labels_go_through_classes(tmp_path):
    x, y = toy.two_circles(n=64, seed=0)
    names = np.where(y == 0, "outer", "inner").astype(object)
    names[np.random.default_rng(0).permutation(64)[:48]] = -1  # 16 labelled, 48 unlabelled
    m = VMoNF(**{**TINY, "n_components": 2, "pretrain_epochs": 2, "epochs": 2,
                 "prior": "uniform"}).fit(x, names)
    assert list(m.classes_) == ["inner", "outer"]
    pred = m.predict(x)
    assert set(np.unique(pred)) <= {0, 1}
    labels = m.classes_[pred]
    assert set(labels) <= {"inner", "outer"}
    m.save(tmp_path / "m")
    assert list(VMoNF.load(tmp_path / "m").classes_) == ["inner", "outer"]
    classes, codes = VMoNF(n_components=2)._encode_labels(x, names)
    np.testing.assert_array_equal(codes[names != -1], (y[names != -1] == 0).astype(int))


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
    y = None
    if failure == "devices":
        m.set_params(parallel="data", devices=7)
    elif failure == "bad labels":
        y = np.arange(len(xy[0])) - 1  # -1 marks row 0 unlabelled; too many classes
    else:
        monkeypatch.setattr("vmonf_jax.estimator.fit", _raise_non_finite)
    with pytest.raises(Exception) as info:  # noqa: B017 - any failure must leave m intact
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


def test_sample_bounds(fitted):
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
