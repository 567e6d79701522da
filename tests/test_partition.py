"""The warm start's partition and its space (``train.partition``)."""

import jax
import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from vmonf_jax.model.mixture import Mixture
from vmonf_jax.preprocess import make_preprocessor
from vmonf_jax.train import prepare
from vmonf_jax.train.partition import grid_rows
from vmonf_jax.train.schedule import Schedule


def _grid_data(seed=1, n=200):
    """Two clusters 6 grid steps apart in two integer columns, plus 8 rare integer columns
    (0 in 97 % of the rows): standardised, the rare values dominate the distances."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    informative = rng.integers(0, 4, (n, 2)) + 6 * y[:, None]
    rare = np.where(rng.random((n, 8)) < 0.03, rng.integers(1, 5, (n, 8)), 0)
    return np.concatenate([informative, rare], 1).astype(float), y


def test_grid_rows_is_in_grid_steps_only_when_every_column_is_dequantised():
    x = np.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(grid_rows(x, None), x)
    np.testing.assert_array_equal(grid_rows(x, np.array([0.5, 0.0])), x)  # one continuous
    np.testing.assert_allclose(grid_rows(x, np.array([0.5, 2.0])), x / [0.5, 2.0])


def test_grid_rows_undoes_the_standardisation_up_to_the_means():
    X, _ = _grid_data()
    pre = make_preprocessor("standardize", "auto").fit(X)
    rows = grid_rows(pre.transform(X)[0].astype(np.float64), pre.noise_width())
    np.testing.assert_allclose(rows, X - X.mean(0), atol=1e-4)


@pytest.mark.parametrize("seed", [1, 2])
def test_spectral_partition_of_integer_columns_is_computed_in_grid_steps(seed):
    """Standardised, the spectral partition follows the rare columns (ARI < 0.3 measured);
    in grid steps it finds the two clusters."""
    X, y = _grid_data(seed)
    pre = make_preprocessor("standardize", "auto").fit(X)
    Z, noise = pre.transform(X)[0], pre.noise_width()
    model = Mixture(X.shape[1], 2, n_blocks=1, hidden=(4,), posterior_hidden=(4,))
    keys = jax.random.split(jax.random.key(0), 1)

    def ari(noise):
        data = prepare.arrays_of(Z, None, None, Schedule(warm=0), model, keys, graph=True,
                                 partition=True, noise=noise)
        return adjusted_rand_score(y, np.asarray(data.y_warm[0]))

    assert ari(noise) == 1.0
    assert ari(None) < 0.5
