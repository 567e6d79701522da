"""``fit``, the driver: check the inputs, build the run, drive it, keep the best restart.

The run is driven chunk by chunk of compiled epochs, with callbacks between chunks.
"""

import dataclasses
import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from vmonf_jax.chunked import map_rows
from vmonf_jax.parallel import resolve as resolve_parallel
from vmonf_jax.train import callbacks as cb
from vmonf_jax.train import prune, start_run
from vmonf_jax.train.budget import plan
from vmonf_jax.train.config import (
    FitConfig,
    FitResult,
    LossExplodedError,
    NonFiniteLossError,
    auto_patience,
    validation_rows,
)
from vmonf_jax.train.consistency import AUTO, auto_weight, knn_graph
from vmonf_jax.train.partition import grid_rows, warm_labels
from vmonf_jax.train.run import Data, Recipe, runner
from vmonf_jax.train.schedule import PHASES, Schedule
from vmonf_jax.train.step import evaluate
from vmonf_jax.validation import held_out

_STEP_FIELDS = ("model", "batch_size", "learning_rate", "weight_decay",
                "decoupled_weight_decay", "clip_norm", "dequantize", "dirichlet_alpha")
_METRICS = ("loss", "elbo", "loglik", "usage")
_VAL_METRICS = ("val_loglik", "val_elbo")  # of main epochs, with a validation split


