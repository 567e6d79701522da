"""``vmonf fit``: fit, save, and survive interrupts.

While ``fit`` runs, its checkpoint and settings live in ``MODEL_DIR.partial/``; MODEL_DIR
itself appears only when training ends (written by ``VMoNF.save``: temporary folder, then
rename), so an interrupted fit is resumable but never mistaken for a finished model.
"""

import contextlib
import os
import signal
import sys
import time

import numpy as np

from vmonf_jax.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, UsageError, runtime
from vmonf_jax.cli import options as opt
from vmonf_jax.cli.commands import partial_dir
from vmonf_jax.files import io, outputs


def cmd_fit(args):
    """Fit, with checkpoints in MODEL_DIR.partial/; MODEL_DIR appears only when done."""
    if args.labels_key and not args.labels:
        raise UsageError("--labels-key needs --labels")
    if args.data == args.labels == io.STDIN:
        raise UsageError("DATA and --labels cannot both be read from stdin (-)")
    # data first: a bad file is reported before JAX is imported
    table = io.read_data(args.data, key=args.key, label_column=args.label_column,
                         columns=args.columns, drop_incomplete=args.drop_incomplete)
    labels, classes = table.labels, table.classes
    label_src = f"{args.data} column {args.label_column!r}" if args.label_column else None
    if args.labels:
        read = io.read_labels(args.labels, key=args.labels_key)
        labels, classes, label_src = _kept_labels(read.labels, table), read.classes, args.labels
    for k in table.unnamed:
        what = ("holds row names (as R's write.csv and pandas' to_csv write them)" if k == 0
                else "is the empty one after a separator that ends each line")
        print(f"vmonf fit: note: {args.data}: column {k + 1} has no header name, so it "
              f"{what} and is left out; --columns chooses columns, by index too",
              file=sys.stderr)
    if table.dropped:
        print(f"vmonf fit: note: left out {table.dropped} of {table.dropped + len(table.X)} "
              f"rows with a missing cell (the first: {table.first_dropped})", file=sys.stderr)
    runtime.import_jax()
    from vmonf_jax.files import atomic
    from vmonf_jax.persist import modeldir

    model_dir = os.path.normpath(args.out)
    partial = partial_dir(model_dir)
    modeldir.check_replaceable(model_dir)  # also says why --overwrite would not help
    atomic.recover(model_dir, modeldir.MANIFEST)  # a save that died between its renames
    lock, created = _lock_partial(model_dir, partial)
    try:
        return _fit_locked(args, table, (labels, classes, label_src), model_dir, partial,
                           created)
    finally:
        if created:  # nothing of ours left in it: remove the folder this command made
            with contextlib.suppress(OSError):
                os.rmdir(partial)
        lock.release()


def _kept_labels(labels, table):
    """A label file's labels of the rows ``table`` kept (``--drop-incomplete``)."""
    if table.kept is None:
        return labels
    if len(labels) != len(table.kept):
        raise io.DataError(f"the label file has {len(labels)} labels for the "
                           f"{len(table.kept)} rows of DATA")
    return labels[table.kept]


def _lock_partial(model_dir, partial):
    """Lock ``MODEL_DIR.partial`` (created if absent) for this fit: ``(lock, created)``.

    A running fit holds this lock until it ends, so a second fit of the same MODEL_DIR (to
    resume, overwrite or start) is refused instead of taking the running fit for an
    interrupted one.
    """
    from vmonf_jax.files import atomic

    if os.path.lexists(partial) and (os.path.islink(partial) or not os.path.isdir(partial)):
        raise UsageError(f"{partial}: not an interrupted vmonf fit (not a folder); refusing "
                         "to touch it")
    created = False
    os.makedirs(os.path.dirname(partial), exist_ok=True)  # MODEL_DIR's parents, as save does
    with contextlib.suppress(FileExistsError):
        os.mkdir(partial)
        created = True
    lock = atomic.DirLock.take(partial, blocking=False)
    if lock is None:
        raise UsageError(f"{model_dir}: another vmonf fit of it is running (it holds "
                         f"{partial}); wait for it to end, or stop it first")
    return lock, created


