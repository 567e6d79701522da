"""Preprocessors: invertibility, log-det against finite differences, persistence, edge cases."""

import json

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from vmonf_jax.metrics import bits_per_dim
from vmonf_jax.preprocess import (
    LogitPixels,
    Standardize,
    make_preprocessor,
    preprocessor_from_dict,
)

RNG = np.random.default_rng(0)
REAL = RNG.normal(loc=[3.0, -200.0, 0.01], scale=[2.0, 50.0, 0.1], size=(64, 3))
PIXELS = RNG.integers(0, 256, size=(64, 5)).astype(np.float64)
PIXELS[0] = [0, 255, 0, 255, 128]  # the extremes


def _fitted(name):
    data = PIXELS if name == "logit-pixels" else REAL
    return make_preprocessor(name).fit(data), data


def _numeric_log_det(pre, Y, h=0.1):
    """-sum_j log|d inverse_j / dY_j| by 4th-order central differences.

    The maps are elementwise, so shifting every column at once gives each column's slope; the
    wide step keeps float32 rounding of the inverse small where the logit saturates.
    """

    def inv(shift):
        return pre.inverse(Y.astype(np.float64) + shift).astype(np.float64)

    slope = (8 * (inv(h) - inv(-h)) - (inv(2 * h) - inv(-2 * h))) / (12 * h)
    return -np.log(np.abs(slope)).sum(axis=1)


@pytest.mark.parametrize("name", ["none", "standardize"])
def test_round_trip_real_data(name):
    pre, X = _fitted(name)
    Y, log_det = pre.transform(X)
    assert Y.dtype == log_det.dtype == np.float32 and log_det.shape == (len(X),)
    np.testing.assert_allclose(pre.inverse(Y), X, rtol=1e-5, atol=1e-4)


def test_standardize_moments_and_log_det():
    pre, X = _fitted("standardize")
    Y, log_det = pre.transform(X)
    np.testing.assert_allclose(Y.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(Y.std(0), 1, atol=1e-5)
    np.testing.assert_allclose(log_det, -np.log(X.std(0)).sum(), rtol=1e-6)


@pytest.mark.parametrize("name", ["none", "standardize", "logit-pixels"])
def test_log_det_matches_finite_differences(name):
    pre, X = _fitted(name)
    for rng in (None, 1):
        Y, log_det = pre.transform(X, rng=rng)
        np.testing.assert_allclose(log_det, _numeric_log_det(pre, Y), rtol=1e-5, atol=1e-3)


def test_logit_pixels_dequantisation_and_inverse():
    pre, X = _fitted("logit-pixels")
    Y, _ = pre.transform(X)
    np.testing.assert_allclose(pre.inverse(Y), X + 0.5, atol=1e-3)  # scoring: midpoint
    Y1, _ = pre.transform(X, rng=np.random.default_rng(1))
    Y2, _ = pre.transform(X, rng=np.random.default_rng(2))
    V = pre.inverse(Y1)
    assert np.array_equal(np.floor(V), X) and not np.allclose(Y1, Y2)
    assert np.isfinite(Y1).all() and V.max() < 256
    # The inverse of extreme logits stays in [0, 256) and maps back to valid pixels.
    edges = pre.inverse(np.full((1, 5), 40.0)), pre.inverse(np.full((1, 5), -40.0))
    assert edges[0].max() < 256 and edges[1].min() >= 0
    assert np.isfinite(pre.transform(edges[0])[0]).all()


def test_logit_pixels_log_det_formula():
    pre, X = _fitted("logit-pixels")
    _, log_det = pre.transform(X)
    lam = 1e-6
    y = lam + (1 - 2 * lam) * (X + 0.5) / 256
    expected = np.sum(np.log((1 - 2 * lam) / 256) - np.log(y) - np.log1p(-y), axis=1)
    np.testing.assert_allclose(log_det, expected, rtol=1e-6)


def test_uniform_pixel_density_is_8_bits_per_dim():
    """The units chain of bits/dim: with lam = 0 the logit of U[0, 256) is standard
    logistic, so its density plus the log-det is the uniform density 256^-D: 8 bits/dim."""
    pre = LogitPixels(lam=0.0).fit(PIXELS)
    Y, log_det = pre.transform(PIXELS, rng=3)
    y = Y.astype(np.float64)
    logistic = np.sum(-y - 2 * np.log1p(np.exp(-y)), axis=1)
    np.testing.assert_allclose(bits_per_dim(logistic + log_det, PIXELS.shape[1]), 8.0,
                               rtol=1e-5)


@pytest.mark.parametrize("name", ["none", "standardize", "logit-pixels"])
def test_dict_round_trip(name):
    pre, X = _fitted(name)
    restored = preprocessor_from_dict(json.loads(json.dumps(pre.to_dict())))
    assert type(restored) is type(pre) and restored.name == name
    for a, b in zip(pre.transform(X), restored.transform(X), strict=True):
        np.testing.assert_array_equal(a, b)


def test_constant_column_stays_finite():
    X = np.column_stack([RNG.normal(size=20), np.full(20, 7.0), np.zeros(20)])
    pre = Standardize().fit(X)
    Y, log_det = pre.transform(X)
    assert np.isfinite(Y).all() and np.isfinite(log_det).all()
    np.testing.assert_allclose(pre.scale[1:], [7e-3, 1e-3])
    np.testing.assert_allclose(pre.inverse(Y), X, atol=1e-5)


def test_errors():
    with pytest.raises(ValueError, match="'none', 'standardize', 'logit-pixels'"):
        make_preprocessor("whiten")
    with pytest.raises(NotFittedError):
        Standardize().transform(REAL)
    pre, _ = _fitted("standardize")
    with pytest.raises(ValueError, match="expected 3 columns"):
        pre.transform(REAL[:, :2])
    with pytest.raises(ValueError, match="NaN"):
        pre.transform(np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match=r"\[0, 256\)"):
        LogitPixels().fit(PIXELS).transform(PIXELS + 1)


def _stored(**changes):
    d = _fitted("standardize")[0].to_dict()
    return {**d, **changes}


@pytest.mark.parametrize("d,match", [
    (_stored(scale=[1.0, 0.0, 1.0]), r"scale\[1\] must be positive"),
    (_stored(scale=[1.0, 1.0, -2.0]), r"scale\[2\] must be positive"),
    (_stored(scale=[1.0, float("nan"), 1.0]), r"scale\[1\] must be finite"),
    (_stored(mean=[0.0, float("inf"), 1.0]), r"mean\[1\] must be finite"),
    (_stored(scale=[1.0, 1.0]), "scale must be a list of 3 numbers"),
    (_stored(mean="zero"), "mean must be a list of 3 numbers"),
    (_stored(mean=[0.0, True, 1.0]), "mean must be a list"),
    (_stored(dim=0), "dim must be a positive integer"),
    (_stored(dim=2.5), "dim must be a positive integer"),
    ({"name": "logit-pixels", "dim": 3, "options": {"lam": 0.7}}, "lam"),
    ({"name": "logit-pixels", "dim": 3, "options": {"lambda": 0.1}}, "options"),
    ({"name": "whiten", "dim": 3}, "unknown preprocessing"),
    ([1, 2], "expected an object"),
])
def test_a_stored_preprocessor_is_validated(d, match):
    """A stored state that would make every score NaN (or worse) is refused by name."""
    with pytest.raises(ValueError, match=match):
        preprocessor_from_dict(d)
