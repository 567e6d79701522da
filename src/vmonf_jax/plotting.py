"""Figures of a fitted ``VMoNF``: the one plotting module of the CLI and the experiments.

matplotlib (the ``experiments`` extra) is imported on first use, with the Agg backend, so
the library imports and runs without it. Each ``*_figure`` function returns a matplotlib
figure; ``save_figure`` writes one atomically (format from the file's extension) and closes
it.

* ``regions_figure``: 2-D models; background = argmax_k p(k|x) on a grid, samples coloured
  by the component that drew them, optional data in grey (the paper's Figures 6-8).
* ``curves_figure``: ELBO and log-likelihood, temperature and component usage per epoch;
  the restarts overlaid on one epoch axis, the kept one bold.
* ``data_figure``, ``log_density_figure``: 2-D data by class; the learned log-density.
* ``sample_grid_figure``, ``contingency_figure``: image samples, one row per component;
  a true-class x cluster heatmap (the paper's Figure 9 and Table 1).

Example:
    >>> save_figure(regions_figure(model, data=X), "regions.png")
"""

import os
import warnings

import numpy as np

from vmonf_jax.files import outputs

INSTALL_HINT = "pip install 'vmonf-jax[experiments]'"


def pyplot():
    """``matplotlib.pyplot`` with the Agg backend; a clear ImportError when missing."""
    try:
        import matplotlib
    except ImportError as err:
        raise ImportError(f"figures need matplotlib, which is not installed: {INSTALL_HINT}"
                          ) from err
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path) -> str:
    """Write ``fig`` to ``path`` (format from its extension, e.g. .png), close it; the path."""
    plt = pyplot()
    path = os.path.abspath(os.fspath(path))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        with outputs.atomic_file(path, "wb") as f:
            fig.savefig(f, format=os.path.splitext(path)[1][1:].lower() or "png", dpi=120,
                        bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def palette(k: int) -> list:
    """``k`` distinct colours (tab10, or tab20 beyond ten components)."""
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if k <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(k)]


def _cells(lo, hi, grid):
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], grid), np.linspace(lo[1], hi[1], grid))
    return gx, gy, np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32)


def _box(points, margin=0.1):
    lo, hi = points.min(0), points.max(0)
    pad = margin * np.maximum(hi - lo, 1e-6)
    return lo - pad, hi + pad


