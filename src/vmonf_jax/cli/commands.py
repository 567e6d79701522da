"""``vmonf predict``, ``score``, ``sample``, ``info`` and ``plot``: a saved model at work.

Data are read (and checked) before the model is loaded, so a bad file is reported without
importing JAX. Text outputs go to stdout when ``--out`` is not given.
"""

import json
import os
import sys

import numpy as np

from vmonf_jax.cli import EXIT_OK, UsageError, printable, runtime
from vmonf_jax.files import io, outputs
from vmonf_jax.validation import listed

PARTIAL_SUFFIX = ".partial"


def partial_dir(model_dir):
    """The folder of ``model_dir``'s unfinished fit: ``MODEL_DIR.partial``."""
    return os.path.normpath(os.path.abspath(model_dir)) + PARTIAL_SUFFIX


def load_model(model_dir):
    """``(model, manifest)`` by ``VMoNF.load_with_manifest``; failures become UsageErrors."""
    runtime.import_jax()
    from vmonf_jax.estimator import VMoNF

    model, manifest = _load(model_dir, VMoNF.load_with_manifest)
    model.verbose = False
    return model, manifest


def load_fitted(model_dir):
    """``(model, manifest)`` by ``FittedModel.load`` (predict and score: no scikit-learn).

    Failures as ``load_model``'s.
    """
    runtime.import_jax()
    from vmonf_jax.inference import FittedModel

    return _load(model_dir, FittedModel.load)


def _load(model_dir, loader):
    """``loader(model_dir)``, refusing an unfinished fit first; ValueErrors become UsageErrors."""
    from vmonf_jax.files import atomic
    from vmonf_jax.persist import fitrecord, modeldir

    partial = partial_dir(model_dir)
    if not os.path.lexists(model_dir):
        atomic.recover(model_dir, modeldir.MANIFEST)  # a save that died between its renames
    if not os.path.lexists(model_dir) and os.path.isdir(partial):
        if atomic.held_elsewhere(partial):
            raise UsageError(f"{model_dir}: a vmonf fit of it is still running (in "
                             f"{partial}); wait for it to end")
        raise UsageError(f"{model_dir}: training has not finished (an interrupted fit is in "
                         f"{partial}); continue it with `vmonf fit DATA --out {model_dir} "
                         "--resume`")
    if os.path.isfile(os.path.join(model_dir, fitrecord.FIT_RECORD)):
        raise UsageError(f"{model_dir}: an interrupted fit, not a finished model; continue it "
                         "with `vmonf fit DATA --out MODEL_DIR --resume`")
    try:
        return loader(model_dir)
    except ValueError as err:  # names the file and field; OSErrors are reported by main
        swapped = os.path.isfile(model_dir) and model_dir.lower().endswith(io.INPUT_FORMATS)
        hint = "; it is a data file: MODEL_DIR comes first, then DATA" if swapped else ""
        raise UsageError(f"{err}{hint}") from None


def read_data(args, names=None):
    """``args.data`` as an ``io.Table`` (``-``: CSV on stdin), or None without DATA.

    ``names``: the model's columns, taken by name from a CSV with a header unless
    ``--columns`` chooses (``io.read_data``); ``--drop-incomplete`` leaves out rows with a
    missing cell (``Table.kept``).
    """
    if args.data is None:
        return None
    return io.read_data(args.data, key=args.key, columns=args.columns, names=names,
                        drop_incomplete=args.drop_incomplete)


def _in_place(values, kept, fill):
    """Per-row ``values`` of the kept rows, spread back over every row of DATA.

    Rows left out (``--drop-incomplete``) get ``fill``, so outputs stay aligned with DATA.
    """
    values = np.asarray(values)
    if kept is None:
        return values
    out = np.full((len(kept), *values.shape[1:]), fill, values.dtype)
    out[kept] = values
    return out


def fitted_names(model_dir):
    """The column names ``model_dir``'s manifest records, read ahead of loading the model.

    So DATA is read (and a bad file reported) before JAX is imported. None when there are
    none or the manifest cannot be read here: loading the model then checks it whole.
    """
    from vmonf_jax.files.atomic import read_json

    try:  # the manifest's name is modeldir.MANIFEST (that module imports JAX)
        names = read_json(os.path.join(model_dir, "manifest.json")).get("feature_names")
    except (OSError, ValueError, AttributeError):
        return None
    ok = isinstance(names, list) and names and all(isinstance(c, str) for c in names)
    return names if ok else None


