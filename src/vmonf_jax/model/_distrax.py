"""The one place that imports distrax (it pulls tfp-nightly, whose version cannot be pinned).

Other modules take the pieces they reuse from here, so a distrax or tfp change touches one file.
"""

from distrax import (
    Bijector,
    Chain,
    Inverse,
    LowerUpperTriangularAffine,
    MultivariateNormalDiag,
    RationalQuadraticSpline,
    ScalarAffine,
    SplitCoupling,
)

__all__ = [
    "Bijector",
    "Chain",
    "Inverse",
    "LowerUpperTriangularAffine",
    "MultivariateNormalDiag",
    "RationalQuadraticSpline",
    "ScalarAffine",
    "SplitCoupling",
]
