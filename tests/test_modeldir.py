"""The model directory's own rules (``modeldir``): what ``save`` may replace, what a failed save
leaves, a batch-norm model's state, and the record of a resumable fit.

No training: the estimators here carry initial parameters, as a fit would leave them.
"""

import json
import os

import jax
import numpy as np
import pytest

from vmonf_jax import VMoNF
from vmonf_jax.persist import fitrecord, modeldir
from vmonf_jax.preprocess import make_preprocessor

pytestmark = pytest.mark.usefixtures("fast_compile")

TINY = {"n_components": 2, "n_blocks": 2, "hidden": (4,), "posterior_hidden": (4,),
        "epochs": 2, "warm_epochs": 1, "batch_size": 16, "n_init": 1, "verbose": False}
X = np.random.default_rng(0).normal(size=(20, 2))


def _untrained(perturb, k_kept=None, **kw):
    """An estimator with perturbed initial parameters and a one-epoch history.

    ``k_kept``: the components a sparse fit kept (default: ``n_components``).
    """
    est = VMoNF(**{**TINY, **kw})
    config = est._config(2, k_kept)
    params, state = config.model.init(jax.random.key(0))
    params, state = perturb(1, params, 0.3), perturb(2, state, 0.3)
    history = [{"restart": 0, "phase": "main", "epoch": 0, "T": 1.0, "loss": 2.0,
                "elbo": -2.0, "loglik": -1.9, "usage": [0.5, 0.5]}]
    est._set_fitted(model_=config.model, config_=config,
                    preprocessor_=make_preprocessor("standardize").fit(X), classes_=None,
                    n_features_in_=2, params_=params, state_=state, history_=history,
                    fit_score_=-1.0, best_restart_=0, temperature_=0.5, base_="normal",
                    usage_=np.full(config.model.n_components, 1 / config.model.n_components))
    return est


def _leaves_equal(a, b):
    la, ta = jax.tree.flatten(a)
    lb, tb = jax.tree.flatten(b)
    assert ta == tb and len(la) > 0
    for x, y in zip(la, lb, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_batch_norm_state_round_trips(perturb, tmp_path):
    est = _untrained(perturb, batch_norm=True)
    assert jax.tree.leaves(est.state_)  # running statistics to store
    est.save(tmp_path / "bn")
    loaded = VMoNF.load(tmp_path / "bn")
    _leaves_equal(loaded.state_, est.state_)
    _leaves_equal(loaded.params_, est.params_)
    np.testing.assert_array_equal(loaded.score_samples(X), est.score_samples(X))
    for a, b in zip(loaded.sample(5, seed=1), est.sample(5, seed=1)):  # with the state
        np.testing.assert_array_equal(a, b)


def test_a_plain_model_stores_no_state(perturb, tmp_path):
    est = _untrained(perturb)
    est.save(tmp_path / "plain")
    assert VMoNF.load(tmp_path / "plain").state_ == est.state_
    assert not jax.tree.leaves(est.state_)


def test_save_replaces_only_a_model_directory(perturb, tmp_path):
    est = _untrained(perturb)
    est.save(tmp_path / "m")
    assert modeldir.is_model_dir(tmp_path / "m")
    # a folder holding a manifest.json among other files is not a model directory
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "manifest.json").write_text("{}")
    (mixed / "notes.txt").write_text("mine")
    assert not modeldir.is_model_dir(mixed)
    with pytest.raises(ValueError, match=r"not a vmonf model directory \(it holds "
                                         r"manifest.json, notes.txt\)"):
        est.save(mixed)
    assert sorted(os.listdir(mixed)) == ["manifest.json", "notes.txt"]
    only_state = tmp_path / "only_state"
    (only_state / "state").mkdir(parents=True)
    assert not modeldir.is_model_dir(only_state)  # no manifest
    (only_state / "manifest.json").mkdir()
    assert not modeldir.is_model_dir(only_state)  # a manifest that is not a file
    # absent, under folders that do not exist yet: fine; under a file: refused
    modeldir.check_replaceable(tmp_path / "a" / "b" / "model")
    est.save(tmp_path / "a" / "b" / "model")
    assert modeldir.is_model_dir(tmp_path / "a" / "b" / "model")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"file is not a folder"):
        modeldir.check_replaceable(tmp_path / "file" / "c" / "model")


def test_a_failed_save_leaves_nothing_behind(perturb, tmp_path, monkeypatch):
    est = _untrained(perturb)
    before = sorted(os.listdir(tmp_path))

    def broken(directory, tree, meta):
        os.makedirs(directory, exist_ok=True)
        open(os.path.join(directory, "partial"), "w").close()
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(modeldir.ckpt, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        est.save(tmp_path / "m")
    assert sorted(os.listdir(tmp_path)) == before


def test_a_manifest_that_load_would_refuse_is_never_written(tmp_path):
    tree = {"params": {"a": np.zeros(2, np.float32)}, "state": None}
    with pytest.raises(ValueError, match="cannot save this model: .*format_version"):
        modeldir.save(tmp_path / "m", tree, {"format_version": 99})
    assert not os.path.exists(tmp_path / "m")


def test_fit_record_names_what_changed(tmp_path):
    settings = {"epochs": 3, "hidden": (4,)}
    data = (np.arange(6.0).reshape(3, 2), None)
    assert fitrecord.start_or_resume(tmp_path, settings, data, resume=False) is False
    rec = json.loads((tmp_path / "fit.json").read_text())
    assert rec["estimator"] == {"epochs": 3, "hidden": [4]} and isinstance(rec["data"], str)
    assert fitrecord.start_or_resume(tmp_path, settings, data, resume=True) is False  # no ckpt
    with pytest.raises(ValueError, match=r"these differ: epochs=4 \(was 3\)$"):
        fitrecord.start_or_resume(tmp_path, {**settings, "epochs": 4}, data, resume=True)
    with pytest.raises(ValueError, match="not the data the interrupted fit started on"):
        fitrecord.start_or_resume(tmp_path, settings, (data[0] + 1, None), resume=True)
    (tmp_path / "fit.json").write_text('{"estimator": {}}')
    with pytest.raises(ValueError, match="damaged fit record"):
        fitrecord.read_fit_record(tmp_path)
    (tmp_path / "fit.json").write_text("{")
    with pytest.raises(ValueError, match=r"fit.json: damaged fit record \("):
        fitrecord.read_fit_record(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"nothing to resume in .* \(no fit.json\)"):
        fitrecord.read_fit_record(tmp_path / "none")


def test_a_sparse_model_loads_with_the_components_it_kept(perturb, tmp_path):
    est = _untrained(perturb, k_kept=2, prior="sparse", n_components=4)
    assert est.n_components_ == 2 and est.n_components == 4
    est.save(tmp_path / "sparse")
    loaded = VMoNF.load(tmp_path / "sparse")
    assert loaded.n_components_ == 2 and loaded.n_components == 4
    _leaves_equal(loaded.params_, est.params_)
    assert loaded.predict_proba(X).shape == (len(X), 2)


def test_an_older_manifest_without_consistency_means_the_papers_loss(perturb, tmp_path):
    est = _untrained(perturb)
    assert est.consistency != 0.0  # the default now
    est.save(tmp_path / "old")
    path = tmp_path / "old" / "manifest.json"
    m = json.loads(path.read_text())
    del m["estimator"]["consistency"]
    path.write_text(json.dumps(m))
    assert VMoNF.load(tmp_path / "old").consistency == 0.0
