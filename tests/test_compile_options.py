"""The restarts' initialisation compiles cheaply without changing a seed's weights."""

import jax
import numpy as np
import pytest

from vmonf_jax.model.mixture import Mixture
from vmonf_jax.train.run import ONE_OFF
from vmonf_jax.train.step import init_params


@pytest.mark.parametrize("flow,dim", [("realnvp", 2), ("maf", 5), ("spline", 3)])
def test_one_off_init_equals_the_default_compile_bit_for_bit(flow, dim):
    model = Mixture(dim, 4, flow, n_blocks=2, hidden=(8,))
    keys = jax.random.split(jax.random.key(7), 3)

    def init(k):
        return init_params(model, k)

    cheap = jax.jit(jax.vmap(init), compiler_options=ONE_OFF)(keys)
    default = jax.jit(jax.vmap(init))(keys)
    for a, b in zip(jax.tree.leaves(cheap), jax.tree.leaves(default), strict=True):
        np.testing.assert_array_equal(a, b)
