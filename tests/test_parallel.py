"""Data- and component-parallel training on 4 fake CPU devices.

``XLA_FLAGS=--xla_force_host_platform_device_count=4`` only takes effect before JAX starts,
so the checks run once in a subprocess (this file run as a script) that prints a JSON report;
the tests below assert on it. Fake CPU devices show correctness, not speed-up.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

N_DEVICES = 4
RTOL = 1e-4  # API.md: sharded vs single-device loss and gradients


@pytest.fixture(scope="module")
def report():
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": f"--xla_force_host_platform_device_count={N_DEVICES}"}
    out = subprocess.run([sys.executable, __file__], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_sees_fake_devices(report):
    assert report["devices"] == N_DEVICES


@pytest.mark.parametrize("mode", ["data", "components"])
def test_one_sharded_step_matches_single_device(report, mode):
    r = report["step"][mode]
    np.testing.assert_allclose(r["loss"], r["loss_ref"], rtol=RTOL)
    for got, ref in zip(r["grads"], r["grads_ref"], strict=True):
        np.testing.assert_allclose(got, ref, rtol=RTOL, atol=1e-6)


def test_shardings_are_the_intended_ones(report):
    s = report["step"]
    assert s["data"]["allreduce"], "data-parallel gradients should be reduced across devices"
    assert s["data"]["grad_spec"] == "replicated"
    assert s["components"]["grad_spec"] == "split"  # K axis of the Adam-like state
    assert s["components"]["posterior_spec"] == "replicated"


def test_k_not_divisible_by_devices_is_a_clear_error(report):
    msg = report["k3_error"]
    assert msg is not None and "n_components=3" in msg and "4 devices" in msg


def test_component_parallel_fit_with_batch_norm_and_em_prior(report):
    """The whole driver, component-parallel: the single-device fit's losses epoch by epoch,
    score, EM prior weights and batch-norm statistics (rtol 1e-4), with the state split."""
    r = report["components_fit"]
    ref = r["ref"]
    assert r["state_spec"] == "split" and len(r["losses"]) == 3
    np.testing.assert_allclose(r["losses"], ref["losses"], rtol=RTOL)
    np.testing.assert_allclose(r["score"], ref["score"], rtol=RTOL)
    np.testing.assert_allclose(r["pi"], ref["pi"], rtol=RTOL)
    assert np.ptp(ref["pi"]) > 1e-3  # the EM prior moved away from uniform
    for got, want in zip(r["mean"], ref["mean"], strict=True):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=1e-5)


def test_short_data_parallel_fit_clusters_like_unsharded(report):
    assert report["ari"] >= 0.9


def test_host_rows_partition():
    from vmonf_jax.parallel import host_rows

    for n, hosts in [(10, 3), (3, 4), (16, 4)]:
        rows = [np.arange(n)[host_rows(n, i, hosts)] for i in range(hosts)]
        np.testing.assert_array_equal(np.concatenate(rows), np.arange(n))
        assert max(map(len, rows)) - min(map(len, rows)) <= 1
    with pytest.raises(ValueError, match="process_index"):
        host_rows(10, 3, 3)


def test_initialize_distributed_passes_its_arguments(monkeypatch):
    import jax

    from vmonf_jax import parallel

    calls, updates = [], []
    monkeypatch.setattr(jax.distributed, "initialize", lambda **kw: calls.append(kw))
    monkeypatch.setattr(jax.config, "update", lambda *a: updates.append(a))
    assert parallel.initialize_distributed(enabled=False) is False
    assert parallel.initialize_distributed("h:1", 1, 0) is False  # one process: nothing to join
    assert calls == [] and updates == []
    assert parallel.initialize_distributed("h:1234", 3, 2, cpu_collectives="gloo",
                                           local_device_ids=[0]) is True
    assert calls == [{"coordinator_address": "h:1234", "num_processes": 3, "process_id": 2,
                      "local_device_ids": [0]}]
    assert updates == [("jax_cpu_collectives_implementation", "gloo")]
    assert parallel.initialize_distributed() is True  # auto-detection: JAX's defaults
    assert calls[-1] == {"coordinator_address": None, "num_processes": None,
                         "process_id": None}


def test_one_host_shards_and_gathers_everything():
    from vmonf_jax.parallel import gather_rows, host_shard

    x = np.arange(14.0).reshape(7, 2)
    np.testing.assert_array_equal(host_shard(x), x)  # process 0 of 1
    np.testing.assert_array_equal(host_shard(x, 1, 2), x[4:])
    np.testing.assert_array_equal(gather_rows(x.tolist()), x)


def test_two_hosts_gather_their_rows():
    """Smoke test of the multi-host path in the default suite: two processes with 2 fake CPU
    devices each join with ``initialize_distributed`` (gloo), load uneven shares of 7 rows
    with ``host_shard`` and ``gather_rows`` them back in order on both."""
    outs = _two_hosts("gather", timeout=120)
    for i, r in enumerate(outs):
        assert r == {"processes": 2, "devices": 4, "local": 4 - i, "gathered": True}


def _two_hosts(kind, timeout):
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    procs = [subprocess.Popen([sys.executable, __file__, kind, str(i), str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    try:
        outs = [p.communicate(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-4000:]
    return [json.loads(o.strip().splitlines()[-1]) for o, _ in outs]


def test_bad_mode_and_too_many_devices():
    from vmonf_jax.parallel import Parallel, make_mesh

    with pytest.raises(ValueError, match="parallel mode"):
        Parallel("model")
    with pytest.raises(ValueError, match="available"):
        make_mesh(10_000)


@pytest.mark.slow
def test_two_hosts_on_localhost_agree():
    """Two processes x 2 fake CPU devices joined by ``initialize_distributed`` (gloo): each
    loads its own rows, ``gather_rows`` rebuilds the data, both modes train identically."""
    r0, r1 = _two_hosts("host", timeout=600)
    assert r0["processes"] == 2 and r0["devices"] == 4 and r0["gathered"] and r1["gathered"]
    for mode in ("data", "components"):
        assert np.isfinite(r0[mode]) and r0[mode] == r1[mode]


# -- the subprocesses ----------------------------------------------------------------------
def _gather_worker(process_id: int, port: int):
    from vmonf_jax import parallel

    parallel.initialize_distributed(f"localhost:{port}", 2, process_id, cpu_collectives="gloo")
    import jax

    x = np.arange(14.0, dtype=np.float32).reshape(7, 2)  # 4 rows on host 0, 3 on host 1
    local = parallel.host_shard(x)
    full = parallel.gather_rows(local)
    print(json.dumps({"processes": jax.process_count(), "devices": jax.device_count(),
                      "local": len(local), "gathered": bool(np.array_equal(full, x))}))


def _host_worker(process_id: int, port: int):
    from vmonf_jax import parallel

    parallel.initialize_distributed(f"localhost:{port}", 2, process_id, cpu_collectives="gloo")
    import jax

    jax.config.update("jax_disable_most_optimizations", True)
    from vmonf_jax import FitConfig, Mixture, fit
    from vmonf_jax.data.toy import pinwheel

    X, _ = pinwheel(40, seed=0)  # every host could read it; each keeps only its rows
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    full = parallel.gather_rows(parallel.host_shard(X))
    out = {"processes": jax.process_count(), "devices": jax.device_count(),
           "gathered": bool(np.array_equal(full, X))}
    model = Mixture(2, 4, n_blocks=2, hidden=(4,), posterior_hidden=(4,))
    config = FitConfig(model, epochs=2, warm_epochs=1, batch_size=100, verbose=False)
    for mode in ("data", "components"):
        out[mode] = fit(jax.random.key(0), full, config, parallel=mode).score
    print(json.dumps(out))


def _worker():
    import jax

    jax.config.update("jax_disable_most_optimizations", True)  # tiny shapes: compile-bound
    import jax.numpy as jnp
    import optax
    from sklearn.metrics import adjusted_rand_score

    from vmonf_jax import FitConfig, Mixture, VMoNF, fit
    from vmonf_jax.data.toy import pinwheel
    from vmonf_jax.parallel import Parallel, make_mesh
    from vmonf_jax.train import make_epoch

    mesh = make_mesh(N_DEVICES)
    X, _ = pinwheel(64, seed=1)  # 320 rows
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)

    def spec_name(a):
        return "split" if a.sharding.spec and a.sharding.spec[0] else "replicated"

    # one step, gradient captured in the optimiser state (exact, no subtraction)
    capture = optax.GradientTransformation(
        lambda p: jax.tree.map(jnp.zeros_like, p),
        lambda g, s, p=None: (jax.tree.map(jnp.zeros_like, g), g))
    model = Mixture(2, 4, n_blocks=2, hidden=(8,), posterior_hidden=(8,))
    params, state = model.init(jax.random.key(0))
    rng = np.random.default_rng(0)  # move the couplings away from the identity
    params = jax.tree.map(lambda a: a + jnp.asarray(0.3 * rng.standard_normal(a.shape),
                                                    a.dtype), params)
    data = (jnp.asarray(X[:128]), jnp.full((128,), -1, jnp.int32))
    args = (data, jax.random.key(1), jnp.float32(0.7))
    carry = (params, capture.init(params), state)
    ref_carry, ref_loss, _ = make_epoch(model, capture, 128)(carry, *args)
    step = {}
    for mode in ("data", "components"):
        spec = Parallel(mode, mesh)
        epoch = make_epoch(model, capture, 128, parallel=spec)
        placed = spec.place_carry(carry)
        new_carry, loss, _ = epoch(placed, *args)
        hlo = epoch.lower(placed, *args).compile().as_text()
        grads = new_carry[1]
        step[mode] = {
            "loss": float(loss[0]), "loss_ref": float(ref_loss[0]),
            "grads": [np.asarray(g).ravel().tolist() for g in jax.tree.leaves(grads)],
            "grads_ref": [np.asarray(g).ravel().tolist() for g in jax.tree.leaves(ref_carry[1])],
            "allreduce": "all-reduce" in hlo,
            "grad_spec": spec_name(jax.tree.leaves(grads["components"])[0]),
            "posterior_spec": spec_name(jax.tree.leaves(grads["posterior"])[0]),
        }

    # K = 3 on 4 devices, component mode: a clear error before any training
    try:
        VMoNF(n_components=3, parallel="components", devices=N_DEVICES, verbose=False).fit(X)
        k3 = None
    except ValueError as err:
        k3 = str(err)

    # the whole driver in component mode, with batch-norm state and the EM prior
    bn = Mixture(2, 4, n_blocks=2, hidden=(8,), posterior_hidden=(8,), batch_norm=True,
                 prior="em")
    bn_config = FitConfig(bn, epochs=2, warm_epochs=1, batch_size=160, verbose=False)
    res = fit(jax.random.key(0), X, bn_config, parallel="components", mesh=mesh)
    ref = fit(jax.random.key(0), X, bn_config)  # the same fit on one device

    def summary(r):
        return {"losses": [h["loss"] for h in r.history], "score": r.score,
                "pi": np.asarray(jax.nn.softmax(r.params["prior_logits"])).tolist(),
                "mean": [np.asarray(a).ravel().tolist() for a in jax.tree.leaves(r.state)]}

    comp_fit = {**summary(res), "ref": summary(ref),
                "state_spec": spec_name(jax.tree.leaves(res.state)[0])}

    # a short fit, unsharded vs data-parallel through the estimator: same clusters
    kw = dict(n_components=5, n_blocks=2, hidden=(8,), posterior_hidden=(8,), epochs=30,
              warm_epochs=30, batch_size=160, learning_rate=5e-3, verbose=False)
    one = VMoNF(**kw).fit(X).predict(X)
    many = VMoNF(**kw, parallel="data", devices=N_DEVICES).fit(X).predict(X)
    print(json.dumps({"devices": jax.device_count(), "step": step, "k3_error": k3,
                      "components_fit": comp_fit,
                      "ari": float(adjusted_rand_score(one, many))}))


if __name__ == "__main__":
    if sys.argv[1:2] == ["host"]:
        _host_worker(int(sys.argv[2]), int(sys.argv[3]))
    elif sys.argv[1:2] == ["gather"]:
        _gather_worker(int(sys.argv[2]), int(sys.argv[3]))
    else:
        _worker()
