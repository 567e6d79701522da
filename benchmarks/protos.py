"""Speed prototypes for the overhead-bound pinwheel train step, each timed against the library's
own step in the same process (interleaved blocks, medians of per-round ratios).

The pinwheel step is a few hundred tiny ops (512 x 2 @ 2 x 8 matmuls): its cost is the number
of XLA:CPU thunks executed and dispatched, not FLOPs. The prototypes keep the library's
parameter pytrees (same ``model.init``, same optimiser state layout unless said) and only change
how the step is computed:

- ``parts``: time of the loss alone, loss+gradients, and the optimiser update alone;
- ``plain``: the same coupling maths in plain jnp (no distrax/Flax objects), s and t separate;
- ``fused_st``: s and t MLPs of a coupling evaluated as one MLP: first-layer kernels
  concatenated (D x 2H), deeper layers block-diagonal (2H x 2D); parameters stay separate;
- ``scan``: ``lax.scan`` over the coupling blocks (masks as scanned inputs) with fused s/t;
- ``flat_opt``: the Optax chain run on one raveled parameter vector (``ravel_pytree``) instead
  of ~70 leaves (clip + Adam = a few thunks instead of a few hundred);
- ``donate``: ``make_epoch`` with ``donate_argnums=0`` (the carry's buffers reused);
- ``--flags``: XLA CPU flags, each in a subprocess (XLA reads them once), rounds alternating.

    python benchmarks/protos.py [--quick] [--flags] [--out results/protos.json]
"""

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import benchlib as bl
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from vmonf_jax import train
from vmonf_jax.bijectors._util import bounded_log_scale
from vmonf_jax.mixture import Mixture

ROOT = Path(__file__).resolve().parent.parent
HALF_LOG_2PI = 0.5 * float(np.log(2 * np.pi))


# -- coupling flows in plain jnp, same parameters as the library ---------------------------
def _masks(flow):
    return [np.asarray(layer.mask) for layer in flow.layers]


def _dense(x, w, elementwise=False):
    """x @ w; with ``elementwise`` as a broadcast multiply and a sum over the input axis, which
    XLA fuses with the surrounding elementwise ops (for tiny widths: no dot thunk at all)."""
    if elementwise:
        return jnp.sum(x[..., :, None] * w, axis=-2)
    return x @ w


def _mlp(net, x, elementwise=False):
    """A Flax ``MLP`` parameter dict ({Dense_0, Dense_1, ...}) applied with tanh between."""
    n = len(net)
    for i in range(n):
        d = net[f"Dense_{i}"]
        x = _dense(x, d["kernel"], elementwise) + d["bias"]
        if i < n - 1:
            x = jnp.tanh(x)
    return x


def _fused_layers(p):
    """[(W, b)] of the fused s/t network: [t | s] first layer, block-diagonal after."""
    t, s = p["params"]["t"], p["params"]["s"]
    layers = []
    for i in range(len(t)):
        wt, ws = t[f"Dense_{i}"]["kernel"], s[f"Dense_{i}"]["kernel"]
        if i == 0:
            w = jnp.concatenate([wt, ws], -1)
        else:
            w = jnp.block([[wt, jnp.zeros((wt.shape[0], ws.shape[1]), wt.dtype)],
                           [jnp.zeros((ws.shape[0], wt.shape[1]), ws.dtype), ws]])
        b = jnp.concatenate([t[f"Dense_{i}"]["bias"], s[f"Dense_{i}"]["bias"]], -1)
        layers.append((w, b))
    return layers


def _conditioner(p, xm, fused, elementwise=False):
    if not fused:
        return (_mlp(p["params"]["t"], xm, elementwise),
                _mlp(p["params"]["s"], xm, elementwise))
    h, layers = xm, _fused_layers(p)
    for i, (w, b) in enumerate(layers):
        h = h @ w + b
        if i < len(layers) - 1:
            h = jnp.tanh(h)
    d = xm.shape[-1]
    return h[..., :d], h[..., d:]


