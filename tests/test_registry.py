"""A flow and a base registered from outside the package work like built-in ones.

One new factory plus one ``registry`` call each: the estimator, ``vmonf fit``, the model
directory and ``load`` take the new names (issue 22's test of pluggable parts).
"""

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vmonf_jax import VMoNF
from vmonf_jax.cli import main as cli_main
from vmonf_jax.model import registry
from vmonf_jax.model.bijectors import LUAffine, PReLULayer, Whiten
from vmonf_jax.model.flows import Flow


def lu_prelu(dim, n_blocks, hidden, batch_norm=False, prelu=False, affine=False):
    """A test-only flow: LU-affine mixings with PReLU layers between them."""
    layers = []
    for i in range(n_blocks):
        layers += [PReLULayer(dim)] * bool(i) + [LUAffine(dim, seed=i)]
    return Flow(dim, tuple(layers) + (Whiten(dim),) * bool(affine))


@dataclass(frozen=True)
class LaplaceBase:
    """A test-only base: independent standard Laplace marginals, no parameters."""

    def init(self, dtype):
        return None

    def log_prob(self, params, z):
        return (-jnp.abs(z) - jnp.log(2.0)).sum(-1)

    def sample(self, params, key, n, dim, dtype):
        return jax.random.laplace(key, (n, dim), dtype)


@pytest.fixture
def registered():
    registry.register_flow("lu_prelu", lu_prelu)
    registry.register_base("laplace", LaplaceBase())
    yield
    registry.FLOWS.pop("lu_prelu")
    registry.BASES.pop("laplace")


X = np.random.default_rng(0).normal(size=(120, 2)) * [1.0, 3.0] + [0.0, 1.0]
SMALL = dict(n_components=2, n_blocks=2, posterior_hidden=(4,), n_init=1, warm_epochs=2,
             epochs=3, verbose=False)


def test_a_registered_flow_and_base_fit_save_and_load(registered, tmp_path):
    m = VMoNF(flow="lu_prelu", base="laplace", **SMALL).fit(X)
    assert isinstance(m.model_.flow.base, LaplaceBase)
    assert [type(ly).__name__ for ly in m.model_.flow.layers] == [
        "LUAffine", "PReLULayer", "LUAffine", "Whiten"]  # a Gaussian init: affine=True
    assert np.isfinite(m.score(X))
    m.save(tmp_path / "m")
    back = VMoNF.load(tmp_path / "m")
    np.testing.assert_allclose(back.score_samples(X), m.score_samples(X), rtol=1e-6)


def test_the_cli_takes_a_registered_flow(registered, tmp_path, capsys):
    data = tmp_path / "x.csv"
    np.savetxt(data, X, delimiter=",")
    out = tmp_path / "model"
    argv = ["fit", str(data), "--out", str(out), "--flow", "lu_prelu", "--base", "laplace",
            "-k", "2", "--blocks", "2", "--posterior-hidden", "4", "--n-init", "1",
            "--warm-epochs", "2", "--epochs", "3", "--quiet"]
    assert cli_main(argv) == 0
    assert cli_main(["info", str(out)]) == 0
    assert "lu_prelu" in capsys.readouterr().out
    assert VMoNF.load(out).flow == "lu_prelu"


def test_names_are_checked_and_unknown_ones_refused():
    with pytest.raises(ValueError, match="flow must be one of"):
        VMoNF(flow="lu_prelu", **SMALL).fit(X)  # not registered here
    with pytest.raises(ValueError, match="must be an identifier"):
        registry.register_flow("bad name", lu_prelu)
    with pytest.raises(ValueError, match="lacks"):
        registry.register_base("nothing", object())
    with pytest.raises(ValueError, match="bijectors.Layer"):
        Flow(2, (object(),))
