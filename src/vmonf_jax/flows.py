"""Single normalizing flows: a standard-normal base and a chain of layers, as pure functions.

Factories: ``realnvp`` (affine couplings), ``maf`` (MADE autoregressive layers) and ``glow``
(LU-affine mixing + affine coupling per block), by name through ``make_flow``; each takes
``batch_norm=`` and ``prelu=`` to add those layers between blocks, and ``affine=`` to end the
flow (data side) with a location and a triangular scale: the layer a Gaussian start sets, so
that the flow begins as a full-covariance Gaussian (``train.gaussian_start``).

Example:
    >>> flow = realnvp(dim=2, n_blocks=8, hidden=(8,))
    >>> params, state = flow.init(jax.random.key(0))
    >>> lp = flow.log_prob(params, x)                       # (n,)
    >>> xs = flow.sample(params, jax.random.key(1), 100)    # (100, 2)

``init`` returns ``(params, state)``: parameters are a tuple with one pytree per layer, and so
is the state (running statistics of batch-norm layers; an empty dict for every other layer,
so a flow without batch-norm has a state with no arrays). ``jax.vmap(flow.init)(keys)``
stacks K flows and ``jax.vmap(flow.log_prob, in_axes=(0, None))`` evaluates them together.
Methods take ``state=`` (None is the empty state of a flow without batch-norm) and
``train=`` (with ``train=True`` they also return the updated state).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from vmonf_jax._distrax import MultivariateNormalDiag
from vmonf_jax.bijectors import (
    AffineCoupling,
    BatchNorm,
    LUAffine,
    MAFLayer,
    PReLULayer,
    Whiten,
)


def _check_sizes(dim, n_blocks, hidden):
    if int(dim) < 1:
        raise ValueError(f"dim must be a positive integer, got {dim}")
    if int(n_blocks) < 1:
        raise ValueError(f"n_blocks must be a positive integer, got {n_blocks}")
    hidden = tuple(int(h) for h in hidden)
    if any(h < 1 for h in hidden):
        raise ValueError(f"hidden sizes must be positive integers, got {hidden}")
    return int(dim), int(n_blocks), hidden


def _check_coupling_dim(name, dim):
    if dim < 2:
        raise ValueError(f"{name} needs dim >= 2 (coupling splits the coordinates), got {dim}")


@dataclass(frozen=True)
class Flow:
    """A flow: ``layers[0]`` acts first on base samples, ``layers[-1]`` produces the data."""

    dim: int
    layers: tuple

    @property
    def has_state(self) -> bool:
        """Whether some layer carries running statistics (batch-norm)."""
        return any(layer.stateful for layer in self.layers)

    def init(self, key, dtype=jnp.float32):
        """``(params, state)``: tuples with one entry per layer (state: ``{}`` if stateless)."""
        keys = jax.random.split(key, len(self.layers))
        params = tuple(layer.init(k, dtype) for layer, k in zip(self.layers, keys))
        return params, self.init_state(dtype)

    def init_state(self, dtype=jnp.float32):
        """The state of a fresh flow (no arrays unless it has batch-norm layers)."""
        return tuple(ly.init_state(dtype) if ly.stateful else {} for ly in self.layers)

    def _state(self, state):
        if state is not None:
            return state
        if self.has_state:
            raise ValueError("this flow has batch-norm layers: pass state=")
        return self.init_state()

    def forward(self, params, z, *, state=None):
        """Base -> data: ``(x, log|det dx/dz|)`` per row."""
        state = self._state(state)
        log_det = jnp.zeros(z.shape[:-1], z.dtype)
        for layer, p, s in zip(self.layers, params, state):
            z, ld = layer.bijector(p, s).forward_and_log_det(z)
            log_det = log_det + ld
        return z, log_det

    def inverse(self, params, x, *, state=None, train=False):
        """Data -> base: ``(z, log|det dz/dx|)``; with ``train=True`` also the new state."""
        state = self._state(state)
        log_det = jnp.zeros(x.shape[:-1], x.dtype)
        new_state = list(state)
        for i in reversed(range(len(self.layers))):
            layer = self.layers[i]
            if train and layer.stateful:
                bij, new_state[i] = layer.train_bijector(params[i], state[i], x)
            else:
                bij = layer.bijector(params[i], state[i])
            x, ld = bij.inverse_and_log_det(x)
            log_det = log_det + ld
        return (x, log_det, tuple(new_state)) if train else (x, log_det)

    def _base(self, dtype):
        return MultivariateNormalDiag(jnp.zeros(self.dim, dtype), jnp.ones(self.dim, dtype))

    def log_prob(self, params, x, *, state=None, train=False):
        """Exact log-density per row; ``(log_prob, new_state)`` with ``train=True``."""
        out = self.inverse(params, x, state=state, train=train)
        lp = self._base(x.dtype).log_prob(out[0]) + out[1]
        return (lp, out[2]) if train else lp

    def sample(self, params, key, n: int, *, state=None):
        """``n`` samples, shape (n, dim), in the dtype of the parameters."""
        leaves = jax.tree.leaves(params)
        z = self._base(leaves[0].dtype if leaves else jnp.float32).sample(
            seed=key, sample_shape=(n,))
        return self.forward(params, z, state=state)[0]


def _with_layers_between(blocks, dim, batch_norm, prelu, affine=False):
    """Blocks in order, with batch-norm and/or PReLU layers between consecutive blocks.

    ``affine``: a last layer (the data side) z = W (x - loc), W lower triangular
    (``Whiten``), at the identity until a Gaussian start sets it.
    """
    between = [BatchNorm(dim)] * bool(batch_norm) + [PReLULayer(dim)] * bool(prelu)
    layers = []
    for i, block in enumerate(blocks):
        if i:
            layers.extend(between)
        layers.extend(block)
    if affine:
        layers.append(Whiten(dim))
    return tuple(layers)


def realnvp(dim: int, n_blocks: int = 8, hidden: Sequence[int] = (8,), batch_norm=False,
            prelu=False, affine=False) -> Flow:
    """RealNVP: ``n_blocks`` affine coupling layers with alternating masks.

    Args:
        dim: data dimension (>= 2).
        n_blocks: coupling layers.
        hidden: hidden sizes of the scale and shift networks.
        batch_norm: a batch-norm layer between consecutive blocks.
        prelu: a PReLU layer (learned positive slopes) between consecutive blocks.
        affine: end with a location-scale layer (data side; see ``_with_layers_between``).

    Raises:
        ValueError: ``dim < 2`` (a coupling layer needs two halves) or non-positive sizes.
    """
    dim, n_blocks, hidden = _check_sizes(dim, n_blocks, hidden)
    _check_coupling_dim("realnvp", dim)
    blocks = [[AffineCoupling(dim, hidden, parity=i % 2)] for i in range(n_blocks)]
    return Flow(dim, _with_layers_between(blocks, dim, batch_norm, prelu, affine))


def maf(dim: int, n_blocks: int = 5, hidden: Sequence[int] = (200,), batch_norm=False,
        prelu=False, affine=False) -> Flow:
    """MAF: ``n_blocks`` MADE-conditioned autoregressive layers, ordering reversed per block.

    ``batch_norm``, ``prelu`` and ``affine`` add those layers as in ``realnvp``.
    """
    dim, n_blocks, hidden = _check_sizes(dim, n_blocks, hidden)
    blocks = [[MAFLayer(dim, hidden, reverse=bool(i % 2))] for i in range(n_blocks)]
    return Flow(dim, _with_layers_between(blocks, dim, batch_norm, prelu, affine))


def glow(dim: int, n_blocks: int = 8, hidden: Sequence[int] = (8,), batch_norm=False,
         prelu=False, affine=False) -> Flow:
    """Glow-style flow (Kingma & Dhariwal 2018) on vectors.

    ``n_blocks`` blocks, each an LU-affine mixing layer followed by an affine coupling
    layer (in the data -> base direction, as Glow's step of flow). The LU-affine layer (a
    fixed random permutation seeded by the block index, then a learned LU-parametrised
    linear map and bias) plays the part of Glow's actnorm and invertible 1x1 convolution;
    the coupling halves alternate between blocks as in ``realnvp``. ``batch_norm``,
    ``prelu`` and ``affine`` add those layers as in ``realnvp``.

    Raises:
        ValueError: ``dim < 2`` (a coupling layer needs two halves) or non-positive sizes.
    """
    dim, n_blocks, hidden = _check_sizes(dim, n_blocks, hidden)
    _check_coupling_dim("glow", dim)
    # layers run base -> data, so the data side of each block (the mixing) comes last
    blocks = [[AffineCoupling(dim, hidden, parity=i % 2), LUAffine(dim, seed=i)]
              for i in range(n_blocks)]
    return Flow(dim, _with_layers_between(blocks, dim, batch_norm, prelu, affine))


FLOWS = {"realnvp": realnvp, "maf": maf, "glow": glow}


def make_flow(name: str, dim: int, n_blocks: int = 8, hidden: Sequence[int] = (8,),
              batch_norm=False, prelu=False, affine=False) -> Flow:
    """Build a flow by name (a key of ``FLOWS``).

    Raises:
        ValueError: an unknown name, or sizes the named flow rejects.
    """
    if name not in FLOWS:
        raise ValueError(f"unknown flow {name!r}; choose one of {sorted(FLOWS)}")
    return FLOWS[name](dim, n_blocks, hidden, batch_norm=batch_norm, prelu=prelu,
                       affine=affine)
