"""Affine coupling layer (RealNVP; Dinh et al. 2017), built on ``distrax.SplitCoupling``."""

from dataclasses import dataclass

from vmonf_jax.model._distrax import ScalarAffine, SplitCoupling
from vmonf_jax.model.bijectors._util import bounded_log_scale, flax_init
from vmonf_jax.model.nets import CouplingNet


@dataclass(frozen=True)
class HalfSplit:
    """The split of a coupling layer, shared by the affine and the spline couplings.

    The coordinates split at ``ceil(dim / 2)``: parity 0 keeps the first part and transforms
    the second, parity 1 the reverse, so consecutive blocks (alternating parities) transform
    every coordinate. Subclasses give ``_net`` (the conditioner, on the kept part) and
    ``bijector``.
    """

    dim: int
    hidden: tuple[int, ...] = (8,)
    parity: int = 0
    stateful = False

    @property
    def split_index(self) -> int:
        """Coordinates ``[:split_index]`` form the first part, the rest the second."""
        return (self.dim + 1) // 2

    @property
    def n_kept(self) -> int:
        """Width of the kept part A (the conditioner's input)."""
        return self.split_index if self.parity == 0 else self.dim - self.split_index

    @property
    def n_moved(self) -> int:
        """Width of the transformed part B."""
        return self.dim - self.n_kept

    def init(self, key, dtype):
        """Conditioner parameters; its zero output layer makes the layer start as the identity."""
        return flax_init(self._net, key, self.n_kept, dtype)

    def _split_coupling(self, conditioner, inner):
        """``distrax.SplitCoupling`` of this split: ``inner(conditioner(kept))`` on part B."""
        return SplitCoupling(split_index=self.split_index, event_ndims=1,
                             conditioner=conditioner, bijector=inner,
                             swap=self.parity == 1)


@dataclass(frozen=True)
class AffineCoupling(HalfSplit):
    """x_B = z_B * exp(s(z_A)) + t(z_A), x_A = z_A, where A is the kept half (``HalfSplit``).

    s and t are the two heads of one MLP on z_A only (``hidden`` sizes, tanh; see
    ``nets.CouplingNet``); s is soft-clamped to (-3, 3). log|det dx/dz| = sum_B s(z_A); the
    inverse z_B = (x_B - t(x_A)) * exp(-s(x_A)) is one pass too, so both directions are fast.
    """

    @property
    def _net(self):
        return CouplingNet(tuple(self.hidden), self.n_moved)

    def bijector(self, params, state=None):
        """The distrax bijector of ``params`` (``state`` unused: no running statistics)."""

        def conditioner(z_kept):
            shift, raw = self._net.apply(params, z_kept)
            return shift, bounded_log_scale(raw)

        return self._split_coupling(
            conditioner, lambda p: ScalarAffine(shift=p[0], log_scale=p[1]))
