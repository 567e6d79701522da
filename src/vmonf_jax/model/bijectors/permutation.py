"""Fixed permutation of coordinates (volume preserving)."""

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from vmonf_jax.model._distrax import Bijector


class Permutation(Bijector):
    """x = z[perm], z = x[argsort(perm)]; log|det| = 0."""

    def __init__(self, perm):
        super().__init__(event_ndims_in=1, is_constant_jacobian=True)
        self._perm = np.asarray(perm)
        self._inv = np.argsort(self._perm)

    def forward_and_log_det(self, z):
        """Base -> data: ``(x, log|det dx/dz|)`` per row."""
        return z[..., self._perm], jnp.zeros(z.shape[:-1], z.dtype)

    def inverse_and_log_det(self, x):
        """Data -> base: ``(z, log|det dz/dx|)`` per row."""
        return x[..., self._inv], jnp.zeros(x.shape[:-1], x.dtype)


@dataclass(frozen=True)
class PermutationLayer:
    """A parameter-free layer; ``perm`` is a tuple (hashable, static). ``reversal(dim)`` flips."""

    perm: tuple[int, ...]
    stateful = False

    @classmethod
    def reversal(cls, dim: int) -> "PermutationLayer":
        """The permutation that reverses ``dim`` coordinates."""
        return cls(tuple(range(dim - 1, -1, -1)))

    @classmethod
    def random(cls, dim: int, seed: int) -> "PermutationLayer":
        """A random permutation of ``dim`` coordinates drawn from ``seed``."""
        return cls(tuple(int(i) for i in np.random.default_rng(seed).permutation(dim)))

    def init(self, key, dtype):
        """No parameters: an empty dict."""
        return {}

    def bijector(self, params, state=None):
        """The distrax bijector of ``params`` (``state`` unused: no running statistics)."""
        return Permutation(self.perm)
