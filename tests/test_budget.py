"""The training budget (``train.budget.plan``) and ``consistency="auto"``'s rule: fast."""

import math

import pytest

from vmonf_jax.train import budget, consistency
from vmonf_jax.train.budget import MAX_STEPS, MIN_BATCH, plan


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
    if epochs * per_epoch <= MAX_STEPS:  # the epochs asked for are never raised
        assert got.epochs == epochs
    else:  # lowered no further than the cap needs
        assert got.epochs == max(1, MAX_STEPS // per_epoch)


def test_small_and_huge_data():
    assert plan(89, 100, 256) == (100, 22, 500)  # iris's training rows: 5 steps an epoch
    assert plan(10**6, 100, 256) == (25, 256, 25 * 3907)  # 390,700 steps capped at 100,000
    assert plan(2176, 400, 512) == (400, 512, 2000)  # the README's pinwheel: unchanged
    assert plan(2176, 3, 512) == (3, 512, 15)  # epochs a user sets are kept


def test_the_warm_start_is_capped_as_the_main_phase():
    assert budget.warm_epochs(89, 200, 22) == 200  # small data: as asked
    assert budget.warm_epochs(10**6, 200, 256) == 25  # 781,400 steps -> 97,700
    assert budget.warm_epochs(10**6, 0, 256) == 0  # none asked: none
    assert budget.warm_epochs(10**8, 200, 256) == 1


def test_a_fit_caps_its_warm_start(monkeypatch):
    """Under early stopping the warm-start epochs obey the step cap (here lowered to 20:
    5 warm epochs of 4 steps, not 10)."""
    from sklearn.datasets import make_blobs

    from vmonf_jax import VMoNF

    monkeypatch.setattr(budget, "MAX_STEPS", 20)
    x = make_blobs(80, centers=[[-4, 0], [4, 0]], random_state=0)[0]
    m = VMoNF(n_components=2, n_blocks=1, hidden=(4,), posterior_hidden=(4,), n_init=1,
              warm_epochs=10, epochs=3, verbose=False).fit(x)
    assert m.budget_.steps == 12  # 3 epochs of 4 steps: under the cap
    assert len([e for e in m.history_ if e["phase"] == "warm"]) == 5


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
    """On (weight 1) up to the tree's column limit, off above (MNIST-like width)."""
    assert consistency.auto_weight(2) == consistency.AUTO_WEIGHT == 1.0
    assert consistency.auto_weight(consistency.TREE_MAX_DIMS) == consistency.AUTO_WEIGHT
    assert consistency.auto_weight(consistency.TREE_MAX_DIMS + 1) == 0.0


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
    assert m.consistency_ == 1.0  # "auto" on two columns
    m.save(tmp_path / "m")
    back = type(m).load(tmp_path / "m")
    assert back.budget_ == m.budget_ and back.consistency_ == 1.0 and back.steps == 30


def test_auto_and_steps_pass_the_checks_and_the_cli():
    from vmonf_jax.cli import options
    from vmonf_jax.persist import manifest
    from vmonf_jax.spec import parameters

    parameters.check({"consistency": "auto"})
    with pytest.raises(ValueError, match="consistency"):
        parameters.check({"consistency": "sometimes"})
    with pytest.raises(ValueError, match="steps"):
        manifest._check_estimator({"steps": 0})
    parse = {o.name: o.kind.parse for o in options.FIT_OPTIONS if o.name in ("consistency",
                                                                             "steps")}
    assert parse["consistency"]("auto") == "auto" and parse["consistency"]("0.5") == 0.5
    assert parse["steps"]("none") is None and parse["steps"]("500") == 500
    with pytest.raises(Exception, match="positive"):
        parse["steps"]("0")


@pytest.mark.parametrize("weight", ["auto", 1.0])
def test_wide_data_under_auto_partition_by_the_graph_with_a_kmeans_rival(monkeypatch, weight):
    """Above the column limit "auto" turns the penalty off; the graph then only partitions,
    and each restart's Gaussian start gets a k-means partition as a rival (MNIST: its
    mixture fits 13-18 nats a row better and clusters 0.88 against 0.85-0.86; docs/results.md).
    With the penalty on, the spectral partition stands alone."""
    from sklearn.datasets import make_blobs

    from vmonf_jax import VMoNF
    from vmonf_jax.train import gaussian_start

    seen = []
    fit_gaussians = gaussian_start.fit_gaussians
    monkeypatch.setattr(gaussian_start, "fit_gaussians",
                        lambda *a: seen.append(a[6] is not None) or fit_gaussians(*a))
    dim = consistency.TREE_MAX_DIMS + 1
    x = make_blobs(60, n_features=dim, centers=2, random_state=0)[0]
    m = VMoNF(n_components=2, n_blocks=1, hidden=(4,), posterior_hidden=(4,), n_init=2,
              warm_epochs=1, steps=2, consistency=weight, verbose=False).fit(x)
    assert seen == [weight == "auto"] * 2
    assert m.consistency_ == (0.0 if weight == "auto" else 1.0)
