"""The schedule of a restart: phase plan and temperature as one object, evaluated on device."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vmonf_jax.model.mixture import Mixture
from vmonf_jax.train import PHASES, FitConfig, Schedule

pytestmark = pytest.mark.usefixtures("fast_compile")


def _config(**kw):
    model = Mixture(dim=2, n_components=2, n_blocks=2, hidden=(4,), posterior_hidden=(4,))
    return FitConfig(model=model, **kw)


def _plan(schedule):
    phase, t = jax.jit(schedule.at)(jnp.arange(len(schedule)))
    return [PHASES[int(p)] for p in phase], np.asarray(t)


@pytest.mark.parametrize("has_labels,changes,phases,main_index", [
    (False, {"init": "kmeans", "warm_epochs": 2}, ["warm"] * 2 + ["main"] * 3, [0, 0, 0, 1, 2]),
    (False, {"init": "random", "warm_epochs": 2}, ["main"] * 3, [0, 1, 2]),
    (False, {"init": "balanced", "warm_epochs": 2}, ["warm"] * 2 + ["main"] * 3,
     [0, 0, 0, 1, 2]),
    (True, {"init": "balanced", "warm_epochs": 2}, ["main"] * 3, [0, 1, 2]),
    (True, {"pretrain_epochs": 2, "semi_supervised": "paper"},
     ["pretrain"] * 2 + ["main", "main-sup"] * 3, [0, 0, 0, 0, 1, 1, 2, 2]),
    (True, {"pretrain_epochs": 1, "semi_supervised": "joint", "warm_epochs": 5},
     ["pretrain"] + ["main"] * 3, [0, 0, 1, 2]),
])
def test_plan_and_temperature_of_every_epoch(has_labels, changes, phases, main_index):
    config = _config(epochs=3, temperature_start=2.0, temperature_decay=0.5,
                     temperature_min=0.3, **changes)
    schedule = Schedule.from_config(config, has_labels)
    got, temps = _plan(schedule)
    assert len(schedule) == len(phases) and got == phases
    np.testing.assert_allclose(temps, [max(0.3, 2.0 * 0.5**m) for m in main_index], rtol=1e-6)
    assert schedule.final_temperature() == pytest.approx(config.final_temperature())
    assert temps.dtype == np.float32


def test_schedule_is_a_static_value():
    """Equal plans are equal and hash alike: one compiled run serves every fit of a recipe."""
    a = Schedule.from_config(_config(epochs=4), False)
    b = Schedule.from_config(_config(epochs=4, n_init=3, verbose=False), False)
    assert a == b and hash(a) == hash(b)
    assert a != Schedule.from_config(_config(epochs=5), False)
