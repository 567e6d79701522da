"""metrics.json assembly, multi-seed summaries and the generated ``results/REPORT.md``.

Nothing in the report is typed by hand except ``PAPER_CLAIMS`` (what Pires & Figueiredo
2020 state, with the place they state it) and ``AIMS`` (the bars set in the project's issue).
Every number comes from the ``metrics.json`` files a run wrote.

Layout read and written (``<target>`` as the make target):

    results/<target>/metrics.json             one run
    results/<target>/seed<k>/metrics.json     multi-seed runs (``--seeds N``)
    results/summary.json, results/REPORT.md   ``summarize`` / ``write_report``
"""

import datetime
import json
import math
import os
import platform
import tempfile
from importlib import metadata

import numpy as np

from vmonf_jax.metrics import contingency_table

PAPER = "Pires & Figueiredo (2020), Variational Mixture of Normalizing Flows, arXiv:2009.00585"

PAPER_CLAIMS = {
    "pinwheel": {
        "claim": "each of the 5 wings is modelled by its own component (qualitative)",
        "source": f"{PAPER}, Sec. 4, pinwheel figure (Fig. 6)",
        "acc": None,
    },
    "circles": {
        "claim": "unsupervised, the two components split the plane into two halves instead of "
                 "following the circles (qualitative; a half-plane split scores about 0.5)",
        "source": f"{PAPER}, Sec. 4, two-circles figure (Fig. 7)",
        "acc": None,
    },
    "circles-semi": {
        "claim": "with 32 labelled points per circle, each component follows one circle "
                 "(qualitative)",
        "source": f"{PAPER}, Sec. 4, semi-supervised two-circles figure (Fig. 8)",
        "acc": None,
    },
    "mnist": {
        "claim": "digits 0-4, K=5 MAF components: clustering accuracy about 0.75",
        "source": f"{PAPER}, Sec. 4, MNIST contingency table (Table 1), as summarised in the "
                  "project's experiments issue",
        "acc": 0.75,
    },
}
"""The paper's claims per target; ``acc`` is the only one it states as a number."""

AIMS = {
    "pinwheel": "every seed: ARI >= 0.9 and test log-likelihood above a 20-component GMM",
    "circles": "report what the unsupervised fit does (no bar)",
    "circles-semi": "accuracy >= 0.97",
    "mnist": "matched accuracy >= 0.85 on test digits never used in training",
}
"""The bars of the project's experiments issue (issue 4), checked in the report."""

TARGETS = ("pinwheel", "circles", "circles-semi", "mnist", "mnist-random")
BASELINES = ("gmm_same_k", "gmm_matched_params", "kmeans", "single_flow")
VERSIONED = ("jax", "jaxlib", "flax", "optax", "distrax", "numpy", "scikit-learn", "scipy",
             "tensorflow-datasets", "vmonf-jax")


# -- one run ------------------------------------------------------------------------------
def versions() -> dict:
    """Installed versions of the packages a result depends on (metadata only: no imports)."""
    out = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    out["sklearn"] = out.pop("scikit-learn")
    return out


def count_steps(history, n_rows: int, n_labelled: int, batch_size: int) -> int:
    """Optimiser steps behind a fit's ``history_``: each epoch is ceil(rows / batch) steps,
    rows being every point (warm, main and joint epochs) or the labelled ones (pretrain and
    the supervised half of the paper's semi-supervised epochs)."""
    def steps(rows):
        return math.ceil(rows / min(batch_size, rows)) if rows else 0

    sup = {"pretrain", "main-sup"}
    return int(sum(steps(n_labelled if e.get("phase") in sup else n_rows) for e in history))


