"""One training run: the ``n_init`` restarts stacked beside K, many epochs per compiled call.

The state of every restart (parameters, optimiser and batch-norm state, and the bookkeeping
of the divergence check and early stopping) carries a leading restart axis R. One compiled
call (``Runner.chunk``) advances all restarts by ``chunk`` epochs: a ``lax.scan`` over epochs
whose body computes the epoch's phase and temperature on device (``Schedule.at``), picks the
epoch's kind (``lax.switch``), runs it for every restart (``jax.vmap``), applies the EM or
sparse prior and the validation score, and records the epoch's metrics. An epoch past the
plan (the last chunk may reach past it) changes nothing; a restart that stopped early or
whose epoch failed (non-finite or exploded loss) keeps its state from before that epoch and
runs no more.
"""

from dataclasses import dataclass, fields, replace
from functools import lru_cache, partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from vmonf_jax.chunked import mean_rows
from vmonf_jax.model.mixture import Mixture
from vmonf_jax.train.objective import Term, combine, consistency_penalty, marginal_kl
from vmonf_jax.train.prune import with_components
from vmonf_jax.train.schedule import MAIN, WARM, Schedule
from vmonf_jax.train.state import Kept, RunState
from vmonf_jax.train.step import (
    first_bad_step,
    init_params,
    make_epoch,
    make_optimizer,
    score_rows,
)

# epoch kinds of each data setting, and the kind of each phase (warm, pretrain, main, main-sup)
KINDS = {"unlabelled": (("rows",), (0, 0, 0, 0)),
         "paper": (("rows", "labelled"), (0, 1, 0, 1)),
         "joint": (("labelled", "joint"), (0, 0, 1, 1)),
         "joint-warm": (("rows", "labelled", "joint"), (0, 1, 2, 2))}


class Data(NamedTuple):
    """Device arrays of a run.

    ``x``: the training rows; ``y_warm``: (R, n) k-means labels of each restart's warm start
    (or None); ``x_lab``/``y_lab``: the labelled rows (or None); ``x_val``: validation rows
    (or None); ``nbrs``: the (n, k) neighbour graph of ``x`` when the consistency
    regulariser is on (else None); ``transforms``: the batch transforms of every training
    step (``vmonf_jax.dequantization``; pytrees, so their arrays are arguments).
    """

    x: Any
    y_warm: Any = None
    x_lab: Any = None
    y_lab: Any = None
    x_val: Any = None
    nbrs: Any = None
    transforms: tuple = ()


@dataclass(frozen=True)
class StepSpec:
    """What the compiled step depends on: model, batch size, optimiser and loss weights.

    ``consistency``: the weight of ``objective.consistency_penalty`` (0: none);
    ``objective``: what trains the flows (``objective.point_losses``);
    ``dirichlet_alpha``: the sparse prior's concentration (its update after main epochs).
    """

    model: Mixture
    batch_size: int
    learning_rate: float
    weight_decay: float = 0.0
    decoupled_weight_decay: bool = False
    clip_norm: float | None = None
    consistency: float = 0.0
    dirichlet_alpha: float = 0.01
    objective: str = "elbo"

    @classmethod
    def of(cls, config, consistency: float) -> "StepSpec":
        """The spec of a ``FitConfig`` with the consistency weight resolved."""
        return cls(**{f.name: getattr(config, f.name) for f in fields(cls)
                      if f.name != "consistency"}, consistency=float(consistency))


@dataclass(frozen=True)
class Recipe:
    """What a compiled run depends on besides data shapes (hashable: a cache key)."""

    step: StepSpec
    schedule: Schedule
    kinds: str  # a key of KINDS
    validate: bool
    patience: int | None
    chunk: int
    parallel: Any = None

    def resized(self, k: int) -> "Recipe":
        """This recipe with K = ``k`` components."""
        return replace(self, step=replace(self.step, model=with_components(self.step.model, k)))


class Runner(NamedTuple):
    """``init(keys) -> RunState`` and ``chunk(run, keys, start, data) -> (run, records)``."""

    tx: Any
    init: Any
    chunk: Any


# XLA options of a program that runs once (the restarts' initialisation): its run time does
# not matter; optimisation level 1 compiles the pinwheel's in a third of the default's time
# (level 0 is faster still but rounds the initial weights differently: saved seeds would
# change)
ONE_OFF = {"xla_backend_optimization_level": 1}


def _where(cond, new, old):
    return jax.tree.map(lambda a, b: jnp.where(cond, a, b), new, old)


def loss_of(kind: str, spec: StepSpec, balanced: bool):
    """The loss (``objective.combine``) of the epochs of ``kind`` (a name of ``KINDS``).

    ``balanced``: rows add ``marginal_kl``, weighted by the epoch's ``"balance"``; with a
    consistency weight, rows (and joint batches) add the penalty, labelled rows do not.
    """
    terms = [Term(marginal_kl, "balance")] if balanced and kind == "rows" else []
    if spec.consistency and kind != "labelled":
        terms.append(Term(consistency_penalty, spec.consistency))
    return combine(*terms, objective=spec.objective)


