"""Training: jit-compiled epochs (``lax.scan`` over mini-batches), Optax, temperature schedule,
semi-supervised phases, restarts, k-means warm start, validation and checkpoints.

One epoch is one compiled call: batches are drawn on device from the epoch's key, metrics are
accumulated on device and fetched once per epoch. Each epoch function compiles once per data
shape; a ragged last batch is filled with points from the start of the epoch's permutation.
"""

from dataclasses import dataclass
from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from vmonf_jax.chunked import map_rows
from vmonf_jax.mixture import Mixture, elbo_from_terms
from vmonf_jax.parallel import resolve as resolve_parallel

SEMI_MODES = ("paper", "joint")
INITS = ("random", "kmeans")


class NonFiniteLossError(FloatingPointError):
    """Training produced a non-finite loss; ``params``/``state`` hold the last good values."""

    def __init__(self, message, params, state, history):
        super().__init__(message)
        self.params, self.state, self.history = params, state, history


@dataclass(frozen=True)
class FitConfig:
    """Everything ``fit`` needs besides data: the model and the training recipe."""

    model: Mixture
    epochs: int = 100
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    decoupled_weight_decay: bool = False
    clip_norm: float | None = 100.0
    temperature_start: float = 1.0
    temperature_decay: float = 0.98
    temperature_min: float = 0.05
    semi_supervised: str = "paper"
    pretrain_epochs: int = 0
    n_init: int = 1
    init: str = "kmeans"
    warm_epochs: int = 200
    val_fraction: float = 0.0
    patience: int | None = None
    verbose: bool = True

    def __post_init__(self):
        for name in ("epochs", "batch_size", "n_init"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        for name in ("pretrain_epochs", "warm_epochs"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not (self.temperature_start > 0 and self.temperature_min > 0
                and 0 < self.temperature_decay <= 1):
            raise ValueError("temperatures must be positive and temperature_decay in (0, 1]")
        if self.semi_supervised not in SEMI_MODES:
            raise ValueError(f"semi_supervised must be one of {SEMI_MODES}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}")
        if self.patience is not None and int(self.patience) < 0:
            raise ValueError(f"patience must be >= 0 or None, got {self.patience}")
        if self.clip_norm is not None and not self.clip_norm > 0:
            raise ValueError(f"clip_norm must be positive or None, got {self.clip_norm}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")

    def temperature_schedule(self) -> optax.Schedule:
        """T(epoch) = max(min, start * decay**epoch), an Optax schedule over epochs."""
        if self.temperature_decay >= 1:  # optax reads end_value as a ceiling when rate >= 1
            return optax.constant_schedule(max(self.temperature_start, self.temperature_min))
        return optax.exponential_decay(self.temperature_start, 1, self.temperature_decay,
                                       end_value=self.temperature_min)

    def final_temperature(self) -> float:
        return float(self.temperature_schedule()(self.epochs - 1))


def make_optimizer(config: FitConfig) -> optax.GradientTransformation:
    """Clip, then Adam with coupled L2 (the paper's) or AdamW; the prior is trained only
    when ``prior == "learned"`` (``em`` sets it between epochs, ``uniform`` keeps it)."""
    steps = []
    if config.clip_norm:
        steps.append(optax.clip_by_global_norm(config.clip_norm))
    if config.decoupled_weight_decay:
        steps.append(optax.adamw(config.learning_rate, weight_decay=config.weight_decay))
    else:
        if config.weight_decay:
            steps.append(optax.add_decayed_weights(config.weight_decay))
        steps.append(optax.adam(config.learning_rate))
    prior = "train" if config.model.prior == "learned" else "frozen"
    labels = {"components": "train", "posterior": "train", "prior_logits": prior}
    return optax.multi_transform({"train": optax.chain(*steps), "frozen": optax.set_to_zero()},
                                 lambda params: {k: labels[k] for k in params})


# -- losses -------------------------------------------------------------------------------
def _terms(model, params, state, x, temperature):
    if state is None:
        comp, new_state = model.component_log_prob(params, x), None
    else:
        comp, new_state = model.component_log_prob(params, x, state=state, train=True)
    return comp + model.log_prior(params), model.log_posterior(params, x, temperature), new_state


def point_losses(model, params, state, x, y, temperature):
    """Per-point loss: -ELBO(x) where y = -1, else -log p_y(x) - log pi_y - log q(y|x).

    A labelled point trains its own component and the posterior (cross-entropy); one
    function serves unsupervised, supervised and mixed batches, so one compile serves all.
    Aux: new batch-norm state and metrics (ELBO, exact log p, component usage).
    """
    joint, log_q, state = _terms(model, params, state, x, temperature)
    elbo = elbo_from_terms(joint, log_q)
    yc = jnp.maximum(y, 0)[:, None]
    sup = -(jnp.take_along_axis(joint, yc, -1) + jnp.take_along_axis(log_q, yc, -1))[:, 0]
    metrics = {"elbo": elbo.mean(), "loglik": jax.nn.logsumexp(joint, -1).mean(),
               "usage": jnp.exp(log_q).mean(0)}
    return jnp.where(y >= 0, sup, -elbo), (state, metrics)


def _batch_indices(key, n, batch_size):
    """(n_batches, batch) row indices of one epoch; the ragged tail wraps around."""
    perm = jax.random.permutation(key, n)
    n_batches = -(-n // batch_size)
    return jnp.concatenate([perm, perm[: n_batches * batch_size - n]]).reshape(n_batches, -1)


def make_epoch(model: Mixture, tx, batch_size: int, joint: bool = False, parallel=None):
    """A jitted epoch: ``(carry, data, key, T) -> (carry, per-step losses, mean metrics)``.

    ``data`` = (X, y) with y = -1 for unlabelled rows (all -1: unsupervised; all labelled:
    supervised). With ``joint``, ``data`` = (X, y, X_lab, y_lab) and every step also sees a
    batch of labelled rows drawn with replacement. ``carry`` = (params, opt_state,
    batch-norm state or None). ``parallel``: a ``vmonf_jax.parallel.Parallel`` (data- or
    component-parallel over its mesh; sharding annotations only) or None (one device).
    """

    def loss_fn(params, state, batch, temperature):
        x, y = batch
        losses, aux = point_losses(model, params, state, x, y, temperature)
        return losses.mean(), aux

    @jax.jit
    def epoch(carry, data, key, temperature):
        n = data[0].shape[0]
        bs = min(batch_size, n)
        k_perm, k_lab = jax.random.split(key)
        idx = _batch_indices(k_perm, n, bs)
        n_lab = data[2].shape[0] if joint else 1
        lab_idx = jax.random.randint(k_lab, (idx.shape[0], min(bs, n_lab)), 0, n_lab)

        def step(carry, ib):
            params, opt_state, state = carry
            i, il = ib
            batch = (data[0][i], data[1][i])
            if joint:
                batch = tuple(jnp.concatenate([a, b[il]]) for a, b in zip(batch, data[2:]))
            if parallel is not None:  # parallel: split/replicate the batch, pin the carry
                batch, carry = parallel.constrain_batch(batch), parallel.constrain_carry(carry)
                params, opt_state, state = carry
            (loss, (state, metrics)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
                params, state, batch, temperature)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state, state), (loss, metrics)

        carry, (losses, metrics) = jax.lax.scan(step, carry, (idx, lab_idx))
        metrics = jax.tree.map(lambda m: m.mean(0), metrics)
        if parallel is not None:  # parallel: carry keeps its shardings, metrics replicated
            carry = parallel.constrain_carry(carry)
            losses, metrics = parallel.constrain_replicated((losses, metrics))
        return carry, losses, metrics

    return epoch


# -- evaluation ---------------------------------------------------------------------------
@partial(jax.jit, static_argnums=0)
def _score_rows(model, params, state, x, temperature):
    joint = model.joint(params, x, state=state)
    log_q = model.log_posterior(params, x, temperature)
    return jnp.stack([jax.nn.logsumexp(joint, -1), elbo_from_terms(joint, log_q)], -1)


def evaluate(model, params, state, x, temperature):
    """Mean exact log-likelihood and mean ELBO of ``x`` (chunked)."""
    rows = map_rows(lambda c: _score_rows(model, params, state, c, temperature), x)
    return float(rows[:, 0].mean()), float(rows[:, 1].mean())


@partial(jax.jit, static_argnums=0)
def _posterior(model, params, x, temperature):
    return model.posterior(params, x, temperature)


def em_prior_logits(model, params, x, temperature):
    """log pi for pi = mean_x q(k|x): the prior that maximises the ELBO for the current q."""
    q = map_rows(lambda c: _posterior(model, params, c, temperature), x).mean(0)
    return jnp.log(jnp.maximum(jnp.asarray(q, params["prior_logits"].dtype), 1e-12))


def kmeans_labels(x, k: int, seed: int) -> np.ndarray:
    """k-means assignments, on PCA features (50 dims) when the data are wider than that."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    feats = np.asarray(x, np.float64)
    if feats.shape[1] > 50:
        feats = PCA(50, random_state=seed).fit_transform(feats)
    return KMeans(k, n_init=10, random_state=seed).fit_predict(feats).astype(np.int32)


# -- the driver ---------------------------------------------------------------------------
@dataclass
class FitResult:
    """Output of ``fit``: the kept parameters, batch-norm state (or None) and history.

    ``history`` has one dict per epoch of every restart (restart, phase, epoch, loss, T,
    usage, ...); ``score`` is what chose among restarts (validation log-likelihood when a
    validation split exists, else the final training ELBO).
    """

    params: dict
    state: object
    history: list
    score: float
    restart: int


def _phases(config: FitConfig, has_labels: bool):
    """The ordered (phase, kind) epochs of one restart."""
    plan = []
    if config.init == "kmeans" and not has_labels and config.warm_epochs:
        plan += [("warm", "sup")] * config.warm_epochs
    if has_labels and config.pretrain_epochs:
        plan += [("pretrain", "sup")] * config.pretrain_epochs
    for _ in range(config.epochs):
        if has_labels and config.semi_supervised == "joint":
            plan.append(("main", "joint"))
        elif has_labels:
            plan += [("main", "unsup"), ("main-sup", "sup")]
        else:
            plan.append(("main", "unsup"))
    return plan


def _split(x, labels, fraction, key):
    if not fraction:
        return x, labels, None
    n = x.shape[0]
    n_val = max(1, int(round(fraction * n)))
    perm = np.asarray(jax.random.permutation(jax.random.fold_in(key, 2**20), n))
    val, tr = perm[:n_val], perm[n_val:]
    return x[tr], None if labels is None else labels[tr], x[val]


def fit(key, data, config: FitConfig, *, labels=None, checkpoint_dir=None, resume=False,
        checkpoint_every: int = 25, mesh=None, parallel=None) -> FitResult:
    """Fit a VMoNF by maximising the ELBO; returns a ``FitResult``.

    Args:
        key: a ``jax.random`` key; everything random derives from it (restart r, epoch i use
            ``fold_in(fold_in(key, r), i)``), so a resumed fit equals an uninterrupted one.
        data: (n, dim) array, already preprocessed (the estimator standardises).
        config: model and recipe.
        labels: optional ints, -1 = unlabelled; labelled points train their own component
            and the posterior (``config.semi_supervised``: "paper" = pre-train on the labelled
            points, then alternate unsupervised and supervised epochs; "joint" = every step
            sees both).
        checkpoint_dir: if given, training state is saved there every ``checkpoint_every``
            epochs and when interrupted (KeyboardInterrupt is re-raised after saving).
        resume: continue from the checkpoint in ``checkpoint_dir``.
        mesh, parallel: train over several devices (``vmonf_jax.parallel.resolve``):
            ``parallel`` = "data" | "components" | ``Parallel``; ``mesh`` = a ``Mesh``, a
            device count or a device list. Neither: one device. See docs/distributed.md.

    Raises:
        ValueError: bad data or labels. NonFiniteLossError: a non-finite loss (the error
        carries the parameters from before the failing epoch).
    """
    from vmonf_jax import checkpoint as ckpt
    from vmonf_jax.validation import check_data, check_labels

    model = config.model
    x = check_data(data, dim=model.dim, min_rows=model.n_components)
    if labels is not None:
        labels = check_labels(labels, x.shape[0], model.n_components)
    x, labels, x_val = _split(x, labels, config.val_fraction, key)
    has_labels = labels is not None and bool((labels >= 0).any())
    lab = labels >= 0 if has_labels else None
    spec = resolve_parallel(parallel, mesh)  # None: one device
    if spec is not None:
        spec.check(model.n_components)
    tx, epochs = _compiled(_step_config(config), spec)
    temps = np.asarray(jax.vmap(config.temperature_schedule())(jnp.arange(config.epochs)),
                       np.float32)  # vmap: a constant schedule still gives one T per epoch
    plan = _phases(config, has_labels)
    t_final = config.final_temperature()

    snap, best = None, None
    if resume:
        if not checkpoint_dir or not ckpt.exists(checkpoint_dir):
            raise FileNotFoundError(f"nothing to resume in {checkpoint_dir}")
        snap, best = _restore(checkpoint_dir, model, tx, key)
    history = snap.history if snap else []

    for r in range(snap.restart if snap else 0, config.n_init):
        key_r = jax.random.fold_in(key, r)
        if snap is None or snap.restart != r:
            params, state = _init(model, key_r)
            snap = _Snapshot(r, 0, (params, tx.init(params), state), len(history),
                             -np.inf, 0, (params, state), history)
        data_by_kind = _data_by_kind(x, labels, lab, config, model, key_r)
        if spec is not None:
            data_by_kind = spec.replicate(data_by_kind)
        (params, opt_state, state), best_val, since_best, keep = (
            snap.carry, snap.best_val, snap.since_best, snap.keep)
        main_epoch = sum(p == "main" for p, _ in plan[:snap.epoch])
        bar = tqdm(total=len(plan), initial=snap.epoch, desc=f"fit {r + 1}/{config.n_init}",
                   disable=None if config.verbose else True, leave=False)
        try:
            for i in range(snap.epoch, len(plan)):
                phase, kind = plan[i]
                # a supervised epoch of the paper's schedule shares its main epoch's T
                t = float(temps[{"main": main_epoch, "main-sup": main_epoch - 1}.get(phase, 0)])
                carry = (params, opt_state, state)
                if spec is not None:  # no-op unless something (e.g. the EM prior) moved
                    carry = spec.place_carry(carry)
                carry, losses, metrics = epochs[kind](
                    carry, data_by_kind[kind], jax.random.fold_in(key_r, i), jnp.float32(t))
                losses, metrics = jax.device_get((losses, metrics))
                if not np.all(np.isfinite(losses)):
                    step = int(np.argmin(np.isfinite(losses)))
                    raise NonFiniteLossError(
                        f"non-finite loss in restart {r}, epoch {i} ({phase}), step {step}; "
                        "kept the parameters from before that epoch (try a lower "
                        "learning_rate or clip_norm)", params, state, history)
                params, opt_state, state = carry
                if phase == "main" and model.prior == "em":
                    params = {**params, "prior_logits": em_prior_logits(model, params, x, t)}
                entry = {"restart": r, "phase": phase, "epoch": i, "T": t,
                         "loss": float(losses.mean()),
                         **{k: v.tolist() for k, v in metrics.items()}}
                if phase == "main":
                    main_epoch += 1
                    if x_val is not None:
                        entry["val_loglik"], entry["val_elbo"] = evaluate(
                            model, params, state, x_val, t)
                        if entry["val_loglik"] > best_val:
                            best_val, since_best, keep = entry["val_loglik"], 0, (params, state)
                        else:
                            since_best += 1
                history.append(entry)
                # one statement: an interrupt anywhere below resumes from a consistent point
                snap = _Snapshot(r, i + 1, (params, opt_state, state), len(history),
                                 best_val, since_best, keep, history)
                bar.update(1)
                bar.set_postfix(loss=f"{entry['loss']:.3f}", T=f"{t:.2f}")
                if checkpoint_dir and (i + 1) % checkpoint_every == 0:
                    _save(checkpoint_dir, snap, best)
                if config.patience is not None and since_best > config.patience:
                    break
        except KeyboardInterrupt:
            if checkpoint_dir:
                _save(checkpoint_dir, snap, best)
            raise
        finally:
            bar.close()
        if x_val is None:
            keep, score = (params, state), evaluate(model, params, state, x, t_final)[1]
        else:
            score = best_val
        if best is None or score > best[2]:
            best = (keep[0], keep[1], float(score), r)
        if checkpoint_dir and r + 1 < config.n_init:
            params, state = _init(model, jax.random.fold_in(key, r + 1))
            snap = _Snapshot(r + 1, 0, (params, tx.init(params), state), len(history),
                             -np.inf, 0, (params, state), history)
            _save(checkpoint_dir, snap, best)
    return FitResult(best[0], best[1], history, best[2], best[3])


@dataclass(frozen=True)
class _Snapshot:
    """A consistent point of a fit: what a checkpoint holds besides the best restart."""

    restart: int
    epoch: int  # next epoch of the plan to run
    carry: tuple  # (params, opt_state, batch-norm state)
    n_history: int
    best_val: float
    since_best: int
    keep: tuple  # (params, state) kept by early stopping in this restart
    history: list


@partial(jax.jit, static_argnums=0)
def _init(model, key):
    out = model.init(key)
    return out if model.batch_norm else (out, None)


_STEP_FIELDS = ("model", "batch_size", "learning_rate", "weight_decay",
                "decoupled_weight_decay", "clip_norm")


def _step_config(config: FitConfig) -> FitConfig:
    """The config reduced to the fields the compiled epoch depends on (a cache key)."""
    return FitConfig(**{f: getattr(config, f) for f in _STEP_FIELDS})


@lru_cache(maxsize=8)
def _compiled(step_config: FitConfig, spec):
    """Optimizer and jitted epochs, cached so repeated fits of one recipe compile once."""
    tx = make_optimizer(step_config)
    mixed = make_epoch(step_config.model, tx, step_config.batch_size, parallel=spec)
    joint = make_epoch(step_config.model, tx, step_config.batch_size, joint=True,
                       parallel=spec)
    return tx, {"unsup": mixed, "sup": mixed, "joint": joint}


def _data_by_kind(x, labels, lab, config, model, key):
    """Device arrays for each epoch kind: (X, y) pairs, y = -1 where unlabelled.

    "unsup" sees every row as unlabelled; "sup" the labelled rows (or, for a k-means warm
    start, every row with its k-means cluster as label); "joint" both at once.
    """
    x_dev = jnp.asarray(x)
    unl = jnp.full((x.shape[0],), -1, jnp.int32)
    out = {"unsup": (x_dev, unl)}
    if lab is not None:
        x_lab, y_lab = jnp.asarray(x[lab]), jnp.asarray(labels[lab])
        out["sup"], out["joint"] = (x_lab, y_lab), (x_dev, unl, x_lab, y_lab)
    elif config.init == "kmeans" and config.warm_epochs:
        seed = int(jax.random.randint(key, (), 0, 2**31 - 1))
        out["sup"] = (x_dev, jnp.asarray(kmeans_labels(x, model.n_components, seed)))
    return out


def _template(model, tx, key):
    params, state = _init(model, key)
    return {"carry": (params, tx.init(params), state), "keep": (params, state),
            "best": (params, state)}


def _save(directory, snap: _Snapshot, best):
    from vmonf_jax import checkpoint as ckpt

    tree = {"carry": snap.carry, "keep": snap.keep,
            "best": (best[0], best[1]) if best else snap.keep}
    meta = {"restart": snap.restart, "epoch": snap.epoch,
            "history": snap.history[: snap.n_history],
            "best_val": None if np.isinf(snap.best_val) else snap.best_val,
            "since_best": snap.since_best,
            "best_score": best[2] if best else None, "best_restart": best[3] if best else None}
    ckpt.save(directory, tree, meta)


def _restore(directory, model, tx, key):
    from vmonf_jax import checkpoint as ckpt

    tree, meta = ckpt.restore(directory, _template(model, tx, key))
    best_val = -np.inf if meta["best_val"] is None else meta["best_val"]
    snap = _Snapshot(meta["restart"], meta["epoch"], tree["carry"], len(meta["history"]),
                     best_val, meta["since_best"], tree["keep"], meta["history"])
    best = None
    if meta["best_score"] is not None:
        best = (*tree["best"], meta["best_score"], meta["best_restart"])
    return snap, best

