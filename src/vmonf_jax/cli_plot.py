"""Figures for ``vmonf plot``: posterior regions with samples (2-D models), training curves.

matplotlib with the Agg backend (no display needed); files are written atomically.
"""

import os

import numpy as np

from vmonf_jax import io

IMAGE_FORMATS = (".png", ".pdf", ".svg")


def plot_model(model, path, *, kind="auto", data=None, n_samples=1000, seed=None,
               grid=200):
    """Draw ``model`` to ``path`` (.png/.pdf/.svg).

    Args:
        model: a fitted ``VMoNF``.
        kind: "regions" (2-D models: background = argmax_k q(k|x) on a grid, samples coloured
            by the component that drew them, ``data`` in grey), "curves" (loss, ELBO and
            log-likelihood, temperature and component usage per epoch), or "auto".
        data: optional (n, 2) array drawn under the samples.
        n_samples, seed: samples for the regions figure (seed None: the model's seed).
        grid: grid points per axis for the regions.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    if kind == "auto":
        kind = "regions" if model.n_features_in_ == 2 else "curves"
    fig = (_regions(plt, model, data, n_samples, seed, grid) if kind == "regions"
           else _curves(plt, model))
    ext = io.suffix_of(path, IMAGE_FORMATS, "image")
    try:
        with io.atomic_file(path, "wb") as f:
            fig.savefig(f, format=ext[1:], dpi=150, bbox_inches="tight")
    finally:
        plt.close(fig)
    return os.path.abspath(path)


def _palette(k):
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if k <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(k)]


def _regions(plt, model, data, n_samples, seed, grid):
    from matplotlib.colors import ListedColormap

    k = int(model.n_components)
    colors = _palette(k)
    xs, comp = model.sample(n_samples, seed=seed)
    xs, comp = np.asarray(xs), np.asarray(comp)
    pts = xs if data is None else np.concatenate([xs, data])
    lo, hi = np.percentile(pts, 0.5, axis=0), np.percentile(pts, 99.5, axis=0)
    if data is not None:
        lo, hi = np.minimum(lo, data.min(0)), np.maximum(hi, data.max(0))
    pad = 0.1 * np.maximum(hi - lo, 1e-6)
    lo, hi = lo - pad, hi + pad
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], grid), np.linspace(lo[1], hi[1], grid))
    cells = np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32)
    region = np.asarray(model.predict(cells)).reshape(grid, grid)

    fig, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(region, origin="lower", extent=(lo[0], hi[0], lo[1], hi[1]), aspect="auto",
              cmap=ListedColormap(colors), vmin=-0.5, vmax=k - 0.5, alpha=0.25,
              interpolation="nearest")
    if data is not None:
        ax.scatter(data[:, 0], data[:, 1], s=3, c="0.35", alpha=0.4, linewidths=0,
                   label="data")
    for c in range(k):
        m = comp == c
        ax.scatter(xs[m, 0], xs[m, 1], s=5, color=colors[c], linewidths=0,
                   label=f"component {c} ({int(m.sum())})")
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_title(f"VMoNF, K={k}: regions argmax q(k|x), {n_samples} samples by component",
                 fontsize=9)
    ax.legend(loc="upper right", fontsize=7, markerscale=2, framealpha=0.8)
    return fig


def _curves(plt, model):
    hist = list(model.history_ or [])
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True)
    (a_loss, a_elbo), (a_t, a_use) = axes
    x = np.arange(len(hist))

    def series(name):
        return np.array([h.get(name, np.nan) for h in hist], dtype=float)

    a_loss.plot(x, series("loss"), lw=1)
    a_loss.set_title("loss (per point)", fontsize=9)
    a_elbo.plot(x, series("elbo"), lw=1, label="ELBO")
    a_elbo.plot(x, series("loglik"), lw=1, label="log-likelihood")
    if any("val_loglik" in h for h in hist):
        a_elbo.plot(x, series("val_loglik"), lw=1, label="validation log-likelihood")
    a_elbo.set_title("training batches (preprocessed units)", fontsize=9)
    a_elbo.legend(fontsize=7)
    a_t.plot(x, series("T"), lw=1)
    a_t.set_title("temperature T", fontsize=9)
    usage = [h.get("usage") for h in hist]
    k = int(model.n_components)
    colors = _palette(k)
    if usage and all(u is not None and len(u) == k for u in usage):
        u = np.asarray(usage, dtype=float)
        for c in range(k):
            a_use.plot(x, u[:, c], lw=1, color=colors[c], label=f"component {c}")
        a_use.legend(fontsize=7)
    a_use.set_title("component usage: mean q(k|x)", fontsize=9)
    # shade warm-up/pre-training epochs and mark restarts
    early = np.array([h.get("phase") in ("warm", "pretrain") for h in hist] + [False])
    starts = [i for i in range(len(hist)) if early[i] and (i == 0 or not early[i - 1])]
    restarts = [i for i in range(1, len(hist))
                if hist[i].get("restart") != hist[i - 1].get("restart")]
    for ax in axes.ravel():
        for i in starts:
            j = i
            while early[j]:
                j += 1
            ax.axvspan(i - 0.5, j - 0.5, color="0.9", lw=0)
        for i in restarts:
            ax.axvline(i - 0.5, color="0.5", ls="--", lw=0.8)
    for ax in axes[1]:
        ax.set_xlabel("epoch (grey: warm start / pre-training)")
    fig.suptitle(f"VMoNF training, K={k}, {model.n_features_in_} columns", fontsize=10)
    fig.tight_layout()
    return fig
