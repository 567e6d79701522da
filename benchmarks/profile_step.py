"""Where a train step's time goes: per-thunk times from ``jax.profiler`` on XLA:CPU.

Re-executes itself with ``XLA_FLAGS=--xla_cpu_enable_xprof_traceme=true`` (XLA then records
every thunk it runs), traces a few steps to a Perfetto JSON and sums durations by thunk kind
(``ynn_fusion``/``dot``: matmuls; ``*_fusion``: elementwise loops; ...), with the op that
produced each of the heaviest thunks. Thunks of independent ops may overlap on the two
threads, so kind totals can exceed the wall time.

    python benchmarks/profile_step.py pinwheel|mnist [--variant fused|loop] [--epoch]
"""

import argparse
import collections
import glob
import gzip
import json
import os
import re
import sys
import tempfile
import time

FLAG = "--xla_cpu_enable_xprof_traceme=true"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("config", choices=("pinwheel", "mnist"))
    p.add_argument("--variant", default="fused", choices=("fused", "loop"))
    p.add_argument("--epoch", action="store_true", help="profile train.make_epoch instead")
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args(argv)
    if FLAG not in os.environ.get("XLA_FLAGS", ""):
        env = {**os.environ, "XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") + " " + FLAG)}
        os.execve(sys.executable, [sys.executable, __file__, *sys.argv[1:]], env)

    import benchlib as bl
    import jax
    import jax.numpy as jnp

    from vmonf_jax import train

    cfg = bl.config(args.config)
    model, tx, params, opt, x, y = bl.setup(cfg, args.variant)
    t = jnp.float32(1.0)
    if args.epoch:
        n_b = 5
        data = (jax.random.normal(jax.random.key(7), (n_b * cfg["batch"], cfg["dim"])),
                jnp.full((n_b * cfg["batch"],), -1, jnp.int32))
        carry = [(params, opt, model.init_state())]
        fn = train.make_epoch(model, tx, cfg["batch"]).lower(
            carry[0], data, jax.random.key(0), t).compile()

        def run():
            c, losses, _ = fn(carry[0], data, jax.random.key(1), t)
            jax.device_get(losses)
            carry[0] = c

        steps_per_call = n_b
    else:
        fn = bl.make_step(model, tx).lower(params, opt, x, y, t).compile()
        carry = [(params, opt)]

        def run():
            p_, o_, loss, _ = fn(*carry[0], x, y, t)
            jax.block_until_ready(loss)
            carry[0] = (p_, o_)

        steps_per_call = 1
    for _ in range(3):
        run()
    calls = 2 if args.config == "mnist" else 20
    t0 = time.perf_counter()
    for _ in range(calls):
        run()
    wall = (time.perf_counter() - t0) / (calls * steps_per_call)
    with tempfile.TemporaryDirectory() as d:
        with jax.profiler.trace(d, create_perfetto_trace=True):
            for _ in range(calls):
                run()
        path = glob.glob(d + "/**/perfetto_trace.json.gz", recursive=True)[0]
        trace = json.load(gzip.open(path))
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    steps = calls * steps_per_call
    text = fn.as_text()
    origin = {}
    for line in text.splitlines():
        m = re.match(r"\s*(?:ROOT )?%([\w.\-]+) = (\S+) ", line)
        if m:
            op = re.search(r'op_name="([^"]*)"', line)
            origin[m.group(1)] = (m.group(2), op.group(1)[-60:] if op else "")
    tot, cnt = collections.Counter(), collections.Counter()
    for e in events:
        if e.get("ph") == "X" and not e["name"].startswith("$") and "::" not in e["name"]:
            tot[e["name"]] += e.get("dur", 0)
            cnt[e["name"]] += 1
    kinds, kcnt = collections.Counter(), collections.Counter()
    for name, us in tot.items():
        k = re.sub(r"\.\d+$", "", name)
        kinds[k] += us
        kcnt[k] += cnt[name]
    print(f"{args.config} {args.variant} {'epoch' if args.epoch else 'step'}: "
          f"{wall * 1e3:.2f} ms/step wall (unprofiled)")
    print("by kind (ms/step, thunks/step):")
    for k, us in kinds.most_common(args.top):
        print(f"  {us / steps / 1e3:8.3f}  {kcnt[k] / steps:7.1f}  {k}")
    print("heaviest thunks:")
    for name, us in tot.most_common(args.top):
        shape, op = origin.get(name, ("", ""))
        print(f"  {us / steps / 1e3:8.3f} ms  {name:30s} {shape:26s} {op}")


if __name__ == "__main__":
    main()
