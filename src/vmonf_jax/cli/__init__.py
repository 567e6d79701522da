"""``vmonf``: fit, inspect, cluster, score and sample a VMoNF from the command line.

    vmonf fit data.csv --components 3 --out model
    vmonf predict model data.csv --out clusters.csv
    vmonf score model - < data.csv        # per-row log-likelihood on stdout, mean on stderr
    vmonf sample model -n 1000 --out samples.npz
    vmonf info model
    vmonf plot model data.csv --out model.png

Exit status: 0 success; 1 training diverged (non-finite loss) or an internal error; 2 bad
input or usage (one line on stderr, never a traceback); 130 interrupted (Ctrl-C or SIGTERM;
``fit`` saves a checkpoint first, ``fit --resume`` continues it). See docs/cli.md.

Modules: ``options`` (the option table shared with ``VMoNF``, argparse types), ``commands``
(predict, score, sample, info, plot), ``fitting`` (fit, resume, interrupts), ``runtime``
(JAX set-up: compilation cache, versions). JAX is imported only by the commands that need it.
"""

import argparse
import contextlib
import importlib
import logging
import os
import sys
import threading
import warnings

from vmonf_jax.cli import options as opt

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
DATA_HELP = "data file (.csv, .tsv, .npy, .npz, also gzipped: .csv.gz; - = CSV on stdin)"
# command -> (module, function); imported when the command runs
COMMANDS = {"fit": ("fitting", "cmd_fit"), **{c: ("commands", f"cmd_{c}") for c in (
    "predict", "score", "sample", "info", "plot")}}


QUIET_LOGGERS = ("absl", "asyncio", "orbax", "jax._src.compilation_cache")
"""Libraries whose log records (and tracebacks) the CLI does not print."""


class UsageError(ValueError):
    """A problem with the command line or the files it names (exit status 2)."""


