"""The training recipe (``FitConfig``), the result of a fit (``FitResult``) and its errors."""

import math
from dataclasses import dataclass

import optax

from vmonf_jax.model.mixture import Mixture
from vmonf_jax.spec.parameters import INITS, OBJECTIVES, SEMI_MODES, TRAIN_RESTARTS
from vmonf_jax.train.consistency import AUTO
from vmonf_jax.train.schedule import temperature_schedule

AUTO_PATIENCE = (20, 4)  # early stopping's patience: max(20, main epochs // 4)
AUTO_VAL = (0.15, 10, 10, 20_000)  # fraction; fewest rows to split; fewest, most held out


def auto_patience(epochs: int) -> int:
    """Main epochs without a better validation score before ``early_stopping`` stops.

    A quarter of the main epochs, at least 20: while the temperature anneals the validation
    score can stall for tens of epochs and rise again (20 stopped the pinwheel at ARI 0.93
    and the circles at -0.87 nats, against 0.98 and -0.80 with a quarter), and the best
    parameters are kept whatever the patience, so a longer one costs only time.
    """
    least, share = AUTO_PATIENCE
    return max(least, int(epochs) // share)


def validation_rows(n: int) -> int:
    """Rows held out by ``early_stopping`` from ``n`` rows.

    15%, at least 10 and at most 20,000, never more than half; none below 10 rows. Small
    data need the split most: without validation rows nothing stops the flows from
    fitting each training row (iris, 20 rows: a median -5,885 nats a row held out over 4
    draws, the Gaussian mixture's -11.0), while with them the Gaussian start is kept
    unless training clearly beats it, and its regulariser is cross-validated (-2.6;
    docs/results.md, "Fewer than 40 rows").
    """
    fraction, least_n, fewest, most = AUTO_VAL
    if n < least_n:
        return 0
    return int(min(max(round(fraction * n), fewest), n // 2, most))


class NonFiniteLossError(FloatingPointError):
    """Training produced a non-finite loss.

    Attributes:
        params, state: the parameters (and batch-norm state) from before the failing epoch.
        history: the epochs completed before it.
        restart, epoch, step: where it failed (``epoch`` counts from the restart's start).
    """

    def __init__(self, message, params, state, history, *, restart=0, epoch=0, step=0):
        super().__init__(message)
        self.params, self.state, self.history = params, state, history
        self.restart, self.epoch, self.step = restart, epoch, step


class LossExplodedError(NonFiniteLossError):
    """The loss stayed finite but rose orders of magnitude above its best (divergence)."""


@dataclass(frozen=True)
class FitConfig:
    """Everything ``fit`` needs besides data: the model and the training recipe.

    ``consistency`` weighs the regulariser of ``train.consistency`` (0: the paper's ELBO;
    ``"auto"``: ``consistency.auto_weight`` decides per data set, the graph's partition
    starts the warm start either way). ``objective``: what trains the flows
    (``objective.point_losses``). ``train_restarts="best"``: with Gaussian starts and
    validation rows, only the restart whose start scores best on them trains
    (``start_run.best_start``). ``steps``: gradient steps of the main phase
    (overrides ``epochs``); with it or ``early_stopping``, ``train.budget.plan`` sets the
    main epochs and batch size from the training rows.
    ``chunk_epochs`` epochs run per compiled call (progress, checkpoints and the non-finite
    check happen between calls; per-epoch metrics are kept either way). ``dequantize``: the
    data are logit pixels at their bins' midpoints (``LogitPixels`` with this lambda) and
    every training step draws fresh uniform dequantisation noise; None: rows as given.
    ``dirichlet_alpha`` and ``prune_threshold``: the sparse prior's concentration and the
    weight below which it prunes a component (docs/api.md, "Automatic K").
    ``early_stopping``: with ``val_fraction`` 0, hold out ``validation_rows(n)`` rows (none
    for tiny data) and, with ``patience`` None, stop after ``auto_patience(epochs)`` main epochs
    without improvement; the best parameters (the start's included) are kept.
    """

    model: Mixture
    epochs: int = 100
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    decoupled_weight_decay: bool = False
    clip_norm: float | None = 100.0
    consistency: float | str = 0.0
    objective: str = "elbo"
    steps: int | None = None
    temperature_start: float = 1.0
    temperature_decay: float = 0.98
    temperature_min: float = 0.05
    semi_supervised: str = "joint"
    pretrain_epochs: int = 0
    n_init: int = 1
    train_restarts: str = "all"
    init: str = "kmeans"
    warm_epochs: int = 200
    val_fraction: float = 0.0
    patience: int | None = None
    early_stopping: bool = False
    verbose: bool = True
    chunk_epochs: int = 25
    dequantize: float | None = None
    dirichlet_alpha: float = 0.01
    prune_threshold: float = 0.03

    def __post_init__(self):
        for name in ("epochs", "batch_size", "n_init", "chunk_epochs"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        for name in ("pretrain_epochs", "warm_epochs"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.consistency != AUTO and not (
                isinstance(self.consistency, int | float) and math.isfinite(self.consistency)
                and self.consistency >= 0):
            raise ValueError(f"consistency must be 'auto' or a finite number >= 0, got "
                             f"{self.consistency!r}")
        if self.steps is not None and int(self.steps) < 1:
            raise ValueError(f"steps must be a positive integer or None, got {self.steps}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not (self.temperature_start > 0 and self.temperature_min > 0
                and 0 < self.temperature_decay <= 1):
            raise ValueError("temperatures must be positive and temperature_decay in (0, 1]")
        if self.semi_supervised not in SEMI_MODES:
            raise ValueError(f"semi_supervised must be one of {SEMI_MODES}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.train_restarts not in TRAIN_RESTARTS:
            raise ValueError(f"train_restarts must be one of {TRAIN_RESTARTS}, got "
                             f"{self.train_restarts!r}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}")
        if self.patience is not None and int(self.patience) < 0:
            raise ValueError(f"patience must be >= 0 or None, got {self.patience}")
        if self.clip_norm is not None and not self.clip_norm > 0:
            raise ValueError(f"clip_norm must be positive or None, got {self.clip_norm}")
        if self.dequantize is not None and not 0 <= self.dequantize < 0.5:
            raise ValueError(f"dequantize must be None or in [0, 0.5), got {self.dequantize}")
        if not self.dirichlet_alpha > 0:
            raise ValueError(f"dirichlet_alpha must be positive, got {self.dirichlet_alpha}")
        if not 0 <= self.prune_threshold < 1:
            raise ValueError(f"prune_threshold must be in [0, 1), got {self.prune_threshold}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")

    def temperature_schedule(self) -> optax.Schedule:
        """T(epoch) = max(min, start * decay**epoch), an Optax schedule over main epochs."""
        return temperature_schedule(self.temperature_start, self.temperature_decay,
                                    self.temperature_min)

    def final_temperature(self) -> float:
        """T of the last main epoch (``FitResult.temperature`` is that of the kept params)."""
        return float(self.temperature_schedule()(self.epochs - 1))


@dataclass
class FitResult:
    """Output of ``fit``.

    Attributes:
        params, state: the kept parameters and flow state (no arrays without batch-norm).
        history: one dict per epoch of every restart (restart, phase, epoch, loss, T, elbo,
            loglik, usage, and val_loglik/val_elbo with a validation split), restart-major.
        score: what chose among restarts: the best validation log-likelihood with a
            validation split, else the final training ELBO (non-finite counts as the worst).
        restart: the index of the kept restart.
        temperature: T of the kept parameters (with early stopping, that of the kept epoch).
        model: the ``Mixture`` of ``params``: ``config.model``, or with the sparse prior the
            same with K = the components kept.
        consistency: the regulariser's weight used (``"auto"`` resolved).
        budget: the main phase's ``train.budget.Budget`` (epochs, batch size, steps).
    """

    params: dict
    state: object
    history: list
    score: float
    restart: int
    temperature: float
    model: Mixture
    consistency: float = 0.0
    budget: tuple | None = None
