"""Single normalizing flows: a standard-normal base and a chain of layers, as pure functions.

Example:
    >>> flow = realnvp(dim=2, n_blocks=8, hidden=(8,))
    >>> params = flow.init(jax.random.key(0))
    >>> lp = flow.log_prob(params, x)                       # (n,)
    >>> xs = flow.sample(params, jax.random.key(1), 100)    # (100, 2)

Parameters are a tuple with one pytree per layer, so ``jax.vmap(flow.init)(keys)`` stacks
K flows and ``jax.vmap(flow.log_prob, in_axes=(0, None))`` evaluates them together. A flow
with batch-norm layers returns ``(params, state)`` from ``init``; its methods take ``state=``
and ``train=`` (with ``train=True`` they also return the updated state).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from vmonf_jax._distrax import MultivariateNormalDiag
from vmonf_jax.bijectors import AffineCoupling, BatchNorm, MAFLayer


def _check_sizes(dim, n_blocks, hidden):
    if int(dim) < 1:
        raise ValueError(f"dim must be a positive integer, got {dim}")
    if int(n_blocks) < 1:
        raise ValueError(f"n_blocks must be a positive integer, got {n_blocks}")
    hidden = tuple(int(h) for h in hidden)
    if any(h < 1 for h in hidden):
        raise ValueError(f"hidden sizes must be positive integers, got {hidden}")
    return int(dim), int(n_blocks), hidden


@dataclass(frozen=True)
class Flow:
    """A flow: ``layers[0]`` acts first on base samples, ``layers[-1]`` produces the data."""

    dim: int
    layers: tuple

    @property
    def has_state(self) -> bool:
        return any(layer.stateful for layer in self.layers)

    def init(self, key, dtype=jnp.float32):
        """Parameters (a tuple, one entry per layer); ``(params, state)`` with batch-norm."""
        keys = jax.random.split(key, len(self.layers))
        params = tuple(layer.init(k, dtype) for layer, k in zip(self.layers, keys))
        if not self.has_state:
            return params
        state = tuple(ly.init_state(dtype) if ly.stateful else {} for ly in self.layers)
        return params, state

    def _state(self, state):
        if self.has_state and state is None:
            raise ValueError("this flow has batch-norm layers: pass state=")
        return state if state is not None else ({},) * len(self.layers)

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


def _interleave_batch_norm(blocks, dim, batch_norm):
    if not batch_norm:
        return tuple(blocks)
    layers = []
    for i, b in enumerate(blocks):
        if i:
            layers.append(BatchNorm(dim))
        layers.append(b)
    return tuple(layers)


def realnvp(dim: int, n_blocks: int = 8, hidden: Sequence[int] = (8,), batch_norm=False) -> Flow:
    """RealNVP: ``n_blocks`` affine coupling layers with alternating masks.

    Raises:
        ValueError: ``dim < 2`` (a coupling layer needs two halves) or non-positive sizes.
    """
    dim, n_blocks, hidden = _check_sizes(dim, n_blocks, hidden)
    if dim < 2:
        raise ValueError(f"realnvp needs dim >= 2 (coupling splits the coordinates), got {dim}")
    blocks = [AffineCoupling(dim, hidden, parity=i % 2) for i in range(n_blocks)]
    return Flow(dim, _interleave_batch_norm(blocks, dim, batch_norm))


def maf(dim: int, n_blocks: int = 5, hidden: Sequence[int] = (200,), batch_norm=False) -> Flow:
    """MAF: ``n_blocks`` MADE-conditioned autoregressive layers, ordering reversed per block."""
    dim, n_blocks, hidden = _check_sizes(dim, n_blocks, hidden)
    blocks = [MAFLayer(dim, hidden, reverse=bool(i % 2)) for i in range(n_blocks)]
    return Flow(dim, _interleave_batch_norm(blocks, dim, batch_norm))


FLOWS = {"realnvp": realnvp, "maf": maf}


def make_flow(name: str, dim: int, n_blocks: int, hidden, batch_norm=False) -> Flow:
    """Build a flow by name (``"realnvp"`` or ``"maf"``); unknown names are a ValueError."""
    if name not in FLOWS:
        raise ValueError(f"unknown flow {name!r}; choose one of {sorted(FLOWS)}")
    return FLOWS[name](dim, n_blocks, hidden, batch_norm)
