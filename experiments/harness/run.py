"""One experiment run: fit, test metrics, baselines, figures and ``metrics.json``.

Layout written (``<target>`` as the make target; docs: API.md, Results):

    OUT/<target>/metrics.json, figures (PNG)          one run
    OUT/<target>/seed<k>/...                          multi-seed runs (``--seeds N``)
"""

import math
import os
import platform
import time
from importlib import metadata

import numpy as np
from sklearn.base import clone

from harness.baselines import heldout_metrics, predicted_labels, run_baselines
from harness.jsonio import jsonable, write_json
from harness.tables import contingency, contingency_markdown, write_contingency
from vmonf_jax import plotting

VERSIONED = ("jax", "jaxlib", "flax", "optax", "distrax", "numpy", "scikit-learn", "scipy",
             "tensorflow-datasets", "vmonf-jax")


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
    """Optimiser steps behind a fit's ``history_``.

    Each epoch is ceil(rows / batch) steps, rows being every point (warm, main and joint
    epochs) or the labelled ones (pretrain and the supervised half of the paper's
    semi-supervised epochs).
    """
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
    config = {"estimator": model.get_params(), "final_temperature": float(model.temperature_),
              "n_parameters": model.n_parameters(), "train_steps": int(n_steps), "data": data}
    return jsonable({"experiment": experiment, "seed": int(seed), "config": config,
                     "versions": versions(), "wall_s": float(fit_s),
                     "train_steps_per_s": float(n_steps / fit_s) if fit_s > 0 else None,
                     "test": test, "baselines": baselines})


def summary_line(m: dict) -> str:
    """One line for stdout: the headline numbers of a metrics.json object."""
    t, b = m["test"], m["baselines"]

    def f(x, fmt=".3f"):
        return "n/a" if x is None else format(x, fmt)

    parts = [f"{m['experiment']} seed={m['seed']}", f"loglik {f(t['loglik'])}"]
    if "bits_per_dim" in t:
        parts.append(f"({f(t['bits_per_dim'])} bits/dim)")
    parts.append(f"elbo_gap {f(t['elbo_gap'])}")
    parts.append(f"acc {f(t['acc'])} ari {f(t['ari'])} nmi {f(t['nmi'])} K {t['n_components']}")
    parts.append("usage " + "/".join(f"{u:.2f}" for u in t["usage"]))
    if "contingency" in t:
        c = t["contingency"]
        parts.append("per-digit acc " + " ".join(
            f"{k}:{a:.2f}" for k, a in zip(c["classes"], c["per_class_acc"])))
    gm = b["gmm_matched_params"]
    parts.append(f"| gmm K={b['gmm_same_k']['n_components']} {f(b['gmm_same_k']['loglik'])}"
                 f", gmm K={gm['n_components']} {f(gm['loglik'])}")
    if "loglik" in b["single_flow"]:
        parts.append(f", flow {f(b['single_flow']['loglik'])}")
    parts.append(f", kmeans acc {f(b['kmeans'].get('acc'))}")
    parts.append(f"| fit {m['wall_s']:.1f}s, {f(m['train_steps_per_s'], '.0f')} steps/s")
    return " ".join(parts)


def _curves(model, X_train):
    _, log_det = model.preprocessor_.transform(X_train)  # the data's units, not the model's
    return plotting.curves_figure(model.history_, int(model.n_components),
                                  offset=float(np.mean(log_det)), kept=model.best_restart_)


def toy_figures(model, X, labels, outdir) -> list[str]:
    """The toy figures of a fitted 2-D model (data by ``labels``, -1 = unlabelled; samples
    over the posterior regions; log-density; training curves); returns the paths."""
    figures = {"data.png": plotting.data_figure(X, labels),
               "samples.png": plotting.regions_figure(model, n_samples=2000, seed=0),
               "log_density.png": plotting.log_density_figure(model, X),
               "training.png": _curves(model, X)}
    return [plotting.save_figure(fig, os.path.join(outdir, name))
            for name, fig in figures.items()]


def mnist_figures(model, X_train, table, outdir) -> list[str]:
    """Sample grid, contingency heatmap and training curves of a fitted image model."""
    figures = {"samples.png": plotting.sample_grid_figure(model),
               "contingency.png": plotting.contingency_figure(table),
               "training.png": _curves(model, X_train)}
    return [plotting.save_figure(fig, os.path.join(outdir, name))
            for name, fig in figures.items()]


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
        table = contingency(y_test, predicted_labels(model, X_test), int(model.n_components_))
        held["contingency"] = table
        write_contingency(table, os.path.join(outdir, "contingency"))
        print(f"{name} seed={model.seed}: held-out digit x cluster (rows normalised)\n"
              + contingency_markdown(table), flush=True)
        mnist_figures(model, X_train, table, outdir)
    else:
        toy_figures(model, X_train, y_train if labels is None else labels, outdir)
    if save_model:
        model.save(os.path.join(outdir, "model"))
    data = {"n_train": len(X_train), "n_test": len(X_test), "n_labelled": n_lab,
            **(data or {})}
    metrics = build_metrics(name, model, held, base, seed=model.seed, fit_s=fit_s,
                            n_steps=steps, data=data)
    write_json(os.path.join(outdir, "metrics.json"), metrics)
    return metrics


def add_comparison(metrics: dict, model, name: str, changes: dict, train, test,
                   outdir) -> dict:
    """Fit a clone of the fitted ``model`` with ``changes`` on the same data, beside it.

    Its held-out metrics go to ``metrics[name]`` (``{"changes", "wall_s", "test"}``; the
    ``test`` block as ``heldout_metrics``), ``outdir/metrics.json`` is rewritten, and
    ``outdir/comparison.png`` shows both fits' regions side by side. Returns ``metrics``.
    """
    (X_train, _), (X_test, y_test) = train, test
    other = clone(model).set_params(**changes)
    t0 = time.perf_counter()
    other.fit(X_train)
    metrics[name] = jsonable({"changes": changes, "wall_s": time.perf_counter() - t0,
                              "test": heldout_metrics(other, X_test, y_test)})
    fig, axes = plotting.pyplot().subplots(1, 2, figsize=(11, 5.5))
    for ax, m, what in ((axes[0], model, "library defaults"), (axes[1], other, name)):
        acc = (metrics["test"] if m is model else metrics[name]["test"])["acc"]
        title = f"{what} ({', '.join(f'{k}={v}' for k, v in _shown(m, changes))}): acc {acc:.3f}"
        plotting.regions_figure(m, data=X_train, n_samples=2000, seed=0, ax=ax, title=title)
    plotting.save_figure(fig, os.path.join(os.fspath(outdir), "comparison.png"))
    write_json(os.path.join(os.fspath(outdir), "metrics.json"), metrics)
    return metrics


def _shown(model, changes):
    return [(k, model.get_params()[k]) for k in changes]
