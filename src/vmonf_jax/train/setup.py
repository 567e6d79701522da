"""What ``fit`` computes before training: checked inputs, split, budget, arrays, recipe.

``setup`` is the first of ``driver.fit``'s three steps (then ``loop.train`` and
``select.result``); its helpers are in ``prepare``.
"""

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from vmonf_jax.dequantization import transforms
from vmonf_jax.parallel import resolve as resolve_parallel
from vmonf_jax.spec.parameters import GAUSSIAN_INITS
from vmonf_jax.train import feeder, prepare, start_run
from vmonf_jax.train.budget import Budget, plan, warm_epochs
from vmonf_jax.train.config import FitConfig, auto_patience, validation_rows
from vmonf_jax.train.run import Data, Recipe, StepSpec
from vmonf_jax.train.schedule import Schedule
from vmonf_jax.validation import held_out


class Setup(NamedTuple):
    """A fit ready to train.

    ``config``: the fit's, with the budget's epochs and batch size; ``recipe``: the
    compiled run's (K after the sparse start's merge); ``keys``: one per restart;
    ``x``: the training rows (a mapped fit: its first chunk); ``labels``: theirs, None
    without labelled rows; ``arrays``: the run's device arrays; ``feed``: a mapped fit's
    ``feeder.Feed`` (else None); ``starts``: each restart's Gaussian start (or None);
    ``budget``: the main phase's; ``consistency``: the regulariser's weight; ``restarts``:
    the index among the ``n_init`` restarts of each one trained (``train_restarts``);
    ``start_trains``: the run trains from the Gaussian starts (``init="gaussian"``; also
    ``"kmeans+gaussian"`` with labels, the sparse prior or no validation rows), else from
    the k-means warm start with the Gaussian starts as rivals (``"kmeans+gaussian"``).
    """

    config: FitConfig
    recipe: Recipe
    keys: Any
    x: Any
    labels: Any
    arrays: Data
    feed: Any
    starts: Any
    budget: Budget
    consistency: float
    restarts: tuple
    start_trains: bool = True

    @property
    def protect(self) -> int:
        """Components ``0..protect-1`` hold the labelled classes: pruning keeps them."""
        return 0 if self.labels is None else int(self.labels.max()) + 1


def setup(key, data, config: FitConfig, labels, mesh, parallel, noise) -> Setup:
    """Check the inputs and prepare the run (``driver.fit``'s arguments of the same names)."""
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
    if config.early_stopping and not fraction:  # no split that leaves < 1 row a component
        n_val = validation_rows(n)
        if n - n_val >= model.n_components:
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
        warm = warm_epochs(x.shape[0], config.warm_epochs, budget.batch_size)
        config = dataclasses.replace(config, epochs=budget.epochs, batch_size=budget.batch_size,
                                     warm_epochs=warm)
    patience = config.patience
    if config.early_stopping and patience is None:
        patience = auto_patience(config.epochs)
    if labels is not None and not (labels >= 0).any():
        labels = None
    spec = resolve_parallel(parallel, mesh)  # None: one device
    if spec is not None:
        spec.check(model.n_components)
        if model.prior.prunes and spec.mode == "components":
            raise ValueError("prior='sparse' prunes components, which component-parallel "
                             "training cannot follow; use parallel='data'")
    schedule = Schedule.from_config(config, labels is not None)
    keys = jax.vmap(lambda r: jax.random.fold_in(key, r))(jnp.arange(config.n_init))
    gaussian = config.init in GAUSSIAN_INITS
    noise = prepare.noise_widths(noise, model.dim)
    host_noise = None if noise is None else np.asarray(noise)
    arrays = prepare.arrays_of(x, labels, x_val, schedule, model, keys, graph,
                               partition=gaussian, noise=host_noise)
    arrays = arrays._replace(transforms=transforms(config.dequantize, noise))
    weight = prepare.consistency_weight(config, x.shape[1], arrays.nbrs)
    rivals = None
    if not weight and arrays.nbrs is not None:  # "auto" turned the penalty off (wide rows):
        if gaussian and labels is None and not model.prior.prunes:  # the graph partitioned
            rivals = prepare.rival_partitions(x, host_noise, model.n_components, keys)
        arrays = arrays._replace(nbrs=None)
    step = StepSpec.of(config, weight if arrays.nbrs is not None else 0.0)  # one row: none
    setting = "unlabelled" if labels is None else config.semi_supervised
    recipe = Recipe(step, schedule, prepare.kind_of(setting, schedule.warm),
                    x_val is not None, patience,
                    prepare.chunk_length(len(schedule), 1 if feed else config.chunk_epochs), spec)
    starts, start_trains = None, True
    if gaussian:  # also on resume: the warm-start labels are the mixture's assignments
        merge = model.prior.prunes and labels is None
        # a merged start changed K; labels already steer the mixture's decomposition;
        # without validation rows nothing can judge the rival
        start_trains = (config.init == "gaussian" or merge or labels is not None
                        or x_val is None)
        partition = arrays.y_warm
        starts, arrays = start_run.gaussian_starts(
            x, labels, x_val, arrays, model.n_components, prepare.seeds(keys), host_noise,
            merge=merge, rivals=rivals, equal=model.prior.fixed, df=start_run.start_df(model))
        if len(starts[0][2]) < model.n_components:  # the sparse start merged components
            recipe = recipe.resized(len(starts[0][2]))
        if not start_trains:  # the k-means warm start trains on its partition
            arrays = arrays._replace(y_warm=partition)
    restarts = tuple(range(config.n_init))
    if config.train_restarts == "best" and starts is not None and x_val is not None:
        r = start_run.best_start(model, starts, x_val)  # deterministic: a resume agrees
        restarts, keys, starts = (r,), keys[r:r + 1], starts[r:r + 1]
        arrays = arrays._replace(y_warm=arrays.y_warm[r:r + 1])
        config = dataclasses.replace(config, n_init=1)
    if spec is not None:
        arrays = spec.replicate(arrays)
    if feed is not None:
        feed.start(arrays, schedule.warm, len(schedule))
    return Setup(config, recipe, keys, x, labels, arrays, feed, starts, budget, weight,
                 restarts, start_trains)