def _coupling_inverse(p, x, mask, fused, elementwise=False):
    """Data -> base of one affine coupling, as distrax.MaskedCoupling + ScalarAffine do it."""
    xm = jnp.where(mask, x, 0.0)
    shift, raw = _conditioner(p, xm, fused, elementwise)
    log_scale = bounded_log_scale(raw)
    z = jnp.where(mask, x, (x - shift) * jnp.exp(-log_scale))
    return z, -jnp.sum(jnp.where(mask, 0.0, log_scale), -1)


def flow_log_prob(flow, params, x, *, fused=False, scan=False, elementwise=False):
    """log p(x) of one RealNVP flow (params: the library's tuple, one dict per layer)."""
    masks = _masks(flow)
    log_det = jnp.zeros(x.shape[:-1], x.dtype)
    if scan:
        stacked = jax.tree.map(lambda *a: jnp.stack(a[::-1]), *params)
        m = jnp.asarray(np.stack(masks[::-1]))

        def body(carry, pm):
            z, ld = carry
            z, d = _coupling_inverse(pm[0], z, pm[1], fused, elementwise)
            return (z, ld + d), None

        (x, log_det), _ = jax.lax.scan(body, (x, log_det), (stacked, m))
    else:
        for i in reversed(range(len(params))):
            x, d = _coupling_inverse(params[i], x, masks[i], fused, elementwise)
            log_det = log_det + d
    return -0.5 * jnp.sum(x * x, -1) - flow.dim * HALF_LOG_2PI + log_det


@dataclass(frozen=True)
class ProtoMixture(Mixture):
    """The library's Mixture with ``component_log_prob`` from ``flow_log_prob`` (vmap over K)."""

    fused_st: bool = False
    scan_blocks: bool = False
    elementwise: bool = False

    def component_log_prob(self, params, x, *, state=None, train=False):
        assert self.flow_name == "realnvp" and not self.batch_norm
        fn = lambda p: flow_log_prob(self.flow, p, x, fused=self.fused_st,  # noqa: E731
                                     scan=self.scan_blocks, elementwise=self.elementwise)
        return jax.vmap(fn)(params["components"]).T


def proto_model(cfg, **kw):
    return ProtoMixture(dim=cfg["dim"], n_components=cfg["n_components"],
                        flow_name=cfg["flow_name"], n_blocks=cfg["n_blocks"],
                        hidden=tuple(cfg["hidden"]),
                        posterior_hidden=tuple(cfg["posterior_hidden"]), **kw)


# -- optimiser on one flat vector ----------------------------------------------------------
def _train_mask(params, frozen_prior):
    """Raveled 0/1 vector: 0 on the prior logits when they are not trained."""
    return ravel_pytree({k: jax.tree.map(lambda a, z=(k == "prior_logits" and frozen_prior):
                                         jnp.full_like(a, 0.0 if z else 1.0), v)
                         for k, v in params.items()})[0]


def flat_optimizer(config: train.FitConfig, params) -> optax.GradientTransformation:
    """``train.make_optimizer``'s maths on the raveled parameters: frozen entries (the prior
    unless learned) get zero gradients before clipping, so norms and updates are identical."""
    steps = [optax.clip_by_global_norm(config.clip_norm)] if config.clip_norm else []
    steps.append(optax.adam(config.learning_rate))
    frozen = config.model.prior != "learned"
    mask = _train_mask(params, frozen)
    inner = optax.chain(*steps)

    def init(p):
        return inner.init(ravel_pytree(p)[0])

    def update(g, s, p=None):
        flat_g, unravel = ravel_pytree(g)
        u, s = inner.update(flat_g * mask, s, None if p is None else ravel_pytree(p)[0])
        return unravel(u * mask), s

    return optax.GradientTransformation(init, update)