def _on_grid(method, cells):
    """``method(cells)`` on the figure's own grid, whose columns are the model's in order.

    A model fitted on named columns (a data frame, a CSV header) would warn that the grid's
    array has no names; the warning is about the user's data, not this grid.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        return method(cells)


def regions_figure(model, *, data=None, n_samples=1000, seed=None, grid=200, ax=None,
                   title=None):
    """Regions argmax_k p(k|x) on a grid with ``n_samples`` samples coloured by component.

    Args:
        model: a fitted 2-D ``VMoNF``.
        data: optional (n, 2) array drawn in grey under the samples.
        n_samples: samples drawn over the regions.
        seed: seed of the samples (None: the model's seed).
        grid: grid points per axis.
        ax: a Matplotlib axis to draw into (None: a new figure).
        title: the axis title (None: K and what is shown).
    """
    plt = pyplot()
    from matplotlib.colors import ListedColormap

    k = int(model.n_components_)
    colors = palette(k)
    xs, comp = map(np.asarray, model.sample(n_samples, seed=seed))
    box = [np.percentile(xs, 0.5, axis=0)[None], np.percentile(xs, 99.5, axis=0)[None]]
    if data is not None:
        data = np.asarray(data)
        box.append(data)
    lo, hi = _box(np.concatenate(box))
    gx, gy, cells = _cells(lo, hi, grid)
    region = np.asarray(_on_grid(model.predict, cells)).reshape(gx.shape)
    if ax is None:
        ax = plt.subplots(figsize=(5.5, 5.5))[1]
    ax.pcolormesh(gx, gy, region, cmap=ListedColormap(colors), vmin=-0.5, vmax=k - 0.5,
                  alpha=0.25, shading="auto")
    if data is not None:
        ax.scatter(*data.T, s=3, c="0.35", alpha=0.4, linewidths=0, label="data")
    classes = getattr(model, "classes_", None)
    classes = [] if classes is None else list(classes)
    for c in range(k):
        m = comp == c
        named = f" = {classes[c]}" if c < len(classes) else ""
        ax.scatter(*xs[m].T, s=4, color=colors[c], linewidths=0,
                   label=f"component {c}{named} ({int(m.sum())})")
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    _data_axes(ax, getattr(model, "feature_names_in_", None), hi - lo)
    ax.set_title(title or f"K={k}: regions argmax p(k|x), {n_samples} samples by component",
                 fontsize=9)
    ax.legend(loc="upper right", fontsize=6, markerscale=2, framealpha=0.8)
    return ax.figure


SAME_UNITS = 5.0
"""Axes whose spans differ less than this factor are drawn to one scale (a toy's plane);
others (columns in unrelated units: millimetres beside grams) each fill their axis."""


def _data_axes(ax, names=None, spans=None):
    """Label a 2-D scatter's axes: the two columns (``names``), in the data's units.

    ``spans``: the axes' data spans; drawn to one scale unless they differ by
    ``SAME_UNITS`` or more (None: one scale).
    """
    x, y = (f"column {j + 1}" for j in range(2)) if names is None else map(str, names)
    ax.set_xlabel(f"{x} (data units)", fontsize=8)
    ax.set_ylabel(f"{y} (data units)", fontsize=8)
    if spans is None or max(spans) < SAME_UNITS * min(spans):
        ax.set_aspect("equal")


def _series(history, name):
    """A float per epoch; NaN where an entry lacks ``name`` or holds a non-number."""
    out = []
    for h in history:
        try:
            out.append(float(h.get(name)))
        except (TypeError, ValueError):
            out.append(np.nan)
    return np.array(out)


def _usage(hist, k: int):
    """(epochs, k) usage per component, NaN once pruned; None when malformed.

    Entries of a sparse fit name their components (``components``: indices among the K of
    the start), since pruning shortens ``usage``.
    """
    out = np.full((len(hist), k), np.nan)
    for i, h in enumerate(hist):
        use, ids = h.get("usage"), h.get("components", list(range(k)))
        ok = isinstance(use, list) and isinstance(ids, list) and len(use) == len(ids)
        if not (ok and all(isinstance(c, int) and 0 <= c < k for c in ids)
                and all(isinstance(v, int | float) for v in use)):
            return None
        out[i, ids] = use
    return out if len(hist) else None


def _by_restart(hist):
    """``{restart: entries}`` in order of appearance; entries without one count as restart 0."""
    runs = {}
    for h in hist:
        r = h.get("restart", 0)
        runs.setdefault(r if isinstance(r, int) else 0, []).append(h)
    return runs


def _once(label, seen):
    """``label`` the first time, then matplotlib's "no legend entry" label."""
    if label in seen:
        return "_" + label
    seen.add(label)
    return label


def curves_figure(history, n_components: int, *, offset=0.0, title=None, kept=None):
    """Training curves of a ``history_`` list (one dict per epoch of every restart).

    Panels: ELBO, log-likelihood (and validation log-likelihood when recorded) in nats per
    point, shifted by ``offset`` (e.g. the preprocessing log-determinant, for the data's
    units); temperature; component usage (mean q(k|x)). The restarts share one epoch axis
    (epoch 0 = each restart's first epoch), so the x-axis spans one restart's epochs; the
    kept restart is drawn bold and opaque, the others thin and faint. Shaded: warm-start
    and pre-training epochs. Entries that are not dicts, and missing or malformed values,
    are skipped.

    Args:
        history: ``VMoNF.history_`` or ``FitResult.history``.
        n_components: K at the start of the fit (the usage panel's components).
        offset: added to the ELBO and log-likelihood curves.
        title: the figure's title (None: none).
        kept: the index of the kept restart (``VMoNF.best_restart_``); None draws every
            restart alike.

    Returns:
        The matplotlib figure.
    """
    plt = pyplot()
    hist = [h for h in (history or []) if isinstance(h, dict) and h.get("phase") != "main-sup"]
    runs = _by_restart(hist)
    n_epochs = max((len(v) for v in runs.values()), default=0)
    fig, (a_ll, a_t, a_use) = plt.subplots(1, 3, figsize=(13, 3.4))
    colors = palette(int(n_components))
    curves = (("elbo", "ELBO"), ("loglik", "log-likelihood"),
              ("val_loglik", "validation log-likelihood"))
    seen = set()  # one legend entry per curve, not per restart
    for r, run in runs.items():
        x = np.arange(len(run))
        bold = kept is None or r == kept
        style = {"lw": 1.4 if bold else 0.7, "alpha": 1.0 if bold else 0.35,
                 "zorder": 3 if bold else 2}
        for (name, label), color in zip(curves, ("C0", "C1", "C2")):
            values = _series(run, name) + offset
            if np.isfinite(values).any():
                a_ll.plot(x, values, color=color, label=_once(label, seen), **style)
        a_t.plot(x, _series(run, "T"), color="C0", **style)
        u = _usage(run, int(n_components))
        if u is not None:
            for c in range(int(n_components)):
                a_use.plot(x, u[:, c], color=colors[c], label=_once(f"component {c}", seen),
                           **style)
    if any(not line.get_label().startswith("_") for line in a_use.lines):
        a_use.legend(fontsize=7, ncol=1 + n_components // 6)
    early = sorted({i for run in runs.values() for i, h in enumerate(run)
                    if h.get("phase") in ("warm", "pretrain")})
    if len(runs) > 1:
        which = "bold: kept restart" if kept in runs else "restarts overlaid"
        xlabel = f"epoch of each of {len(runs)} restarts ({which}; grey: warm start)"
    else:
        xlabel = "epoch (grey: warm start / pre-training)"
    for ax in (a_ll, a_t, a_use):
        for i in early:
            ax.axvspan(i - 0.5, i + 0.5, color="0.9", lw=0, zorder=0)
        ax.set_xlim(-0.5, max(n_epochs, 1) - 0.5)
        ax.set_xlabel(xlabel, fontsize=8)
    if a_ll.lines:
        a_ll.legend(fontsize=7)
    a_ll.set_title("training ELBO and log-likelihood", fontsize=9)
    a_ll.set_ylabel("nats per point")
    a_t.set_title("temperature T", fontsize=9)
    a_t.set_ylabel("T (dimensionless)")
    a_use.set_title("component usage: mean q(k|x)", fontsize=9)
    a_use.set_ylabel("share of the points")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def data_figure(X, y, title="training data"):
    """Scatter of 2-D data coloured by class (grey where the label is -1: unlabelled)."""
    plt = pyplot()
    X, y = np.asarray(X), np.asarray(y)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    unlabelled = y < 0
    if unlabelled.any():
        ax.scatter(*X[unlabelled].T, s=3, c="0.7", label="unlabelled")
    classes = np.unique(y[~unlabelled])
    colors = palette(len(classes))
    big = unlabelled.any()  # few labelled points among many: draw them larger
    for c, color in zip(classes, colors):
        ax.scatter(*X[y == c].T, s=18 if big else 3, color=color, label=f"class {c}",
                   edgecolors="k" if big else "none", linewidths=0.4)
    _data_axes(ax)
    ax.set_title(title)
    if len(classes) <= 10:
        ax.legend(fontsize=7, markerscale=2, loc="best")
    return fig


def log_density_figure(model, X, grid=200):
    """The learned log-density of a 2-D model around ``X`` (clipped 12 nats below its max)."""
    plt = pyplot()
    lo, hi = _box(np.asarray(X), margin=0.15)
    gx, gy, cells = _cells(lo, hi, grid)
    lp = _on_grid(model.score_samples, cells).reshape(gx.shape)
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    fig, ax = plt.subplots(figsize=(5.2, 4.5))
    im = ax.pcolormesh(gx, gy, np.maximum(lp, lp.max() - 12), cmap="viridis", shading="auto")
    _data_axes(ax, getattr(model, "feature_names_in_", None), hi - lo)
    cax = make_axes_locatable(ax).append_axes("right", size="4%", pad=0.08)  # as tall as ax
    fig.colorbar(im, cax=cax, label="log p(x) (nats)")
    ax.set_title("learned log-density")
    return fig


def sample_grid_figure(model, n_per_component=10, seed=0, side=28):
    """Image samples (pixel levels, 0 = black), one row per component."""
    plt = pyplot()
    k = int(model.n_components_)
    fig, axes = plt.subplots(k, n_per_component, squeeze=False,
                             figsize=(n_per_component * 0.8, k * 0.85))
    for j in range(k):
        imgs = np.floor(model.sample(n_per_component, component=j, seed=seed + j)[0])
        for ax, img in zip(axes[j], imgs):
            ax.imshow(img.reshape(side, side), cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[j, 0].set_ylabel(f"{j}", rotation=0, labelpad=8)
    fig.suptitle("samples, one row per component")
    return fig


def contingency_figure(table: dict, title="true digit x cluster (row-normalised)"):
    """Heatmap of a contingency table ``{"classes": [...], "normalized": rows}``."""
    plt = pyplot()
    norm = np.asarray(table["normalized"])
    fig, ax = plt.subplots(figsize=(1 + 0.7 * norm.shape[1], 1 + 0.6 * norm.shape[0]))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for (i, j), v in np.ndenumerate(norm):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8,
                color="w" if v > 0.6 else "k")
    ax.set_xticks(range(norm.shape[1]))
    ax.set_yticks(range(norm.shape[0]), [str(c) for c in table["classes"]])
    ax.set_xlabel("cluster")
    ax.set_ylabel("class")
    ax.set_title(title, fontsize=9)
    return fig
