"""The optimiser and the compiled epoch (``lax.scan`` over mini-batches).

An epoch draws its batches on device from the epoch's key; a ragged last batch is filled
with points from the start of the epoch's permutation, so every epoch of one data shape
compiles once. Also the scores computed on device (validation, EM prior, divergence check).
"""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from vmonf_jax.chunked import map_rows
from vmonf_jax.model.mixture import Mixture, elbo_from_terms
from vmonf_jax.train.consistency import WARM_START_ROWS, neighbour_rows
from vmonf_jax.train.objective import Batch, combine

EXPLODE = 1e3  # a step loss above best + EXPLODE * (1 + |best|) nats counts as divergence
PCA_DIMS = 50  # the k-means warm start of wider data runs on this many principal components


def make_optimizer(config) -> optax.GradientTransformation:
    """Clip, then Adam with coupled L2 (the paper's) or AdamW, from a ``run.StepSpec``.

    (A ``FitConfig`` has the same fields.) The prior's logits are trained only when
    ``model.prior.trained`` (learned; em and sparse set them after each main epoch, uniform
    keeps them at zero).
    """
    steps = []
    if config.clip_norm:
        steps.append(optax.clip_by_global_norm(config.clip_norm))
    if config.decoupled_weight_decay:
        steps.append(optax.adamw(config.learning_rate, weight_decay=config.weight_decay))
    else:
        if config.weight_decay:
            steps.append(optax.add_decayed_weights(config.weight_decay))
        steps.append(optax.adam(config.learning_rate))
    prior = "train" if config.model.prior.trained else "frozen"
    labels = {"components": "train", "posterior": "train", "prior_logits": prior}
    return optax.multi_transform({"train": optax.chain(*steps), "frozen": optax.set_to_zero()},
                                 lambda params: {k: labels[k] for k in params})


def batch_indices(key, n, batch_size):
    """(n_batches, batch) row indices of one epoch; the ragged tail wraps around."""
    perm = jax.random.permutation(key, n)
    n_batches = -(-n // batch_size)
    return jnp.concatenate([perm, perm[: n_batches * batch_size - n]]).reshape(n_batches, -1)


def make_epoch(model: Mixture, tx, batch_size: int, loss=None, parallel=None):
    """A jitted epoch: ``(carry, data, key, T, nbrs, weights, transforms) -> (carry, ...)``.

    It returns ``(carry, losses, metrics)``: per-step losses, metrics as means.
    ``loss``: the step's loss (``objective.combine``; default: the mean of
    ``objective.point_losses``). ``carry`` = (params, opt_state, flow state). ``data`` =
    (X, y) with y = -1 for unlabelled rows (all -1: unsupervised; all labelled:
    supervised), or (X, y, X_lab, y_lab): every step also sees a batch of labelled rows
    drawn with replacement. ``parallel``: a ``vmonf_jax.parallel.Parallel`` (data- or
    component-parallel over its mesh; sharding annotations only) or None (one device).
    Optional: ``nbrs``, the (n, k) neighbour graph of X (``consistency.knn_graph``): each
    step's ``objective.Batch`` carries the neighbour rows of its rows of X; ``weights``,
    the named weights of the loss's terms; ``transforms``, pure ``(batch, key) -> batch``
    functions applied in order with the step's key (``vmonf_jax.dequantization``).
    """
    loss = loss or combine()

    @jax.jit
    def epoch(carry, data, key, temperature, nbrs=None, weights=None, transforms=()):
        n = data[0].shape[0]
        bs = min(batch_size, n)
        k_perm, k_lab = jax.random.split(key)
        idx = batch_indices(k_perm, n, bs)
        joint = len(data) == 4
        n_lab = data[2].shape[0] if joint else 1
        lab_idx = jax.random.randint(k_lab, (idx.shape[0], min(bs, n_lab)), 0, n_lab)
        transform_keys = jax.random.split(jax.random.fold_in(key, 1), idx.shape[0])

        def step(carry, ib):
            i, il, k_transform = ib
            rows = (data[0][i], data[1][i])
            x_nbrs = None if nbrs is None else neighbour_rows(data[0], nbrs, i)
            if joint:
                rows = tuple(jnp.concatenate([a, b[il]]) for a, b in zip(rows, data[2:]))
            batch = Batch(*rows)
            for transform in transforms:
                batch = transform(batch, k_transform)
            if parallel is not None:  # parallel: split/replicate the batch, pin the carry
                batch, carry = parallel.constrain_batch(batch), parallel.constrain_carry(carry)
            params, opt_state, state = carry
            (value, (state, metrics)), grads = jax.value_and_grad(
                lambda p: loss(model, p, state, batch._replace(x_nbrs=x_nbrs), temperature,
                               weights), has_aux=True)(params)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state, state), (value, metrics)

        carry, (losses, metrics) = jax.lax.scan(step, carry, (idx, lab_idx, transform_keys))
        metrics = jax.tree.map(lambda m: m.mean(0), metrics)
        if parallel is not None:  # parallel: carry keeps its shardings, metrics replicated
            carry = parallel.constrain_carry(carry)
            losses, metrics = parallel.constrain_replicated((losses, metrics))
        return carry, losses, metrics

    return epoch


