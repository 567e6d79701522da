"""``vmonf``: fit, inspect, cluster, score and sample a VMoNF from the command line.

    vmonf fit data.csv --components 3 --out model
    vmonf predict model data.csv --out clusters.csv
    vmonf score model data.csv            # per-row log-likelihood on stdout, mean on stderr
    vmonf sample model -n 1000 --out samples.npz
    vmonf info model
    vmonf plot model data.csv --out model.png

Exit status: 0 success; 1 training diverged (non-finite loss); 2 bad input or usage (a
message on stderr, never a traceback); 130 interrupted (Ctrl-C or SIGTERM; ``fit`` saves a
checkpoint first, ``fit --resume`` continues it). See docs/cli.md.

While ``fit`` runs, its checkpoint and settings live in ``MODEL_DIR.partial/``; MODEL_DIR
itself appears only when training ends (written by ``VMoNF.save``: temporary folder, then
rename), so an interrupted fit is resumable but never mistaken for a finished model.
"""

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import sys
import time

import numpy as np

from vmonf_jax import io

PARTIAL_SUFFIX = ".partial"
FIT_RECORD = "fit.json"
CHECKPOINT = "checkpoint"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

# CLI option -> VMoNF argument (fit); only options given explicitly override the defaults.
FIT_OPTIONS = {
    "components": "n_components", "flow": "flow", "blocks": "n_blocks", "hidden": "hidden",
    "posterior_hidden": "posterior_hidden", "prior": "prior", "epochs": "epochs",
    "warm_epochs": "warm_epochs", "pretrain_epochs": "pretrain_epochs",
    "batch_size": "batch_size", "lr": "learning_rate", "weight_decay": "weight_decay",
    "n_init": "n_init", "val_fraction": "val_fraction", "patience": "patience",
    "preprocess": "preprocess", "seed": "seed", "parallel": "parallel", "devices": "devices",
}


class UsageError(ValueError):
    """A problem with the command line or the files it names (exit status 2)."""


# -- argument types -----------------------------------------------------------------------
def _int_at_least(lowest, what):
    """An argparse type: an integer >= ``lowest``, described as ``what`` in errors."""

    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if v < lowest:
            raise argparse.ArgumentTypeError(f"must be {what}, got {v}")
        return v

    return parse


_positive_int = _int_at_least(1, "a positive integer")
_nonneg_int = _int_at_least(0, ">= 0")


def _sizes(text):
    parts = [p.strip() for p in str(text).split(",")]
    try:
        sizes = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of integers (e.g. 8,8)") from None
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"layer sizes must be positive, got {text!r}")
    return sizes


def _positive_float(text):
    v = _float(text)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return v


def _nonneg_float(text):
    v = _float(text)
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return v


def _fraction(text):
    v = _float(text)
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return v


def _float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not np.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be finite, got {text}")
    return v