def make_flat_step(model, fcfg, params):
    """Train step whose carry is (flat parameter vector, flat Adam state); the model sees
    ``unravel(flat)`` (slices), so the gradient arrives as one vector."""
    flat0, unravel = ravel_pytree(params)
    frozen = fcfg.model.prior != "learned"
    mask = _train_mask(params, frozen)
    steps = [optax.clip_by_global_norm(fcfg.clip_norm)] if fcfg.clip_norm else []
    chain = optax.chain(*steps, optax.adam(fcfg.learning_rate))

    def loss_fn(flat, x, y, temperature):
        losses, (_, metrics) = train.point_losses(model, unravel(flat), None, x, y, temperature)
        return losses.mean(), metrics

    @jax.jit
    def step(flat, opt_state, x, y, temperature):
        (loss, metrics), g = jax.value_and_grad(loss_fn, has_aux=True)(flat, x, y, temperature)
        u, opt_state = chain.update(g * mask, opt_state, flat)
        return flat + u * mask, opt_state, loss, metrics

    return step, flat0, chain.init(flat0)


# -- epochs --------------------------------------------------------------------------------
def make_epoch_flat(model, fcfg, params, batch_size):
    """``train.make_epoch`` with the optimiser on one raveled vector: the carry keeps the
    parameter pytree between epochs (raveled once at the start of an epoch, unraveled at the
    end), the Adam state is flat. Returns ``(epoch, initial optimiser state)``."""
    flat0, unravel = ravel_pytree(params)
    mask = _train_mask(params, fcfg.model.prior != "learned")
    steps = [optax.clip_by_global_norm(fcfg.clip_norm)] if fcfg.clip_norm else []
    chain = optax.chain(*steps, optax.adam(fcfg.learning_rate))

    def loss_fn(flat, x, y, temperature):
        losses, (_, metrics) = train.point_losses(model, unravel(flat), None, x, y, temperature)
        return losses.mean(), metrics

    @jax.jit
    def epoch(carry, data, key, temperature):
        params, opt_state, state = carry
        n = data[0].shape[0]
        idx = train._batch_indices(key, n, min(batch_size, n))

        def step(c, i):
            flat, o = c
            (loss, metrics), g = jax.value_and_grad(loss_fn, has_aux=True)(
                flat, data[0][i], data[1][i], temperature)
            u, o = chain.update(g * mask, o, flat)
            return (flat + u * mask, o), (loss, metrics)

        (flat, opt_state), (losses, metrics) = jax.lax.scan(
            step, (ravel_pytree(params)[0], opt_state), idx)
        return (unravel(flat), opt_state, state), losses, jax.tree.map(lambda m: m.mean(0),
                                                                        metrics)

    return epoch, chain.init(flat0)


def make_epoch_donated(model, tx, batch_size):
    """``train.make_epoch`` with the carry donated (same body: re-jit its wrapped function)."""
    epoch = train.make_epoch(model, tx, batch_size)
    return jax.jit(epoch.__wrapped__, donate_argnums=0)


# -- profiling helpers ---------------------------------------------------------------------
def thunk_count(compiled) -> int:
    """Instructions of the optimised entry computation that run as kernels (a proxy for the
    number of XLA:CPU thunks dispatched per call)."""
    text = compiled.as_text()
    entry = text[text.find("ENTRY"):]
    entry = entry[: entry.find("\n}")]
    skip = (" parameter(", " constant(", " tuple(", " get-tuple-element(", " bitcast(")
    return sum(1 for line in entry.splitlines()[1:] if "=" in line
               and not any(s in line for s in skip))


def while_body_thunks(compiled) -> int:
    text = compiled.as_text()
    return text.count(" fusion(") + text.count(" dot(") + text.count(" custom-call(")


def block_of(fn, args, n, thread=None):
    """A block of ``n`` calls; ``thread(out, args) -> args`` chains outputs into inputs."""
    state = [args]

    def block():
        a = state[0]
        for _ in range(n):
            out = fn(*a)
            if thread is not None:
                a = thread(out, a)
        jax.block_until_ready(out)
        state[0] = a
        return n

    return block