def first_bad_step(losses, best):
    """Index of the first step whose loss is non-finite or exploded (-1: none), and its loss.

    Exploded: above ``ref + EXPLODE * (1 + |ref|)`` where ``ref`` is the lowest loss seen
    before that step (``best``: the lowest of earlier epochs, +inf at the start).
    """
    before = jnp.concatenate([jnp.full((1,), jnp.inf, losses.dtype),
                              jax.lax.cummin(losses)[:-1]])
    ref = jnp.minimum(best, before)
    bad = ~jnp.isfinite(losses) | (losses > ref + EXPLODE * (1 + jnp.abs(ref)))
    step = jnp.where(bad.any(), jnp.argmax(bad), -1)
    return step, losses[jnp.maximum(step, 0)]


# -- scores -------------------------------------------------------------------------------
def score_rows(model, params, state, x, temperature):
    """Per row: exact log-likelihood and ELBO at ``temperature``, shape (n, 2)."""
    joint = model.joint(params, x, state=state)
    log_q = model.log_posterior(params, x, temperature)
    return jnp.stack([jax.nn.logsumexp(joint, -1), elbo_from_terms(joint, log_q)], -1)


_score_rows = jax.jit(score_rows, static_argnums=0)


def scores_of_rows(model, params, state, x, temperature):
    """Per row of ``x``: exact log-likelihood and ELBO, (n, 2) (chunked; any number of rows).

    ``temperature`` goes in as a float32 scalar whatever its type (a Python float is weakly
    typed: callers passing both kinds compiled the scoring twice).
    """
    t = np.float32(temperature)
    return np.asarray(map_rows(lambda c: _score_rows(model, params, state, c, t), x))


def evaluate(model, params, state, x, temperature):
    """Mean exact log-likelihood and mean ELBO of ``x`` (chunked; any number of rows)."""
    rows = scores_of_rows(model, params, state, x, temperature)
    return float(rows[:, 0].mean()), float(rows[:, 1].mean())


@partial(jax.jit, static_argnums=0)
def init_params(model, key):
    """``(params, state)`` of ``model`` from ``key``, compiled."""
    return model.init(key)


def kmeans_labels(x, k: int, seed: int) -> np.ndarray:
    """k-means assignments (10 restarts, the lowest inertia kept) of the rows of ``x``.

    Data wider than ``PCA_DIMS`` columns are clustered on their first ``PCA_DIMS`` principal
    components (at most one per row): on MNIST's 784 pixels, distances in the full space are
    dominated by the many near-constant border pixels. More than ``WARM_START_ROWS`` rows:
    PCA and k-means are fitted on a random subsample of that many (seeded by ``seed``) and
    every row takes its nearest centre, so the cost grows linearly in N. Runs on one thread:
    on a busy machine OpenMP's spinning threads made it 50x slower.
    """
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from threadpoolctl import threadpool_limits

    n = x.shape[0]
    sub = (np.sort(np.random.default_rng(seed).choice(n, WARM_START_ROWS, replace=False))
           if n > WARM_START_ROWS else slice(None))
    feats = np.asarray(x[sub], np.float64)
    with threadpool_limits(1):
        pca = None
        if feats.shape[1] > PCA_DIMS:
            pca = PCA(min(PCA_DIMS, feats.shape[0]), random_state=seed)
            feats = pca.fit_transform(feats)
        km = KMeans(k, n_init=10, random_state=seed).fit(feats)
        if isinstance(sub, slice):
            return km.labels_.astype(np.int32)

        def nearest(rows):
            rows = np.asarray(rows, np.float64)
            return km.predict(rows if pca is None else pca.transform(rows))

        return map_rows(nearest, np.asarray(x), chunk=65536).astype(np.int32)
