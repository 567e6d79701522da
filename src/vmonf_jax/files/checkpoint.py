"""Atomic Orbax checkpoints with a JSON sidecar.

Layout: ``DIR/state/`` (Orbax) holding ``meta.json`` (plain metadata, written last). A save
writes a unique ``DIR/.state.vmonf-new-XXXXXXXX`` and swaps it into place
(:func:`vmonf_jax.files.atomic.swap_dir`), so at every instant ``state`` holds the old or the
new checkpoint, or :func:`~vmonf_jax.files.atomic.recover` finds a complete one under its
temporary name; readers and writers lock as :mod:`vmonf_jax.files.atomic` describes.

Checkpoints are read as untrusted input: only plain files and folders (no links, FIFOs or
devices), a size cap, array shapes checked against the target before anything is allocated.
Orbax's synchronous checkpointer is used, so a failure is one exception, not tracebacks from
its threads.
"""

import contextlib
import errno
import json
import logging
import math
import os

import jax
import orbax.checkpoint as ocp

from vmonf_jax.files.atomic import check_tree, first_line, read_json, recover, swap_dir, writing

_NAME = "state"
META = "meta.json"
OVERHEAD_BYTES = 64 * 2**20
"""A checkpoint may exceed twice its arrays' raw size by at most this much."""


# -- shapes -------------------------------------------------------------------------------
def raw_bytes(tree) -> int:
    """Bytes of the arrays of ``tree`` (arrays or ``jax.ShapeDtypeStruct``)."""
    return sum(math.prod(a.shape) * getattr(a.dtype, "itemsize", 8)
               for a in jax.tree.leaves(tree))


def check_shapes(path, abstract) -> None:
    """Compare the arrays Orbax stored in ``path`` with ``abstract`` (shapes and dtypes).

    Only Orbax's metadata is read, so a checkpoint that does not match is refused before
    any array is allocated.

    Args:
        path: the Orbax checkpoint folder.
        abstract: the expected pytree (arrays or ``jax.ShapeDtypeStruct``).

    Raises:
        ValueError: an array missing, extra, or of another shape or dtype (named by its path).
    """
    try:
        with _quiet():
            stored = _checkpointer().metadata(path).item_metadata
        _shapes(stored)
    except Exception as err:  # Orbax raises many types for damaged metadata
        raise ValueError(f"unreadable checkpoint metadata: {first_line(err)}") from None
    compare_shapes(stored, abstract)


def compare_shapes(have, want, what="the checkpoint") -> None:
    """Compare two pytrees of arrays or shape structs, ``have`` against ``want``.

    Raises:
        ValueError: naming the first array missing from ``have``, extra in it, or of
            another shape or dtype.
    """
    have, want = _shapes(have), _shapes(want)
    for k in sorted(set(want) | set(have)):
        if k not in have:
            raise ValueError(f"array {k} is missing from {what}")
        if k not in want:
            raise ValueError(f"array {k} in {what} is not part of the model")
        if have[k] != want[k]:
            raise ValueError(f"array {k} has shape {have[k][0]} and dtype {have[k][1]}; the "
                             f"model needs {want[k][0]} {want[k][1]}")


def _shapes(tree):
    return {jax.tree_util.keystr(p): (tuple(int(s) for s in a.shape), str(a.dtype))
            for p, a in jax.tree_util.tree_leaves_with_path(tree)}


def _checkpointer():
    """Orbax's synchronous checkpointer.

    No writer or reader thread outlives a call, so a failure is one exception here, not
    tracebacks from threads later in the process.
    """
    return ocp.Checkpointer(ocp.StandardCheckpointHandler())


@contextlib.contextmanager
def _quiet():
    """Leave out Orbax's warnings about a damaged checkpoint (logged through absl).

    The exception raised says what is wrong.
    """
    logger = logging.getLogger("absl")
    old = logger.level
    logger.setLevel(max(old, logging.ERROR))
    try:
        yield
    finally:
        logger.setLevel(old)