# -- parser -------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The ``vmonf`` argument parser (one sub-parser per command)."""
    fmt = argparse.HelpFormatter
    p = argparse.ArgumentParser(
        prog="vmonf", formatter_class=fmt,
        description="Variational Mixture of Normalizing Flows: fit a mixture of K flows to a "
                    "table of numbers, then cluster, score, sample and plot with it.",
        epilog="Data files: .csv (comma-separated; an optional header row, numeric cells), "
               ".npy, or .npz (the only array, or the one named by --key). Outputs are "
               "written in the format of their extension. Exit status: 0 ok, 1 training "
               "diverged, 2 bad input or usage, 130 interrupted.")
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def data_args(sp, what="DATA"):
        sp.add_argument("data", metavar=what,
                        help="data file (.csv, .npy, .npz): one row per point")
        sp.add_argument("--key", metavar="NAME",
                        help="array to read from a .npz data file holding several")

    # fit (defaults shown are the estimator's own)
    D = _default_text
    f = sub.add_parser(
        "fit", formatter_class=fmt, help="fit a model to DATA and save it to MODEL_DIR",
        description="Fit a VMoNF to DATA and save it to MODEL_DIR. Ctrl-C or SIGTERM saves a "
                    "checkpoint (in MODEL_DIR.partial/) and exits with status 130; run the "
                    "same command with --resume to continue, ending with the same parameters "
                    "as an uninterrupted fit.")
    data_args(f)
    f.add_argument("--out", "-o", required=True, metavar="MODEL_DIR",
                   help="model directory to create (refused if it exists, unless --overwrite "
                        "or --resume)")
    f.add_argument("--components", "-k", type=_positive_int, metavar="K",
                   help=f"number of mixture components K (default {D('n_components')})")
    f.add_argument("--flow", choices=("realnvp", "maf"),
                   help=f"flow of each component (default {D('flow')})")
    f.add_argument("--blocks", type=_positive_int, metavar="N",
                   help=f"flow layers per component (default {D('n_blocks')})")
    f.add_argument("--hidden", type=_sizes, metavar="H[,H...]",
                   help=f"hidden layer sizes of each flow layer's networks (default {D('hidden')})")
    f.add_argument("--posterior-hidden", type=_sizes, metavar="H[,H...]",
                   help=f"hidden layer sizes of the posterior network q(k|x) (default "
                        f"{D('posterior_hidden')})")
    f.add_argument("--prior", choices=("uniform", "learned", "em"),
                   help="mixture weights: fixed uniform, learned by gradient, or set to the "
                        f"mean responsibilities each epoch (default {D('prior')})")
    f.add_argument("--epochs", type=_positive_int, metavar="E",
                   help=f"training epochs (default {D('epochs')})")
    f.add_argument("--warm-epochs", type=_nonneg_int, metavar="W",
                   help="k-means warm-start epochs before training, unlabelled data only "
                        f"(default {D('warm_epochs')}; 0 = none)")
    f.add_argument("--pretrain-epochs", type=_nonneg_int, metavar="P",
                   help=f"supervised epochs on the labelled rows first (default "
                        f"{D('pretrain_epochs')})")
    f.add_argument("--batch-size", type=_positive_int, metavar="B",
                   help=f"mini-batch size (default {D('batch_size')})")
    f.add_argument("--lr", type=_positive_float, metavar="LR",
                   help=f"Adam learning rate (default {D('learning_rate')})")
    f.add_argument("--weight-decay", type=_nonneg_float, metavar="WD",
                   help=f"L2 weight decay, coupled as in the paper (default {D('weight_decay')})")
    f.add_argument("--n-init", type=_positive_int, metavar="R",
                   help="restarts; the one with the best ELBO (or validation likelihood) is "
                        f"kept (default {D('n_init')})")
    f.add_argument("--val-fraction", type=_fraction, metavar="F",
                   help="fraction of rows held out for validation and early stopping "
                        f"(default {D('val_fraction')})")
    f.add_argument("--patience", type=_nonneg_int, metavar="P",
                   help="stop after P epochs without validation improvement (needs "
                        f"--val-fraction; default {D('patience')})")
    f.add_argument("--preprocess", choices=("none", "standardize", "logit-pixels"),
                   help="transform applied before the flows; likelihoods stay in DATA's "
                        f"units (default {D('preprocess')}; logit-pixels for 8-bit images)")
    f.add_argument("--seed", type=int, metavar="S", help=f"random seed (default {D('seed')})")
    f.add_argument("--parallel", choices=("data", "components"),
                   help="train over several devices: split each batch (data) or the K "
                        "components (components; K must be a multiple of the device count); "
                        "default: one device (docs/distributed.md)")
    f.add_argument("--devices", type=_positive_int, metavar="N",
                   help="number of devices for --parallel (default: all; alone: data mode)")
    lab = f.add_mutually_exclusive_group()
    lab.add_argument("--labels", metavar="FILE",
                     help="labels, one per row of DATA (.csv one column, .npy, .npz): integers "
                          "in [0, K) train that row's component, -1 or blank = unlabelled")
    lab.add_argument("--label-column", metavar="NAME",
                     help="take the labels from this column of DATA (a CSV header name, or a "
                          "0-based column index)")
    f.add_argument("--labels-key", metavar="NAME",
                   help="array to read from a .npz label file holding several")
    mode = f.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true",
                      help="continue the interrupted fit of MODEL_DIR (same DATA; settings "
                           "are taken from the interrupted run)")
    mode.add_argument("--overwrite", action="store_true",
                      help="replace MODEL_DIR (and discard an interrupted fit of it); the "
                           "old model stays in place until the new one is saved")
    f.add_argument("--quiet", "-q", action="store_true",
                   help="no progress bar or summary")
    f.set_defaults(func=cmd_fit)

    # predict
    pr = sub.add_parser(
        "predict", formatter_class=fmt, help="cluster of each row (or q(k|x))",
        description="Write the cluster (component index, argmax_k q(k|x)) of each row of "
                    "DATA, or with --proba the probabilities q(k|x).")
    pr.add_argument("model", metavar="MODEL_DIR", help="a model directory written by fit")
    data_args(pr)
    pr.add_argument("--proba", action="store_true",
                    help="write q(k|x) for every component instead of the cluster")
    pr.add_argument("--exact", action="store_true",
                    help="with --proba: the exact posterior p(k|x) instead of q(k|x)")
    pr.add_argument("--out", "-o", metavar="FILE",
                    help="output file (.csv, .npy, .npz); default CSV on stdout")
    pr.set_defaults(func=cmd_predict)

    # score
    sc = sub.add_parser(
        "score", formatter_class=fmt, help="exact log-likelihood of each row",
        description="Write the exact log-likelihood log p(x) of each row of DATA (nats, in "
                    "DATA's units) and print the mean on stderr.")
    sc.add_argument("model", metavar="MODEL_DIR", help="a model directory written by fit")
    data_args(sc)
    sc.add_argument("--out", "-o", metavar="FILE",
                    help="output file (.csv, .npy, .npz); default CSV on stdout")
    sc.set_defaults(func=cmd_score)

    # sample
    sa = sub.add_parser(
        "sample", formatter_class=fmt, help="draw points from the model",
        description="Draw N points from the mixture (or from one component) and write them "
                    "with the component that drew each (CSV: a 'component' column; .npz: "
                    "arrays X and component; .npy: X only).")
    sa.add_argument("model", metavar="MODEL_DIR", help="a model directory written by fit")
    sa.add_argument("-n", type=_positive_int, required=True, metavar="N",
                    help="number of points")
    sa.add_argument("--component", type=int, metavar="k",
                    help="draw from component k only (0-based)")
    sa.add_argument("--seed", type=int, metavar="S",
                    help="random seed (default: the model's seed)")
    sa.add_argument("--out", "-o", required=True, metavar="FILE",
                    help="output file (.csv, .npy, .npz)")
    sa.set_defaults(func=cmd_sample)

    # info
    inf = sub.add_parser(
        "info", formatter_class=fmt, help="describe a model",
        description="Print a model's configuration, data dimension, preprocessing, training "
                    "summary and the versions that wrote and read it.")
    inf.add_argument("model", metavar="MODEL_DIR", help="a model directory written by fit")
    inf.add_argument("--json", action="store_true", help="print JSON instead of text")
    inf.set_defaults(func=cmd_info)

    # plot
    pl = sub.add_parser(
        "plot", formatter_class=fmt, help="figure of a model",
        description="For a 2-D model: the posterior's regions (argmax_k q(k|x) on a grid) "
                    "with samples coloured by the component that drew them, over DATA if "
                    "given. Otherwise (or with --kind curves): training curves (loss, ELBO, "
                    "temperature, component usage per epoch).")
    pl.add_argument("model", metavar="MODEL_DIR", help="a model directory written by fit")
    pl.add_argument("data", metavar="DATA", nargs="?",
                    help="optional data file to draw under the samples (2-D models)")
    pl.add_argument("--key", metavar="NAME", help="array to read from a .npz DATA file")
    pl.add_argument("--out", "-o", required=True, metavar="FILE",
                    help="image file (.png, .pdf, .svg)")
    pl.add_argument("--kind", choices=("auto", "regions", "curves"), default="auto",
                    help="regions (2-D models only), curves, or auto (default)")
    pl.add_argument("-n", type=_positive_int, default=1000, metavar="N",
                    help="samples to draw for the regions figure (default 1000)")
    pl.add_argument("--seed", type=int, metavar="S",
                    help="random seed of the samples (default: the model's seed)")
    pl.set_defaults(func=cmd_plot)
    return p


