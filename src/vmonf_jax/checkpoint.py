"""Atomic Orbax checkpoints of training state, with a JSON sidecar for plain metadata.

Layout: ``DIR/state`` (Orbax) and ``DIR/state.json``. A save writes ``DIR/state.tmp`` first
(Orbax itself commits atomically) and then swaps it into place, so an interrupted save
leaves the previous checkpoint readable.
"""

import json
import os
import shutil

import jax
import orbax.checkpoint as ocp

_NAME = "state"


def save(directory, tree, meta: dict) -> None:
    """Write pytree ``tree`` and JSON-serialisable ``meta`` to ``directory`` atomically."""
    directory = os.path.abspath(directory)
    os.makedirs(directory, exist_ok=True)
    tmp, final = (os.path.join(directory, _NAME + s) for s in (".tmp", ""))
    shutil.rmtree(tmp, ignore_errors=True)
    ckptr = ocp.StandardCheckpointer()
    ckptr.save(tmp, tree)
    ckptr.wait_until_finished()
    with open(os.path.join(tmp, "meta.json"), "w") as f:
        json.dump(meta, f)
    replace_dir(tmp, final)


def replace_dir(src, dst) -> None:
    """Move directory ``src`` to ``dst``, replacing any old ``dst`` (kept as ``dst.old``
    until the new one is in place, so a crash in between loses neither)."""
    old = dst + ".old"
    shutil.rmtree(old, ignore_errors=True)
    if os.path.exists(dst):
        os.replace(dst, old)
    os.replace(src, dst)
    shutil.rmtree(old, ignore_errors=True)


def exists(directory) -> bool:
    d = os.path.abspath(directory)
    return any(os.path.exists(os.path.join(d, _NAME + s, "meta.json")) for s in ("", ".old"))


def restore(directory, target):
    """Read back ``(tree, meta)``; ``target`` is a pytree of the same structure (shapes/dtypes).

    Raises:
        FileNotFoundError: no checkpoint in ``directory``.
        ValueError: the checkpoint is damaged or does not match ``target``.
    """
    directory = os.path.abspath(directory)
    for suffix in ("", ".old"):  # .old survives only a crash in the middle of a swap
        path = os.path.join(directory, _NAME + suffix)
        if os.path.exists(os.path.join(path, "meta.json")):
            break
    else:
        raise FileNotFoundError(f"no checkpoint in {directory}")
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    try:
        with open(os.path.join(path, "meta.json")) as f:
            meta = json.load(f)
        tree = ocp.StandardCheckpointer().restore(path, abstract)
    except Exception as err:  # Orbax raises many types for damaged files
        raise ValueError(f"checkpoint in {directory} is damaged or incompatible: {err}") from err
    return tree, meta
