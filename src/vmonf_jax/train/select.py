"""The end of ``fit``: the restart kept.

Also the Gaussian start where training's gain was noise, and the sparse prior's last pruning.
"""

import dataclasses
import warnings

import numpy as np

from vmonf_jax.train import prune, records, start_run
from vmonf_jax.train.config import FitResult
from vmonf_jax.train.state import Kept


def result(s, snap, recipe, start, pruned: bool) -> FitResult:
    """The ``FitResult`` of the last snapshot ``snap`` of ``loop.train``.

    ``s``: the fit's ``setup.Setup``; ``recipe``: that of the snapshot's K; ``start``: the
    Gaussian starts' parameters and validation scores (``loop.first_snapshot``), or None;
    ``pruned``: the sparse prior removed components (the start's scores are then stale).
    """
    model = recipe.step.model
    if start is not None and not model.prior.prunes:  # (pruning changes K)
        snap = snap._replace(run=start_run.clear_gains(model, snap.run, start, s.arrays.x_val,
                                                       recipe.schedule.t_start))
    res = records.best(model, snap, s.x, recipe.schedule.final_temperature(), recipe.validate)
    if start is not None and not pruned:
        start_scores = np.where(np.isnan(start[2].mean(1)), -np.inf, start[2].mean(1))
        if res.score <= start_scores[res.restart]:
            warnings.warn("no trained epoch beat the Gaussian mixture's validation "
                          "log-likelihood by two standard errors: the mixture is kept",
                          stacklevel=3)
    ids = s.restarts  # the run's restarts among the n_init (train_restarts="best": one)
    res = dataclasses.replace(res, consistency=s.consistency, budget=s.budget,
                              restart=ids[res.restart],
                              history=[{**e, "restart": ids[e["restart"]]} for e in res.history])
    if not model.prior.prunes:
        return res
    idx = prune.keep_indices(res.params["prior_logits"][None], s.config.prune_threshold,
                             s.protect)[0]
    kept = prune.prune_tree(Kept(res.params, res.state), idx, res.model)
    return dataclasses.replace(res, params=kept.params, state=kept.state,
                               model=prune.with_components(res.model, len(idx)))
