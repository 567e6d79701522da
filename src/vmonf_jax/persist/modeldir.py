"""The model directory (manifest plus Orbax checkpoint): saving and loading.

A model directory is saved safely and read as untrusted input. Layout:
``PATH/manifest.json`` (``format_version``, estimator parameters, ``dim``, preprocessing,
classes, library version, training summary, history) and ``PATH/state/`` (the Orbax
checkpoint of ``{"params", "state"}``).

Saving first checks the model as ``load`` would (schema, architecture against the arrays,
preprocessing), then writes a unique ``.NAME.vmonf-new-XXXXXXXX`` beside PATH (the manifest
last) and swaps it in (``files.atomic.swap_dir``); it replaces only a model directory or an
empty folder. At every instant PATH holds the old or the new model, or ``load`` recovers the
new one from its temporary name (also after ``kill -9``). ``load`` reads under a shared lock,
so it never mixes the manifest of one model with the arrays of another.

Loading checks, before anything is built or allocated: only plain files and folders, the
manifest's size and schema (types, ranges and the limits in ``LIMITS``), the stored
preprocessing, the parameter count the architecture implies, and the array shapes Orbax
stored (from its metadata, against a ``jax.eval_shape`` template). Every failure is a
``ValueError`` beginning ``"damaged model directory: "`` that names the file and field.

The record of a resumable fit lives in ``vmonf_jax.persist.fitrecord``.
"""

import json
import os
from typing import NamedTuple

import jax
import numpy as np

from vmonf_jax.files import atomic, outputs
from vmonf_jax.files import checkpoint as ckpt
from vmonf_jax.persist.manifest import LIMITS, Invalid, check_manifest, param_template
from vmonf_jax.persist.settings import fit_config, recorded_settings
from vmonf_jax.preprocess import SPREAD_FLOOR, preprocessor_from_dict
from vmonf_jax.validation import FLOAT32_MAX

MANIFEST = "manifest.json"
STATE = "state"
PREFIX = "damaged model directory: "


class Loaded(NamedTuple):
    """What ``load`` read: the estimator's parameters and the fitted model's parts."""

    settings: dict
    config: object
    preprocessor: object
    params: dict
    state: object
    temperature: float
    manifest: dict


# -- saving -------------------------------------------------------------------------------
def is_model_dir(path) -> bool:
    """A folder (not a link) holding ``manifest.json`` and nothing but the model's files."""
    if os.path.islink(path) or not os.path.isdir(path):
        return False
    names = set(os.listdir(path))
    return MANIFEST in names and names <= {MANIFEST, STATE} and os.path.isfile(
        os.path.join(path, MANIFEST))


def check_replaceable(path) -> None:
    """Check that a model may be saved at ``path`` without destroying anything else.

    Args:
        path: the model directory to be written.

    Raises:
        ValueError: unless ``path`` is absent (with its nearest existing ancestor a folder),
            an empty folder or a model directory.
    """
    if not os.path.lexists(path):
        parent = os.path.dirname(os.path.abspath(path))
        while not os.path.lexists(parent):
            parent = os.path.dirname(parent)
        if not os.path.isdir(parent):
            raise ValueError(f"{path}: {parent} is not a folder")
        return
    if os.path.islink(path):
        raise ValueError(f"{path}: is a symbolic link; refusing to replace it")
    if not os.path.isdir(path):
        raise ValueError(f"{path}: is a file, not a model directory; refusing to replace it")
    names = sorted(os.listdir(path))
    if names and not is_model_dir(path):
        shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        raise ValueError(f"{path}: not a vmonf model directory (it holds {shown}); refusing "
                         "to replace it (only a model directory or an empty folder is "
                         "replaced)")


