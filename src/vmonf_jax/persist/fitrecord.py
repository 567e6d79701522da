"""The record of a resumable fit, kept in its checkpoint folder.

A fit with a checkpoint folder keeps ``fit.json`` there (its settings and a fingerprint of its
data); resuming checks both (``start_or_resume``), for ``VMoNF.fit`` and the CLI alike. Such a
folder holds only the fit's own files (``check_checkpoint_dir``): anything else is refused,
never deleted, and a new fit needs an empty folder.
"""

import json
import os
import shutil

from vmonf_jax.files import atomic, io, outputs
from vmonf_jax.files import checkpoint as ckpt
from vmonf_jax.persist.modeldir import STATE
from vmonf_jax.persist.settings import recorded_settings

FIT_RECORD = "fit.json"


def read_fit_record(directory) -> dict:
    """The checked ``fit.json`` of a checkpoint folder.

    Args:
        directory: the checkpoint folder.

    Returns:
        The record: ``{"estimator": settings, "data": fingerprint}``.

    Raises:
        FileNotFoundError: there is none.
        ValueError: it is damaged.
    """
    path = os.path.join(directory, FIT_RECORD)
    if not os.path.lexists(path):
        raise FileNotFoundError(f"nothing to resume in {directory} (no {FIT_RECORD})")
    try:
        rec = atomic.read_json(path)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: damaged fit record ({atomic.first_line(err)})") from None
    if not (isinstance(rec, dict) and isinstance(rec.get("estimator"), dict)
            and isinstance(rec.get("data"), str)):
        raise ValueError(f"{path}: damaged fit record (no estimator settings or data "
                         "fingerprint)")
    return rec


def start_or_resume(directory, settings: dict, data: tuple, resume: bool) -> bool:
    """Record a checkpointed fit in ``directory``, or check that a resumed one matches.

    Args:
        directory: the checkpoint folder (created if needed).
        settings: the estimator's parameters (JSON-serialisable; tuples become lists).
        data: the arrays trained on (e.g. ``(X, labels)``); only their fingerprint is kept.
        resume: check against the record instead of writing it.

    Returns:
        Whether training should resume from a checkpoint (``resume`` and one exists).

    Raises:
        FileNotFoundError: ``resume`` without a record.
        ValueError: a folder holding anything but a fit's own files, a new fit in a folder
            that holds one, a damaged record, or settings or data that differ from the
            recorded ones (named). Nothing is changed then.
    """
    check_checkpoint_dir(directory, fresh=not resume)
    settings = outputs.plain(settings)
    data_id = io.fingerprint(*data)
    if not resume:
        os.makedirs(directory, exist_ok=True)
        with outputs.atomic_file(os.path.join(directory, FIT_RECORD), "w") as f:
            json.dump({"estimator": settings, "data": data_id}, f, indent=1)
        return False
    stored = read_fit_record(directory)
    recorded = outputs.plain(recorded_settings(stored["estimator"]))  # older: added since
    changed = {k: v for k, v in settings.items() if recorded.get(k) != v}
    if changed:
        raise ValueError("a resumed fit continues with the interrupted fit's settings; these "
                         "differ: " + ", ".join(f"{k}={v!r} (was {recorded.get(k)!r})"
                                                for k, v in changed.items()))
    if stored["data"] != data_id:
        raise ValueError(f"{directory}: not the data the interrupted fit started on (rows, "
                         "values or labels differ); resuming needs the same data")
    return ckpt.exists(directory)


def _own(name) -> bool:
    """Whether ``name`` is a file a checkpointed fit writes in its folder."""
    return name in (FIT_RECORD, STATE) or name.startswith(f".{STATE}{atomic.NEW}") or (
        name.startswith(f".{STATE}{atomic.OLD}")) or (
        name.startswith(f".{FIT_RECORD}.") and name.endswith(".tmp"))


def _listing(names):
    return ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")


def check_checkpoint_dir(directory, *, fresh: bool) -> list:
    """Check that ``directory`` holds only a checkpointed fit's own files; return their names.

    Args:
        directory: the checkpoint folder (absent is fine).
        fresh: a new fit: the folder must also be empty (its record and checkpoint are
            never replaced by a new fit; resume it or choose another folder).

    Raises:
        ValueError: a link or file, a name a fit does not write, a ``state`` that is not a
            checkpoint, or (``fresh``) a folder that holds a fit. Nothing is changed.
    """
    if not os.path.lexists(directory):
        return []
    if os.path.islink(directory) or not os.path.isdir(directory):
        raise ValueError(f"{directory}: not a folder; a checkpoint folder must be a plain "
                         "folder")
    names = sorted(os.listdir(directory))
    foreign = [n for n in names if not _own(n)]
    if foreign:
        raise ValueError(f"{directory}: holds {_listing(foreign)}, which no vmonf fit "
                         "writes; refusing to use it as a checkpoint folder (nothing was "
                         "changed)")
    state = os.path.join(directory, STATE)
    if os.path.lexists(state) and (os.path.islink(state)
                                   or not os.path.isfile(os.path.join(state, ckpt.META))):
        raise ValueError(f"{state}: not a vmonf training checkpoint; refusing to replace it")
    if fresh and names:
        raise ValueError(f"{directory}: already holds a fit ({_listing(names)}); resume it "
                         "(resume=True, vmonf fit --resume) or give an empty or new folder")
    return names


def discard_checkpoint_dir(directory, *, remove_folder: bool) -> None:
    """Delete a checkpointed fit's own files from ``directory`` (checked first).

    The folder itself goes too if ``remove_folder`` and nothing else is left in it.
    """
    for name in check_checkpoint_dir(directory, fresh=False):
        p = os.path.join(directory, name)
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p)
        else:
            os.unlink(p)
    if remove_folder and os.path.isdir(directory) and not os.listdir(directory):
        os.rmdir(directory)
