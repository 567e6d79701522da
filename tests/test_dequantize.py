"""Dequantisation of integer columns (``dequantize``): preprocessing, training noise, scoring."""

import json
import warnings

import numpy as np
import pytest

from vmonf_jax import VMoNF
from vmonf_jax.hygiene import data_warnings
from vmonf_jax.preprocess import (
    Standardize,
    dequantization,
    dequantized_columns,
    make_preprocessor,
    preprocessor_from_dict,
)

pytestmark = pytest.mark.usefixtures("fast_compile")

RNG = np.random.default_rng(0)
# few-level integers, many-level integers, a constant integer column, reals
X = np.column_stack([RNG.integers(0, 5, 60), RNG.integers(0, 100, 60), np.full(60, 4.0),
                     RNG.normal(size=60)]).astype(np.float64)
TINY = {"n_components": 2, "n_blocks": 2, "hidden": (4,), "posterior_hidden": (4,),
        "epochs": 2, "warm_epochs": 1, "n_init": 1, "verbose": False}


@pytest.mark.parametrize("setting, expected", [("auto", [0, 2]), (True, [0, 1, 2]),
                                               (False, [])])
def test_which_columns_are_dequantised(setting, expected):
    assert dequantized_columns(X, setting).tolist() == expected


def test_auto_dequantises_every_column_of_all_integer_data():
    """8-bit images: 0-255 pixels are many-level integers, yet data on an integer grid."""
    images = RNG.integers(0, 256, (40, 6)).astype(np.float64)
    assert dequantized_columns(images, "auto").tolist() == list(range(6))
    assert dequantized_columns(X[:, :3], "auto").tolist() == [0, 1, 2]  # no real column


def test_auto_dequantises_integer_atoms():
    """Counts that are mostly 0 (many levels, one value in most rows) get the unit cell, which
    bounds their density at the atom; an atom in a column with fractions stays continuous,
    and only it is still reported as an atom."""
    counts = np.where(RNG.random(80) < 0.7, 0.0, RNG.integers(1, 500, 80))
    reals = np.where(RNG.random(80) < 0.7, 0.0, RNG.normal(size=80))
    data = np.column_stack([counts, reals, RNG.normal(size=80), RNG.integers(0, 100, 80)])
    assert len(np.unique(counts)) > 20  # not a few-level column: the atom decides
    assert dequantized_columns(data, "auto").tolist() == [0]
    said = " ".join(data_warnings(data, "standardize", dequantized_columns(data, "auto")))
    assert "column 1 holds one value" in said


def test_auto_dequantises_decimal_grids_with_their_steps():
    """Rounded measurements (halves, 15 values in 600 rows) and an atom recorded to two
    decimals get cells of their grid steps; full-precision columns and a few levels
    written with six decimals do not. The noise stays within each cell, and the steps
    survive the saved dict (older dicts, without them, mean unit cells)."""
    n = 600
    halves = np.round(RNG.normal(size=n) * 2) / 2
    atom = np.where(RNG.random(n) < 0.7, 0.0, np.round(RNG.exponential(size=n), 2))
    levels = RNG.choice(np.round(RNG.normal(size=12), 6), n)  # coarse, yet no filled grid
    data = np.column_stack([halves, atom, RNG.normal(size=n), levels])
    cols, steps = dequantization(data, "auto")
    assert cols.tolist() == [0, 1] and np.allclose(steps, [0.5, 0.01])
    assert dequantization(data, True)[0].tolist() == [0, 1]
    assert len(dequantization(data, False)[0]) == 0
    pre = make_preprocessor("standardize", "auto").fit(data)
    V = pre.inverse(pre.transform(data, rng=1)[0]).astype(np.float64)
    assert np.all(np.abs(V[:, :2] - data[:, :2]) <= steps / 2 + 1e-5)
    assert np.ptp(V[:, 0] - data[:, 0]) > 0.4  # the draws fill the half-width cells
    np.testing.assert_allclose(np.round(V[:, 0] * 2) / 2, data[:, 0])
    np.testing.assert_allclose(pre.noise_width()[:2], steps / pre.scale[:2])
    # the spread is that of the dequantised values: var + h^2 / 12
    np.testing.assert_allclose(pre.scale[0] ** 2, data[:, 0].var() + 0.25 / 12)
    saved = json.loads(json.dumps(pre.to_dict()))
    np.testing.assert_array_equal(preprocessor_from_dict(saved).steps, pre.steps)
    del saved["steps"]
    assert preprocessor_from_dict(saved).steps.tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="steps must be positive"):
        preprocessor_from_dict({**pre.to_dict(), "steps": [0.5, -1.0]})


def test_auto_dequantises_few_level_grids_with_fewer_repeats():
    """A dose at 9 levels in 79 rows (8.8 a level, under the 10 a coarse grid needs) is as
    discrete as an integer column of few levels: dequantised with its grid step. A few
    rows of one decimal each (a small table's measurement) are not, though few in count."""
    dose = 5937.5 * np.array([0, 1, 2, 4, 8, 16, 32, 64, 128])
    rows = np.column_stack([np.repeat(dose, 9)[:79], RNG.normal(size=79)])
    cols, steps = dequantization(rows, "auto")
    assert cols.tolist() == [0] and steps.tolist() == [5937.5]
    small = np.column_stack([np.linspace(2.0, 3.9, 20)[RNG.permutation(22) % 20],
                             RNG.normal(size=22)])
    assert len(dequantization(small, "auto")[0]) == 0


