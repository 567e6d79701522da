"""Figures of the experiments (matplotlib, Agg backend, PNG files).

Toy sets (the paper's Figures 6-8): ``plot_data``, ``plot_samples_regions``,
``plot_log_density``, ``plot_training_curves``; ``toy_figures`` writes all four.
MNIST (Figure 9 and Table 1): ``plot_sample_grid`` (one row per component) and
``plot_contingency`` (heatmap of the normalised true-digit x cluster table).

Example:
    >>> toy_figures(model, X_train, y_train, "results/pinwheel")
"""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

PALETTE = plt.get_cmap("tab10").colors


def _cmap(k):
    return ListedColormap([PALETTE[i % len(PALETTE)] for i in range(k)])


def _save(fig, path):
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def _grid(X, n=200, margin=0.15):
    X = np.asarray(X)
    lo, hi = X.min(0), X.max(0)
    pad = margin * (hi - lo)
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], n)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], n)
    gx, gy = np.meshgrid(xs, ys)
    return gx, gy, np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32)


def plot_data(X, y, path, title="training data"):
    """Scatter of 2-D data coloured by class (grey where the label is -1, i.e. unlabelled)."""
    X, y = np.asarray(X), np.asarray(y)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    unl = y < 0
    if unl.any():
        ax.scatter(*X[unl].T, s=3, c="0.7", label="unlabelled")
    classes = np.unique(y[~unl])
    for i, c in enumerate(classes):
        pts = X[y == c]
        big = unl.any()
        ax.scatter(*pts.T, s=18 if big else 3, color=PALETTE[i % 10], label=f"class {c}",
                   edgecolors="k" if big else "none", linewidths=0.4)
    ax.set_aspect("equal")
    ax.set_title(title)
    if len(classes) <= 10:
        ax.legend(fontsize=7, markerscale=2, loc="best")
    return _save(fig, path)


def plot_samples_regions(model, X, path, n_samples=2000, seed=0):
    """Samples coloured by the component that drew them, over the argmax of q(k|x)."""
    k = int(model.n_components)
    gx, gy, pts = _grid(X)
    region = model.predict(pts).reshape(gx.shape)
    xs, ks = model.sample(n_samples, seed=seed)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.pcolormesh(gx, gy, region, cmap=_cmap(k), vmin=-0.5, vmax=k - 0.5, alpha=0.25,
                  shading="auto")
    for j in range(k):
        s = xs[ks == j]
        ax.scatter(*s.T, s=3, color=PALETTE[j % 10], label=f"component {j} ({len(s)})")
    ax.set_xlim(gx.min(), gx.max())
    ax.set_ylim(gy.min(), gy.max())
    ax.set_aspect("equal")
    ax.set_title("samples by component over argmax q(k|x)")
    ax.legend(fontsize=6, markerscale=2, loc="best")
    return _save(fig, path)


def plot_log_density(model, X, path):
    """The learned log-density on a grid around the data (clipped 12 nats below its max)."""
    gx, gy, pts = _grid(X)
    lp = model.score_samples(pts).reshape(gx.shape)
    fig, ax = plt.subplots(figsize=(5.2, 4.5))
    im = ax.pcolormesh(gx, gy, np.maximum(lp, lp.max() - 12), cmap="viridis", shading="auto")
    fig.colorbar(im, ax=ax, label="log p(x) (nats)")
    ax.set_aspect("equal")
    ax.set_title("learned log-density")
    return _save(fig, path)