def prepare(fn, args, block_s, thread=None):
    compiled, rec = bl.compile_timed(fn, *args)
    rec["thunks"] = thunk_count(compiled)
    jax.block_until_ready(compiled(*args))
    one = block_of(compiled, args, 1, thread)
    one()
    n = bl.calibrate(one, block_s)
    return compiled, rec, block_of(compiled, args, n, thread)


def _perturbed(params, seed=0, scale=0.3):
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda a: a + jnp.asarray(scale * rng.standard_normal(a.shape),
                                                  a.dtype), params)


# -- the in-process comparison -------------------------------------------------------------
def compare(args):
    cfg = bl.config("pinwheel", args.quick)
    t = jnp.float32(1.0)
    lib, tx, params, opt, x, y = bl.setup(cfg)
    fcfg = train.FitConfig(model=lib, batch_size=cfg["batch"], verbose=False)
    params = _perturbed(params)  # away from the zero-initialised identity layers
    opt = tx.init(params)
    out = {"config": cfg, "steps": {}, "checks": {}}

    def thread_step(o, a):
        return (o[0], o[1], *a[2:])

    variants = {
        "library": bl.make_step(lib, tx),
        "plain": bl.make_step(proto_model(cfg), tx),
        "fused_st": bl.make_step(proto_model(cfg, fused_st=True), tx),
        "fused_st+scan": bl.make_step(proto_model(cfg, fused_st=True, scan_blocks=True), tx),
    }
    ftx = flat_optimizer(fcfg, params)  # drop-in: params stay a pytree, Adam state is flat
    variants["flat_opt_wrapper"] = bl.make_step(lib, ftx)
    blocks, recs = {}, {}
    for name, fn in variants.items():
        o = ftx.init(params) if name == "flat_opt_wrapper" else opt
        _, recs[name], blocks[name] = prepare(fn, (params, o, x, y, t), args.block_s,
                                              thread_step)
        print(f"  {name}: trace {recs[name]['trace_s']:.1f} s compile "
              f"{recs[name]['compile_s']:.1f} s thunks {recs[name]['thunks']}", flush=True)
    # flat optimiser, alone and with fused s/t
    for name, model in (("flat_opt", lib),
                        ("fused_st+flat_opt", proto_model(cfg, fused_st=True))):
        fn, flat0, fopt = make_flat_step(model, fcfg, params)
        _, recs[name], blocks[name] = prepare(fn, (flat0, fopt, x, y, t), args.block_s,
                                              thread_step)
        print(f"  {name}: compile {recs[name]['compile_s']:.1f} s thunks "
              f"{recs[name]['thunks']}", flush=True)

    # parts of the library step
    def loss_only(p, x, y, t):
        return train.point_losses(lib, p, None, x, y, t)[0].mean()

    grads = jax.grad(loss_only)(params, x, y, t)

    def opt_only(g, o, p):
        u, o = tx.update(g, o, p)
        return optax.apply_updates(p, u), o

    parts = {"part:loss": (jax.jit(loss_only), (params, x, y, t)),
             "part:loss+grad": (jax.jit(jax.value_and_grad(loss_only)), (params, x, y, t)),
             "part:optimizer": (jax.jit(opt_only), (grads, opt, params)),
             "part:component_log_prob": (jax.jit(lib.component_log_prob), (params, x))}
    for name, (fn, a) in parts.items():
        _, recs[name], blocks[name] = prepare(fn, a, args.block_s)
        print(f"  {name}: thunks {recs[name]['thunks']}", flush=True)

    # correctness: every prototype's loss and gradients equal the library's
    ref_loss, ref_g = jax.value_and_grad(loss_only)(params, x, y, t)
    for name, kw in (("plain", {}), ("fused_st", {"fused_st": True}),
                     ("fused_st+scan", {"fused_st": True, "scan_blocks": True}),
                     ("elementwise", {"elementwise": True})):  # (~0.3x: XLA CPU reduces slowly)
        m = proto_model(cfg, **kw)
        lv, g = jax.value_and_grad(
            lambda p, m=m: train.point_losses(m, p, None, x, y, t)[0].mean())(params)
        err = max(float(jnp.max(jnp.abs(a - b)) / (1e-6 + jnp.max(jnp.abs(b))))
                  for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(ref_g)))
        out["checks"][name] = {"loss_diff": float(abs(lv - ref_loss)), "grad_rel_err": err}
    fn, flat0, fopt = make_flat_step(lib, fcfg, params)
    p1 = bl.make_step(lib, tx)(params, opt, x, y, t)[0]
    f1 = fn(flat0, fopt, x, y, t)[0]
    w1 = bl.make_step(lib, ftx)(params, ftx.init(params), x, y, t)[0]
    out["checks"]["flat_opt"] = {"param_max_diff": float(jnp.max(jnp.abs(
        ravel_pytree(p1)[0] - f1)))}
    out["checks"]["flat_opt_wrapper"] = {"param_max_diff": float(jnp.max(jnp.abs(
        ravel_pytree(p1)[0] - ravel_pytree(w1)[0])))}

    rates = bl.interleaved(blocks, args.repeats)
    base = rates["library"]
    for name, r in rates.items():
        out["steps"][name] = {**recs[name], "calls_per_s": bl.stats(r),
                              "ms": 1e3 / bl.stats(r)["median"]}
        if not name.startswith("part:"):
            out["steps"][name]["speedup_vs_library"] = bl.stats(
                [a / b for a, b in zip(r, base)])

    # epochs: library vs donated carry vs fused_st (scan over batches, 5 batches: the paper's)
    n = 5 * cfg["batch"]
    data = (jax.random.normal(jax.random.key(7), (n, cfg["dim"]), jnp.float32),
            jnp.full((n,), -1, jnp.int32))
    keys = bl.key_cycle()
    eblocks, erecs = {}, {}
    fused_model = proto_model(cfg, fused_st=True)
    no_ynn = OPTIONS["no_ynn"]
    lib_epoch = train.make_epoch(lib, tx, cfg["batch"])
    epochs = [("epoch:library", lib_epoch, opt, {}),
              ("epoch:library[no_ynn]", lib_epoch, opt, no_ynn),
              ("epoch:donate", make_epoch_donated(lib, tx, cfg["batch"]), opt, {}),
              ("epoch:fused_st", train.make_epoch(fused_model, tx, cfg["batch"]), opt, {})]
    for name, model in (("epoch:flat_opt", lib), ("epoch:fused_st+flat_opt", fused_model)):
        epochs.append((name, *make_epoch_flat(model, fcfg, params, cfg["batch"]), {}))
    epochs.append(("epoch:fused_st+flat_opt[no_ynn]", *epochs[-1][1:3], no_ynn))
    for name, ep, o, opts in epochs:
        carry = jax.tree.map(jnp.copy, (params, o, None))
        compiled, erecs[name] = bl.compile_timed(ep, carry, data, next(keys), t,
                                                 compiler_options=opts)
        eblocks[name] = _epoch_block(compiled, carry, data, keys, t, 5, args.block_s)
        print(f"  {name}: compile {erecs[name]['compile_s']:.1f} s", flush=True)
    erates = bl.interleaved(eblocks, args.repeats)
    for name, r in erates.items():
        out["steps"][name] = {**erecs[name], "steps_per_s": bl.stats(r),
                              "speedup_vs_library": bl.stats(
                                  [a / b for a, b in zip(r, erates["epoch:library"])])}
    return out


