"""Side by side with flowjax (issue 11's table), all in one run of ``make bench``.

Three rows, on the pinwheel configuration (dim 2, 8 coupling blocks of hidden 8, tanh,
batch 512, Adam 1e-3, 2,560 training points):

1-2. train steps/s through ``VMoNF.fit`` (K=5 and K=20, one restart, random init, compile
   excluded: two fits of ``short`` and ``long`` epochs timed back to back, steps/s =
   extra steps / extra seconds) against flowjax's jitted ``train_utils.step`` (the step of
   its ``fit_to_data``) on a ``VmapMixture`` of K ``coupling_flow``s of the same size
   (MLE only: no posterior network, no temperature);
3. the default ``VMoNF`` fit (its default restarts and warm start, 400 epochs) against
   flowjax's ``fit_to_data`` of 400 epochs (patience 400, so every epoch runs; 2,560
   training points plus a 256-point validation split, so both see 5 batches an epoch),
   each cold: a fresh process, compile included (seconds from building the model to the
   fitted model; imports excluded); and each fit's mean log-likelihood on 2,560 rows of
   another draw (seed 1) in the training rows' units, so time is read beside quality.

Rounds alternate the variants, so load drift hits them alike; ratios are medians of
per-round ratios. Where flowjax is not installed (the ``bench`` extra), ``run`` returns
a note and nothing else.

    python benchmarks/flowjax_side.py --cold ours|flowjax [--quick]   # one cold fit, JSON
"""

import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

# pinwheel: the paper's configuration; quick: the same code paths on tiny shapes
CONFIG = dict(n_blocks=8, hidden=(8,), posterior_hidden=(3,), batch_size=512,
              learning_rate=1e-3, n_per_wing=512, epochs=400, short=10, long=100, ks=(5, 20))
QUICK = dict(n_blocks=2, hidden=(4,), batch_size=64, n_per_wing=64, epochs=3, short=1,
             long=4, ks=(5,))
N_VAL = 256  # flowjax's validation split in the cold fit (ours holds out 15% of its rows)


def available() -> bool:
    """True where flowjax (the ``bench`` extra) is importable."""
    return importlib.util.find_spec("flowjax") is not None


def config(quick: bool) -> dict:
    return {**CONFIG, **(QUICK if quick else {})}