def save(path, tree, manifest: dict) -> None:
    """Write a model directory at ``path`` (see the module docstring).

    Args:
        path: the model directory; if it exists it must be a model directory or empty.
        tree: ``{"params": ..., "state": ...}`` (pytrees of arrays; a state without arrays
            is stored as None, as format 2 always did).
        manifest: the manifest (JSON-serialisable; numpy values and tuples allowed).

    Raises:
        ValueError: ``path`` may not be replaced, or the model is one that ``load`` would
            refuse (the manifest breaks the schema, or the arrays do not match the
            architecture its settings describe, e.g. after ``set_params``); checked before
            anything is written.
    """
    path = os.path.abspath(path)
    text = json.dumps(manifest, indent=1, default=outputs.json_default)
    try:
        parsed = json.loads(text)
        check_manifest(parsed)
        built = _build(parsed, "the manifest")
        ckpt.compare_shapes(_shapes_of(tree), _stored(built.template), "the fitted arrays")
    except ValueError as err:
        raise ValueError(f"cannot save this model: {atomic.first_line(err).removeprefix(PREFIX)}"
                         " (after set_params, fit again before saving)") from None
    check_replaceable(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with atomic.writing(path) as tmp:
        try:
            ckpt.save(tmp, _shapes_of(tree), {})
            with open(os.path.join(tmp, MANIFEST), "w") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
        except OSError as err:  # a full disk: one error naming the model, nothing replaced
            raise OSError(err.errno, f"cannot save the model ({err.strerror or err})",
                          path) from None
        check_replaceable(path)  # again: it may have changed while we wrote
        atomic.swap_dir(tmp, path)


def _stored(tree):
    """``tree`` as stored: a state without arrays is None (see ``save``)."""
    return {"params": tree[0], "state": tree[1] if jax.tree.leaves(tree[1]) else None}


def _shapes_of(tree):
    """A ``{"params", "state"}`` tree as stored (a state without arrays is None)."""
    return {"params": tree["params"],
            "state": tree["state"] if jax.tree.leaves(tree["state"]) else None}


# -- loading ------------------------------------------------------------------------------
def damaged(where, problem) -> ValueError:
    """The error of a damaged model directory: ``where`` (a path) and what is wrong."""
    return ValueError(f"{PREFIX}{where}: {problem}")


class _Built(NamedTuple):
    settings: dict
    config: object
    preprocessor: object
    template: tuple


def _build(m, where):
    """Settings, ``FitConfig``, preprocessor and array template of the checked manifest ``m``.

    Raises:
        ValueError: ``damaged(where, ...)`` naming what the model cannot be built from.
    """
    settings = recorded_settings({k: tuple(v) if isinstance(v, list) else v
                                  for k, v in m["estimator"].items()})  # JSON: lists
    try:
        config = fit_config(settings, m["dim"], m["training"].get("n_components"),
                            m["training"].get("base"))
    except Exception as err:  # untrusted values reach the constructors: any failure is damage
        raise damaged(where, f"estimator: {atomic.first_line(err)}") from None
    try:
        pre = preprocessor_from_dict(m["preprocessing"])
    except Exception as err:  # as above
        raise damaged(where, f"preprocessing: {atomic.first_line(err)}") from None
    if pre.dim != m["dim"] or pre.name != settings["preprocess"]:
        raise damaged(where, f"preprocessing is {pre.name!r} for {pre.dim} columns; the "
                             f"estimator says {settings['preprocess']!r} for {m['dim']}")
    problem = check_numbers(pre, m["training"].get("temperature"))
    if problem:
        raise damaged(where, problem)
    return _Built(settings, config, pre, param_template(config.model))  # checked by fit_config


TEMPERATURE_RANGE = (1e-30, 1e30)
"""Temperatures of q(k|x) that float32 arithmetic can divide by without inf or NaN."""


def check_numbers(pre, temperature):
    """What makes stored numbers give inf or NaN in float32 maths, or None.

    The standardisation's means must lie within float32's range and each scale between the
    floor that fitting uses (``SPREAD_FLOOR * max(1, |mean|)``) and float32's largest value;
    the temperature within ``TEMPERATURE_RANGE``.
    """
    mean, scale = getattr(pre, "mean", None), getattr(pre, "scale", None)
    if mean is not None and scale is not None:
        floor = SPREAD_FLOOR * np.maximum(1.0, np.abs(mean)) * (1 - 1e-6)
        for j in range(len(mean)):
            if abs(mean[j]) > FLOAT32_MAX:
                return (f"preprocessing: mean[{j}] = {mean[j]:.6g} is outside the float32 "
                        f"range (|x| <= {FLOAT32_MAX:.4g})")
            if not floor[j] <= scale[j] <= FLOAT32_MAX:
                return (f"preprocessing: scale[{j}] = {scale[j]:.6g} is outside "
                        f"[{floor[j]:.6g}, {FLOAT32_MAX:.4g}] (the floor fitting uses, and "
                        "float32's range): scores would be infinite or NaN")
    lo, hi = TEMPERATURE_RANGE
    if temperature is not None and not lo <= temperature <= hi:
        return (f"training.temperature = {temperature:.6g} is outside [{lo:g}, {hi:g}]: q(k|x) "
                "would be NaN in float32")
    return None


def read_manifest(found, path):
    """Read and check the manifest of the model directory ``found`` (named ``path``).

    Raises:
        ValueError: not a model directory, or a damaged one.
    """
    if not os.path.isdir(found):
        raise ValueError(f"{path}: not a VMoNF model directory (not a directory)")
    man_path = os.path.join(found, MANIFEST)
    if not os.path.lexists(man_path):
        raise ValueError(f"{path}: not a VMoNF model directory (no {MANIFEST})")
    try:
        manifest = atomic.read_json(man_path, LIMITS["manifest_bytes"])
        check_manifest(manifest)
    except Invalid as err:
        raise damaged(os.path.join(path, MANIFEST), err) from None
    except (ValueError, OSError) as err:
        raise damaged(os.path.join(path, MANIFEST), atomic.first_line(err)) from None
    return manifest


def load(path) -> Loaded:
    """Read the model directory ``path``, checking it all.

    The directory is read under a shared lock (``files.atomic.reading``), so a concurrent
    ``save`` over it waits, and the manifest and the arrays always come from one model. A
    directory left under its temporary name by a save that died between its two renames is
    recovered first.

    Args:
        path: the model directory.

    Returns:
        The estimator's parameters (all of them: defaults where the manifest has none), their
        ``FitConfig``, the preprocessor, the parameters, the flow state (no arrays without
        batch-norm), the temperature of q(k|x) for them (the schedule's last T in models
        saved before it was recorded) and the manifest.

    Raises:
        ValueError: not a model directory, or a damaged one (the message names the field).
    """
    try:
        with atomic.reading(path, MANIFEST) as found:
            if found is None:
                raise ValueError(f"{path}: not a VMoNF model directory (no such model "
                                 "directory)")
            return _load(found, path)
    except NotADirectoryError as err:
        if err.filename != str(path):  # a file inside the folder: _load names it
            raise
        what = ("a link to nothing, " if not os.path.exists(path)
                else "a file, " if os.path.isfile(path) else "")
        raise ValueError(f"{path}: not a VMoNF model directory ({what}not a folder)") from None


def _load(found, path):
    m = read_manifest(found, path)
    built = _build(m, os.path.join(path, MANIFEST))
    state_dir = os.path.join(path, STATE)
    if os.path.islink(os.path.join(found, STATE)):
        raise damaged(state_dir, "is a symbolic link; a model directory holds only plain "
                                 "files and folders")
    try:
        tree, _ = ckpt.restore(found, _stored(built.template))
    except FileNotFoundError:
        raise damaged(state_dir, "the checkpoint is missing") from None
    except (ValueError, OSError) as err:
        raise damaged(state_dir, atomic.first_line(err)) from None
    for p, a in jax.tree_util.tree_leaves_with_path(tree):
        if not np.all(np.isfinite(np.asarray(a))):
            raise damaged(state_dir, f"array {jax.tree_util.keystr(p)} holds non-finite "
                                     "values")
    temperature = m["training"].get("temperature")
    if temperature is None:
        temperature = built.config.final_temperature()
    return Loaded(built.settings, built.config, built.preprocessor, tree["params"],
                  tree["state"] or built.template[1], float(temperature), m)