def fit(key, data, config: FitConfig, *, labels=None, checkpoint_dir=None, resume=False,
        checkpoint_every: int = 25, checkpoint_seconds: float = 30.0, mesh=None,
        parallel=None, noise=None) -> FitResult:
    """Fit a VMoNF by maximising the ELBO; returns a ``FitResult``.

    The ``n_init`` restarts train together (a stacked restart axis), ``config.chunk_epochs``
    epochs per compiled call; the best restart is kept (see ``FitResult.score``).

    Args:
        key: a ``jax.random`` key; everything random derives from it (restart r, epoch i use
            ``fold_in(fold_in(key, r), i)``), so a resumed fit equals an uninterrupted one.
        data: (n, dim) array, already preprocessed (the estimator standardises).
        config: model and recipe.
        labels: optional ints, -1 = unlabelled; labelled points train their own component
            and the posterior (``config.semi_supervised``: "paper" = pre-train on the labelled
            points, then alternate unsupervised and supervised epochs; "joint" = every step
            sees both).
        checkpoint_dir: if given, training state is saved there whenever a multiple of
            ``checkpoint_every`` epochs is passed and when interrupted (KeyboardInterrupt is
            re-raised after saving).
        resume: continue from the checkpoint in ``checkpoint_dir``.
        checkpoint_every: epochs between checkpoint saves.
        checkpoint_seconds: the least time between periodic saves (an interrupt always
            saves), so a fit of a few seconds saves only when interrupted.
        mesh: the devices to train over (``vmonf_jax.parallel.resolve``): a ``Mesh``, a
            device count or a device list. With neither ``mesh`` nor ``parallel``: one
            device. See docs/distributed.md.
        parallel: how to split training over the mesh: "data", "components" or a
            ``Parallel``.
        noise: (dim,) widths, in the units of ``data``, of uniform dequantisation noise
            (``Preprocessor.noise_width``; 0: none): every training batch gets
            ``(u - 1/2) * noise``, u ~ U[0, 1), and the Gaussian start is fitted to one
            such draw of the rows; validation and scoring use the rows as given.

    Raises:
        ValueError: bad data or labels.
        NonFiniteLossError: a non-finite loss, or ``LossExplodedError`` (its subclass) for
            a loss that rose orders of magnitude above its best; the error carries the
            parameters from before the failing epoch. With the Gaussian start and a
            validation split every restart has a validated candidate: a failing restart
            then stops with a warning (as if stopped early) and the fit goes on.
    """
    from vmonf_jax.validation import check_data, check_labels

    model = config.model
    x = check_data(data, dim=model.dim, min_rows=model.n_components)
    if labels is not None:
        labels = check_labels(labels, x.shape[0], model.n_components)
    fraction = config.val_fraction
    if config.early_stopping and not fraction:  # no split that leaves < 2 rows a component
        n_val = validation_rows(x.shape[0])
        if x.shape[0] - n_val >= 2 * model.n_components:
            fraction = n_val / x.shape[0]
    x, labels, x_val = _split(x, labels, fraction, key)
    budget = plan(x.shape[0], config.epochs, config.batch_size, config.steps,
                  auto=config.early_stopping)
    if config.steps is not None or config.early_stopping:
        config = dataclasses.replace(config, epochs=budget.epochs, batch_size=budget.batch_size)
    patience = config.patience
    if config.early_stopping and patience is None:
        patience = auto_patience(config.epochs)
    has_labels = labels is not None and bool((labels >= 0).any())
    spec = resolve_parallel(parallel, mesh)  # None: one device
    if spec is not None:
        spec.check(model.n_components)
        if model.prior == "sparse" and spec.mode == "components":
            raise ValueError("prior='sparse' prunes components, which component-parallel "
                             "training cannot follow; use parallel='data'")
    schedule = Schedule.from_config(config, has_labels)
    keys = jax.vmap(lambda r: jax.random.fold_in(key, r))(jnp.arange(config.n_init))
    gaussian = config.init == "gaussian"
    noise = _noise(noise, model.dim)
    arrays = _arrays(x, labels if has_labels else None, x_val, schedule, model, keys,
                     config.consistency != 0 and x.shape[0] > 1,  # one row: no neighbours
                     partition=gaussian,
                     noise=None if noise is None else np.asarray(noise))._replace(noise=noise)
    weight = _consistency_weight(config, x.shape[1], arrays.nbrs)
    if not weight:  # "auto" may turn the penalty off: its graph then only partitioned
        arrays = arrays._replace(nbrs=None)
    recipe = Recipe(FitConfig(**{f: getattr(config, f) for f in _STEP_FIELDS},
                              consistency=weight), schedule,
                    _kinds(config.semi_supervised if has_labels else "unlabelled",
                           schedule.warm),
                    x_val is not None, patience,
                    _chunk_length(len(schedule), config.chunk_epochs), spec)
    starts = None
    if gaussian:  # also on resume: the warm-start labels are the mixture's assignments
        starts, arrays = start_run.gaussian_starts(
            x, labels if has_labels else None, x_val, arrays, model.n_components, _seeds(keys),
            None if noise is None else np.asarray(noise),
            merge=model.prior == "sparse" and not has_labels)
        if len(starts[0][2]) < model.n_components:  # the sparse start merged components
            recipe = _resized(recipe, len(starts[0][2]))
            model = recipe.step.model
    if spec is not None:
        arrays = spec.replicate(arrays)
    if resume:  # a sparse fit may have pruned before it was saved: its K is in the metadata
        def template(k):
            return runner(_resized(recipe, k or model.n_components)).init(keys)

        snap = cb.restore(checkpoint_dir, template)
        recipe = _resized(recipe, _n_components(snap.run))
    else:
        snap = cb.Snapshot(0, runner(recipe).init(keys), [])
    start = start_scores = None
    pruned = False
    if starts is not None and not resume:
        run0, start = start_run.start_run(model, snap.run, starts, x, arrays.x_val,
                                          schedule.t_start, recipe.validate,
                                          jax.random.fold_in(key, 2**21))
        snap = cb.Snapshot(0, run0, [])
        if start is not None:
            start_scores = np.where(np.isnan(start[2].mean(1)), -np.inf, start[2].mean(1))
    run = runner(recipe)
    ids = _component_ids(snap.history, config.n_init, _n_components(snap.run)) \
        if model.prior == "sparse" else None
    protect = int(labels.max()) + 1 if has_labels else 0
    main_from = schedule.warm + schedule.pretrain
    hooks = [cb.Progress(len(schedule), snap.epoch, config.n_init, config.verbose)]
    if checkpoint_dir:
        hooks.append(cb.Checkpoint(checkpoint_dir, checkpoint_every, checkpoint_seconds))
    try:
        while snap.epoch < len(schedule) and np.any(jax.device_get(snap.run["active"])):
            state, records = run.chunk(snap.run, keys, jnp.int32(snap.epoch), arrays)
            entries, failed = _entries(jax.device_get(records), snap.epoch, ids)
            if failed is not None:
                err = _failure(failed, state, snap.history + entries)
                if start_scores is None:
                    raise err
                # every restart has a validated candidate (its Gaussian start): the failed
                # restart stops, as one that stopped early, and keeps its best
                warnings.warn(f"{err}; restart {failed[0]} stops there and keeps its best "
                              "validated parameters", stacklevel=2)
            end = min(snap.epoch + recipe.chunk, len(schedule))
            if model.prior == "sparse" and end > main_from:
                alive = None  # the MML rule needs epochs after it, for rows to move
                if end < len(schedule):
                    alive = _mml_alive(recipe.step.model, state, arrays.x, protect)
                idx = prune.keep_indices(jax.device_get(state["params"]["prior_logits"]),
                                         config.prune_threshold, protect, alive)
                if idx.shape[1] < _n_components(state):
                    state = prune.prune_restarts(state, idx, recipe.step.model)
                    ids = np.take_along_axis(ids, idx, 1)
                    recipe = _resized(recipe, idx.shape[1])
                    if recipe.validate:  # the kept parameters lost components too
                        state = prune.rescored(recipe.step.model, state, arrays.x_val)
                    pruned = True  # the start's scores are of the unpruned mixture
                    run, arrays = runner(recipe), arrays._replace(y_warm=None)
            # one statement: an interrupt anywhere resumes from a consistent point
            before, snap = snap, cb.Snapshot(end, state, snap.history + entries)
            for hook in hooks:
                hook.after_chunk(before, snap)
    except KeyboardInterrupt:
        for hook in hooks:
            hook.interrupted(snap)
        raise
    finally:
        for hook in hooks:
            hook.close()
    if start is not None and model.prior != "sparse":  # (pruning changes K)
        snap = cb.Snapshot(snap.epoch, start_run.clear_gains(
            model, snap.run, start, arrays.x_val, schedule.t_start), snap.history)
    res = _best(recipe.step.model, snap, x, schedule.final_temperature(), recipe.validate)
    if start_scores is not None and not pruned and res.score <= start_scores[res.restart]:
        warnings.warn("training did not raise the validation log-likelihood above the "
                      "Gaussian-mixture start's: the start is kept", stacklevel=2)
    res = dataclasses.replace(res, consistency=weight, budget=budget)
    if model.prior != "sparse":
        return res
    idx = prune.keep_indices(res.params["prior_logits"][None], config.prune_threshold,
                             protect)[0]
    kept = prune.prune_tree({"params": res.params, "state": res.state}, idx, res.model)
    return dataclasses.replace(res, params=kept["params"], state=kept["state"],
                               model=prune.with_components(res.model, len(idx)))


