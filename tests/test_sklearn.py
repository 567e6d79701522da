"""scikit-learn's own estimator checks on a tiny ``VMoNF``, and the conventions they imply.

The checks fit on a dozen data shapes; each new shape compiles the training epoch once, so
the configuration is as small as a fit can be (one coupling block, two hidden units).
"""

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from vmonf_jax import VMoNF

pytestmark = [pytest.mark.usefixtures("fast_compile"),
              pytest.mark.filterwarnings("ignore::sklearn.exceptions.SkipTestWarning")]

TINY = {"n_components": 2, "n_blocks": 1, "hidden": (2,), "posterior_hidden": (2,),
        "epochs": 2, "warm_epochs": 2, "n_init": 1, "verbose": False}


@parametrize_with_checks([VMoNF(**TINY)])  # every check passes: none is an expected failure
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.normal(size=(24, 2)), columns=["a", "b"])


def test_feature_names_are_checked_as_sklearn_does(frame):
    m = VMoNF(**TINY).fit(frame)
    np.testing.assert_array_equal(m.feature_names_in_, ["a", "b"])
    with pytest.raises(ValueError, match="same order as they were in fit"):
        m.predict(frame[["b", "a"]])
    with pytest.raises(ValueError, match="Feature names unseen at fit time"):
        m.score_samples(frame.rename(columns={"b": "c"}))
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        pred = m.predict(frame.to_numpy())
    np.testing.assert_array_equal(pred, m.predict(frame))
    np.testing.assert_array_equal(m.labels_, pred)  # labels_: the training rows' clusters
    m.fit(frame.to_numpy())  # a refit without names forgets them
    assert not hasattr(m, "feature_names_in_")
    named = VMoNF(**TINY).fit(frame.to_numpy(), feature_names=["a", "b"])  # as the CLI does
    np.testing.assert_array_equal(named.feature_names_in_, ["a", "b"])
    np.testing.assert_array_equal(named.predict(frame), m.predict(frame.to_numpy()))
    with pytest.raises(ValueError, match="X has column names of its own"):
        VMoNF(**TINY).fit(frame, feature_names=["a", "b"])
    with pytest.raises(ValueError, match="list of 2 distinct strings"):
        VMoNF(**TINY).fit(frame.to_numpy(), feature_names=["a", "a"])


@pytest.mark.parametrize("X,error,match", [
    (np.array([[1.0, 2.0], [np.nan, 0.0], [3.0, 1.0]]), ValueError,
     r"X has a non-finite value \(NaN\) at row 1, column 0"),
    (np.array([[1.0, 2.0], [0.0, -np.inf], [3.0, 1.0]]), ValueError,
     r"non-finite value \(-inf\) at row 1, column 1"),
    (np.array([[1.0, 2.0], [0.0, 1e39], [3.0, 1.0]]), ValueError,
     r"outside the float32 range.* at row 1, column 1"),
    (np.zeros((0, 2)), ValueError, r"0 sample\(s\)"),
    (np.zeros((3, 0)), ValueError, r"0 feature\(s\)"),
    (np.ones((3, 2)) * 1j, ValueError, "Complex data not supported"),
    (np.zeros(3), ValueError, "Expected 2D array, got 1D array"),
    (np.ones((3, 1)), ValueError, r"realnvp needs at least 2 features .*n_features = 1"),
    (np.ones((1, 2)), ValueError, "X has 1 rows, fewer than the 2 components"),
    (pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.0, np.nan, 1.0]}), ValueError,
     r"\(NaN\) at row 1, column 'b' \(1 such values in all\); missing values: leave those "
     r"rows out first \(a data frame's \.dropna\(\)\)"),
    (pd.DataFrame({"a": [1.0, 2.0, 3.0], "kind": ["x", "y", "x"]}), ValueError,
     "X has non-numeric columns 'kind': encode them as numbers or drop them"),
])
def test_input_messages(X, error, match):
    """sklearn's words where it has a convention; the row and column of bad values."""
    with pytest.raises(error, match=match):
        VMoNF(**TINY).fit(X)


def test_sparse_input_is_refused_as_sklearn_does():
    sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(TypeError, match="Sparse data was passed"):
        VMoNF(**TINY).fit(sparse.random(10, 2, density=0.5, format="csr"))
