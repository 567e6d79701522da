"""Warnings about data that a continuous density fits badly (checked once, at ``fit``).

Constant columns, duplicated rows and integer-valued columns all put probability mass on sets
of volume zero, where a density can grow without bound: the fit still runs (standardisation
floors each spread), but its log-likelihoods then say more about the spike than about the
data. Dequantisation (``dequantize``, ``preprocess.dequantization``) turns integer columns
into continuous ones, constant integer columns included. A column that holds one value in most
rows but varies in the others (a measurement at its detection limit: glass's barium is 0 in 82%
of MASS's ``fgl`` rows) has an atom there; recorded to a fixed number of decimals (barium:
two), ``dequantize="auto"`` spreads it over its grid step, as it does rounded columns
(``preprocess.dequantization``). Columns on wildly
different scales are harmless with standardisation and harmful without it. Rows far out in a
column (``FAR_OUT`` robust deviations from its median: data errors, or heavy tails) cost a
light-tailed density hundreds of nats or more each, enough to decide a mean log-likelihood; the
Student-t base has heavy tails, and ``base="auto"`` takes it for such data (``auto_base``;
docs/results.md, "Outliers and the Student-t base").
"""

import warnings

import numpy as np

from . import relations
from .validation import listed

FEW_LEVELS = 20  # an integer-valued column with at most this many distinct values is discrete
DUPLICATE_SHARE = 0.01  # warn when more than this share of the rows repeats an earlier row
SCALE_RATIO = 1e6  # spreads further apart than this need standardisation
ATOM_SHARE = 0.5  # a column holding one value in more than this share of rows has an atom
ROW_NUMBERS = 20  # rows from which distinct integers packed in a run are row numbers
FAR_OUT = 20.0  # robust deviations (1.4826 x the median absolute deviation) from the median
HEAVY_TAILS = 10.0  # robust deviations no normal sample reaches (P(|z| > 10) ~ 1e-23)
GRID_REPEATS = 10  # rows per distinct value from which a column is a coarse grid (rounded)
FEW_REPEATS = 5  # the same for a column of at most FEW_LEVELS distinct values
GRID_DECIMALS = 6  # a grid step is 10^-k for some k in 0..GRID_DECIMALS (recorded precision)
GRID_GAP = 10  # a grid's closest distinct values are at most this many steps apart


def grid_step(column) -> float | None:
    """The grid ``column`` was recorded on, or None.

    The grid's step is the largest of which every difference of the column's values is a
    whole multiple, the values having at most ``GRID_DECIMALS`` decimals; None for values
    with more decimals, or whose closest distinct values lie more than
    ``GRID_GAP`` steps apart (a few levels written with many decimals are not a grid that
    rounding filled).

    Example: carats recorded to 0.01 give 0.01; integers 1.0; halves 0.5; even numbers 2.0.
    """
    values = np.unique(np.asarray(column, np.float64))
    if len(values) < 2 or np.abs(values).max() >= 1e12:
        return None
    for k in range(GRID_DECIMALS + 1):
        scaled = values * 10.0**k
        ticks = np.diff(np.round(scaled).astype(np.int64))
        if (np.all(np.abs(scaled - np.round(scaled)) <= 1e-9 * np.maximum(1.0, np.abs(scaled)))
                and ticks.min() > 0):
            step = float(np.gcd.reduce(ticks)) * 10.0**-k
            return step if ticks.min() * 10.0**-k <= GRID_GAP * step * (1 + 1e-9) else None
    return None


def is_coarse(column) -> bool:
    """Whether ``column`` is a coarse grid: its rows average many per distinct value.

    At least ``GRID_REPEATS``, or ``FEW_REPEATS`` over at most ``FEW_LEVELS`` values (a dose
    at 9 levels in 79 rows: as discrete as an integer column of few levels, which is
    dequantised at any count).
    """
    levels = len(np.unique(column))
    return len(column) >= (FEW_REPEATS if levels <= FEW_LEVELS else GRID_REPEATS) * levels


def integer_columns(x, most_levels: int | None = None) -> np.ndarray:
    """Indices of the integer-valued columns of ``x`` (n, d).

    ``most_levels``: only those with at most this many distinct values (``FEW_LEVELS``: the
    discrete columns, which ``dequantize="auto"`` dequantises).
    """
    x = np.asarray(x)
    whole = np.all(x == np.round(x), axis=0)
    if most_levels is not None:
        whole &= np.array([len(np.unique(c)) <= most_levels for c in x.T], bool)
    return np.flatnonzero(whole)


