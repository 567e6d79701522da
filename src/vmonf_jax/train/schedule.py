"""The schedule of one restart: its phase plan and its temperature, as one object.

A restart runs ``warm`` warm-start epochs (k-means labels, or with ``balanced`` the ELBO
with ``objective.marginal_kl``), then ``pretrain`` supervised epochs, then
``epochs`` main epochs; in the paper's semi-supervised mode (``alternate``) every main epoch
is followed by a supervised one ("main-sup") at the same temperature. The temperature
T = max(min, start * decay**m) is an Optax schedule over the main epoch m (warm-up and
pre-training run at the start value). ``at(i)`` evaluates the plan of epoch ``i`` with jnp
ops, so a compiled loop over epochs computes it on device.
"""

from dataclasses import dataclass

import jax.numpy as jnp
import optax

from vmonf_jax.spec.parameters import GAUSSIAN_INITS

WARM, PRETRAIN, MAIN, MAIN_SUP = range(4)
PHASES = ("warm", "pretrain", "main", "main-sup")  # names of the phase codes, in order


def temperature_schedule(start: float, decay: float, minimum: float) -> optax.Schedule:
    """T(m) = max(minimum, start * decay**m), an Optax schedule over main epochs."""
    if decay >= 1:  # optax reads end_value as a ceiling when rate >= 1
        return optax.constant_schedule(max(start, minimum))
    return optax.exponential_decay(start, 1, decay, end_value=minimum)


@dataclass(frozen=True)
class Schedule:
    """Phase and temperature of every epoch of a restart (hashable: static under ``jit``).

    Example:
        >>> s = Schedule(warm=2, epochs=3, t_decay=0.5)
        >>> [PHASES[int(p)] for p in s.at(jnp.arange(len(s)))[0]]
        ['warm', 'warm', 'main', 'main', 'main']
    """

    warm: int = 0
    pretrain: int = 0
    epochs: int = 1
    alternate: bool = False
    t_start: float = 1.0
    t_decay: float = 0.98
    t_min: float = 0.05
    balanced: bool = False

    @classmethod
    def from_config(cls, config, has_labels: bool) -> "Schedule":
        """The plan of ``config`` (a ``FitConfig``) for data with or without labels."""
        # with labels, only the consistency graph's warm start (spectral clusters matched to
        # the labelled classes, docs/api.md) is run; "auto" always builds the graph
        warm_start = (config.init in ("kmeans", *GAUSSIAN_INITS)
                      and (not has_labels or config.consistency != 0))
        balanced = config.init == "balanced" and not has_labels and config.warm_epochs > 0
        warm = config.warm_epochs if warm_start or balanced else 0
        return cls(warm=int(warm), pretrain=int(config.pretrain_epochs) if has_labels else 0,
                   epochs=int(config.epochs), balanced=balanced,
                   alternate=has_labels and config.semi_supervised == "paper",
                   t_start=float(config.temperature_start),
                   t_decay=float(config.temperature_decay), t_min=float(config.temperature_min))

    def __len__(self) -> int:
        return self.warm + self.pretrain + self.epochs * (2 if self.alternate else 1)

    @property
    def temperature(self) -> optax.Schedule:
        """T as a function of the main epoch."""
        return temperature_schedule(self.t_start, self.t_decay, self.t_min)

    def final_temperature(self) -> float:
        """T of the last main epoch."""
        return float(self.temperature(self.epochs - 1))

    def at(self, i):
        """``(phase code, T)`` of epoch ``i`` of the plan (an int or an int array)."""
        i = jnp.asarray(i, jnp.int32)
        j = i - self.warm - self.pretrain  # index among the main-phase epochs
        per = 2 if self.alternate else 1
        phase = jnp.where(i < self.warm, WARM, jnp.where(
            j < 0, PRETRAIN, jnp.where(j % per == 0, MAIN, MAIN_SUP)))
        t = self.temperature(jnp.maximum(j, 0) // per)
        return phase.astype(jnp.int32), jnp.asarray(t, jnp.float32)
