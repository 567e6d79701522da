"""``base="auto"``: Student-t bases where training rows lie far out, normal bases elsewhere."""

import json
import pickle
import warnings

import numpy as np
import pytest

from vmonf_jax import VMoNF
from vmonf_jax.hygiene import FAR_OUT, HEAVY_TAILS, auto_base, data_warnings
from vmonf_jax.model.bases import NormalBase, StudentTBase

SMALL = dict(n_components=2, n_blocks=1, hidden=(4,), posterior_hidden=(4,), epochs=2,
             warm_epochs=1, n_init=1, batch_size=64, verbose=False)


def _rows(far: bool, n=120):
    x = np.random.default_rng(0).normal(size=(n, 3))
    if far:
        x[7, 2] = 2 * FAR_OUT  # a data error: 40 robust deviations out
    return x


def _with(x, row, col, deviations):
    """``x`` with ``x[row, col]`` set ``deviations`` robust deviations above its median."""
    x = x.copy()
    c = x[:, col]
    x[row, col] = np.median(c) + deviations * 1.4826 * np.median(np.abs(c - np.median(c)))
    return x


def test_the_rule_reads_the_columns_the_far_out_warning_reads_at_half_its_bound():
    far = _rows(True)
    assert auto_base(far, "standardize") == "student_t"
    assert auto_base(_rows(False), "standardize") == "normal"
    assert auto_base(far, "standardize", dequantized=[2]) == "normal"  # spread over cells
    assert auto_base(far, "logit-pixels") == "normal"
    assert HEAVY_TAILS < FAR_OUT
    heavy = _with(_rows(False), 3, 0, 1.5 * HEAVY_TAILS)  # heavy tails, no data error
    assert auto_base(heavy, "standardize") == "student_t"
    assert not any("robust" in m for m in data_warnings(heavy, "standardize"))
    inside = _with(_rows(False), 3, 0, 0.9 * HEAVY_TAILS)
    assert auto_base(inside, "standardize") == "normal"


def test_a_count_far_out_is_warned_about_though_auto_does_not_read_it():
    """A count of 1,000 where most are 0-6 (asaur's pharmacoSmoking: prior attempts) is
    named by the far-out warning, dequantised or not; ``base="auto"`` does not read
    dequantised columns (MNIST's faint pixels), so the warning says which base would."""
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.normal(size=300), rng.poisson(2.0, 300).astype(float)])
    x[5, 1] = 1000.0
    assert auto_base(x, "standardize", dequantized=[1]) == "normal"
    [far] = [m for m in data_warnings(x, "standardize", dequantized=[1]) if "robust" in m]
    assert far.startswith("1 row lies more than 20 robust deviations from a column's median "
                          "(row 5, column 1: 1000)")
    assert far.endswith("base='student_t' fits heavy-tailed ones)")
    [far] = [m for m in data_warnings(x, "standardize") if "robust" in m]
    assert far.endswith("(base='auto', the default, fits Student-t bases to these data)")


def _fit(x, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return VMoNF(**{**SMALL, **kw}).fit(x)


@pytest.mark.parametrize("far,base,kind", [(True, "student_t", StudentTBase),
                                           (False, "normal", NormalBase)])
def test_the_resolved_base_is_fitted_saved_loaded_and_pickled(far, base, kind, tmp_path):
    x = _rows(far)
    m = _fit(x)
    assert (m.base, m.base_) == ("auto", base) and isinstance(m.model_.flow.base, kind)
    m.save(tmp_path / "m")
    man = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert (man["estimator"]["base"], man["training"]["base"]) == ("auto", base)
    for other in (VMoNF.load(tmp_path / "m"), pickle.loads(pickle.dumps(m))):
        assert (other.base, other.base_) == ("auto", base)
        np.testing.assert_array_equal(other.score_samples(x), m.score_samples(x))


def test_an_explicit_base_is_kept_whatever_the_data():
    m = _fit(_rows(True), base="normal")
    assert m.base_ == "normal" and isinstance(m.model_.flow.base, NormalBase)


@pytest.mark.parametrize("edit,match", [
    (lambda m: m["training"].pop("base"), "training.base is missing"),
    (lambda m: m["training"].update(base="cauchy"), "training.base must be one of"),
    (lambda m: m["estimator"].update(base="normal"),
     "training.base is 'student_t' but estimator.base is 'normal'"),
])
def test_a_manifest_whose_base_does_not_add_up_is_damaged(edit, match, tmp_path):
    _fit(_rows(True)).save(tmp_path / "m")
    path = tmp_path / "m" / "manifest.json"
    m = json.loads(path.read_text())
    edit(m)
    path.write_text(json.dumps(m))
    with pytest.raises(ValueError, match=f"damaged model directory: .*{match}"):
        VMoNF.load(tmp_path / "m")


def test_the_cli_fits_auto_and_says_which_base_it_took(tmp_path, capsys):
    from vmonf_jax.cli import main

    np.savetxt(tmp_path / "d.csv", _rows(True), delimiter=",")
    assert main(["fit", str(tmp_path / "d.csv"), "--out", str(tmp_path / "m"),
                 "--components", "2", "--blocks", "1", "--hidden", "4", "--posterior-hidden",
                 "4", "--warm-epochs", "1", "--epochs", "2", "--n-init", "1"]) == 0
    err = capsys.readouterr().err
    assert "1 row lies more than 20 robust deviations" in err
    assert "saved " in err and "(2 components, student_t bases," in err
    assert main(["info", str(tmp_path / "m")]) == 0
    assert "student_t base" in capsys.readouterr().out
