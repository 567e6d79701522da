"""The estimator's parameters without scikit-learn: their defaults and the fit they describe.

``VMoNF``, the model directory and the CLI share these, so loading a saved model for
prediction needs neither scikit-learn nor the estimator class. Importing this module loads
no JAX (``vmonf --help`` reads the defaults); ``fit_config`` imports the model and the recipe.
"""

import ast
import functools
import importlib.util


@functools.cache
def estimator_defaults() -> dict:
    """``VMoNF().get_params()``, read from ``estimator.py``'s source without importing it.

    The constructor's arguments are keyword-only literals (a test compares this with
    ``VMoNF().get_params()``).
    """
    path = importlib.util.find_spec("vmonf_jax.estimator").origin
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "VMoNF")
    init = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    return {a.arg: ast.literal_eval(d) for a, d in zip(init.args.kwonlyargs,
                                                        init.args.kw_defaults)}


def fit_config(params: dict, dim: int, n_components: int | None = None):
    """The ``FitConfig`` (model and training recipe) of ``VMoNF`` parameters for ``dim`` columns.

    Args:
        params: ``VMoNF`` parameters (those missing take the estimator's defaults).
        dim: the number of data columns.
        n_components: the K kept by a sparse fit (default: ``params["n_components"]``).

    Returns:
        A ``train.FitConfig``.

    Raises:
        ValueError: a parameter beyond the documented limits, or one the model or the recipe
            refuses (named).
    """
    from vmonf_jax import manifest
    from vmonf_jax.mixture import Mixture
    from vmonf_jax.preprocess import LOGIT_LAMBDA
    from vmonf_jax.train import FitConfig

    p = {**estimator_defaults(), **params}
    manifest.check_params(p, dim)  # documented limits (docs/api.md)
    k = int(p["n_components"] if n_components is None else n_components)
    model = Mixture(dim=dim, n_components=k, flow_name=p["flow"],
                    n_blocks=int(p["n_blocks"]), hidden=tuple(p["hidden"]),
                    batch_norm=bool(p["batch_norm"]), prelu=bool(p["prelu"]),
                    affine=p["init"] == "gaussian", base=p["base"],
                    spline_bins=int(p["spline_bins"]), spline_bound=float(p["spline_bound"]),
                    posterior_hidden=tuple(p["posterior_hidden"]), prior=p["prior"])
    manifest.check_size(model, int(p["n_init"]))  # before anything is built
    return FitConfig(
        model=model, epochs=int(p["epochs"]), batch_size=int(p["batch_size"]),
        learning_rate=float(p["learning_rate"]), weight_decay=float(p["weight_decay"]),
        decoupled_weight_decay=bool(p["decoupled_weight_decay"]), clip_norm=p["clip_norm"],
        consistency=float(p["consistency"]),
        temperature_start=float(p["temperature_start"]),
        temperature_decay=float(p["temperature_decay"]),
        temperature_min=float(p["temperature_min"]),
        semi_supervised=p["semi_supervised"], pretrain_epochs=int(p["pretrain_epochs"]),
        n_init=int(p["n_init"]), init=p["init"], warm_epochs=int(p["warm_epochs"]),
        val_fraction=float(p["val_fraction"]), patience=p["patience"],
        early_stopping=bool(p["early_stopping"]),
        verbose=bool(p["verbose"]),
        dequantize=LOGIT_LAMBDA if p["preprocess"] == "logit-pixels" else None)
