"""The estimator's parameters without scikit-learn: their defaults and the fit they describe.

``VMoNF``, the model directory and the CLI share these, so loading a saved model for
prediction needs neither scikit-learn nor the estimator class. Importing this module loads
no JAX (``vmonf --help`` reads the defaults); ``fit_config`` imports the model and the recipe.
"""

from vmonf_jax.spec.parameters import BY_NAME, DEFAULTS, GAUSSIAN_INITS, check

BEFORE_ADDED = {"consistency": 0.0, "dequantize": False, "base": "normal", "objective": "elbo",
                "train_restarts": "all"}
"""What parameters added after 0.1.0 did before they existed: the paper's loss and objective,
no dequantisation, normal bases, every restart trained (their defaults now differ)."""


def estimator_defaults() -> dict:
    """``VMoNF().get_params()``: every parameter's default (``parameters.PARAMS``)."""
    return dict(DEFAULTS)


def recorded_settings(stored: dict) -> dict:
    """Every parameter of settings ``stored`` by an earlier fit or save.

    A parameter absent there was added since: ``BEFORE_ADDED``'s value, else its default.
    """
    return {**DEFAULTS, **BEFORE_ADDED, **stored}


def fit_config(params: dict, dim: int, n_components: int | None = None,
               base: str | None = None):
    """The ``FitConfig`` (model and training recipe) of ``VMoNF`` parameters for ``dim`` columns.

    Each parameter goes where its row of ``parameters.PARAMS`` says (``to``): to the
    ``Mixture`` (``flow`` as its ``flow_name``) or to the ``FitConfig``. Two settings follow
    from others: the Gaussian start's last whitening layer (``affine``) from ``init``, and
    the training dequantisation of pixels from ``preprocess``.

    Args:
        params: ``VMoNF`` parameters (those missing take the estimator's defaults).
        dim: the number of data columns.
        n_components: the K kept by a sparse fit (default: ``params["n_components"]``).
        base: what ``base="auto"`` resolved to for the data (``hygiene.auto_base``); without
            it "auto" builds the normal base (checks before the data are read).

    Returns:
        A ``train.FitConfig``.

    Raises:
        ValueError: a parameter beyond the documented limits, or one the model or the recipe
            refuses (named).
    """
    from vmonf_jax.model.mixture import Mixture
    from vmonf_jax.persist import manifest
    from vmonf_jax.preprocess import LOGIT_LAMBDA
    from vmonf_jax.train import FitConfig

    p = {**DEFAULTS, **params}
    check(p)  # documented limits (docs/api.md)
    manifest.check_dim(dim)
    values = {name: BY_NAME[name].kind.convert(v) for name, v in p.items() if name in BY_NAME}
    model = {k: v for k, v in values.items() if BY_NAME[k].to == "model"}
    if n_components is not None:
        model["n_components"] = int(n_components)
    if model["base"] == "auto":
        model["base"] = base or "normal"
    model = Mixture(dim=dim, flow_name=model.pop("flow"), affine=p["init"] in GAUSSIAN_INITS,
                    **model)
    manifest.check_size(model, values["n_init"])  # before anything is built
    recipe = {k: v for k, v in values.items() if BY_NAME[k].to == "recipe"}
    return FitConfig(model=model, **recipe,
                     dequantize=LOGIT_LAMBDA if p["preprocess"] == "logit-pixels" else None)