def data_warnings(x, preprocess: str, dequantized=(), base: str = "auto",
                  names=None) -> list[str]:
    """The problems of ``x`` (n, d) worth a warning, as messages (empty: none).

    Args:
        x: the training rows, finite.
        preprocess: the estimator's ``preprocess`` (pixel data are discrete by design and
            dequantised by ``"logit-pixels"``, so their levels are not reported).
        dequantized: indices of the columns the preprocessing dequantises (``dequantize``):
            their levels are not reported, and constant ones are named as such.
        base: the estimator's ``base`` (the far-out warning says what it does with them).
        names: the columns' names (a data frame's, a CSV header's), or None: columns are
            named by their 0-based index, and by the name too when there is one.
    """
    x = np.asarray(x)
    out = []
    spread = x.std(0)
    deq = _dequantised(x.shape[1], preprocess, dequantized)
    const = np.flatnonzero((spread == 0) & ~deq)
    if len(const):
        out.append(f"{_subject(const, names, 'are', 'is')} constant: their density is a "
                   "spike of "
                   "the standardisation's floor width (1e-3 times max(1, |value|)), so a "
                   "held-out row that differs there scores very low; drop them (integer "
                   "counts: dequantize=True spreads them over a unit cell)")
    const_deq = np.flatnonzero((spread == 0) & deq)
    if len(const_deq):
        out.append(f"{_subject(const_deq, names, 'are', 'is')} constant: dequantised, their "
                   "density "
                   "spreads over the unit cell [v - 1/2, v + 1/2) of their value v, so "
                   "held-out rows that differ stay finite; they carry no information: drop them")
    counters = _row_numbers(x)
    if counters:
        j = counters[0]
        run = (f"{len(x)} distinct integers from {x[:, j].min():.0f} to "
               f"{x[:, j].max():.0f}")
        head, what, it = ((f"{_subject(counters, names, '', 'holds')} {run}",
                           "an identifier or row number", "not a measurement; drop it")
                          if len(counters) == 1 else
                          (f"{_subject(counters, names, 'number', '')} the rows (column "
                           f"{_column(j, names)} holds {run})", "identifiers or row numbers",
                           "not measurements; drop them"))
        out.append(f"{head}: {what} (R's row names, a saved index), whose density only says "
                   f"how many rows there are, {it}")
    # a repeat is a spike in the columns that stay continuous (dequantised ones spread)
    n_dup = len(x) - len(np.unique(x[:, ~deq], axis=0)) if not deq.all() else 0
    if n_dup > DUPLICATE_SHARE * len(x):
        where = " in the columns not dequantised" if deq.any() else ""
        out.append(f"{n_dup} of {len(x)} rows repeat an earlier row{where}: a density puts "
                   "spikes on repeated points (log-likelihoods grow with training)")
    if preprocess != "logit-pixels":
        discrete = np.setdiff1d(integer_columns(x, FEW_LEVELS), np.flatnonzero(deq))
        discrete = discrete[spread[discrete] > 0]
        if len(discrete):
            out.append(f"{_subject(discrete, names, 'take', 'takes')} a few integer values "
                       "only: a "
                       "continuous density on discrete data is unbounded; dequantize='auto' "
                       "or True adds uniform noise to them in training (log-likelihoods are "
                       "then those of the dequantised values), or drop them")
        varies, skip = spread > 0, deq | np.isin(np.arange(x.shape[1]), discrete)
        atoms = _atoms(x, varies, skip)
        if atoms:
            j, value, share = atoms[0]
            out.append(f"{_subject([a[0] for a in atoms], names, 'hold', 'holds')} one value "
                       f"in more than {ATOM_SHARE:.0%} of the rows (column "
                       f"{_column(j, names)}: {value:.6g} in "
                       f"{share:.0%}): an atom, where a continuous density grows without "
                       "bound, so log-likelihoods "
                       "there measure the spike's width; drop those columns or model the "
                       "atom apart (e.g. an indicator column); dequantize='auto' spreads an "
                       "atom recorded to a fixed number of decimals over its grid step")
        grid = _coarse(x, varies, skip)
        if grid:
            j, levels, step = grid[0]
            out.append(f"{_subject([g[0] for g in grid], names, 'take', 'takes')} few "
                       f"distinct values for their rows (column {_column(j, names)}: "
                       f"{levels} values in {len(x)} rows, "
                       f"{step:.3g} apart or more): rounded measurements or discrete levels, "
                       "where a continuous density can put spikes that held-out rows on the "
                       "same values reward; " + _grid_advice(x, [g[0] for g in grid], names))
        dependent = relations.dependent(x, ~deq & (spread > 0))
        if dependent is not None:
            cols, eig = dependent
            out.append(f"{_subject(cols, names, 'are', 'is')} (nearly) linear combinations of "
                       f"each other (their correlations' smallest eigenvalue is {eig:.2g}): the "
                       "rows lie near a hyperplane, where a density can grow without bound, "
                       "so log-likelihoods measure how thin it is (a Gaussian mixture with a "
                       "tiny covariance regulariser spikes there); drop one of those columns")
        smooth = varies & ~skip & ~np.isin(np.arange(x.shape[1]),
                                           [a[0] for a in atoms] + [g[0] for g in grid])
        out += _curved_warning(x, smooth, () if dependent is None else dependent[0], names)
        far, row, col = _far_out(x, np.ones(x.shape[1], bool))  # dequantised counts too
        if len(far):
            t_auto = auto_base(x, preprocess, dequantized) == "student_t"
            rows = "1 row lies" if len(far) == 1 else f"{len(far)} rows lie"
            out.append(f"{rows} more than {FAR_OUT:.0f} robust deviations from a "
                       f"column's median (row {row}, column {_column(col, names)}: "
                       f"{x[row, col]:.6g}): data "
                       "errors or heavy tails; each costs a density with normal tails hundreds "
                       "of nats or more, enough to decide a mean log-likelihood: check them"
                       + _tails_advice(base, t_auto))
    live = spread[spread > 0]
    if preprocess == "none" and len(live) and live.max() > SCALE_RATIO * live.min():
        out.append(f"column spreads range from {live.min():.3g} to {live.max():.3g} and "
                   "preprocess='none': use preprocess='standardize'")
    return out


