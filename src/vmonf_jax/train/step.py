"""Losses, the optimiser and the compiled epoch (``lax.scan`` over mini-batches).

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
from vmonf_jax.preprocess import PIXEL_LEVELS
from vmonf_jax.train.consistency import WARM_START_ROWS, neighbour_rows, penalty

EXPLODE = 1e3  # a step loss above best + EXPLODE * (1 + |best|) nats counts as divergence
PCA_DIMS = 50  # the k-means warm start of wider data runs on this many principal components


def make_optimizer(config) -> optax.GradientTransformation:
    """Clip, then Adam with coupled L2 (the paper's) or AdamW, from a ``FitConfig``.

    The prior's logits are trained only when ``model.prior.trained`` (learned; em and sparse
    set them after each main epoch, uniform keeps them at zero).
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


def point_losses(model, params, state, x, y, temperature):
    """Per-point loss: -ELBO(x) where y = -1, else -log p_y(x) - log pi_y - log q(y|x).

    A labelled point trains its own component and the posterior (cross-entropy); one
    function serves unsupervised, supervised and mixed batches, so one compile serves all.
    Aux: new batch-norm state and metrics (ELBO, exact log p, component usage).
    """
    comp, state = model.component_log_prob(params, x, state=state, train=True)
    joint = comp + model.log_prior(params)
    log_q = model.log_posterior(params, x, temperature)
    elbo = elbo_from_terms(joint, log_q)
    yc = jnp.maximum(y, 0)[:, None]
    sup = -(jnp.take_along_axis(joint, yc, -1) + jnp.take_along_axis(log_q, yc, -1))[:, 0]
    metrics = {"elbo": elbo.mean(), "loglik": jax.nn.logsumexp(joint, -1).mean(),
               "usage": jnp.exp(log_q).mean(0)}
    return jnp.where(y >= 0, sup, -elbo), (state, metrics)


def redequantize(z, key, lam: float):
    """Logit pixels ``z`` at their bins' midpoints, dequantised again with fresh noise.

    ``z`` is ``LogitPixels`` (lambda ``lam``) of each pixel's level + 0.5; the level is read
    back from it, and level + u, u ~ U[0, 1), goes through the same logit transform.
    """
    y = jax.nn.sigmoid(z)
    levels = jnp.round((y - lam) / (1.0 - 2.0 * lam) * PIXEL_LEVELS - 0.5)
    u = jax.random.uniform(key, z.shape, z.dtype)
    y = lam + (1.0 - 2.0 * lam) * (levels + u) / PIXEL_LEVELS
    return jnp.log(y) - jnp.log1p(-y)


