"""The Gaussian start inside a run of stacked restarts.

Each restart's mixture, the run state set to it, and the final check that training's gain
over it is more than validation noise. ``train.gaussian_start`` fits and sets one mixture;
this module applies it to the stacked restarts of ``train.fit`` (split from the driver,
which runs the loop).
"""

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import logsumexp

from vmonf_jax.model.bases import STUDENT_T_START_DF, StudentTBase
from vmonf_jax.train import gaussian_start, merge
from vmonf_jax.train.state import Kept
from vmonf_jax.train.step import scores_of_rows


def gaussian_starts(x, labels, x_val, arrays, k, seeds, noise=None, merge=False, rivals=None,
                    equal=False, df=None):
    """Each restart's Gaussian mixture from its partition (``gaussian_start.fit_gaussians``).

    ``noise``: (d,) dequantisation widths (``train.fit``), or None. With it the mixtures are
    fitted to one draw of the dequantised rows (training and validation), as training sees
    them: fitted to the integers themselves, a column that is constant within a cluster
    gets a spike (digits: held-out log-likelihoods of -10^5 per row). ``merge`` (the sparse
    prior without labels): each restart's components that share a cluster are merged
    (``merge.entropy_groups``), down to K = the most clusters any restart finds (restarts
    share one K), each group one moment-matched Gaussian, and every row's warm-start label
    is its most probable group. ``rivals``: one rival partition per restart
    (``fit_gaussians``'s ``rival``), or None. ``equal``: the mixtures' weights stay equal
    (the model's prior is fixed uniform; ``fit_gaussians``). ``df``: the model's Student-t
    base's starting degrees of freedom (``start_df``), or None (``fit_gaussians``).

    Returns:
        ``(starts, arrays)``: one ``(means, covs, weights)`` per restart (K = ``k``, or
        fewer after merging), and ``arrays`` with the warm-start labels replaced by the
        mixture's assignments (labelled rows keep their labels).
    """
    if noise is not None:
        rng = np.random.default_rng(seeds[0])
        x, x_val = (None if a is None else a + (rng.random(a.shape) - 0.5) * noise
                    for a in (np.asarray(x, np.float64), x_val))
    starts, y_warm, reg = [], [], None  # the first restart chooses the regulariser
    rivals = [None] * len(seeds) if rivals is None else rivals
    for y, seed, rival in zip(np.asarray(arrays.y_warm), seeds, rivals):
        *start, assigned, reg = gaussian_start.fit_gaussians(
            x, y, k, seed, x_val, reg, rival, equal, df)
        starts.append(start)
        y_warm.append(assigned if labels is None else np.where(labels >= 0, labels, assigned))
    if merge:
        starts, y_warm = _merged(x, starts)
    return starts, arrays._replace(y_warm=jnp.asarray(np.stack(y_warm), jnp.int32))


def start_df(model):
    """The starting degrees of freedom of the model's Student-t base, or None.

    Another base (a registered one included) has its start scored as the Gaussians.
    """
    return STUDENT_T_START_DF if isinstance(model.flow.base, StudentTBase) else None


def best_start(model, starts, x_val) -> int:
    """The restart whose Gaussian start scores best on the validation rows ``x_val``.

    Each start is scored as the mixture it sets at step 0 (``gaussian_start.apply``): its
    Gaussians, with its weights, or equal ones under a fixed prior; with a Student-t base,
    their t twins (``start_df``). A start whose score is not finite ranks last.
    """
    k, df = len(starts[0][2]), start_df(model)
    scores = []
    for means, covs, weights in starts:
        w = np.full(k, 1.0 / k) if model.prior.fixed else np.asarray(weights, np.float64)
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            ll = logsumexp(merge.joint_log_prob(x_val, means, covs, w, df), axis=1).mean()
        scores.append(ll if np.isfinite(ll) else -np.inf)
    return int(np.argmax(scores))


