"""The schema of a model directory's manifest: types, ranges and documented limits.

``check_manifest`` validates a parsed ``manifest.json`` before anything is built from it
(the estimator's parameters by their rows of ``parameters.PARAMS``); ``check_dim`` and
``check_size`` apply the limits to a fit before anything is allocated. Every failure is an
``Invalid`` (a ``ValueError``) whose message starts with the field's name.
"""

import functools
import math

import numpy as np

from vmonf_jax.files import atomic
from vmonf_jax.model import registry
from vmonf_jax.spec import parameters
from vmonf_jax.spec.kinds import BIG as _BIG
from vmonf_jax.spec.kinds import Int, Optional, Real, is_int, is_num
from vmonf_jax.spec.kinds import show as _show
from vmonf_jax.spec.parameters import BY_NAME

FORMAT_VERSION = 2  # 2: split coupling with one two-headed network (0.2.0)
LIMITS = {
    **parameters.LIMITS, "dim": 1_000_000, "parameters": 2**30, "history": 200_000,
    "manifest_bytes": atomic.MAX_JSON_BYTES,
}
"""Documented caps on what a model (and so a manifest) may describe (docs/api.md)."""
_TOP = ("format_version", "library_version", "estimator", "dim", "preprocessing", "classes",
        "training", "history")
_OPTIONAL_TOP = ("feature_names",)  # absent in models saved before it was recorded
_NUMBERS = ("loss", "elbo", "loglik", "T")  # history fields that are always numbers


class Invalid(ValueError):
    """A value that breaks the schema; the message starts with the field's name."""


# -- schema -------------------------------------------------------------------------------
def _int(lo, hi):
    return Int(lo, hi).check


def _scalar(v):
    if v is None or isinstance(v, bool | str) and len(str(v)) <= 200 or is_int(v):
        return None
    return Real().check(v) if is_num(v) else f"must be a number, string or null, got {_show(v)}"


def _check(field, v, rule):
    problem = rule(v)
    if problem:
        raise Invalid(f"{field} {problem}")


def check_dim(dim: int) -> None:
    """Check a data dimension against ``LIMITS["dim"]`` before fitting.

    Raises:
        ValueError: naming the limit and the value.
    """
    _check("data dimension", dim, _int(1, LIMITS["dim"]))


@functools.lru_cache(maxsize=8)
def param_template(model):
    """``jax.eval_shape`` of ``model.init``: ``(params, state)`` shapes, nothing allocated.

    Raises:
        Invalid: the architecture has more than ``LIMITS["parameters"]`` parameters.
    """
    import jax

    template = jax.eval_shape(lambda: model.init(jax.random.key(0)))
    size = sum(math.prod(a.shape) for a in jax.tree.leaves(template))
    if size > LIMITS["parameters"]:
        raise Invalid(f"the architecture has {size} parameters, more than the limit of "
                      f"{LIMITS['parameters']}")
    return template


MAX_NAME = 1000
"""Longest column name a model stores (``feature_names``)."""


def check_feature_names(names, dim) -> None:
    """Check column names as a manifest stores them (None: none recorded).

    Raises:
        Invalid: not a list of ``dim`` distinct strings of at most ``MAX_NAME`` characters.
    """
    if names is None:
        return
    long = [c for c in names if isinstance(c, str) and len(c) > MAX_NAME] if isinstance(
        names, list | tuple) else []
    if long:
        raise Invalid(f"feature_names: a column name of {len(long[0])} characters, more than "
                      f"the limit of {MAX_NAME} ({_show(long[0])})")
    if not (isinstance(names, list) and len(names) == dim
            and all(isinstance(c, str) for c in names) and len(set(names)) == len(names)):
        raise Invalid(f"feature_names must be null or a list of {dim} distinct strings "
                      f"(dim), got {_show(names)}")


