"""The option table of ``vmonf fit``: one row per ``VMoNF`` parameter, and argparse types.

The table names each parameter's flags, parser (with its bounds) and help; the defaults are
the estimator's own, read from ``estimator.py``'s source (``settings.estimator_defaults``), so
``vmonf --help`` answers without importing JAX. The upper limits of sizes
(``modeldir.LIMITS``) are checked by the estimator before anything is written.
"""

import argparse
import math
from dataclasses import dataclass

from vmonf_jax.settings import estimator_defaults

SEED_LIMIT = 2**32
"""Seeds are integers in [0, SEED_LIMIT) (as ``modeldir.LIMITS["seed"]``)."""
MAX_SAMPLES = 1_000_000
"""Most points ``sample -n`` and ``plot -n`` draw (a documented limit)."""


# -- argparse types -----------------------------------------------------------------------
def int_in(lowest, what, highest=None):
    """An argparse type: an integer in [``lowest``, ``highest``], described as ``what``."""

    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if v < lowest or highest is not None and v > highest:
            raise argparse.ArgumentTypeError(f"must be {what}, got {v}")
        return v

    return parse


def real(ok, what):
    """An argparse type: a finite number ``v`` with ``ok(v)``, described as ``what``."""

    def parse(text):
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"must be finite, got {text}")
        if not ok(v):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return v

    return parse


def or_none(parse):
    """An argparse type: ``parse``'s, or ``none`` for None."""
    return lambda text: None if text.strip().lower() == "none" else parse(text)


