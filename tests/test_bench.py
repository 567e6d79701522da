"""Smoke tests of ``benchmarks/bench.py --quick`` (tiny shapes): it runs, writes the JSON with
every section and the plot; the flowjax side by side (where flowjax is installed) or its skip
note; plus the loop baseline equals the fused mixture."""

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"


def _bench(tmp_path, *args):
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "JAX_DISABLE_MOST_OPTIMIZATIONS": "1"}
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(BENCH / "bench.py"), "--quick", "--out",
                           str(out), *args], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return json.loads(out.read_text()), proc.stdout


def _benchlib(with_flows=False):
    sys.path.insert(0, str(BENCH))
    try:
        import benchlib
        import flowjax_side
        import flows_bench
    finally:
        sys.path.remove(str(BENCH))
    return (benchlib, flowjax_side, flows_bench) if with_flows else (benchlib, flowjax_side)


def test_bench_quick(tmp_path):
    res, _ = _bench(tmp_path, "--sections", "pinwheel", "mnist")
    assert (tmp_path / "bench.png").is_file()
    assert not res["partial"] and "flowjax" not in res
    assert res["device"]["platform"] == "cpu" and res["device"]["devices"]
    for name in ("pinwheel", "mnist"):
        c = res["configs"][name]
        for v in ("fused", "loop"):
            assert c["step"][v]["steps_per_s"]["median"] > 0
            assert c["step"][v]["compile_s"] > 0
        assert c["step"]["fused_over_loop"]["median"] > 0
        assert c["epoch"]["steps_per_s"]["median"] > 0
        assert c["k_scaling"]["fused"] and c["batch_scaling"]["fused"]
        for part in ("log_prob", "sample"):
            assert c["throughput"][part]["points_per_s"]["median"] > 0
    dv = res["configs"]["pinwheel"]["device_scaling"]
    assert dv["note"] and dv["devices"]["data"]["1"]["steps_per_s"]["median"] > 0
    assert dv["devices"]["components"]["1"]["steps_per_s"]["median"] > 0
    fl = res["configs"]["mnist"]["flops"]
    b, d, k, n_blocks, h, p = 16, 8, 5, 1, 16, 8  # benchlib.QUICK["mnist"]
    assert fl["train_step"] == 3 * 2 * b * (k * n_blocks * (d * h + h * 2 * d) + d * p + p * k)
    assert fl["fused_over_matmul_square"]["median"] > 0
    assert res["memory"]["after_mnist"]["peak_rss_mb"] > 0


def test_bench_quick_flows(tmp_path):
    """Every flow and base through VMoNF.fit: steps/s and compile seconds per configuration."""
    res, stdout = _bench(tmp_path, "--sections", "flows")
    _, _, fb = _benchlib(with_flows=True)
    rows = res["flows"]
    assert list(rows) == list(fb.CONFIGS)
    for name in ("pinwheel spline", "pinwheel spline student_t", "pinwheel spline_ar",
                 "wide spline_ar"):
        assert name in rows
    for name, r in rows.items():
        assert r["config"]["flow"] == fb.CONFIGS[name]["flow"]
        assert r["steps_per_s"]["median"] > 0 and r["n_parameters"] > 0, name
        assert r["cold_fit_s"] >= r["compile_s"] >= 0 and r["warm_fit_s"] > 0, name
    assert rows["pinwheel spline student_t"]["config"]["base"] == "student_t"
    assert "| wide spline_ar |" in stdout and "compile s (cold - warm fit)" in stdout


NO_FLOWJAX = pytest.mark.skipif(importlib.util.find_spec("flowjax") is None,
                                reason="flowjax (the bench extra) is not installed")


@pytest.mark.slow  # a benchmark run (about 35 s): `make test-slow`
@NO_FLOWJAX
def test_bench_flowjax_steps(tmp_path):
    """The steps/s rows (K=5 in --quick); the cold fits are the slow test's."""
    res, stdout = _bench(tmp_path, "--sections", "flowjax", "--cold-repeats", "0")
    fj = res["flowjax"]
    assert list(fj["steps"]) == ["5"]
    row = fj["steps"]["5"]
    for part in ("ours_steps_per_s", "flowjax_steps_per_s", "ratio"):
        assert np.isfinite(row[part]["median"]) and row[part]["median"] > 0, part
    assert row["params"]["ours_flows"] > 0 and row["params"]["flowjax"] > 0
    assert "skipped" in fj["cold_fit"] and "| train steps/s" in stdout


@NO_FLOWJAX
@pytest.mark.slow
def test_flowjax_cold_fits():
    """One cold default fit each (fresh processes): every epoch runs, same training rows."""
    _, fs = _benchlib()
    ours, theirs = (fs.cold_fit_subprocess(w, quick=True) for w in ("ours", "flowjax"))
    for r in (ours, theirs):
        assert r["fit_s"] > 0 and r["epochs_run"] >= fs.config(True)["epochs"]
        assert math.isfinite(r["held_out_ll"])  # both scored on the same held-out rows
    assert theirs["train_points"] == ours["train_points"]


def test_flowjax_side_skips_with_a_note(monkeypatch):
    _, fs = _benchlib()
    monkeypatch.setattr(fs, "available", lambda: False)
    logged = []
    res = fs.run(True, 1, 0.01, 1, None, logged.append)
    assert res == {"skipped": logged[0]} and "not installed" in logged[0]
    assert fs.table(res) == logged[0]


def test_loop_baseline_matches_fused():
    bl, _ = _benchlib()
    cfg = bl.config("pinwheel", quick=True, n_components=3)
    fused, loop = bl.make_model(cfg, "fused"), bl.make_model(cfg, "loop")
    params = bl.init_params(fused)
    rng = np.random.default_rng(0)
    params = jax.tree.map(lambda a: a + 0.3 * rng.standard_normal(a.shape).astype(a.dtype),
                          params)
    x = rng.standard_normal((7, 2)).astype(np.float32)
    np.testing.assert_allclose(jax.jit(loop.component_log_prob)(params, x),
                               jax.jit(fused.component_log_prob)(params, x), rtol=1e-5,
                               atol=1e-5)
    assert bl.device_info()["platform"] == "cpu"