def _default_text(name):
    from vmonf_jax.estimator import VMoNF

    v = VMoNF().get_params()[name]
    if isinstance(v, tuple | list):
        return ",".join(map(str, v))
    return "none" if v is None else str(v)


def _version():
    from vmonf_jax import __version__

    return __version__


# -- model directories --------------------------------------------------------------------
def _partial_dir(model_dir):
    return os.path.normpath(os.path.abspath(model_dir)) + PARTIAL_SUFFIX


def _load_model(model_dir):
    """``VMoNF.load`` with every failure turned into a UsageError that says what to do."""
    from vmonf_jax.estimator import MANIFEST, VMoNF

    partial = _partial_dir(model_dir)
    if not os.path.exists(model_dir):
        if os.path.isdir(partial):
            raise UsageError(f"{model_dir}: training has not finished (an interrupted fit is in "
                             f"{partial}); continue it with `vmonf fit DATA --out {model_dir} "
                             "--resume`")
        raise UsageError(f"{model_dir}: no such model directory")
    if not os.path.isdir(model_dir):
        raise UsageError(f"{model_dir}: not a directory (expected a model directory)")
    if os.path.isfile(os.path.join(model_dir, FIT_RECORD)):
        raise UsageError(f"{model_dir}: an interrupted fit, not a finished model; continue it "
                         "with `vmonf fit DATA --out MODEL_DIR --resume`")
    try:
        model = VMoNF.load(model_dir)
    except (ValueError, KeyError, TypeError, FileNotFoundError, OSError) as err:
        if not os.path.isfile(os.path.join(model_dir, MANIFEST)):
            raise UsageError(f"{model_dir}: not a VMoNF model directory (no {MANIFEST})") from None
        raise UsageError(f"{model_dir}: damaged model directory: {_describe(err)}") from None
    with open(os.path.join(model_dir, MANIFEST)) as f:
        model.manifest_ = json.load(f)
    model.verbose = False
    return model