def _row_numbers(x) -> list[int]:
    """The columns of n distinct integers within a run of at most 2n: row numbers.

    Of every row (1 to n, in any order) or of a sample of them (a training split), and
    identifiers, whatever their name; judged from ``ROW_NUMBERS`` rows up. Integers that
    measure something repeat long before n of them fit in a run of 2n.
    """
    if len(x) < ROW_NUMBERS:
        return []
    return [int(j) for j in integer_columns(x) if np.ptp(x[:, j]) < 2 * len(x)
            and len(np.unique(x[:, j])) == len(x)]


def _column(j, names=None) -> str:
    """A column as warnings name it: its name if the data have names, else its 0-based index."""
    return f"{j}" if names is None else repr(names[j])


def _subject(cols, names, plural: str, singular: str) -> str:
    """A warning's subject: "columns 0, 2 <plural>", or "column 3 <singular>"."""
    s, verb = ("s", plural) if len(cols) > 1 else ("", singular)
    return f"column{s} {listed(_column(j, names) for j in cols)} {verb}"


def _curved_warning(x, cols, named, names=None) -> list[str]:
    """The warning (or none) about pairs of ``cols`` of which one is a smooth function.

    Pairs within the linearly dependent columns ``named`` are left out: they are warned of.
    """
    named = {int(c) for c in named}
    curved = [(i, j, r) for i, j, r in relations.curved(x, cols) if not {i, j} <= named]
    if not curved:
        return []
    i, j, r = curved[0]
    pairs = dict.fromkeys(tuple(sorted(c[:2])) for c in curved)
    shown = listed(f"({_column(a, names)}, {_column(b, names)})" for a, b in pairs)
    return [f"column pairs {shown} are (nearly) smooth functions of one another (column "
            f"{_column(j, names)} given column {_column(i, names)}: {r:.2g} of its "
            "variance left), e.g. a measurement and its logarithm: the rows lie near a "
            "curved surface, where a density can grow without bound, so log-likelihoods "
            "measure how thin it is; keep one column of those so related"]


def commonest(column) -> tuple[float, float]:
    """``(value, share)``: the commonest value of ``column`` and the share of rows holding it.

    A share above ``ATOM_SHARE`` in a column that varies is an atom.
    """
    values, counts = np.unique(np.asarray(column), return_counts=True)
    return values[counts.argmax()], counts.max() / counts.sum()


def _atoms(x, varies, skip) -> list:
    """``(column, commonest value, its share)`` of the atoms among the varying columns.

    An atom: a column (``varies``, not ``skip``) whose commonest value holds more than
    ``ATOM_SHARE`` of the rows.
    """
    out = []
    for j in np.flatnonzero(varies & ~skip):
        value, share = commonest(x[:, j])
        if share > ATOM_SHARE:
            out.append((int(j), value, share))
    return out


