"""Seeded toy data sets: pinwheel and two concentric circles.

Every generator returns ``(X, y)`` with ``X`` float32 of shape (n, 2) and ``y`` int64 class
labels, rows shuffled so that mini-batches are not sorted by class.
"""

from collections.abc import Callable

import numpy as np
from sklearn.datasets import make_circles

Dataset = tuple[np.ndarray, np.ndarray]


def pinwheel(
    n_per_wing: int = 512,
    n_wings: int = 5,
    radial_std: float = 0.3,
    tangential_std: float = 0.05,
    rate: float = 0.25,
    seed: int = 0,
) -> Dataset:
    """Pinwheel data of Johnson et al. (2016), ``make_pinwheel_data``.

    Each wing is a Gaussian stretched along the x-axis (centred at radius 1) and rotated by
    its wing's base angle plus ``rate * exp(radius)``, which bends it into a spiral arm.
    Unlike the SVAE code, points are not multiplied by 10 (the unit scale is kept; models
    standardise their inputs anyway).

    Args:
        n_per_wing: points per wing (class).
        n_wings: number of wings.
        radial_std: standard deviation along the arm.
        tangential_std: standard deviation across the arm.
        rate: how strongly the arms bend.
        seed: seed of ``np.random.default_rng``.

    Returns:
        ``(X, y)``: X float32 (n_wings * n_per_wing, 2), y int64 wing index in [0, n_wings).
    """
    if n_per_wing < 1 or n_wings < 1:
        raise ValueError(f"n_per_wing and n_wings must be >= 1, got {n_per_wing}, {n_wings}")
    rng = np.random.default_rng(seed)
    base_angles = np.linspace(0.0, 2.0 * np.pi, n_wings, endpoint=False)
    features = rng.standard_normal((n_wings * n_per_wing, 2)) * [radial_std, tangential_std]
    features[:, 0] += 1.0
    y = np.repeat(np.arange(n_wings), n_per_wing)
    angles = base_angles[y] + rate * np.exp(features[:, 0])
    cos, sin = np.cos(angles), np.sin(angles)
    # Row vector times the rotation [[cos, -sin], [sin, cos]], as in the original einsum.
    X = np.stack(
        [features[:, 0] * cos + features[:, 1] * sin, -features[:, 0] * sin + features[:, 1] * cos],
        axis=1,
    )
    order = rng.permutation(len(y))
    return X[order].astype(np.float32), y[order].astype(np.int64)


def two_circles(n: int = 1024, factor: float = 0.5, noise: float = 0.05, seed: int = 0) -> Dataset:
    """Two concentric circles, as ``sklearn.datasets.make_circles``.

    Args:
        n: total number of points (``n // 2`` on the outer circle, the rest inner).
        factor: inner radius over outer radius (outer radius 1).
        noise: standard deviation of the Gaussian noise added to each coordinate.
        seed: ``random_state`` of ``make_circles``.

    Returns:
        ``(X, y)``: X float32 (n, 2); y int64, 0 = outer circle, 1 = inner circle.
    """
    X, y = make_circles(n_samples=n, factor=factor, noise=noise, random_state=seed)
    return X.astype(np.float32), y.astype(np.int64)


def train_test(
    generator: Callable[..., Dataset], seed: int = 0, **kwargs
) -> tuple[Dataset, Dataset]:
    """Draws independent train and test sets from one generator.

    Two child seeds are derived with ``np.random.SeedSequence(seed).spawn(2)``, so the test
    set is a fresh draw (not a split of the training points) and both are reproducible.

    Args:
        generator: a function such as ``pinwheel`` or ``two_circles`` taking ``seed=``.
        seed: master seed.
        **kwargs: passed to both calls of ``generator``.

    Returns:
        ``((X_train, y_train), (X_test, y_test))``.
    """
    train_seed, test_seed = (
        int(child.generate_state(1)[0]) for child in np.random.SeedSequence(seed).spawn(2)
    )
    return generator(seed=train_seed, **kwargs), generator(seed=test_seed, **kwargs)


def semi_supervised_labels(y: np.ndarray, n_per_class: int, seed: int = 0) -> np.ndarray:
    """Hides all labels but ``n_per_class`` randomly chosen ones per class.

    Args:
        y: int labels of shape (n,); every distinct value is a class.
        n_per_class: labelled points kept for each class.
        seed: seed of ``np.random.default_rng`` choosing the kept points.

    Returns:
        int64 array like ``y`` with -1 for unlabelled points.

    Raises:
        ValueError: if ``y`` is not 1-D or a class has fewer than ``n_per_class`` points.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {y.shape}")
    if n_per_class < 0:
        raise ValueError(f"n_per_class must be >= 0, got {n_per_class}")
    rng = np.random.default_rng(seed)
    y_semi = np.full(y.shape, -1, dtype=np.int64)
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        if len(members) < n_per_class:
            raise ValueError(
                f"class {label} has {len(members)} points, fewer than n_per_class={n_per_class}"
            )
        kept = rng.choice(members, size=n_per_class, replace=False)
        y_semi[kept] = label
    return y_semi
