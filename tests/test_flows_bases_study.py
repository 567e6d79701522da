"""studies/flows_bases.py (issue 23 item 4): equal parameter counts, the true density, tables."""

import jax
import numpy as np
import pytest

from vmonf_jax.model.mixture import Mixture


@pytest.fixture(scope="module")
def study(load_study):
    return load_study("flows_bases")


def _flow_parameters(settings):
    model = Mixture(dim=2, n_components=settings["n_components"], flow=settings["flow"],
                    n_blocks=settings["n_blocks"], hidden=tuple(settings["hidden"]),
                    base=settings.get("base"), spline_bins=settings.get("spline_bins"),
                    posterior_hidden=tuple(settings["posterior_hidden"]))
    params, _ = jax.eval_shape(model.init, jax.random.key(0))
    return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(params["components"]))


@pytest.mark.parametrize("target", ["pinwheel", "circles"])
def test_spline_flows_match_the_affine_ones_within_ten_percent(study, target):
    affine = _flow_parameters(study.settings_of(target, "realnvp-normal"))
    for config in ("spline-normal", "spline-student_t", "realnvp-student_t"):
        settings = study.settings_of(target, config)
        assert abs(_flow_parameters(settings) / affine - 1) <= 0.10, (target, config)
    spline = study.settings_of(target, "spline-normal")
    paper = study.TARGETS[target][2]
    assert spline["n_blocks"] == paper["n_blocks"] // 2 and spline["flow"] == "spline"
    assert {k: v for k, v in spline.items() if k not in study.SPLINE and k != "n_blocks"} == {
        k: v for k, v in paper.items() if k not in study.SPLINE and k != "n_blocks"}


def test_true_pinwheel_density_is_that_of_the_bayes_study(study):
    from vmonf_jax.data import pinwheel, train_test

    _, (x, _) = train_test(pinwheel, seed=0, **study.TARGETS["pinwheel"][1])
    assert study.true_loglik(x[:40]) == pytest.approx(-0.2, abs=0.25)  # a finite mean density


def test_tables_show_every_seed_the_median_and_the_bars(study):
    def row(target, config, seed, ll, ari=1.0, acc=1.0):
        r = {"target": target, "config": config, "seed": seed, "test_loglik": ll, "ari": ari,
             "acc": acc, "n_parameters": 1000, "flow_parameters": 100, "steps_per_s": 10.0,
             "wall_s": 5.0}
        if target == "pinwheel":
            r["true_loglik"] = -0.2
        return r

    rows = [row("pinwheel", "realnvp-normal", s, -0.24) for s in (0, 1)]
    rows += [row("pinwheel", "spline-normal", 0, -0.30), row("pinwheel", "spline-normal", 1,
                                                             -0.22, ari=0.97)]
    rows += [row("circles", "realnvp-normal", s, -0.69) for s in (0, 1)]
    text = study.table(rows)
    assert "| pinwheel | realnvp-normal | 1,000 (100) | -0.240 / -0.240 | -0.240 | 0.040 |" in text
    assert text.count("yes (2 seeds)") == 2  # pinwheel realnvp (gap 0.04) and circles
    assert "| pinwheel | spline-normal |" in text and "no (2 seeds)" in text  # ARI 0.97
    assert "| pinwheel | spline-normal | -0.060 / +0.020 | -0.020 |" in study.paired(rows)
