"""Figures for ``vmonf plot``: posterior regions with samples (2-D models), training curves.

The drawing is ``vmonf_jax.plotting``'s (shared with the experiments); files are written
atomically.
"""

from vmonf_jax.files import io

IMAGE_FORMATS = (".png", ".pdf", ".svg")


def plot_model(model, path, *, kind="auto", data=None, n_samples=1000, seed=None,
               grid=200):
    """Draw ``model`` to ``path`` (.png/.pdf/.svg).

    Args:
        model: a fitted ``VMoNF``.
        path: the image file, written atomically; its extension picks the format.
        kind: "regions" (2-D models: background = argmax_k q(k|x) on a grid, samples coloured
            by the component that drew them, ``data`` in grey), "curves" (ELBO and
            log-likelihood, temperature and component usage per epoch), or "auto"
            (regions for 2-D models, else curves).
        data: optional (n, 2) array drawn under the samples.
        n_samples: samples drawn for the regions figure.
        seed: seed of those samples (None: the model's seed).
        grid: grid points per axis for the regions.

    Returns:
        The absolute path written.

    Raises:
        vmonf_jax.files.io.DataError: ``path`` has none of the image extensions (checked before
            anything is drawn).
    """
    from vmonf_jax import plotting

    if kind == "auto":
        kind = "regions" if model.n_features_in_ == 2 else "curves"
    io.suffix_of(path, IMAGE_FORMATS, "image")  # a clear error before any drawing
    if kind == "regions":
        fig = plotting.regions_figure(model, data=data, n_samples=n_samples, seed=seed,
                                      grid=grid)
    else:
        fig = plotting.curves_figure(
            model.history_, int(model.n_components), kept=model.best_restart_,
            title=f"VMoNF training, K={model.n_components}, {model.n_features_in_} columns "
                  "(preprocessed units)")
    return plotting.save_figure(fig, path)