def batch_indices(key, n, batch_size):
    """(n_batches, batch) row indices of one epoch; the ragged tail wraps around."""
    perm = jax.random.permutation(key, n)
    n_batches = -(-n // batch_size)
    return jnp.concatenate([perm, perm[: n_batches * batch_size - n]]).reshape(n_batches, -1)


def make_epoch(model: Mixture, tx, batch_size: int, joint: bool = False, parallel=None,
               dequantize: float | None = None, consistency: float = 0.0,
               balanced: bool = False):
    """A jitted epoch: ``(carry, data, key, T, nbrs, balance) -> (carry, losses, metrics)``.

    ``nbrs`` (default None) and ``balance`` (default 0) are optional; metrics are means.

    ``data`` = (X, y) with y = -1 for unlabelled rows (all -1: unsupervised; all labelled:
    supervised). With ``joint``, ``data`` = (X, y, X_lab, y_lab) and every step also sees a
    batch of labelled rows drawn with replacement. ``carry`` = (params, opt_state,
    flow state). ``parallel``: a ``vmonf_jax.parallel.Parallel`` (data- or
    component-parallel over its mesh; sharding annotations only) or None (one device).
    ``dequantize``: the rows are logit pixels at their bins' midpoints (lambda
    ``dequantize``) and every step draws fresh dequantisation noise (``redequantize``).
    ``noise`` (default None): (D,) widths (``Preprocessor.noise_width``); each step adds
    ``(u - 1/2) * noise``, u ~ U[0, 1), to its rows (dequantised integer columns).
    ``nbrs``: the (n, k) neighbour graph of X (``consistency.knn_graph``); with it, each
    step's loss adds ``consistency`` times the ``consistency.penalty`` of the rows of X in
    the batch (per-step losses include it). With ``balanced``, each step's loss also adds
    ``balance`` times the batch's ``marginal_kl`` (``init="balanced"``'s warm-up).
    """

    def loss_fn(params, state, batch, temperature, x_nbrs, balance):
        losses, aux = point_losses(model, params, state, *batch, temperature)
        loss = losses.mean()
        if balanced:
            loss = loss + balance * marginal_kl(model, params, batch[0], temperature)
        if x_nbrs is None:
            return loss, aux
        x = batch[0][: x_nbrs.shape[0]]
        return loss + consistency * penalty(model, params, x, x_nbrs, temperature), aux

    @jax.jit
    def epoch(carry, data, key, temperature, nbrs=None, balance=0.0, noise=None):
        n = data[0].shape[0]
        bs = min(batch_size, n)
        k_perm, k_lab = jax.random.split(key)
        idx = batch_indices(k_perm, n, bs)
        n_lab = data[2].shape[0] if joint else 1
        lab_idx = jax.random.randint(k_lab, (idx.shape[0], min(bs, n_lab)), 0, n_lab)
        noise_keys = jax.random.split(jax.random.fold_in(key, 1), idx.shape[0])

        def step(carry, ib):
            i, il, k_noise = ib
            batch = (data[0][i], data[1][i])
            x_nbrs = None if nbrs is None else neighbour_rows(data[0], nbrs, i)
            if joint:
                batch = tuple(jnp.concatenate([a, b[il]]) for a, b in zip(batch, data[2:]))
            if dequantize is not None:
                batch = (redequantize(batch[0], k_noise, dequantize), batch[1])
            if noise is not None:
                u = jax.random.uniform(k_noise, batch[0].shape, batch[0].dtype)
                batch = (batch[0] + (u - 0.5) * noise.astype(batch[0].dtype), batch[1])
            if parallel is not None:  # parallel: split/replicate the batch, pin the carry
                batch, carry = parallel.constrain_batch(batch), parallel.constrain_carry(carry)
            params, opt_state, state = carry
            (loss, (state, metrics)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
                params, state, batch, temperature, x_nbrs, balance)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state, state), (loss, metrics)

        carry, (losses, metrics) = jax.lax.scan(step, carry, (idx, lab_idx, noise_keys))
        metrics = jax.tree.map(lambda m: m.mean(0), metrics)
        if parallel is not None:  # parallel: carry keeps its shardings, metrics replicated
            carry = parallel.constrain_carry(carry)
            losses, metrics = parallel.constrain_replicated((losses, metrics))
        return carry, losses, metrics

    return epoch


def marginal_kl(model, params, x, temperature):
    """KL(mean_x q(.|x) || pi) over the rows ``x``: how far their usage is from the weights.

    The ELBO's KL(q(.|x) || pi) term averages to this plus the mutual information of x and
    k; weighting this part up keeps every component in use. Why ``init="balanced"`` needs
    it: from random parameters in high dimension one flow is ahead on every row by many
    nats, the exact posterior is one-hot on it everywhere, and the others never get data
    (MNIST: usage 1.00 by epoch 5).
    """
    log_q = model.log_posterior(params, x, temperature)
    log_use = jax.nn.logsumexp(log_q, 0) - jnp.log(x.shape[0])
    return jnp.sum(jnp.exp(log_use) * (log_use - model.log_prior(params)))


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
    """Per row of ``x``: exact log-likelihood and ELBO, (n, 2) (chunked; any number of rows)."""
    return np.asarray(map_rows(lambda c: _score_rows(model, params, state, c, temperature), x))


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