def fitted_names(own, given, dim):
    """The column names a fit records: a data frame's (``own``), or ``given``, or None.

    Raises:
        Invalid: names given for a data frame that has its own, or names a manifest cannot
            hold (``check_feature_names``).
    """
    if given is not None and own is not None:
        raise Invalid("X has column names of its own; feature_names is for arrays")
    names = own if given is None else np.asarray(list(given), object)
    check_feature_names(None if names is None else names.tolist(), dim)
    return names


def check_size(model, n_init: int = 1) -> None:
    """Check the parameters a fit allocates against ``LIMITS["parameters"]``.

    The ``n_init`` restarts train together (stacked), so their parameters count together.

    Raises:
        Invalid: the model, or its ``n_init`` stacked copies, exceed the limit.
    """
    import jax

    size = sum(math.prod(a.shape) for a in jax.tree.leaves(param_template(model)))
    if size * n_init > LIMITS["parameters"]:
        raise Invalid(f"n_init={n_init} restarts of {size} parameters train together: "
                      f"{size * n_init} parameters, more than the limit of "
                      f"{LIMITS['parameters']}")


def _check_estimator(est):
    if not isinstance(est, dict):
        raise Invalid(f"estimator must be an object, got {_show(est)}")
    for name, v in est.items():
        if name not in BY_NAME:
            raise Invalid(f"estimator.{name} is not a parameter of this library's VMoNF")
        _check(f"estimator.{name}", v, BY_NAME[name].kind.check)


def _check_entry(field, e, k_max):
    if not (isinstance(e, dict) and len(e) <= 64):
        raise Invalid(f"{field} must be an object of at most 64 fields, got {_show(e)}")
    for key, v in e.items():
        if len(key) > 64:
            raise Invalid(f"{field} has a field name longer than 64 characters")
        if key in ("restart", "epoch"):
            _check(f"{field}.{key}", v, _int(0, _BIG))
        elif key == "phase" or isinstance(v, str):
            if not (isinstance(v, str) and len(v) <= 64):
                raise Invalid(f"{field}.{key} must be a short string, got {_show(v)}")
        elif isinstance(v, list | tuple):
            if len(v) > k_max or not all(is_num(x) for x in v):
                raise Invalid(f"{field}.{key} must be a list of at most {k_max} numbers, got "
                              f"{_show(v)}")
        elif not (is_num(v) or v is None and key not in _NUMBERS):
            raise Invalid(f"{field}.{key} must be a number, got {_show(v)}")


def check_manifest(m) -> None:
    """Check a parsed manifest against the schema and ``LIMITS``.

    Args:
        m: the parsed JSON.

    Raises:
        Invalid: the first problem, naming its field.
    """
    if not isinstance(m, dict):
        raise Invalid(f"the manifest must be a JSON object, got {type(m).__name__}")
    if "format_version" not in m:
        raise Invalid("format_version is missing")
    fv = m["format_version"]
    if not (is_int(fv) and fv == FORMAT_VERSION):
        raise Invalid(f"format_version {_show(fv)} is unknown (this library reads "
                      f"{FORMAT_VERSION})")
    for key in m:
        if key not in _TOP + _OPTIONAL_TOP:
            raise Invalid(f"{key} is not a manifest field")
    for key in _TOP:
        if key not in m:
            raise Invalid(f"{key} is missing")
    if not (isinstance(m["library_version"], str) and len(m["library_version"]) <= 64):
        raise Invalid(f"library_version must be a short string, got "
                      f"{_show(m['library_version'])}")
    _check_estimator(m["estimator"])
    _check("dim", m["dim"], _int(1, LIMITS["dim"]))
    if not isinstance(m["preprocessing"], dict):
        raise Invalid(f"preprocessing must be an object, got {_show(m['preprocessing'])}")
    k_max = m["estimator"].get("n_components", LIMITS["n_components"])
    classes = m["classes"]
    if classes is not None and not (
            isinstance(classes, list) and len(classes) <= k_max
            and all(not _scalar(c) and c is not None for c in classes)
            and len(set(map(repr, classes))) == len(classes)):
        raise Invalid(f"classes must be null or a list of at most {k_max} distinct numbers or "
                      f"strings, got {_show(classes)}")
    check_feature_names(m.get("feature_names"), m["dim"])
    hist = m["history"]
    if not (isinstance(hist, list) and len(hist) <= LIMITS["history"]):
        raise Invalid(f"history must be a list of at most {LIMITS['history']} epochs, got "
                      f"{_show(hist)}")
    for i, e in enumerate(hist):
        _check_entry(f"history[{i}]", e, k_max)
    t = m["training"]
    if not isinstance(t, dict):
        raise Invalid(f"training must be an object, got {_show(t)}")
    for key in ("epochs_run", "final", "score", "restart"):
        if key not in t:
            raise Invalid(f"training.{key} is missing")
    _check("training.epochs_run", t["epochs_run"], _int(0, LIMITS["history"]))
    _check("training.restart", t["restart"],
           _int(0, max(0, m["estimator"].get("n_init", _BIG) - 1)))
    if not (t["score"] is None or is_num(t["score"])):
        raise Invalid(f"training.score must be a number, got {_show(t['score'])}")
    _check_entry("training.final", t["final"], k_max)
    _check_components(t, k_max, m["estimator"].get("prior"))
    _check("training.consistency", t.get("consistency"), Optional(Real(0)).check)
    _check_base(t.get("base"), m["estimator"].get("base", "normal"))
    _check_budget(t.get("budget"))
    if "temperature" in t and not (is_num(t["temperature"]) and math.isfinite(t["temperature"])
                                   and t["temperature"] > 0):
        raise Invalid(f"training.temperature must be a positive number, got "
                      f"{_show(t['temperature'])}")