def _model_and_data(args, load):
    """``((model, manifest), DATA's rows or None, which rows they are or None)``, checked.

    ``load``: ``load_model`` or ``load_fitted``. The rows are those ``--drop-incomplete``
    kept (``io.Table.kept``; None: every row).
    """
    table = read_data(args, fitted_names(args.model))
    loaded = load(args.model)
    if table is None:
        return loaded, None, None
    d = loaded[0].n_features_in_
    if table.X.shape[1] != d:
        raise UsageError(f"{args.data}: has {table.X.shape[1]} columns but the model was "
                         f"fitted on {d}")
    return loaded, table.X, table.kept


def _check_out(args, *allowed):
    """``outputs.check_output`` of ``args.out``: never an input; an existing file if --overwrite."""
    if args.out is not None:
        outputs.check_output(args.out, *allowed, overwrite=args.overwrite,
                        inputs=(args.model, getattr(args, "data", None)))


def cmd_predict(args):
    """``vmonf predict``: the cluster of each row, or p(k|x) / q(k|x) with --proba."""
    _check_out(args)
    (model, manifest), X, kept = _model_and_data(args, load_fitted)
    if args.proba:
        p = np.asarray(model.predict_proba(X, posterior=args.posterior), np.float32)
        outputs.write_columns(args.out, {("p*" if args.posterior == "exact" else "q*"):
                                         _in_place(p, kept, np.nan)})
    else:
        k = _in_place(np.asarray(model.predict(X, posterior=args.posterior), np.int64), kept, -1)
        outputs.write_columns(args.out, {"cluster": k, **_class_column(k, manifest)})
    return EXIT_OK


def _class_column(k, manifest) -> dict:
    """``{"class": name of each cluster}`` for a model trained with class labels, else {}.

    Cluster c < C is the c-th class (``classes_``); other clusters and rows without one
    (-1) get an empty name.
    """
    classes = manifest.get("classes")
    if not classes:
        return {}
    names = np.array([*map(str, classes), ""])
    return {"class": names[np.where((k >= 0) & (k < len(classes)), k, len(classes))]}


def cmd_score(args):
    """``vmonf score``: exact log-likelihood per row; the mean on stderr."""
    _check_out(args)
    (model, _), X, kept = _model_and_data(args, load_fitted)
    ll = np.asarray(model.score_samples(X), np.float64)
    outputs.write_columns(args.out, {"loglik": _in_place(ll, kept, np.nan)})
    left = "" if kept is None else f"; {int((~kept).sum())} incomplete rows left out"
    print(f"mean log-likelihood: {ll.mean():.6g} nats per row ({ll.shape[0]} rows{left})",
          file=sys.stderr)
    return EXIT_OK


def cmd_sample(args):
    """``vmonf sample``: N points and the component that drew each."""
    _check_out(args)
    model, _ = load_model(args.model)
    k = int(model.n_components_)
    if args.component is not None and not 0 <= args.component < k:
        raise UsageError(f"--component must be in [0, {k}) for this {k}-component model, got "
                         f"{args.component}")
    X, comp = model.sample(args.n, component=args.component, seed=args.seed)
    outputs.write_columns(args.out, {"X": np.asarray(X, np.float32),
                                "component": np.asarray(comp, np.int64)}, npy="X")
    return EXIT_OK