def build_metrics(experiment: str, model, test: dict, baselines: dict, *, seed: int,
                  fit_s: float, n_steps: int, data: dict) -> dict:
    """The metrics.json object (docs: API.md, Results).

    ``wall_s`` is the VMoNF fit's wall time (compilation included) and
    ``train_steps_per_s`` = optimiser steps / ``wall_s``. ``config`` holds the estimator's
    parameters, the final temperature, the parameter count and ``data`` (sizes, source).
    """
    config = {"estimator": _jsonable(model.get_params()),
              "final_temperature": model.config_.final_temperature(),
              "n_parameters": model.n_parameters(), "train_steps": int(n_steps),
              "data": _jsonable(data)}
    return {"experiment": experiment, "seed": int(seed), "config": config,
            "versions": versions(), "wall_s": float(fit_s),
            "train_steps_per_s": float(n_steps / fit_s) if fit_s > 0 else None,
            "test": _jsonable(test), "baselines": _jsonable(baselines)}


def summary_line(m: dict) -> str:
    """One line for stdout: the headline numbers of a metrics.json object."""
    t, b = m["test"], m["baselines"]

    def f(x, fmt=".3f"):
        return "n/a" if x is None else format(x, fmt)

    parts = [f"{m['experiment']} seed={m['seed']}", f"loglik {f(t['loglik'])}"]
    if "bits_per_dim" in t:
        parts.append(f"({f(t['bits_per_dim'])} bits/dim)")
    parts.append(f"elbo_gap {f(t['elbo_gap'])}")
    parts.append(f"acc {f(t['acc'])} ari {f(t['ari'])} nmi {f(t['nmi'])}")
    parts.append("usage " + "/".join(f"{u:.2f}" for u in t["usage"]))
    gm = b["gmm_matched_params"]
    parts.append(f"| gmm K={b['gmm_same_k']['n_components']} {f(b['gmm_same_k']['loglik'])}"
                 f", gmm K={gm['n_components']} {f(gm['loglik'])}")
    if "loglik" in b["single_flow"]:
        parts.append(f", flow {f(b['single_flow']['loglik'])}")
    parts.append(f", kmeans acc {f(b['kmeans'].get('acc'))}")
    parts.append(f"| fit {m['wall_s']:.1f}s, {f(m['train_steps_per_s'], '.0f')} steps/s")
    return " ".join(parts)