def sizes(text):
    """An argparse type: comma-separated positive layer sizes, e.g. ``8,8``."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        out = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of integers (e.g. 8,8)") from None
    if not out or any(s < 1 for s in out):
        raise argparse.ArgumentTypeError(f"layer sizes must be positive, got {text!r}")
    return out


positive_int = int_in(1, "a positive integer")
nonneg_int = int_in(0, ">= 0")
seed = int_in(0, "an integer in [0, 2**32)", SEED_LIMIT - 1)
n_samples = int_in(1, f"an integer in [1, {MAX_SAMPLES}]", MAX_SAMPLES)
positive = real(lambda v: v > 0, "positive")
nonneg = real(lambda v: v >= 0, ">= 0")


# -- the table ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Option:
    """One ``VMoNF`` parameter as a ``vmonf fit`` option.

    Attributes:
        param: the estimator's argument.
        flags: the option strings, the long one first.
        help: what it does (the default is appended).
        type: the argparse type (parser with bounds); None for choices and switches.
        choices: the allowed values (the library's names), if a choice.
        metavar: the placeholder shown in the help.
        switch: a yes/no option (``--x``/``--no-x``).
        const: the value a flag without argument stores (``--quiet`` stores verbose=False).
    """

    param: str
    flags: tuple
    help: str
    type: object = None
    choices: tuple = None
    metavar: str = None
    switch: bool = False
    const: object = None

    def add_to(self, parser, default):
        """Add this option to ``parser``; only options given set their parameter."""
        text = self.help if self.const is not None else f"{self.help} (default {_shown(default)})"
        kw = {"dest": self.param, "default": argparse.SUPPRESS, "help": text}
        if self.switch:
            kw["action"] = argparse.BooleanOptionalAction
        elif self.const is not None:
            kw.update(action="store_const", const=self.const)
        else:
            kw.update(type=self.type, choices=self.choices, metavar=self.metavar)
        parser.add_argument(*self.flags, **kw)


FIT_OPTIONS = (
    Option("n_components", ("--components", "-k"), "number of mixture components K",
           positive_int, metavar="K"),
    Option("flow", ("--flow",), "flow of each component; glow = per block LU-affine mixing, "
           "then affine coupling; spline = rational-quadratic spline couplings; spline_ar = "
           "MADE autoregressive splines (takes 1 column)",
           choices=("realnvp", "maf", "glow", "spline", "spline_ar")),
    Option("n_blocks", ("--blocks",), "flow layers per component", positive_int, metavar="N"),
    Option("hidden", ("--hidden",), "hidden layer sizes of each flow layer's networks", sizes,
           metavar="H[,H...]"),
    Option("batch_norm", ("--batch-norm",), "batch-normalisation layers between the flow "
           "blocks", switch=True),
    Option("prelu", ("--prelu",), "PReLU layers between the flow blocks", switch=True),
    Option("base", ("--base",), "base distribution of each flow: standard normal, or a "
           "product of Student-t marginals with a learned degrees of freedom per component",
           choices=("normal", "student_t")),
    Option("spline_bins", ("--spline-bins",), "bins of each spline (spline flows)",
           int_in(2, "an integer in [2, 64]", 64), metavar="B"),
    Option("spline_bound", ("--spline-bound",), "splines act on [-bound, bound] in "
           "standardised units, the identity outside (spline flows)", positive, metavar="A"),
    Option("posterior_hidden", ("--posterior-hidden",), "hidden layer sizes of the posterior "
           "network q(k|x)", sizes, metavar="H[,H...]"),
    Option("prior", ("--prior",), "mixture weights: fixed uniform, learned by gradient, "
           "set to the mean responsibilities each epoch (em), or sparse (K an upper bound: "
           "a sparse Dirichlet prior, light components pruned)",
           choices=("uniform", "learned", "em", "sparse")),
    Option("temperature_start", ("--temperature-start",), "posterior temperature T at the "
           "first epoch; T = max(min, start * decay**epoch)", positive, metavar="T"),
    Option("temperature_decay", ("--temperature-decay",), "factor on T per epoch, in (0, 1]",
           real(lambda v: 0 < v <= 1, "in (0, 1]"), metavar="D"),
    Option("temperature_min", ("--temperature-min",), "floor of T", positive, metavar="T"),
    Option("epochs", ("--epochs",), "training epochs", positive_int, metavar="E"),
    Option("batch_size", ("--batch-size",), "mini-batch size", positive_int, metavar="B"),
    Option("learning_rate", ("--lr",), "Adam learning rate", positive, metavar="LR"),
    Option("weight_decay", ("--weight-decay",), "weight decay (L2, coupled as in the paper "
           "unless --decoupled-weight-decay)", nonneg, metavar="WD"),
    Option("decoupled_weight_decay", ("--decoupled-weight-decay",), "AdamW's decoupled weight "
           "decay instead of the paper's L2 term", switch=True),
    Option("clip_norm", ("--clip-norm",), "clip gradients to this global norm (none = no "
           "clipping)", or_none(positive), metavar="C"),
    Option("consistency", ("--consistency",), "weight of the regulariser that makes q(k|x) "
           "agree between nearest neighbours (0 = the paper's objective)", nonneg,
           metavar="W"),
    Option("n_init", ("--n-init",), "restarts; the one with the best ELBO (or validation "
           "likelihood) is kept", positive_int, metavar="R"),
    Option("init", ("--init",), "start of each restart: random, a k-means warm start, "
           "balanced (random, then a warm-up that keeps every component in use; see "
           "--warm-epochs), or gaussian (each component starts as one Gaussian of a fitted "
           "Gaussian mixture, then the k-means warm start's epochs)",
           choices=("random", "kmeans", "balanced", "gaussian")),
    Option("warm_epochs", ("--warm-epochs",), "warm-start epochs (gaussian, k-means or "
           "balanced) "
           "before training, unlabelled data only (0 = none)", nonneg_int, metavar="W"),
    Option("semi_supervised", ("--semi-supervised",), "with labels: paper (pre-train, then "
           "alternate unsupervised and supervised epochs) or joint (both in every step)",
           choices=("paper", "joint")),
    Option("pretrain_epochs", ("--pretrain-epochs",), "supervised epochs on the labelled rows "
           "first", nonneg_int, metavar="P"),
    Option("val_fraction", ("--val-fraction",), "fraction of rows held out for validation "
           "and early stopping", real(lambda v: 0 <= v < 1, "in [0, 1)"), metavar="F"),
    Option("patience", ("--patience",), "stop after P epochs without validation improvement "
           "(needs --val-fraction; none = never)", or_none(nonneg_int), metavar="P"),
    Option("early_stopping", ("--early-stopping",), "hold out rows for validation when "
           "--val-fraction is 0 (15%%, at least 10, at most 20,000; none below 40 rows), stop "
           "after a quarter of the epochs (at least 20) without improvement unless --patience, "
           "keep the best parameters "
           "(the Gaussian start's included)", switch=True),
    Option("preprocess", ("--preprocess",), "transform applied before the flows; "
           "likelihoods stay in DATA's units (logit-pixels for 8-bit images)",
           choices=("none", "standardize", "logit-pixels")),
    Option("seed", ("--seed",), "random seed in [0, 2**32)", seed, metavar="S"),
    Option("verbose", ("--quiet", "-q"), "no progress bar or summary", const=False),
    Option("parallel", ("--parallel",), "train over several devices: split each batch "
           "(data) or the K components (components; K a multiple of the device count); "
           "docs/distributed.md", choices=("data", "components")),
    Option("devices", ("--devices",), "number of devices for --parallel (none = all; alone: "
           "data mode)", or_none(positive_int), metavar="N"),
)
"""Every ``VMoNF`` parameter, once (a test keeps the table and the estimator in step)."""


def add_fit_options(parser):
    """Add every row of ``FIT_OPTIONS`` to ``parser``, defaults from the estimator."""
    defaults = estimator_defaults()
    for option in FIT_OPTIONS:
        option.add_to(parser, defaults[option.param])


def given(args) -> dict:
    """The estimator parameters given on the command line (the others keep their default)."""
    return {o.param: getattr(args, o.param) for o in FIT_OPTIONS if hasattr(args, o.param)}


def _shown(v):
    if isinstance(v, tuple | list):
        return ",".join(map(str, v))
    return "none" if v is None else str(v)