class _VersionAction(argparse.Action):
    """``--version``: this library's, JAX's and jaxlib's versions and the default device."""

    def __init__(self, option_strings, dest, **kw):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        from vmonf_jax.cli import runtime

        print(runtime.version_text())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The ``vmonf`` argument parser (one sub-parser per command)."""
    p = argparse.ArgumentParser(
        prog="vmonf",
        description="Variational Mixture of Normalizing Flows: fit a mixture of K flows to a "
                    "table of numbers, then cluster, score, sample and plot with it.",
        epilog="Data files: .csv (separated by commas, or by ';' or tabs as the first row "
               "shows; an optional header row; numeric cells, --columns chooses them), .tsv "
               "(tabs), .npy, or .npz (the only array, or the one named by --key); .csv.gz, "
               ".tsv.gz and .npy.gz are read too, and - reads CSV from stdin. Outputs are "
               "written in the format of their extension. Exit status: 0 ok, 1 training "
               "diverged, 2 bad input or usage, 130 interrupted.")
    p.add_argument("--version", action=_VersionAction,
                   help="show the versions of vmonf-jax, jax and jaxlib and the device, then "
                        "exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name, help, description, model=True):
        sp = sub.add_parser(name, help=help, description=description)
        if model:
            sp.add_argument("model", metavar="MODEL_DIR", help="a model directory written by fit")
        return sp

    def data(sp, nargs=None, fitted=True):
        sp.add_argument("data", metavar="DATA", nargs=nargs, help=DATA_HELP)
        sp.add_argument("--key", metavar="NAME", help="array to read from a .npz DATA file")
        sp.add_argument("--columns", type=opt.column_list, metavar="C[,C...]",
                        help="DATA's columns to use, in this order: CSV header names or "
                             "0-based indices; the others are not read (they may hold text)"
                        + (". Default: the model's columns by name when both DATA and the "
                           "model have names, else every column but those under a blank "
                           "header cell first or last (row names; a separator ending each "
                           "line)" if fitted else
                           ". Default: every column but the label column and those under a "
                           "blank header cell first or last (row names; a separator ending "
                           "each line); header names are kept as the model's columns"))
        sp.add_argument("--drop-incomplete", action="store_true",
                        help="rows with a missing cell (blank, NA, NaN, N/A, null) in the "
                             "columns used are "
                        + ("left out of the fit instead of refusing the file; says how many"
                           if not fitted else "not refused: they get no result (cluster -1, "
                           "NaN for numbers) and the others keep their place"))

    def out(sp, what="output file (.csv, .npy, .npz); default CSV on stdout", required=False):
        sp.add_argument("--out", "-o", metavar="FILE", required=required, help=what)
        sp.add_argument("--overwrite", action="store_true",
                        help="replace FILE if it exists (never an input of the command)")

    f = command("fit", "fit a model to DATA and save it to MODEL_DIR",
                "Fit a VMoNF to DATA and save it to MODEL_DIR. Every VMoNF parameter is an "
                "option; defaults are the estimator's. Ctrl-C or SIGTERM saves a checkpoint "
                "(in MODEL_DIR.partial/) and exits with status 130; run the same command with "
                "--resume to continue, ending with the same parameters as an uninterrupted "
                "fit.", model=False)
    data(f, fitted=False)
    f.add_argument("--out", "-o", required=True, metavar="MODEL_DIR",
                   help="model directory to create (refused if it exists, unless --overwrite "
                        "or --resume)")
    opt.add_fit_options(f.add_argument_group("model and training (VMoNF parameters)"))
    lab = f.add_mutually_exclusive_group()
    lab.add_argument("--labels", metavar="FILE",
                     help="labels, one per row of DATA (.csv one column, .npy, .npz, as DATA): "
                          "integers in [0, K) or class names; the c-th label in sorted order "
                          "trains component c; -1 or blank = unlabelled")
    lab.add_argument("--label-column", metavar="NAME",
                     help="take the labels from this column of DATA (a CSV header name, or a "
                          "0-based column index)")
    f.add_argument("--labels-key", metavar="NAME",
                   help="array to read from a .npz label file holding several")
    f.add_argument("--checkpoint-seconds", type=opt.nonneg, default=30.0, metavar="S",
                   help="least time between periodic training checkpoints (default 30; an "
                        "interrupt always saves one)")
    mode = f.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true",
                      help="continue the interrupted fit of MODEL_DIR (same DATA; settings "
                           "are taken from the interrupted run)")
    mode.add_argument("--overwrite", action="store_true",
                      help="replace MODEL_DIR if it is a model directory or empty (anything "
                           "else is refused), and discard an interrupted fit of it; the old "
                           "model stays in place until the new one is saved")

    pr = command("predict", "cluster of each row (or its posterior)",
                 "Write the cluster (component index, argmax_k of the posterior) of each row of "
                 "DATA, or with --proba the posterior probabilities.")
    data(pr)
    pr.add_argument("--proba", action="store_true",
                    help="write the posterior of every component instead of the cluster")
    pr.add_argument("--posterior", choices=("exact", "q"), default="exact",
                    help="exact: p(k|x) of the fitted mixture (the Bayes rule); q: the trained "
                         "network q(k|x) at the temperature of the kept parameters (default "
                         "exact)")
    out(pr)

    sc = command("score", "exact log-likelihood of each row",
                 "Write the exact log-likelihood log p(x) of each row of DATA (nats, in DATA's "
                 "units) and print the mean on stderr.")
    data(sc)
    out(sc)

    sa = command("sample", "draw points from the model",
                 "Draw N points from the mixture (or from one component) and write them with "
                 "the component that drew each (CSV: a 'component' column; .npz: arrays X and "
                 "component; .npy: X only).")
    sa.add_argument("-n", type=opt.n_samples, required=True, metavar="N",
                    help=f"number of points (at most {opt.MAX_SAMPLES})")
    sa.add_argument("--component", type=int, metavar="k",
                    help="draw from component k only (0-based)")
    sa.add_argument("--seed", type=opt.seed, metavar="S",
                    help="random seed in [0, 2**32) (default: the model's seed)")
    out(sa)

    inf = command("info", "describe a model",
                  "Print a model's configuration, data dimension, preprocessing, training "
                  "summary, and the versions and device that read it.")
    inf.add_argument("--json", action="store_true", help="print JSON instead of text")

    pl = command("plot", "figure of a model",
                 "For a 2-D model: the posterior's regions (argmax_k q(k|x) on a grid) with "
                 "samples coloured by the component that drew them, over DATA if given. "
                 "Otherwise (or with --kind curves): training curves (loss, ELBO, temperature, "
                 "component usage per epoch).")
    data(pl, nargs="?")
    pl.add_argument("--kind", choices=("auto", "regions", "curves"), default="auto",
                    help="regions (2-D models only), curves, or auto (default)")
    pl.add_argument("-n", type=opt.n_samples, default=1000, metavar="N",
                    help="samples to draw for the regions figure (default 1000)")
    pl.add_argument("--seed", type=opt.seed, metavar="S",
                    help="random seed of the samples (default: the model's seed)")
    out(pl, "image file (.png, .pdf, .svg)", required=True)
    return p


def main(argv=None) -> int:
    """Run ``vmonf``; returns the exit status (0, 1, 2 or 130)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) and usage errors (2)
        return int(exc.code or 0)
    name = f"vmonf {args.command}"
    module, func = COMMANDS[args.command]
    _quiet_libraries()
    try:
        with warnings.catch_warnings():  # one line each (e.g. dead components), no source
            warnings.showwarning = _warner(name)
            return getattr(importlib.import_module(f"vmonf_jax.cli.{module}"), func)(args)
    except BrokenPipeError:  # the reader stopped early (`| head`): its choice, not an error
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (ValueError, OSError) as err:  # DataError and UsageError are ValueErrors
        return _fail(name, _message(err), EXIT_USAGE)
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (MemoryError, OverflowError, RecursionError) as err:
        return _fail(name, f"the input is too large or too deep to handle "
                           f"({type(err).__name__}: {err})", EXIT_USAGE)
    except Exception as err:  # never a traceback; an XLA out-of-memory is bad input
        if type(err).__name__ in ("JaxRuntimeError", "XlaRuntimeError") and (
                "RESOURCE_EXHAUSTED" in str(err)):
            return _fail(name, f"out of memory: {err}", EXIT_USAGE)
        return _fail(name, f"internal error ({type(err).__name__}: {err}); please report it",
                     EXIT_FAILED)


