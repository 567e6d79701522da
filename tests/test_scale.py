"""Issue 24: costs linear in the rows: chunked scores and the scaling bench (maps: test_feeder)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vmonf_jax.chunked import map_rows, mean_rows
from vmonf_jax.model.mixture import Mixture
from vmonf_jax.model.priors import PRIORS
from vmonf_jax.train import step

pytestmark = pytest.mark.usefixtures("fast_compile")
BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def test_chunked_evaluation_equals_one_pass(perturb):
    model = Mixture(dim=2, n_components=3, n_blocks=2, hidden=(4,), posterior_hidden=(4,))
    params, state = step.init_params(model, jax.random.key(0))
    params = perturb(1, params)
    x = np.random.default_rng(0).normal(size=(300, 2)).astype(np.float32)
    whole = np.asarray(step.score_rows(model, params, state, jnp.asarray(x), 0.7))
    rows = map_rows(lambda c: step._score_rows(model, params, state, c, 0.7), x, chunk=64)
    np.testing.assert_allclose(rows, whole, rtol=1e-5, atol=1e-5)  # 5 chunks, last padded
    got = step.evaluate(model, params, state, x, 0.7)
    np.testing.assert_allclose(got, whole.mean(0), rtol=1e-5)


def test_scaling_bench_quick(tmp_path):
    out = tmp_path / "scaling.json"
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "JAX_DISABLE_MOST_OPTIMIZATIONS": "1"}
    proc = subprocess.run([sys.executable, str(BENCH / "scaling.py"), "--quick", "--out",
                           str(out)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(out.read_text())
    pts = res["rows"]["2"]
    assert [p["rows"] for p in pts] == [256, 512]
    for p in pts + res["k"] + res["cols"]:
        assert p["epochs_run"] == 2 and p["epoch_s"] > 0
        assert {"graph", "warm_start", "steps", "compile", "scoring", "labels"} <= set(
            p["phases_s"])
    assert out.with_suffix(".png").stat().st_size > 0


def test_mean_rows_in_chunks_equals_the_plain_mean():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(300, 3)), jnp.float32)

    def fn(rows):
        return jnp.stack([rows.sum(1), jnp.exp(rows[:, 0])], -1)

    want = np.asarray(fn(x).mean(0))
    for chunk in (64, 100, 300, 4096):  # padded last chunk, exact split, one chunk, larger
        got = jax.jit(lambda a, c=chunk: mean_rows(fn, a, c))(x)
        np.testing.assert_allclose(got, want, rtol=1e-5)
    em = PRIORS["em"].logits  # the EM prior's mean of q(k|x), through mean_rows
    model = Mixture(dim=3, n_components=2, n_blocks=1, hidden=(4,), posterior_hidden=(4,))
    params, _ = step.init_params(model, jax.random.key(0))
    np.testing.assert_allclose(
        jnp.exp(em(model, params, x, 1.0)), model.posterior(params, x, 1.0).mean(0), rtol=1e-5)
