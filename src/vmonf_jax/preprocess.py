"""Invertible preprocessing applied before the flows and stored with fitted models.

``transform`` returns the transformed data and ``log_det`` = log|det dY/dX| per row, so
``log p_X(x) = log p_Y(y) + log_det``: log-likelihoods stay in the units the user gave. Fitted
statistics are float64 numpy arrays; outputs are float32. ``to_dict`` is JSON-serialisable and
``preprocessor_from_dict`` restores it.
"""

from typing import Any, ClassVar

import numpy as np
from scipy.special import expit

from vmonf_jax.hygiene import (
    ATOM_SHARE,
    FEW_LEVELS,
    commonest,
    grid_step,
    integer_columns,
    is_coarse,
)

RngLike = np.random.Generator | int | None

SPREAD_FLOOR = 1e-3
"""Standardize: each column's scale is at least ``SPREAD_FLOOR * max(1, |mean|)``."""

PIXEL_LEVELS = 256
LOGIT_LAMBDA = 1e-6
"""``LogitPixels``' default lambda (as in the MAF paper)."""
_LARGEST_PIXEL_VALUE = float(np.nextafter(np.float32(PIXEL_LEVELS), np.float32(0)))
DEQUANTIZE = ("auto", True, False)
"""Settings of ``dequantize``: every column when all are integers, else the integer columns
of at most ``FEW_LEVELS`` values and the columns on a coarse or atomic grid; every
integer-valued column and those grids; or none (``dequantization``)."""


def dequantization(X: np.ndarray, dequantize) -> tuple[np.ndarray, np.ndarray]:
    """``(columns, steps)``: the columns of ``X`` that ``dequantize`` selects, with widths.

    Each column's width is its cell in the data's units, its grid step. ``"auto"``: every
    column when all are integer-valued (data on an integer grid, such as 8-bit images:
    MNIST's 0-255 pixels, whose many levels do not make them continuous; step 1), else the
    integer-valued columns with at most ``FEW_LEVELS`` distinct values (discrete in the
    sense of ``hygiene``; constant integer columns included; step 1) and the varying
    columns recorded on a grid (``hygiene.grid_step``: at most 6 decimals, every difference
    a whole multiple of the step; integers included) that are either coarse
    (``hygiene.is_coarse``: at least ``GRID_REPEATS`` rows per distinct value, or
    ``FEW_REPEATS`` over at most ``FEW_LEVELS`` values; rounded measurements such as
    diamonds' carats to 0.01) or hold an atom (one value in more than
    ``ATOM_SHARE`` of the rows: counts that are mostly 0, as the jobs pending in
    modeldata's ``hpc_data``, or glass's barium, 0.00 in 82% of the rows), with that step:
    a continuous density grows without bound on such values, and a recorded 0.00 means a
    value in [-0.005, 0.005). ``True``: every integer-valued column (step 1) and those
    grids. ``False``: none.

    Raises:
        ValueError: ``dequantize`` is not one of ``DEQUANTIZE``.
    """
    _check_dequantize(dequantize)
    X = np.asarray(X)
    if dequantize is False:
        return np.zeros(0, np.int64), np.zeros(0)
    whole = integer_columns(X)
    if len(whole) == X.shape[1]:
        return whole, np.ones(len(whole))
    steps = {int(j): 1.0 for j in (whole if dequantize is True
                                   else integer_columns(X, FEW_LEVELS))}
    for j in np.flatnonzero(np.ptp(X, axis=0) > 0):
        col = X[:, j]
        if j not in steps and (is_coarse(col) or commonest(col)[1] > ATOM_SHARE):
            step = grid_step(col)  # the costlier test, only where the values repeat
            if step is not None:
                steps[int(j)] = step
    cols = np.array(sorted(steps), np.int64)
    return cols, np.array([steps[j] for j in cols], np.float64)


def dequantized_columns(X: np.ndarray, dequantize) -> np.ndarray:
    """Indices of the columns of ``X`` that ``dequantize`` selects (``dequantization``)."""
    return dequantization(X, dequantize)[0]