def write_json(path, obj) -> None:
    """Write JSON atomically (temporary sibling, then rename)."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(_jsonable(obj), f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def contingency(y_true, y_pred, n_clusters: int) -> dict:
    """Counts and row-normalised table (true class x cluster) with their row labels."""
    counts = contingency_table(y_true, y_pred, n_clusters, normalize=False)
    return {"classes": [int(c) for c in np.unique(y_true)], "counts": counts.tolist(),
            "normalized": (counts / counts.sum(1, keepdims=True)).tolist()}


def write_contingency(table: dict, stem) -> list[str]:
    """Write the normalised table as ``<stem>.csv`` and ``<stem>.md``; returns the paths."""
    stem = os.fspath(stem)
    norm, classes = np.asarray(table["normalized"]), table["classes"]
    header = ["digit"] + [f"cluster {j}" for j in range(norm.shape[1])]
    rows = [[str(c)] + [f"{v:.3f}" for v in r] for c, r in zip(classes, norm)]
    with open(stem + ".csv", "w") as f:
        f.write(",".join(header) + "\n")
        f.writelines(",".join(r) + "\n" for r in rows)
    with open(stem + ".md", "w") as f:
        f.write(contingency_markdown(table))
    return [stem + ".csv", stem + ".md"]


def contingency_markdown(table: dict) -> str:
    """The normalised table as Markdown (rows: true class, columns: clusters; each row's
    largest entry in bold)."""
    norm, classes = np.asarray(table["normalized"]), table["classes"]
    lines = ["| digit | " + " | ".join(f"cluster {j}" for j in range(norm.shape[1])) + " |",
             "|---|" + "---|" * norm.shape[1]]
    for c, r in zip(classes, norm):
        cells = [f"**{v:.2f}**" if j == r.argmax() else f"{v:.2f}" for j, v in enumerate(r)]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run_experiment(name: str, model, train, test, outdir, *, labels=None, data=None,
                   images: bool = False, single_flow: bool = True, gmm_sweep=(),
                   save_model: bool = False) -> dict:
    """Fit ``model`` on ``train``, measure it and its baselines on ``test``, write
    ``outdir/metrics.json`` and the figures; returns the metrics object.

    Args:
        name: the experiment (make target) name recorded in metrics.json.
        model: an unfitted ``VMoNF``.
        train, test: ``(X, y)`` pairs; ``y`` are the true classes (``test``'s may be None).
        outdir: directory of this run's files (created).
        labels: labels passed to ``fit`` (semi-supervised: -1 = unlabelled), else None.
        data: description of the data recorded under ``config.data``.
        images: 28x28 pixel data: diagonal-covariance GMMs, k-means on raw pixels,
            bits/dim, contingency table (CSV, Markdown, heatmap), sample grid.
        single_flow: fit the single-flow baseline.
        gmm_sweep: extra Gaussian-mixture sizes to score (see ``baselines.run_baselines``).
        save_model: also ``model.save(outdir / "model")``.
    """
    import time

    from vmonf_jax import plots
    from vmonf_jax.baselines import heldout_metrics, predicted_labels, run_baselines

    (X_train, y_train), (X_test, y_test) = train, test
    outdir = os.fspath(outdir)
    os.makedirs(outdir, exist_ok=True)
    t0 = time.perf_counter()
    model.fit(X_train, labels)
    fit_s = time.perf_counter() - t0
    held = heldout_metrics(model, X_test, y_test, pixels=images)
    base = run_baselines(model, X_train, X_test, y_test, seed=model.seed,
                         covariance_type="diag" if images else "full",
                         kmeans_features="raw" if images else "preprocessed",
                         single_flow=single_flow, gmm_sweep=gmm_sweep)
    n_lab = 0 if labels is None else int((np.asarray(labels) >= 0).sum())
    steps = count_steps(model.history_, len(X_train), n_lab, int(model.batch_size))
    if images:
        table = contingency(y_test, predicted_labels(model, X_test), int(model.n_components))
        held["contingency"] = table
        write_contingency(table, os.path.join(outdir, "contingency"))
        plots.mnist_figures(model, X_train, table, outdir)
    else:
        plots.toy_figures(model, X_train, y_train, outdir, labels=labels)
    if save_model:
        model.save(os.path.join(outdir, "model"))
    data = {"n_train": len(X_train), "n_test": len(X_test), "n_labelled": n_lab,
            **(data or {})}
    metrics = build_metrics(name, model, held, base, seed=model.seed, fit_s=fit_s,
                            n_steps=steps, data=data)
    write_json(os.path.join(outdir, "metrics.json"), metrics)
    return metrics


# -- many runs ----------------------------------------------------------------------------
def find_runs(results_dir, target: str) -> list[dict]:
    """metrics.json objects of ``target``: ``seed*/metrics.json`` if any, else the single
    ``metrics.json``; sorted by seed."""
    base = os.path.join(os.fspath(results_dir), target)
    if not os.path.isdir(base):
        return []
    paths = [os.path.join(base, d, "metrics.json") for d in sorted(os.listdir(base))
             if d.startswith("seed")]
    paths = [p for p in paths if os.path.isfile(p)]
    if not paths and os.path.isfile(os.path.join(base, "metrics.json")):
        paths = [os.path.join(base, "metrics.json")]
    runs = []
    for p in paths:
        with open(p) as f:
            runs.append(json.load(f))
    return sorted(runs, key=lambda m: m["seed"])


def _stats(values):
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return None
    return {"min": min(vals), "median": float(np.median(vals)), "max": max(vals),
            "values": vals}


def _flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "."))
        elif isinstance(v, int | float) and not isinstance(v, bool) or v is None:
            out[key] = v
    return out


def aggregate(runs: list[dict]) -> dict:
    """min / median / max (and the values) over seeds of every numeric test and baseline
    metric, of the smallest component usage, the fit time and the training speed."""
    rows = []
    for m in runs:
        row = _flat({"test": m["test"], "baselines": m["baselines"]})
        row["test.usage_min"] = min(m["test"]["usage"])
        row["wall_s"], row["train_steps_per_s"] = m["wall_s"], m["train_steps_per_s"]
        rows.append(row)
    keys = sorted({k for r in rows for k in r})
    stats = {k: _stats([r.get(k) for r in rows]) for k in keys}
    return {"n_seeds": len(runs), "seeds": [m["seed"] for m in runs],
            "metrics": {k: v for k, v in stats.items() if v is not None}}


def aims(target: str, runs: list[dict]) -> dict | None:
    """Whether the issue's bar for ``target`` holds on every run (None: no bar to check)."""
    if not runs:
        return None
    if target == "pinwheel":
        ari = all(m["test"]["ari"] >= 0.9 for m in runs)
        sweep = [m["baselines"]["gmm_matched_params"].get("loglik_by_k", {}).get("20")
                 for m in runs]
        beat = (None if any(s is None for s in sweep) else
                all(m["test"]["loglik"] > s for m, s in zip(runs, sweep)))
        return {"aim": AIMS[target], "ari_ge_0.9_every_seed": ari,
                "loglik_above_gmm20_every_seed": beat, "met": bool(ari and beat)}
    if target == "circles-semi":
        ok = all(m["test"]["acc"] >= 0.97 for m in runs)
        return {"aim": AIMS[target], "met": ok}
    if target.startswith("mnist"):
        ok = all(m["test"]["acc"] >= 0.85 for m in runs)
        return {"aim": AIMS["mnist"], "met": ok}
    return {"aim": AIMS.get(target), "met": None}


def summarize(results_dir, targets=TARGETS) -> dict:
    """The summary.json object: per target, the aggregate over its runs and the aims check."""
    out = {"generated": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
           "paper": PAPER, "targets": {}}
    for target in targets:
        runs = find_runs(results_dir, target)
        if not runs:
            continue
        entry = aggregate(runs)
        entry["aims"] = aims(target, runs)
        entry["paper_claim"] = PAPER_CLAIMS.get(target.split("-random")[0])
        entry["config"] = runs[0]["config"]
        entry["versions"] = runs[0]["versions"]
        if target.startswith("mnist") and "contingency" in runs[0]["test"]:
            entry["contingency"] = runs[0]["test"]["contingency"]
        out["targets"][target] = entry
    return out


ROWS = (("loglik", "test log-likelihood (nats)"), ("bits_per_dim", "bits/dim"),
        ("elbo_gap", "ELBO gap (nats)"), ("acc", "accuracy"), ("ari", "ARI"), ("nmi", "NMI"),
        ("usage_min", "smallest component usage"), ("n_parameters", "parameters"),
        ("n_components", "K"), ("wall_s", "fit wall time (s)"))
COLUMNS = (("test", "VMoNF"), ("baselines.gmm_same_k", "GMM, same K"),
           ("baselines.gmm_matched_params", "GMM, matched parameters"),
           ("baselines.kmeans", "k-means"), ("baselines.single_flow", "single flow"))


def _cell(stat, n_seeds):
    if stat is None:
        return ""
    whole = all(float(v).is_integer() for v in (stat["min"], stat["median"], stat["max"]))
    fmt = ".0f" if whole or abs(stat["median"]) >= 1000 else ".3f"
    if n_seeds == 1 or stat["min"] == stat["max"]:
        return format(stat["median"], fmt)
    return f"{stat['median']:{fmt}} [{stat['min']:{fmt}}, {stat['max']:{fmt}}]"


def target_table(entry: dict) -> str:
    """Markdown table of one target: metrics by row, VMoNF and baselines by column."""
    stats, n = entry["metrics"], entry["n_seeds"]

    def lookup(col, row):
        if col == "test" and row == "wall_s":
            return stats.get("wall_s")
        if col == "test" and row == "n_parameters":
            v = entry["config"].get("n_parameters")
            return None if v is None else {"min": v, "median": v, "max": v}
        if col == "test" and row == "n_components":
            v = entry["config"]["estimator"].get("n_components")
            return {"min": v, "median": v, "max": v}
        return stats.get(f"{col}.{row}")

    lines = ["| | " + " | ".join(name for _, name in COLUMNS) + " |",
             "|---|" + "---|" * len(COLUMNS)]
    for key, label in ROWS:
        cells = [_cell(lookup(col, key), n) for col, _ in COLUMNS]
        if any(cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_report(summary: dict) -> str:
    """REPORT.md text generated from a ``summarize`` object."""
    out = ["# vmonf-jax: the paper's experiments, reproduced", "",
           f"Generated {summary['generated']} by `make paper` from the metrics.json files "
           "under results/ (nothing typed by hand except the paper's claims and the "
           "project's aims, quoted with their sources in `vmonf_jax/report.py`).", "",
           "Cells: median [min, max] over seeds; log-likelihoods are mean test "
           "log-likelihoods in nats of the data as given (pixels: dequantised values in "
           "[0, 256)^784). Accuracy is matched one-to-one (semi-supervised: predictions "
           "mapped through the labelled classes). The ELBO gap uses q(k|x) at the final "
           "temperature.", ""]
    for target, entry in summary["targets"].items():
        est = entry["config"]["estimator"]
        claim = entry.get("paper_claim") or {}
        out += [f"## {target}", "",
                f"{entry['n_seeds']} seed(s) {entry['seeds']}; K={est['n_components']} "
                f"{est['flow']} ({est['n_blocks']} blocks, hidden {est['hidden']}), "
                f"posterior {est['posterior_hidden']}, init {est['init']}, "
                f"{est['epochs']} epochs, batch {est['batch_size']}, "
                f"lr {est['learning_rate']}; data {entry['config'].get('data')}.", "",
                target_table(entry)]
        if claim:
            paper_acc = "" if claim.get("acc") is None else f" (accuracy {claim['acc']})"
            out += [f"Paper: {claim['claim']}{paper_acc}. Source: {claim['source']}.", ""]
        a = entry.get("aims")
        if a and a.get("aim"):
            met = {True: "met", False: "NOT met", None: "not checked"}[a.get("met")]
            detail = ", ".join(f"{k}: {v}" for k, v in a.items() if k not in ("aim", "met"))
            out += [f"Aim (issue 4): {a['aim']} -> **{met}**" + (f" ({detail})" if detail
                                                                  else "") + ".", ""]
        sweep = {k.split(".")[-1]: v for k, v in entry["metrics"].items()
                 if k.startswith("baselines.gmm_matched_params.loglik_by_k.")}
        if sweep:
            cells = ", ".join(f"K={k}: {_cell(v, entry['n_seeds'])}"
                              for k, v in sorted(sweep.items(), key=lambda kv: int(kv[0])))
            out += [f"Gaussian mixtures, test log-likelihood by K: {cells}.", ""]
        if "contingency" in entry:
            out += [f"Contingency table, seed {entry['seeds'][0]} (rows: true digit, "
                    "normalised):", "", contingency_markdown(entry["contingency"])]
        out += [f"Versions: {entry['versions']}", ""]
    return "\n".join(out)


def write_report(results_dir, targets=TARGETS) -> dict:
    """Write ``summary.json`` and ``REPORT.md`` into ``results_dir``; returns the summary."""
    summary = summarize(results_dir, targets)
    write_json(os.path.join(os.fspath(results_dir), "summary.json"), summary)
    with open(os.path.join(os.fspath(results_dir), "REPORT.md"), "w") as f:
        f.write(render_report(summary))
    return summary


def _jsonable(o):
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.ndarray):
        return _jsonable(o.tolist())
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o
