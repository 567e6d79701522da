"""``make bench``, section ``flows``: every flow and base through ``VMoNF.fit``, with compile time.

One row per configuration (``CONFIGS``): the pinwheel-sized components (dim 2, K=5, 8 blocks
of hidden 8, posterior (3,), batch 512, 2,560 rows) as RealNVP, spline coupling and
autoregressive spline, each over a standard-normal and a Student-t base where it differs;
and the wide ones (dim 784, K=5, 5 MADE blocks of hidden 200, posterior (512,), batch 100,
1,000 rows and 2 epochs; the autoregressive spline, at about 8 s a step here, 300 rows and
1 epoch) as MAF and autoregressive spline. Spline flows use the library's default bins
(8) and bound (4). The data are standard-normal rows (speed does not depend on them).

Per configuration, in one process (every fit: ``n_init=1``, ``init="random"``, no early
stopping, ``consistency=0``, so that only the train epochs differ between fits):

- ``cold_fit_s``: the first fit of ``epochs`` epochs of this configuration (compiles);
- ``warm_fit_s``: the same fit again, ``rounds`` times (every program compiled: the
  estimator's jitted programs are cached per model in the process), median;
- ``compile_s`` = ``cold_fit_s - warm_fit_s``: what compilation (tracing included) adds to a
  fit of this configuration;
- ``steps_per_s``: train steps of a warm fit over its wall time (median, min and max over
  rounds): the whole ``VMoNF.fit`` call, so its fixed costs (preprocessing, initialisation,
  the final scoring) count against the steps. Two fits of different lengths cannot isolate
  the steps here: the estimator compiles one program per chunk length
  (``train.prepare.chunk_length``), so a longer fit may compile again;
- ``n_parameters``: the fitted model's trained scalars.

A throwaway fit of a tiny model first takes the process's one-time start-up out of the
first row's compile time.
"""

import math
import statistics
import time

import numpy as np

PINWHEEL = dict(dim=2, n_components=5, n_blocks=8, hidden=(8,), posterior_hidden=(3,),
                batch_size=512, rows=2560, epochs=50, rounds=3)
WIDE = dict(dim=784, n_components=5, n_blocks=5, hidden=(200,), posterior_hidden=(512,),
            batch_size=100, rows=1000, epochs=2, rounds=1)
CONFIGS = {
    "pinwheel realnvp": {**PINWHEEL, "flow": "realnvp"},
    "pinwheel realnvp student_t": {**PINWHEEL, "flow": "realnvp", "base": "student_t"},
    "pinwheel spline": {**PINWHEEL, "flow": "spline"},
    "pinwheel spline student_t": {**PINWHEEL, "flow": "spline", "base": "student_t"},
    "pinwheel spline_ar": {**PINWHEEL, "flow": "spline_ar"},
    "wide maf": {**WIDE, "flow": "maf"},
    # about 8 s a step on the 2-core CPU (95M parameters: MADE emits 23 spline parameters per
    # pixel): 3 steps a fit keep the default run short
    "wide spline_ar": {**WIDE, "flow": "spline_ar", "rows": 300, "epochs": 1},
}
# --quick: the same code paths on tiny shapes (a smoke test, not a measurement)
QUICK = {
    "pinwheel": dict(n_blocks=2, hidden=(4,), batch_size=64, rows=256, epochs=1, rounds=1),
    "wide": dict(dim=8, n_blocks=1, hidden=(16,), posterior_hidden=(8,), batch_size=16,
                 rows=64, epochs=1, rounds=1),
}
ESTIMATOR_KEYS = ("n_components", "flow", "n_blocks", "hidden", "posterior_hidden",
                  "batch_size", "base")


def config(name: str, quick: bool = False) -> dict:
    cfg = CONFIGS[name]
    return {**cfg, **(QUICK[name.split()[0]] if quick else {})}


def _estimator(cfg: dict, epochs: int):
    from vmonf_jax import VMoNF

    kw = {k: cfg[k] for k in ESTIMATOR_KEYS if k in cfg}
    return VMoNF(**kw, epochs=epochs, n_init=1, init="random", early_stopping=False,
                 consistency=0.0, seed=0, verbose=False)


def _data(cfg: dict) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((cfg["rows"], cfg["dim"])).astype(
        np.float32)


def _fit_s(cfg, x, epochs):
    """Seconds of one ``VMoNF.fit`` of ``epochs`` epochs, and the fitted model."""
    m = _estimator(cfg, epochs)
    t = time.perf_counter()
    m.fit(x)
    return time.perf_counter() - t, m


def stats(v) -> dict:
    v = [float(a) for a in v]
    return {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)}


def measure(cfg: dict) -> dict:
    """The row of one configuration (see the module's docstring)."""
    x = _data(cfg)
    steps = cfg["epochs"] * math.ceil(cfg["rows"] / cfg["batch_size"])
    cold, model = _fit_s(cfg, x, cfg["epochs"])
    warm = [_fit_s(cfg, x, cfg["epochs"])[0] for _ in range(cfg["rounds"])]
    warm_s = statistics.median(warm)
    return {"config": dict(cfg), "n_parameters": int(model.n_parameters()),
            "cold_fit_s": cold, "warm_fit_s": warm_s, "compile_s": max(cold - warm_s, 0.0),
            "steps_per_s": stats([steps / w for w in warm]), "steps_per_fit": steps}


def warm_up():
    """A tiny fit: the process's one-time costs (backend start, first programs) go here."""
    cfg = {**config("pinwheel realnvp", quick=True), "rows": 32, "batch_size": 16}
    _fit_s(cfg, _data(cfg), 1)


def run(quick: bool, names=None, log=print) -> dict:
    """Every configuration's row (``names``: a subset of ``CONFIGS``)."""
    warm_up()
    out = {}
    for name in names or CONFIGS:
        cfg = config(name, quick)
        log(f"  flows: {name} (a cold fit of {cfg['epochs']} epochs, then {cfg['rounds']} "
            "warm)")
        out[name] = measure(cfg)
        r = out[name]
        log(f"    {_rate(r['steps_per_s']['median'])} steps/s, compile {r['compile_s']:.1f} s "
            f"(cold {r['cold_fit_s']:.1f} s - warm {r['warm_fit_s']:.1f} s), "
            f"{r['n_parameters']:,} parameters")
    return out


def _rate(v: float) -> str:
    return f"{v:.1f}" if v >= 1 else f"{v:.3f}"


def table(rows: dict) -> str:
    """Markdown rows: configuration, parameters, steps/s [min, max], compile s."""
    lines = ["| configuration | parameters | steps/s through VMoNF.fit [min, max] | compile s "
             "(cold - warm fit) |", "|---|---|---|---|"]
    for name, r in rows.items():
        s = r["steps_per_s"]
        lines.append(f"| {name} | {r['n_parameters']:,} | {_rate(s['median'])} "
                     f"[{_rate(s['min'])}, {_rate(s['max'])}] | {r['compile_s']:.1f} |")
    return "\n".join(lines)