@lru_cache(maxsize=8)
def runner(recipe: Recipe) -> Runner:
    """Build the optimiser and the jitted ``init`` and ``chunk`` of ``recipe``.

    Cached, so repeated fits of one recipe compile once.
    """
    model, sched = recipe.step.model, recipe.schedule
    tx = make_optimizer(recipe.step)
    names, table = KINDS[recipe.kinds]
    epochs = {name: make_epoch(model, tx, recipe.step.batch_size,
                               loss_of(name, recipe.step, sched.balanced), recipe.parallel)
              for name in set(names)}
    prior_logits = partial(model.prior.logits, alpha=recipe.step.dirichlet_alpha)

    def init_one(key):
        params, state = init_params(model, key)
        dtype = params["prior_logits"].dtype
        run = RunState(params, tx.init(params), state, jnp.asarray(jnp.inf, dtype),
                       jnp.bool_(True))
        if recipe.validate:
            run = run._replace(best_val=jnp.asarray(-jnp.inf, dtype), since_best=jnp.int32(-1),
                               keep=Kept(params, state), keep_t=jnp.float32(sched.t_start))
        return run

    def epoch_of_kind(name, data, y_warm, phase):
        x, unl = data.x, jnp.full(data.x.shape[:1], -1, jnp.int32)
        if name == "rows":
            y = unl if y_warm is None else jnp.where(phase == WARM, y_warm, -1)
            return epochs[name], (x, y), data.nbrs
        if name == "labelled":
            return epochs[name], (data.x_lab, data.y_lab), None
        return epochs[name], (x, unl, data.x_lab, data.y_lab), data.nbrs

    def advance(run, key, y_warm, i, planned, phase, t, data):
        """Epoch ``i`` of one restart (vmapped over restarts); no-op unless ``planned``."""
        carry, best = (run.params, run.opt_state, run.state), run.best_loss
        # a new objective (warm start or pre-training -> ELBO) starts its own divergence
        # check: a supervised loss is no reference for the ELBO (digits: 1e6 nats apart)
        prev = sched.at(jnp.maximum(i - 1, 0))[0]
        best = jnp.where((prev != phase) & ((prev < MAIN) | (phase < MAIN)), jnp.inf, best)
        # init="balanced": usage held to the weights in the warm-up, per data dimension
        balance = jnp.where(phase == WARM, float(model.dim), 0.0)
        k = jax.random.fold_in(key, i)

        def branch(name):
            def go(c):
                fn, arrays, nbrs = epoch_of_kind(name, data, y_warm, phase)
                c, losses, metrics = fn(c, arrays, k, t, nbrs, {"balance": balance},
                                        data.transforms)
                bad, bad_loss = first_bad_step(losses, best)
                return c, (losses.mean(), losses.min(), bad, bad_loss, metrics)
            return go

        branches = [branch(name) for name in names]
        new, (loss, low, bad, bad_loss, metrics) = (
            branches[0](carry) if len(branches) == 1
            else jax.lax.switch(jnp.asarray(table)[phase], branches, carry))
        ran = run.active & planned
        go = ran & (bad < 0)
        params, opt_state, state = _where(go, new, carry)
        main = phase == MAIN
        if model.prior.from_posterior:  # pi from q(k|x) after each main epoch
            em = jax.lax.cond(main, lambda p: {**p, "prior_logits": prior_logits(
                model, p, data.x, t)}, lambda p: p, params)
            params = _where(go, em, params)
        out = run._replace(params=params, opt_state=opt_state, state=state, best_loss=jnp.where(
            go, jnp.minimum(best, low), best).astype(best.dtype))
        rec = {"ran": ran, "loss": loss, "bad_step": bad, "bad_loss": bad_loss,
               **metrics}
        stop = jnp.bool_(False)
        if recipe.validate:
            out, rec, stop = _validate(out, rec, main, go & main, t, data.x_val)
        return out._replace(active=run.active & ~(ran & (bad >= 0)) & ~stop), rec

    def _validate(run, rec, main, counted, t, x_val):
        """Update validation scores, best-so-far parameters and the early-stopping count.

        Only main epochs are scored: ``main`` is the same for every restart, so the others
        skip the computation.
        """
        params, state = run.params, run.state
        ll, elbo = jax.lax.cond(main, lambda: tuple(mean_rows(  # chunks: bounded memory
            lambda c: score_rows(model, params, state, c, t), x_val)),
            lambda: (jnp.nan, jnp.nan))
        worst = jnp.where(jnp.isnan(ll), -jnp.inf, ll)  # a NaN score counts as the worst
        better = counted & ((worst > run.best_val) | (run.since_best < 0))
        since = jnp.where(counted, jnp.where(better, 0, run.since_best + 1), run.since_best)
        run = run._replace(since_best=since,
                           best_val=jnp.where(better, worst, run.best_val).astype(ll.dtype),
                           keep=_where(better, Kept(params, state), run.keep),
                           keep_t=jnp.where(better, t, run.keep_t))
        stop = jnp.bool_(False) if recipe.patience is None else since > recipe.patience
        return run, {**rec, "val_loglik": ll, "val_elbo": elbo}, stop

    def chunk(run, keys, start, data):
        def body(run, c):
            i = start + c
            phase, t = sched.at(i)
            y_axis = None if data.y_warm is None else 0
            run, rec = jax.vmap(advance, in_axes=(0, 0, y_axis, None, None, None, None, None))(
                run, keys, data.y_warm, i, i < len(sched), phase, t, data)
            return run, {**rec, "phase": phase, "T": t}

        return jax.lax.scan(body, run, jnp.arange(recipe.chunk))

    return Runner(tx, jax.jit(jax.vmap(init_one), compiler_options=ONE_OFF), jax.jit(chunk))
