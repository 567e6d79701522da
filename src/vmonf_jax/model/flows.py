"""Single normalizing flows: a base distribution and a chain of layers, as pure functions.

Factories: ``realnvp`` (affine couplings), ``maf`` (MADE autoregressive layers), ``glow``
(LU-affine mixing + affine coupling per block), ``spline`` (rational-quadratic spline
couplings) and ``spline_ar`` (MADE autoregressive splines), by name through ``make_flow``,
which also chooses the base (``bases``: standard normal or Student-t); each takes
``batch_norm=`` and ``prelu=`` to add those layers between blocks, and ``affine=`` to end the
flow (data side) with a location and a triangular scale: the layer a Gaussian start sets, so
that the flow begins as a full-covariance Gaussian (``train.gaussian_start``).

Example:
    >>> flow = realnvp(dim=2, n_blocks=8, hidden=(8,))
    >>> params, state = flow.init(jax.random.key(0))
    >>> lp = flow.log_prob(params, x)                       # (n,)
    >>> xs = flow.sample(params, jax.random.key(1), 100)    # (100, 2)

``init`` returns ``(params, state)``: parameters are a tuple with one pytree per layer (then
the base's, if it has parameters: Student-t), and the state one entry per layer (running
statistics of batch-norm layers; an empty dict for every other layer, so a flow without
batch-norm has a state with no arrays). ``jax.vmap(flow.init)(keys)`` stacks K flows and
``jax.vmap(flow.log_prob, in_axes=(0, None))`` evaluates them together. Methods take
``state=`` (None is the empty state of a flow without batch-norm) and ``train=`` (with
``train=True`` they also return the updated state).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import jax
import jax.numpy as jnp

from vmonf_jax.model import registry
from vmonf_jax.model.bases import NormalBase
from vmonf_jax.model.bijectors import (
    AffineCoupling,
    BatchNorm,
    LUAffine,
    MAFLayer,
    PReLULayer,
    SplineARLayer,
    SplineCoupling,
    Whiten,
)
from vmonf_jax.model.bijectors.layer import Layer


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
        raise ValueError(f"{name} needs at least 2 features (a coupling layer splits them), "
                         f"got n_features = {dim}; flows 'maf' and 'spline_ar' take 1")


@dataclass(frozen=True)
class Flow:
    """A flow: ``layers[0]`` acts first on base samples, ``layers[-1]`` produces the data.

    ``base``: the base distribution (``bases``; the standard normal by default). Its
    parameters, if it has any (Student-t), are one extra entry after the layers'.
    """

    dim: int
    layers: tuple
    base: object = NormalBase()

    def __post_init__(self):
        bad = [layer for layer in self.layers if not isinstance(layer, Layer)]
        if bad:
            raise ValueError(f"flow layers need init() and bijector() and a stateful flag "
                             f"(bijectors.Layer); {bad[0]!r} lacks them")

    @property
    def has_state(self) -> bool:
        """Whether some layer carries running statistics (batch-norm)."""
        return any(layer.stateful for layer in self.layers)

    def init(self, key, dtype=jnp.float32):
        """``(params, state)``: one entry per layer (state: ``{}`` if stateless).

        ``params`` ends with the base's entry if the base has parameters.
        """
        keys = jax.random.split(key, len(self.layers))
        params = tuple(layer.init(k, dtype) for layer, k in zip(self.layers, keys))
        base = self.base.init(dtype)
        return params + (() if base is None else (base,)), self.init_state(dtype)

    def init_state(self, dtype=jnp.float32):
        """The state of a fresh flow (no arrays unless it has batch-norm layers)."""
        return tuple(ly.init_state(dtype) if ly.stateful else {} for ly in self.layers)

    def base_params(self, params):
        """The base distribution's entry of ``params`` (None for the normal base)."""
        return params[len(self.layers)] if len(params) > len(self.layers) else None

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

    def log_prob(self, params, x, *, state=None, train=False):
        """Exact log-density per row; ``(log_prob, new_state)`` with ``train=True``."""
        out = self.inverse(params, x, state=state, train=train)
        lp = self.base.log_prob(self.base_params(params), out[0]) + out[1]
        return (lp, out[2]) if train else lp

    def sample(self, params, key, n: int, *, state=None):
        """``n`` samples, shape (n, dim), in the dtype of the parameters."""
        leaves = jax.tree.leaves(params)
        dtype = leaves[0].dtype if leaves else jnp.float32
        z = self.base.sample(self.base_params(params), key, n, self.dim, dtype)
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


