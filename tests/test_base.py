"""Base distributions (``vmonf_jax.model.bases``): the Student-t base scored and sampled exactly,
its parameter layout, and the Gaussian start over it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from vmonf_jax import flows
from vmonf_jax.model import bases
from vmonf_jax.model.mixture import Mixture
from vmonf_jax.train import gaussian_start as gs

pytestmark = pytest.mark.usefixtures("fast_compile")

T = bases.StudentTBase()


def _params_with_df(df):
    b = bases.LOG_DF_BOUND
    return {"raw_df": jnp.asarray(b * np.arctanh(np.log(df - 1.0) / b), jnp.float32)}


def test_student_t_starts_near_normal_and_keeps_df_above_one():
    assert float(T.df(T.init(jnp.float32))) == pytest.approx(bases.STUDENT_T_START_DF, rel=1e-5)
    assert float(T.df({"raw_df": jnp.float32(-1e4)})) > 1.0
    assert float(T.df({"raw_df": jnp.float32(1e4)})) < 1100.0  # log-gamma stays precise
    assert float(T.df(_params_with_df(4.0))) == pytest.approx(4.0, rel=1e-5)
    assert T.init(jnp.float32)["raw_df"].dtype == jnp.float32


@pytest.mark.parametrize("df", [1.5, 4.0, 30.0])
def test_student_t_log_prob_matches_scipy(df):
    z = np.random.default_rng(0).normal(scale=3.0, size=(50, 3)).astype(np.float32)
    got = np.asarray(T.log_prob(_params_with_df(df), jnp.asarray(z)))
    expected = stats.t(df).logpdf(z.astype(np.float64)).sum(1)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_student_t_samples_follow_the_distribution():
    df = 3.0
    z = np.asarray(T.sample(_params_with_df(df), jax.random.key(0), 20_000, 2, jnp.float32))
    assert z.shape == (20_000, 2) and z.dtype == np.float32
    for col in z.T:  # each marginal, and nothing like a normal
        assert stats.kstest(col, stats.t(df).cdf).pvalue > 0.01
    assert stats.kstest(z[:, 0], stats.norm.cdf).pvalue < 1e-6
    assert abs(np.corrcoef(z.T)[0, 1]) < 0.03  # independent marginals


def test_normal_flow_params_unchanged_and_student_t_adds_one_trailing_entry():
    normal = flows.make_flow("realnvp", 2, n_blocks=2, hidden=(4,))
    student = flows.make_flow("realnvp", 2, n_blocks=2, hidden=(4,), base="student_t")
    p_n, _ = normal.init(jax.random.key(0))
    p_t, _ = student.init(jax.random.key(0))
    assert len(p_n) == len(normal.layers) and normal.base_params(p_n) is None
    assert len(p_t) == len(student.layers) + 1 and set(p_t[-1]) == {"raw_df"}
    for a, b in zip(jax.tree.leaves(p_n), jax.tree.leaves(p_t[:-1]), strict=True):
        np.testing.assert_array_equal(a, b)


def test_student_t_flow_scores_and_samples_through_its_layers(perturb):
    """Identity layers: the flow's density is the base's; perturbed: change of variables."""
    flow = flows.make_flow("spline", 2, n_blocks=2, hidden=(4,), base="student_t")
    params, _ = flow.init(jax.random.key(0))
    params = (*params[:-1], _params_with_df(2.5))
    x = np.random.default_rng(1).normal(scale=2.0, size=(20, 2)).astype(np.float32)
    np.testing.assert_allclose(flow.log_prob(params, jnp.asarray(x)),
                               stats.t(2.5).logpdf(x).sum(1), rtol=1e-5, atol=1e-4)
    moved = (*perturb(2, params[:-1], 0.3), params[-1])
    z, ld = flow.inverse(moved, jnp.asarray(x))
    np.testing.assert_allclose(flow.log_prob(moved, jnp.asarray(x)),
                               stats.t(2.5).logpdf(np.asarray(z)).sum(1) + np.asarray(ld),
                               rtol=1e-5, atol=1e-4)
    xs = flow.sample(params, jax.random.key(3), 20_000)
    assert stats.kstest(np.asarray(xs[:, 1]), stats.t(2.5).cdf).pvalue > 0.01


def test_gaussian_start_sets_the_whitening_layer_not_the_base():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(60, 2)) + 4.0, 0.5 * rng.normal(size=(60, 2))])
    model = Mixture(2, 2, "spline", n_blocks=2, hidden=(4,), affine=True, base="student_t")
    params, _ = model.init(jax.random.key(1))
    means, covs, weights, _, _ = gs.fit_gaussians(x, (x[:, 0] > 2).astype(int), 2, 0)
    started = gs.apply(model, params, means, covs, weights)
    comps = started["components"]
    np.testing.assert_allclose(comps[-2]["loc"], means, rtol=1e-6)  # the Whiten layer
    np.testing.assert_array_equal(comps[-1]["raw_df"], params["components"][-1]["raw_df"])
    # at step 0 each component is its Gaussian's location-scale map of a t_30 base: close
    # to the Gaussian mixture on the data, not equal to it (docs/api.md)
    lp = np.asarray(model.log_prob(started, jnp.asarray(x, jnp.float32)))
    ref = np.log(0.5 * sum(stats.multivariate_normal(m, c).pdf(x) for m, c in zip(means, covs)))
    assert 1e-3 < np.abs(lp - ref).max() < 0.5