def _merged(x, starts):
    """Merged starts and warm-start labels (``gaussian_starts``'s ``merge``)."""
    rows = gaussian_start.subsample(x, None, seed=0)[0]  # at most WARM_START_ROWS
    resp = [merge.responsibilities(rows, *s) for s in starts]
    k = max(merge.entropy_groups(r).max() + 1 for r in resp)
    out, labels = [], []
    for s, r in zip(starts, resp):
        group = merge.entropy_groups(r, fewest=k)
        out.append(merge.merged_gaussians(*s, group))
        labels.append(merge.responsibilities(x, *out[-1]).argmax(1))
    return out, labels


def start_run(model, run, starts, x, x_val, t_start, validate, key, trains=True):
    """The run state with every restart at its Gaussian start, q fitted to it.

    With a validation split each start is scored on it and kept at the end unless training
    beats it clearly (``clear_gains``). A start that trains (``trains``) is also early
    stopping's first candidate: the score to beat, kept if no epoch beats it. Otherwise
    (``init="kmeans+gaussian"``) the run keeps its initial parameters, the k-means warm
    start's, and the start is only the rival of what training keeps.

    Returns:
        ``(run, start)``: ``start`` is None without validation, else the start's
        parameters, state and validation log-likelihood of every row, per restart (host
        arrays, restart first). A start that does not train needs validation (``setup``).
    """
    params = gaussian_start.apply_stacked(model, run.params, starts)
    params = gaussian_start.fit_posterior(model, params, x, t_start, key)
    if not validate:
        return run._replace(params=params), None
    host = jax.device_get((params, run.state, x_val))  # the run may span devices
    rows = np.stack([scores_of_rows(model, *_host_pick(host[:2], r), host[2], t_start)[:, 0]
                     for r in range(len(starts))])
    if trains:
        scores = np.where(np.isnan(rows.mean(1)), -np.inf, rows.mean(1))
        run = run._replace(params=params, keep=Kept(params, run.state),
                           best_val=jnp.asarray(scores, run.best_val.dtype),
                           since_best=jnp.zeros_like(run.since_best))
    return run, (host[0], host[1], rows)


def _host_pick(tree, r):
    """Restart ``r`` of a stacked host tree."""
    return jax.tree.map(lambda a: a[r], tree)


def clear_gains(model, run, start, x_val, t_start):
    """``run`` with each restart's kept parameters, or its candidate where the gain was noise.

    The candidate (``start_run``'s ``start``: the Gaussian mixture) replaces the kept epoch
    unless that epoch beat the candidate's validation log-likelihood by more than two
    standard errors of the mean per-row difference. Early
    stopping keeps the best of many epochs on a few rows; on small data that best is often
    the validation rows' noise (faithful, 28 rows: -4.37 nats held out against the start's
    -4.19).
    """
    params0, state0, rows0 = start
    x_val = np.asarray(jax.device_get(x_val))
    keep = jax.device_get(run.keep)
    best, keep_t = np.array(run.best_val), np.array(run.keep_t)
    for r in range(len(best)):
        if not np.isfinite(rows0[r].mean()):  # a broken candidate: training's result stays
            continue
        if best[r] > rows0[r].mean():
            kept = _host_pick(keep, r)
            diff = scores_of_rows(model, *kept, x_val, keep_t[r])[:, 0] - rows0[r]
            if diff.mean() > 2 * diff.std(ddof=1) / np.sqrt(len(diff)):
                continue
        keep = jax.tree.map(lambda a, b, r=r: _with_row(a, r, b), keep,
                            Kept(_host_pick(params0, r), _host_pick(state0, r)))
        best[r], keep_t[r] = rows0[r].mean(), t_start
    return run._replace(keep=keep, best_val=best, keep_t=keep_t)


def _with_row(a, r, b):
    """A copy of the stacked host array ``a`` with row ``r`` replaced by ``b``."""
    a = np.array(a)
    a[r] = b
    return a
