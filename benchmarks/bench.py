"""make bench: train-step speed of the fused (vmap) mixture against a per-component loop.

Two configurations (API.md, Benchmarks): *pinwheel* (dim 2, K=5 RealNVP, 8 blocks, hidden 8,
posterior (3,), batch 512) and *mnist* (dim 784, K=5 MAF, 5 blocks, MADE hidden 200,
posterior (512,), batch 100). For each:

- the full jitted train step (loss, gradients, Optax update; ``benchlib.make_step`` is the
  step of ``train.make_epoch``) after warm-up, trace and XLA compile seconds apart, fused
  against ``benchlib.LoopMixture`` (a Python loop over the same stacked parameters);
- the scanned epoch (``train.make_epoch``, metrics fetched once per epoch as ``fit`` does);
- scaling in K and in batch size; ``log_prob`` and sampling throughput;
- pinwheel: scanned-epoch steps/s against device count n = 1, 2, 4, ... (powers of two up
  to ``len(jax.devices())``), data-parallel and (where n divides K) component-parallel, on
  the library's mesh training (``parallel.resolve``, ``train.make_epoch(parallel=...)``);
- memory: XLA's buffer sizes per executable, process peak RSS (CPU) / device stats (GPU);
- mnist: analytic matmul FLOPs of a step (formula printed) and achieved FLOP/s against the
  same run's dense float32 matmul throughput, measured interleaved with the steps;
- every flow and base (``flows_bench.py``): pinwheel-sized RealNVP, spline coupling and
  autoregressive spline components over normal and Student-t bases, and the wide (mnist)
  MAF and autoregressive spline: steps/s through ``VMoNF.fit`` and compile seconds per
  configuration (a cold fit less the same fit warm);
- flowjax side by side (``flowjax_side.py``, issue 11's table): steps/s through
  ``VMoNF.fit`` against flowjax's jitted step at K=5 and 20, and the default fit, cold,
  against flowjax's ``fit_to_data`` of 400 epochs; skipped with a note where flowjax (the
  ``bench`` extra) is not installed.

Timings are rates of blocks of calls (about ``--block-s`` seconds each), repeated
``--repeats`` times round-robin over the variants compared (so a change in machine load hits
all alike); medians with min and max. Ratios are medians of per-round ratios.
Writes ``results/bench.json`` and ``results/bench.png`` (steps/s against K, fused vs loop).

    python benchmarks/bench.py [--quick] [--full] [--sections pinwheel mnist flows flowjax]
                               [--device-info] [--fake-devices N] [--out results/bench.json]

``--fake-devices N`` re-runs the script on the CPU with N fake XLA host devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=N``, ``JAX_PLATFORMS=cpu``): the
device-scaling section then exercises the sharded code paths for correctness only; the fake
devices share the host's cores, so their steps/s say nothing about speed-up.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import benchlib as bl
import flowjax_side
import flows_bench
import jax
import jax.numpy as jnp

from vmonf_jax import parallel, train

ROOT = Path(__file__).resolve().parent.parent


SECTIONS = ("pinwheel", "mnist", "flows", "flowjax")


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny shapes, few repeats (smoke test)")
    p.add_argument("--full", action="store_true",
                   help="also the loop baseline at K=20 and 50 (compile grows linearly in K)")
    p.add_argument("--device-info", action="store_true", help="print the device record, exit")
    p.add_argument("--fake-devices", type=int, default=None, metavar="N",
                   help="CORRECTNESS ONLY: run on the CPU with N fake XLA host devices "
                        "(re-executes with XLA_FLAGS=--xla_force_host_platform_device_count"
                        "=N); they share the CPU cores, so no speed-up is measured")
    p.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                   help="what to run (default: all)")
    p.add_argument("--cold-repeats", type=int, default=1,
                   help="rounds of the cold default fits (flowjax section; ours and flowjax "
                        "alternate, each in a fresh process)")
    p.add_argument("--repeats", type=int, default=None, help="timed blocks per variant (7)")
    p.add_argument("--block-s", type=float, default=None, help="seconds per timed block (0.3)")
    p.add_argument("--out", type=Path, default=ROOT / "results" / "bench.json")
    p.add_argument("--plot", type=Path, default=None, help="default: --out with .png")
    args = p.parse_args(argv)
    args.repeats = args.repeats or (2 if args.quick else 7)
    args.block_s = args.block_s or (0.01 if args.quick else 0.3)
    args.plot = args.plot or args.out.with_suffix(".png")
    return args


T0 = time.perf_counter()


def log(*a):
    print(f"[{time.perf_counter() - T0:6.1f} s]", *a, flush=True)


# -- prepared runners ---------------------------------------------------------------------
class Steps:
    """Compiled train steps keyed by (config name, K, batch, variant), compiled once each."""

    def __init__(self, args):
        self.args, self.cache = args, {}

    def get(self, name, variant="fused", **changes):
        cfg = bl.config(name, self.args.quick, **changes)
        key = (name, cfg["n_components"], cfg["batch"], variant)
        if key not in self.cache:
            model, tx, params, opt, x, y = bl.setup(cfg, variant)
            t = jnp.float32(1.0)
            compiled, rec = bl.compile_timed(bl.make_step(model, tx), params, opt, x, y, t)
            t0 = time.perf_counter()
            jax.block_until_ready(compiled(params, opt, x, y, t))
            rec["first_call_s"] = time.perf_counter() - t0
            one = bl.step_runner(compiled, params, opt, x, y, t, 1)
            one()
            n = bl.calibrate(one, self.args.block_s)
            rec["steps_per_block"] = n
            self.cache[key] = (bl.step_runner(compiled, params, opt, x, y, t, n), rec, cfg,
                               params)
            log(f"  compiled {name} K={key[1]} B={key[2]} {variant}: trace {rec['trace_s']:.1f}"
                f" s, compile {rec['compile_s']:.1f} s")
        return self.cache[key]


def timed_group(runners: dict, repeats: int) -> dict:
    return bl.interleaved(runners, repeats)


def ratio_stats(a, b):
    return bl.stats([x / y for x, y in zip(a, b)])


# -- sections -----------------------------------------------------------------------------
def bench_steps(steps, name, args, extra_blocks=None):
    """Fused vs loop train step of one configuration (plus extra blocks timed alongside)."""
    out, runners = {}, {}
    for v in ("fused", "loop"):
        runner, rec, cfg, params = steps.get(name, v)
        runners[v], out[v] = runner, dict(rec)
    runners.update(extra_blocks or {})
    rates = timed_group(runners, args.repeats)
    for v in ("fused", "loop"):
        out[v]["steps_per_s"] = bl.stats(rates[v])
        out[v]["step_ms"] = 1e3 / out[v]["steps_per_s"]["median"]
    out["fused_over_loop"] = ratio_stats(rates["fused"], rates["loop"])
    return out, rates, cfg, params


def epoch_runner(name, args, spec=None):
    """``(block, record, n_batches, epochs_per_block)``: a compiled ``train.make_epoch``
    (over ``spec``'s mesh when given: carry and data placed as ``fit`` places them) and a
    block of epochs that fetches losses and metrics once per epoch as ``fit`` does."""
    cfg = bl.config(name, args.quick)
    n_batches = 5 if name == "pinwheel" else 10  # pinwheel: the paper's 2,560 points
    model, tx, params, opt, _, _ = bl.setup(cfg)
    n = n_batches * cfg["batch"]
    data = (jax.random.normal(jax.random.key(7), (n, cfg["dim"]), jnp.float32),
            jnp.full((n,), -1, jnp.int32))
    epoch = train.make_epoch(model, tx, cfg["batch"], parallel=spec)
    carry, t = (params, opt, model.init_state()), jnp.float32(1.0)
    if spec is not None:
        carry, data = spec.place_carry(carry), spec.replicate(data)
    compiled, rec = bl.compile_timed(epoch, carry, data, jax.random.key(0), t)
    keys = bl.key_cycle()
    state = [carry]

    def one_epoch():
        c, losses, metrics = compiled(state[0], data, next(keys), t)
        jax.device_get((losses, metrics))
        state[0] = c

    one_epoch()
    n_ep = bl.calibrate(one_epoch, args.block_s)

    def block():
        for _ in range(n_ep):
            one_epoch()
        return n_ep * n_batches

    return block, rec, n_batches, n_ep


def bench_epoch(name, args):
    """Steps/s through ``train.make_epoch`` (one compiled call per epoch, lax.scan over
    batches), fetching losses and metrics once per epoch as ``fit`` does."""
    block, rec, n_batches, n_ep = epoch_runner(name, args)
    rates = timed_group({"epoch": block}, args.repeats)["epoch"]
    rec.update(steps_per_epoch=n_batches, epochs_per_block=n_ep, steps_per_s=bl.stats(rates))
    rec["epoch_ms"] = 1e3 * n_batches / rec["steps_per_s"]["median"]
    if name == "pinwheel":  # the paper's run: 400 epochs (+ fit's 200 k-means warm epochs)
        rec["paper_400_epochs_s"] = {
            "compile_s": rec["trace_s"] + rec["compile_s"],
            "run_s": 400 * rec["epoch_ms"] / 1e3, "run_with_warm_start_s": 600 * rec[
                "epoch_ms"] / 1e3}
    return rec


def bench_devices(name, args):
    """Scanned-epoch steps/s against device count n = 1, 2, 4, ... (powers of two up to
    ``len(jax.devices())``): data-parallel at every n (where n divides the batch),
    component-parallel where n divides K; all variants interleaved in one group."""
    cfg = bl.config(name, args.quick)
    devs = jax.devices()
    ns = [2**i for i in range(len(devs).bit_length()) if 2**i <= len(devs)]
    runners, recs = {}, {}
    for n in ns:
        mesh = parallel.make_mesh(n)
        for mode, ok in (("data", cfg["batch"] % n == 0),
                         ("components", cfg["n_components"] % n == 0)):
            if not ok:
                continue
            spec = parallel.resolve(mode, mesh)
            block, rec, _, n_ep = epoch_runner(name, args, spec)
            runners[(mode, n)], recs[(mode, n)] = block, {**rec, "epochs_per_block": n_ep}
            log(f"  compiled {name} epoch {mode}-parallel on {n} device(s): trace "
                f"{rec['trace_s']:.1f} s, compile {rec['compile_s']:.1f} s")
    rates = timed_group(runners, args.repeats)
    out = {"data": {}, "components": {}}
    for (mode, n), r in rates.items():
        out[mode][str(n)] = {"steps_per_s": bl.stats(r), **recs[(mode, n)]}
        if n > 1 and (mode, 1) in rates:
            out[mode][str(n)]["over_1_device"] = ratio_stats(r, rates[(mode, 1)])
    fake = "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", "")
    if devs[0].platform == "cpu" and (len(devs) == 1 or fake):
        note = ("CPU: one XLA device per process by default, so only n=1 is measured. Fake "
                "CPU devices (XLA_FLAGS=--xla_force_host_platform_device_count=N, or "
                "--fake-devices N) show correctness of the sharded epochs, not speed-up: they "
                "share the same cores.")
        if fake and len(devs) > 1:
            note = (f"{len(devs)} FAKE CPU devices (--xla_force_host_platform_device_count): "
                    "correctness only; they share the host's cores, so steps/s against n is "
                    "not a speed-up measurement; component-parallel only where n divides K.")
    else:
        note = (f"{len(devs)} x {devs[0].device_kind}: steps/s of one scanned epoch "
                f"({cfg['batch']}-point batches); data-parallel splits each batch over n "
                "devices, component-parallel splits the K axis (only where n divides K).")
    note += f" K={cfg['n_components']}, batch {cfg['batch']}."
    return {"devices": out, "note": note}


def bench_scaling(steps, name, args, key, values, loop_values=()):
    """Steps/s against K or batch size, all variants interleaved in one group."""
    runners, recs = {}, {}
    for val in values:
        for v in ("fused", "loop") if val in loop_values else ("fused",):
            runner, rec, _, _ = steps.get(name, v, **{key: val})
            runners[(v, val)], recs[(v, val)] = runner, rec
    rates = timed_group(runners, args.repeats)
    out = {"fused": {}, "loop": {}}
    for (v, val), r in rates.items():
        rec = recs[(v, val)]
        out[v][str(val)] = {"steps_per_s": bl.stats(r), "compile_s": rec["compile_s"],
                            "trace_s": rec["trace_s"]}
        if key == "batch":
            out[v][str(val)]["points_per_s"] = bl.stats([x * val for x in r])
    if not out["loop"]:
        del out["loop"]
    return out, rates


def bench_throughput(name, args):
    """log_prob points/s and mixture-sampling points/s (fused, jitted)."""
    cfg = bl.config(name, args.quick)
    model = bl.make_model(cfg)
    params = bl.init_params(model)
    n_lp = (256 if args.quick else 16384) if name == "pinwheel" else (64 if args.quick else 1000)
    # MAF samples sequentially: dim passes of MADE per block, for every component
    n_s = (256 if args.quick else 16384) if name == "pinwheel" else (2 if args.quick else 8)
    x = jax.random.normal(jax.random.key(1), (n_lp, cfg["dim"]), jnp.float32)
    lp = jax.jit(model.log_prob)
    smp = jax.jit(model.sample, static_argnums=2)
    out = {}
    lp_c, out["log_prob"] = bl.compile_timed(lp, params, x)
    sm_c, out["sample"] = bl.compile_timed(smp, params, jax.random.key(2), n_s)
    jax.block_until_ready(lp_c(params, x))
    jax.block_until_ready(sm_c(params, jax.random.key(3)))
    n1 = bl.calibrate(lambda: jax.block_until_ready(lp_c(params, x)), args.block_s)
    n2 = bl.calibrate(lambda: jax.block_until_ready(sm_c(params, jax.random.key(3))),
                      args.block_s)

    def lp_block():
        for _ in range(n1):
            r = lp_c(params, x)
        jax.block_until_ready(r)
        return n1 * n_lp

    def s_block():
        for i in range(n2):
            r = sm_c(params, jax.random.key(i))
        jax.block_until_ready(r)
        return n2 * n_s

    rates = timed_group({"log_prob": lp_block}, args.repeats)
    # MAF sampling is seconds per call (dim x blocks sequential MADE passes): fewer repeats
    rates.update(timed_group({"sample": s_block},
                             args.repeats if name == "pinwheel" else min(args.repeats, 3)))
    out["log_prob"].update(points=n_lp, points_per_s=bl.stats(rates["log_prob"]))
    out["sample"].update(points=n_s, points_per_s=bl.stats(rates["sample"]),
                         note="Mixture.sample draws n from every component and keeps one "
                              "per row: K flow samples per point")
    out["sample"]["flow_samples_per_s"] = bl.stats(
        [r * cfg["n_components"] for r in rates["sample"]])
    return out


# -- the run ------------------------------------------------------------------------------
def save(res, args, partial=True):
    """Write the JSON (after every section: a run stopped early keeps what it measured)."""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({**res, "partial": partial}, indent=1))
    tmp.replace(args.out)


def run(args, res):
    t_start = time.perf_counter()
    res.update({"device": bl.device_info(), "quick": args.quick, "argv": sys.argv[1:],
                "repeats": args.repeats, "block_s": args.block_s, "configs": {},
                "memory": {}})
    log(f"device: {res['device']['devices']} ({res['device']['device_kind']}), "
        f"load avg {res['device']['load_avg']}")
    steps = Steps(args)
    for name in args.sections:
        {"pinwheel": run_pinwheel, "mnist": run_mnist, "flows": run_flows,
         "flowjax": run_flowjax}[name](args, res, steps)
        save(res, args)
    res["wall_s"] = time.perf_counter() - t_start
    res["device"]["load_avg_end"] = list(os.getloadavg())


def run_flows(args, res, steps):
    log("flows: every flow and base through VMoNF.fit: steps/s and compile time (cold - warm "
        "fit)")
    res["flows"] = flows_bench.run(args.quick, log=log)
    res["memory"]["after_flows"] = bl.memory_record()


def run_flowjax(args, res, steps):
    log("flowjax side by side: steps/s through VMoNF.fit vs flowjax's step; cold fits")
    res["flowjax"] = flowjax_side.run(args.quick, args.repeats, args.block_s,
                                      args.cold_repeats, bl.stats, log)
    res["memory"]["after_flowjax"] = bl.memory_record()


def run_pinwheel(args, res, steps):
    # --quick: each section on the fewest extra compilations (K=5 only, one batch size)
    ks = (5,) if args.quick else (1, 2, 5, 10, 20, 50)
    loop_ks = (5,) if args.quick else ks if args.full else (1, 2, 5, 10)
    log("pinwheel: train step, fused vs loop")
    pin = res["configs"]["pinwheel"] = {"config": bl.config("pinwheel", args.quick)}
    pin["step"], _, _, _ = bench_steps(steps, "pinwheel", args)
    log("pinwheel: scanned epoch")
    save(res, args)
    pin["epoch"] = bench_epoch("pinwheel", args)
    res["memory"]["after_pinwheel_step"] = bl.memory_record()
    log(f"pinwheel: K scaling {ks} (loop {loop_ks})")
    pin["k_scaling"], _ = bench_scaling(steps, "pinwheel", args, "n_components", ks, loop_ks)
    fk = pin["k_scaling"]["fused"]
    if "5" in fk and "20" in fk:
        pin["k20_over_k5_step_time"] = (fk["5"]["steps_per_s"]["median"]
                                        / fk["20"]["steps_per_s"]["median"])
    bs = (64,) if args.quick else (128, 512, 2048, 8192)
    log(f"pinwheel: batch scaling {bs}")
    save(res, args)
    pin["batch_scaling"], _ = bench_scaling(steps, "pinwheel", args, "batch", bs)
    log("pinwheel: log_prob and sampling throughput (RealNVP)")
    pin["throughput"] = bench_throughput("pinwheel", args)
    res["memory"]["after_pinwheel"] = bl.memory_record()
    save(res, args)
    log(f"pinwheel: scanned-epoch steps/s against device count ({len(jax.devices())} "
        "available), data- and component-parallel")
    pin["device_scaling"] = bench_devices("pinwheel", args)
    steps.cache.clear()


def run_mnist(args, res, steps):
    gpu = res["device"]["platform"] != "cpu"
    log("mnist: train step, fused vs loop, with the dense matmul reference interleaved")
    mcfg = bl.config("mnist", args.quick)
    mm_blocks, mm_desc = bl.matmul_blocks(4096 if gpu else (256 if args.quick else 1024),
                                          mcfg, args.block_s)
    mn = res["configs"]["mnist"] = {"config": mcfg}
    mn["step"], rates, cfg, params = bench_steps(steps, "mnist", args, extra_blocks=mm_blocks)
    fl = bl.step_flops(cfg, params)
    achieved = [fl["train_step"] * r for r in rates["fused"]]
    achieved_loop = [fl["train_step"] * r for r in rates["loop"]]
    mn["flops"] = {
        **fl,
        "xla_cost_analysis_flops": mn["step"]["fused"].get("xla_flops"),
        "achieved_flop_s": bl.stats(achieved),
        "achieved_flop_s_loop": bl.stats(achieved_loop),
        "matmul": {k: {"shape": mm_desc[k], "flop_s": bl.stats(rates[k])} for k in mm_blocks},
        "fused_over_matmul_square": ratio_stats(achieved, rates["square"]),
        "fused_over_matmul_mnist_shaped": ratio_stats(achieved, rates["mnist_shaped"]),
        "loop_over_matmul_square": ratio_stats(achieved_loop, rates["square"]),
    }
    log(f"mnist train-step matmul FLOPs: {fl['formula']} = {fl['train_step']:.4g}")
    save(res, args)
    log("mnist: scanned epoch")
    mn["epoch"] = bench_epoch("mnist", args)
    res["memory"]["after_mnist_step"] = bl.memory_record()
    mks = (5,) if args.quick else (1, 5, 10)
    mloop = (5,) if args.quick else (1, 5)
    log(f"mnist: K scaling {mks} (loop {mloop})")
    mn["k_scaling"], _ = bench_scaling(steps, "mnist", args, "n_components", mks, mloop)
    save(res, args)
    mbs = (16,) if args.quick else (25, 100, 400)
    log(f"mnist: batch scaling {mbs}")
    mn["batch_scaling"], _ = bench_scaling(steps, "mnist", args, "batch", mbs)
    log("mnist: log_prob and sampling throughput (MAF)")
    mn["throughput"] = bench_throughput("mnist", args)
    res["memory"]["after_mnist"] = bl.memory_record()
    res["memory"]["note"] = ("peak_rss_mb: process high-water mark after each section "
                             "(monotone); per executable see xla_*_size_in_bytes")
    steps.cache.clear()


# -- output -------------------------------------------------------------------------------
def summary(res) -> str:
    lines = [f"{res['device']['date']}  {res['device']['device_kind']} "
             f"({res['device']['cpu_count']} CPUs: {res['device']['cpu']})"]
    for name, c in res["configs"].items():
        st = c["step"]
        f, lo = st["fused"], st["loop"]
        lines.append(
            f"{name:8s} step/s fused {f['steps_per_s']['median']:8.1f} "
            f"[{f['steps_per_s']['min']:.1f}, {f['steps_per_s']['max']:.1f}]  loop "
            f"{lo['steps_per_s']['median']:8.1f} [{lo['steps_per_s']['min']:.1f}, "
            f"{lo['steps_per_s']['max']:.1f}]  fused/loop {st['fused_over_loop']['median']:.2f}"
            f"  epoch(scan) {c['epoch']['steps_per_s']['median']:.1f} steps/s")
        lines.append(
            f"{'':8s} compile fused {f['trace_s']:.1f}+{f['compile_s']:.1f} s, loop "
            f"{lo['trace_s']:.1f}+{lo['compile_s']:.1f} s (trace+XLA); epoch "
            f"{c['epoch']['trace_s']:.1f}+{c['epoch']['compile_s']:.1f} s")
        ks = c["k_scaling"]["fused"]
        lines.append(f"{'':8s} K: " + "  ".join(
            f"{k}:{v['steps_per_s']['median']:.1f}"
            + (f"/{c['k_scaling']['loop'][k]['steps_per_s']['median']:.1f}"
               if k in c["k_scaling"].get("loop", {}) else "")
            for k, v in ks.items()) + "  (fused/loop steps/s)")
        if "k20_over_k5_step_time" in c:
            lines.append(f"{'':8s} step time K=20 / K=5: {c['k20_over_k5_step_time']:.2f}")
        if "device_scaling" in c:
            dv = c["device_scaling"]["devices"]
            lines.append(f"{'':8s} devices (epoch steps/s): " + "; ".join(
                f"{mode} " + " ".join(f"{n}:{v['steps_per_s']['median']:.1f}"
                                      for n, v in dv[mode].items())
                for mode in ("data", "components") if dv[mode]))
        tp = c["throughput"]
        lines.append(f"{'':8s} log_prob {tp['log_prob']['points_per_s']['median']:.4g} pts/s,"
                     f" sample {tp['sample']['points_per_s']['median']:.4g} pts/s")
    if "mnist" in res["configs"]:
        fl = res["configs"]["mnist"]["flops"]
        lines.append(f"mnist FLOPs/step {fl['train_step']:.4g} = {fl['formula']}")
        lines.append(
            f"mnist achieved {fl['achieved_flop_s']['median'] / 1e9:.1f} GFLOP/s vs matmul "
            f"{fl['matmul']['square']['flop_s']['median'] / 1e9:.1f} GFLOP/s "
            f"({fl['matmul']['square']['shape']}): "
            f"{fl['fused_over_matmul_square']['median']:.0%} (loop "
            f"{fl['loop_over_matmul_square']['median']:.0%}); mnist-shaped batched matmul "
            f"{fl['matmul']['mnist_shaped']['flop_s']['median'] / 1e9:.1f} GFLOP/s")
    if "flows" in res:
        lines.append(flows_bench.table(res["flows"]))
    if "flowjax" in res:
        lines.append(flowjax_side.table(res["flowjax"]))
    lines.append(f"peak RSS {bl.peak_rss_mb():.0f} MiB; wall {res['wall_s']:.0f} s; load avg "
                 f"{res['device']['load_avg'][0]:.1f} at start, "
                 f"{res['device']['load_avg_end'][0]:.1f} at end")
    return "\n".join(lines)


def plot(res, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not res["configs"]:
        return
    fig, axes = plt.subplots(1, len(res["configs"]), figsize=(5 * len(res["configs"]), 4),
                             squeeze=False)
    for ax, (name, c) in zip(axes[0], res["configs"].items()):
        for v, style in (("fused", "o-"), ("loop", "s--")):
            pts = c["k_scaling"].get(v, {})
            if not pts:
                continue
            ks = [int(k) for k in pts]
            med = [pts[k]["steps_per_s"]["median"] for k in pts]
            lo = [pts[k]["steps_per_s"]["median"] - pts[k]["steps_per_s"]["min"] for k in pts]
            hi = [pts[k]["steps_per_s"]["max"] - pts[k]["steps_per_s"]["median"] for k in pts]
            ax.errorbar(ks, med, yerr=[lo, hi], fmt=style, capsize=3,
                        label="fused (vmap)" if v == "fused" else "Python loop over K")
        ax.set(xscale="log", yscale="log", xlabel="components K", ylabel="train steps / s",
               title=f"{name} (batch {c['config']['batch']})")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    dev = res["device"]
    fig.suptitle(f"{dev['device_kind']} ({dev['cpu_count']} CPUs, {dev['cpu']}), "
                 f"{dev['date'][:10]}, load avg {dev['load_avg'][0]:.1f}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fake_devices_reexec(args, argv):
    """``--fake-devices N``: XLA_FLAGS must be set before jax initialises its backend, so
    re-execute this script (on the CPU) with it; a no-op when the flag is already set."""
    flag = f"--xla_force_host_platform_device_count={args.fake_devices}"
    flags = os.environ.get("XLA_FLAGS", "").split()
    if flag in flags:
        return
    flags = [f for f in flags if not f.startswith("--xla_force_host_platform_device_count")]
    env = {**os.environ, "XLA_FLAGS": " ".join([*flags, flag]), "JAX_PLATFORMS": "cpu"}
    argv = sys.argv[1:] if argv is None else list(argv)
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, str(Path(__file__).resolve()), *argv], env)


def main(argv=None):
    args = parse(argv)
    if args.fake_devices:
        fake_devices_reexec(args, argv)
    if args.device_info:
        print(json.dumps(bl.device_info(), indent=2))
        return None
    res = {}
    try:
        run(args, res)
    except KeyboardInterrupt:  # e.g. gpu.sh's time limit: keep what was measured
        if res:
            save(res, args)
            log(f"interrupted: partial results in {args.out}")
        raise
    save(res, args, partial=False)
    plot(res, args.plot)
    text = summary(res)
    log(text)
    log(f"wrote {args.out}" + (f" and {args.plot}" if res["configs"] else ""))
    return res


if __name__ == "__main__":
    main()
