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

    @nn.compact
    def __call__(self, x):
        for h in self.hidden:
            x = self.activation(nn.Dense(h)(x))
        init = nn.initializers.zeros if self.zero_last else nn.initializers.lecun_normal()
        return nn.Dense(self.out, kernel_init=init)(x)


class CouplingNet(nn.Module):
    """The s and t networks of an affine coupling layer, two separate MLPs as in the paper.

    Returns ``(shift, log_scale)``, each of the input's width; the caller bounds the log-scale.
    """

    hidden: Sequence[int]

    @nn.compact
    def __call__(self, x):
        dim = x.shape[-1]
        return MLP(self.hidden, dim, name="t")(x), MLP(self.hidden, dim, name="s")(x)


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


def made_masks(dim: int, hidden: Sequence[int], reverse: bool) -> list[np.ndarray]:
    """Connectivity masks of MADE: hidden >= previous degree, output > last hidden degree.

    The output mask is tiled twice (shift and log-scale heads).
    """
    deg = made_degrees(dim, hidden, reverse)
    masks = [(d_out[None, :] >= d_in[:, None]) for d_in, d_out in zip(deg[:-1], deg[1:])]
    out = deg[0][None, :] > deg[-1][:, None]
    masks.append(np.concatenate([out, out], axis=1))
    return [m.astype(np.float32) for m in masks]


class MaskedDense(nn.Module):
    """Dense layer whose kernel is multiplied by a fixed 0/1 mask."""

    mask: np.ndarray
    zero_init: bool = False

    @nn.compact
    def __call__(self, x):
        init = nn.initializers.zeros if self.zero_init else nn.initializers.lecun_normal()
        kernel = self.param("kernel", init, self.mask.shape)
        bias = self.param("bias", nn.initializers.zeros, (self.mask.shape[1],))
        return x @ (kernel * jnp.asarray(self.mask, kernel.dtype)) + bias


class MADE(nn.Module):
    """Masked autoencoder: maps x to (shift, log_scale) with output i a function of x_<i."""

    dim: int
    hidden: Sequence[int]
    reverse: bool = False
    activation: Callable = nn.relu

    @nn.compact
    def __call__(self, x):
        masks = made_masks(self.dim, self.hidden, self.reverse)
        for m in masks[:-1]:
            x = self.activation(MaskedDense(m)(x))
        out = MaskedDense(masks[-1], zero_init=True)(x)
        return out[..., : self.dim], out[..., self.dim :]
