"""The Gaussian start (``init="gaussian"``): every component begins as one Gaussian.

Each restart's partition of the rows (k-means, or the consistency graph's spectral clusters)
gives one Gaussian per cluster (its moments); scikit-learn's ``GaussianMixture`` refines them
by EM, started from those moments, with the covariance regulariser that scores best held out
(on the validation rows, or cross-validated on every row when they are few), then on every
row (``fit_gaussians``). Each component's flow ends
with a location-scale layer (``flows``, ``affine=True``) that is set to its Gaussian,
z = C^-1 (x - mu) with C the Cholesky factor of the covariance; the other layers start at the
identity, so at step 0 the mixture *is* that Gaussian mixture
(with a uniform prior, the same Gaussians with equal weights), and q(k|x) is fitted to that
mixture's responsibilities (``fit_posterior``). The warm-start epochs then train flow j on
cluster j of the partition (as after k-means; EM's boundaries between curved clusters are
worse: pinwheel), and the ELBO epochs follow.
"""

from functools import cache, partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy.special import logsumexp

from vmonf_jax.train.merge import joint_log_prob

REG_COVAR = 1e-3  # added to each covariance's diagonal without a validation split
# chosen among by validation log-likelihood; the floor is float32's: a direction of variance
# 1e-10 (standard deviation 1e-5) in standardised units is still resolved by float32 rows
# (relative rounding 6e-8), where scikit-learn's floor of 1e-6 in the data's units is often
# thinner (1e-14 for a column of scale 10^4)
REG_GRID = (1e-10, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
CV_BELOW = 200  # fewer validation rows than this: the choice is cross-validated on all rows
CV_FOLDS = 5
EM_ITER = 100
FREE_STARTS = 3  # EM runs from k-means++ seeds that compete with the partition's EM
FREE_MARGIN = 0.1  # nats per row they must gain (in-sample) to replace it
RIVAL_MARGIN = 1.0  # nats per row EM from a rival partition must gain to replace it
POSTERIOR_STEPS = 500  # full-batch Adam steps of q(k|x) on the responsibilities
POSTERIOR_LR = 1e-2
POSTERIOR_ROWS = 8192  # q is fitted on at most this many rows (a random subset)


def fit_gaussians(x, labels, k: int, seed: int, x_val=None, reg=None, rival=None,
                  equal=False, df=None):
    """A K-component full-covariance Gaussian mixture started from a partition of ``x``.

    The covariances' regulariser (added to their diagonals, in the units of ``x``:
    standardised) is ``reg`` if given, else the one of ``REG_GRID`` whose mixture scores
    best on held-out rows (``_chosen_reg``: ``x_val``, or folds of all rows), else
    ``REG_COVAR``: scikit-learn's 1e-6 fits spikes
    along the near-constant directions of wide data (digits: held-out log-likelihoods of
    -10^3 per row, and float32 training that diverges within steps). The mixture returned is
    then fitted on ``x`` and ``x_val`` together: every row the user gave, as the Gaussian
    mixture a user would fit (its validation score is in-sample, so training must beat it
    clearly to replace it). EM from a ``rival`` partition replaces EM from ``labels`` if it
    fits those rows better by more than ``RIVAL_MARGIN`` nats per row, and either competes
    with EM from k-means++ seeds (``_or_free``). EM runs on at most ``WARM_START_ROWS`` rows
    (a random subsample), as the warm starts do; every row of ``x`` is then assigned.

    Args:
        x: (n, d) training rows (preprocessed).
        labels: (n,) cluster of each row, in 0..k-1.
        k: number of components; a cluster with fewer than two rows starts from all rows'
            covariance around its own mean (or, empty, around a random row).
        seed: seed of scikit-learn's EM (only ties depend on it).
        x_val: validation rows (they choose the regulariser), or None.
        reg: the regulariser (skips the choice).
        rival: (n,) another partition of ``x`` (the k-means one where the neighbour graph's
            spectral clusters are ``labels`` but the graph serves nothing else: on MNIST's
            784 pixels its mixture fits 13-18 nats a row better and clusters 0.88 against
            0.85-0.86; on digits' 64 pixels it gains at most 0.3 nats a row, and default
            fits from k-means partitions clustered worse on 5 of 7 splits), or None.
        equal: the weights stay equal (``EqualWeights``): the model's prior is fixed
            uniform, so every fit, choice and comparison here is of the mixture the model
            will be. EM with free weights, whose weights the uniform prior then dropped,
            could settle with one Gaussian over several clusters (crabs, split 8: weights
            0.61 / 0.13 / 0.13 / 0.12, 0.42 nats a row lost held out once made equal).
        df: the model's base is Student-t with these starting degrees of freedom, or None:
            the regulariser's choice then scores each candidate as the t mixture the model
            will be (``merge.joint_log_prob``), for the same reason. Scored as Gaussians,
            the few far-out rows that make ``base="auto"`` choose t bases decide the folds
            (sowc_demographics: 1e-2 on every split, where the t mixture's own folds choose
            1e-3, 2.2-3.6 nats a row higher on the test rows).

    Returns:
        ``(means (k, d), covariances (k, d, d), weights (k,), warm labels of x, reg)``: the
        fitted mixture, the labels of the warm-start epochs (``labels``, or with the free
        mixture its most probable component of each row) and the regulariser used.
    """
    from threadpoolctl import threadpool_limits

    x = np.asarray(x, np.float64)
    labels = np.asarray(labels)
    part = subsample(x, labels, seed)
    with threadpool_limits(1):  # as kmeans_labels: OpenMP spinning on a busy machine
        rows = part[0]
        if x_val is None:
            gmm = _em(rows, *part, k, seed, REG_COVAR if reg is None else reg, equal)
        else:
            x_val = np.asarray(x_val, np.float64)
            if reg is None:
                reg = _chosen_reg(part, x_val, k, seed, equal, df)
            rows = subsample(np.concatenate([x, x_val]), None, seed)[0]
            gmm = _em(rows, *part, k, seed, reg, equal)
        if rival is not None:
            alt = _em(rows, *subsample(x, np.asarray(rival), seed), k, seed, gmm.reg_covar,
                      equal)
            if alt.score(rows) > gmm.score(rows) + RIVAL_MARGIN:
                gmm, labels = alt, np.asarray(rival)
        free = _or_free(gmm, rows, k, seed, equal)
        # the warm-start epochs train component j on cluster j: the partition's clusters
        # (they carry the clustering) unless the free mixture replaced the partition's
        warm = labels if free is gmm else free.predict(x).astype(np.int32)
    return free.means_, free.covariances_, free.weights_, warm, free.reg_covar


def _chosen_reg(part, x_val, k, seed, equal=False, df=None) -> float:
    """The regulariser of ``REG_GRID`` whose EM from the partition scores best held out.

    ``part``: the (subsampled) training rows and their clusters. Scored on ``x_val``, or,
    with fewer than ``CV_BELOW`` validation rows, by ``CV_FOLDS``-fold cross-validation over
    the training and validation rows together (each fold's EM starts from the moments of
    its own training rows' clusters): one small validation split is a noisy judge
    (breast cancer, 60 rows of 30 columns: it chose 1e-2, whose mixture scores 30.7 nats a
    row on the held-out test rows, where 1e-4 scores 33.4). ``df``: each candidate is scored
    as the Student-t mixture (``fit_gaussians``), else as scikit-learn's Gaussian one.
    """
    x, labels = part
    if len(x_val) >= CV_BELOW:
        scores = [_score(_em(x, x, labels, k, seed, r, equal), x_val, df) for r in REG_GRID]
        return REG_GRID[int(np.argmax(scores))]
    rows = np.concatenate([x, x_val])
    fold = np.random.default_rng(seed).permutation(len(rows)) % CV_FOLDS
    scores = np.zeros(len(REG_GRID))
    for f in range(CV_FOLDS):
        fit, held = rows[fold != f], rows[fold == f]
        own = (fold != f)[:len(x)]  # the training rows of this fold that carry a cluster
        scores += [_score(_em(fit, x[own], labels[own], k, seed, r, equal), held, df) * len(held)
                   for r in REG_GRID]
    return REG_GRID[int(np.argmax(scores))]


def _score(gmm, rows, df) -> float:
    """Mean log-likelihood of ``rows`` under ``gmm``, or under its Student-t twin (``df``)."""
    if df is None:
        return gmm.score(rows)
    joint = joint_log_prob(rows, gmm.means_, gmm.covariances_, gmm.weights_, df)
    return float(logsumexp(joint, axis=1).mean())


def _or_free(gmm, rows, k, seed, equal=False):
    """``gmm`` (fitted on ``rows``), or a mixture from k-means++ seeds that fits them better.

    ``FREE_STARTS`` EM runs from k-means++ seeds replace ``gmm`` if the best of them fits
    ``rows`` better by more than ``FREE_MARGIN`` nats per row.

    The partition (k-means or spectral, on standardised rows) carries the clustering; EM
    from it can stop in a poor local optimum of the density (crabs: 0.2-0.5 nats per row
    below scikit-learn's own starts), and then a clearly better density wins.
    """
    free = _mixture(equal)(k, covariance_type="full", reg_covar=gmm.reg_covar,
                           max_iter=EM_ITER, init_params="k-means++", n_init=FREE_STARTS,
                           random_state=seed).fit(rows)
    return free if free.score(rows) > gmm.score(rows) + FREE_MARGIN else gmm


def subsample(x, labels, seed):
    """``(x, labels)`` cut to at most ``WARM_START_ROWS`` random rows (EM's cost stays flat)."""
    from vmonf_jax.train.consistency import WARM_START_ROWS

    if len(x) <= WARM_START_ROWS:
        return x, labels
    pick = np.random.default_rng(seed).choice(len(x), WARM_START_ROWS, replace=False)
    return x[pick], None if labels is None else labels[pick]


def _em(rows, x, labels, k, seed, reg, equal=False):
    """scikit-learn's EM on ``rows`` from the moments of the clusters ``labels`` of ``x``.

    ``equal``: with the weights held equal (``EqualWeights``).
    """
    rng = np.random.default_rng(seed)
    eye = reg * np.eye(x.shape[1])
    cov_all = np.atleast_2d(np.cov(x, rowvar=False)) + eye
    means, covs, weights = [], [], []
    for j in range(k):
        members = x[labels == j]
        means.append(members.mean(0) if len(members) else x[rng.integers(len(x))])
        covs.append(np.atleast_2d(np.cov(members, rowvar=False)) + eye if len(members) > 1
                    else cov_all)
        weights.append(max(len(members), 1))
    weights = np.full(k, 1.0 / k) if equal else np.asarray(weights, np.float64) / np.sum(weights)
    prec = np.linalg.inv(np.asarray(covs))
    # symmetrised: scikit-learn rejects an inverse that rounding left asymmetric (MNIST)
    prec = (prec + prec.transpose(0, 2, 1)) / 2
    gmm = _mixture(equal)(k, covariance_type="full", reg_covar=reg, max_iter=EM_ITER,
                          weights_init=weights, means_init=np.asarray(means),
                          precisions_init=prec, random_state=seed)
    return gmm.fit(rows)


@cache
def _mixture(equal: bool):
    """scikit-learn's ``GaussianMixture`` class, or ``EqualWeights`` when ``equal``.

    (Built on first use, as scikit-learn is imported lazily here.)
    """
    from sklearn.mixture import GaussianMixture

    if not equal:
        return GaussianMixture

    class EqualWeights(GaussianMixture):
        """EM whose weights stay equal: each M-step updates only means and covariances.

        The maximum-likelihood mixture under a fixed uniform prior; its ``score`` is the
        log-likelihood with equal weights. (After the first M-step: a k-means++ start's
        first E-step uses its clusters' shares.)
        """

        def _m_step(self, X, log_resp, *args, **kwargs):
            super()._m_step(X, log_resp, *args, **kwargs)
            self.weights_ = np.full(self.n_components, 1.0 / self.n_components)

    return EqualWeights


def location_scale(means, covs, dtype=jnp.float32) -> dict:
    """Parameters of ``Whiten`` layers, stacked over K, for the Gaussians.

    Each maps N(mean_k, cov_k) to N(0, I): z = W (x - mean), W = cholesky(cov)^-1.
    """
    chol = np.linalg.cholesky(np.asarray(covs, np.float64))
    eye = np.broadcast_to(np.eye(chol.shape[-1]), chol.shape)
    w = np.linalg.solve(chol, eye)  # lower triangular
    return {"lower": jnp.asarray(np.tril(w, -1), dtype),
            "log_scale": jnp.asarray(np.log(np.diagonal(w, axis1=-2, axis2=-1)), dtype),
            "loc": jnp.asarray(means, dtype)}


def apply(model, params, means, covs, weights) -> dict:
    """``params`` of one restart with the components set to the Gaussians.

    The flows' last layer (``affine=True``) gets each Gaussian; the prior logits are
    log ``weights`` unless the prior is uniform (then they stay equal).

    Raises:
        ValueError: the model's flows do not end with a location-scale layer.
    """
    from vmonf_jax.model.bijectors import Whiten

    last = len(model.flow.layers) - 1  # the base's parameters, if any, come after it
    if not isinstance(model.flow.layers[last], Whiten):
        raise ValueError("a Gaussian start needs flows built with affine=True")
    dtype = params["prior_logits"].dtype
    comps = list(params["components"])
    comps[last] = location_scale(means, covs, dtype)
    comps = tuple(comps)
    logits = params["prior_logits"]
    if not model.prior.fixed:
        logits = jnp.asarray(np.log(np.maximum(weights, 1e-12)), dtype)
    return {**params, "components": comps, "prior_logits": logits}


def apply_stacked(model, params, starts) -> dict:
    """``apply`` for every restart of stacked ``params`` (leading restart axis R).

    ``starts``: one ``(means, covs, weights)`` per restart.
    """
    per = [apply(model, jax.tree.map(lambda a, r=r: a[r], params), *s)
           for r, s in enumerate(starts)]
    return jax.tree.map(lambda *a: jnp.stack(a), *per)


def fit_posterior(model, params, x, temperature: float, key) -> dict:
    """Stacked ``params`` whose q(k|x) at ``temperature`` matches p(k|x) of the mixture.

    Minimises the cross-entropy between the exact responsibilities and q on at most
    ``POSTERIOR_ROWS`` rows of ``x`` (full batch, Adam): without it, the first ELBO epochs
    weigh each component by an untrained q, and a Gaussian far from a row (log p_k of
    thousands of nats below the row's own component) swamps the loss.
    """
    n = x.shape[0]
    if n > POSTERIOR_ROWS:
        x = x[np.sort(np.random.default_rng(int(jax.random.randint(
            key, (), 0, 2**31 - 1))).choice(n, POSTERIOR_ROWS, replace=False))]
    post = _fit_posterior(model, params, jnp.asarray(x), jnp.float32(temperature))
    return {**params, "posterior": post}


@partial(jax.jit, static_argnums=0)
def _fit_posterior(model, params, x, temperature):
    tx = optax.adam(POSTERIOR_LR)

    def one(p):
        resp = model.responsibilities(p, x)

        def loss(post):
            log_q = model.log_posterior({**p, "posterior": post}, x, temperature)
            return -jnp.sum(resp * log_q, -1).mean()

        def step(carry, _):
            post, opt = carry
            updates, opt = tx.update(jax.grad(loss)(post), opt, post)
            return (optax.apply_updates(post, updates), opt), None

        (post, _), _ = jax.lax.scan(step, (p["posterior"], tx.init(p["posterior"])), None,
                                    length=POSTERIOR_STEPS)
        return post

    return jax.vmap(one)(params)
