"""Hostile inputs: crafted model directories, data files and output situations.

Every case runs ``vmonf_jax.cli.main`` in-process (the few that could hang, FIFOs, run in
one subprocess with a timeout) and asserts the exit status, words of the one-line message,
no traceback, a time limit, and that nothing else under the work folder changed (names,
sizes and modification times before and after).
"""

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from hostile_support import LIMIT_S, data_folder
from hostile_support import changes as _changes
from hostile_support import check as _check
from hostile_support import run_main as _main
from hostile_support import snapshot as _snapshot
from hostile_support import untrained as _untrained
from hypothesis import given, settings
from hypothesis import strategies as st

from vmonf_jax import VMoNF, cli
from vmonf_jax.cli import commands
from vmonf_jax.files import io as vio
from vmonf_jax.persist import modeldir
from vmonf_jax.validation import FLOAT32_MAX

pytestmark = pytest.mark.usefixtures("fast_compile", "no_disk_cache")

@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A folder with a data file and one tiny model directory shared by every case."""
    X = np.random.default_rng(0).normal(size=(40, 2))
    d = data_folder(tmp_path_factory.mktemp("hostile"), X)
    _untrained(X).save(d / "model")
    return d


# -- crafting -----------------------------------------------------------------------------
def _copy(d, name):
    dst = d / name
    shutil.copytree(d / "model", dst)
    return dst


def _edit(d, name, fn):
    """A copy of the model whose manifest is ``fn(manifest)`` (``fn`` may edit in place)."""
    m = _copy(d, name)
    man = json.loads((m / "manifest.json").read_text())
    new = fn(man)
    (m / "manifest.json").write_text(json.dumps(man if new is None else new))
    return m


def _est(key, value):
    return lambda m: m["estimator"].__setitem__(key, value)


def _pre(key, value):
    return lambda m: m["preprocessing"].__setitem__(key, value)


def _nested(m):
    m["history"] = json.loads("[" * 50 + "]" * 50)


def _raw_manifest(text):
    def build(d, name):
        m = _copy(d, name)
        (m / "manifest.json").write_bytes(text)
        return m
    return build


def _link(rel, target):
    def build(d, name):
        m = _copy(d, name)
        (m / rel).unlink()
        (m / rel).symlink_to(target)
        return m
    return build


def _replace(rel, content):
    """A copy whose ``rel`` is replaced by a file of ``content`` (or an empty folder)."""
    def build(d, name):
        m = _copy(d, name)
        target = m / rel
        shutil.rmtree(target) if target.is_dir() else target.unlink()
        target.mkdir() if content is None else target.write_bytes(content)
        return m
    return build


def _truncate_data(d, name):
    m = _copy(d, name)
    for p in (m / "state").rglob("*"):
        if p.is_file() and p.parent.name == "d":
            p.write_bytes(p.read_bytes()[:10])
    return m


def _no_state(d, name):
    m = _copy(d, name)
    shutil.rmtree(m / "state")
    return m


def _nan_params(d, name):
    from vmonf_jax.files import checkpoint as ckpt

    m = _copy(d, name)
    model = VMoNF.load(m)
    params = dict(model.params_, prior_logits=np.full(2, np.nan, np.float32))
    shutil.rmtree(m / "state")
    ckpt.save(m, {"params": params, "state": None}, {})
    return m


def _huge_architecture(m):
    m["estimator"].update(preprocess="none", hidden=[65536, 65536])
    m["dim"] = 1_000_000
    m["preprocessing"] = {"name": "none", "dim": 1_000_000}


def _more_components(m):
    """K = 3 in a manifest consistent with itself, not with the stored arrays (K = 2)."""
    m["estimator"]["n_components"] = 3
    m["training"].update(n_components=3, usage=None, dead_components=[])


def _model_case(fn):
    return lambda d, name: _edit(d, name, fn)


# name: (build(d, name) -> model dir, command, words of the message)
MODEL_CASES = {
    "n_components 1e9": (_model_case(_est("n_components", 1e9)), "info",
                         ["damaged model directory: ", "estimator.n_components", "1000000000.0"]),
    "n_components int 10**9": (_model_case(_est("n_components", 10**9)), "info",
                               ["estimator.n_components", "[1, 1024]"]),
    "n_components infinity": (_model_case(_est("n_components", float("inf"))), "info",
                              ["estimator.n_components", "inf"]),
    "dim infinity": (_model_case(lambda m: m.__setitem__("dim", float("inf"))), "info",
                     ["dim must be an integer"]),
    "n_blocks 10**9": (_model_case(_est("n_blocks", 10**9)), "info",
                       ["estimator.n_blocks", "[1, 64]"]),
    "estimator a list": (_model_case(lambda m: m.__setitem__("estimator", [1, 2])), "info",
                         ["estimator must be an object"]),
    "deeply nested": (_raw_manifest(b"[" * 100_000 + b"]" * 100_000), "info",
                      ["manifest.json", "nested too deeply"]),
    "nested history": (_model_case(_nested), "info", ["history[0] must be an object"]),
    "manifest -> /dev/zero": (_link("manifest.json", "/dev/zero"), "info",
                              ["manifest.json", "symbolic link"]),
    "meta.json -> /dev/zero": (_link("state/meta.json", "/dev/zero"), "info",
                               ["meta.json", "symbolic link"]),
    "manifest not UTF-8": (_raw_manifest(b"\xff\xfe{}"), "info", ["not UTF-8"]),
    "manifest a list": (_raw_manifest(b"[1, 2]"), "info", ["must be a JSON object"]),
    "manifest truncated": (_raw_manifest(b'{"format_version": 1, "estim'), "info",
                           ["not valid JSON"]),
    "scale 0": (_model_case(_pre("scale", [0.0, 1.0])), "score",
                ["preprocessing", "scale[0] must be positive"]),
    "scale negative": (_model_case(_pre("scale", [1.0, -2.0])), "score",
                       ["scale[1] must be positive"]),
    "scale NaN": (_model_case(_pre("scale", [1.0, float("nan")])), "score",
                  ["scale[1] must be finite"]),
    "scale wrong length": (_model_case(_pre("scale", [1.0])), "score",
                           ["scale must be a list of 2 numbers"]),
    "mean a string": (_model_case(_pre("mean", "zero")), "score", ["mean must be a list"]),
    "preprocessing of another dim": (_model_case(_pre("dim", 3)), "score",
                                     ["mean must be a list of 3"]),
    "negative hidden size": (_model_case(_est("hidden", [4, -1])), "info",
                             ["estimator.hidden must be a list of 1 to 8 integers in [1, 65536]",
                              "got [4, -1]"]),
    "hidden too wide": (_model_case(_est("hidden", [10**6])), "info",
                        ["estimator.hidden", "65536"]),
    "format_version a string": (_model_case(lambda m: m.__setitem__("format_version", "1")),
                                "info", ["format_version '1' is unknown"]),
    "unknown field": (_model_case(lambda m: m.__setitem__("extra", 1)), "info",
                      ["extra is not a manifest field"]),
    "unknown parameter": (_model_case(_est("bogus", 1)), "info",
                          ["estimator.bogus is not a parameter"]),
    "seed 1e23": (_model_case(_est("seed", 10**23)), "sample",
                  ["estimator.seed", "4294967295"]),
    "flow unknown": (_model_case(_est("flow", "nope")), "info",
                     ["estimator.flow must be one of", "got 'nope'"]),
    "history entry a string": (_model_case(lambda m: m["history"].__setitem__(0, "x")),
                               "info", ["history[0] must be an object"]),
    "history loss null": (_model_case(lambda m: m["history"][-1].__setitem__("loss", None)),
                          "plot", ["history[", ".loss must be a number"]),
    "training score a string": (
        _model_case(lambda m: m["training"].__setitem__("score", "high")), "info",
        ["training.score must be a number"]),
    "classes an object": (_model_case(lambda m: m.__setitem__("classes", {"a": 1})), "info",
                          ["classes must be null or a list"]),
    "hidden larger than stored": (_model_case(_est("hidden", [5])), "score",
                                  ["state: array", "has shape (2, 4)", "the model needs (2, 5)"]),
    "more components than stored": (_model_case(_more_components), "score",
                                    ["state: array", "has shape (2, 4)",
                                     "the model needs (3, 4)"]),
    "too many parameters": (_model_case(_huge_architecture), "info",
                            ["parameters, more than the limit"]),
    "truncated checkpoint data": (_truncate_data, "score", ["damaged model directory: ",
                                                             "state: array",
                                                             "is missing from the checkpoint"]),
    "checkpoint missing": (_no_state, "info", ["checkpoint is missing"]),
    "non-finite parameters": (_nan_params, "score", ["prior_logits", "non-finite"]),
    "state a file": (_replace("state", b"not a folder"), "info",
                     ["damaged model directory: ", "state", "Not a directory"]),
    "manifest a folder": (_replace("manifest.json", None), "info",
                          ["manifest.json", "not a regular file"]),
    "flow a list": (_model_case(_est("flow", ["realnvp"])), "info",
                    ["estimator.flow must be one of", "got ['realnvp']"]),
    "batch_norm on a plain checkpoint": (_model_case(_est("batch_norm", True)), "info",
                                         ["state", "missing from the checkpoint"]),
    "restart beyond n_init": (_model_case(lambda m: m["training"].__setitem__("restart", 5)),
                              "info", ["training.restart must be an integer in [0, 0]"]),
    "more classes than components": (
        _model_case(lambda m: m.__setitem__("classes", [0, 1, 2])), "info",
        ["classes must be null or a list of at most 2 distinct", "got [0, 1, 2]"]),
    "preprocessing for pixels": (_model_case(_est("preprocess", "logit-pixels")), "score",
                                 ["preprocessing is 'standardize'"]),
    "link inside the checkpoint": (_link("state/_CHECKPOINT_METADATA", "/etc/hostname"),
                                   "info", ["_CHECKPOINT_METADATA", "symbolic link"]),
}


def _argv(command, model):
    return {"info": ["info", model], "score": ["score", model, "data.csv"],
            "sample": ["sample", model, "-n", "5", "--out", "s.csv"],
            "plot": ["plot", model, "--kind", "curves", "--out", "c.png"]}[command]


@pytest.mark.parametrize("case", list(MODEL_CASES))
def test_damaged_model_directory(work, case, monkeypatch):
    monkeypatch.chdir(work)
    build, command, words = MODEL_CASES[case]
    name = "m-" + case.replace(" ", "_").replace("/", "")
    build(work, name)
    before = _snapshot(work)
    rc, err, elapsed = _main(_argv(command, name))
    _check(rc, err, elapsed, 2, words)
    # the message names the damaged file: the manifest or the checkpoint folder
    assert any(f"damaged model directory: {name}/{part}: " in err
               for part in ("manifest.json", "state")), err
    assert _changes(before, _snapshot(work)) == set()


def test_manifest_size_cap(work, monkeypatch):
    monkeypatch.chdir(work)
    monkeypatch.setitem(modeldir.LIMITS, "manifest_bytes", 1000)
    before = _snapshot(work)
    _check(*_main(["info", "model"]), 2, ["manifest.json", "more than the limit of 1000"])
    assert _changes(before, _snapshot(work)) == set()


# -- things that could hang: one subprocess, killed if it does ----------------------------
_DRIVER = """
import contextlib, io, json, sys, time
import vmonf_jax.estimator  # the imports are paid before any clock starts
from vmonf_jax.cli import main
out = []
for argv in json.load(sys.stdin):
    err = io.StringIO()
    t0 = time.monotonic()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(argv)
    out.append([rc, err.getvalue(), time.monotonic() - t0])
