"""Every ``VMoNF`` parameter, once: default, bounds, ``vmonf fit`` option, help, destination.

The estimator's constructor (``estimator_init``), its defaults, the check before a fit and
of a saved model's manifest (``check``), the options of ``vmonf fit`` (``cli.options``) and
the ``FitConfig`` a fit runs (``settings.fit_config``) are all derived from ``PARAMS``, so a
new parameter is one row here. Importing this module loads no JAX (``vmonf --help`` reads
it). docs/api.md explains each default.
"""

import inspect
from dataclasses import dataclass

from vmonf_jax.model import priors, registry
from vmonf_jax.spec.kinds import Auto, Bool, Choice, Int, Optional, Real, Sizes

LIMITS = {"n_components": 1024, "n_blocks": 64, "hidden_layers": 8, "width": 65536,
          "seed": 2**32, "devices": 2**20, "spline_bins": 64}
"""Documented caps on what a model's parameters may describe (docs/api.md)."""

PRIORS = tuple(priors.PRIORS)
INITS = ("random", "kmeans", "balanced", "gaussian", "kmeans+gaussian")
GAUSSIAN_INITS = ("gaussian", "kmeans+gaussian")  # flows end with a location-scale layer
SEMI_MODES = ("paper", "joint")
OBJECTIVES = ("elbo", "marginal")
TRAIN_RESTARTS = ("best", "all")
PREPROCESSING = ("none", "standardize", "logit-pixels")
PARALLEL = ("data", "components")


@dataclass(frozen=True)
class Param:
    """One estimator parameter.

    Attributes:
        name: the estimator's argument.
        default: its default (a literal: tuples for sizes).
        kind: the bound (``kinds``): checks values, parses command-line words.
        help: what it does, for ``vmonf fit --help`` (the default is appended).
        flags: the ``vmonf fit`` option strings, the long one first.
        metavar: the placeholder shown in the help.
        to: where ``fit_config`` passes it: ``"model"`` (``Mixture``), ``"recipe"``
            (``FitConfig``) or None (used elsewhere: preprocessing, seed, devices).
        const: for a flag without argument, the value it stores (``--quiet``).
    """

    name: str
    default: object
    kind: object
    help: str
    flags: tuple
    metavar: str = None
    to: str = "recipe"
    const: object = None

    def check(self, value):
        """The problem with ``value`` (a sentence naming the parameter), or None."""
        problem = self.kind.check(value)
        return f"{self.name} {problem}" if problem else None


_POS, _NONNEG = Int(1), Int(0)
_SIZES = Sizes(LIMITS["hidden_layers"], LIMITS["width"])

