"""The sparse prior's pruning, and the dead-component check of every prior.

``prior="sparse"`` treats K as an upper bound: after each main epoch the weights are set from
the responsibilities under a sparse Dirichlet prior (``priors.SparsePrior``), and at
every chunk boundary of the main phase the components whose weight fell below
``FitConfig.prune_threshold`` are removed from the stacked parameters, the optimiser state
and the posterior network's output layer, so the chunks after it compile for the smaller K.
Weights alone empty only components that hold a handful of points; two flows sharing one
cluster both keep large weights. So a boundary that has main epochs after it also applies the
minimum-message-length rule of Figueiredo & Jain (2002): a component must pay for its P
parameters with at least P/2 rows' worth of responsibility (``mml_survivors``). Restarts
share one K: each keeps its ``k`` heaviest components, ``k`` the most any restart keeps (see
docs/api.md, "Automatic K").
"""

import dataclasses
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from vmonf_jax.model.nets import MLP


def keep_indices(log_pi, threshold: float, protect: int = 0, alive=None) -> np.ndarray:
    """Components each restart keeps, ascending: (R, k) for log weights (R, K).

    ``k`` is the most components any restart has at weight >= ``threshold`` (and, when
    given, marked in the (R, K) mask ``alive``), at least 1; each restart keeps its ``k``
    heaviest of those first. Components ``0..protect-1`` (labelled classes) are always kept,
    so labels keep their indices.
    """
    pi = np.exp(np.asarray(log_pi, np.float64))
    if alive is not None:
        pi = np.where(alive, pi, -1.0)  # below any threshold, ranked after every survivor
    pi[:, :protect] = np.inf
    k = max(1, protect, int((pi >= threshold).sum(1).max()))
    return np.sort(np.argsort(-pi, axis=1, kind="stable")[:, :k], axis=1)


def mml_survivors(q, min_rows: float, protect: int = 0) -> np.ndarray:
    """(K,) mask of the components that keep at least ``min_rows`` rows.

    ``q``: (n, K) responsibilities of the rows. Figueiredo & Jain's (2002) annihilation, one
    component at a time: the component with the fewest rows (sum of its responsibilities) is
    removed while that is below ``min_rows``, and its rows' responsibilities are
    renormalised over the rest before the next count. Removing every small component at once
    would also remove those that grow once a neighbour sharing their cluster is gone.
    Components ``0..protect-1`` and the last one always stay.

    Example:
        >>> q = np.array([[0.6, 0.4, 0.0]] * 10 + [[0.0, 0.0, 1.0]] * 10)
        >>> mml_survivors(q, min_rows=5.0).tolist()  # 6, 4, 10 rows: 1 goes, 0 gets 10
        [True, False, True]
    """
    q = np.asarray(q, np.float64) + 1e-30  # a row with q = 0 on every survivor splits evenly
    alive = np.ones(q.shape[1], bool)
    while alive.sum() > max(1, protect):
        w = np.where(alive, q, 0.0)
        rows = (w / w.sum(1, keepdims=True)).sum(0)
        rows[:protect] = np.inf
        rows[~alive] = np.inf
        weakest = int(np.argmin(rows))
        if rows[weakest] >= min_rows:
            break
        alive[weakest] = False
    return alive


def component_size(params) -> int:
    """P, the trained scalars of one flow in stacked ``params`` (leading R and K axes)."""
    return int(sum(np.prod(a.shape[2:], dtype=np.int64)
                   for a in jax.tree.leaves(params["components"])))


def prune_tree(tree, idx, model):
    """Keep components ``idx`` (k,) in ``tree``, any pytree of ``model``'s parameters.

    Params, Adam moments, batch-norm state and run states alike: leaves under a
    ``components``, ``state`` or ``prior_logits`` key or field lose their leading K axis
    entries, the posterior network's output layer (kernel and bias) its last axis ones.
    """
    out_layer = MLP.output_layer(len(model.posterior_hidden))

    def take(path, a):
        keys = {getattr(k, "key", getattr(k, "name", None)) for k in path}
        if keys & {"components", "state", "prior_logits"}:
            return jnp.take(a, idx, axis=0)
        if {"posterior", out_layer} <= keys:
            return jnp.take(a, idx, axis=-1)
        return a

    return jax.tree_util.tree_map_with_path(take, tree)


def prune_restarts(run, idx, model):
    """``prune_tree`` of a stacked run state (leading restart axis), ``idx`` (R, k)."""
    return jax.vmap(lambda t, i: prune_tree(t, i, model))(run, jnp.asarray(idx))


def rescored(model, run, x_val):
    """A pruned run state whose kept parameters carry their own validation score again.

    Early stopping keeps each restart's best parameters and their validation log-likelihood;
    pruning removes components from both the training and the kept parameters, so the kept
    score is stale (a component holding rows was removed from a mixture that used it). The
    kept parameters of ``model`` (the pruned K) are scored afresh on ``x_val`` at their
    temperature, and the patience count starts again: the pruned model needs epochs for the
    other components to take over the rows.
    """
    from vmonf_jax.train.step import evaluate

    keep, temps = jax.device_get((run.keep, run.keep_t))
    scores = np.array([evaluate(model, *jax.tree.map(lambda a, r=r: a[r], keep), x_val, t)[0]
                       for r, t in enumerate(temps)])
    scores = np.where(np.isnan(scores), -np.inf, scores)
    return run._replace(best_val=jnp.asarray(scores, run.best_val.dtype),
                        since_best=jnp.zeros_like(run.since_best))


def with_components(model, k: int):
    """``model`` with K = ``k`` (same flow, posterior and prior)."""
    return dataclasses.replace(model, n_components=int(k))


def dead_components(usage) -> list[int]:
    """Indices of components with usage below 1/(10 K), K = ``len(usage)`` (None: none)."""
    if usage is None:
        return []
    usage = np.asarray(usage, np.float64)
    return np.flatnonzero(usage < 0.1 / len(usage)).tolist()


def warn_dead(usage) -> list[int]:
    """Warn (``UserWarning``) naming the dead components and their usage; returns them."""
    dead = dead_components(usage)
    if dead:
        shown = ", ".join(f"{k} ({usage[k]:.2g})" for k in dead)
        warnings.warn(f"dead components: {shown} have usage (mean responsibility on the "
                      f"training data) below 1/(10K) = {0.1 / len(usage):.3g}; fewer "
                      "components, or prior='sparse', would fit the same data", stacklevel=3)
    return dead