def plot_training_curves(history, path, offset=0.0):
    """ELBO and exact log-likelihood (training batches), temperature, component usage.

    The history is in the model's preprocessed units; ``offset`` (the mean preprocessing
    log-determinant) shifts both curves into the data's units. Shaded: warm-start or
    pre-training epochs; the semi-supervised runs' supervised epochs are left out.
    """
    hist = [e for e in history if e.get("phase") != "main-sup"]
    restarts = sorted({e.get("restart", 0) for e in hist})
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for r in restarts:
        h = [e for e in hist if e.get("restart", 0) == r]
        x = np.arange(len(h))
        tag = f" (restart {r})" if len(restarts) > 1 else ""
        axes[0].plot(x, np.array([e["elbo"] for e in h]) + offset, lw=1, label="ELBO" + tag)
        axes[0].plot(x, np.array([e["loglik"] for e in h]) + offset, lw=1,
                     label="log-likelihood" + tag)
        axes[1].plot(x, [e["T"] for e in h], lw=1, label="T" + tag)
        usage = np.array([e["usage"] for e in h])
        for j in range(usage.shape[1]):
            axes[2].plot(x, usage[:, j], lw=1, color=PALETTE[j % 10],
                         label=f"component {j}" if r == restarts[0] else None)
        pre = sum(e.get("phase") in ("warm", "pretrain") for e in h)
        for ax in axes:
            if pre:
                ax.axvspan(0, pre, color="0.9", zorder=0)
    lo = np.percentile([e["elbo"] + offset for e in hist], 2) if hist else 0
    hi = max([e["loglik"] + offset for e in hist], default=1)
    axes[0].set_ylim(lo - 0.05 * abs(hi - lo), hi + 0.05 * abs(hi - lo) + 1e-6)
    axes[0].set_title("training ELBO and log-likelihood (nats)")
    axes[1].set_title("temperature")
    axes[2].set_title("component usage (mean q)")
    for ax in axes:
        ax.set_xlabel("epoch (shaded: warm start / pre-training)")
        ax.legend(fontsize=7)
    return _save(fig, path)


def toy_figures(model, X, y, outdir, labels=None) -> list[str]:
    """The four toy figures of a fitted 2-D model into ``outdir``; returns the paths.

    ``labels`` (with -1 for unlabelled) replaces ``y`` in the data figure when given.
    """
    _, log_det = model.preprocessor_.transform(X)
    return [plot_data(X, y if labels is None else labels, os.path.join(outdir, "data.png")),
            plot_samples_regions(model, X, os.path.join(outdir, "samples.png")),
            plot_log_density(model, X, os.path.join(outdir, "log_density.png")),
            plot_training_curves(model.history_, os.path.join(outdir, "training.png"),
                                 offset=float(np.mean(log_det)))]


def plot_sample_grid(model, path, n_per_component=10, seed=0, side=28):
    """Image samples, one row per component (pixel levels, 0 = black)."""
    k = int(model.n_components)
    rows = [np.floor(model.sample(n_per_component, component=j, seed=seed + j)[0])
            for j in range(k)]
    fig, axes = plt.subplots(k, n_per_component, figsize=(n_per_component * 0.8, k * 0.85),
                             squeeze=False)
    for j, imgs in enumerate(rows):
        for i in range(n_per_component):
            ax = axes[j, i]
            ax.imshow(imgs[i].reshape(side, side), cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[j, 0].set_ylabel(f"{j}", rotation=0, labelpad=8)
    fig.suptitle("samples, one row per component")
    return _save(fig, path)


def plot_contingency(table: dict, path, title="true digit x cluster (row-normalised)"):
    """Heatmap of a ``report.contingency`` table."""
    norm = np.asarray(table["normalized"])
    fig, ax = plt.subplots(figsize=(1 + 0.7 * norm.shape[1], 1 + 0.6 * norm.shape[0]))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for (i, j), v in np.ndenumerate(norm):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8,
                color="w" if v > 0.6 else "k")
    ax.set_xticks(range(norm.shape[1]))
    ax.set_yticks(range(norm.shape[0]), [str(c) for c in table["classes"]])
    ax.set_xlabel("cluster")
    ax.set_ylabel("digit")
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def mnist_figures(model, X_train, table, outdir) -> list[str]:
    """Sample grid, contingency heatmap and training curves of a fitted image model."""
    _, log_det = model.preprocessor_.transform(X_train)
    return [plot_sample_grid(model, os.path.join(outdir, "samples.png")),
            plot_contingency(table, os.path.join(outdir, "contingency.png")),
            plot_training_curves(model.history_, os.path.join(outdir, "training.png"),
                                 offset=float(np.mean(log_det)))]