def _describe(err):
    text = str(err).strip().splitlines()
    first = text[0] if text else type(err).__name__
    return f"{type(err).__name__}: {first}" if isinstance(err, KeyError | TypeError) else first


def _read_model_data(model, path, key):
    table = io.read_data(path, key=key)
    d = model.n_features_in_
    if table.X.shape[1] != d:
        raise UsageError(f"{path}: has {table.X.shape[1]} columns but the model was fitted on "
                         f"{d}")
    return table.X.astype(np.float32)


# -- commands -----------------------------------------------------------------------------
def cmd_fit(args):
    """Fit, with checkpoints in MODEL_DIR.partial/; MODEL_DIR appears only when done."""
    from vmonf_jax.estimator import VMoNF
    from vmonf_jax.validation import check_data, check_labels

    model_dir = os.path.normpath(args.out)
    partial = _partial_dir(model_dir)
    record_path = os.path.join(partial, FIT_RECORD)
    ckpt_dir = os.path.join(partial, CHECKPOINT)
    have_partial = os.path.exists(partial)
    if args.labels_key and not args.labels:
        raise UsageError("--labels-key needs --labels")

    # 1. where we stand
    if args.resume:
        if not os.path.isfile(record_path):
            if os.path.exists(model_dir):
                raise UsageError(f"{model_dir}: training already finished; nothing to resume "
                                 "(use --overwrite to fit again)")
            raise UsageError(f"{model_dir}: nothing to resume (no interrupted fit in "
                             f"{partial})")
        try:
            with open(record_path) as fh:
                record = json.load(fh)
            stored = record["estimator"]
        except (OSError, ValueError, KeyError) as err:
            raise UsageError(f"{record_path}: damaged fit record ({err}); start again with "
                             "--overwrite") from None
    elif not args.overwrite:
        if os.path.exists(model_dir):
            raise UsageError(f"{model_dir} already exists; pass --overwrite to replace it")
        if have_partial:
            raise UsageError(f"{model_dir}: an interrupted fit exists in {partial}; pass "
                             "--resume to continue it or --overwrite to start again")

    # 2. data and settings, all checked before anything is written
    table = io.read_data(args.data, key=args.key, label_column=args.label_column)
    X = table.X.astype(np.float32)
    labels = table.labels
    label_src = f"{args.data} column {args.label_column!r}" if args.label_column else None
    if args.labels:
        labels = io.read_labels(args.labels, key=args.labels_key)
        label_src = args.labels
    explicit = {FIT_OPTIONS[k]: getattr(args, k) for k in FIT_OPTIONS
                if getattr(args, k) is not None}
    if args.resume:
        changed = {k: v for k, v in explicit.items() if _jsonable(v) != stored.get(k)}
        if changed:
            raise UsageError("--resume continues with the interrupted fit's settings; these "
                             "differ: " + ", ".join(f"{k}={_jsonable(v)!r} (was "
                                                    f"{stored.get(k)!r})"
                                                    for k, v in changed.items()))
        params = dict(stored)
    else:
        params = {**VMoNF().get_params(), **explicit}
    params["verbose"] = not args.quiet
    for k in ("hidden", "posterior_hidden"):
        params[k] = tuple(params[k])
    k_comp = int(params["n_components"])
    try:
        X = check_data(X, min_rows=k_comp, name=args.data)
    except ValueError as err:
        raise io.DataError(str(err)) from None
    if labels is not None:
        try:
            labels = check_labels(labels, X.shape[0], k_comp)
        except ValueError as err:
            raise io.DataError(f"{label_src}: {err}") from None
    try:
        est = VMoNF(**params)
        est._config(X.shape[1])  # flow, sizes and recipe validated before any file is written
    except (TypeError, ValueError) as err:
        raise UsageError(f"invalid settings: {err}") from None
    data_id = io.fingerprint(X, labels)
    if args.resume and record.get("data") != data_id:
        raise UsageError(f"{args.data}: not the data the interrupted fit started on (rows, "
                         "values or labels differ); resume needs the same DATA")

    # 3. train
    created = False
    if not args.resume:
        if have_partial:
            shutil.rmtree(partial)
        os.makedirs(partial)
        created = True
        rec = {"estimator": {k: _jsonable(v) for k, v in params.items() if k != "verbose"},
               "data": data_id, "data_path": os.path.abspath(args.data),
               "labels": label_src, "model_dir": os.path.abspath(model_dir)}
        with io.atomic_file(record_path, "w") as fh:
            json.dump(rec, fh, indent=1)
    say = (lambda *a: None) if args.quiet else (lambda m: print(m, file=sys.stderr))
    from vmonf_jax import checkpoint as ckpt
    from vmonf_jax.train import NonFiniteLossError

    t0 = time.perf_counter()
    try:
        with _interrupts_raise():
            est.fit(X, None if labels is None else labels, checkpoint_dir=ckpt_dir,
                    resume=args.resume and ckpt.exists(ckpt_dir))
            est.save(model_dir)
    except KeyboardInterrupt:
        if ckpt.exists(ckpt_dir):
            where = _checkpoint_progress(ckpt_dir)
            print(f"vmonf fit: interrupted; checkpoint saved in {partial}{where}. Continue "
                  f"with: vmonf fit {args.data} --out {model_dir} --resume", file=sys.stderr)
        else:
            if created:
                shutil.rmtree(partial, ignore_errors=True)
            print("vmonf fit: interrupted before the first checkpoint; nothing saved",
                  file=sys.stderr)
        return EXIT_INTERRUPTED
    except NonFiniteLossError as err:
        if created:
            shutil.rmtree(partial, ignore_errors=True)
        print(f"vmonf fit: error: training diverged: {err}", file=sys.stderr)
        return EXIT_FAILED
    except BaseException:
        if created and not ckpt.exists(ckpt_dir):
            shutil.rmtree(partial, ignore_errors=True)
        raise
    shutil.rmtree(partial, ignore_errors=True)
    say(f"vmonf fit: saved {model_dir} ({k_comp} components, {X.shape[1]} columns, "
        f"{len(est.history_)} epochs in {time.perf_counter() - t0:.1f} s); its "
        f"log-likelihood on DATA: vmonf score {model_dir} {args.data}")
    return EXIT_OK