def _quiet_libraries():
    """Keep library noise off stderr: the command's own line says what went wrong.

    Log records of ``QUIET_LOGGERS`` below CRITICAL, and tracebacks of errors in background
    threads and callbacks (e.g. Orbax's writer threads and their event loops on a full disk,
    or after a damaged checkpoint) are dropped.
    """
    for logger in QUIET_LOGGERS:
        logging.getLogger(logger).setLevel(logging.CRITICAL)
    sys.excepthook = sys.unraisablehook = threading.excepthook = lambda *a, **k: None


def _warner(name):
    """``warnings.showwarning`` for the CLI: one line per warning.

    JAX's warnings about unreadable compilation-cache entries (compiled afresh) give one
    line in all.
    """
    seen = set()

    def show(message, *_, **__):
        text = str(message).strip().splitlines() or [""]
        if text[0].startswith("Error reading persistent compilation cache"):
            if "cache" in seen:
                return
            seen.add("cache")
            text[0] += " (damaged cache entries are ignored and compiled afresh)"
        print(f"{name}: warning: {printable(text[0][:500])}", file=sys.stderr)

    return show


def _fail(name, text, status):
    """Print ``name: error: text`` as one line on stderr; return ``status``."""
    lines = str(text).strip().splitlines() or [""]
    print(f"{name}: error: {printable(lines[0][:500])}", file=sys.stderr)
    return status


def printable(text: str) -> str:
    """``text`` with control characters (escape sequences, ...) shown as Python escapes.

    Strings from files (a manifest, a CSV header) never reach the terminal raw.
    """
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in str(text))


def _message(err):
    if isinstance(err, OSError) and err.filename:
        return f"{err.filename}: {err.strerror or err}"
    return str(err)