def _check_base(base, asked):
    """Check ``training.base``, the flows' base (absent before ``base="auto"``).

    It must name a known base, and the estimator's ``base`` unless that is "auto" (which
    needs it: the base it resolved to).
    """
    if base is None:
        if asked == "auto":
            raise Invalid("training.base is missing: estimator.base 'auto' needs the base it "
                          "resolved to")
        return
    if not (isinstance(base, str) and base in registry.base_names()):
        raise Invalid(f"training.base must be one of {list(registry.base_names())}, got "
                      f"{_show(base)}")
    if asked not in ("auto", base):
        raise Invalid(f"training.base is {base!r} but estimator.base is {asked!r}")


def _check_budget(budget):
    """Check ``training.budget`` (absent before 0.3): epochs, batch size and steps."""
    if budget is None:
        return
    if not (isinstance(budget, dict) and sorted(budget) == ["batch_size", "epochs", "steps"]):
        raise Invalid(f"training.budget must be null or an object of epochs, batch_size and "
                      f"steps, got {_show(budget)}")
    for key, v in budget.items():
        _check(f"training.budget.{key}", v, _int(1, _BIG))


def _check_components(t, k_max, prior):
    """Check the components a training summary records.

    ``training.n_components`` (K kept: at most the estimator's, fewer only with the sparse
    prior), ``usage`` (one number per kept component) and ``dead_components`` (indices).
    """
    k = t.get("n_components", k_max)  # absent in models saved before pruning existed
    _check("training.n_components", k, _int(1, k_max))
    if k != k_max and prior != "sparse":
        raise Invalid(f"training.n_components must equal estimator.n_components ({k_max}) "
                      f"unless the prior is 'sparse', got {k}")
    usage = t.get("usage")
    if usage is not None and not (isinstance(usage, list) and len(usage) == k
                                  and all(is_num(u) and 0 <= u <= 1.001 for u in usage)):
        raise Invalid(f"training.usage must be null or a list of {k} numbers in [0, 1] "
                      f"(training.n_components), got {_show(usage)}")
    dead = t.get("dead_components", [])
    if not (isinstance(dead, list) and len(dead) <= k
            and all(is_int(i) and 0 <= i < k for i in dead)):
        raise Invalid(f"training.dead_components must be a list of component indices in "
                      f"[0, {k}), got {_show(dead)}")
    if dead and usage is None:
        raise Invalid("training.dead_components needs training.usage")