def _check_spline(bins, bound):
    if not (int(bins) == bins and bins >= 1):
        raise ValueError(f"spline bins must be a positive integer, got {bins}")
    if not (math.isfinite(bound) and bound > 0):
        raise ValueError(f"spline bound must be a finite number > 0, got {bound}")
    return int(bins), float(bound)


def spline(dim: int, n_blocks: int = 8, hidden: Sequence[int] = (8,), batch_norm=False,
           prelu=False, affine=False, spline_bins: int = 8, spline_bound: float = 4.0) -> Flow:
    """Neural spline flow (Durkan et al. 2019): rational-quadratic spline couplings.

    ``n_blocks`` ``bijectors.SplineCoupling`` layers, halves alternating as in ``realnvp``.

    Args:
        dim: data dimension (>= 2).
        n_blocks: coupling layers.
        hidden: hidden sizes of the conditioner MLP (tanh).
        batch_norm: a batch-norm layer between consecutive blocks.
        prelu: a PReLU layer between consecutive blocks.
        affine: end with a location-scale layer (as in ``realnvp``).
        spline_bins: bins of each spline.
        spline_bound: the splines act on [-bound, bound] (standardised units), the
            identity outside.

    Raises:
        ValueError: ``dim < 2``, non-positive sizes or bins, a bound not finite and > 0.
    """
    dim, n_blocks, hidden = _check_sizes(dim, n_blocks, hidden)
    _check_coupling_dim("spline", dim)
    bins, bound = _check_spline(spline_bins, spline_bound)
    blocks = [[SplineCoupling(dim, hidden, parity=i % 2, bins=bins, bound=bound)]
              for i in range(n_blocks)]
    return Flow(dim, _with_layers_between(blocks, dim, batch_norm, prelu, affine))


def spline_ar(dim: int, n_blocks: int = 5, hidden: Sequence[int] = (200,), batch_norm=False,
              prelu=False, affine=False, spline_bins: int = 8,
              spline_bound: float = 4.0) -> Flow:
    """Autoregressive neural spline flow; takes dim 1.

    ``n_blocks`` MADE-conditioned spline layers (``bijectors.SplineARLayer``), ordering
    reversed per block as in ``maf``.

    ``spline_bins`` and ``spline_bound`` as in ``spline``; the other options as in ``maf``.
    """
    dim, n_blocks, hidden = _check_sizes(dim, n_blocks, hidden)
    bins, bound = _check_spline(spline_bins, spline_bound)
    blocks = [[SplineARLayer(dim, hidden, reverse=bool(i % 2), bins=bins, bound=bound)]
              for i in range(n_blocks)]
    return Flow(dim, _with_layers_between(blocks, dim, batch_norm, prelu, affine))


def make_flow(name: str, dim: int, n_blocks: int = 8, hidden: Sequence[int] = (8,),
              batch_norm=False, prelu=False, affine=False, base: str = "normal",
              spline_bins: int = 8, spline_bound: float = 4.0) -> Flow:
    """Build a flow by name over a base by name (``registry``: built-in or registered).

    ``spline_bins`` and ``spline_bound`` reach the flows whose factory takes them (the
    spline flows).

    Raises:
        ValueError: an unknown name or base, or sizes the named flow rejects.
    """
    factory = registry.flow(name)
    extra = {"spline_bins": spline_bins, "spline_bound": spline_bound}
    takes = registry.flow_options(name)
    flow = factory(dim, n_blocks, hidden, batch_norm=batch_norm, prelu=prelu, affine=affine,
                   **{k: v for k, v in extra.items() if k in takes})
    return replace(flow, base=registry.base(base))
