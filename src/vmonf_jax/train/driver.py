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
from vmonf_jax.train import feeder, prepare, prune, records, start_run
from vmonf_jax.train.budget import plan
from vmonf_jax.train.config import (
    FitConfig,
    FitResult,
    auto_patience,
    validation_rows,
)
from vmonf_jax.train.run import Recipe, runner
from vmonf_jax.train.schedule import Schedule
from vmonf_jax.validation import held_out

_STEP_FIELDS = ("model", "batch_size", "learning_rate", "weight_decay",
                "decoupled_weight_decay", "clip_norm", "dequantize", "dirichlet_alpha")


def fit(key, data, config: FitConfig, *, labels=None, checkpoint_dir=None, resume=False,
        checkpoint_every: int = 25, checkpoint_seconds: float = 30.0, mesh=None,
        parallel=None, noise=None) -> FitResult:
    """Fit a VMoNF by maximising the ELBO; returns a ``FitResult``.

    The ``n_init`` restarts train together (a stacked restart axis), ``config.chunk_epochs``
    epochs per compiled call; the best restart is kept (see ``FitResult.score``).

    Args:
        key: a ``jax.random`` key; everything random derives from it (restart r, epoch i use
            ``fold_in(fold_in(key, r), i)``), so a resumed fit equals an uninterrupted one.
        data: (n, dim) array, already preprocessed (the estimator standardises); a
            memory-mapped one (or a ``feeder.Rows``) of more than ``feeder.chunk_rows`` rows
            is read a chunk at a time (``train.feeder``: an epoch is one chunk; no labels).
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
    rows, data = feeder.source(data)  # a map of more than one chunk: read a chunk an epoch
    if rows is not None:
        if labels is not None:
            raise ValueError("labels need the data in memory (np.asarray(X)): a memory-mapped "
                             "fit trains without labels")
        rows.check(dim=model.dim, min_rows=model.n_components)
    else:
        x = check_data(data, dim=model.dim, min_rows=model.n_components)
    n = x.shape[0] if rows is None else rows.n_rows
    if labels is not None:
        labels = check_labels(labels, n, model.n_components)
    fraction = config.val_fraction
    if config.early_stopping and not fraction:  # no split that leaves < 2 rows a component
        n_val = validation_rows(n)
        if n - n_val >= 2 * model.n_components:
            fraction = n_val / n
    feed, graph = None, config.consistency != 0 and n > 1  # one row: no neighbours
    if rows is None:
        x, labels, x_val = prepare.split(x, labels, fraction, key)
    else:  # validation rows in memory, training rows a chunk an epoch
        seed = prepare.seeds([jax.random.fold_in(key, 2**20)])[0]
        val, x_val = feeder.split(rows, held_out(n, fraction), seed)
        penalised = graph and prepare.consistency_weight(config, model.dim, True) > 0
        feed = feeder.Feed(rows, val, seed, penalised)
        x = rows.read(feed.rows_of(0))
    budget = plan(x.shape[0], config.epochs, config.batch_size, config.steps,
                  auto=config.early_stopping)  # with a feed: the rows of one chunk, an epoch
    if config.steps is not None or config.early_stopping:
        config = dataclasses.replace(config, epochs=budget.epochs, batch_size=budget.batch_size)
    patience = config.patience
    if config.early_stopping and patience is None:
        patience = auto_patience(config.epochs)
    has_labels = labels is not None and bool((labels >= 0).any())
    spec = resolve_parallel(parallel, mesh)  # None: one device
    if spec is not None:
        spec.check(model.n_components)
        if model.prior.prunes and spec.mode == "components":
            raise ValueError("prior='sparse' prunes components, which component-parallel "
                             "training cannot follow; use parallel='data'")
    schedule = Schedule.from_config(config, has_labels)
    keys = jax.vmap(lambda r: jax.random.fold_in(key, r))(jnp.arange(config.n_init))
    gaussian = config.init == "gaussian"
    noise = prepare.noise_widths(noise, model.dim)
    arrays = prepare.arrays_of(x, labels if has_labels else None, x_val, schedule, model,
                               keys, graph, partition=gaussian,
                               noise=None if noise is None else np.asarray(noise))
    arrays = arrays._replace(noise=noise)
    weight = prepare.consistency_weight(config, x.shape[1], arrays.nbrs)
    if not weight:  # "auto" may turn the penalty off: its graph then only partitioned
        arrays = arrays._replace(nbrs=None)
    recipe = Recipe(FitConfig(**{f: getattr(config, f) for f in _STEP_FIELDS},
                              consistency=weight), schedule,
                    prepare.kind_of(config.semi_supervised if has_labels else "unlabelled",
                           schedule.warm),
                    x_val is not None, patience,
                    prepare.chunk_length(len(schedule), 1 if feed else config.chunk_epochs), spec)
    starts = None
    if gaussian:  # also on resume: the warm-start labels are the mixture's assignments
        starts, arrays = start_run.gaussian_starts(
            x, labels if has_labels else None, x_val, arrays, model.n_components,
            prepare.seeds(keys),
            None if noise is None else np.asarray(noise),
            merge=model.prior.prunes and not has_labels)
        if len(starts[0][2]) < model.n_components:  # the sparse start merged components
            recipe = _resized(recipe, len(starts[0][2]))
            model = recipe.step.model
    if spec is not None:
        arrays = spec.replicate(arrays)
    if feed is not None:
        feed.start(arrays, schedule.warm, len(schedule))

    def epoch_data(epoch):  # a mapped fit: this epoch's chunk
        if feed is None:
            return arrays
        got = feed.arrays(epoch, arrays)
        return got if spec is None else spec.replicate(got)

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
    ids = records.component_ids(snap.history, config.n_init, _n_components(snap.run)) \
        if model.prior.prunes else None
    protect = int(labels.max()) + 1 if has_labels else 0
    main_from = schedule.warm + schedule.pretrain
    hooks = [cb.Progress(len(schedule), snap.epoch, config.n_init, config.verbose)]
    if checkpoint_dir:
        hooks.append(cb.Checkpoint(checkpoint_dir, checkpoint_every, checkpoint_seconds))
    try:
        while snap.epoch < len(schedule) and np.any(jax.device_get(snap.run["active"])):
            data = epoch_data(snap.epoch)
            state, recs = run.chunk(snap.run, keys, jnp.int32(snap.epoch), data)
            entries, failed = records.entries(jax.device_get(recs), snap.epoch, ids)
            if failed is not None:
                err = records.failure(failed, state, snap.history + entries)
                if start_scores is None:
                    raise err
                # every restart has a validated candidate (its Gaussian start): the failed
                # restart stops, as one that stopped early, and keeps its best
                warnings.warn(f"{err}; restart {failed[0]} stops there and keeps its best "
                              "validated parameters", stacklevel=2)
            end = min(snap.epoch + recipe.chunk, len(schedule))
            if model.prior.prunes and end > main_from:
                alive = None  # the MML rule needs epochs after it, for rows to move
                if end < len(schedule):
                    alive = _mml_alive(recipe.step.model, state, data.x, protect)
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
        if feed is not None:
            feed.close()
    if start is not None and not model.prior.prunes:  # (pruning changes K)
        snap = cb.Snapshot(snap.epoch, start_run.clear_gains(
            model, snap.run, start, arrays.x_val, schedule.t_start), snap.history)
    res = records.best(recipe.step.model, snap, x, schedule.final_temperature(), recipe.validate)
    if start_scores is not None and not pruned and res.score <= start_scores[res.restart]:
        warnings.warn("training did not raise the validation log-likelihood above the "
                      "Gaussian-mixture start's: the start is kept", stacklevel=2)
    res = dataclasses.replace(res, consistency=weight, budget=budget)
    if not model.prior.prunes:
        return res
    idx = prune.keep_indices(res.params["prior_logits"][None], config.prune_threshold,
                             protect)[0]
    kept = prune.prune_tree({"params": res.params, "state": res.state}, idx, res.model)
    return dataclasses.replace(res, params=kept["params"], state=kept["state"],
                               model=prune.with_components(res.model, len(idx)))


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


def _resized(recipe, k):
    """``recipe`` with K = ``k`` components."""
    step = dataclasses.replace(recipe.step, model=prune.with_components(recipe.step.model, k))
    return dataclasses.replace(recipe, step=step)


def _n_components(run) -> int:
    """K of a stacked run state."""
    return int(run["params"]["prior_logits"].shape[-1])