def _epoch_block(compiled, carry, data, keys, t, steps_per_epoch, block_s):
    """A timing block for ``bl.interleaved``: as many compiled epochs as fill ``block_s``,
    each fetching its metrics (as ``fit`` does); returns the number of steps run."""
    state = [carry]

    def one():
        c, losses, metrics = compiled(state[0], data, next(keys), t)
        jax.device_get((losses, metrics))
        state[0] = c

    one()
    k = bl.calibrate(one, block_s)

    def block():
        for _ in range(k):
            one()
        return steps_per_epoch * k

    return block


# -- XLA compile options, in process (``jit(...).lower(...).compile(compiler_options=...)``) -
OPTIONS = {
    "default": {},
    "eigen_single_thread": {"xla_cpu_multi_thread_eigen": False},
    "no_ynn": {"xla_cpu_experimental_ynn_fusion_type": ""},
    "no_ynn+eigen_single_thread": {"xla_cpu_experimental_ynn_fusion_type": "",
                                   "xla_cpu_multi_thread_eigen": False},
    "fast_compile": {"xla_cpu_opt_preset": "CPU_OPT_PRESET_FAST_COMPILE"},
    "fast_compile+no_ynn": {"xla_cpu_opt_preset": "CPU_OPT_PRESET_FAST_COMPILE",
                            "xla_cpu_experimental_ynn_fusion_type": ""},
}


