"""Helpers of ``benchmarks/bench.py``: configurations, the per-component loop baseline, timing,
FLOP counts, the dense-matmul reference and memory records.

Nothing here changes the library: the loop baseline subclasses ``Mixture`` and only replaces
``component_log_prob`` (one ``flow.log_prob`` call per component on parameters sliced out of
the same stacked pytree), so the loss, gradients and optimiser are the library's own.
"""

import datetime
import functools
import os
import platform
import resource
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from vmonf_jax import train
from vmonf_jax.model.mixture import Mixture

# -- configurations -----------------------------------------------------------------------
CONFIGS = {
    "pinwheel": dict(dim=2, n_components=5, flow_name="realnvp", n_blocks=8, hidden=(8,),
                     posterior_hidden=(3,), batch=512),
    "mnist": dict(dim=784, n_components=5, flow_name="maf", n_blocks=5, hidden=(200,),
                  posterior_hidden=(512,), batch=100),
}
# --quick: the same code paths on tiny shapes (a smoke test, not a measurement)
QUICK = {
    "pinwheel": dict(n_blocks=2, hidden=(4,), batch=64),
    "mnist": dict(dim=8, n_blocks=1, hidden=(16,), posterior_hidden=(8,), batch=16),
}


def config(name: str, quick: bool = False, **changes) -> dict:
    return {**CONFIGS[name], **(QUICK[name] if quick else {}), **changes}


class LoopMixture(Mixture):
    """The same model evaluated by a Python loop over components (the paper's PyTorch style).

    Parameters stay stacked (leading K axis); component k is ``flow.log_prob`` on the k-th
    slice, so K separate chains of small ops are traced into the one jit.
    """

    def component_log_prob(self, params, x, *, state=None, train=False):
        if self.batch_norm:
            raise NotImplementedError("the loop baseline covers flows without batch-norm")
        comps = params["components"]
        cols = [self.flow.log_prob(jax.tree.map(lambda a, k=k: a[k], comps), x)
                for k in range(self.n_components)]
        lp = jnp.stack(cols, axis=1)
        return (lp, self._state(state)) if train else lp


def make_model(cfg: dict, variant: str = "fused") -> Mixture:
    cls = {"fused": Mixture, "loop": LoopMixture}[variant]
    return cls(dim=cfg["dim"], n_components=cfg["n_components"], flow_name=cfg["flow_name"],
               n_blocks=cfg["n_blocks"], hidden=tuple(cfg["hidden"]),
               posterior_hidden=tuple(cfg["posterior_hidden"]))


def make_step(model, tx):
    """The jitted train step of ``train.make_epoch`` (same loss, metrics, Optax update)."""

    def loss_fn(params, x, y, temperature):
        losses, (_, metrics) = train.point_losses(model, params, None, x, y, temperature)
        return losses.mean(), metrics

    def step(params, opt_state, x, y, temperature):
        (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            params, x, y, temperature)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, metrics

    return jax.jit(step)


@functools.cache
def _jitted_init(model):
    return jax.jit(model.init)


def init_params(model, seed: int = 0):
    """The parameters of ``model.init`` (no batch-norm here: its state has no arrays), under
    one jit (eagerly it dispatches hundreds of tiny ops)."""
    return _jitted_init(model)(jax.random.key(seed))[0]


def setup(cfg: dict, variant: str = "fused", seed: int = 0):
    """Model, optimiser, initial (params, opt_state) and one batch (X, y=-1) on device."""
    model = make_model(cfg, variant)
    tx = train.make_optimizer(train.FitConfig(model=model, batch_size=cfg["batch"],
                                              verbose=False))
    params = init_params(make_model(cfg, "fused"), seed)  # the loop reads the same pytree
    x = jax.random.normal(jax.random.key(seed + 1), (cfg["batch"], cfg["dim"]), jnp.float32)
    y = jnp.full((cfg["batch"],), -1, jnp.int32)
    return model, tx, params, tx.init(params), x, y


