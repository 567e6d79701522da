"""studies/capacity.py (issue 21 item 3's measurement) on one tiny setting and split."""

import json
import math

import pytest

pytestmark = pytest.mark.usefixtures("fast_compile")

TINY = {"epochs": 2, "warm_epochs": 1, "n_init": 1, "n_blocks": 2, "hidden": [4],
        "posterior_hidden": [4]}


@pytest.fixture(scope="module")
def capacity(load_study):
    return load_study("capacity")


def test_study_records_the_start_and_the_best_epoch(capacity, tmp_path, capsys):
    out = tmp_path / "c.json"
    argv = ["--datasets", "iris", "--splits", "0", "--settings", json.dumps({"tiny": TINY}),
            "--out", str(out)]
    capacity.main(argv)
    fit = json.loads(out.read_text())["fits"]["iris"]["tiny"]["0"]
    assert "error" not in fit, fit
    assert isinstance(fit["kept_start"], bool)
    assert all(math.isfinite(fit[k]) for k in ("loglik", "acc", "fit_score", "best_epoch_val"))
    assert 1 <= fit["epochs_run"] <= TINY["epochs"]
    # the kept score is the best candidate's: the start's or an epoch's, never below the best
    # epoch unless the start was kept over it
    assert fit["fit_score"] >= fit["best_epoch_val"] or fit["kept_start"]
    assert "| iris | tiny |" in capsys.readouterr().out
    capacity.main(argv)  # a rerun skips the fit it holds
    assert "tiny" not in "".join(line for line in capsys.readouterr().out.splitlines()
                                 if line.startswith("{"))


def test_table_reports_the_change_from_defaults_and_the_gap(capacity):
    def fit(ll, kept, score, best):
        return {"loglik": ll, "acc": 0.9, "kept_start": kept, "fit_score": score,
                "best_epoch_val": best, "wall_s": 1.0}

    results = {"fits": {"iris": {
        "defaults": {"0": fit(-2.0, True, -1.0, -3.0), "1": fit(-2.2, True, -1.0, -5.0)},
        "wide": {"0": fit(-1.5, False, -0.5, -0.5), "1": {"error": "ValueError: x"}}}}}
    rows = capacity.table(results).splitlines()
    assert rows[2].split(" | ")[2:7] == ["-2.100", "+0.000", "0.900", "2/2", "-3.000"]
    assert rows[3].split(" | ")[2:7] == ["-1.500", "+0.600", "0.900", "0/2", "0.000"]
