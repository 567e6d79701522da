"""Smoke test of ``benchmarks/bench.py --quick`` (tiny shapes): it runs, writes the JSON with
every section and the plot; plus the loop baseline equals the fused mixture."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"


def test_bench_quick(tmp_path):
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "JAX_DISABLE_MOST_OPTIMIZATIONS": "1"}
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(BENCH / "bench.py"), "--quick", "--out",
                           str(out)], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert (tmp_path / "bench.png").is_file()
    res = json.loads(out.read_text())
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


def test_loop_baseline_matches_fused():
    sys.path.insert(0, str(BENCH))
    try:
        import benchlib as bl
    finally:
        sys.path.remove(str(BENCH))
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
