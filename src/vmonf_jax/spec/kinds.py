"""Value kinds of the estimator's parameters: one bound, used to check and to parse.

A kind checks a value (``check(v)``: a problem such as ``"must be positive, got 0"``, or
None), parses a command-line word (``parse(text)``, raising ``argparse.ArgumentTypeError``
with the same words) and converts a valid value to what the model takes (``convert``). So
the estimator, ``vmonf fit`` and the model directory's schema share each bound. No JAX.
"""

import argparse
import math
import numbers
from dataclasses import dataclass

BIG = 10**12
"""Loose upper bound on counts that size nothing (epochs, batch size, ...)."""


def is_int(v) -> bool:
    """An integer (Python or numpy), not a bool."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def is_num(v) -> bool:
    """A real number (Python or numpy), not a bool."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def show(v) -> str:
    """``repr(v)`` cut to 60 characters (messages quote untrusted values)."""
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _parse_failure(problem):
    return argparse.ArgumentTypeError(problem)


@dataclass(frozen=True)
class Int:
    """An integer in [lo, hi] (hi None: ``BIG``)."""

    lo: int
    hi: int | None = None

    @property
    def what(self) -> str:
        """The bound in words (messages, help)."""
        if self.hi is not None:
            return f"an integer in [{self.lo}, {self.hi}]"
        return "a positive integer" if self.lo == 1 else f"an integer >= {self.lo}"

    def check(self, v):
        """The problem with ``v`` (``"must be ..., got ..."``), or None."""
        hi = BIG if self.hi is None else self.hi
        if not (is_int(v) and self.lo <= v <= hi):
            return f"must be {self.what}, got {show(v)}"

    def parse(self, text):
        """A command-line word as a value (``argparse.ArgumentTypeError`` if out of bounds)."""
        return _cast_and_check(self, text, int, "an integer")

    def convert(self, v):
        """A valid value as the model and recipe take it."""
        return int(v)


@dataclass(frozen=True)
class Real:
    """A finite number with optional bounds; ``open_lo``/``open_hi`` exclude the bound."""

    lo: float | None = None
    hi: float | None = None
    open_lo: bool = False
    open_hi: bool = False

    @property
    def what(self) -> str:
        """The bound in words (messages, help)."""
        if self.lo == 0 and self.open_lo and self.hi is None:
            return "positive"
        if self.hi is None:
            return f"{'>' if self.open_lo else '>='} {self.lo:g}"
        left, right = "(" if self.open_lo else "[", ")" if self.open_hi else "]"
        return f"in {left}{self.lo:g}, {self.hi:g}{right}"

    def _inside(self, v):
        low = self.lo is None or (v > self.lo if self.open_lo else v >= self.lo)
        high = self.hi is None or (v < self.hi if self.open_hi else v <= self.hi)
        return low and high

    def check(self, v):
        """The problem with ``v`` (``"must be ..., got ..."``), or None."""
        if not (is_num(v) and math.isfinite(v)):
            return f"must be a finite number, got {show(v)}"
        if not self._inside(v):
            return f"must be {self.what}, got {show(v)}"

    def parse(self, text):
        """A command-line word as a value (``argparse.ArgumentTypeError`` if out of bounds)."""
        return _cast_and_check(self, text, float, "a number")

    def convert(self, v):
        """A valid value as the model and recipe take it."""
        return float(v)


@dataclass(frozen=True)
class Sizes:
    """Hidden layer sizes: 1 to ``layers`` integers in [1, ``width``]."""

    layers: int = 8
    width: int = 65536

    def check(self, v):
        """The problem with ``v`` (``"must be ..., got ..."``), or None."""
        if not (isinstance(v, list | tuple) and 1 <= len(v) <= self.layers
                and all(is_int(h) and 1 <= h <= self.width for h in v)):
            return (f"must be a list of 1 to {self.layers} integers in [1, {self.width}], "
                    f"got {show(v)}")

    def parse(self, text):
        """A command-line word as a value (``argparse.ArgumentTypeError`` if out of bounds)."""
        parts = [p.strip() for p in str(text).split(",")]
        try:
            out = tuple(int(p) for p in parts)
        except ValueError:
            raise _parse_failure(f"{text!r} is not a comma-separated list of integers "
                                 "(e.g. 8,8)") from None
        if not out or any(s < 1 for s in out):
            raise _parse_failure(f"layer sizes must be positive, got {text!r}")
        return _checked(self, out)

    def convert(self, v):
        """A valid value as the model and recipe take it."""
        return tuple(int(h) for h in v)


@dataclass(frozen=True)
class Choice:
    """One of the named strings.

    ``source``: a tuple, or a function returning one (names a registry can extend).
    """

    source: object

    @property
    def values(self) -> tuple:
        """The names accepted now."""
        return tuple(self.source() if callable(self.source) else self.source)

    def check(self, v):
        """The problem with ``v`` (``"must be ..., got ..."``), or None."""
        if not (isinstance(v, str) and v in self.values):
            return f"must be one of {list(self.values)}, got {show(v)}"

    def convert(self, v):
        """A valid value as the model and recipe take it."""
        return str(v)


@dataclass(frozen=True)
class Bool:
    """True or False (on the command line a switch, or ``true``/``false``, yes/no, 1/0)."""

    what = "true or false"

    def check(self, v):
        """The problem with ``v`` (``"must be ..., got ..."``), or None."""
        if not isinstance(v, bool):
            return f"must be true or false, got {show(v)}"

    def parse(self, text):
        """A command-line word as a value (``argparse.ArgumentTypeError`` if out of bounds)."""
        word = str(text).strip().lower()
        if word in ("true", "yes", "1"):
            return True
        if word in ("false", "no", "0"):
            return False
        raise _parse_failure(f"must be true or false, got {text!r}")

    def convert(self, v):
        """A valid value as the model and recipe take it."""
        return bool(v)


@dataclass(frozen=True)
class Optional:
    """None (``none`` on the command line) or a value of ``kind``."""

    kind: object

    def check(self, v):
        """The problem with ``v`` (``"must be ..., got ..."``), or None."""
        return None if v is None else self.kind.check(v)

    def parse(self, text):
        """A command-line word as a value (``argparse.ArgumentTypeError`` if out of bounds)."""
        return None if text.strip().lower() == "none" else self.kind.parse(text)

    def convert(self, v):
        """A valid value as the model and recipe take it."""
        return None if v is None else self.kind.convert(v)


@dataclass(frozen=True)
class Auto:
    """``"auto"`` (the library decides from the data; docs/api.md says how) or a ``kind``."""

    kind: object

    def check(self, v):
        """The problem with ``v`` (``"must be ..., got ..."``), or None."""
        if v == "auto" and isinstance(v, str):
            return None
        problem = self.kind.check(v)
        return problem and f"must be \"auto\" or {self.kind.what}, got {show(v)}"

    def parse(self, text):
        """A command-line word as a value (``argparse.ArgumentTypeError`` if out of bounds)."""
        return "auto" if str(text).strip().lower() == "auto" else self.kind.parse(text)

    def convert(self, v):
        """A valid value as the model and recipe take it."""
        return v if v == "auto" else self.kind.convert(v)


def _cast_and_check(kind, text, cast, noun):
    """``cast(text)`` checked against ``kind``; ``ArgumentTypeError`` naming the problem."""
    try:
        v = cast(text)
    except ValueError:
        raise _parse_failure(f"{text!r} is not {noun}") from None
    return _checked(kind, v)


def _checked(kind, v):
    problem = kind.check(v)
    if problem:
        raise _parse_failure(problem)
    return v
