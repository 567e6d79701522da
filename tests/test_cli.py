"""The ``vmonf`` command line, run as subprocesses: round trip, every bad input, interrupt+resume.

Budget (2 cores): a fresh process costs seconds of imports (JAX, Flax, Orbax, scikit-learn), so
one tiny model is fitted once per module and shared, independent commands run two at a time,
and the bad-input table runs through ``cli.main`` in a single subprocess (each case with its own
captured stderr and exit status), plus a few cases as separate ``python -m vmonf_jax.cli``
processes to check the exit status at the process level. A persistent JAX compilation cache,
shared by every process, keeps the fits from recompiling the same functions.
"""

import concurrent.futures
import csv
import gzip
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

N_ROWS = 600
# Tiny and fast, but long enough (2 warm + 90 main epochs of 38 steps) that an interrupt can
# land after the first periodic checkpoint (every 25 epochs) and before the end.
FIT = ["-k", "2", "--blocks", "2", "--hidden", "4", "--posterior-hidden", "4",
       "--warm-epochs", "2", "--epochs", "90", "--batch-size", "16", "--n-init", "1",
       "--seed", "3", "--no-early-stopping"]
FIT_PLAN = range(92)  # epochs of the whole plan (warm + main)


def _env(cache):
    env = dict(os.environ)
    env.update(JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=str(cache),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
               JAX_DISABLE_MOST_OPTIMIZATIONS="1", PYTHONUNBUFFERED="1")
    return env


def _cmd(args):
    return [sys.executable, "-m", "vmonf_jax.cli", *map(str, args)]


# Runs many command lines through vmonf_jax.cli.main in one process: [argv, stdin text] pairs
# on stdin, a JSON list of {"rc", "stdout", "stderr"} on stdout. Anything escaping main shows up
# as a traceback.
_DRIVER = """
import contextlib, io, json, sys, traceback
from vmonf_jax.cli import main
results = []
for argv, stdin in json.load(sys.stdin):
    err, out = io.StringIO(), io.StringIO()
    sys.stdin = io.TextIOWrapper(io.BytesIO((stdin or "").encode()))
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            rc = main(argv)
        except BaseException:
            traceback.print_exc()
            rc = None
    results.append({"rc": rc, "stdout": out.getvalue(), "stderr": err.getvalue()})
json.dump(results, sys.stdout)
"""


