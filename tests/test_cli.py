"""The ``vmonf`` command line, run as a subprocess: round trip, every bad input, interrupt+resume.

One tiny model is fitted once per module and shared. The bad-input cases run concurrently
(each is a fresh Python process, so import time dominates); a persistent JAX compilation
cache shared by every process keeps the fits from recompiling the same epoch functions.
"""

import concurrent.futures
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
       "--warm-epochs", "2", "--epochs", "90", "--batch-size", "16", "--seed", "3"]


def _env(cache):
    env = dict(os.environ)
    env.update(JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=str(cache),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
               JAX_DISABLE_MOST_OPTIMIZATIONS="1", PYTHONUNBUFFERED="1")
    return env


def _cmd(args):
    return [sys.executable, "-m", "vmonf_jax.cli", *map(str, args)]


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
def test_round_trip(work, model):
    d, run = work["dir"], work["run"]
    assert not (d / "model.partial").exists()

    r = run("predict", "model", "toy.csv")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "cluster" and len(lines) == N_ROWS + 1
    pred = np.array(lines[1:], int)
    agree = max(np.mean(pred == work["y"]), np.mean(pred != work["y"]))
    assert agree > 0.9  # two well separated blobs: the clusters are the blobs

    r = run("predict", "model", "one.npz", "--proba", "--out", "proba.npy")
    assert r.returncode == 0, r.stderr
    proba = np.load(d / "proba.npy")
    assert proba.shape == (N_ROWS, 2)
    np.testing.assert_allclose(proba.sum(1), 1, atol=1e-5)
    np.testing.assert_array_equal(proba.argmax(1), pred)

    r = run("score", "model", "toy.npy", "--out", "ll.csv")
    assert r.returncode == 0, r.stderr
    ll = np.loadtxt(d / "ll.csv", delimiter=",", skiprows=1)
    assert ll.shape == (N_ROWS,) and np.all(np.isfinite(ll))
    assert f"{ll.mean():.6g}" in r.stderr and "mean log-likelihood" in r.stderr
    r = run("score", "model", "toy.csv")  # CSV on stdout, the same numbers
    assert r.returncode == 0, r.stderr
    np.testing.assert_allclose(np.array(r.stdout.split()[1:], float), ll, atol=1e-4)

    r = run("sample", "model", "-n", "50", "--seed", "1", "--out", "s.npz")
    assert r.returncode == 0, r.stderr
    with np.load(d / "s.npz") as s:
        assert s["X"].shape == (50, 2) and set(np.unique(s["component"])) <= {0, 1}
    r = run("sample", "model", "-n", "20", "--component", "1", "--out", "s1.csv")
    assert r.returncode == 0, r.stderr
    s1 = np.loadtxt(d / "s1.csv", delimiter=",", skiprows=1)
    assert s1.shape == (20, 3) and np.all(s1[:, 2] == 1)
    assert (d / "s1.csv").read_text().splitlines()[0] == "x0,x1,component"

    r = run("info", "model")
    assert r.returncode == 0, r.stderr
    for word in ("K=2 realnvp", "2 blocks", "2 columns", "92 epochs", "warm 2, main 90",
                 "jax "):
        assert word in r.stdout, r.stdout

    r = run("plot", "model", "toy.csv", "--out", "regions.png", "-n", "200")
    assert r.returncode == 0, r.stderr
    r2 = run("plot", "model", "--kind", "curves", "--out", "curves.png")
    assert r2.returncode == 0, r2.stderr
    for name in ("regions.png", "curves.png"):
        assert (d / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    leftovers = [p for p in _files(d) if p.startswith(".") or p.endswith(".tmp")]
    assert leftovers == []


def test_help_on_every_command(work):
    r = work["run"]("fit", "--help")
    assert r.returncode == 0
    for opt in ("--components", "--flow", "--blocks", "--hidden", "--posterior-hidden",
                "--epochs", "--batch-size", "--lr", "--weight-decay", "--labels",
                "--label-column", "--prior", "--val-fraction", "--seed", "--preprocess",
                "--out", "--resume", "--overwrite", "--quiet", "--warm-epochs"):
        assert opt in r.stdout, opt


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
    m = (b / "future" / "manifest.json").read_text()
    (b / "future" / "manifest.json").write_text(m.replace('"format_version": 1',
                                                          '"format_version": 99'))


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
    "labels outside [-1, K)": (["fit", "toy.csv", *FIT_SMALL, "--labels", "bad/bad_labels.npy",
                                "--out", "o12"], ["label 5 at row 7", "outside [-1, 2)"],
                               "o12"),
    "unknown flow": (["fit", "toy.csv", "--flow", "glow", "--out", "o13"],
                     ["--flow", "invalid choice", "glow"], "o13"),
    "zero components": (["fit", "toy.csv", "-k", "0", "--out", "o14"],
                        ["--components", "positive"], "o14"),
    "zero hidden size": (["fit", "toy.csv", "--hidden", "4,0", "--out", "o15"],
                         ["--hidden", "positive"], "o15"),
    "negative batch size": (["fit", "toy.csv", "--batch-size", "-3", "--out", "o16"],
                            ["--batch-size", "positive"], "o16"),
    "zero epochs": (["fit", "toy.csv", "--epochs", "0", "--out", "o17"],
                    ["--epochs", "positive"], "o17"),
    "zero samples": (["sample", "model", "-n", "0", "--out", "o18.csv"], ["-n", "positive"],
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
}


@pytest.fixture(scope="module")
def bad_results(work, model):
    """Run every BAD case at once (4 at a time) and keep each result."""
    d = work["dir"]
    _write_inputs(d)
    _corrupt_models(d, model)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = {name: pool.submit(work["run"], *args) for name, (args, _, _) in BAD.items()}
        return {name: f.result() for name, f in futures.items()}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input(case, work, bad_results):
    _, words, out = BAD[case]
    r = bad_results[case]
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    assert "error:" in r.stderr
    for w in words:
        assert w in r.stderr, (w, r.stderr)
    if out is not None:
        assert not (work["dir"] / out).exists()
        assert not (work["dir"] / (out + ".partial")).exists()
    assert not [p for p in _files(work["dir"]) if p.endswith(".tmp")]


# -- interrupt and resume -----------------------------------------------------------------
def _interrupt(work, out, sig):
    """Start ``fit``, send ``sig`` after its first periodic checkpoint, return its stderr."""
    d = work["dir"]
    meta = d / f"{out}.partial" / "checkpoint" / "state" / "meta.json"
    p = subprocess.Popen(_cmd(["fit", "toy.csv", *FIT, "--out", out, "--quiet"]), cwd=d,
                         env=work["env"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        deadline = time.monotonic() + 240
        while not meta.exists() and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # let the periodic save finish; the epochs are busy for ~2 s more
        p.send_signal(sig)
        _, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, (p.returncode, err)
    assert "checkpoint saved" in err and "--resume" in err and "Traceback" not in err, err
    return err


def test_interrupt_and_resume_matches_uninterrupted_fit(work, model):
    from vmonf_jax import VMoNF

    d, run = work["dir"], work["run"]
    _interrupt(work, "resumed", signal.SIGINT)
    assert not (d / "resumed").exists()  # resumable, not loadable as a finished model
    r = run("info", "resumed")
    assert r.returncode == 2 and "has not finished" in r.stderr and "--resume" in r.stderr
    r = run("fit", "toy.csv", *FIT, "--out", "resumed")  # a plain fit refuses to start over
    assert r.returncode == 2 and "--resume" in r.stderr
    r = run("fit", "toy.csv", *FIT, "--out", "resumed", "--epochs", "91", "--resume")
    assert r.returncode == 2 and "epochs=91" in r.stderr  # resume keeps the original settings

    r = run("fit", "toy.csv", *FIT, "--out", "resumed", "--resume", "--quiet")
    assert r.returncode == 0, r.stderr
    assert not (d / "resumed.partial").exists()

    a, b = VMoNF.load(model), VMoNF.load(d / "resumed")
    leaves = __import__("jax").tree.leaves
    assert len(leaves(a.params_)) == len(leaves(b.params_))
    for x, y in zip(leaves(a.params_), leaves(b.params_)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert [h["loss"] for h in a.history_] == [h["loss"] for h in b.history_]
