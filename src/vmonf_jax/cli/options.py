"""The options of ``vmonf fit`` (one per row of ``parameters.PARAMS``) and argparse types.

Each row gives a parameter's flags, bound (its kind parses the word), help and default, so
``vmonf --help`` answers without importing JAX and the CLI checks what the estimator checks.
"""

import argparse

from vmonf_jax.spec.kinds import Bool, Choice, Int, Optional, Real
from vmonf_jax.spec.parameters import LIMITS, PARAMS

SEED_LIMIT = LIMITS["seed"]
"""Seeds are integers in [0, SEED_LIMIT)."""
MAX_SAMPLES = 1_000_000
"""Most points ``sample -n`` and ``plot -n`` draw (a documented limit)."""


# -- argparse types of the other commands' options ----------------------------------------
seed = Int(0, SEED_LIMIT - 1).parse
n_samples = Int(1, MAX_SAMPLES).parse
nonneg = Real(0).parse


def column_list(text: str) -> list:
    """``--columns``: comma-separated header names or 0-based indices, none empty."""
    cols = [c.strip() for c in text.split(",")]
    if not all(cols):
        raise argparse.ArgumentTypeError(f"{text!r} has an empty column name; give names or "
                                         "0-based indices separated by commas")
    return cols


# -- the fit options: the rows of parameters.PARAMS --------------------------------------
FIT_OPTIONS = PARAMS
"""Every ``VMoNF`` parameter, once: ``vmonf fit``'s options are these rows."""


def _add(parser, p):
    """Add the option of parameter row ``p``; only options given set their parameter."""
    text = p.help if p.const is not None else f"{p.help} (default {_shown(p.default)})"
    kw = {"dest": p.name, "default": argparse.SUPPRESS, "help": text}
    kind = p.kind.kind if isinstance(p.kind, Optional) else p.kind
    if isinstance(p.kind, Bool):
        kw["action"] = argparse.BooleanOptionalAction if p.const is None else "store_const"
        if p.const is not None:
            kw["const"] = p.const
    elif isinstance(kind, Choice):
        kw["choices"] = kind.values
    else:
        kw.update(type=p.kind.parse, metavar=p.metavar)
    parser.add_argument(*p.flags, **kw)


def add_fit_options(parser):
    """Add every row of ``FIT_OPTIONS`` to ``parser`` (defaults: the estimator's)."""
    for p in FIT_OPTIONS:
        _add(parser, p)


def given(args) -> dict:
    """The estimator parameters given on the command line (the others keep their default)."""
    return {p.name: getattr(args, p.name) for p in FIT_OPTIONS if hasattr(args, p.name)}


def _shown(v):
    if isinstance(v, tuple | list):
        return ",".join(map(str, v))
    return "none" if v is None else str(v)
