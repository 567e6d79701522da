"""The training loop of ``fit``: the run's first snapshot, then chunk after chunk of epochs.

Between compiled chunks: history entries, failures (an error, or a warning where every
restart has a validated start), the sparse prior's pruning and the callbacks (progress,
checkpoints), which also see the last consistent snapshot when the fit is interrupted.
"""

import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from vmonf_jax.chunked import map_rows
from vmonf_jax.train import callbacks as cb
from vmonf_jax.train import prune, records, start_run
from vmonf_jax.train.run import runner
from vmonf_jax.train.setup import Setup


def first_snapshot(s: Setup, key, checkpoint_dir, resume: bool):
    """``(snap, start)``: the checkpoint in ``checkpoint_dir`` (``resume``) or a new run.

    A new run with Gaussian starts begins at them (``start_run.start_run``); ``start``:
    their parameters and validation scores (None without validation or on resume).
    """
    recipe = s.recipe
    if resume:  # a sparse fit may have pruned before it was saved: its K is in the metadata
        def template(k):
            return runner(recipe.resized(k or recipe.step.model.n_components)).init(s.keys)

        return cb.restore(checkpoint_dir, template), None
    snap = cb.Snapshot(0, runner(recipe).init(s.keys), [])
    if s.starts is None:
        return snap, None
    run, start = start_run.start_run(recipe.step.model, snap.run, s.starts, s.x,
                                     s.arrays.x_val, recipe.schedule.t_start, recipe.validate,
                                     jax.random.fold_in(key, 2**21), s.start_trains)
    return cb.Snapshot(0, run, []), start


def train(s: Setup, snap: cb.Snapshot, hooks, tolerant: bool):
    """Run chunks from ``snap`` to the end of the plan or until every restart stopped.

    ``tolerant``: every restart has a validated candidate (its Gaussian start), so a failed
    restart stops with a warning, as one that stopped early, and keeps its best; else a
    failure raises ``records.failure``'s error. Returns ``(snap, recipe, pruned)``: the
    last snapshot, the recipe of its K and whether the sparse prior pruned components.
    """
    recipe = s.recipe.resized(snap.run.n_components)  # a resumed sparse fit: the K saved
    arrays, feed = s.arrays, s.feed
    sched, spec = recipe.schedule, recipe.parallel
    prunes = recipe.step.model.prior.prunes
    run = runner(recipe)
    ids = (records.component_ids(snap.history, s.config.n_init, snap.run.n_components)
           if prunes else None)
    protect, main_from, pruned = s.protect, sched.warm + sched.pretrain, False
    try:
        while snap.epoch < len(sched) and np.any(jax.device_get(snap.run.active)):
            data = arrays
            if feed is not None:  # a mapped fit: this epoch's chunk
                data = feed.arrays(snap.epoch, arrays)
                data = data if spec is None else spec.replicate(data)
            state, recs = run.chunk(snap.run, s.keys, jnp.int32(snap.epoch), data)
            entries, failed = records.entries(jax.device_get(recs), snap.epoch, ids)
            if failed is not None:
                err = records.failure(failed, state, snap.history + entries)
                if not tolerant:
                    raise err
                warnings.warn(f"{err}; restart {failed[0]} stops there and keeps its best "
                              "validated parameters", stacklevel=3)
            end = min(snap.epoch + recipe.chunk, len(sched))
            if prunes and end > main_from:
                alive = None  # the MML rule needs epochs after it, for rows to move
                if end < len(sched):
                    alive = _mml_alive(recipe.step.model, state, data.x, protect)
                idx = prune.keep_indices(jax.device_get(state.params["prior_logits"]),
                                         s.config.prune_threshold, protect, alive)
                if idx.shape[1] < state.n_components:
                    state = prune.prune_restarts(state, idx, recipe.step.model)
                    ids = np.take_along_axis(ids, idx, 1)
                    recipe = recipe.resized(idx.shape[1])
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
    return snap, recipe, pruned


def _mml_alive(model, run, x, protect) -> np.ndarray:
    """(R, K) masks of ``prune.mml_survivors`` of each restart.

    The rows' exact responsibilities p(k|x) decide where a removed component's rows go: to
    the flows whose density covers them. Computed in row chunks (bounded memory, bucketed
    shapes), as every full-data evaluation is.
    """
    resp = map_rows(lambda c: _responsibilities(model, run.params, run.state, c),
                    x).transpose(1, 0, 2)
    min_rows = prune.component_size(run.params) / 2
    return np.stack([prune.mml_survivors(r, min_rows, protect) for r in resp])


@partial(jax.jit, static_argnums=0)
def _responsibilities(model, params, state, x):
    """p(k|x) of every restart, rows first: (n, R, K)."""
    return jax.vmap(lambda p, s: model.responsibilities(p, x, state=s), out_axes=1)(
        params, state)