def _fit_locked(args, table, labelling, model_dir, partial, created):
    """``cmd_fit`` once this process holds the lock on ``partial``.

    ``labelling``: ``(codes, class names or None, where they came from)``.
    """
    from vmonf_jax.estimator import VMoNF
    from vmonf_jax.persist import fitrecord
    from vmonf_jax.validation import check_data, check_labels, check_split

    names = os.listdir(partial)
    if names and fitrecord.FIT_RECORD not in names:  # only temporaries of a failed first save
        _check_partial(fitrecord, partial)
        fitrecord.discard_checkpoint_dir(partial, remove_folder=False)
    have_partial = not created and fitrecord.FIT_RECORD in names
    if have_partial:  # --resume and --overwrite alike touch only an interrupted fit's files
        _check_partial(fitrecord, partial)
    explicit = opt.given(args)
    explicit.pop("verbose", None)  # not a setting of the fit: may differ on --resume
    if args.resume:
        stored = _stored_settings(fitrecord, model_dir, partial)
        changed = {k: v for k, v in explicit.items() if outputs.plain(v) != stored.get(k)}
        if changed:
            raise UsageError("--resume continues with the interrupted fit's settings; these "
                             "differ: " + ", ".join(f"{k}={outputs.plain(v)!r} (was "
                                                    f"{stored.get(k)!r})"
                                                    for k, v in changed.items()))
        params = dict(stored)
    else:
        if not args.overwrite and os.path.lexists(model_dir):
            raise UsageError(f"{model_dir} already exists; pass --overwrite to replace it")
        if have_partial and not args.overwrite:
            raise UsageError(f"{model_dir}: an interrupted fit exists in {partial}; pass "
                             "--resume to continue it or --overwrite to start again")
        params = {**VMoNF().get_params(), **explicit}
    params["verbose"] = getattr(args, "verbose", True)
    for k in ("hidden", "posterior_hidden"):
        params[k] = tuple(params[k])
    k_comp = int(params["n_components"])
    try:
        X = check_data(table.X, min_rows=k_comp, name=args.data, dtype=np.float64)
        check_split(X.shape[0], k_comp, params["val_fraction"], args.data)
    except ValueError as err:
        raise io.DataError(str(err)) from None
    labels, classes, label_src = labelling
    if classes is not None and len(classes) > k_comp:
        raise io.DataError(f"{label_src}: {len(classes)} classes "
                           f"({', '.join(map(repr, classes[:8]))}"
                           f"{', ...' if len(classes) > 8 else ''}) but {k_comp} components")
    if labels is not None:
        try:
            labels = check_labels(labels, X.shape[0], k_comp)
        except ValueError as err:
            raise io.DataError(f"{label_src}: {err}") from None
        if not (labels == -1).any():  # the estimator reads such a y as sklearn's, not as labels
            raise io.DataError(f"{label_src}: every row is labelled; VMoNF learns from "
                               "unlabelled rows too: mark them -1 (or leave them blank)")
        if classes is not None:  # the estimator sorts the names again: classes_ = classes
            labels = np.where(labels >= 0, np.asarray(classes, object)[labels], -1)
    try:
        est = VMoNF(**params)
        est._config(X.shape[1])  # flow, sizes and recipe validated before any file is written
    except (TypeError, ValueError) as err:
        raise UsageError(f"invalid settings: {err}") from None
    return _train(args, est, X, labels, _names(table.columns, X.shape[1]), model_dir,
                  partial, have_partial)


def _names(columns, dim):
    """DATA's header names as the model's columns, or None.

    None without a header, or for names a manifest cannot hold
    (``manifest.check_feature_names``: duplicates, overlong names).
    """
    from vmonf_jax.persist import manifest

    try:
        manifest.check_feature_names(columns, dim)
    except ValueError:
        return None
    return columns