def _checkpoint_progress(ckpt_dir):
    for name in ("state", "state.old"):
        try:
            with open(os.path.join(ckpt_dir, name, "meta.json")) as f:
                meta = json.load(f)
            return f" (restart {meta['restart'] + 1}, epoch {meta['epoch']})"
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return ""


@contextlib.contextmanager
def _interrupts_raise():
    """SIGINT and SIGTERM raise KeyboardInterrupt once; later signals only ask for patience,
    so the checkpoint written on the way out cannot itself be interrupted. A signal that the
    parent set to be ignored (a background job of a script) stays ignored, as Python does."""

    def again(signum, frame):
        print("vmonf: saving the checkpoint, please wait", file=sys.stderr)

    def first(signum, frame):
        for s in old:
            if signal.getsignal(s) is first:
                signal.signal(s, again)
        raise KeyboardInterrupt

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s, h in old.items():
        if h is not signal.SIG_IGN:
            signal.signal(s, first)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _jsonable(v):
    if isinstance(v, tuple | list):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def cmd_predict(args):
    if args.exact and not args.proba:
        raise UsageError("--exact applies with --proba")
    if args.out:
        io.check_output(args.out)
    model = _load_model(args.model)
    X = _read_model_data(model, args.data, args.key)
    if args.proba:
        p = np.asarray(model.predict_proba(X, exact=args.exact), np.float32)
        io.write_columns(args.out, {("p*" if args.exact else "q*"): p})
    else:
        io.write_columns(args.out, {"cluster": np.asarray(model.predict(X), np.int64)})
    return EXIT_OK