# -- checkpoints --------------------------------------------------------------------------
def save(directory, tree, meta: dict) -> None:
    """Write pytree ``tree`` and JSON-serialisable ``meta`` to ``directory`` atomically.

    Raises:
        ValueError: ``directory/state`` exists but is not a checkpoint (never replaced).
        OSError: the checkpoint cannot be written (e.g. a full disk), naming ``directory``.
    """
    directory = os.path.abspath(directory)
    os.makedirs(directory, exist_ok=True)
    final = os.path.join(directory, _NAME)
    if os.path.lexists(final) and (os.path.islink(final)
                                   or not os.path.isfile(os.path.join(final, META))):
        raise ValueError(f"{final}: not a vmonf training checkpoint; refusing to replace it")
    with writing(final) as tmp:
        # synchronous: when it fails (e.g. a full disk), no thread writes on afterwards
        ckptr = _checkpointer()
        try:
            ckptr.save(tmp, args=ocp.args.StandardSave(tree), force=True)
        except Exception as err:  # one OSError naming the folder
            raise OSError(getattr(err, "errno", None) or errno.EIO,
                          f"cannot write the checkpoint ({first_line(err)})",
                          directory) from None
        with open(os.path.join(tmp, META), "w") as f:
            json.dump(meta, f)
        swap_dir(tmp, final)


def read_meta(directory) -> dict:
    """The metadata saved with the checkpoint in ``directory`` (``{}`` if not an object).

    Raises:
        FileNotFoundError: no checkpoint in ``directory``.
        ValueError: the metadata are damaged.
    """
    path = recover(os.path.join(os.path.abspath(directory), _NAME), META)
    if path is None:
        raise FileNotFoundError(f"no checkpoint in {directory}")
    meta = read_json(os.path.join(path, META))
    return meta if isinstance(meta, dict) else {}


def exists(directory) -> bool:
    """Whether ``directory`` holds a complete checkpoint (possibly under a temporary name)."""
    d = os.path.abspath(directory)
    final = os.path.join(d, _NAME)
    if os.path.isfile(os.path.join(final, META)):
        return True
    return not os.path.lexists(final) and recover(final, META) is not None


def _on_this_host(leaf):
    """``leaf`` (a ``jax.ShapeDtypeStruct``), on this host's first device unless it says where.

    Without a sharding Orbax would restore an array as it was saved: a model trained over a
    mesh of devices would then load only where those devices exist.
    """
    if getattr(leaf, "sharding", None) is not None:
        return leaf
    return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype,
                                sharding=jax.sharding.SingleDeviceSharding(jax.local_devices()[0]))


def restore(directory, target, *, max_bytes=None):
    """Read back the checkpoint in ``directory``, checking it as untrusted input.

    The files are checked first (plain files only, at most ``max_bytes``), then the stored
    shapes against ``target``, and only then are the arrays read. An interrupted save is
    recovered first.

    Args:
        directory: the folder passed to :func:`save`.
        target: a pytree of the saved structure (arrays or ``jax.ShapeDtypeStruct``).
        max_bytes: the most the checkpoint's files may hold in all (default twice the
            target's raw size plus ``OVERHEAD_BYTES``).

    Returns:
        ``(tree, meta)``: the arrays in ``target``'s structure, and the saved metadata.

    Raises:
        FileNotFoundError: no checkpoint in ``directory``.
        ValueError: the checkpoint is damaged or does not match ``target``.
    """
    directory = os.path.abspath(directory)
    path = recover(os.path.join(directory, _NAME), META)
    if path is None:
        raise FileNotFoundError(f"no checkpoint in {directory}")
    abstract = jax.tree.map(_on_this_host, jax.tree.map(ocp.utils.to_shape_dtype_struct, target))
    if max_bytes is None:
        max_bytes = 2 * raw_bytes(abstract) + OVERHEAD_BYTES
    check_tree(path, max_bytes)
    meta = read_json(os.path.join(path, META))
    check_shapes(path, abstract)
    try:
        with _quiet():
            tree = _checkpointer().restore(path, args=ocp.args.StandardRestore(abstract))
    except Exception as err:  # Orbax raises many types for damaged files
        raise ValueError(f"checkpoint in {directory} is damaged or incompatible: "
                         f"{first_line(err)}") from err
    return tree, meta