def _stored_settings(fitrecord, model_dir, partial):
    """The settings of the interrupted fit in ``partial``."""
    try:
        return fitrecord.read_fit_record(partial)["estimator"]
    except FileNotFoundError:
        if os.path.exists(model_dir):
            raise UsageError(f"{model_dir}: training already finished; nothing to resume "
                             "(use --overwrite to fit again)") from None
        raise UsageError(f"{model_dir}: nothing to resume (no interrupted fit in "
                         f"{partial})") from None
    except ValueError as err:
        raise UsageError(f"{err}; start again with --overwrite") from None


def _train(args, est, X, labels, names, model_dir, partial, have_partial):
    """Train ``est`` with checkpoints in ``partial``, then save it to ``model_dir``.

    ``names``: DATA's column names (``feature_names`` of ``VMoNF.fit``), or None.
    """
    from vmonf_jax.files import checkpoint as ckpt
    from vmonf_jax.persist import fitrecord
    from vmonf_jax.train import NonFiniteLossError

    if have_partial and not args.resume:  # --overwrite, checked by _check_partial
        fitrecord.discard_checkpoint_dir(partial, remove_folder=False)
    t0 = time.perf_counter()
    try:
        with _interrupts_raise():
            # the estimator records settings + data fingerprint, or checks them on resume
            est.fit(X, labels, checkpoint_dir=partial, resume=args.resume,
                    checkpoint_seconds=args.checkpoint_seconds, feature_names=names)
            est.save(model_dir)
    except KeyboardInterrupt:
        if ckpt.exists(partial):
            print(f"vmonf fit: interrupted; checkpoint saved in {partial}"
                  f"{_checkpoint_progress(partial)}. Continue with: vmonf fit {args.data} "
                  f"--out {model_dir} --resume", file=sys.stderr)
        else:
            print("vmonf fit: interrupted before the first checkpoint; nothing saved",
                  file=sys.stderr)
        return EXIT_INTERRUPTED
    except NonFiniteLossError as err:
        if not args.resume:
            fitrecord.discard_checkpoint_dir(partial, remove_folder=True)
        print(f"vmonf fit: error: training diverged: {err}", file=sys.stderr)
        return EXIT_FAILED
    except BaseException:
        if not args.resume and not ckpt.exists(partial):
            with contextlib.suppress(OSError, ValueError):
                fitrecord.discard_checkpoint_dir(partial, remove_folder=True)
        raise
    fitrecord.discard_checkpoint_dir(partial, remove_folder=True)
    if est.verbose:
        print(f"vmonf fit: saved {model_dir} ({est.n_components_} components, {est.base_} "
              f"bases, {X.shape[1]} columns, {len(est.history_)} epochs in "
              f"{time.perf_counter() - t0:.1f} s); its log-likelihood on DATA: vmonf score "
              f"{model_dir} {args.data}{_same_rows(args, names)}", file=sys.stderr)
    return EXIT_OK


def _same_rows(args, names):
    """The options with which ``vmonf score`` reads DATA's rows as this fit did."""
    chosen = "" if args.columns is None or names is not None else (
        " --columns " + ",".join(args.columns))  # saved names choose the columns themselves
    return chosen + (" --drop-incomplete" if args.drop_incomplete else "")


def _check_partial(fitrecord, partial):
    """Refuse to touch ``partial`` unless it holds only an interrupted fit's files."""
    try:
        fitrecord.check_checkpoint_dir(partial, fresh=False)
    except ValueError as err:
        raise UsageError(f"{partial}: not an interrupted vmonf fit; refusing to delete it "
                         f"({err})") from None


def _checkpoint_progress(partial):
    from vmonf_jax.files.atomic import read_json

    try:
        meta = read_json(os.path.join(partial, "state", "meta.json"))
        return f" (epoch {int(meta['epoch'])})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


@contextlib.contextmanager
def _interrupts_raise():
    """SIGINT and SIGTERM raise KeyboardInterrupt once; later signals only ask for patience.

    So the checkpoint written on the way out cannot itself be interrupted. A signal that the
    parent set to be ignored (a background job of a script) stays ignored, as Python does.
    """

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
