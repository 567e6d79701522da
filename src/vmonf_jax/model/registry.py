"""Flows and base distributions by name: one entry each; every list of names derives from it.

An entry maps a name to its factory: a ``"module:attribute"`` path (imported on first use,
so this module and the parameter table stay JAX-free) or the object itself. A new flow or
base is one new file plus one entry here, or, from outside the package, one call to
``register_flow`` / ``register_base`` before the model is built; the estimator, ``vmonf
fit``, the model directory's checks and ``load`` then take the name like a built-in one.

A flow factory is called as ``factory(dim, n_blocks, hidden, batch_norm=, prelu=,
affine=)``, plus ``spline_bins=`` and ``spline_bound=`` if its signature names them, and
returns a ``flows.Flow`` (its layers follow ``bijectors.Layer``). A base is an object with
``init(dtype)``, ``log_prob(params, z)`` and ``sample(params, key, n, dim, dtype)``
(``bases.NormalBase``).
"""

import importlib
import inspect

FLOWS = {"realnvp": "vmonf_jax.model.flows:realnvp", "maf": "vmonf_jax.model.flows:maf",
         "glow": "vmonf_jax.model.flows:glow", "spline": "vmonf_jax.model.flows:spline",
         "spline_ar": "vmonf_jax.model.flows:spline_ar"}
BASES = {"normal": "vmonf_jax.model.bases:NORMAL", "student_t": "vmonf_jax.model.bases:STUDENT_T"}


def _register(table, what, name, entry):
    if not (isinstance(name, str) and name.isidentifier()):
        raise ValueError(f"a {what} name must be an identifier, got {name!r}")
    table[name] = entry


def register_flow(name: str, factory) -> None:
    """Make ``factory`` (see the module docstring) the flow called ``name``."""
    if not callable(factory):
        raise ValueError(f"a flow factory must be callable, got {factory!r}")
    _register(FLOWS, "flow", name, factory)


def register_base(name: str, base) -> None:
    """Make ``base`` (see the module docstring) the base distribution called ``name``."""
    missing = [m for m in ("init", "log_prob", "sample") if not callable(getattr(base, m, None))]
    if missing:
        raise ValueError(f"a base needs methods init, log_prob and sample; {base!r} lacks "
                         f"{missing}")
    _register(BASES, "base", name, base)


def flow_names() -> tuple:
    """The flows' names, built-in and registered."""
    return tuple(FLOWS)


def base_names() -> tuple:
    """The bases' names, built-in and registered."""
    return tuple(BASES)


def _resolve(table, what, name):
    if not isinstance(name, str) or name not in table:
        raise ValueError(f"unknown {what} {name!r}; choose one of {sorted(table)}")
    entry = table[name]
    if isinstance(entry, str):
        module, attribute = entry.split(":")
        entry = getattr(importlib.import_module(module), attribute)
    return entry


def flow(name: str):
    """The factory of the flow called ``name``.

    Raises:
        ValueError: an unknown name.
    """
    return _resolve(FLOWS, "flow", name)


def base(name: str):
    """The base distribution called ``name``.

    Raises:
        ValueError: an unknown name.
    """
    return _resolve(BASES, "base", name)


def flow_options(name: str) -> set:
    """The keyword options the flow called ``name`` takes (from its factory's signature)."""
    return set(inspect.signature(flow(name)).parameters)
