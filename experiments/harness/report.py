"""Multi-seed summaries and the generated ``results/REPORT.md``.

Nothing in the report is typed by hand except ``PAPER_CLAIMS`` (what Pires & Figueiredo
2020 state, with the place they state it) and ``AIMS`` (the bars set in the project's issue).
Every number comes from the ``metrics.json`` files a run wrote (``harness.run``).

Layout read and written (``<target>`` as the make target):

    results/<target>/metrics.json             one run
    results/<target>/seed<k>/metrics.json     multi-seed runs (``--seeds N``)
    results/summary.json, results/REPORT.md   ``summarize`` / ``write_report``
"""

import datetime
import os

import numpy as np

from harness.jsonio import read_json, write_json
from harness.tables import contingency_markdown
from vmonf_jax.files import outputs

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
    "pinwheel": "every seed: ARI >= 0.9 and test log-likelihood above a 20-component GMM "
                "(issue 4); ARI >= 0.975 (issue 13)",
    "circles": "report what the unsupervised fit does (no bar)",
    "circles-semi": "every seed: accuracy >= 0.995 on held-out points (issue 13)",
    "mnist": "every seed: matched accuracy >= 0.93 and <= 2.0 bits/dim on held-out digits "
             "(issue 13)",
}
"""The bars of the project's issues, checked in the report."""

TARGETS = ("pinwheel", "circles", "circles-semi", "mnist", "mnist-random", "mnist-balanced")
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
    return sorted((read_json(p) for p in paths), key=lambda m: m["seed"])


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
    metric (also of comparison fits: ``<name>.test.*``), of the smallest component usage, of
    each class's matched accuracy (image targets), the fit time and the training speed."""
    rows = []
    for m in runs:
        row = _flat({"test": m["test"], "baselines": m["baselines"],
                     **{k: {"test": v["test"]} for k, v in m.items()
                        if isinstance(v, dict) and "test" in v}})
        row["test.usage_min"] = min(m["test"]["usage"])
        table = m["test"].get("contingency")
        if table:
            row.update({f"test.per_class_acc.{c}": a
                        for c, a in zip(table["classes"], table["per_class_acc"])})
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
        near_bayes = all(m["test"]["ari"] >= 0.975 for m in runs)
        sweep = [m["baselines"]["gmm_matched_params"].get("loglik_by_k", {}).get("20")
                 for m in runs]
        beat = (None if any(s is None for s in sweep) else
                all(m["test"]["loglik"] > s for m, s in zip(runs, sweep)))
        return {"aim": AIMS[target], "ari_ge_0.9_every_seed": ari,
                "loglik_above_gmm20_every_seed": beat, "ari_ge_0.975_every_seed": near_bayes,
                "met": bool(ari and beat and near_bayes)}
    if target == "circles-semi":
        ok = all(m["test"]["acc"] >= 0.995 for m in runs)
        return {"aim": AIMS[target], "met": ok}
    if target.startswith("mnist"):
        acc = all(m["test"]["acc"] >= 0.93 for m in runs)
        bpd = all(m["test"]["bits_per_dim"] <= 2.0 for m in runs)
        return {"aim": AIMS["mnist"], "acc_ge_0.93_every_seed": acc,
                "bits_per_dim_le_2_every_seed": bpd, "met": bool(acc and bpd)}
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


def _keyed_cells(entry: dict, prefix: str, label: str) -> str:
    """``label<key>: cell, ...`` of the metrics named ``prefix<key>`` (integer keys, sorted)."""
    stats = {k[len(prefix):]: v for k, v in entry["metrics"].items() if k.startswith(prefix)}
    return ", ".join(f"{label}{k}: {_cell(v, entry['n_seeds'])}"
                     for k, v in sorted(stats.items(), key=lambda kv: int(kv[0])))


def render_report(summary: dict) -> str:
    """REPORT.md text generated from a ``summarize`` object."""
    out = ["# vmonf-jax: the paper's experiments, reproduced", "",
           f"Generated {summary['generated']} by `make paper` from the metrics.json files "
           "under results/ (nothing typed by hand except the paper's claims and the "
           "project's aims, quoted with their sources in `experiments/harness/report.py`).", "",
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
            out += [f"Aim: {a['aim']} -> **{met}**" + (f" ({detail})" if detail else "")
                    + ".", ""]
        for prefix, label, name in (
                ("baselines.gmm_matched_params.loglik_by_k.", "K=",
                 "Gaussian mixtures, test log-likelihood by K"),
                ("test.per_class_acc.", "", "Matched accuracy per digit")):
            cells = _keyed_cells(entry, prefix, label)
            if cells:
                out += [f"{name}: {cells}.", ""]
        if "contingency" in entry:
            out += [f"Contingency table, seed {entry['seeds'][0]} (rows: true digit, "
                    "normalised):", "", contingency_markdown(entry["contingency"])]
        out += [f"Versions: {entry['versions']}", ""]
    return "\n".join(out)


def write_report(results_dir, targets=TARGETS) -> dict:
    """Write ``summary.json`` and ``REPORT.md`` into ``results_dir``; returns the summary."""
    summary = summarize(results_dir, targets)
    write_json(os.path.join(os.fspath(results_dir), "summary.json"), summary)
    with outputs.atomic_file(os.path.join(os.fspath(results_dir), "REPORT.md"), "w") as f:
        f.write(render_report(summary))
    return summary
