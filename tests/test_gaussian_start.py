"""The Gaussian start: at step 0 the mixture is a Gaussian mixture; held-out safety."""

import inspect
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from vmonf_jax.model.mixture import Mixture
from vmonf_jax.train import FitConfig, fit, merge, start_run
from vmonf_jax.train import gaussian_start as gs
from vmonf_jax.train.config import validation_rows
from vmonf_jax.train.step import kmeans_labels

pytestmark = pytest.mark.usefixtures("fast_compile")


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(120, 3)) @ np.array([[1.0, 0.5, 0.0], [0.0, 0.4, 0.2], [0, 0, 0.3]])
    return np.concatenate([a + 4.0, 0.7 * rng.normal(size=(90, 3))])


def _gmm_log_prob(x, means, covs, weights):
    comp = np.stack([multivariate_normal(m, c).logpdf(x) for m, c in zip(means, covs)], 1)
    return logsumexp(comp + np.log(weights), axis=1)


@pytest.mark.parametrize("flow", ["realnvp", "maf", "glow"])
@pytest.mark.parametrize("prior", ["uniform", "em"])
def test_step_zero_is_the_gaussian_mixture(blobs, flow, prior):
    model = Mixture(3, 2, flow, n_blocks=2, hidden=(4,), affine=True, prior=prior)
    params, _ = model.init(jax.random.key(1))
    means, covs, weights, assigned, _ = gs.fit_gaussians(blobs, kmeans_labels(blobs, 2, 0), 2,
                                                         0)
    params = gs.apply(model, params, means, covs, weights)
    expected = _gmm_log_prob(blobs, means, covs,
                             np.full(2, 0.5) if prior == "uniform" else weights)
    got = np.asarray(model.log_prob(params, jnp.asarray(blobs, jnp.float32)))
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-5)
    # the assignments are the refined mixture's, and they split the two blobs
    assert sorted(np.bincount(assigned)) == [90, 120]


def test_step_zero_with_a_student_t_base_is_the_t_twin_the_start_scores(blobs):
    """With a Student-t base the model at step 0 is the Gaussians' location-scale images of
    independent t marginals at the starting degrees of freedom: the mixture that the
    regulariser's choice and ``best_start`` score (``merge.joint_log_prob`` with ``df``),
    not the Gaussian mixture itself (the two differ most on far-out rows)."""
    model = Mixture(3, 2, "realnvp", n_blocks=2, hidden=(4,), affine=True, base="student_t")
    params, _ = model.init(jax.random.key(1))
    means, covs, weights, _, _ = gs.fit_gaussians(blobs, kmeans_labels(blobs, 2, 0), 2, 0)
    params = gs.apply(model, params, means, covs, weights)
    rows = np.concatenate([blobs, blobs[:5] + 8.0])  # five rows far out
    df = start_run.start_df(model)
    twin = logsumexp(merge.joint_log_prob(rows, means, covs, np.full(2, 0.5), df), axis=1)
    got = np.asarray(model.log_prob(params, jnp.asarray(rows, jnp.float32)))
    np.testing.assert_allclose(got, twin, atol=1e-3, rtol=1e-5)
    gauss = _gmm_log_prob(rows, means, covs, np.full(2, 0.5))
    assert np.all(twin[-5:] > gauss[-5:] + 5)  # t tails: the Gaussian is no stand-in there
    assert start_run.start_df(Mixture(3, 2, "realnvp", n_blocks=1, affine=True)) is None


def test_start_equals_scikit_learn_em_from_the_same_partition(blobs):
    from sklearn.mixture import GaussianMixture

    labels = kmeans_labels(blobs, 2, 0)
    means, covs, weights, _, reg = gs.fit_gaussians(blobs, labels, 2, 0, reg=1e-6)
    assert reg == 1e-6
    ref = GaussianMixture(2, covariance_type="full", random_state=0, reg_covar=1e-6,
                          means_init=np.stack([blobs[labels == k].mean(0) for k in (0, 1)])
                          ).fit(blobs)
    np.testing.assert_allclose(means, ref.means_, atol=1e-6)
    np.testing.assert_allclose(weights, ref.weights_, atol=1e-6)


