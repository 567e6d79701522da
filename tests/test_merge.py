"""The sparse prior's start: Gaussian components that share a cluster are merged (automatic K)."""

import jax
import numpy as np
import pytest
from sklearn.mixture import GaussianMixture

from vmonf_jax import VMoNF
from vmonf_jax.train import merge, prune

pytestmark = pytest.mark.usefixtures("fast_compile")


@pytest.fixture(scope="module")
def three_blobs():
    """Three round blobs, 8 standard deviations apart, 60 rows each; the blob of each row."""
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [8.0, 0.0], [4.0, 7.0]])
    return (np.concatenate([rng.normal(c, 1.0, (60, 2)) for c in centres]),
            np.repeat(np.arange(3), 60))


def test_responsibilities_match_scikit_learn(three_blobs):
    x, _ = three_blobs
    gmm = GaussianMixture(4, random_state=0).fit(x)
    got = merge.responsibilities(x, gmm.means_, gmm.covariances_, gmm.weights_)
    np.testing.assert_allclose(got, gmm.predict_proba(x), atol=1e-8)


def test_entropy_groups_merge_shared_rows_only():
    tau = np.zeros((40, 4))
    tau[:10, :2] = 0.7, 0.3  # components 0 and 1 share their rows
    tau[10:20, 1] = 1.0
    tau[20:30, 2] = 1.0  # 2 and 3 share 1 row: ln 2 / 9.5 = 0.07 nats per row of 3
    tau[30, 2:] = 0.5
    tau[31:, 3] = 1.0
    assert merge.entropy_groups(tau).tolist() == [0, 0, 1, 2]
    assert merge.entropy_groups(tau, threshold=0.01).tolist() == [0, 0, 1, 1]
    assert merge.entropy_groups(tau, fewest=3).tolist() == [0, 0, 1, 2]
    assert merge.entropy_groups(tau, threshold=0.0, fewest=2).max() == 1
    assert merge.entropy_groups(tau, threshold=np.inf).tolist() == [0, 1, 2, 3]


def test_em_pieces_of_each_blob_merge_into_one_group(three_blobs):
    x, blob = three_blobs
    for seed in range(3):
        gmm = GaussianMixture(8, random_state=seed).fit(x)
        resp = merge.responsibilities(x, gmm.means_, gmm.covariances_, gmm.weights_)
        group = merge.entropy_groups(resp)
        assert group.max() == 2
        # every group is one blob: its components' rows all come from that blob
        assignment = group[resp.argmax(1)]
        assert all(len(set(blob[assignment == g])) == 1 for g in range(3))


def test_merged_gaussian_has_the_moments_of_its_members():
    """Components at a hard partition's moments (weights its shares): merged = the union's."""
    rng = np.random.default_rng(1)
    parts = [rng.normal(m, s, (n, 3)) for m, s, n in ((0.0, 1.0, 50), (2.0, 0.5, 30),
                                                       (-5.0, 2.0, 20))]
    means = [p.mean(0) for p in parts]
    covs = [np.cov(p, rowvar=False, ddof=0) for p in parts]
    weights = np.array([50, 30, 20]) / 100
    m, c, w = merge.merged_gaussians(means, covs, weights, np.array([0, 0, 1]))
    union = np.concatenate(parts[:2])
    np.testing.assert_allclose(m[0], union.mean(0), atol=1e-12)
    np.testing.assert_allclose(c[0], np.cov(union, rowvar=False, ddof=0), atol=1e-12)
    np.testing.assert_allclose(c[1], covs[2], atol=1e-12)
    np.testing.assert_allclose(w, [0.8, 0.2])


def test_sparse_fit_starts_with_one_component_per_blob(three_blobs):
    """K = 8 on three blobs: the Gaussian start merges before any epoch (to 3, or to 3 and
    an EM component of a few outlying rows, which the Dirichlet weights then remove); the
    fitted mixture keeps one flow per blob."""
    x, blob = three_blobs
    m = VMoNF(n_components=8, prior="sparse", n_blocks=1, hidden=(4,), posterior_hidden=(4,),
              epochs=2, warm_epochs=1, n_init=2, verbose=False).fit(x)
    assert {len(e["usage"]) for e in m.history_} <= {3, 4}  # every epoch after the merge
    assert m.n_components_ == 3
    pred = m.predict(x)
    assert all(len(set(pred[blob == b])) == 1 for b in range(3))


def test_other_priors_do_not_merge(three_blobs):
    x, _ = three_blobs
    m = VMoNF(n_components=4, prior="em", n_blocks=1, hidden=(4,), posterior_hidden=(4,),
              epochs=1, warm_epochs=1, n_init=1, verbose=False).fit(x)
    assert m.n_components_ == 4 and len(m.history_[0]["usage"]) == 4


def test_pruning_rescores_the_kept_parameters():
    """After pruning, early stopping compares with the pruned kept parameters' own score."""
    from vmonf_jax.model.mixture import Mixture
    from vmonf_jax.train.state import Kept, RunState
    from vmonf_jax.train.step import evaluate

    model = Mixture(dim=2, n_components=3, n_blocks=1, hidden=(4,), posterior_hidden=(4,),
                    prior="sparse")
    params, state = model.init(jax.random.key(0))
    stack = jax.tree.map(lambda a: np.stack([a, a]), Kept(params, state))
    run = RunState(stack.params, None, stack.state, None, None, keep=stack,
                   keep_t=np.float32([1.0, 0.5]),
                   best_val=np.float32([5.0, 5.0]), since_best=np.int32([7, 3]))
    small = prune.with_components(model, 2)
    run = prune.prune_restarts(run, np.array([[0, 2], [0, 1]]), model)
    x_val = np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32)
    out = prune.rescored(small, run, x_val)
    kept = jax.tree.map(lambda a: a[0], run.keep)
    np.testing.assert_allclose(out.best_val[0], evaluate(small, *kept, x_val, 1.0)[0],
                               rtol=1e-5)
    assert out.best_val[0] < 5.0 and out.since_best.tolist() == [0, 0]
