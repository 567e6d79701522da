"""Affine vs spline flows, normal vs Student-t bases, at equal parameter counts (issue 23, 4).

The README's recipes (``experiments/pinwheel.py`` and ``experiments/circles.py``: their
``PAPER`` settings and ``DATA``, the estimator's defaults otherwise) on held-out draws
(``train_test(generator, seed, **DATA)``, as ``make pinwheel`` / ``make circles``), with
the flow and base swapped. The spline flows (rational-quadratic spline coupling) have half
the blocks of the RealNVP recipe, conditioner width ``SPLINE["hidden"]`` and
``SPLINE["spline_bins"]`` bins, which puts each flow within 10 % of the RealNVP flow's
parameters (pinwheel 296 vs 272 per flow, circles 370 vs 340; every fit records its count).

Per fit: held-out mean log-likelihood (nats), ARI and matched accuracy, the parameter count,
the fit's wall time and its train steps per second over the whole fit (compilation and the
Gaussian start included; the restarts train stacked, so one step trains all of them). The
pinwheel's true density (``studies/pinwheel_bayes.py``'s exact per-wing density) is scored on
the same test draw, so each row also shows the gap to it.

Usage: python studies/flows_bases.py [--seeds 0 1 2 3 4] [--targets pinwheel circles]
           [--configs realnvp-normal spline-normal ...] [--out results/flows_bases]
       python studies/flows_bases.py --table [--out results/flows_bases]
One JSON per fit (OUT/<target>-<config>-seed<k>.json; an existing one is kept, so a stopped
run resumes); ``--table`` prints the Markdown tables of whatever is there.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from scipy.special import logsumexp

from vmonf_jax import VMoNF
from vmonf_jax.data import pinwheel, train_test, two_circles
from vmonf_jax.files.outputs import json_default
from vmonf_jax.metrics import clustering_scores

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
sys.path.insert(0, str(ROOT / "studies"))
from pinwheel_bayes import wing_log_density  # noqa: E402

import circles as circles_exp  # noqa: E402
import pinwheel as pinwheel_exp  # noqa: E402

TARGETS = {
    "pinwheel": (pinwheel, pinwheel_exp.DATA, pinwheel_exp.PAPER),
    "circles": (two_circles, circles_exp.DATA, circles_exp.PAPER),
}
SPLINE = {"flow": "spline", "hidden": (3,), "spline_bins": 6}  # n_blocks: half the recipe's
CONFIGS = {
    "realnvp-normal": {},
    "spline-normal": SPLINE,
    "spline-student_t": {**SPLINE, "base": "student_t"},
    "realnvp-student_t": {"base": "student_t"},
}
# issue 23's bars
BARS = {"pinwheel": "loglik within 0.05 nats of the true density (median), ARI >= 0.98 every seed",
        "circles": "loglik >= -0.70 every seed, accuracy >= 0.99 every seed"}


def settings_of(target, config):
    """The estimator's settings of one (target, config)."""
    _, _, paper = TARGETS[target]
    extra = dict(CONFIGS[config])
    if extra.get("flow") == "spline":
        extra["n_blocks"] = paper["n_blocks"] // 2
    return {**paper, **extra}


def true_loglik(x) -> float:
    """Mean log-density of the pinwheel's rows ``x`` under its true 5-wing density."""
    d = pinwheel_exp.DATA
    opts = {k: d[k] for k in ("radial_std", "tangential_std", "rate")}
    bases = np.linspace(0.0, 2.0 * np.pi, d["n_wings"], endpoint=False)
    log_p = np.stack([wing_log_density(x, b, **opts) for b in bases], 1)
    return float(np.mean(logsumexp(log_p, 1) - np.log(len(bases))))


def train_steps(model, n_rows, batch_size) -> int:
    """Train steps of a fit: the longest restart's epochs times batches per epoch (the
    restarts train stacked; early stopping holds out 15 % of the rows)."""
    rows = 0.85 * n_rows if model.early_stopping else n_rows
    epochs = max(Counter(e["restart"] for e in model.history_).values())
    return epochs * math.ceil(rows / batch_size)


def run(target, config, seed):
    """Fit one configuration on one seed's training draw; its held-out scores."""
    gen, data, _ = TARGETS[target]
    settings = settings_of(target, config)
    (x, _), (xt, yt) = train_test(gen, seed=seed, **data)
    t = time.perf_counter()
    m = VMoNF(**settings, seed=seed, verbose=False).fit(x)
    wall = time.perf_counter() - t
    pred = m.predict(xt)
    flows = sum(int(np.size(a)) for a in _leaves(m.params_["components"]))
    out = {"target": target, "config": config, "seed": seed, "settings": settings,
           "test_loglik": float(m.score(xt)), **clustering_scores(yt, pred),
           "n_parameters": int(m.n_parameters()),
           "flow_parameters": flows // settings["n_components"],
           "epochs_run": len(m.history_), "wall_s": wall,
           "steps_per_s": train_steps(m, len(x), settings["batch_size"]) / wall}
    if target == "pinwheel":
        out["true_loglik"] = true_loglik(xt)
    if settings.get("base") == "student_t":
        raw = np.asarray(m.params_["components"][-1]["raw_df"], np.float64)
        out["df"] = (1.0 + np.logaddexp(0.0, raw)).round(2).tolist()
    return out