def _consistency_weight(config, dim, nbrs) -> float:
    """The regulariser's weight: ``config.consistency``, or ``"auto"``'s for ``dim`` columns.

    ``nbrs``: the rows' neighbour graph (None: none was built, so no penalty).
    """
    if config.consistency != AUTO:
        return float(config.consistency)
    return 0.0 if nbrs is None else auto_weight(dim)


def _mml_alive(model, run, x, protect) -> np.ndarray:
    """(R, K) masks of ``prune.mml_survivors`` of each restart.

    The rows' exact responsibilities p(k|x) decide where a removed component's rows go: to
    the flows whose density covers them. Computed in row chunks (bounded memory, bucketed
    shapes), as every full-data evaluation is.
    """
    resp = map_rows(lambda c: _responsibilities(model, run["params"], run["state"], c),
                    x).transpose(1, 0, 2)
    min_rows = prune.component_size(run["params"]) / 2
    return np.stack([prune.mml_survivors(r, min_rows, protect) for r in resp])


@partial(jax.jit, static_argnums=0)
def _responsibilities(model, params, state, x):
    """p(k|x) of every restart, rows first: (n, R, K)."""
    return jax.vmap(lambda p, s: model.responsibilities(p, x, state=s), out_axes=1)(
        params, state)


def _noise(noise, dim):
    """``noise`` as a (dim,) float32 device array of finite widths >= 0, or None."""
    if noise is None:
        return None
    noise = np.asarray(noise, np.float64)
    if noise.shape != (dim,) or not np.all(np.isfinite(noise) & (noise >= 0)):
        raise ValueError(f"noise must be {dim} finite widths >= 0, got shape {noise.shape}")
    return jnp.asarray(noise, jnp.float32) if noise.any() else None


