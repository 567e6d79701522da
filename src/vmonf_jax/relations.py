"""Columns that are functions of other columns: the rows then lie near a surface.

A continuous density can grow without bound near a hyperplane (a column that is a linear
combination of others, to rounding: blue jays' head length is bill length plus skull size)
or a curved surface (a measurement beside its logarithm: leaf shape), so log-likelihoods
there measure how thin the surface is. ``hygiene`` warns of both; this module finds them.
"""

import numpy as np

COLLINEAR = 1e-5  # smallest correlation eigenvalue below which continuous columns are dependent
COLLINEAR_ROWS = 20_000  # the dependence check reads at most this many rows
COLLINEAR_COLUMNS = 1_000  # and runs only on at most this many continuous columns
CURVED = 1e-5  # share of a column's variance left by a smooth function of another column
CURVED_ROWS = 5_000  # the pairwise check reads at most this many rows
CURVED_COLUMNS = 100  # and runs only on at most this many continuous columns
CURVED_TRIM = 0.01  # the largest gaps left out (a function's steep tails, a stray row)
TRIMMED_CHI2 = 0.924  # mean of a chi-square(1) below its 99th percentile


def dependent(x, cols):
    """``(columns, eigenvalue)`` of a near-exact linear dependence among ``cols``, or None.

    The eigenvector of the columns' correlation matrix with the smallest eigenvalue names
    the columns involved (entries above 0.1). Blue jays' head length is bill length plus
    skull size to the 0.01 of rounding (1.8e-6); the closest of 37 real data sets without
    such a column, breast cancer's radius, perimeter and area, is at 1.3e-4.
    """
    idx = np.flatnonzero(cols)
    rows = x[:COLLINEAR_ROWS, idx]
    if not 2 <= len(idx) <= COLLINEAR_COLUMNS or len(rows) <= len(idx) + 1:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.corrcoef(rows, rowvar=False)
    if not np.all(np.isfinite(corr)):  # a column constant in the rows read
        return None
    eig, vec = np.linalg.eigh(corr)
    if eig[0] >= COLLINEAR:
        return None
    return idx[np.abs(vec[:, 0]) > 0.1], max(float(eig[0]), 0.0)


def curved(x, cols) -> list:
    """``(i, j, share)`` wherever column j of ``cols`` is a smooth function of column i.

    ``share``: the part of j's variance the function leaves, below ``CURVED``; strongest
    first.

    Sorted by column i, each standardised value of column j is compared with the straight
    line through its two neighbours (local linear interpolation: a smooth function leaves
    only its curvature over one spacing, noise leaves itself); the mean squared gap, less
    its largest ``CURVED_TRIM`` (a function's steep tails), over about its value for
    independent unit noise, estimates the share of j's variance no function of i explains.
    Leaf shape holds blade length, width and petiole with their logarithms (5.9e-7 and
    below) and cells its areas with the diameters, areas and volumes derived from them
    (7.8e-11); the other 35 real data sets measured stay at 1e-3 (breast cancer's area
    given its radius) and above.
    """
    idx = np.flatnonzero(cols)
    rows = np.asarray(x[:CURVED_ROWS][:, idx], np.float64)
    spread = rows.std(0)
    if not 2 <= len(idx) <= CURVED_COLUMNS or len(rows) < 20 or not np.all(spread > 0):
        return []
    rows = (rows - rows.mean(0)) / spread
    keep = int(np.ceil((len(rows) - 2) * (1 - CURVED_TRIM)))
    found = []
    for a in range(len(idx)):
        s = rows[np.argsort(rows[:, a], kind="stable")]
        span = s[2:, a] - s[:-2, a]
        w = np.divide(s[1:-1, a] - s[:-2, a], span, out=np.full_like(span, 0.5),
                      where=span > 0)
        sq = (s[1:-1] - (s[:-2] + w[:, None] * (s[2:] - s[:-2]))) ** 2
        share = np.partition(sq, keep - 1, axis=0)[:keep].mean(0) / (1.5 * TRIMMED_CHI2)
        for b in np.flatnonzero(share < CURVED):
            if b != a:
                found.append((int(idx[a]), int(idx[b]), float(share[b])))
    return sorted(found, key=lambda f: f[2])