def _leaves(tree):
    import jax

    return jax.tree.leaves(tree)


def load_rows(out):
    rows = []
    for f in sorted(Path(out).glob("*-seed*.json")):
        rows.append(json.loads(f.read_text()))
    return rows


def _med(v):
    return statistics.median(v) if v else float("nan")


def _seq(values) -> str:
    return " / ".join(f"{v:.3f}" for v in values)


def table(rows) -> str:
    """Markdown: per (target, config) the per-seed values and their median."""
    lines = ["| target | config | params (flow) | held-out loglik per seed | median | "
             "gap to true (median) | ARI per seed | acc per seed | steps/s (median) | "
             "fit wall s (median) | bar met |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for target in TARGETS:
        for config in CONFIGS:
            rs = sorted((r for r in rows if r["target"] == target and r["config"] == config),
                        key=lambda r: r["seed"])
            if not rs:
                continue
            ll = [r["test_loglik"] for r in rs]
            gap = "n/a"
            if target == "pinwheel":
                gap = f"{_med([r['true_loglik'] - r['test_loglik'] for r in rs]):.3f}"
                met = (_med([r['true_loglik'] - r['test_loglik'] for r in rs]) <= 0.05
                       and min(r["ari"] for r in rs) >= 0.98)
            else:
                met = min(ll) >= -0.70 and min(r["acc"] for r in rs) >= 0.99
            lines.append(
                f"| {target} | {config} | {rs[0]['n_parameters']:,} ({rs[0]['flow_parameters']})"
                f" | {_seq(ll)} | {_med(ll):.3f} | {gap} | "
                f"{_seq(r['ari'] for r in rs)} | {_seq(r['acc'] for r in rs)} | "
                f"{_med([r['steps_per_s'] for r in rs]):.1f} | "
                f"{_med([r['wall_s'] for r in rs]):.0f} | "
                f"{'yes' if met else 'no'} ({len(rs)} seeds) |")
    true = sorted({(r["seed"], r["true_loglik"]) for r in rows if "true_loglik" in r})
    if true:
        lines.append("")
        lines.append("pinwheel true density, test draw per seed: "
                     + " / ".join(f"{v:.3f}" for _, v in true))
    return "\n".join(lines)


def paired(rows, reference="realnvp-normal") -> str:
    """Markdown: per (target, config) the held-out log-likelihood minus ``reference``'s on the
    same seed (positive = better), per seed and the median."""
    lines = [f"| target | config | minus {reference}, per seed | median |", "|---|---|---|---|"]
    for target in TARGETS:
        ref = {r["seed"]: r["test_loglik"] for r in rows
               if r["target"] == target and r["config"] == reference}
        for config in CONFIGS:
            d = [r["test_loglik"] - ref[r["seed"]] for r in sorted(rows, key=lambda r: r["seed"])
                 if r["target"] == target and r["config"] == config and r["seed"] in ref]
            if d and config != reference:
                lines.append(f"| {target} | {config} | {' / '.join(f'{v:+.3f}' for v in d)} | "
                             f"{_med(d):+.3f} |")
    return "\n".join(lines)


def main(argv=None):
    """Run every (target, config, seed) asked for, configs outermost; print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--targets", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--out", default="results/flows_bases")
    p.add_argument("--table", action="store_true", help="print the tables of OUT, run nothing")
    args = p.parse_args(argv)
    if not args.table:
        os.makedirs(args.out, exist_ok=True)
        for config in args.configs:
            for target in args.targets:
                for seed in args.seeds:
                    path = Path(args.out) / f"{target}-{config}-seed{seed}.json"
                    if path.exists():
                        continue
                    r = run(target, config, seed)
                    path.write_text(json.dumps(r, indent=1, default=json_default))
                    print(f"{target:8s} {config:18s} seed {seed}: loglik {r['test_loglik']:.4f}"
                          f" (true {r.get('true_loglik', float('nan')):.4f}) ari {r['ari']:.4f}"
                          f" acc {r['acc']:.4f} params {r['n_parameters']} "
                          f"{r['wall_s']:.0f}s {r['steps_per_s']:.1f} steps/s "
                          f"df {r.get('df', '-')}", flush=True)
    rows = load_rows(args.out)
    print(table(rows))
    print()
    print(paired(rows))


if __name__ == "__main__":
    main()