def _run_many(work, argvs, stdins=None):
    cases = [[[str(a) for a in argv], None if stdins is None else stdins[i]]
             for i, argv in enumerate(argvs)]
    r = subprocess.run([sys.executable, "-c", _DRIVER], cwd=work["dir"], env=work["env"],
                       input=json.dumps(cases), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _parallel(fn, items, workers=2):
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A folder with a toy 2-D data set in several formats and an environment to run in."""
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    half = N_ROWS // 2
    X = np.concatenate([rng.normal([-2.0, 0.0], 0.5, (half, 2)),
                        rng.normal([2.0, 0.5], [0.5, 1.0], (half, 2))])
    y = np.repeat([0, 1], half)
    order = rng.permutation(N_ROWS)
    X, y = X[order], y[order]
    np.savetxt(d / "toy.csv", X, delimiter=",", header="x,y", comments="", fmt="%.6f")
    np.save(d / "toy.npy", X)
    np.savez(d / "two.npz", a=X, b=X[:, :1])
    np.savez(d / "one.npz", pts=X)
    env = _env(d / "jax-cache")

    def run(*args, timeout=300):
        return subprocess.run(_cmd(args), cwd=d, env=env, capture_output=True, text=True,
                              timeout=timeout)

    return {"dir": d, "X": X, "y": y, "env": env, "run": run}


@pytest.fixture(scope="module")
def model(work):
    """The shared model (also the uninterrupted reference for the resume test)."""
    r = work["run"]("fit", "toy.csv", *FIT, "--out", "model", "--quiet")
    assert r.returncode == 0, r.stderr
    return work["dir"] / "model"


def _files(d):
    return sorted(p.name for p in d.iterdir())


# -- round trip ---------------------------------------------------------------------------
def _gzip_copies(work):
    """``toy.csv.gz`` and ``toy.npy.gz`` beside toy.csv; returns toy.csv's text."""
    d = work["dir"]
    text = (d / "toy.csv").read_text()
    (d / "toy.csv.gz").write_bytes(gzip.compress(text.encode()))
    buf = io.BytesIO()
    np.save(buf, np.loadtxt(d / "toy.csv", delimiter=",", skiprows=1))  # the CSV's values
    (d / "toy.npy.gz").write_bytes(gzip.compress(buf.getvalue()))
    return text


def test_round_trip(work, model):
    """Every command on the shared model, also with DATA on stdin (-), gzip files and stdout.

    Two driver processes (each imports JAX once) run the commands, two at a time.
    """
    d = work["dir"]
    assert not (d / "model.partial").exists()
    text = _gzip_copies(work)
    commands = {
        "predict": ("predict", "model", "toy.csv"),
        "proba": ("predict", "model", "one.npz", "--proba", "--out", "proba.npy"),
        "q": ("predict", "model", "toy.csv", "--posterior", "q", "--proba"),
        "score": ("score", "model", "toy.npy", "--out", "ll.csv"),
        "sample": ("sample", "model", "-n", "50", "--seed", "1", "--out", "s.npz"),
        "sample 1": ("sample", "model", "-n", "20", "--component", "1", "--out", "s1.csv"),
        "info": ("info", "model"),
        "regions": ("plot", "model", "toy.csv", "--out", "regions.png", "-n", "200"),
        "curves": ("plot", "model", "--kind", "curves", "--out", "curves.png"),
        "stdin": ("predict", "model", "-"),
        "npy.gz": ("predict", "model", "toy.npy.gz"),
        "csv.gz": ("score", "model", "toy.csv.gz"),
        "stdout": ("sample", "model", "-n", "7", "--seed", "2"),
    }
    names = list(commands)
    halves = [names[: len(names) // 2], names[len(names) // 2 :]]
    runs = _parallel(lambda part: _run_many(work, [commands[n] for n in part],
                                            [text if n == "stdin" else None for n in part]),
                     halves)
    out = dict(zip(halves[0] + halves[1], runs[0] + runs[1]))
    for name, r in out.items():
        assert r["rc"] == 0 and "Traceback" not in r["stderr"], (name, r["stderr"])

    lines = out["predict"]["stdout"].splitlines()
    assert lines[0] == "cluster" and len(lines) == N_ROWS + 1
    pred = np.array(lines[1:], int)
    agree = max(np.mean(pred == work["y"]), np.mean(pred != work["y"]))
    assert agree > 0.9  # two well separated blobs: the clusters are the blobs

    proba = np.load(d / "proba.npy")
    assert proba.shape == (N_ROWS, 2)
    np.testing.assert_allclose(proba.sum(1), 1, atol=1e-5)
    np.testing.assert_array_equal(proba.argmax(1), pred)  # both the exact posterior
    q = out["q"]["stdout"].splitlines()
    assert q[0] == "q0,q1" and len(q) == N_ROWS + 1
    np.testing.assert_allclose(np.array([r.split(",") for r in q[1:]], float).sum(1), 1,
                               atol=1e-5)

    ll = np.loadtxt(d / "ll.csv", delimiter=",", skiprows=1)
    assert ll.shape == (N_ROWS,) and np.all(np.isfinite(ll))
    err = out["score"]["stderr"]
    assert f"{ll.mean():.6g}" in err and "mean log-likelihood" in err

    with np.load(d / "s.npz") as s:
        assert s["X"].shape == (50, 2) and set(np.unique(s["component"])) <= {0, 1}
    s1 = np.loadtxt(d / "s1.csv", delimiter=",", skiprows=1)
    assert s1.shape == (20, 3) and np.all(s1[:, 2] == 1)
    assert (d / "s1.csv").read_text().splitlines()[0] == "x0,x1,component"

    for word in ("K=2 realnvp", "2 blocks", "2 columns", "92 epochs", "warm 2, main 90",
                 "jaxlib ", "device      cpu"):
        assert word in out["info"]["stdout"], out["info"]["stdout"]
    for name in ("regions.png", "curves.png"):
        assert (d / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out["stdin"]["stdout"] == out["npy.gz"]["stdout"] == out["predict"]["stdout"]
    score = out["csv.gz"]["stdout"].splitlines()
    assert score[0] == "loglik" and len(score) == N_ROWS + 1
    np.testing.assert_allclose(np.array(score[1:], float), ll, atol=1e-4)  # CSV: 6 decimals
    sample = out["stdout"]["stdout"].splitlines()
    assert sample[0] == "x0,x1,component" and len(sample) == 8
    leftovers = [p for p in _files(d) if p.startswith(".") or p.endswith(".tmp")]
    assert leftovers == []


def test_the_compilation_cache(work, model, tmp_path):
    """The per-user cache is private, switched off by VMONF_NO_CACHE, and a new number of rows
    reuses what it holds (rows are padded to a few bucket sizes); predict imports no sklearn."""
    from vmonf_jax.chunked import bucket

    d = work["dir"]
    text = (d / "toy.csv").read_text()
    plain = {k: v for k, v in work["env"].items() if not k.startswith(("JAX_COMPILATION",
                                                                       "JAX_PERSISTENT"))}
    cached = {**plain, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    off = {**plain, "XDG_CACHE_HOME": str(tmp_path / "off"), "VMONF_NO_CACHE": "1"}

    def run(job):
        env, rows = job
        code = ("import sys\nfrom vmonf_jax.cli import main\nrc = main(['predict', 'model', '-'])"
                "\nprint('sklearn' in sys.modules, file=sys.stderr)\nsys.exit(rc)")
        return subprocess.run([sys.executable, "-c", code], cwd=d, env=env, timeout=300,
                              input="\n".join(text.splitlines()[:rows]), capture_output=True,
                              text=True)

    for r in _parallel(run, [(cached, N_ROWS + 1), (off, N_ROWS + 1)]):
        assert r.returncode == 0 and len(r.stdout.splitlines()) == N_ROWS + 1, r.stderr
        assert r.stderr.splitlines()[-1] == "False", r.stderr  # start-up: no scikit-learn
    cache = tmp_path / "xdg" / "vmonf-jax" / "jax"
    entries = sorted(p.name for p in cache.iterdir())
    assert entries and cache.stat().st_mode & 0o777 == 0o700
    assert not (tmp_path / "off").exists()
    fewer = N_ROWS - 50  # another row count in the same bucket (chunked.bucket)
    assert bucket(fewer) == bucket(N_ROWS)
    r = run((cached, fewer + 1))
    assert r.returncode == 0 and len(r.stdout.splitlines()) == fewer + 1, r.stderr
    assert sorted(p.name for p in cache.iterdir()) == entries  # nothing compiled anew


def test_help_on_every_command():
    """Every subcommand documents every option (checked in-process: it is only text)."""
    from vmonf_jax.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    assert set(sub) == {"fit", "predict", "score", "sample", "info", "plot"}
    for name, sp in sub.items():
        text = sp.format_help()
        for action in sp._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, (name, action.option_strings)
                assert action.option_strings[0] in text
    fit_help = sub["fit"].format_help()
    for opt in ("--components", "--flow", "--blocks", "--hidden", "--posterior-hidden",
                "--epochs", "--batch-size", "--lr", "--weight-decay", "--labels",
                "--label-column", "--prior", "--val-fraction", "--seed", "--preprocess",
                "--out", "--resume", "--overwrite", "--quiet", "--warm-epochs"):
        assert opt in fit_help, opt


def _sub_parser(name="fit"):
    from vmonf_jax.cli import build_parser

    return next(a for a in build_parser()._actions if a.dest == "command").choices[name]


def test_fit_options_are_the_estimator_parameters():
    """One table: every VMoNF parameter is a fit option, defaults and choices the library's."""
    from vmonf_jax import VMoNF, inference, preprocess
    from vmonf_jax.cli import options
    from vmonf_jax.model import registry
    from vmonf_jax.persist import modeldir, settings

    params = VMoNF().get_params()
    assert settings.estimator_defaults() == params
    assert sorted(o.name for o in options.FIT_OPTIONS) == sorted(params)  # each once
    dests = {a.dest for a in _sub_parser()._actions}
    assert set(params) <= dests
    library = {"flow": set(registry.FLOWS), "base": {"auto", *registry.BASES},  # others: params
               "preprocess": {c.name for c in vars(preprocess).values()
                              if isinstance(c, type) and isinstance(getattr(c, "name", None),
                                                                    str)}}
    for o in options.FIT_OPTIONS:
        if o.name in library:
            assert set(o.kind.values) == library[o.name], o.name
    assert options.SEED_LIMIT == modeldir.LIMITS["seed"]
    posterior = next(a for a in _sub_parser("predict")._actions if a.dest == "posterior")
    assert set(posterior.choices) == set(inference.POSTERIORS)


def _other_value(o, default):
    """Command-line words setting ``o`` to a valid value other than ``default``."""
    from vmonf_jax.spec import kinds

    kind = o.kind.kind if isinstance(o.kind, kinds.Optional) else o.kind
    if o.const is not None:
        return [o.flags[0]]
    if isinstance(kind, kinds.Bool):
        return [o.flags[0] if not default else "--no-" + o.flags[0][2:]]
    if isinstance(kind, kinds.Choice):
        return [o.flags[0], next(c for c in kind.values if c != default)]
    if isinstance(default, tuple):
        return [o.flags[0], "3,5"]
    if isinstance(kind, kinds.Auto):
        return [o.flags[0], "false" if isinstance(kind.kind, kinds.Bool) else "0.5"]
    if isinstance(default, float):
        return [o.flags[0], str(default / 2 if default else 0.5)]
    return [o.flags[0], str(1 if default is None else default + 1)]


def test_every_fit_option_reaches_the_estimator():
    """Each option, given once with a non-default value, sets exactly its parameter."""
    from vmonf_jax import VMoNF
    from vmonf_jax.cli import options
    from vmonf_jax.persist.settings import estimator_defaults

    defaults = estimator_defaults()
    parser = _sub_parser()
    for o in options.FIT_OPTIONS:
        args = parser.parse_args(["d.csv", "--out", "m", *_other_value(o, defaults[o.name])])
        got = options.given(args)
        assert list(got) == [o.name] and got[o.name] != defaults[o.name], (o.name, got)
        VMoNF(**{**defaults, **got})._config(2)  # a valid setting of the estimator
    assert options.given(parser.parse_args(["d.csv", "--out", "m"])) == {}
    args = parser.parse_args(["d.csv", "--out", "m", "--clip-norm", "none", "--patience", "4"])
    assert options.given(args) == {"clip_norm": None, "patience": 4}


def test_docs_list_every_option():
    """docs/cli.md names every option of every command (a new option cannot go undocumented)."""
    from vmonf_jax.cli import build_parser

    doc = open(os.path.join(os.path.dirname(__file__), "..", "docs", "cli.md")).read()
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices
    missing = [(name, a.option_strings[0]) for name, sp in sub.items() for a in sp._actions
               if a.option_strings and a.dest != "help"
               and f"`{a.option_strings[0]}" not in doc]
    assert not missing


def test_help_and_version_are_fast_and_correct():
    """--help imports no JAX; --version names jax, jaxlib and the device."""
    code = ("import sys\nfrom vmonf_jax.cli import main\nrc = main(sys.argv[1:])\n"
            "print('jax' in sys.modules, rc)")
    out = {}
    for argv in (["--help"], ["fit", "--help"], ["--version"]):
        r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True,
                           text=True, timeout=300)
        out[argv[-1] + argv[0]] = r.stdout.strip().splitlines()
    assert out["--help--help"][-1] == "False 0" and out["--helpfit"][-1] == "False 0"
    version, last = out["--version--version"]
    import jax
    import jaxlib

    assert last == "True 0"
    for word in (f"jax {jax.__version__}", f"jaxlib {jaxlib.__version__}", "device cpu"):
        assert word in version, version


# -- bad input ----------------------------------------------------------------------------
def _write_inputs(d):
    (d / "bad").mkdir()
    b = d / "bad"
    (b / "binary.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    (b / "words.csv").write_text("x,y\n1,2\n3,abc\n")
    (b / "ragged.csv").write_text("1,2\n3,4\n5\n")
    (b / "nan.csv").write_text("x,y\n1,2\n3,4\n5,nan\n")
    np.save(b / "inf.npy", np.array([[1.0, 2.0], [3.0, np.inf]]))
    (b / "empty.csv").write_text("")
    (b / "header_only.csv").write_text("x,y\n")
    np.save(b / "empty.npy", np.zeros((0, 2)))
    (b / "three.csv").write_text("1,2\n3,4\n5,6\n")
    (b / "wide.csv").write_text("1,2,3\n4,5,6\n")
    (b / "short_labels.csv").write_text("label\n0\n1\n")
    (b / "toy.txt").write_text("1,2\n")
    labels = np.zeros(N_ROWS, int)
    labels[7] = 5
    np.save(b / "bad_labels.npy", labels)
    np.save(b / "all_labels.npy", np.arange(N_ROWS) % 2)
    (b / "notamodel").mkdir()
    (b / "notamodel" / "readme.txt").write_text("hello")


def _corrupt_models(d, model):
    b = d / "bad"
    shutil.copytree(model, b / "badjson")
    (b / "badjson" / "manifest.json").write_text("{ not json")
    shutil.copytree(model, b / "nockpt")
    for p in (b / "nockpt").iterdir():
        if p.is_dir():
            shutil.rmtree(p)
    shutil.copytree(model, b / "truncated")
    for p in sorted((b / "truncated").rglob("*")):
        if p.is_file() and p.name != "manifest.json":
            p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 3])
    shutil.copytree(model, b / "future")
    (b / "dangling").symlink_to(b / "nothing here")
    m = json.loads((b / "future" / "manifest.json").read_text())
    (b / "future" / "manifest.json").write_text(json.dumps({**m, "format_version": 99}))


FIT_SMALL = ["-k", "2", "--epochs", "1", "--warm-epochs", "0"]
# name: (arguments, words the message must contain, output that must not appear)
BAD = {
    "missing file": (["fit", "nope.csv", *FIT_SMALL, "--out", "o1"], ["nope.csv", "no such"],
                     "o1"),
    "unreadable csv": (["fit", "bad/binary.csv", *FIT_SMALL, "--out", "o2"],
                       ["binary.csv", "not a text CSV"], "o2"),
    "non-numeric csv": (["fit", "bad/words.csv", *FIT_SMALL, "--out", "o3"],
                        ["line 3", "column 2", "'abc' is not a number"], "o3"),
    "ragged rows": (["fit", "bad/ragged.csv", *FIT_SMALL, "--out", "o4"],
                    ["line 3", "1 columns, expected 2"], "o4"),
    "nan in csv": (["fit", "bad/nan.csv", *FIT_SMALL, "--out", "o5"],
                   ["line 4", "column 2", "non-finite", "nan"], "o5"),
    "inf in npy": (["fit", "bad/inf.npy", *FIT_SMALL, "--out", "o6"],
                   ["row 1, column 1", "non-finite", "inf"], "o6"),
    "empty csv": (["fit", "bad/empty.csv", *FIT_SMALL, "--out", "o7"], ["no data rows"], "o7"),
    "header only": (["fit", "bad/header_only.csv", *FIT_SMALL, "--out", "o8"],
                    ["no data rows"], "o8"),
    "empty npy": (["fit", "bad/empty.npy", *FIT_SMALL, "--out", "o9"], ["empty data"], "o9"),
    "fewer rows than components": (["fit", "bad/three.csv", "-k", "5", "--out", "o10"],
                                   ["3 rows", "5 components"], "o10"),
    "labels of another length": (["fit", "toy.csv", *FIT_SMALL, "--labels",
                                  "bad/short_labels.csv", "--out", "o11"],
                                 ["short_labels.csv", "length 2", f"{N_ROWS} rows"], "o11"),
    "every row labelled": (["fit", "toy.csv", *FIT_SMALL, "--labels", "bad/all_labels.npy",
                            "--out", "o40"], ["all_labels.npy", "every row is labelled"], "o40"),
    "labels outside [-1, K)": (["fit", "toy.csv", *FIT_SMALL, "--labels", "bad/bad_labels.npy",
                                "--out", "o12"], ["label 5 at row 7", "outside [-1, 2)"],
                               "o12"),
    "unknown flow": (["fit", "toy.csv", "--flow", "nope", "--out", "o13"],
                     ["--flow", "invalid choice", "nope"], "o13"),
    "zero components": (["fit", "toy.csv", "-k", "0", "--out", "o14"],
                        ["--components", "in [1, 1024], got 0"], "o14"),
    "zero hidden size": (["fit", "toy.csv", "--hidden", "4,0", "--out", "o15"],
                         ["--hidden", "positive"], "o15"),
    "negative batch size": (["fit", "toy.csv", "--batch-size", "-3", "--out", "o16"],
                            ["--batch-size", "positive"], "o16"),
    "zero epochs": (["fit", "toy.csv", "--epochs", "0", "--out", "o17"],
                    ["--epochs", "positive"], "o17"),
    "negative consistency": (["fit", "toy.csv", "--consistency", "-1", "--out", "o41"],
                             ["--consistency", ">= 0"], "o41"),
    "nan consistency": (["fit", "toy.csv", "--consistency", "nan", "--out", "o42"],
                        ["--consistency", "finite"], "o42"),
    "zero samples": (["sample", "model", "-n", "0", "--out", "o18.csv"], ["-n", "[1, 1000000]"],
                     "o18.csv"),
    "unknown label column": (["fit", "toy.csv", *FIT_SMALL, "--label-column", "kind",
                              "--out", "o19"], ["no column named 'kind'", "x, y"], "o19"),
    "npz needs --key": (["predict", "model", "two.npz", "--out", "o20.csv"],
                        ["2 arrays", "--key"], "o20.csv"),
    "unsupported extension": (["predict", "model", "bad/toy.txt", "--out", "o21.csv"],
                              ["unsupported", ".txt"], "o21.csv"),
    "fit over existing model": (["fit", "toy.csv", *FIT_SMALL, "--out", "model"],
                                ["already exists", "--overwrite"], None),
    "dimension mismatch": (["predict", "model", "bad/wide.csv", "--out", "o22.csv"],
                           ["3 columns", "fitted on 2"], "o22.csv"),
    "score dimension mismatch": (["score", "model", "bad/wide.csv", "--out", "o23.npy"],
                                 ["3 columns", "fitted on 2"], "o23.npy"),
    "no model directory": (["predict", "nomodel", "toy.csv", "--out", "o24.csv"],
                           ["nomodel", "no such model"], "o24.csv"),
    "not a model": (["info", "bad/notamodel"], ["not a VMoNF model directory"], None),
    "data file as the model": (["predict", "toy.csv", "toy.csv", "--out", "o43.csv"],
                               ["toy.csv", "a file, not a folder", "MODEL_DIR comes first"],
                               "o43.csv"),
    "link to nothing as the model": (["sample", "bad/dangling", "-n", "3", "--out", "o44.csv"],
                                     ["a link to nothing, not a folder"], "o44.csv"),
    "damaged manifest": (["predict", "bad/badjson", "toy.csv", "--out", "o25.csv"],
                         ["damaged"], "o25.csv"),
    "missing checkpoint": (["score", "bad/nockpt", "toy.csv", "--out", "o26.csv"],
                           ["damaged"], "o26.csv"),
    "truncated checkpoint": (["sample", "bad/truncated", "-n", "5", "--out", "o27.csv"],
                             ["damaged"], "o27.csv"),
    "unknown format version": (["info", "bad/future"], ["format_version", "99"], None),
    "component out of range": (["sample", "model", "-n", "5", "--component", "2", "--out",
                                "o28.csv"], ["--component", "[0, 2)"], "o28.csv"),
    "output folder missing": (["sample", "model", "-n", "5", "--out", "nodir/o29.csv"],
                              ["nodir", "does not exist"], "nodir"),
    "resume without a fit": (["fit", "toy.csv", *FIT_SMALL, "--out", "o30", "--resume"],
                             ["nothing to resume"], "o30"),
    "data and labels both on stdin": (["fit", "-", *FIT_SMALL, "--labels", "-", "--out", "o31"],
                                      ["both be read from stdin"], "o31"),
    "empty stdin": (["score", "model", "-", "--out", "o32.csv"], ["<stdin>", "no data rows"],
                    "o32.csv"),
}


# Also run as their own processes: the exit status of `python -m vmonf_jax.cli` itself.
OWN_PROCESS = ("missing file", "damaged manifest")


def test_every_bad_input_fails_cleanly(work, model):
    """Exit status 2, a message naming the problem, no traceback, no output left behind."""
    d = work["dir"]
    _write_inputs(d)
    _corrupt_models(d, model)
    names = list(BAD)

    def job(item):
        if item == "table":
            return _run_many(work, [BAD[n][0] for n in names])
        r = work["run"](*BAD[item][0])
        return {"rc": r.returncode, "stderr": r.stderr}

    table, *own = _parallel(job, ["table", *OWN_PROCESS])
    results = [*zip(names, table), *zip((f"{n} (own process)" for n in OWN_PROCESS), own)]
    problems = []
    for case, r in results:
        _, words, out = BAD[case.removesuffix(" (own process)")]
        rc, err = r["rc"], r["stderr"]
        missing = [w for w in words if w not in err]
        if rc != 2 or "Traceback" in err or "error:" not in err or missing:
            problems.append(f"{case}: exit {rc}, missing {missing}, stderr: {err.strip()}")
        if out is not None and any((d / p).exists() for p in (out, out + ".partial")):
            problems.append(f"{case}: left {out} behind")
    assert not [p for p in _files(d) if p.endswith(".tmp")]
    assert not problems, "\n".join(problems)


# -- interrupt and resume -----------------------------------------------------------------
def _default_signals():
    """In the child: default SIGINT/SIGTERM even if pytest runs as a background job (which
    inherits SIGINT ignored, and the CLI keeps an ignored signal ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _interrupt(work, out, sig, after_epoch, resume=False):
    """Start ``fit``; once a checkpoint past ``after_epoch`` exists, send ``sig``."""
    d = work["dir"]
    meta = d / f"{out}.partial" / "state" / "meta.json"

    def epoch():
        try:
            return json.loads(meta.read_text())["epoch"]
        except (OSError, ValueError, KeyError):
            return -1

    argv = ["fit", "toy.csv", *FIT, "--out", out, "--quiet", "--checkpoint-seconds", "0",
            *(["--resume"] if resume else [])]
    p = subprocess.Popen(_cmd(argv), cwd=d, env=work["env"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, preexec_fn=_default_signals)
    try:
        deadline = time.monotonic() + 240
        while epoch() <= after_epoch and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        p.send_signal(sig)
        _, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, ("the fit was not interrupted", p.returncode, err)
    assert "checkpoint saved" in err and "--resume" in err and "Traceback" not in err, err
    return epoch()


def test_interrupt_and_resume_matches_uninterrupted_fit(work, model):
    """SIGTERM, resume, Ctrl-C (SIGINT), resume: the same parameters as one uninterrupted fit."""
    from vmonf_jax import VMoNF

    d = work["dir"]
    first = _interrupt(work, "resumed", signal.SIGTERM, after_epoch=0)
    assert not (d / "resumed").exists()  # resumable, not loadable as a finished model
    refusals = _run_many(work, [
        ["info", "resumed"],
        ["fit", "toy.csv", *FIT, "--out", "resumed"],
        ["fit", "toy.csv", *FIT, "--out", "resumed", "--epochs", "91", "--resume"],
        ["fit", "toy.npy", *FIT, "--out", "resumed", "--resume"],
    ])
    for r, words in zip(refusals, (["has not finished", "--resume"], ["--resume"],
                                   ["epochs=91"], ["not the data"])):
        assert r["rc"] == 2 and "Traceback" not in r["stderr"], r
        for w in words:
            assert w in r["stderr"], (w, r)
    second = _interrupt(work, "resumed", signal.SIGINT, after_epoch=first, resume=True)
    assert first < second < len(FIT_PLAN)

    r = work["run"]("fit", "toy.csv", *FIT, "--out", "resumed", "--resume", "--quiet")
    assert r.returncode == 0, r.stderr
    assert not (d / "resumed.partial").exists()

    a, b = VMoNF.load(model), VMoNF.load(d / "resumed")
    assert [h["loss"] for h in a.history_] == [h["loss"] for h in b.history_]
    leaves = __import__("jax").tree.leaves
    assert len(leaves(a.params_)) == len(leaves(b.params_))
    for x, y in zip(leaves(a.params_), leaves(b.params_)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


# -- labels, per-component sampling and the device options --------------------------------
SHORT = ["-k", "2", "--blocks", "2", "--hidden", "4", "--posterior-hidden", "4",
         "--warm-epochs", "2", "--epochs", "10", "--batch-size", "64", "--n-init", "1",
         "--seed", "3", "--lr", "0.02", "--quiet"]


def _predicted(out):
    """The `cluster` column of `predict`'s CSV (a model fitted with labels adds `class`)."""
    return np.array([int(r[0]) for r in list(csv.reader(io.StringIO(out["stdout"])))[1:]])


def test_labels_steer_the_fit(work):
    """--labels (a file) and --label-column (a CSV column) reach the fit: with opposite labels
    of the same blobs, each model puts the labelled rows in the components they name (one
    of the two contradicts what the unsupervised fit would do)."""
    d, y = work["dir"], work["y"]
    labelled = np.random.default_rng(5).permutation(N_ROWS)[:40]
    a = np.full(N_ROWS, -1)
    a[labelled] = y[labelled]
    np.save(d / "labels_a.npy", a)
    b = [""] * N_ROWS  # blanks and -1 both mean unlabelled
    for i in range(0, N_ROWS, 7):
        b[i] = "-1"
    for i in labelled:
        b[i] = str(1 - y[i])
    rows = [f"{u:.6f},{v:.6f},{lab}" for (u, v), lab in zip(work["X"], b)]
    (d / "toy_labelled.csv").write_text("x,y,label\n" + "\n".join(rows) + "\n")
    runs = _parallel(lambda argvs: _run_many(work, argvs), [
        [["fit", "toy.csv", *SHORT, "--labels", "labels_a.npy", "--out", "lab_a"],
         ["predict", "lab_a", "toy.csv"]],
        [["fit", "toy_labelled.csv", *SHORT, "--label-column", "label", "--out", "lab_b"],
         ["predict", "lab_b", "toy.csv"]],
    ])
    for (fitted, out), want in zip(runs, (y, 1 - y)):
        assert fitted["rc"] == 0, fitted["stderr"]
        assert out["rc"] == 0, out["stderr"]
        pred = _predicted(out)
        # integer labels name components: the class column repeats the cluster
        assert [r[1] for r in csv.reader(io.StringIO(out["stdout"]))][1:] == list(map(str, pred))
        np.testing.assert_array_equal(pred[labelled], want[labelled])
        assert np.mean(pred == want) > 0.9


def test_sample_of_one_component_is_that_components_draw(work, model):
    """`sample --component c --seed s` writes what ``VMoNF.sample`` draws from component c."""
    from vmonf_jax import VMoNF

    d = work["dir"]
    outs = _run_many(work, [["sample", "model", "-n", "30", "--component", str(c), "--seed",
                             "4", "--out", f"comp{c}.npy"] for c in (0, 1)]
                     + [["sample", "model", "-n", "30", "--seed", "4", "--out", "mix.csv"]])
    assert [o["rc"] for o in outs] == [0, 0, 0], outs
    est = VMoNF.load(model)
    for c in (0, 1):
        want, _ = est.sample(30, component=c, seed=4)
        np.testing.assert_allclose(np.load(d / f"comp{c}.npy"), want, rtol=1e-5, atol=1e-5)
    mix = np.loadtxt(d / "mix.csv", delimiter=",", skiprows=1)
    want_x, want_k = est.sample(30, seed=4)
    np.testing.assert_allclose(mix[:, :2], want_x, atol=1e-5)  # CSV: 6 decimals
    np.testing.assert_array_equal(mix[:, 2], want_k)


def test_parallel_fits_match_the_single_device_fit(work):
    """--parallel data/components --devices 2 on 2 fake CPU devices: the same losses, epoch by
    epoch, as the single-device fit (rtol 1e-4), and the same clusters."""
    from vmonf_jax import VMoNF

    d = work["dir"]
    env = {**work["env"], "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    short = [a for a in SHORT if a != "--quiet"]
    i = short.index("--epochs")
    short[i + 1] = "3"
    runs = _run_many({**work, "env": env}, [
        ["fit", "toy.csv", *short, "--quiet", "--out", "one"],
        ["fit", "toy.csv", *short, "--quiet", "--parallel", "data", "--devices", "2", "--out",
         "data2"],
        ["fit", "toy.csv", *short, "--quiet", "--parallel", "components", "--devices", "2",
         "--out", "comp2"],
        ["fit", "toy.csv", *short, "--quiet", "--devices", "3", "--out", "three"],
    ])
    for r in runs[:3]:
        assert r["rc"] == 0, r["stderr"]
    assert runs[3]["rc"] == 2 and "asked for 3 devices but 2 are available" in runs[3]["stderr"]
    assert not (d / "three").exists()
    one = VMoNF.load(d / "one")
    for name, mode in (("data2", "data"), ("comp2", "components")):
        m = VMoNF.load(d / name)
        assert m.parallel == mode and m.devices == 2
        assert len(m.history_) == len(one.history_) == 5
        np.testing.assert_allclose([h["loss"] for h in m.history_],
                                   [h["loss"] for h in one.history_], rtol=1e-4)
        np.testing.assert_allclose(m.predict_proba(work["X"]), one.predict_proba(work["X"]),
                                   atol=1e-3)


def test_a_users_table_with_text_class_names_and_gaps(work):
    """A table as users keep it: a text column, class names (blank = unlabelled) and rows
    with missing cells. `fit --columns --label-column --drop-incomplete` fits the chosen
    columns, records their names and the classes (component c = the c-th sorted name);
    `predict` then takes the model's columns by name from a header in another order, and
    with --drop-incomplete gives the incomplete rows -1 in their places; without it they
    are refused with the option named."""
    d, X, y = work["dir"], work["X"], work["y"]
    labelled = np.random.default_rng(6).permutation(N_ROWS)[:40]
    gaps = np.random.default_rng(7).permutation(N_ROWS)[:5]
    rows = []
    for i, ((u, v), k) in enumerate(zip(X, y)):
        kind = ("north, upper" if k == 1 else "south") if i in labelled else ""
        cells = [kind, f"{v:.6f}", "note, with a comma", f"{u:.6f}"]
        if i in gaps:
            cells[1 + 2 * (i % 2)] = "NA" if i % 3 else ""
        rows.append(",".join(f'"{c}"' if "," in c else c for c in cells))
    (d / "users.csv").write_text("kind,y,note,x\n" + "\n".join(rows) + "\n")
    fit, info, pred, refused, ref = _run_many(work, [
        ["fit", "users.csv", *SHORT, "--columns", "x,y", "--label-column", "kind",
         "--drop-incomplete", "--out", "users"],
        ["info", "users", "--json"],
        ["predict", "users", "users.csv", "--drop-incomplete"],
        ["predict", "users", "users.csv"],
        ["predict", "users", "toy.csv"],
    ])
    assert fit["rc"] == 0, fit["stderr"]
    assert "left out 5 of 600 rows with a missing cell" in fit["stderr"]
    got = json.loads(info["stdout"])
    assert got["columns"] == ["x", "y"] and got["classes"] == ["north, upper", "south"]
    assert pred["rc"] == 0 and ref["rc"] == 0, pred["stderr"] + ref["stderr"]
    table = list(csv.reader(io.StringIO(pred["stdout"])))
    assert table[0] == ["cluster", "class"]
    named = np.array([r[1] for r in table[1:]])
    pred, ref = np.array([int(r[0]) for r in table[1:]]), _predicted(ref)
    assert (pred[gaps] == -1).all() and (named[gaps] == "").all()
    whole = np.setdiff1d(np.arange(N_ROWS), gaps)
    np.testing.assert_array_equal(pred[whole], ref[whole])  # columns found by name
    keep = np.setdiff1d(labelled, gaps)
    np.testing.assert_array_equal(pred[keep], 1 - y[keep])  # "north, upper" (y = 1) is 0
    np.testing.assert_array_equal(named[whole], np.where(pred[whole] == 0, "north, upper",
                                                         "south"))
    assert refused["rc"] == 2 and "--drop-incomplete leaves such rows out" in refused["stderr"]


def test_a_spreadsheet_export_with_semicolons_and_row_names(work):
    """A table saved with ';' between cells and row names first (pandas' to_csv(sep=';'),
    R's write.csv2 without decimal commas): `fit` reads the numbers without options, notes
    the row names it left out, and the model clusters the rows as from the plain file."""
    d, X = work["dir"], work["X"]
    (d / "export.csv").write_text('"";"x";"y"\n' + "".join(
        f'"{i + 1}";{u:.6f};{v:.6f}\n' for i, (u, v) in enumerate(X)))
    fit, info, got, want = _run_many(work, [
        ["fit", "export.csv", *SHORT, "--out", "export"],
        ["info", "export", "--json"],
        ["predict", "export", "export.csv"],
        ["predict", "export", "toy.csv"],
    ])
    assert fit["rc"] == 0, fit["stderr"]
    assert "column 1 has no header name, so it holds row names" in fit["stderr"]
    assert json.loads(info["stdout"])["columns"] == ["x", "y"]
    np.testing.assert_array_equal(_predicted(got), _predicted(want))
