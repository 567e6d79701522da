"""Conditioner networks (Flax Linen): MLPs for coupling layers and MADE for MAF.

Every conditioner's last layer is zero-initialised, so each flow layer starts as the identity.
"""

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np


class MLP(nn.Module):
    """Plain MLP; the output layer starts at zero unless ``zero_last=False``."""

    hidden: Sequence[int]
    out: int
    activation: Callable = nn.tanh
    zero_last: bool = True

    @staticmethod
    def output_layer(n_hidden: int) -> str:
        """The key of the output layer in the parameters of an MLP of ``n_hidden`` layers.

        Flax names the layers ``Dense_0``, ``Dense_1``, ... in order; saved models store
        these keys, so they stay (``train.prune`` slices this layer's K outputs).
        """
        return f"Dense_{n_hidden}"

    @nn.compact
    def __call__(self, x):
        """Apply the hidden layers (each followed by ``activation``), then the output layer."""
        for h in self.hidden:
            x = self.activation(nn.Dense(h)(x))
        init = nn.initializers.zeros if self.zero_last else nn.initializers.lecun_normal()
        return nn.Dense(self.out, kernel_init=init)(x)


class CouplingNet(nn.Module):
    """The s and t networks of an affine coupling layer: one MLP with two heads.

    A shared trunk (``hidden`` sizes, tanh) and one zero-initialised output layer of width
    ``2 * out``, read as ``(shift, raw log-scale)``; the caller bounds the log-scale. One
    matmul per layer instead of two (the separate s and t MLPs of the paper): fewer, larger
    kernels, and the same size as flowjax's coupling conditioner.
    """

    hidden: Sequence[int]
    out: int

    @nn.compact
    def __call__(self, x):
        """``(shift, raw log-scale)``, each of width ``out``, from the kept coordinates ``x``."""
        h = MLP(self.hidden, 2 * self.out, name="st")(x)
        return h[..., : self.out], h[..., self.out :]


def made_degrees(dim: int, hidden: Sequence[int], reverse: bool) -> list[np.ndarray]:
    """MADE degrees (Germain et al. 2015) of the inputs and of each hidden layer.

    Input i has degree i+1 (reversed when ``reverse``); hidden units cycle through
    1..dim-1, so with width >= dim-1 every output sees every earlier input.
    """
    inputs = np.arange(1, dim + 1)
    degrees = [inputs[::-1] if reverse else inputs]
    for h in hidden:
        degrees.append(np.arange(h) % max(dim - 1, 1) + 1)
    return degrees


def made_masks(dim: int, hidden: Sequence[int], reverse: bool,
               heads: int = 2) -> list[np.ndarray]:
    """Connectivity masks of MADE: hidden >= previous degree, output > last hidden degree.

    The output mask is tiled ``heads`` times (by default two: shift and log-scale).
    """
    deg = made_degrees(dim, hidden, reverse)
    masks = [(d_out[None, :] >= d_in[:, None]) for d_in, d_out in zip(deg[:-1], deg[1:])]
    out = deg[0][None, :] > deg[-1][:, None]
    masks.append(np.concatenate([out] * heads, axis=1))
    return [m.astype(np.float32) for m in masks]


class MaskedDense(nn.Module):
    """Dense layer whose kernel is multiplied by a fixed 0/1 mask."""

    mask: np.ndarray
    zero_init: bool = False

    @nn.compact
    def __call__(self, x):
        """``x @ (kernel * mask) + bias``; the kernel starts at zero when ``zero_init``."""
        init = nn.initializers.zeros if self.zero_init else nn.initializers.lecun_normal()
        kernel = self.param("kernel", init, self.mask.shape)
        bias = self.param("bias", nn.initializers.zeros, (self.mask.shape[1],))
        return x @ (kernel * jnp.asarray(self.mask, kernel.dtype)) + bias


class MADE(nn.Module):
    """Masked autoencoder: maps x to ``heads`` outputs of width ``dim``, output i from x_<i.

    By default two heads, (shift, raw log-scale), for an affine layer; a spline layer asks
    for one head per spline parameter.
    """

    dim: int
    hidden: Sequence[int]
    reverse: bool = False
    activation: Callable = nn.relu
    heads: int = 2

    @nn.compact
    def __call__(self, x):
        """A tuple of ``heads`` arrays of width ``dim``; output i sees only earlier inputs.

        "Earlier" is in the MADE ordering: the coordinate order, or its reverse when ``reverse``.
        """
        masks = made_masks(self.dim, self.hidden, self.reverse, self.heads)
        for m in masks[:-1]:
            x = self.activation(MaskedDense(m)(x))
        out = MaskedDense(masks[-1], zero_init=True)(x)
        return tuple(out[..., h * self.dim:(h + 1) * self.dim] for h in range(self.heads))
