"""Training: jit-compiled epochs in chunks, with restarts stacked beside K.

Optax, the temperature schedule and phase plan on device, validation, early stopping and
checkpoints.

Layers: ``objective`` (loss terms) -> ``step`` (optimiser, the scanned epoch) ->
``schedule`` (phases and T) -> ``run`` (the restarts' ``state`` and the compiled chunk of
epochs) -> ``driver`` (``fit``: ``setup``, ``loop`` with callbacks such as checkpoints,
``select`` of the best restart).
"""

from vmonf_jax.train.config import FitConfig, FitResult, LossExplodedError, NonFiniteLossError
from vmonf_jax.train.driver import fit
from vmonf_jax.train.objective import point_losses
from vmonf_jax.train.schedule import PHASES, Schedule, temperature_schedule
from vmonf_jax.train.step import (
                                    batch_indices,
                                    evaluate,
                                    kmeans_labels,
                                    make_epoch,
                                    make_optimizer,
)

__all__ = [
    "PHASES", "FitConfig", "FitResult", "LossExplodedError", "NonFiniteLossError", "Schedule",
    "batch_indices", "evaluate", "fit", "kmeans_labels", "make_epoch",
    "make_optimizer", "point_losses", "temperature_schedule",
]
