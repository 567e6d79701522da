"""What ``fit`` does between compiled chunks: a progress bar and checkpoints.

A callback sees each ``Snapshot`` (a consistent point of the run: the next epoch, the
stacked run state and the history so far) after a chunk, and the last one when the fit is
interrupted.
"""

import contextlib
import signal
import threading
import time
from typing import NamedTuple

import jax
from tqdm.auto import tqdm

from vmonf_jax.train.state import RunState


class Snapshot(NamedTuple):
    """A consistent point of a run: what a checkpoint holds."""

    epoch: int  # the next epoch of the plan (every restart is at the same one)
    run: RunState  # the stacked run state (leading restart axis)
    history: list  # one dict per completed epoch of every restart


class Progress:
    """A tqdm bar over the epochs of the plan (shown only when ``verbose``)."""

    def __init__(self, total: int, initial: int, n_init: int, verbose: bool):
        desc = "fit" if n_init == 1 else f"fit ({n_init} restarts)"
        self.bar = tqdm(total=total, initial=initial, desc=desc, leave=False,
                        disable=None if verbose else True)

    def after_chunk(self, before: Snapshot, snap: Snapshot) -> None:
        """Advance the bar by the chunk's epochs and show the last loss and temperature."""
        self.bar.update(snap.epoch - before.epoch)
        if snap.history:
            last = snap.history[-1]
            self.bar.set_postfix(loss=f"{last['loss']:.3f}", T=f"{last['T']:.2f}")

    def interrupted(self, snap: Snapshot) -> None:
        """Do nothing: the bar is closed by ``close``."""
        pass

    def close(self) -> None:
        """Close the bar."""
        self.bar.close()


class Checkpoint:
    """Saves the run to ``directory`` every ``every`` epochs and when the fit is interrupted.

    A periodic save fires when a chunk passes a multiple of ``every`` and at least ``seconds``
    have passed since the last save (or the start): a fit of a few seconds is not slowed by
    saves only a hard kill would use, and a hard kill loses about ``seconds`` of work at most.
    Saves are complete before an interrupt is handled.

    The run state is stored as the list of leaves of ``RunState.to_dict`` (its structure
    comes from the recipe).
    """

    def __init__(self, directory, every: int, seconds: float = 0.0):
        self.directory, self.every, self.seconds = directory, int(every), float(seconds)
        self.last = time.monotonic()

    def after_chunk(self, before: Snapshot, snap: Snapshot) -> None:
        """Save when the chunk passed a multiple of ``every`` epochs, ``seconds`` on."""
        if (snap.epoch // self.every > before.epoch // self.every
                and time.monotonic() - self.last >= self.seconds):
            self.save(snap)

    def interrupted(self, snap: Snapshot) -> None:
        """Save the last consistent point, so the fit can be resumed."""
        self.save(snap)

    def close(self) -> None:
        """Do nothing: every save is already complete."""
        pass

    def save(self, snap: Snapshot) -> None:
        """Write ``snap`` to ``directory``, holding SIGINT/SIGTERM until the save is whole."""
        from vmonf_jax.files import checkpoint as ckpt

        self.last = time.monotonic()
        with deferred_signals():
            ckpt.save(self.directory, {"run": jax.tree.leaves(snap.run.to_dict())},
                      {"epoch": snap.epoch, "history": snap.history,
                       "n_components": snap.run.n_components})


def restore(directory, template) -> Snapshot:
    """The snapshot saved in ``directory``.

    Args:
        directory: the checkpoint folder.
        template: ``template(k)`` is a run state of the saved shapes for K = ``k``, the K
            saved (a sparse fit may have pruned components; None: the fit's own K).

    Raises:
        FileNotFoundError: nothing to resume. ValueError: a damaged or foreign checkpoint.
    """
    from vmonf_jax.files import checkpoint as ckpt
    from vmonf_jax.spec.kinds import is_int
    from vmonf_jax.spec.parameters import LIMITS

    if not directory or not ckpt.exists(directory):
        raise FileNotFoundError(f"nothing to resume in {directory}")
    k = ckpt.read_meta(directory).get("n_components")  # None: saved before pruning existed
    if not (k is None or is_int(k) and 1 <= k <= LIMITS["n_components"]):
        raise ValueError(f"checkpoint in {directory} has a bad n_components: {k!r}")
    leaves, treedef = jax.tree.flatten(template(k).to_dict())
    tree, meta = ckpt.restore(directory, {"run": leaves})
    if not isinstance(meta, dict) or not {"epoch", "history"} <= meta.keys():
        raise ValueError(f"checkpoint in {directory} was not written by this version's fit")
    # host copies: uncommitted, so ``jit`` places them wherever its computation runs
    run = RunState.from_dict(jax.tree.unflatten(treedef, jax.device_get(tree["run"])))
    return Snapshot(int(meta["epoch"]), run, meta["history"])


@contextlib.contextmanager
def deferred_signals(signals=(signal.SIGINT, signal.SIGTERM)):
    """Hold ``signals`` while the block runs, then deliver them (main thread only).

    Keeps a checkpoint save (Orbax writes in a background thread) whole: an interrupt
    arriving during it is handled after it, never by a second save racing the first.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    old = {s: signal.getsignal(s) for s in signals}
    old = {s: h for s, h in old.items() if h is not None}  # None: not set from Python
    for s in old:
        signal.signal(s, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        for s in caught:
            signal.raise_signal(s)