def test_regulariser_chosen_by_validation(blobs, monkeypatch):
    """Wide data with a near-constant column: the tiny regulariser fits a spike that the
    validation rows do not follow, so a larger one is chosen."""
    rng = np.random.default_rng(1)
    x = np.concatenate([blobs, rng.normal(size=(210, 1)) * 1e-3], 1)
    x_val = np.concatenate([blobs[:60] + 0.1, rng.normal(size=(60, 1)) * 0.2], 1)
    monkeypatch.setattr(gs, "CV_BELOW", 60)  # 60 validation rows: judged on them alone
    *_, reg = gs.fit_gaussians(x, kmeans_labels(x, 2, 0), 2, 0, x_val)
    assert reg > gs.REG_GRID[0]
    *_, reg_free = gs.fit_gaussians(x, kmeans_labels(x, 2, 0), 2, 0)
    assert reg_free == gs.REG_COVAR


def test_few_validation_rows_do_not_overrule_the_training_rows(monkeypatch):
    """Below ``CV_BELOW`` validation rows the regulariser is cross-validated on every row:
    10 validation rows spread in a column where 210 training rows are tight choose the
    largest regulariser alone, the folds of all 220 rows one below that column's variance
    (1e-4)."""
    rng = np.random.default_rng(0)
    blobs = np.concatenate([rng.normal(size=(120, 2)), rng.normal(size=(90, 2)) + 6])
    x = np.concatenate([blobs, rng.normal(size=(210, 1)) * 1e-2], 1)
    x_val = np.concatenate([blobs[:10] + 0.1, rng.normal(size=(10, 1)) * 0.3], 1)
    labels = kmeans_labels(x, 2, 0)
    assert gs.fit_gaussians(x, labels, 2, 0, x_val)[-1] < 1e-4
    monkeypatch.setattr(gs, "CV_BELOW", 0)
    assert gs.fit_gaussians(x, labels, 2, 0, x_val)[-1] == gs.REG_GRID[-1]