def cmd_score(args):
    if args.out:
        io.check_output(args.out)
    model = _load_model(args.model)
    X = _read_model_data(model, args.data, args.key)
    ll = np.asarray(model.score_samples(X), np.float64)
    io.write_columns(args.out, {"loglik": ll})
    print(f"mean log-likelihood: {ll.mean():.6g} nats per row ({ll.shape[0]} rows)",
          file=sys.stderr)
    return EXIT_OK


def cmd_sample(args):
    io.check_output(args.out)
    model = _load_model(args.model)
    k = int(model.n_components)
    if args.component is not None and not 0 <= args.component < k:
        raise UsageError(f"--component must be in [0, {k}) for this {k}-component model, got "
                         f"{args.component}")
    X, comp = model.sample(args.n, component=args.component, seed=args.seed)
    io.write_columns(args.out, {"X": np.asarray(X, np.float32),
                                "component": np.asarray(comp, np.int64)}, npy="X")
    return EXIT_OK


def cmd_info(args):
    model = _load_model(args.model)
    info = model_info(model, args.model)
    if args.json:
        print(json.dumps(info, indent=1, default=_jsonable))
        return EXIT_OK
    e, t = info["estimator"], info["training"]
    lines = [
        f"model       {os.path.abspath(args.model)}",
        f"format      {info['format_version']} (written by vmonf-jax "
        f"{info['library_version']})",
        f"data        {info['dim']} columns, preprocess {info['preprocessing']}",
        f"mixture     K={e['n_components']} {e['flow']} components, {e['n_blocks']} blocks, "
        f"hidden {tuple(e['hidden'])}; posterior hidden {tuple(e['posterior_hidden'])}; "
        f"prior {e['prior']}",
        f"parameters  {info['n_parameters']}",
        f"training    {t['epochs_run']} epochs run ({t['by_phase']}); kept restart "
        f"{t['restart'] + 1} of {e['n_init']} (selection score {t['score']:.6g}); "
        f"seed {e['seed']}",
    ]
    if t["final"]:
        f = t["final"]
        usage = ", ".join(f"{u:.3f}" for u in f.get("usage", []))
        lines.append(f"last epoch  loss {f.get('loss', float('nan')):.6g}, ELBO "
                     f"{f.get('elbo', float('nan')):.6g}, log-lik "
                     f"{f.get('loglik', float('nan')):.6g}, T {f.get('T', float('nan')):.3g}, "
                     f"usage [{usage}]")
    if info["classes"] is not None:
        lines.append(f"labels      component c was trained on label classes[c] = "
                     f"{info['classes']}")
    v = info["versions"]
    lines.append(f"versions    vmonf-jax {v['vmonf_jax']}, jax {v['jax']}, numpy "
                 f"{v['numpy']}, python {v['python']}")
    print("\n".join(lines))
    return EXIT_OK