def _coarse(x, varies, skip) -> list:
    """``(column, distinct values, least gap)`` of each coarse-grid column.

    Varying columns not in ``skip`` that ``is_coarse`` (diamonds: carat in steps of 0.01,
    273 values in 53,940 rows).
    """
    out = []
    for j in np.flatnonzero(varies & ~skip):
        if is_coarse(x[:, j]):
            values = np.unique(x[:, j])
            out.append((int(j), len(values), float(np.diff(values).min())))
    return out


def _grid_advice(x, cols, names=None) -> str:
    """What the coarse-grid warning advises for ``cols`` (``names``: as ``data_warnings``).

    Dequantisation where they lie on a decimal grid (``grid_step``), categories where their
    levels do not.
    """
    off = [j for j in cols if grid_step(x[:, j]) is None]
    advice = []
    if len(off) < len(cols):
        advice.append("dequantize='auto' or True spreads columns recorded to a fixed number of "
                      "decimals over their grid step (log-likelihoods are then those of the "
                      "dequantised values)")
    if off:
        advice.append(f"{_subject(off, names, 'hold', 'holds')} levels on no decimal grid, "
                      "which "
                      "dequantisation cannot spread: treat them as categories, or drop them")
    return "; ".join(advice)


def _dequantised(d: int, preprocess: str, dequantized) -> np.ndarray:
    """(d,) mask of the columns spread over their cells: ``dequantized``, or every pixel."""
    if preprocess == "logit-pixels":  # every pixel is dequantised over its level's cell
        return np.ones(d, bool)
    return np.isin(np.arange(d), np.asarray(dequantized, int))


def _far_out(x, cols, bound=FAR_OUT):
    """``(rows, row, column)``: the rows far out in a column of ``cols`` (a mask).

    ``row``: the first of them, ``column``: its farthest column (both None without). Far:
    more than ``bound`` robust deviations, |x - median| / (1.4826 MAD), from the column's
    median (columns whose MAD is 0 are skipped).
    """
    x = np.asarray(x, np.float64)
    sub = x[:, cols]
    med = np.median(sub, 0)
    mad = 1.4826 * np.median(np.abs(sub - med), 0)
    live = mad > 0
    z = np.zeros_like(sub)
    z[:, live] = np.abs(sub[:, live] - med[live]) / mad[live]
    far = np.flatnonzero(z.max(1, initial=0.0) > bound)
    if not len(far):
        return far, None, None
    return far, int(far[0]), int(np.flatnonzero(cols)[int(z[far[0]].argmax())])


def auto_base(x, preprocess: str, dequantized=()) -> str:
    """The base ``base="auto"`` fits to the training rows ``x``: ``"student_t"`` or ``"normal"``.

    Student-t where a row lies more than ``HEAVY_TAILS`` robust deviations from the median
    of a column that is neither dequantised nor a pixel (the columns the far-out warning
    reads, at half its bound: tails heavier than any normal sample's, data errors or not),
    else normal. Measured on 17 real data sets (docs/results.md, "Outliers and the
    Student-t base"): where rows lie that far out (6 sets) the Student-t base scores up to
    4.0 nats a row better held out and clusters as well, except on cells; one held-out data
    error cost the normal base 33,767 nats (diamonds). On the 11 others, and on the paper's
    data, the rule keeps the normal base, the paper's. Reading dequantised columns too was
    measured and not adopted (docs/results.md, "Counts far out"): it gained on counts far out
    (pharmacoSmoking) but turned MNIST's faint pixels into heavy tails, and its clustering
    from 0.883 to 0.755.
    """
    x = np.asarray(x)
    keep = ~_dequantised(x.shape[1], preprocess, dequantized)
    return "student_t" if len(_far_out(x, keep, HEAVY_TAILS)[0]) else "normal"


def _tails_advice(base: str, t_auto: bool) -> str:
    """What the far-out warning adds for the estimator's ``base``.

    ``t_auto``: whether ``base="auto"`` takes Student-t bases for these rows (not where
    they lie far out in dequantised columns only, see ``auto_base``).
    """
    if base == "auto" and t_auto:
        return " (base='auto', the default, fits Student-t bases to these data)"
    if base == "auto":
        return (" (only in dequantised columns, where base='auto' keeps normal bases; "
                "base='student_t' fits heavy-tailed ones)")
    if base == "student_t":
        return " (the Student-t bases have heavy tails)"
    return f" (base={base!r}; 'auto' or 'student_t' fit heavy-tailed Student-t bases)"


def warn_about(x, preprocess: str, dequantized=(), base: str = "auto", names=None) -> None:
    """Issue each of ``data_warnings`` as a ``UserWarning``."""
    for message in data_warnings(x, preprocess, dequantized, base, names):
        warnings.warn(message, UserWarning, stacklevel=3)
