"""Does more or less flow capacity, or weight decay, let training beat the Gaussian start?

Issue 21 item 3 asks for capacity and regularisation (``hidden``, ``n_blocks``,
``weight_decay``) chosen from the rows and columns by a measured rule. With the defaults,
early stopping keeps the Gaussian-mixture start on every split of the real data sets
(docs/results.md, "Real data"): training never beats it by two standard errors on the
validation rows. This study fits ``VMoNF(n_components=C, seed=split, verbose=False,
**setting)`` for each named setting on the splits of ``studies/realdata.py`` and records,
beside the held-out log-likelihood per row and matched accuracy
(``harness.baselines.heldout_metrics``):

* ``kept_start``: whether the fit warned that the start was kept;
* ``fit_score``: the kept parameters' mean validation log-likelihood per row (the start's
  where it was kept; in the standardised units training sees);
* ``best_epoch_val``: the best main epoch's validation log-likelihood (``history_``), so
  ``best_epoch_val - fit_score`` where the start was kept says how close training came
  (negative: no epoch reached the start; positive: it did, by less than the noise).

Usage: python studies/capacity.py [--datasets iris,wine,crabs,penguins] [--splits 0,1]
    [--settings '{"defaults": {}, "h32": {"hidden": [32]}}'] [--out results/realdata/capacity.json]
       python studies/capacity.py --table results/realdata/capacity.json
Writes the JSON after every fit (a rerun with the same --out skips fits it holds).
"""

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
sys.path.insert(0, str(ROOT / "studies"))
from realdata import _guarded, _loadavg, vmonf_method  # noqa: E402
from realdata_sets import load, split  # noqa: E402

from harness.jsonio import read_json, write_json  # noqa: E402

SETTINGS = {
    "defaults": {},
    "hidden32": {"hidden": [32]},
    "blocks2": {"n_blocks": 2},
    "wd1e-3": {"weight_decay": 1e-3},
    "hidden32_wd1e-3": {"hidden": [32], "weight_decay": 1e-3},
}
KEPT = "the start is kept"


def fit_one(X, y, k, seed, params):
    """One VMoNF fit on split ``seed`` with ``params``: held-out metrics and diagnostics."""
    X_train, X_test, _, y_test = split(X, y, seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = _guarded(vmonf_method, X_train, X_test, y_test, k, seed, params)
    if not isinstance(res, tuple):
        return res
    out, model = res
    val = [e["val_loglik"] for e in model.history_ if "val_loglik" in e]
    out.update(kept_start=any(KEPT in str(w.message) for w in caught),
               best_epoch_val=max(val) if val else None, epochs_run=len(val),
               budget=list(model.budget_) if getattr(model, "budget_", None) else None)
    return out


def table(results):
    """Markdown: per data set and setting, held-out log-lik and accuracy (median over splits),
    the change from ``defaults``, the splits whose start was kept, and how close the best
    epoch came to the kept score (median of ``best_epoch_val - fit_score``)."""
    lines = ["| data set | setting | held-out loglik | vs defaults | acc | start kept | "
             "best epoch - kept (val) | fit s |", "|---|---|---|---|---|---|---|---|"]
    for name, by_setting in results["fits"].items():
        base = _median(by_setting.get("defaults", {}), "loglik")
        for setting, splits in by_setting.items():
            ok = [s for s in splits.values() if "error" not in s]
            ll = _median(splits, "loglik")
            gaps = [s["best_epoch_val"] - s["fit_score"] for s in ok
                    if s.get("best_epoch_val") is not None and s.get("fit_score") is not None]
            delta = "-" if ll is None or base is None else f"{ll - base:+.3f}"
            acc, gap = _median(splits, "acc"), np.median(gaps) if gaps else None
            lines.append(
                f"| {name} | {setting} | {_fmt(ll)} | {delta} | {_fmt(acc)} | "
                f"{sum(s['kept_start'] for s in ok)}/{len(splits)} | {_fmt(gap)} | "
                f"{_fmt(_median(splits, 'wall_s'), '.0f')} |")
    return "\n".join(lines)


def _median(splits, key):
    vals = [s[key] for s in splits.values() if s.get(key) is not None]
    return float(np.median(vals)) if vals else None


def _fmt(v, spec=".3f"):
    return "n/a" if v is None else f"{v:{spec}}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="iris,wine,crabs,penguins")
    ap.add_argument("--splits", default="0,1")
    ap.add_argument("--settings", default=json.dumps(SETTINGS),
                    help="JSON {name: VMoNF parameters}")
    ap.add_argument("--out", default="results/realdata/capacity.json")
    ap.add_argument("--table", metavar="JSON", help="only print the table of a results file")
    args = ap.parse_args(argv)
    if args.table:
        print(table(read_json(args.table)))
        return
    settings = json.loads(args.settings)
    results = read_json(args.out) if os.path.exists(args.out) else {}
    results.setdefault("settings", {}).update(settings)
    fits = results.setdefault("fits", {})
    for name in args.datasets.split(","):
        X, y, k = load(name)
        for setting, params in settings.items():
            done = fits.setdefault(name, {}).setdefault(setting, {})
            for seed in (int(s) for s in args.splits.split(",")):
                if str(seed) in done:
                    continue
                res = fit_one(X, y, k, seed, params)
                res.update(loadavg=_loadavg(),
                           finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
                done[str(seed)] = res
                print(json.dumps({"data": name, "setting": setting, "split": seed,
                                  **{k_: res.get(k_) for k_ in (
                                      "loglik", "acc", "kept_start", "fit_score",
                                      "best_epoch_val", "wall_s", "error")}}), flush=True)
                os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
                write_json(args.out, results)
    print(table(results))


if __name__ == "__main__":
    main()