def model_info(model, path) -> dict:
    """The facts ``vmonf info`` prints, as a JSON-ready dict."""
    import jax

    man = model.manifest_
    hist = model.history_ or []
    phases = {}
    for h in hist:
        phases[h.get("phase", "?")] = phases.get(h.get("phase", "?"), 0) + 1
    return {
        "path": os.path.abspath(path),
        "format_version": man.get("format_version"),
        "library_version": man.get("library_version"),
        "estimator": {k: _jsonable(v) for k, v in model.get_params().items()},
        "dim": model.n_features_in_,
        "preprocessing": man.get("preprocessing", {}).get("name"),
        "classes": None if model.classes_ is None else _jsonable(list(model.classes_)),
        "n_parameters": model.n_parameters(),
        "training": {"epochs_run": len(hist),
                     "by_phase": ", ".join(f"{k} {v}" for k, v in phases.items()) or "none",
                     "final": hist[-1] if hist else {},
                     "score": model.fit_score_, "restart": model.best_restart_},
        "versions": {"vmonf_jax": _version(), "jax": jax.__version__,
                     "numpy": np.__version__, "python": platform.python_version()},
    }


def cmd_plot(args):
    from vmonf_jax import cli_plot

    io.check_output(args.out, cli_plot.IMAGE_FORMATS, "image")
    model = _load_model(args.model)
    data = None
    if args.data is not None:
        data = _read_model_data(model, args.data, args.key)
    kind = args.kind
    if kind == "auto":
        kind = "regions" if model.n_features_in_ == 2 else "curves"
    if kind == "regions" and model.n_features_in_ != 2:
        raise UsageError(f"--kind regions needs a 2-D model; this one has "
                         f"{model.n_features_in_} columns (use --kind curves)")
    if kind == "curves" and data is not None:
        print("vmonf plot: note: DATA is not drawn in the training-curves figure",
              file=sys.stderr)
    cli_plot.plot_model(model, args.out, kind=kind, data=data, n_samples=args.n,
                        seed=args.seed)
    return EXIT_OK


# -- entry point --------------------------------------------------------------------------
def main(argv=None) -> int:
    """Run ``vmonf``; returns the exit status (0, 1, 2 or 130)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) and usage errors (2)
        return int(exc.code or 0)
    name = f"vmonf {args.command}"
    try:
        return args.func(args)
    except (ValueError, OSError) as err:  # DataError and UsageError are ValueErrors
        print(f"{name}: error: {_message(err)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _message(err):
    if isinstance(err, BrokenPipeError):
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return "output pipe closed"
    if isinstance(err, OSError) and err.filename:
        return f"{err.filename}: {err.strerror or err}"
    return str(err)


if __name__ == "__main__":
    sys.exit(main())