# -- compile and time ---------------------------------------------------------------------
def compile_timed(jitted, *args, compiler_options=None, **kwargs):
    """``(compiled, record)``: trace+lower and XLA compile seconds, XLA memory and FLOPs."""
    t0 = time.perf_counter()
    lowered = jitted.lower(*args, **kwargs)
    t1 = time.perf_counter()
    compiled = lowered.compile(compiler_options=compiler_options or None)
    t2 = time.perf_counter()
    rec = {"trace_s": t1 - t0, "compile_s": t2 - t1}
    rec.update(xla_memory(compiled))
    cost = _cost(compiled)
    if cost.get("flops"):
        rec["xla_flops"] = float(cost["flops"])
    return compiled, rec


def _cost(compiled):
    try:
        cost = compiled.cost_analysis()
    except Exception:  # noqa: BLE001 - not every backend implements it
        return {}
    if isinstance(cost, list | tuple):
        cost = cost[0] if cost else {}
    return dict(cost or {})


def xla_memory(compiled) -> dict:
    """XLA's buffer assignment of one executable (bytes): arguments, outputs, temporaries."""
    try:
        m = compiled.memory_analysis()
    except Exception:  # noqa: BLE001
        return {}
    if m is None:
        return {}
    keys = ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes",
            "generated_code_size_in_bytes")
    return {f"xla_{k}": int(getattr(m, k)) for k in keys if hasattr(m, k)}


def key_cycle(n: int = 16):
    """An endless cycle of ``n`` PRNG keys (epochs need fresh keys; iterating a big key
    array eagerly costs a compilation per call pattern)."""
    import itertools

    return itertools.cycle([jax.random.key(i) for i in range(n)])


def stats(values) -> dict:
    v = [float(a) for a in values]
    return {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)}


def calibrate(run_once, target_s: float, cap: int = 10_000) -> int:
    """How many calls of ``run_once`` (already warm) fill about ``target_s`` seconds."""
    t = time.perf_counter()
    run_once()
    dt = max(time.perf_counter() - t, 1e-6)
    return int(min(cap, max(1, round(target_s / dt))))


def interleaved(blocks: dict, repeats: int) -> dict:
    """Time callables round-robin (A B A B ...) so a load change hits all alike.

    ``blocks[name]() -> work done`` (steps, points, FLOPs, ...); returns, per name, the list
    of work/second of each repeat.
    """
    rates = {name: [] for name in blocks}
    for _ in range(repeats):
        for name, block in blocks.items():
            t = time.perf_counter()
            work = block()
            rates[name].append(work / (time.perf_counter() - t))
    return rates


def step_runner(compiled, params, opt_state, x, y, temperature, n: int):
    """A block of ``n`` chained train steps (blocks once at the end); returns ``n``."""
    carry = [params, opt_state]

    def block():
        p, o = carry
        for _ in range(n):
            p, o, loss, _ = compiled(p, o, x, y, temperature)
        jax.block_until_ready((p, loss))
        carry[:] = [p, o]
        return n

    return block


# -- FLOPs --------------------------------------------------------------------------------
def kernel_weights(params) -> int:
    """Number of matmul weights: every leaf named ``kernel`` (stacked K axis included)."""
    total = 0
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        if any(getattr(k, "key", None) == "kernel" for k in path):
            total += int(np.prod(leaf.shape))
    return total


