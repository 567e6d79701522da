"""The harness's one JSON helper: plain values from numpy/JAX results, atomic writes."""

import json
import math
import os

import numpy as np

from vmonf_jax.files import outputs


def jsonable(o):
    """``o`` with numpy scalars and arrays as Python values, tuples as lists, dict keys as
    strings and non-finite floats as None (JSON has no NaN)."""
    if isinstance(o, dict):
        return {str(k): jsonable(v) for k, v in o.items()}
    if isinstance(o, list | tuple | np.ndarray):
        return [jsonable(v) for v in (o.tolist() if isinstance(o, np.ndarray) else o)]
    if isinstance(o, np.generic):
        return jsonable(o.item())
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o


def write_json(path, obj) -> None:
    """Write ``jsonable(obj)`` to ``path`` atomically (parents created)."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with outputs.atomic_file(path, "w") as f:
        json.dump(jsonable(obj), f, indent=1)
        f.write("\n")


def read_json(path):
    """The JSON value in ``path``."""
    with open(path) as f:
        return json.load(f)