def compare_options(args, name):
    """The library's epoch (pinwheel: 5 batches, the paper's epoch; mnist: 3 batches) compiled
    under each option set; compile seconds and steps/s, interleaved in one process."""
    cfg = bl.config(name, args.quick)
    lib, tx, params, opt, _, _ = bl.setup(cfg)
    n_b = 5 if name == "pinwheel" else 3
    n = n_b * cfg["batch"]
    data = (jax.random.normal(jax.random.key(7), (n, cfg["dim"]), jnp.float32),
            jnp.full((n,), -1, jnp.int32))
    t = jnp.float32(1.0)
    lowered = train.make_epoch(lib, tx, cfg["batch"]).lower((params, opt, None), data,
                                                          jax.random.key(0), t)
    keys = bl.key_cycle()
    blocks, recs = {}, {}
    for oname, opts in OPTIONS.items():
        t0 = time.perf_counter()
        try:
            compiled = lowered.compile(compiler_options=opts)
        except Exception as e:  # noqa: BLE001 - an option this jaxlib lacks
            recs[oname] = {"options": opts, "error": str(e).splitlines()[0][:200]}
            continue
        recs[oname] = {"options": opts, "compile_s": time.perf_counter() - t0}
        blocks[oname] = _epoch_block(compiled, jax.tree.map(jnp.copy, (params, opt, None)),
                                     data, keys, t, n_b, args.block_s)
        print(f"  {name} options {oname}: compile {recs[oname]['compile_s']:.1f} s", flush=True)
    rates = bl.interleaved(blocks, args.repeats if name == "pinwheel" else 3)
    for oname, r in rates.items():
        recs[oname].update(steps_per_s=bl.stats(r), speedup_vs_default=bl.stats(
            [a / b for a, b in zip(r, rates["default"])]))
    return recs


# -- XLA flags (one subprocess per setting) ------------------------------------------------
FLAGS = {
    "default": "",
    "eigen_single_thread+intra_op_1": ("--xla_cpu_multi_thread_eigen=false "
                                       "intra_op_parallelism_threads=1"),
    "no_ynn": "--xla_cpu_experimental_ynn_fusion_type=",
}


def flag_worker(args):
    """Run in a subprocess: the library's step rate under this process's XLA_FLAGS."""
    cfg = bl.config(args.config, args.quick)
    lib, tx, params, opt, x, y = bl.setup(cfg)
    t = jnp.float32(1.0)
    _, rec, block = prepare(bl.make_step(lib, tx), (params, opt, x, y, t), args.block_s,
                            lambda o, a: (o[0], o[1], *a[2:]))
    rates = bl.interleaved({"step": block}, args.repeats)["step"]
    print(json.dumps({"compile_s": rec["compile_s"], "trace_s": rec["trace_s"],
                      "rates": rates}))


