"""A run's records: history entries, failures, and the restart kept at the end.

``loop.train`` turns each chunk's device records into history entries (``entries``) and
raises or warns on a failed step (``failure``); ``select.result`` keeps the best restart
(``best``).
"""

import jax
import numpy as np

from vmonf_jax.train.config import FitResult, LossExplodedError, NonFiniteLossError
from vmonf_jax.train.schedule import PHASES
from vmonf_jax.train.state import Kept
from vmonf_jax.train.step import evaluate

METRICS = ("loss", "elbo", "loglik", "usage")
VAL_METRICS = ("val_loglik", "val_elbo")  # of main epochs, with a validation split


def component_ids(history, n_init: int, k: int) -> np.ndarray:
    """(R, k) indices, among the K of the start, of each restart's current components.

    A sparse fit's history entries carry them as ``components`` (pruning removes entries
    of ``usage``); a resumed fit reads them from its last entries.
    """
    ids = np.tile(np.arange(k), (n_init, 1))
    for e in history:
        if len(e.get("components", ())) == k:
            ids[e["restart"]] = e["components"]
    return ids


def entries(rec, start, ids=None):
    """Turn a chunk's records into history entries (epoch-major).

    ``ids``: (R, K) component indices of a sparse fit, recorded with each entry.

    Returns:
        ``(entries, failed)``: ``failed`` is the first failure,
        ``(restart, epoch, phase, step, loss)``, or None.
    """
    ran, bad = rec["ran"], rec["bad_step"]
    entries, failed = [], None
    for c, r in zip(*np.nonzero(ran)):
        phase, t = PHASES[int(rec["phase"][c])], float(rec["T"][c])
        if bad[c, r] >= 0:
            failed = failed or (int(r), start + int(c), phase, int(bad[c, r]),
                                float(rec["bad_loss"][c, r]))
            continue
        names = METRICS + (VAL_METRICS if phase == "main" else ())
        entries.append({"restart": int(r), "phase": phase, "epoch": start + int(c), "T": t,
                        **{k: rec[k][c, r].tolist() for k in names if k in rec}})
        if ids is not None:
            entries[-1]["components"] = ids[r].tolist()
    return entries, failed


def restart_major(history):
    """History entries sorted by restart, then epoch (``FitResult.history``'s order)."""
    return sorted(history, key=lambda e: (e["restart"], e["epoch"]))


@jax.jit
def pick(tree, r):
    """Restart ``r`` of a stacked tree (on the devices, with the shardings, it has)."""
    return jax.tree.map(lambda a: a[r], tree)


def failure(failed, run, history):
    """The error of a failed step ``failed`` (``entries``), with that restart's parameters."""
    r, epoch, phase, step, loss = failed
    kept = "kept the parameters from before that epoch (try a lower learning_rate or clip_norm)"
    where = f"restart {r}, epoch {epoch} ({phase}), step {step}"
    if np.isfinite(loss):
        err, msg = LossExplodedError, (f"loss exploded in {where}: {loss:.3g} is orders of "
                                       f"magnitude above its best so far; {kept}")
    else:
        err, msg = NonFiniteLossError, f"non-finite loss in {where}; {kept}"
    return err(msg, pick(run.params, r), pick(run.state, r),
               restart_major(history), restart=r, epoch=epoch, step=step)


def best(model, snap, x, t_final, validate) -> FitResult:
    """The restart with the best score (non-finite scores count as the worst)."""
    run = snap.run
    n_init = len(run.active)
    if validate:
        kept, scores, temps = run.keep, np.asarray(run.best_val), np.asarray(run.keep_t)
    else:
        kept, temps = Kept(run.params, run.state), [t_final] * n_init
        scores = np.array([evaluate(model, pick(kept.params, r), pick(kept.state, r),
                                    x, t_final)[1] for r in range(n_init)])
    scores = np.where(np.isnan(scores), -np.inf, scores)
    r = int(np.argmax(scores))
    return FitResult(pick(kept.params, r), pick(kept.state, r),
                     restart_major(snap.history), float(scores[r]), r, float(temps[r]), model)
