"""The worked examples run end to end (a tiny budget: CI runs them in seconds of training)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("matplotlib")


def test_fit_your_csv_runs_end_to_end(tmp_path):
    env = {**os.environ, "VMONF_EXAMPLE_EPOCHS": "2",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                       os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "fit_your_csv.py"),
                          "--out", str(tmp_path)], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "loaded scores equal: True" in out.stdout
    for name in ("iris_petals.csv", "clusters.png", "density.png", "curves.png",
                 "samples.csv", "model"):
        assert (tmp_path / name).exists(), name
    rows = (tmp_path / "samples.csv").read_text().splitlines()
    assert rows[0] == "petal_length_cm,petal_width_cm,component" and len(rows) == 501