json.dump(out, sys.stdout)
"""


def test_fifos_do_not_hang(work):
    fifos = {}
    for name, rel in (("fifo-manifest", "manifest.json"), ("fifo-meta", "state/meta.json"),
                      ("fifo-metadata", "state/_METADATA")):
        m = _copy(work, name)
        (m / rel).unlink()
        os.mkfifo(m / rel)
        fifos[name] = rel
    os.mkfifo(work / "fifo.csv")
    os.mkfifo(work / "fifo-model")  # the model directory itself: once, a loop without end
    argvs = [["info", n] for n in fifos] + [["score", "model", "fifo.csv"],
                                            ["info", "fifo-model"]]
    words = [["manifest.json", "not a regular file"], ["meta.json", "not a regular file"],
             ["_METADATA", "not a regular file"], ["fifo.csv", "not a regular file"],
             ["fifo-model", "not a VMoNF model directory (not a folder)"]]
    before = _snapshot(work)
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    r = subprocess.run([sys.executable, "-c", _DRIVER], cwd=work, env=env, timeout=120,
                       input=json.dumps(argvs), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for (rc, err, elapsed), w in zip(json.loads(r.stdout), words):
        _check(rc, err, elapsed, 2, w)
    assert _changes(before, _snapshot(work)) == set()


# -- data files ---------------------------------------------------------------------------
def _npy_claiming(rows):
    header = {"descr": "<f8", "fortran_order": False, "shape": (rows, 2)}
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + b"\0" * 64


def _write(name, content):
    def build(d):
        p = d / name
        if isinstance(content, bytes):
            p.write_bytes(content)
        elif isinstance(content, str):
            p.write_text(content)
        else:
            np.save(p, content)
        return name
    return build


def _npz_claiming(d):
    import zipfile

    with zipfile.ZipFile(d / "huge.npz", "w") as z:
        z.writestr("X.npy", _npy_claiming(10**12))
    return "huge.npz"


def _truncated_npy(d):
    buf = io.BytesIO()
    np.save(buf, np.ones((4, 2)))
    (d / "cut.npy").write_bytes(buf.getvalue()[:-8])
    return "cut.npy"


DATA_CASES = {
    "npy claiming 1e12 rows": (_write("huge.npy", _npy_claiming(10**12)),
                               ["huge.npy", "header claims shape (1000000000000, 2)"]),
    "npz claiming 1e12 rows": (_npz_claiming, ["huge.npz[X]", "header claims"]),
    "npy truncated": (_truncated_npy, ["cut.npy", "truncated"]),
    "npy object dtype": (_write("obj.npy", np.array([[1, "a"]], dtype=object)),
                         ["obj.npy", "array must be numeric, got dtype object"]),
    "csv 1e300": (_write("big.csv", "x,y\n1,2\n3,1e300\n"),
                  ["line 3, column 2", "outside the float32 range"]),
    "npy 1e300": (_write("big.npy", np.array([[1.0, 2.0], [3.0, 1e300]])),
                  ["row 1, column 1", "outside the float32 range"]),
    "csv 1e400": (_write("inf.csv", "x,y\n1,2\n3,1e400\n"),
                  ["inf.csv", "line 3, column 2", "non-finite value inf"]),
}


@pytest.mark.parametrize("case", list(DATA_CASES))
def test_bad_data_file(work, case, monkeypatch):
    monkeypatch.chdir(work)
    build, words = DATA_CASES[case]
    path = build(work)
    before = _snapshot(work)
    _check(*_main(["score", "model", path]), 2, words)
    assert _changes(before, _snapshot(work)) == set()


@pytest.mark.parametrize("argv,words", [
    (["sample", "model", "-n", "5", "--seed", "1e23", "--out", "o.csv"],
     ["--seed", "'1e23' is not an integer"]),
    (["sample", "model", "-n", "5", "--seed", str(2**32), "--out", "o.csv"],
     ["--seed", "[0, 4294967295]"]),
    (["sample", "model", "-n", "-3", "--out", "o.csv"], ["-n", "[1, 1000000]"]),
    (["sample", "model", "-n", str(10**12), "--out", "o.csv"], ["-n", "[1, 1000000]"]),
    (["fit", "data.csv", "--seed", "-1", "--out", "new"], ["--seed", "[0, 4294967295]"]),
    (["fit", "data.csv", "--blocks", "100", "--out", "new"], ["--blocks", "[1, 64]"]),
    (["fit", "data.csv", "--temperature-decay", "0", "--out", "new"],
     ["--temperature-decay", "in (0, 1]"]),
    (["fit", "data.csv", "--clip-norm", "nan", "--out", "new"], ["--clip-norm", "finite"]),
    (["fit", "data.csv", "--init", "warm", "--out", "new"], ["--init", "invalid choice"]),
])
def test_bounded_options(work, argv, words, monkeypatch):
    monkeypatch.chdir(work)
    before = _snapshot(work)
    rc, err, elapsed = _main(argv)
    assert rc == 2 and "Traceback" not in err and elapsed < LIMIT_S, err
    for w in words:
        assert w in err, (w, err)
    assert _changes(before, _snapshot(work)) == set()


# -- outputs ------------------------------------------------------------------------------
def _project(d):
    (d / "project").mkdir(exist_ok=True)
    (d / "project" / "main.py").write_text("print('mine')\n")


OUTPUT_CASES = {
    "predict over an existing file": (lambda d: (d / "old.csv").write_text("keep\n"),
                                      ["predict", "model", "data.csv", "--out", "old.csv"],
                                      ["old.csv", "already exists", "--overwrite"]),
    "score over its data file": (None, ["score", "model", "data.csv", "--out", "data.csv",
                                        "--overwrite"], ["data.csv", "is an input"]),
    "score through a link to its data": (
        lambda d: (d / "link.csv").symlink_to(d / "data.csv"),
        ["score", "model", "data.csv", "--out", "link.csv", "--overwrite"],
        ["link.csv", "is an input"]),
    "predict over a file of the model directory": (
        lambda d: (d / "model" / "x.csv").write_text("1\n"),
        ["predict", "model", "data.csv", "--out", "model/x.csv", "--overwrite"],
        ["is an input"]),
    "sample into the model directory": (
        None, ["sample", "model", "-n", "3", "--out", "model/new.csv"], ["is an input"]),
    "predict over a FIFO": (lambda d: os.mkfifo(d / "pipe.csv"),
                            ["predict", "model", "data.csv", "--out", "pipe.csv", "--overwrite"],
                            ["pipe.csv", "not a regular file"]),
    "fit over a project folder": (_project, ["fit", "data.csv", "--out", "project",
                                             "--overwrite"],
                                  ["project", "not a vmonf model directory", "main.py"]),
    "fit over a project folder, no --overwrite": (
        _project, ["fit", "data.csv", "--out", "project"], ["not a vmonf model directory"]),
    "fit over a file": (None, ["fit", "data.csv", "--out", "data.csv", "--overwrite"],
                        ["is a file"]),
    "fit over a link": (lambda d: (d / "mlink").symlink_to(d / "model"),
                        ["fit", "data.csv", "--out", "mlink", "--overwrite"],
                        ["symbolic link"]),
    "fit below a file": (None, ["fit", "data.csv", "--out", "data.csv/m"], ["not a folder"]),
    "fit with a foreign .partial": (
        lambda d: (d / "model.partial").mkdir() or (d / "model.partial" / "notes.txt")
        .write_text("mine"), ["fit", "data.csv", "--out", "model", "--overwrite"],
        ["model.partial", "not an interrupted vmonf fit"]),
}


@pytest.mark.parametrize("case", list(OUTPUT_CASES))
def test_refused_output(work, case, monkeypatch):
    build, argv, words = OUTPUT_CASES[case]
    sub = work / ("out-" + "".join(c for c in case if c.isalnum()))
    sub.mkdir()
    shutil.copy(work / "data.csv", sub)
    shutil.copytree(work / "model", sub / "model")
    monkeypatch.chdir(sub)
    if build:
        build(sub)
    before = _snapshot(work)
    _check(*_main(argv), 2, words)
    assert _changes(before, _snapshot(work)) == set()


def test_overwrite_keeps_mode_and_new_files_follow_umask(work, monkeypatch):
    monkeypatch.chdir(work)
    out = work / "kept.csv"
    out.write_text("old\n")
    out.chmod(0o640)
    before = _snapshot(work)
    _check(*_main(["predict", "model", "data.csv", "--out", "kept.csv", "--overwrite"]), 0, [])
    assert _changes(before, _snapshot(work)) == {"kept.csv"}
    assert out.read_text().startswith("cluster") and (out.stat().st_mode & 0o777) == 0o640
    old = os.umask(0o027)
    try:
        _check(*_main(["score", "model", "data.csv", "--out", "fresh.npy"]), 0, [])
        VMoNF.load(work / "model").save(work / "fresh-model")
    finally:
        os.umask(old)
    assert (work / "fresh.npy").stat().st_mode & 0o777 == 0o640
    assert (work / "fresh-model").stat().st_mode & 0o777 == 0o750


# -- saving: only model directories are replaced, and an interrupted swap is recovered -----
def test_save_refuses_the_current_folder(work, monkeypatch):
    folder = work / "cwd"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    monkeypatch.chdir(folder)
    model = VMoNF.load(work / "model")
    before = _snapshot(work)
    with pytest.raises(ValueError, match="not a vmonf model directory"):
        model.save(".")
    assert _changes(before, _snapshot(work)) == set()


def test_load_recovers_an_interrupted_swap(work, monkeypatch):
    """A crash between the two renames of a save: PATH is gone, the new model is under its
    temporary name; load (here through ``info``) puts it back."""
    monkeypatch.chdir(work)
    shutil.copytree(work / "model", work / ".swapped.vmonf-new-0123abcd")
    shutil.copytree(work / "model", work / ".swapped.vmonf-old-4567cdef")
    _check(*_main(["info", "swapped"]), 0, [])
    assert (work / "swapped" / "manifest.json").is_file()
    assert not (work / ".swapped.vmonf-new-0123abcd").exists()
    assert (work / ".swapped.vmonf-old-4567cdef").exists()  # never deleted unasked


def test_resave_replaces_only_the_model(work):
    path = work / "resaved"
    model = VMoNF.load(work / "model")
    model.save(path)
    (path / "manifest.json").chmod(0o600)
    before = _snapshot(work)
    model.save(path)
    changed = _changes(before, _snapshot(work))
    assert changed and all(c.startswith("resaved") for c in changed)
    assert sorted(os.listdir(path)) == ["manifest.json", "state"]


def _xla_error(text):
    return type("JaxRuntimeError", (RuntimeError,), {})(text)


@pytest.mark.parametrize("exc,status,words", [
    (MemoryError(), 2, ["too large", "MemoryError"]),
    (OverflowError("cannot convert float infinity to integer"), 2, ["too large"]),
    (_xla_error("RESOURCE_EXHAUSTED: Out of memory allocating 8e12 bytes.\ndetails"), 2,
     ["out of memory", "RESOURCE_EXHAUSTED"]),
    (_xla_error("INTERNAL: a bug\ndetails"), 1, ["internal error", "INTERNAL: a bug"]),
    (KeyError("x"), 1, ["internal error", "KeyError"]),
])
def test_errors_at_the_cli_boundary_are_one_line(work, monkeypatch, exc, status, words):
    """Exit 2 for an input too large for the machine, 1 for a bug; one line, no traceback."""
    def boom(args):
        raise exc

    monkeypatch.setattr(commands, "cmd_info", boom)
    _check(*_main(["info", "model"]), status, words)


# -- the CSV reader under random input ----------------------------------------------------
_cells = st.one_of(
    st.floats(-1e30, 1e30, allow_nan=False).map(repr),
    st.integers(-10**6, 10**6).map(str),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6),
    st.sampled_from(["", " ", "nan", "inf", "1e400", "1e300", '"1"', "\"", "\r", "x,y"]),
)


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.lists(_cells, min_size=1, max_size=4), min_size=0, max_size=6))
def test_csv_reader_returns_floats_or_a_data_error(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("csv") / "x.csv"
    path.write_text("\n".join(",".join(r) for r in rows), encoding="utf-8")
    try:
        table = vio.read_data(path)
    except vio.DataError as err:
        assert str(path) in str(err)
        return
    assert table.X.dtype == np.float64 and table.X.ndim == 2 and table.X.size
    assert np.all(np.isfinite(table.X)) and np.all(np.abs(table.X) <= FLOAT32_MAX)


@settings(max_examples=60, deadline=None)
@given(X=st.lists(st.lists(st.floats(-1e30, 1e30, allow_nan=False), min_size=3, max_size=3),
                  min_size=1, max_size=8))
def test_csv_reader_reads_numbers_exactly(tmp_path_factory, X):
    path = tmp_path_factory.mktemp("csv") / "x.csv"
    path.write_text("a,b,c\n" + "\n".join(",".join(map(repr, r)) for r in X) + "\n")
    np.testing.assert_array_equal(vio.read_data(path).X, np.array(X, np.float64))


class _ClosedPipe(io.StringIO):
    """A stdout whose reader has gone (``vmonf predict ... | head -1``)."""

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")


def test_a_reader_that_stops_early_is_not_an_error(work, monkeypatch):
    monkeypatch.chdir(work)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(_ClosedPipe()):
        rc = cli.main(["predict", "model", "data.csv"])
    assert rc == 0 and err.getvalue() == ""