@pytest.mark.parametrize("name", ["none", "standardize"])
def test_dequantised_round_trip(name):
    """transform with noise, then inverse: each integer comes back by rounding, the noise is
    noise_width * (u - 1/2) in transformed units, and the other columns are exact."""
    pre = make_preprocessor(name, True).fit(X)
    Y0, ld0 = pre.transform(X)
    Y, ld = pre.transform(X, rng=1)
    V = pre.inverse(Y).astype(np.float64)
    deq = pre.dequantized
    np.testing.assert_array_equal(np.round(V[:, deq]), X[:, deq])
    assert np.all(np.abs(V[:, deq] - X[:, deq]) <= 0.5) and np.ptp(V[:, deq] - X[:, deq]) > 0.5
    np.testing.assert_allclose(V[:, 3], X[:, 3], rtol=1e-5, atol=1e-5)
    width = pre.noise_width()
    assert np.all(np.abs(Y - Y0) <= width / 2 + 1e-5) and np.all(width[3:] == 0)
    np.testing.assert_array_equal(ld, ld0)  # the noise does not change the map
    restored = preprocessor_from_dict(json.loads(json.dumps(pre.to_dict())))
    assert restored.dequantized.tolist() == deq.tolist()
    np.testing.assert_array_equal(restored.transform(X)[0], Y0)


def test_scale_of_a_dequantised_column_is_that_of_its_noisy_values():
    pre = Standardize(dequantize="auto").fit(X)
    np.testing.assert_allclose(pre.scale[[0, 2]], np.sqrt(X[:, [0, 2]].var(0) + 1 / 12))
    assert pre.noise_width()[2] == pytest.approx(np.sqrt(12))  # constant: unit cell -> 3.46
    assert Standardize().fit(X).noise_width() is None  # the default: as before, no noise


def test_bad_settings_and_stored_columns():
    with pytest.raises(ValueError, match="dequantize must be 'auto', True or False"):
        make_preprocessor("standardize", "yes")
    d = Standardize(dequantize=True).fit(X).to_dict()
    for bad in ([7], [0, 0], ["0"]):
        with pytest.raises(ValueError, match="dequantized must be a list of distinct"):
            preprocessor_from_dict({**d, "dequantized": bad})


def test_warnings_say_what_is_done():
    msgs = data_warnings(X, "standardize", dequantized=[0, 2])
    assert any("column 2 is constant: dequantised" in m for m in msgs)
    assert not any("few integer values" in m for m in msgs)
    msgs = data_warnings(X, "standardize")
    assert any("column 2 is constant: their density is a spike" in m for m in msgs)
    assert any("column 0 takes a few integer values" in m and "dequantize" in m for m in msgs)
    pixels = np.zeros((6, 3))
    pixels[:, 1] = [0, 255, 3, 7, 9, 12]
    msgs = data_warnings(pixels, "logit-pixels")  # pixels: dequantised, never a spike
    assert any("columns 0, 2 are constant: dequantised" in m for m in msgs)
    assert not any("spike" in m or "few integer values" in m for m in msgs)


@pytest.fixture(scope="module")
def constant_column_models():
    """Two clusters in 2 columns plus a column that is 0 in every training row."""
    rng = np.random.default_rng(1)
    centres = np.repeat([[0.0, 0.0], [6.0, 6.0]], 100, 0)
    data = np.column_stack([np.round(centres + rng.normal(size=(200, 2))), np.zeros(200)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {d: VMoNF(dequantize=d, **TINY).fit(data) for d in ("auto", False)}, data


def test_a_constant_column_scores_finite_held_out_rows(constant_column_models):
    """Held-out rows that differ from the constant stay finite and moderate with
    dequantisation (a unit cell's spread), and cost ~10^5+ nats without it."""
    models, data = constant_column_models
    test = data[:20].copy()
    test[:10, 2] = 1.0
    on = models["auto"].score_samples(test)
    off = models[False].score_samples(test)
    assert np.isfinite(on).all() and on[:10].min() > on[10:].min() - 20
    assert off[:10].max() < -1e4
    assert models["auto"].preprocessor_.dequantized.tolist() == [0, 1, 2]


def test_samples_of_a_constant_column_spread_over_its_cell(constant_column_models):
    """The model is the density of the dequantised values: around the constant 0 its
    samples spread as U[-1/2, 1/2) does (a Gaussian start has its moments)."""
    models, _ = constant_column_models
    xs, _ = models["auto"].sample(2000, seed=0)
    assert abs(xs[:, 2].mean()) < 0.05 and xs[:, 2].std() == pytest.approx(12 ** -0.5, rel=0.2)


def test_noise_widths_are_checked():
    from vmonf_jax.train.prepare import noise_widths as _noise

    assert _noise(None, 3) is None and _noise(np.zeros(3), 3) is None
    for bad in (np.ones(2), np.array([1.0, -1.0, 0.0]), np.array([np.inf, 0, 0])):
        with pytest.raises(ValueError, match="noise must be 3 finite widths"):
            _noise(bad, 3)


def test_info_names_the_dequantised_columns_and_steps(tmp_path, capsys):
    """``vmonf info`` says which columns were dequantised and with what cell width."""
    from vmonf_jax.cli import main

    n = 300
    data = np.column_stack([np.round(RNG.normal(size=n) * 2) / 2, RNG.normal(size=n),
                            RNG.integers(0, 4, n)])
    np.savetxt(tmp_path / "d.csv", data, delimiter=",")
    assert main(["fit", str(tmp_path / "d.csv"), "--out", str(tmp_path / "m"),
                 "--components", "2", "--blocks", "1", "--hidden", "4", "--posterior-hidden",
                 "4", "--warm-epochs", "1", "--epochs", "2", "--n-init", "1", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["info", str(tmp_path / "m")]) == 0
    assert "dequantised columns (step) 0 (0.5), 2 (1)" in capsys.readouterr().out
    assert main(["info", str(tmp_path / "m"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["dequantized"] == {"0": 0.5, "2": 1.0}