def _resized(recipe, k):
    """``recipe`` with K = ``k`` components."""
    step = dataclasses.replace(recipe.step, model=prune.with_components(recipe.step.model, k))
    return dataclasses.replace(recipe, step=step)


def _n_components(run) -> int:
    """K of a stacked run state."""
    return int(run["params"]["prior_logits"].shape[-1])


def _chunk_length(n_epochs: int, most: int) -> int:
    """Epochs per call: at most ``most``, evened out so the last call wastes few epochs."""
    calls = -(-n_epochs // most)
    return -(-n_epochs // calls)


def _split(x, labels, fraction, key):
    """``(x_train, labels_train, x_val)``; the validation rows are drawn from ``key``."""
    if not fraction:
        return x, labels, None
    n = x.shape[0]
    n_val = held_out(n, fraction)
    perm = np.asarray(jax.random.permutation(jax.random.fold_in(key, 2**20), n))
    val, tr = perm[:n_val], perm[n_val:]
    return x[tr], None if labels is None else labels[tr], x[val]


def _seeds(keys) -> list:
    """One integer seed per restart key (k-means and the Gaussian start's EM)."""
    return [int(jax.random.randint(k, (), 0, 2**31 - 1)) for k in keys]


def _arrays(x, labels, x_val, schedule, model, keys, graph, partition=False,
            noise=None) -> Data:
    """Device arrays of the run; the warm start partitions the rows once per restart.

    ``graph``: also the neighbour graph of the rows (the consistency regulariser's); the
    warm start then clusters the graph's spectral embedding (spectral clustering), except
    with the sparse prior. Both warm starts fit on at most ``WARM_START_ROWS`` rows and
    extend to the rest (``consistency.spectral_labels``, ``step.kmeans_labels``). Graph
    and partition are computed on ``partition.grid_rows(x, noise)``: in grid steps when
    every column is dequantised (``noise``: the widths of ``fit``, host array or None).
    ``partition``: label the rows even without warm-start epochs (the Gaussian start needs
    the partition).
    """
    rows = grid_rows(x, noise)
    y_warm, nbrs = None, knn_graph(rows) if graph else None
    if (schedule.warm and not schedule.balanced) or partition:
        # the sparse prior's upper bound K would cut connected clusters into spectral pieces
        # large enough to survive pruning (README, "Automatic K"): it clusters the rows
        y_warm = warm_labels(rows, model.n_components, _seeds(keys),
                             nbrs if model.prior != "sparse" else None)
        if labels is not None:
            y_warm = [_matched_to_labels(y, labels, model.n_components) for y in y_warm]
        y_warm = jnp.stack(y_warm)
    lab = (None, None) if labels is None else (jnp.asarray(x[labels >= 0]),
                                               jnp.asarray(labels[labels >= 0]))
    return Data(jnp.asarray(x), y_warm, *lab, None if x_val is None else jnp.asarray(x_val),
                None if nbrs is None else jnp.asarray(nbrs))


def _kinds(setting: str, warm: int) -> str:
    """The key of ``run.KINDS``: joint semi-supervised fits with a warm start need its kind."""
    return "joint-warm" if setting == "joint" and warm else setting


def _matched_to_labels(clusters, labels, k: int) -> np.ndarray:
    """Warm-start labels of a semi-supervised fit.

    Clusters are renamed to the labelled classes they hold most of (one-to-one); labelled
    rows keep their own labels.
    """
    from scipy.optimize import linear_sum_assignment

    known = labels >= 0
    counts = np.zeros((k, k))
    np.add.at(counts, (clusters[known], labels[known]), 1)
    rows, cols = linear_sum_assignment(-counts)
    rename = np.empty(k, np.int32)
    rename[rows] = cols
    return np.where(known, labels, rename[clusters]).astype(np.int32)


def _component_ids(history, n_init: int, k: int) -> np.ndarray:
    """(R, k) indices, among the K of the start, of each restart's current components.

    A sparse fit's history entries carry them as ``components`` (pruning removes entries
    of ``usage``); a resumed fit reads them from its last entries.
    """
    ids = np.tile(np.arange(k), (n_init, 1))
    for e in history:
        if len(e.get("components", ())) == k:
            ids[e["restart"]] = e["components"]
    return ids


def _entries(rec, start, ids=None):
    """Turn a chunk's records into history entries (epoch-major).

    ``ids``: (R, K) component indices of a sparse fit, recorded with each entry.

    Returns:
        ``(entries, failed)``: ``failed`` is the first failure,
        ``(restart, epoch, phase, step, loss)``, or None.
    """
    ran, bad = rec["ran"], rec["bad_step"]
    entries, failed = [], None
    for c, r in zip(*np.nonzero(ran)):
        phase, t = PHASES[int(rec["phase"][c])], float(rec["T"][c])
        if bad[c, r] >= 0:
            failed = failed or (int(r), start + int(c), phase, int(bad[c, r]),
                                float(rec["bad_loss"][c, r]))
            continue
        names = _METRICS + (_VAL_METRICS if phase == "main" else ())
        entries.append({"restart": int(r), "phase": phase, "epoch": start + int(c), "T": t,
                        **{k: rec[k][c, r].tolist() for k in names if k in rec}})
        if ids is not None:
            entries[-1]["components"] = ids[r].tolist()
    return entries, failed


def _restart_major(history):
    return sorted(history, key=lambda e: (e["restart"], e["epoch"]))


@jax.jit
def _pick(tree, r):
    """Restart ``r`` of a stacked tree (on the devices, with the shardings, it has)."""
    return jax.tree.map(lambda a: a[r], tree)


def _failure(failed, run, history):
    r, epoch, phase, step, loss = failed
    kept = "kept the parameters from before that epoch (try a lower learning_rate or clip_norm)"
    where = f"restart {r}, epoch {epoch} ({phase}), step {step}"
    if np.isfinite(loss):
        err, msg = LossExplodedError, (f"loss exploded in {where}: {loss:.3g} is orders of "
                                       f"magnitude above its best so far; {kept}")
    else:
        err, msg = NonFiniteLossError, f"non-finite loss in {where}; {kept}"
    return err(msg, _pick(run["params"], r), _pick(run["state"], r),
               _restart_major(history), restart=r, epoch=epoch, step=step)


def _best(model, snap, x, t_final, validate) -> FitResult:
    """The restart with the best score (non-finite scores count as the worst)."""
    run = snap.run
    n_init = len(run["active"])
    if validate:
        kept, scores, temps = run["keep"], np.asarray(run["best_val"]), np.asarray(run["keep_t"])
    else:
        kept, temps = {"params": run["params"], "state": run["state"]}, [t_final] * n_init
        scores = np.array([evaluate(model, _pick(kept["params"], r), _pick(kept["state"], r),
                                    x, t_final)[1] for r in range(n_init)])
    scores = np.where(np.isnan(scores), -np.inf, scores)
    r = int(np.argmax(scores))
    return FitResult(_pick(kept["params"], r), _pick(kept["state"], r),
                     _restart_major(snap.history), float(scores[r]), r, float(temps[r]), model)