def compare_flags(args):
    """Alternate subprocesses (A B C .. A B C ..) so load drift hits every setting alike."""
    reps = "5" if args.config == "pinwheel" else "3"
    runs = {name: [] for name in FLAGS}
    compiles = {name: [] for name in FLAGS}
    errors = {}
    for _ in range(args.flag_rounds):
        for name, flags in FLAGS.items():
            if name in errors:
                continue
            env = {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"}
            cmd = [sys.executable, __file__, "--flag-worker", "--repeats", reps,
                   "--config", args.config, "--block-s", str(args.block_s)]
            cmd += ["--quick"] if args.quick else []
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
            if proc.returncode:
                errors[name] = proc.stderr.strip().splitlines()[-1:] or ["failed"]
                print(f"  flags {name}: failed: {errors[name][0][:200]}", flush=True)
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            runs[name].append(float(np.median(r["rates"])))
            compiles[name].append(r["compile_s"])
            print(f"  flags {name}: {runs[name][-1]:.1f} steps/s, compile "
                  f"{r['compile_s']:.1f} s", flush=True)
    out = {}
    for name, r in runs.items():
        if not r:
            out[name] = {"flags": FLAGS[name], "error": errors.get(name)}
            continue
        base = runs["default"][: len(r)]
        out[name] = {"flags": FLAGS[name], "steps_per_s": bl.stats(r),
                     "compile_s": bl.stats(compiles[name]),
                     "speedup_vs_default": bl.stats([a / b for a, b in zip(r, base)])}
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--flags", action="store_true", help="also compare XLA flags (subprocesses)")
    p.add_argument("--no-compare", action="store_true", help="skip the in-process comparison")
    p.add_argument("--options", nargs="*", default=[], choices=sorted(bl.CONFIGS),
                   help="compare XLA compile options on these configurations' epochs")
    p.add_argument("--flag-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--flag-rounds", type=int, default=2)
    p.add_argument("--config", default="pinwheel", choices=sorted(bl.CONFIGS),
                   help="configuration of the --flags comparison")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--block-s", type=float, default=0.3)
    p.add_argument("--out", type=Path, default=ROOT / "results" / "protos.json")
    args = p.parse_args(argv)
    if args.flag_worker:
        return flag_worker(args)
    res = {"device": bl.device_info()}
    t0 = time.perf_counter()
    if not args.no_compare:
        res["compare"] = compare(args)
        for name, r in res["compare"]["steps"].items():
            rate = r.get("calls_per_s", r.get("steps_per_s"))
            sp = r.get("speedup_vs_library", {}).get("median")
            print(f"{name:24s} {rate['median']:9.1f}/s [{rate['min']:.1f}, {rate['max']:.1f}]"
                  + (f"  x{sp:.2f} vs library" if sp else "")
                  + f"  compile {r['compile_s']:.1f} s"
                  + (f"  thunks {r['thunks']}" if "thunks" in r else ""))
        print("checks:", json.dumps(res["compare"]["checks"]))
    if args.options:
        res["options"] = {name: compare_options(args, name) for name in args.options}
        for name, recs in res["options"].items():
            for oname, r in recs.items():
                if "error" in r:
                    print(f"{name:8s} {oname:28s} error: {r['error']}")
                    continue
                print(f"{name:8s} {oname:28s} {r['steps_per_s']['median']:8.1f} steps/s  x"
                      f"{r['speedup_vs_default']['median']:.2f}  compile {r['compile_s']:.1f} s")
    if args.flags:
        res["flags"] = {"config": args.config, **compare_flags(args)}
        for name, r in res["flags"].items():
            if name == "config":
                continue
            if "error" in r:
                print(f"{name:32s} error: {r['error']}")
            else:
                print(f"{name:32s} {r['steps_per_s']['median']:8.1f} steps/s  x"
                      f"{r['speedup_vs_default']['median']:.2f}  compile "
                      f"{r['compile_s']['median']:.1f} s")
    res["wall_s"] = time.perf_counter() - t0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1))
    print(f"wrote {args.out}")
    return res


if __name__ == "__main__":
    main()