def cmd_info(args):
    """``vmonf info``: the model's settings, training summary, versions and device."""
    model, manifest = load_model(args.model)
    info = model_info(model, manifest, args.model)
    if args.json:
        print(json.dumps(info, indent=1, default=outputs.json_default))
        return EXIT_OK
    e, t, v = info["estimator"], info["training"], info["versions"]
    lines = [
        f"model       {info['path']}",
        f"format      {info['format_version']} (written by vmonf-jax "
        f"{info['library_version']})",
        f"data        {info['dim']} columns{_columns(info['columns'])}, preprocess "
        f"{info['preprocessing']}{_dequantized(info['dequantized'])}",
        f"mixture     K={t['n_components']}{_bound(e)} {e['flow']} components, "
        f"{e['n_blocks']} blocks, "
        f"hidden {tuple(e['hidden'])}{_spline(e)}, {t['base']} base; posterior hidden "
        f"{tuple(e['posterior_hidden'])}; prior {e['prior']}",
        f"parameters  {info['n_parameters']}",
        f"training    {t['epochs_run']} epochs run ({t['by_phase']}); kept restart "
        f"{t['restart'] + 1} of {e['n_init']} (selection score {_num(t['score'])}); "
        f"seed {e['seed']}",
    ]
    if t["final"]:
        f = t["final"]
        usage = ", ".join(f"{u:.3f}" for u in f.get("usage", []))
        lines.append(f"last epoch  loss {_num(f.get('loss'))}, ELBO {_num(f.get('elbo'))}, "
                     f"log-lik {_num(f.get('loglik'))}, T {_num(f.get('T'), '.3g')}, "
                     f"usage [{usage}]")
    if t["dead_components"]:
        lines.append("dead        components " + ", ".join(
            f"{k} (usage {t['usage'][k]:.2g})" for k in t["dead_components"])
            + " have usage below 1/(10K)")
    if info["classes"] is not None:
        lines.append(f"labels      component c was trained on label classes[c] = "
                     f"{info['classes']}")
    lines.append(f"versions    vmonf-jax {v['vmonf_jax']}, jax {v['jax']}, jaxlib "
                 f"{v['jaxlib']}, numpy {v['numpy']}, python {v['python']}")
    lines.append(f"device      {v['device']}")
    print("\n".join(printable(line) for line in lines))
    return EXIT_OK


def _bound(e):
    return f" kept of at most {e['n_components']}" if e["prior"] == "sparse" else ""


def _spline(e):
    from vmonf_jax.model import registry

    if "spline_bins" not in registry.flow_options(e["flow"]):
        return ""
    return f", {e['spline_bins']} bins on [-{e['spline_bound']:g}, {e['spline_bound']:g}]"


def _num(v, spec=".6g"):
    return "?" if v is None else format(v, spec)


def _columns(names, shown=8) -> str:
    """``info``'s list of the model's column names (empty: none recorded)."""
    if not names:
        return ""
    more = f", ... ({len(names)} in all)" if len(names) > shown else ""
    return f" ({', '.join(names[:shown])}{more})"


def _dequantized(steps: dict) -> str:
    """``info``'s note of the dequantised columns and their cell widths (empty: none)."""
    if not steps:
        return ""
    return f"; dequantised columns (step) {listed(f'{j} ({h:g})' for j, h in steps.items())}"


def model_info(model, man, path) -> dict:
    """The facts ``vmonf info`` prints, as a JSON-ready dict (``man``: the manifest)."""
    hist = model.history_ or []
    phases = {}
    for h in hist:
        phases[h.get("phase", "?")] = phases.get(h.get("phase", "?"), 0) + 1
    return {
        "path": os.path.abspath(path),
        "format_version": man.get("format_version"),
        "library_version": man.get("library_version"),
        "estimator": outputs.plain(model.get_params()),
        "dim": model.n_features_in_,
        "columns": (model.feature_names_in_.tolist()
                    if hasattr(model, "feature_names_in_") else None),
        "preprocessing": man["preprocessing"]["name"],
        "dequantized": {str(int(j)): float(h) for j, h in zip(
            getattr(model.preprocessor_, "dequantized", ()),
            getattr(model.preprocessor_, "steps", ()), strict=True)},
        "classes": None if model.classes_ is None else outputs.plain(model.classes_),
        "n_parameters": model.n_parameters(),
        "training": {"epochs_run": len(hist),
                     "by_phase": ", ".join(f"{k} {v}" for k, v in phases.items()) or "none",
                     "final": hist[-1] if hist else {},
                     "score": model.fit_score_, "restart": model.best_restart_,
                     "n_components": model.n_components_, "base": model.base_,
                     "usage": None if model.usage_ is None else model.usage_.tolist(),
                     "dead_components": man["training"].get("dead_components", [])},
        "versions": runtime.versions(),
    }


def cmd_plot(args):
    """``vmonf plot``: posterior regions (2-D models) or training curves."""
    from vmonf_jax.cli import plot as cli_plot

    _check_out(args, cli_plot.IMAGE_FORMATS, "image")
    (model, _), data, _ = _model_and_data(args, load_model)
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