def step_flops(cfg: dict, params=None) -> dict:
    """Analytic matmul FLOPs of one train step (API.md: forward 2mnk per matmul, masked
    weights count fully, a training step = 3x forward), with the formula as text."""
    b, d, k, L = cfg["batch"], cfg["dim"], cfg["n_components"], cfg["n_blocks"]
    hs, ps = list(cfg["hidden"]), list(cfg["posterior_hidden"])

    def chain(sizes):
        return sum(a * c for a, c in zip(sizes[:-1], sizes[1:]))

    if cfg["flow_name"] == "maf":  # MADE: D -> H.. -> 2D (shift and log-scale heads)
        widths = [[d, *hs, 2 * d]] * L
        sym = "MADE (D*H + H*2D)"
    else:  # split coupling: one MLP from the kept part A to two heads for the other part
        split = (d + 1) // 2
        kept = [split if i % 2 == 0 else d - split for i in range(L)]
        widths = [[a, *hs, 2 * (d - a)] for a in kept]
        sym = "coupling (A*H + H*2(D-A)), A = kept width"
    blocks = sum(chain(w) for w in widths)
    # blocks alternate (split coupling of odd D): one term per distinct block shape
    shapes = {tuple(w): widths.count(w) for w in widths}
    block_txt = " + ".join(f"{n} * [" + " + ".join(f"{a}*{c}" for a, c in zip(w[:-1], w[1:]))
                           + "]" for w, n in shapes.items())
    post = chain([d, *ps, k])
    post_txt = " + ".join(f"{a}*{c}" for a, c in zip([d, *ps], [*ps, k]))
    fwd = 2 * b * (k * blocks + post)
    out = {
        "formula": (f"3 * 2 * B * (K * sum over L blocks [{sym}] + posterior (D*P + P*K)) = "
                    f"3 * 2 * {b} * ({k} * ({block_txt}) + [{post_txt}])"),
        "forward": fwd, "train_step": 3 * fwd,
    }
    if params is not None:  # cross-check: every kernel weight is used once per forward row
        assert 2 * b * kernel_weights(params) == fwd, (kernel_weights(params), fwd)
    return out


# -- the machine's dense matmul -----------------------------------------------------------
def matmul_blocks(n_square: int, mnist_cfg: dict, target_s: float):
    """Runnable blocks for a square n x n float32 matmul and the mnist-shaped batched one
    (K x (B x D) @ (D x H), the first MADE layer of every component); each returns FLOPs."""
    mm = jax.jit(lambda a, b: a @ b)
    a = jax.random.normal(jax.random.key(0), (n_square, n_square), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (n_square, n_square), jnp.float32)
    k, bt, d = mnist_cfg["n_components"], mnist_cfg["batch"], mnist_cfg["dim"]
    h = mnist_cfg["hidden"][0]
    bmm = jax.jit(lambda a, b: jnp.einsum("kbd,kdh->kbh", a, b))
    xa = jax.random.normal(jax.random.key(2), (k, bt, d), jnp.float32)
    wb = jax.random.normal(jax.random.key(3), (k, d, h), jnp.float32)
    out = {}
    for name, fn, args, flops in (("square", mm, (a, b), 2 * n_square**3),
                                  ("mnist_shaped", bmm, (xa, wb), 2 * k * bt * d * h)):
        jax.block_until_ready(fn(*args))
        n = calibrate(lambda fn=fn, args=args: jax.block_until_ready(fn(*args)), target_s)

        def block(fn=fn, args=args, n=n, flops=flops):
            for _ in range(n):
                r = fn(*args)
            jax.block_until_ready(r)
            return n * flops

        out[name] = block
    return out, {"square": f"{n_square}x{n_square} @ {n_square}x{n_square}",
                 "mnist_shaped": f"{k} x ({bt}x{d} @ {d}x{h})"}


# -- memory and the machine ---------------------------------------------------------------
def peak_rss_mb() -> float:
    """Process peak resident set size (MiB; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def device_memory() -> dict:
    """Device memory stats (GPU: bytes in use and peak); {} on CPU where there are none."""
    try:
        st = jax.devices()[0].memory_stats()
    except Exception:  # noqa: BLE001
        st = None
    if not st:
        return {}
    keys = ("bytes_in_use", "peak_bytes_in_use", "bytes_limit")
    return {k: int(st[k]) for k in keys if k in st}


def memory_record() -> dict:
    rec = {"peak_rss_mb": round(peak_rss_mb(), 1)}
    dev = device_memory()
    if dev:
        rec["device"] = dev
    return rec


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def device_info() -> dict:
    import flax
    import jaxlib

    devs = jax.devices()
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "platform": devs[0].platform,
        "devices": [str(d) for d in devs],
        "device_kind": devs[0].device_kind,
        "n_devices": len(devs),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "host": platform.platform(),
        "python": platform.python_version(),
        "versions": {"jax": jax.__version__, "jaxlib": jaxlib.__version__,
                     "flax": flax.__version__, "optax": optax.__version__,
                     "numpy": np.__version__},
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "default_matmul_precision": str(jax.config.values.get("jax_default_matmul_precision")),
        "load_avg": list(os.getloadavg()),
    }