class Preprocessor:
    """Base class: input checks, fitted dimension and the dict format."""

    name: ClassVar[str]
    _OPTIONS: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self.dim: int | None = None
        self.dequantized = np.zeros(0, np.int64)  # columns given noise by ``noise_width``
        self.steps = np.zeros(0)  # their cell widths in the data's units

    def fit(self, X: np.ndarray) -> "Preprocessor":
        """Learns what the transform needs from training data ``X`` (n, D); returns self."""
        X = _as_rows(X)
        self.dim = X.shape[1]
        self._fit(X)
        return self

    def transform(self, X: np.ndarray, rng: RngLike = None) -> tuple[np.ndarray, np.ndarray]:
        """Maps ``X`` (n, D) to ``(Y float32 (n, D), log_det float32 (n,))``.

        Args:
            X: data in the user's units.
            rng: randomness for transforms that dequantise (a ``np.random.Generator`` or a
                seed); ``None`` is deterministic. Ignored by the others.
        """
        Y, log_det = self._transform(self._check(X), rng)
        return Y.astype(np.float32), log_det.astype(np.float32)

    def inverse(self, Y: np.ndarray) -> np.ndarray:
        """Maps transformed data ``Y`` (n, D) back to the user's units, float32."""
        return self._inverse(self._check(Y)).astype(np.float32)

    def noise_width(self) -> np.ndarray | None:
        """(D,) widths, in transformed units, of the uniform noise a training step adds.

        Each training batch gets ``(u - 1/2) * width``, u ~ U[0, 1) per entry: for a
        dequantised column the image of unit-width noise in the data's units (0 for the
        others). None: no column is dequantised this way (``LogitPixels`` dequantises inside
        its own transform).
        """
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state; ``preprocessor_from_dict`` restores it."""
        return {"name": self.name, "dim": self.dim, **self._state()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Preprocessor":
        """Restores a preprocessor written by ``to_dict``."""
        if d.get("name") != cls.name:
            raise ValueError(f"expected a {cls.name!r} preprocessor dict, got {d.get('name')!r}")
        options, dim = d.get("options", {}), d.get("dim")
        if not isinstance(options, dict) or set(options) - set(cls._OPTIONS):
            raise ValueError(f"options must be an object with fields among {cls._OPTIONS}, "
                             f"got {options!r:.60}")
        if not (isinstance(dim, int) and not isinstance(dim, bool) and dim >= 1):
            raise ValueError(f"dim must be a positive integer, got {dim!r:.60}")
        obj = cls(**options)
        obj.dim = dim
        obj._load_state(d)
        return obj

    def _check(self, X: np.ndarray) -> np.ndarray:
        if self.dim is None:
            from sklearn.exceptions import NotFittedError  # here: scoring imports no sklearn

            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(X) first")
        X = _as_rows(X)
        if X.shape[1] != self.dim:
            raise ValueError(f"expected {self.dim} columns, got {X.shape[1]}")
        return X

    # Hooks for subclasses.
    def _fit(self, X: np.ndarray) -> None:
        pass

    def _state(self) -> dict[str, Any]:
        return {}

    def _load_state(self, d: dict[str, Any]) -> None:
        pass

    def _transform(self, X: np.ndarray, rng: RngLike) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _inverse(self, Y: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class _Affine(Preprocessor):
    """Base of the per-column affine maps Y = (X - mean) / scale, with dequantisation.

    ``dequantize`` (see ``dequantization``) picks columns that are treated as discrete, each
    with its grid step h (1 for integers): the density is then that of the dequantised
    variable V = X + h (U - 1/2), U ~ U[0, 1) per entry, in the data's units. Training draws
    fresh noise in every batch (``noise_width``); scoring evaluates V's density at the
    recorded value itself, the midpoint of its cell [x - h/2, x + h/2), and ``inverse``
    returns V (rounding to multiples of h gives the values). E_u log p(x + h (u - 1/2)) is a
    lower bound of log P(x) - log h, the discrete log-probability per unit of the data
    (Theis et al. 2016), which the midpoint approximates. ``transform(X, rng)`` adds one
    such draw in the data's units.
    """

    _OPTIONS = ("dequantize",)

    def __init__(self, dequantize=False) -> None:
        super().__init__()
        _check_dequantize(dequantize)
        self.dequantize = dequantize
        self.mean: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    def fit(self, X: np.ndarray) -> "Preprocessor":
        X = _as_rows(X)
        self.dequantized, self.steps = dequantization(X, self.dequantize)
        return super().fit(X)

    def noise_width(self):
        if not len(self.dequantized):
            return None
        width = np.zeros(self.dim)
        width[self.dequantized] = self.steps / self.scale[self.dequantized]
        return width

    def _transform(self, X, rng):
        if rng is not None and len(self.dequantized):
            X = X.copy()
            noise = np.random.default_rng(rng).random((len(X), len(self.dequantized)))
            X[:, self.dequantized] += (noise - 0.5) * self.steps
        log_det = -np.sum(np.log(self.scale))
        return (X - self.mean) / self.scale, np.full(len(X), log_det)

    def _inverse(self, Y):
        return Y * self.scale + self.mean

    def _state(self):
        return {"options": {"dequantize": self.dequantize},
                "dequantized": [int(j) for j in self.dequantized],
                "steps": _to_list(self.steps)}

    def _load_state(self, d):
        cols = d.get("dequantized", [])
        if not (isinstance(cols, list) and all(isinstance(j, int) and not isinstance(j, bool)
                                               and 0 <= j < self.dim for j in cols)
                and len(set(cols)) == len(cols)):
            raise ValueError(f"dequantized must be a list of distinct column indices in "
                             f"[0, {self.dim}), got {cols!r:.60}")
        order = np.argsort(cols)
        self.dequantized = np.asarray(cols, np.int64)[order]
        # models saved before decimal grids dequantised integers only: unit steps
        steps = (_stored_vector(d, "steps", len(cols)) if "steps" in d
                 else np.ones(len(cols)))
        if not np.all(steps > 0):
            raise ValueError(f"steps must be positive, got {_to_list(steps)!r:.60}")
        self.steps = steps[order]


class Identity(_Affine):
    """No preprocessing (``"none"``): Y = X, log_det = 0 (mean 0, scale 1)."""

    name = "none"

    def _fit(self, X):
        self.mean, self.scale = np.zeros(self.dim), np.ones(self.dim)

    def _load_state(self, d):
        super()._load_state(d)
        self._fit(None)


class Standardize(_Affine):
    """Per-column standardisation (``"standardize"``): Y = (X - mean) / scale.

    ``scale`` is the column's standard deviation (of the dequantised values for a
    dequantised column: sqrt(var + h^2/12), so a constant integer column gets the spread of
    its unit cell) floored at ``SPREAD_FLOOR * max(1, |mean|)``, so any other constant
    column maps to finite values instead of dividing by zero. A column whose spread is below
    the floor keeps a standard deviation under 1 after the transform; that affects
    conditioning only, the likelihood stays exact. log_det = -sum(log scale), the same for
    every row.
    """

    name = "standardize"

    def _fit(self, X):
        self.mean = X.mean(axis=0)
        var = X.var(axis=0)
        var[self.dequantized] += self.steps**2 / 12.0  # the variance of h U[0, 1)
        floor = SPREAD_FLOOR * np.maximum(1.0, np.abs(self.mean))
        self.scale = np.maximum(np.sqrt(var), floor)

    def _state(self):
        return {**super()._state(), "mean": _to_list(self.mean), "scale": _to_list(self.scale)}

    def _load_state(self, d):
        super()._load_state(d)
        self.mean = _stored_vector(d, "mean", self.dim)
        self.scale = _stored_vector(d, "scale", self.dim)
        if not np.all(self.scale > 0):
            j = int(np.argmin(self.scale > 0))
            raise ValueError(f"scale[{j}] must be positive, got {self.scale[j]}")


class LogitPixels(Preprocessor):
    """8-bit pixels to logit space (``"logit-pixels"``), as in the MAF paper.

    A pixel value x in [0, 256) is floored to its level, dequantised to v = level + noise
    with noise ~ U[0, 1) in training (``rng`` given) or the midpoint 0.5 when scoring
    (``rng=None``), scaled to y = lam + (1 - 2 lam) v / 256 and mapped to logit(y). log_det is
    taken with respect to v, so likelihoods are densities of dequantised values in
    [0, 256)^D: sum_j [log((1 - 2 lam) / 256) - log y_j - log(1 - y_j)]. ``inverse`` returns
    v (continuous, clipped to [0, 256)); ``np.floor`` of it gives the pixel levels.
    """

    name = "logit-pixels"
    _OPTIONS = ("lam",)

    def __init__(self, lam: float = LOGIT_LAMBDA) -> None:
        super().__init__()
        if not (isinstance(lam, int | float) and 0.0 <= lam < 0.5):
            raise ValueError(f"lam must be in [0, 0.5), got {lam}")
        self.lam = float(lam)

    def _fit(self, X):
        _check_pixels(X)

    def _transform(self, X, rng):
        levels = np.floor(_check_pixels(X))
        noise = 0.5 if rng is None else np.random.default_rng(rng).random(X.shape)
        y = self.lam + (1.0 - 2.0 * self.lam) * (levels + noise) / PIXEL_LEVELS
        log_y, log_1my = np.log(y), np.log1p(-y)
        log_det = X.shape[1] * np.log((1.0 - 2.0 * self.lam) / PIXEL_LEVELS) - np.sum(
            log_y + log_1my, axis=1
        )
        return log_y - log_1my, log_det

    def _inverse(self, Y):
        v = (expit(Y) - self.lam) / (1.0 - 2.0 * self.lam) * PIXEL_LEVELS
        return np.clip(v, 0.0, _LARGEST_PIXEL_VALUE)

    def _state(self):
        return {"options": {"lam": self.lam}}


PREPROCESSORS: dict[str, type[Preprocessor]] = {
    cls.name: cls for cls in (Identity, Standardize, LogitPixels)
}


def make_preprocessor(name: str, dequantize=False) -> Preprocessor:
    """Returns a new, unfitted preprocessor by name (see ``PREPROCESSORS``).

    ``dequantize``: the columns to dequantise (``dequantization``); ignored by
    ``"logit-pixels"``, which dequantises every pixel itself.
    """
    cls = _lookup(name)
    return cls(dequantize=dequantize) if "dequantize" in cls._OPTIONS else cls()


def preprocessor_from_dict(d: dict[str, Any]) -> Preprocessor:
    """Restores any preprocessor from its ``to_dict`` output.

    Raises:
        ValueError: an unknown name or a stored state of the wrong type, length or value
            (e.g. a non-finite mean or a scale <= 0), naming the field.
    """
    if not isinstance(d, dict):
        raise ValueError(f"expected an object, got {d!r:.60}")
    return _lookup(d.get("name")).from_dict(d)


def _lookup(name: Any) -> type[Preprocessor]:
    if name not in PREPROCESSORS:
        raise ValueError(
            f"unknown preprocessing {name!r}; accepted: {', '.join(map(repr, PREPROCESSORS))}"
        )
    return PREPROCESSORS[name]


def _as_rows(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"expected a non-empty 2-D array (n, D), got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("data contain NaN or infinite values")
    return X


def _check_dequantize(v: Any) -> None:
    if not (isinstance(v, bool) or isinstance(v, str) and v == "auto"):
        raise ValueError(f"dequantize must be 'auto', True or False, got {v!r:.60}")


def _check_pixels(X: np.ndarray) -> np.ndarray:
    if X.min() < 0 or X.max() >= PIXEL_LEVELS:
        raise ValueError(
            f"pixel values must lie in [0, {PIXEL_LEVELS}), got [{X.min()}, {X.max()}]"
        )
    return X


def _stored_vector(d: dict[str, Any], key: str, dim: int) -> np.ndarray:
    """``d[key]`` as a float64 vector of ``dim`` finite numbers, or a ValueError naming it."""
    v = d.get(key)
    if not (isinstance(v, list) and len(v) == dim
            and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v)):
        raise ValueError(f"{key} must be a list of {dim} numbers, got {v!r:.60}")
    a = np.asarray(v, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        j = int(np.argmin(np.isfinite(a)))
        raise ValueError(f"{key}[{j}] must be finite, got {a[j]}")
    return a


def _to_list(a: np.ndarray | None) -> list[float] | None:
    return None if a is None else [float(v) for v in a]
