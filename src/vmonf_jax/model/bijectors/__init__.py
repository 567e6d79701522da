"""Flow layers, one per file.

Each layer holds its static configuration and builds, from a parameter pytree, a distrax
bijector whose ``forward`` maps base -> data and ``inverse`` maps data -> base, both
returning ``(output, log|det J|)`` per row.

Layers with running statistics (batch-norm) are ``stateful``: they also carry a state pytree.
"""

from vmonf_jax.model.bijectors.batchnorm import BatchNorm, BatchNormAffine
from vmonf_jax.model.bijectors.coupling import AffineCoupling
from vmonf_jax.model.bijectors.layer import Layer
from vmonf_jax.model.bijectors.lu import LUAffine
from vmonf_jax.model.bijectors.maf import MAFLayer, MaskedAutoregressiveAffine
from vmonf_jax.model.bijectors.permutation import Permutation, PermutationLayer
from vmonf_jax.model.bijectors.prelu import PReLU, PReLULayer
from vmonf_jax.model.bijectors.spline import SplineCoupling
from vmonf_jax.model.bijectors.spline_ar import MaskedAutoregressiveSpline, SplineARLayer
from vmonf_jax.model.bijectors.whiten import TriangularWhiten, Whiten

__all__ = [
    "AffineCoupling",
    "BatchNorm",
    "BatchNormAffine",
    "Layer",
    "LUAffine",
    "MAFLayer",
    "MaskedAutoregressiveAffine",
    "MaskedAutoregressiveSpline",
    "Permutation",
    "PermutationLayer",
    "PReLU",
    "PReLULayer",
    "SplineARLayer",
    "SplineCoupling",
    "TriangularWhiten",
    "Whiten",
]