def test_regulariser_goes_below_1e_4_where_held_out_rows_share_a_thin_direction():
    """A column that is the sum of two others up to noise of 1e-3 (a derived column, as
    real tables store): the validation rows follow it, so the choice is below 1e-4, and the
    chosen mixture scores fresh rows higher than the one at 1e-4 (the bar's mixture,
    scikit-learn's, has a floor of 1e-6 in the data's units)."""
    rng = np.random.default_rng(2)

    def rows(n):
        a = np.concatenate([rng.normal(size=(n // 2, 2)), rng.normal(size=(n - n // 2, 2)) + 5])
        return np.concatenate([a, a.sum(1, keepdims=True) + 1e-3 * rng.normal(size=(n, 1))], 1)

    x, x_val, fresh = rows(300), rows(gs.CV_BELOW), rows(1000)
    labels = kmeans_labels(x, 2, 0)
    means, covs, weights, _, reg = gs.fit_gaussians(x, labels, 2, 0, x_val, equal=True)
    assert reg < 1e-4
    at_1e4 = gs.fit_gaussians(x, labels, 2, 0, x_val, reg=1e-4, equal=True)
    assert (_gmm_log_prob(fresh, means, covs, weights).mean()
            > _gmm_log_prob(fresh, *at_1e4[:3]).mean() + 1.0)


def test_the_regulariser_floor_is_as_thin_as_float32_resolves():
    """An exact linear relation between columns (a stored sum): validation chooses the
    floor of ``REG_GRID``, and the float32 model at step 0 still equals the float64 mixture
    there (within 0.01 nats a row); a floor 100 times thinner would not."""
    rng = np.random.default_rng(3)

    def rows(n):
        a = np.concatenate([rng.normal(size=(n // 2, 2)), rng.normal(size=(n - n // 2, 2)) + 4])
        x = np.concatenate([a, a.sum(1, keepdims=True)], 1) / np.array([1.7, 2.3, 3.1])
        return x.astype(np.float32).astype(np.float64)  # the rows as the model sees them

    x, x_val = rows(300), rows(60)
    labels = kmeans_labels(x, 2, 0)
    model = Mixture(3, 2, "realnvp", n_blocks=2, hidden=(4,), affine=True)
    params, _ = model.init(jax.random.key(1))
    errors = {}
    for reg in (None, gs.REG_GRID[0] / 100):
        means, covs, _, _, chosen = gs.fit_gaussians(x, labels, 2, 0, x_val, reg, equal=True)
        got = model.log_prob(gs.apply(model, params, means, covs, np.full(2, 0.5)),
                             jnp.asarray(x_val, jnp.float32))
        # the library's Cholesky path: scipy's multivariate_normal refuses so thin a covariance
        ref = logsumexp(merge.joint_log_prob(x_val, means, covs, np.full(2, 0.5)), axis=1)
        errors[chosen] = np.abs(np.asarray(got) - ref).max()
    assert list(errors) == [gs.REG_GRID[0], gs.REG_GRID[0] / 100]
    assert errors[gs.REG_GRID[0]] < 0.01 < errors[gs.REG_GRID[0] / 100]


def test_a_student_t_base_chooses_its_regulariser_as_a_t_mixture():
    """A derived column (a sum plus noise of 0.01) with 3% of the rows far off it: scored
    as Gaussians, the folds let those rows push the regulariser up; scored as the t mixture
    the model will be, they cost less, the choice is no larger, and that t mixture scores
    fresh rows no lower (seeds 0, 4, 5: larger choices of 1e-2 against 1e-10)."""
    for seed in (0, 4, 5):
        rng = np.random.default_rng(seed)

        def rows(n, rng=rng):
            a = np.concatenate([rng.normal(size=(n // 2, 2)),
                                rng.normal(size=(n - n // 2, 2)) + 5])
            x = np.concatenate([a, a.sum(1, keepdims=True) + 0.01 * rng.normal(size=(n, 1))], 1)
            far = rng.random(n) < 0.03
            x[far, 2] += rng.choice([-1, 1], far.sum()) * 3.0
            return x

        x, x_val, fresh = rows(300), rows(40), rows(2000)
        labels = kmeans_labels(x, 2, 0)
        fits = [gs.fit_gaussians(x, labels, 2, 0, x_val, equal=True, df=df) for df in (None, 30.0)]
        scores = [logsumexp(merge.joint_log_prob(fresh, *f[:3], 30.0), axis=1).mean()
                  for f in fits]
        assert fits[1][-1] < fits[0][-1]
        assert scores[1] > scores[0]


def test_apply_needs_the_location_scale_layer():
    model = Mixture(2, 2, "realnvp", n_blocks=2, hidden=(4,))
    params, _ = model.init(jax.random.key(0))
    with pytest.raises(ValueError, match="affine=True"):
        gs.apply(model, params, np.zeros((2, 2)), np.stack([np.eye(2)] * 2), np.full(2, 0.5))


def test_posterior_fitted_to_the_responsibilities(blobs):
    model = Mixture(3, 2, "realnvp", n_blocks=1, hidden=(4,), affine=True, prior="em")
    params, _ = model.init(jax.random.key(0))
    means, covs, weights, *_ = gs.fit_gaussians(blobs, kmeans_labels(blobs, 2, 0), 2, 0)
    stacked = jax.tree.map(lambda a: a[None], gs.apply(model, params, means, covs, weights))
    x = jnp.asarray(blobs, jnp.float32)
    fitted = gs.fit_posterior(model, stacked, x, 1.0, jax.random.key(0))
    one = jax.tree.map(lambda a: a[0], fitted)
    resp = np.asarray(model.responsibilities(one, x))
    before = np.abs(np.asarray(model.posterior(jax.tree.map(lambda a: a[0], stacked), x))
                    - resp).mean()
    after = np.abs(np.asarray(model.posterior(one, x)) - resp).mean()
    assert after < 0.02 < before


def test_validation_rows_rule():
    assert validation_rows(9) == 0  # too few rows to judge anything by
    assert validation_rows(10) == validation_rows(11) == 5  # never more than half
    assert validation_rows(20) == validation_rows(40) == 10
    assert validation_rows(1000) == 150
    assert validation_rows(10**7) == 20_000


@pytest.mark.parametrize("k, held_out", [(3, True), (7, False)])
def test_small_data_hold_out_rows_unless_a_component_would_lack_one(k, held_out):
    """12 rows: half are held out (nothing else stops the flows from fitting each training
    row), unless fewer training rows than components would remain."""
    from vmonf_jax import VMoNF

    x = np.random.default_rng(0).normal(size=(12, 2))
    m = VMoNF(n_components=k, n_blocks=1, hidden=(4,), posterior_hidden=(4,), n_init=1,
              warm_epochs=1, steps=4, verbose=False).fit(x)
    assert any("val_loglik" in e for e in m.history_) == held_out


@pytest.mark.parametrize("init", ["gaussian", "kmeans+gaussian"])
def test_training_that_only_hurts_keeps_the_start_with_a_warning(blobs, init):
    """A learning rate far too high only lowers the validation log-likelihood: the fit
    returns the Gaussian start (its density on every row) and says so, whether training
    began at that start or at the k-means warm start beside it."""
    model = Mixture(3, 2, "realnvp", n_blocks=2, hidden=(4,), affine=True, prior="em")
    config = FitConfig(model=model, epochs=3, batch_size=64, learning_rate=0.5, n_init=1,
                       init=init, warm_epochs=0, early_stopping=True, verbose=False,
                       clip_norm=None)
    x = jnp.asarray(blobs, jnp.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fit(jax.random.key(0), x, config)
    assert any("the mixture is kept" in str(w.message) for w in caught)
    # the kept parameters are the start: the Gaussian mixture its last layers hold
    last = jax.tree.map(np.asarray, res.params["components"][-1])
    w = np.tril(last["lower"], -1) + np.exp(last["log_scale"])[:, None, :] * np.eye(3)
    chol = np.linalg.inv(w.astype(np.float64))
    weights = np.asarray(jax.nn.softmax(res.params["prior_logits"]))
    expected = _gmm_log_prob(blobs, last["loc"], chol @ chol.transpose(0, 2, 1), weights)
    np.testing.assert_allclose(np.asarray(model.log_prob(res.params, x)), expected, atol=1e-4)
    assert len([e for e in res.history if "val_loglik" in e]) >= 1
    assert res.score >= max(e["val_loglik"] for e in res.history if "val_loglik" in e)


def test_kmeans_gaussian_trains_from_the_warm_start_with_the_mixture_as_rival(blobs):
    """``init="kmeans+gaussian"``: the run begins at the k-means warm start's flows (the
    identity, far below the Gaussian mixture on the validation rows), not at the mixture,
    which ``init="gaussian"`` trains from; with no real training the mixture is kept."""
    model = Mixture(3, 2, "realnvp", n_blocks=2, hidden=(4,), affine=True, prior="em")
    first, scores = {}, {}
    for init in ("gaussian", "kmeans+gaussian"):
        config = FitConfig(model=model, epochs=1, batch_size=64, learning_rate=1e-9,
                           n_init=1, init=init, warm_epochs=0, early_stopping=True,
                           verbose=False)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = fit(jax.random.key(0), jnp.asarray(blobs, jnp.float32), config)
        assert any("the mixture is kept" in str(w.message) for w in caught)
        first[init] = [e["val_loglik"] for e in res.history if "val_loglik" in e][0]
        scores[init] = res.score
    assert scores["gaussian"] == pytest.approx(scores["kmeans+gaussian"], abs=1e-5)
    assert first["gaussian"] == pytest.approx(scores["gaussian"], abs=1e-3)
    assert first["kmeans+gaussian"] < scores["gaussian"] - 1.0


def test_kmeans_gaussian_without_validation_rows_is_the_gaussian_start(blobs):
    """Without validation rows nothing can judge the rival: ``"kmeans+gaussian"`` trains
    from the Gaussian start, epoch for epoch as ``"gaussian"`` does."""
    model = Mixture(3, 2, "realnvp", n_blocks=2, hidden=(4,), affine=True, prior="em")
    losses = {}
    for init in ("gaussian", "kmeans+gaussian"):
        config = FitConfig(model=model, epochs=3, batch_size=64, n_init=1, init=init,
                           warm_epochs=2, early_stopping=False, verbose=False)
        res = fit(jax.random.key(0), jnp.asarray(blobs, jnp.float32), config)
        losses[init] = [e["loss"] for e in res.history]
    assert len(losses["gaussian"]) == 5
    np.testing.assert_allclose(losses["kmeans+gaussian"], losses["gaussian"], rtol=1e-6)


def test_kmeans_gaussian_with_labels_trains_from_the_mixture(blobs):
    """With labels the mixture's decomposition is steered by them: ``"kmeans+gaussian"``
    trains from the Gaussian start, as ``"gaussian"`` does (the first validated epoch is
    the start, untouched at learning rate 1e-9)."""
    model = Mixture(3, 2, "realnvp", n_blocks=2, hidden=(4,), affine=True, prior="em")
    config = FitConfig(model=model, epochs=1, batch_size=64, learning_rate=1e-9, n_init=1,
                       init="kmeans+gaussian", warm_epochs=0, early_stopping=True,
                       verbose=False)
    labels = np.full(len(blobs), -1)
    labels[[0, -1]] = [0, 1]  # one row of each blob
    res = fit(jax.random.key(0), jnp.asarray(blobs, jnp.float32), config, labels=labels)
    first = [e["val_loglik"] for e in res.history if "val_loglik" in e][0]
    assert first == pytest.approx(res.score, abs=1e-3)


def test_data_hygiene_warnings():
    from vmonf_jax.hygiene import data_warnings

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    assert data_warnings(x, "standardize") == []
    bad = x.copy()
    bad[:, 1] = 3.0                                   # constant
    bad[:, 2] = rng.integers(0, 5, 200)               # discrete
    bad[100:] = bad[:100]                             # half the rows repeated
    msgs = data_warnings(bad, "standardize")
    assert any("column 1 is constant" in m for m in msgs)
    assert any("100 of 200 rows repeat" in m for m in msgs)
    assert any("column 2 takes a few integer values" in m for m in msgs)
    bad[:, 3] = 1.5                                   # two constant columns, named
    named = data_warnings(bad, "standardize", names=["a", "b", "c", "d"])
    assert any(m.startswith("columns 'b', 'd' are constant") for m in named)
    assert any(m.startswith("column 'c' takes a few integer values") for m in named)
    atom = x.copy()
    atom[:120, 3] = 0.0                               # an atom: 0 in 60% of the rows
    assert any(m.startswith("column 3 holds one value in more than 50% of the rows "
                            "(column 3: 0 in 60%)") for m in data_warnings(atom, "standardize"))
    atom[:80, 3] = x[:80, 3]                          # 0 in 20%: a common value, no atom
    assert data_warnings(atom, "standardize") == []
    counts = x.copy()
    counts[:, 0] = np.where(np.arange(200) < 160, 1, rng.integers(2, 9, 200))
    msgs = data_warnings(counts, "standardize", dequantized=[0])  # dequantised: no atom
    assert not any("hold one value" in m for m in msgs)
    grid = rng.integers(0, 3, (200, 2)).astype(float)  # 9 cells: most rows repeat one
    assert not any("repeat" in m for m in data_warnings(grid, "standardize", [0, 1]))
    mixed = np.column_stack([grid, np.repeat(x[:100, 0], 2)])  # the float column repeats
    assert any("100 of 200 rows repeat an earlier row in the columns not dequantised" in m
               for m in data_warnings(mixed, "standardize", [0, 1]))
    far = x.copy()
    far[7, 2] = 60.0                                  # a data error: 60 deviations out
    assert any(m.startswith("1 row lies more than 20 robust deviations from a column's median "
                            "(row 7, column 2: 60)") and "base='auto', the default, fits "
               "Student-t bases" in m for m in data_warnings(far, "standardize"))
    assert any("base='normal'; 'auto' or 'student_t' fit heavy-tailed" in m
               for m in data_warnings(far, "standardize", base="normal"))
    assert any("robust" in m and "base='auto' keeps normal bases" in m  # dequantised
               for m in data_warnings(far, "standardize", [2]))
    far[8, 3] = -60.0
    assert any(m.startswith("2 rows lie more than 20") for m in data_warnings(far, "standardize"))
    rounded = x.copy()
    rounded[:, 1] = np.round(x[:, 1] * 2) / 2  # about 13 values in 200 rows: 0.5 apart
    msgs = data_warnings(rounded, "standardize")
    assert any(m.startswith("column 1 takes few distinct values for their rows (column 1:")
               and "0.5 apart or more" in m and "dequantize='auto'" in m for m in msgs)
    assert not any("few distinct" in m for m in data_warnings(rounded, "standardize", [1]))
    rounded[:, 1] = rng.choice(rng.normal(size=12), 200)  # 12 levels with every decimal
    assert any("column 1 holds levels on no decimal grid" in m and "dequantize=" not in m
               for m in data_warnings(rounded, "standardize"))
    assert not any("few distinct" in m  # 2 decimals: about 2 rows a value
                   for m in data_warnings(np.round(x, 2), "standardize"))
    wide = x * np.array([1e-4, 1, 1, 1e4])
    assert data_warnings(wide, "standardize") == []
    assert any("preprocess='standardize'" in m for m in data_warnings(wide, "none"))


def test_a_diverging_restart_keeps_its_validated_start(blobs):
    """With the Gaussian start and a validation split, a loss that explodes stops that
    restart with a warning, and the fit returns a validated model (here: the start)."""
    model = Mixture(3, 2, "realnvp", n_blocks=2, hidden=(4,), affine=True, prior="em")
    config = FitConfig(model=model, epochs=5, batch_size=64, learning_rate=50.0, n_init=1,
                       init="gaussian", warm_epochs=0, early_stopping=True, verbose=False,
                       clip_norm=None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fit(jax.random.key(0), jnp.asarray(blobs, jnp.float32), config)
    messages = [str(w.message) for w in caught]
    assert any("stops there and keeps its best validated parameters" in m for m in messages)
    assert np.isfinite(res.score)
    assert np.all(np.isfinite(np.asarray(model.log_prob(res.params, jnp.asarray(blobs)))))


def test_auto_patience_is_a_quarter_of_the_epochs():
    from vmonf_jax.train.config import auto_patience

    assert auto_patience(10) == 20 and auto_patience(100) == 25 and auto_patience(400) == 100


def test_wide_clusters_with_asymmetric_inverses_start():
    """EM starts from the clusters' precisions even where inverting rounded them asymmetric.

    scikit-learn rejects an asymmetric ``precisions_init``; on 784-d MNIST the plain inverse
    of the clusters' covariances is asymmetric by rounding, and the default fit crashed.
    """
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 60)) @ rng.normal(size=(60, 60)) * rng.uniform(0.001, 3, 60)
    x[:, :5] = x[:, 5:10] + 1e-4 * rng.normal(size=(400, 5))  # near-collinear columns
    labels = (x[:, 0] > 0).astype(np.int32)
    covs = [np.cov(x[labels == j], rowvar=False) + 1e-6 * np.eye(60) for j in (0, 1)]
    inv = np.linalg.inv(np.asarray(covs))
    assert not np.allclose(inv, inv.transpose(0, 2, 1))  # scikit-learn's check would fail
    means, covs, weights, warm, _ = gs.fit_gaussians(x, labels, 2, 0, reg=1e-6)
    assert np.isfinite(means).all() and np.allclose(weights.sum(), 1.0)


def test_a_rival_partition_replaces_the_partition_only_when_clearly_better(monkeypatch):
    """EM from ``rival`` replaces EM from ``labels`` when it fits by > RIVAL_MARGIN a row.

    Four blobs at (+-6, +-1): the left/right partition gives two compact Gaussians, the
    top/bottom one two Gaussians stretched over 12 units (about 1.8 nats a row worse), a
    fixed point of EM by symmetry. The free k-means++ starts are switched off here.
    """
    monkeypatch.setattr(gs, "_or_free", lambda gmm, rows, k, seed, equal=False: gmm)
    rng = np.random.default_rng(0)
    centres = np.array([[-6, -1], [-6, 1], [6, -1], [6, 1]], float)
    x = np.repeat(centres, 100, 0) + 0.3 * rng.normal(size=(400, 2))
    left_right = (x[:, 0] > 0).astype(np.int32)
    top_bottom = (x[:, 1] > 0).astype(np.int32)
    means, _, _, warm, _ = gs.fit_gaussians(x, top_bottom, 2, 0, reg=1e-6, rival=left_right)
    assert np.array_equal(warm, left_right)
    np.testing.assert_allclose(np.sort(np.abs(means[:, 0])), [6, 6], atol=0.2)
    means, _, _, warm, _ = gs.fit_gaussians(x, left_right, 2, 0, reg=1e-6, rival=top_bottom)
    assert np.array_equal(warm, left_right)
    np.testing.assert_allclose(np.sort(np.abs(means[:, 0])), [6, 6], atol=0.2)
    # without the rival, EM stays at the stretched fixed point
    means, *_ = gs.fit_gaussians(x, top_bottom, 2, 0, reg=1e-6)
    assert np.abs(means[:, 0]).max() < 1


def _lopsided():
    """A big cluster (70% of the rows) and two small ones beside each other."""
    rng = np.random.default_rng(3)
    return np.concatenate([rng.normal(size=(280, 2)) * 1.5,
                           rng.normal(size=(60, 2)) * 0.3 + [5.0, 0.0],
                           rng.normal(size=(60, 2)) * 0.3 + [5.0, 1.5]])


def test_equal_weight_em_is_the_uniform_priors_maximum_likelihood():
    """With ``equal`` the weights stay 1/K, the result is a fixed point of EM under equal
    weights (each mean the responsibility-weighted mean of the rows, responsibilities with
    equal weights), and it fits the rows with equal weights at least as well as the
    free-weight mixture does once its weights are made equal (what the uniform prior did
    to it before)."""
    x = _lopsided()
    labels = kmeans_labels(x, 3, 0)
    means, covs, weights, _, _ = gs.fit_gaussians(x, labels, 3, 0, reg=1e-3, equal=True)
    np.testing.assert_array_equal(weights, np.full(3, 1 / 3))
    comp = np.stack([multivariate_normal(m, c).logpdf(x) for m, c in zip(means, covs)], 1)
    resp = np.exp(comp - logsumexp(comp, axis=1, keepdims=True))
    # EM stops at scikit-learn's tolerance (1e-3 on the mean log-likelihood), not exactly
    np.testing.assert_allclose(means, (resp.T @ x) / resp.sum(0)[:, None], atol=0.05)
    free = gs.fit_gaussians(x, labels, 3, 0, reg=1e-3)
    assert not np.allclose(free[2], 1 / 3, atol=0.05)  # the free weights are lopsided
    equal_ll = _gmm_log_prob(x, means, covs, weights).mean()
    assert equal_ll >= _gmm_log_prob(x, free[0], free[1], np.full(3, 1 / 3)).mean() - 1e-6


@pytest.mark.parametrize("prior,equal", [("uniform", True), ("em", False)])
def test_a_fixed_prior_fits_its_start_with_equal_weights(blobs, prior, equal, monkeypatch):
    """``fit`` asks for equal weights exactly when the prior is fixed uniform."""
    seen = []
    real = gs.fit_gaussians

    def spy(*args, **kwargs):
        seen.append(inspect.signature(real).bind(*args, **kwargs).arguments.get("equal", False))
        return real(*args, **kwargs)

    monkeypatch.setattr(gs, "fit_gaussians", spy)
    model = Mixture(3, 2, "realnvp", n_blocks=2, hidden=(4,), affine=True, prior=prior)
    config = FitConfig(model=model, epochs=1, batch_size=64, n_init=1, init="gaussian",
                       warm_epochs=0, early_stopping=True, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit(jax.random.key(0), jnp.asarray(blobs, jnp.float32), config)
    assert seen == [equal]


def test_linearly_dependent_columns_are_named():
    """A column that is the sum of two others (to rounding) puts the rows near a hyperplane:
    the warning names the three columns; strongly correlated but independent columns pass."""
    from vmonf_jax import hygiene

    rng = np.random.default_rng(0)
    x = np.round(rng.normal(size=(300, 4)) * [1.0, 2.0, 0.5, 1.5] + 10, 2)
    dependent = np.column_stack([x, x[:, 0] + x[:, 2]])
    msgs = [m for m in hygiene.data_warnings(dependent, "standardize") if "linear" in m]
    assert len(msgs) == 1 and msgs[0].startswith("columns 0, 2, 4 are (nearly) linear")
    close = np.column_stack([x, x[:, 0] + 0.2 * rng.normal(size=300)])  # correlation 0.98
    assert not [m for m in hygiene.data_warnings(close, "standardize") if "linear" in m]
    # dequantised columns are spread by noise: not reported
    assert not [m for m in hygiene.data_warnings(dependent, "standardize", dequantized=[4])
                if "linear" in m]


def test_row_numbers_and_identifiers_are_named():
    """A column of distinct integers packed in a run (row numbers, an id, a day counter;
    of every row or of a training split's sample) is named; integers that measure something
    repeat, and 19 rows are too few to judge."""
    from vmonf_jax import hygiene

    def named(x, **kw):
        return [m for m in hygiene.data_warnings(x, "standardize", **kw) if "row number" in m]

    rng = np.random.default_rng(0)
    n = 300
    ids = rng.permutation(np.arange(1001, 1001 + n))[: int(0.7 * n)]  # a split's sample
    x = np.column_stack([rng.normal(size=(len(ids), 2)), ids, rng.poisson(200, len(ids))])
    (msg,) = named(x, names=["a", "b", "idcase", "count"])
    assert msg.startswith(f"column 'idcase' holds {len(ids)} distinct integers from "
                          f"{ids.min()} to {ids.max()}: an identifier or row number")
    both = np.column_stack([np.arange(n), rng.normal(size=n), rng.permutation(n) - 50])
    assert named(both)[0].startswith("columns 0, 2 number the rows (column 0 holds 300 "
                                     "distinct integers from 0 to 299): identifiers")
    assert not named(x[:, [0, 1, 3]])  # the counts repeat
    assert not named(np.column_stack([np.arange(19), rng.normal(size=19)]))


def test_columns_that_are_smooth_functions_of_others_are_named():
    """A measurement beside its logarithm (or any smooth function of one column) puts the
    rows near a curved surface: the warning names the pair; a noisy relation passes, and a
    linear one is left to the linear-dependence warning."""
    from vmonf_jax import hygiene, relations

    def curved(x, **kw):
        return [m for m in hygiene.data_warnings(x, "standardize", **kw) if "smooth" in m]

    rng = np.random.default_rng(0)
    x = np.round(np.exp(rng.normal(size=(300, 3)) * 0.3 + 3), 2)
    (msg,) = curved(np.column_stack([x, np.log(x[:, 1]), x[:, 2] ** 2]))
    assert msg.startswith("column pairs (1, 3), (2, 4) are (nearly) smooth functions")
    # not monotone: the square of a centred column is a function of it, not the reverse
    centred = x[:, 0] - x[:, 0].mean()
    assert "column pairs (0, 3)" in curved(np.column_stack([x, centred ** 2]))[0]
    noisy = np.log(x[:, 1]) + 0.01 * rng.normal(size=300)  # correlation 0.9995 with the log
    assert not curved(np.column_stack([x, noisy]))
    linear = np.column_stack([x, 2.54 * x[:, 1]])
    assert not curved(linear)
    assert [m for m in hygiene.data_warnings(linear, "standardize") if "linear" in m]
    assert not curved(np.column_stack([x, np.log(x[:, 1])]), dequantized=[3])
    assert relations.curved(x[:19], np.ones(3, bool)) == []  # too few rows to judge