def pinwheel_points(cfg: dict, extra: int = 0, seed: int = 0) -> np.ndarray:
    """The training points (5 wings), standardised, plus ``extra`` more from the same draw."""
    from vmonf_jax.data import pinwheel

    x, _ = pinwheel(n_per_wing=cfg["n_per_wing"] + -(-extra // 5), seed=seed)
    x = x[: 5 * cfg["n_per_wing"] + extra]
    return ((x - x.mean(0)) / x.std(0)).astype(np.float32)


def train_test_points(cfg: dict, seed: int, test_seed: int):
    """``(x, x_test, y_test)``: the pinwheel draw ``seed`` standardised, and the draw
    ``test_seed`` in its units (held-out rows, wing labels)."""
    from vmonf_jax.data import pinwheel

    x, _ = pinwheel(n_per_wing=cfg["n_per_wing"], seed=seed)
    xt, yt = pinwheel(n_per_wing=cfg["n_per_wing"], seed=test_seed)
    mu, sd = x.mean(0), x.std(0)
    return ((x - mu) / sd).astype(np.float32), ((xt - mu) / sd).astype(np.float32), yt


def held_out_points(cfg: dict) -> np.ndarray:
    """A fresh pinwheel draw (seed 1) in the training draw's standardised units: the rows
    both sides' held-out log-likelihood is measured on."""
    return train_test_points(cfg, 0, 1)[1]


def estimator(cfg: dict, k: int, **kw):
    from vmonf_jax import VMoNF

    keys = ("n_blocks", "hidden", "posterior_hidden", "batch_size", "learning_rate")
    return VMoNF(n_components=k, verbose=False, **{n: cfg[n] for n in keys}, **kw)


def flowjax_mixture(cfg: dict, k: int, dim: int = 2, seed: int = 0):
    """flowjax ``VmapMixture`` of ``k`` coupling flows of our component's size."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    from flowjax.distributions import Normal, VmapMixture
    from flowjax.flows import coupling_flow

    if len(set(cfg["hidden"])) != 1:
        raise ValueError(f"flowjax's conditioner has one width; got hidden={cfg['hidden']}")

    def one(key):
        return coupling_flow(key, base_dist=Normal(jnp.zeros(dim)), flow_layers=cfg["n_blocks"],
                             nn_width=cfg["hidden"][0], nn_depth=len(cfg["hidden"]),
                             nn_activation=jnp.tanh)

    flows = eqx.filter_vmap(one)(jax.random.split(jax.random.key(seed), k))
    return VmapMixture(flows, weights=jnp.ones(k))


def _partition(tree):
    import equinox as eqx
    import paramax

    return eqx.partition(tree, eqx.is_inexact_array,
                         is_leaf=lambda leaf: isinstance(leaf, paramax.NonTrainable))


def _count(tree) -> int:
    import jax

    return int(sum(np.prod(a.shape) for a in jax.tree.leaves(tree)))


def param_counts(cfg: dict, k: int, dim: int = 2) -> dict:
    """Trainable parameters: ours (K flows; the posterior network apart) and flowjax's."""
    import jax

    from vmonf_jax.model.mixture import Mixture

    model = Mixture(dim=dim, n_components=k, n_blocks=cfg["n_blocks"],
                    hidden=tuple(cfg["hidden"]), posterior_hidden=tuple(cfg["posterior_hidden"]))
    params, _ = jax.eval_shape(model.init, jax.random.key(0))
    return {"ours_flows": _count(params["components"]),
            "ours_posterior": _count(params["posterior"]),
            "flowjax": _count(_partition(flowjax_mixture(cfg, k, dim))[0])}


# -- steps/s (warm, one process) ------------------------------------------------------------
def ours_fit_rate(cfg: dict, k: int, x: np.ndarray):
    """A measurement (call -> steps/s) of ``VMoNF.fit``'s training speed, compile excluded."""
    steps_per_epoch = math.ceil(x.shape[0] / cfg["batch_size"])

    def fit_s(epochs):
        m = estimator(cfg, k, epochs=epochs, n_init=1, init="random")
        t = time.perf_counter()
        m.fit(x)
        return time.perf_counter() - t

    fit_s(cfg["short"]), fit_s(cfg["long"])  # compile, warm every cache

    def measure():
        dt = fit_s(cfg["long"]) - fit_s(cfg["short"])
        return (cfg["long"] - cfg["short"]) * steps_per_epoch / max(dt, 1e-6)

    return measure


def flowjax_step_rate(cfg: dict, k: int, x: np.ndarray, target_s: float):
    """A measurement (call -> steps/s) of flowjax's jitted train step on one batch."""
    import jax
    import optax
    from flowjax.train.losses import MaximumLikelihoodLoss
    from flowjax.train.train_utils import step

    params, static = _partition(flowjax_mixture(cfg, k))
    opt = optax.adam(cfg["learning_rate"])
    state = [params, opt.init(params)]
    batch, key, loss_fn = x[: cfg["batch_size"]], jax.random.key(0), MaximumLikelihoodLoss()

    def run(n):
        p, o = state
        for _ in range(n):
            p, o, loss = step(p, static, batch, optimizer=opt, opt_state=o, loss_fn=loss_fn,
                              key=key)
        jax.block_until_ready((p, loss))
        state[:] = [p, o]

    run(2)  # compile
    t = time.perf_counter()
    run(3)
    n = max(3, round(target_s * 3 / max(time.perf_counter() - t, 1e-6)))

    def measure():
        t = time.perf_counter()
        run(n)
        return n / (time.perf_counter() - t)

    return measure


# -- cold fits (one fresh process each) -----------------------------------------------------
def cold_fit(which: str, quick: bool) -> dict:
    """Seconds of one default fit in this (fresh) process, from model to fitted model."""
    cfg = config(quick)
    test = held_out_points(cfg)
    if which == "ours":
        import vmonf_jax.estimator  # noqa: F401  (imports excluded, as flowjax's below)

        x = pinwheel_points(cfg)
        t = time.perf_counter()
        m = estimator(cfg, 5, epochs=cfg["epochs"]).fit(x)
        fit_s = time.perf_counter() - t
        return {"fit_s": fit_s, "held_out_ll": float(np.mean(m.score_samples(test))),
                "epochs_run": len(m.history_), "n_init": m.n_init, "init": m.init,
                "objective": m.objective, "train_restarts": m.train_restarts,
                "warm_epochs": m.warm_epochs, "train_points": x.shape[0]}
    import equinox  # noqa: F401  (imports excluded: flowjax_mixture's too)
    import flowjax.distributions  # noqa: F401
    import flowjax.flows  # noqa: F401
    from flowjax.train import fit_to_data

    x = pinwheel_points(cfg, extra=N_VAL)
    t = time.perf_counter()
    dist = flowjax_mixture(cfg, 5)
    import jax

    fitted, losses = fit_to_data(jax.random.key(0), dist, x, learning_rate=cfg["learning_rate"],
                            max_epochs=cfg["epochs"], max_patience=cfg["epochs"],
                            batch_size=cfg["batch_size"], val_prop=N_VAL / x.shape[0],
                            show_progress=False)
    fit_s = time.perf_counter() - t
    return {"fit_s": fit_s, "held_out_ll": float(np.mean(fitted.log_prob(test))),
            "epochs_run": len(losses["train"]),
            "train_points": x.shape[0] - N_VAL, "val_points": N_VAL}


def cold_fit_subprocess(which: str, quick: bool) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--cold", which]
    proc = subprocess.run(cmd + (["--quick"] if quick else []), capture_output=True, text=True,
                          env=os.environ.copy(), timeout=1800)
    if proc.returncode:
        raise RuntimeError(f"cold {which} fit failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- the section of make bench --------------------------------------------------------------
def rounds(measures: dict, repeats: int) -> dict:
    """Call each measurement once per round, round-robin; per name, the list of results."""
    out = {name: [] for name in measures}
    for _ in range(repeats):
        for name, measure in measures.items():
            out[name].append(measure())
    return out


def run(quick: bool, repeats: int, block_s: float, cold_repeats: int, stats, log) -> dict:
    """The three rows (see the module docstring); ``stats`` summarises a list of numbers."""
    if not available():
        note = ("flowjax is not installed (pip install -e '.[bench]'): the side-by-side "
                "comparison was skipped")
        log(note)
        return {"skipped": note}
    import flowjax

    cfg = config(quick)
    x = pinwheel_points(cfg)
    res = {"flowjax_version": flowjax.__version__, "config": cfg, "train_points": x.shape[0],
           "steps": {}, "cold_fit": {}}
    measures = {}
    for k in cfg["ks"]:
        measures[("ours", k)] = ours_fit_rate(cfg, k, x)
        measures[("flowjax", k)] = flowjax_step_rate(cfg, k, x, block_s)
        res["steps"][str(k)] = {"params": param_counts(cfg, k)}
        log(f"  flowjax side: K={k} compiled (ours through VMoNF.fit, flowjax step)")
    rates = rounds(measures, repeats)
    for k in cfg["ks"]:
        ours, fj = rates[("ours", k)], rates[("flowjax", k)]
        res["steps"][str(k)].update(ours_steps_per_s=stats(ours), flowjax_steps_per_s=stats(fj),
                                    ratio=stats([a / b for a, b in zip(ours, fj)]))
    if not cold_repeats:
        res["cold_fit"] = {"skipped": "--cold-repeats 0: no cold fits"}
        return res
    log(f"  flowjax side: cold default fits ({cold_repeats} round(s), fresh processes)")
    cold = rounds({w: lambda w=w: cold_fit_subprocess(w, quick) for w in ("ours", "flowjax")},
                  cold_repeats)
    for w, runs in cold.items():
        res["cold_fit"][w] = {**runs[-1], "fit_s": stats([r["fit_s"] for r in runs])}
    res["cold_fit"]["ratio"] = stats([a["fit_s"] / b["fit_s"]
                                      for a, b in zip(cold["ours"], cold["flowjax"])])
    return res


def table(res: dict) -> str:
    """The issue's three rows as a Markdown table (or the skip note)."""
    if "skipped" in res:
        return res["skipped"]
    c = res["config"]
    lines = [f"flowjax {res['flowjax_version']} side by side (pinwheel: {c['n_blocks']} "
             f"blocks, hidden {c['hidden']}, batch {c['batch_size']}, {res['train_points']} "
             "points; medians)",
             "| what a user times | ours | flowjax | ratio |", "|---|---|---|---|"]
    for k, r in res["steps"].items():
        lines.append(f"| train steps/s through `VMoNF.fit`, K={k} (one restart, compile "
                     f"excluded; flow params {r['params']['ours_flows']} vs "
                     f"{r['params']['flowjax']}) | "
                     f"{r['ours_steps_per_s']['median']:.0f} | "
                     f"{r['flowjax_steps_per_s']['median']:.0f} | "
                     f"{r['ratio']['median']:.2f}x |")
    cf = res["cold_fit"]
    if "skipped" in cf:
        return "\n".join([*lines, f"| default fit, cold | {cf['skipped']} | | |"])
    lines.append(f"| default fit ({cf['ours']['n_init']} restarts, "
                 f"train_restarts={cf['ours'].get('train_restarts')}, {cf['ours']['init']} warm "
                 f"start, {c['epochs']} epochs), cold, compile included | "
                 f"{cf['ours']['fit_s']['median']:.1f} s | "
                 f"{cf['flowjax']['fit_s']['median']:.1f} s | {cf['ratio']['median']:.2f}x |")
    ours_ll, fj_ll = cf["ours"].get("held_out_ll"), cf["flowjax"].get("held_out_ll")
    if ours_ll is not None and fj_ll is not None:
        lines.append(f"| that fit's held-out log-likelihood per row (another pinwheel draw) | "
                     f"{ours_ll:.3f} | {fj_ll:.3f} | {ours_ll - fj_ll:+.3f} nats |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cold", choices=("ours", "flowjax"), required=True)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    print(json.dumps(cold_fit(args.cold, args.quick)))


if __name__ == "__main__":
    main()
