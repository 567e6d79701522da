"""The training budget: batch size and main epochs from the number of training rows.

JAX-free (the rule is plain arithmetic, tested on its own). ``VMoNF``'s ``epochs=100,
batch_size=256`` give a 105-row data set one gradient step per epoch and a 10^6-row one
390,000 steps; ``plan`` turns them into a budget that fits the data: at least
``BATCHES_PER_EPOCH`` steps an epoch, at most ``MAX_STEPS`` in all. The epochs a user sets
are never raised (they are what the user asked for); ``steps=`` asks for a step count.
The warm-start epochs are capped the same way (``warm_epochs``).
"""

import math
from typing import NamedTuple

MIN_BATCH = 16
"""Smallest batch the rule picks (below it Adam's steps are mostly noise)."""
BATCHES_PER_EPOCH = 4
"""The batch is at most a quarter of the training rows: at least 4 steps per epoch."""
MAX_STEPS = 100_000
"""Most gradient steps of the main phase: huge data get fewer epochs (10^6 rows at batch
256: 25 epochs, about 98,000 steps)."""


class Budget(NamedTuple):
    """What ``plan`` chose: main ``epochs``, ``batch_size`` and the ``steps`` they make."""

    epochs: int
    batch_size: int
    steps: int


def plan(n_rows: int, epochs: int, batch_size: int, steps: int | None = None,
         auto: bool = True) -> Budget:
    """The main phase's budget for ``n_rows`` training rows.

    Args:
        n_rows: training rows (after the validation split), >= 1.
        epochs: the requested main epochs (``VMoNF``'s ``epochs``).
        batch_size: the requested batch size.
        steps: gradient steps wanted (None: from ``epochs``); the epochs are the fewest that
            run at least that many.
        auto: apply the rule (``VMoNF``: with ``early_stopping``); False keeps ``epochs``
            and ``batch_size`` (the batch is never more than the rows, as in every epoch).

    The rule: ``batch = min(batch_size, max(MIN_BATCH, n_rows // BATCHES_PER_EPOCH))``
    (never more than the rows), then the epochs are lowered (to at least one) until the
    main phase runs at most ``MAX_STEPS`` steps. An explicit ``steps`` takes the capped
    batch and overrides ``epochs``, with or without ``auto``. A raise to a minimum of steps
    (2,000) was measured and dropped: on the eight small real data sets every held-out
    score was the same with it (docs/results.md, "Training budget and consistency rule"),
    and it overrode the epochs users set.

    Example:
        >>> plan(89, 100, 256)  # iris's training rows under early stopping
        Budget(epochs=100, batch_size=22, steps=500)
        >>> plan(89, 100, 256, auto=False)
        Budget(epochs=100, batch_size=89, steps=100)
    """
    for name, v in (("n_rows", n_rows), ("epochs", epochs), ("batch_size", batch_size)):
        if int(v) < 1:
            raise ValueError(f"{name} must be a positive integer, got {v}")
    if steps is not None and int(steps) < 1:
        raise ValueError(f"steps must be a positive integer or None, got {steps}")
    n = int(n_rows)
    batch = min(int(batch_size), n)
    if auto or steps is not None:
        batch = min(batch, max(MIN_BATCH, n // BATCHES_PER_EPOCH))
    per_epoch = math.ceil(n / batch)
    if steps is not None:
        epochs = math.ceil(int(steps) / per_epoch)
    elif auto:
        epochs = _capped(int(epochs), per_epoch)
    return Budget(int(epochs), batch, int(epochs) * per_epoch)


def warm_epochs(n_rows: int, epochs: int, batch_size: int) -> int:
    """The warm-start epochs under the rule: at most ``MAX_STEPS`` steps, as the main phase.

    ``epochs`` are lowered as ``plan`` lowers the main phase's (0 stays 0). Without it the
    warm start escaped the cap: 200 epochs of 10^6 rows at batch 256 are 781,400 steps,
    eight times the main phase's 100,000.

    Example:
        >>> warm_epochs(89, 200, 22), warm_epochs(10**6, 200, 256)
        (200, 25)
    """
    return 0 if int(epochs) == 0 else _capped(int(epochs), math.ceil(int(n_rows) / batch_size))


def _capped(epochs: int, per_epoch: int) -> int:
    """``epochs`` lowered (to at least 1) until they run at most ``MAX_STEPS`` steps."""
    return max(1, min(epochs, MAX_STEPS // per_epoch))
