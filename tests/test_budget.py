"""The training budget (``train.budget.plan``) and ``consistency="auto"``'s rule: fast."""

import math

import numpy as np
import pytest

from vmonf_jax.train import budget, consistency
from vmonf_jax.train.budget import MAX_STEPS, MIN_BATCH, MIN_STEPS, plan


@pytest.mark.parametrize("n", [1, 10, 89, 105, 1_000, 2_176, 20_000, 10**6, 10**8])
@pytest.mark.parametrize("epochs,batch", [(100, 256), (400, 512), (1, 16), (1000, 32)])
def test_the_rule_bounds_batch_and_steps(n, epochs, batch):
    got = plan(n, epochs, batch)
    per_epoch = math.ceil(n / got.batch_size)
    assert got.steps == got.epochs * per_epoch
    assert got.batch_size <= min(batch, n)
    assert got.batch_size <= max(MIN_BATCH, n // 4)  # at least 4 steps an epoch, or MIN_BATCH
    assert got.batch_size == min(batch, n, max(MIN_BATCH, n // 4))
    assert got.epochs >= 1 and got.steps <= max(MAX_STEPS, per_epoch)
    if epochs * per_epoch < MIN_STEPS:  # raised to the floor, no further than needed
        assert MIN_STEPS <= got.steps < MIN_STEPS + per_epoch or got.steps > MAX_STEPS - per_epoch
    elif epochs * per_epoch <= MAX_STEPS:  # a budget already inside the bounds is kept
        assert got.epochs == epochs


def test_small_and_huge_data():
    assert plan(89, 100, 256) == (400, 22, 2000)  # iris's training rows: 5 steps an epoch
    assert plan(10**6, 100, 256) == (25, 256, 25 * 3907)  # 390,700 steps capped at 100,000
    assert plan(2176, 400, 512) == (400, 512, 2000)  # the README's pinwheel: unchanged


def test_explicit_steps_override_epochs_with_or_without_the_rule():
    for auto in (True, False):
        got = plan(89, 100, 256, steps=37, auto=auto)
        assert got.batch_size == 22 and got.epochs == 8 and got.steps == 40  # fewest >= 37
    assert plan(10**6, 100, 256, steps=10**6).steps >= 10**6  # no cap on what was asked


def test_without_the_rule_epochs_and_batch_are_kept():
    assert plan(89, 100, 256, auto=False) == (100, 89, 100)  # a batch is never > the rows
    assert plan(5000, 7, 64, auto=False) == (7, 64, 7 * 79)


@pytest.mark.parametrize("field,value", [("n_rows", 0), ("epochs", 0), ("batch_size", -1),
                                         ("steps", 0)])
def test_bad_budget_arguments_name_the_problem(field, value):
    args = {"n_rows": 10, "epochs": 5, "batch_size": 4, "steps": None, field: value}
    with pytest.raises(ValueError, match=field):
        plan(**args)


def test_the_module_is_jax_free():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(budget))
    roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
             for a in n.names}
    roots |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert roots <= {"math", "typing"}


# -- consistency="auto" -----------------------------------------------------------------
def test_auto_weight_rule():
    assert consistency.auto_weight(2, -0.001) == consistency.AUTO_WEIGHT
    assert consistency.auto_weight(2, 0.95) == 0.0
    assert consistency.auto_weight(consistency.TREE_MAX_DIMS, 0.49) == consistency.AUTO_WEIGHT
    assert consistency.auto_weight(consistency.TREE_MAX_DIMS + 1, 0.0) == 0.0


def test_auto_weight_computes_the_agreement_only_where_it_matters():
    calls = []

    def agreement():
        calls.append(1)
        return 0.0

    assert consistency.auto_weight(784, agreement) == 0.0 and not calls
    assert consistency.auto_weight(2, agreement) == consistency.AUTO_WEIGHT and calls


def test_agreement_tells_rings_from_blobs():
    """Two rings: the graph and k-means disagree (on); three blobs: they agree (off)."""
    from sklearn.datasets import make_blobs, make_circles

    from vmonf_jax.train.step import kmeans_labels

    for x, k, on in ((make_circles(400, factor=0.5, noise=0.05, random_state=0)[0], 2, True),
                     (make_blobs(300, centers=3, random_state=0)[0], 3, False)):
        a = consistency.partition_agreement(x, consistency.knn_graph(x), k, 0, kmeans_labels)
        assert (consistency.auto_weight(2, a) > 0) == on, a
    assert np.isfinite(a)


# -- through the estimator, the manifest and the CLI ------------------------------------
def test_a_fit_runs_its_planned_budget_and_saves_it(tmp_path):
    from sklearn.datasets import make_blobs

    from vmonf_jax import VMoNF
    from vmonf_jax.train.config import validation_rows

    x = make_blobs(80, centers=[[-4, 0], [4, 0]], random_state=0)[0]
    m = VMoNF(n_components=2, n_blocks=1, hidden=(4,), posterior_hidden=(4,), n_init=1,
              warm_epochs=0, steps=30, verbose=False).fit(x)
    assert m.budget_ == plan(80 - validation_rows(80), 100, 256, steps=30) == (8, 17, 32)
    assert len([e for e in m.history_ if e["phase"] == "main"]) <= m.budget_.epochs
    assert m.consistency_ == 0.0  # two blobs: k-means and the graph agree
    m.save(tmp_path / "m")
    back = type(m).load(tmp_path / "m")
    assert back.budget_ == m.budget_ and back.consistency_ == 0.0 and back.steps == 30


def test_auto_and_steps_pass_the_checks_and_the_cli():
    from vmonf_jax import manifest
    from vmonf_jax.cli import options

    manifest.check_params({"consistency": "auto"}, 2)
    with pytest.raises(ValueError, match="consistency"):
        manifest.check_params({"consistency": "sometimes"}, 2)
    with pytest.raises(ValueError, match="steps"):
        manifest._check_estimator({"steps": 0}, {"steps"})
    parse = {o.param: o.type for o in options.FIT_OPTIONS}
    assert parse["consistency"]("auto") == "auto" and parse["consistency"]("0.5") == 0.5
    assert parse["steps"]("none") is None and parse["steps"]("500") == 500
    with pytest.raises(Exception, match="positive"):
        parse["steps"]("0")
