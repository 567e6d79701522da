"""The parameter table: each parameter defined once, and every consumer derived from it."""

import argparse
import inspect

import pytest

from vmonf_jax import VMoNF
from vmonf_jax.persist import manifest
from vmonf_jax.persist.settings import estimator_defaults, fit_config
from vmonf_jax.spec import kinds, parameters


def test_defaults_pass_their_own_bounds():
    for p in parameters.PARAMS:
        assert p.check(p.default) is None, p.name


def test_estimator_signature_is_the_table():
    sig = inspect.signature(VMoNF)
    assert [(n, q.default) for n, q in sig.parameters.items()] == [
        (p.name, p.default) for p in parameters.PARAMS]
    assert all(q.kind is q.KEYWORD_ONLY for q in sig.parameters.values())
    assert VMoNF().get_params() == estimator_defaults()
    with pytest.raises(TypeError, match="unexpected keyword argument 'epoch'"):
        VMoNF(epoch=3)


def _bad_value(p):
    kind = p.kind.kind if isinstance(p.kind, kinds.Optional | kinds.Auto) else p.kind
    return {kinds.Int: -7, kinds.Real: float("nan"), kinds.Sizes: (0,),
            kinds.Choice: "no-such-choice", kinds.Bool: "yes"}[type(kind)]


@pytest.mark.parametrize("p", parameters.PARAMS, ids=lambda p: p.name)
def test_a_bad_value_is_refused_by_fit_and_by_the_manifest_alike(p):
    bad = _bad_value(p)
    with pytest.raises(ValueError, match=f"^{p.name} must be"):
        fit_config({p.name: bad}, 2)
    with pytest.raises(manifest.Invalid, match=f"^estimator.{p.name} must be"):
        manifest._check_estimator({p.name: bad})


def test_each_row_reaches_its_destination():
    """A non-default value of every model/recipe row arrives in the Mixture or FitConfig."""
    cfg = fit_config({"n_blocks": 3, "hidden": [5, 4], "epochs": 7, "patience": 2,
                      "clip_norm": None, "init": "kmeans"}, 3)
    assert cfg.model.flow.dim == 3 and cfg.epochs == 7 and cfg.patience == 2
    assert cfg.clip_norm is None and cfg.init == "kmeans"
    assert sum(type(ly).__name__ == "AffineCoupling" for ly in cfg.model.flow.layers) == 3
    for p in parameters.PARAMS:
        if p.to == "recipe":
            assert hasattr(cfg, p.name), p.name
    assert fit_config({}, 2).model.flow.layers[-1].__class__.__name__ == "Whiten"


def test_auto_kind_takes_auto_or_its_kind():
    kind = kinds.Auto(kinds.Bool())
    assert kind.parse(" AUTO ") == "auto" and kind.parse("no") is False
    assert kind.parse("1") is True and kind.check("auto") is None and kind.check(True) is None
    assert kind.check("maybe") == 'must be "auto" or true or false, got \'maybe\''
    with pytest.raises(argparse.ArgumentTypeError, match="must be true or false"):
        kind.parse("maybe")