PARAMS = (
    Param("n_components", 2, Int(1, LIMITS["n_components"]),
          "number of mixture components K", ("--components", "-k"), "K", to="model"),
    Param("flow", "realnvp", Choice(registry.flow_names), "flow of each component; glow = "
          "per block LU-affine mixing, then affine coupling; spline = rational-quadratic "
          "spline couplings; spline_ar = MADE autoregressive splines (takes 1 column)",
          ("--flow",), to="model"),
    Param("n_blocks", 8, Int(1, LIMITS["n_blocks"]), "flow layers per component",
          ("--blocks",), "N", to="model"),
    Param("hidden", (8,), _SIZES, "hidden layer sizes of each flow layer's networks",
          ("--hidden",), "H[,H...]", to="model"),
    Param("batch_norm", False, Bool(), "batch-normalisation layers between the flow blocks",
          ("--batch-norm",), to="model"),
    Param("prelu", False, Bool(), "PReLU layers between the flow blocks", ("--prelu",),
          to="model"),
    Param("base", "auto", Choice(lambda: ("auto", *registry.base_names())), "base "
          "distribution of each flow: standard normal, a product of Student-t marginals with "
          "a learned degrees of freedom per component, or auto: Student-t where a training row "
          "lies more than 10 robust deviations from a column's median, else normal", ("--base",),
          to="model"),
    Param("spline_bins", 8, Int(2, LIMITS["spline_bins"]), "bins of each spline (spline "
          "flows)", ("--spline-bins",), "B", to="model"),
    Param("spline_bound", 4.0, Real(0, open_lo=True), "splines act on [-bound, bound] in "
          "standardised units, the identity outside (spline flows)", ("--spline-bound",), "A",
          to="model"),
    Param("posterior_hidden", (16,), _SIZES, "hidden layer sizes of the posterior network "
          "q(k|x)", ("--posterior-hidden",), "H[,H...]", to="model"),
    Param("prior", "uniform", Choice(PRIORS), "mixture weights: fixed uniform, learned by "
          "gradient, set to the mean responsibilities each epoch (em), or sparse (K an upper "
          "bound: a sparse Dirichlet prior, light components pruned)", ("--prior",),
          to="model"),
    Param("temperature_start", 1.0, Real(0, open_lo=True), "posterior temperature T at the "
          "first epoch; T = max(min, start * decay**epoch)", ("--temperature-start",), "T"),
    Param("temperature_decay", 0.98, Real(0, 1, open_lo=True), "factor on T per epoch",
          ("--temperature-decay",), "D"),
    Param("temperature_min", 0.05, Real(0, open_lo=True), "floor of T",
          ("--temperature-min",), "T"),
    Param("epochs", 100, _POS, "training epochs (with early stopping lowered to at most "
          "100,000 steps; docs/api.md)", ("--epochs",), "E"),
    Param("steps", None, Optional(_POS), "gradient steps of the main phase; overrides "
          "--epochs (none = from --epochs)", ("--steps",), "S"),
    Param("batch_size", 256, _POS, "mini-batch size", ("--batch-size",), "B"),
    Param("learning_rate", 1e-3, Real(0, open_lo=True), "Adam learning rate", ("--lr",),
          "LR"),
    Param("weight_decay", 0.0, Real(0), "weight decay (L2, coupled as in the paper unless "
          "--decoupled-weight-decay)", ("--weight-decay",), "WD"),
    Param("decoupled_weight_decay", False, Bool(), "AdamW's decoupled weight decay instead "
          "of the paper's L2 term", ("--decoupled-weight-decay",)),
    Param("clip_norm", 100.0, Optional(Real(0, open_lo=True)), "clip gradients to this "
          "global norm (none = no clipping)", ("--clip-norm",), "C"),
    Param("consistency", "auto", Auto(Real(0)), "weight of the regulariser that makes q(k|x) "
          "agree between nearest neighbours (0 = the paper's objective; auto: docs/api.md)",
          ("--consistency",), "W"),
    Param("objective", "marginal", Choice(OBJECTIVES), "what trains the flows: elbo (the paper's: "
          "each row weighted by q(k|x)) or marginal (the exact log p(x), each row weighted by "
          "the exact posterior p(k|x)); q(k|x) is fitted to p(k|x) either way, and the loss's "
          "value is -ELBO either way", ("--objective",)),
    Param("n_init", 3, _POS, "restarts; the one with the best ELBO (or validation "
          "likelihood) is kept", ("--n-init",), "R"),
    Param("train_restarts", "best", Choice(TRAIN_RESTARTS), "with the Gaussian start and "
          "validation rows: train only the restart whose start scores best on them (best), "
          "or train every restart and keep the best after training (all)",
          ("--train-restarts",)),
    Param("init", "kmeans+gaussian", Choice(INITS), "start of each restart: random, a k-means "
          "warm start, balanced (random, then a warm-up that keeps every component in use; "
          "see --warm-epochs), gaussian (each component starts as one Gaussian of a fitted "
          "Gaussian mixture, then the k-means warm start's epochs), or kmeans+gaussian (the "
          "k-means warm start trains; the Gaussian mixture fitted from its partition is kept "
          "unless training beats it on the validation rows)", ("--init",)),
    Param("warm_epochs", 200, _NONNEG, "warm-start epochs (gaussian, k-means or balanced) "
          "before training, unlabelled data only (0 = none)", ("--warm-epochs",), "W"),
    Param("semi_supervised", "joint", Choice(SEMI_MODES), "with labels: paper (pre-train, "
          "then alternate unsupervised and supervised epochs) or joint (both in every step)",
          ("--semi-supervised",)),
    Param("pretrain_epochs", 0, _NONNEG, "supervised epochs on the labelled rows first",
          ("--pretrain-epochs",), "P"),
    Param("val_fraction", 0.0, Real(0, 1, open_hi=True), "fraction of rows held out for "
          "validation and early stopping", ("--val-fraction",), "F"),
    Param("patience", None, Optional(_NONNEG), "stop after P epochs without validation "
          "improvement (needs --val-fraction; none = never)", ("--patience",), "P"),
    Param("early_stopping", True, Bool(), "hold out rows for validation when --val-fraction "
          "is 0 (15%%, at least 10, at most 20,000 and half; none below 10 rows), stop after "
          "a quarter of the epochs (at least 20) without improvement unless --patience, keep "
          "the best parameters (the Gaussian start's included)", ("--early-stopping",)),
    Param("preprocess", "standardize", Choice(PREPROCESSING), "transform applied before the "
          "flows; likelihoods stay in DATA's units (logit-pixels for 8-bit images)",
          ("--preprocess",), to=None),
    Param("dequantize", "auto", Auto(Bool()), "add uniform noise in [0, 1) to integer "
          "columns in training (auto: all columns when all are integers, else those with at "
          "most 20 distinct values; true: every "
          "integer column; false: none); likelihoods are then densities of the dequantised "
          "values, scored at each integer's cell midpoint (ignored by logit-pixels)",
          ("--dequantize",), "{auto,true,false}", to=None),
    Param("seed", 0, Int(0, LIMITS["seed"] - 1), "random seed", ("--seed",), "S", to=None),
    Param("verbose", True, Bool(), "no progress bar or summary", ("--quiet", "-q"),
          const=False),
    Param("parallel", None, Optional(Choice(PARALLEL)), "train over several devices: split "
          "each batch (data) or the K components (components; K a multiple of the device "
          "count); docs/distributed.md", ("--parallel",), to=None),
    Param("devices", None, Optional(Int(1, LIMITS["devices"])), "number of devices for "
          "--parallel (none = all; alone: data mode)", ("--devices",), "N", to=None),
)
BY_NAME = {p.name: p for p in PARAMS}
DEFAULTS = {p.name: p.default for p in PARAMS}


def check(params: dict, prefix: str = "") -> None:
    """Check the values of known parameters (others are the caller's to refuse).

    Raises:
        ValueError: the first bad value, naming the parameter (after ``prefix``).
    """
    for name, value in params.items():
        problem = BY_NAME[name].check(value) if name in BY_NAME else None
        if problem:
            raise ValueError(prefix + problem)


def estimator_init():
    """An ``__init__`` taking every parameter by keyword, with ``PARAMS``' defaults.

    Its signature lists them (``inspect.signature``: scikit-learn's ``get_params`` and
    ``clone`` read it); it stores each value unchecked, as scikit-learn asks of estimators.
    """

    def __init__(self, **params):
        unknown = next((k for k in params if k not in BY_NAME), None)
        if unknown is not None:
            raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument "
                            f"{unknown!r}")
        self.__dict__.update({**DEFAULTS, **params})

    kw = inspect.Parameter.KEYWORD_ONLY
    __init__.__signature__ = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [inspect.Parameter(p.name, kw, default=p.default) for p in PARAMS])
    return __init__
