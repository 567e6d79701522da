"""Hostile inputs, second round: data files, extreme numbers, manifests within the schema
that would give inf/NaN, sizes checked before allocation, and messages that name the real
problem. In-process (``cli.main``), sharing one tiny model without training.
"""

import io
import json
import os
import resource
import shutil
import signal
import tracemalloc
import zipfile

import numpy as np
import pytest
from hostile_support import (
    TINY,
    TINY_ARGS,
    changes,
    check,
    data_folder,
    run_main,
    snapshot,
    untrained,
)

from vmonf_jax import VMoNF, estimator
from vmonf_jax.files import io as vio
from vmonf_jax.files import streams

pytestmark = pytest.mark.usefixtures("fast_compile", "no_disk_cache")
X = np.random.default_rng(0).normal(size=(40, 2))


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = data_folder(tmp_path_factory.mktemp("inputs"), X)
    untrained(X).save(d / "model")
    return d


# -- CSV ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text, words", [
    ("a,b\n1_000,2\n", ["line 2, column 1 ('a')", "'1_000' is not a number"]),
    ("a,b\n1,\uff12\n", ["line 2, column 2 ('b')", "is not a number"]),
    ("a,b\n1,2\n3\n", ["line 3 has 1 columns, expected 2"]),
])
def test_csv_numbers_are_ascii(tmp_path, text, words):
    (tmp_path / "x.csv").write_text(text, encoding="utf-8")
    with pytest.raises(vio.DataError) as err:
        vio.read_data(tmp_path / "x.csv")
    assert all(w in str(err.value) for w in words), err.value


def test_csv_line_endings_and_blank_labels(tmp_path):
    (tmp_path / "cr.csv").write_bytes(b"x,y\r1,2\r3,4\r")
    assert vio.read_data(tmp_path / "cr.csv").X.tolist() == [[1, 2], [3, 4]]
    (tmp_path / "labels.csv").write_text("label\n0\n\n1\n\n\n")  # blank cell; end ignored
    assert vio.read_labels(tmp_path / "labels.csv").labels.tolist() == [0, -1, 1]
    (tmp_path / "d.csv").write_text("x,y,l\n1,2,\n3,4,1\n")
    t = vio.read_data(tmp_path / "d.csv", label_column="l")
    assert t.X.tolist() == [[1, 2], [3, 4]] and t.labels.tolist() == [-1, 1]


def test_csv_memory_is_that_of_the_numbers(tmp_path):
    """Parsing streams rows into a flat array: the peak is a few times the parsed numbers
    (it was about 16 times the text, 30 times the numbers)."""
    rows = np.random.default_rng(1).normal(size=(50_000, 4))
    np.savetxt(tmp_path / "big.csv", rows, delimiter=",", fmt="%.6f")
    tracemalloc.start()
    try:
        got = vio.read_data(tmp_path / "big.csv").X
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got.shape == rows.shape and peak < 4 * got.nbytes, peak / got.nbytes


def test_compressed_npz_members_are_capped(tmp_path, monkeypatch):
    np.savez_compressed(tmp_path / "z.npz", a=np.zeros((100, 10)))
    monkeypatch.setattr(streams, "MAX_STREAM_BYTES", 4000)
    with pytest.raises(vio.DataError, match=r"z.npz\[a\]: a compressed member of 8128 bytes"):
        vio.read_data(tmp_path / "z.npz")
    with zipfile.ZipFile(tmp_path / "s.npz", "w") as z:  # stored: capped by the file's size
        z.writestr("a.npy", _npy(np.ones((3, 2))))
    assert vio.read_data(tmp_path / "s.npz").X.shape == (3, 2)


def _npy(a):
    f = io.BytesIO()
    np.save(f, a)
    return f.getvalue()


# -- numbers that float32 cannot carry ----------------------------------------------------
def test_rows_too_far_for_float32_are_refused(work, monkeypatch):
    monkeypatch.chdir(work)
    (work / "far.csv").write_text("x,y\n0.5,0.5\n1e20,0\n")
    before = snapshot(work)
    check(*run_main(["score", "model", "far.csv"]), 2,
          ["row 1: the model's result is not finite", "e+20", "float32"])
    assert changes(before, snapshot(work)) == set()


def _edited(work, name, edit):
    m = work / name
    shutil.copytree(work / "model", m)
    man = json.loads((m / "manifest.json").read_text())
    edit(man)
    (m / "manifest.json").write_text(json.dumps(man))
    return m


@pytest.mark.parametrize("edit, words", [
    (lambda m: m["preprocessing"].__setitem__("scale", [1e-300, 1.0]),
     ["scale[0] = 1e-300 is outside"]),
    (lambda m: m["preprocessing"].__setitem__("mean", [1e300, 0.0]),
     ["mean[0] = 1e+300 is outside the float32 range"]),
    (lambda m: m["training"].__setitem__("temperature", 1e-300),
     ["training.temperature = 1e-300 is outside"]),
])
def test_manifest_numbers_that_give_inf_or_nan(work, monkeypatch, edit, words):
    monkeypatch.chdir(work)
    name = f"m{abs(hash(words[0]))}"
    _edited(work, name, edit)
    before = snapshot(work)
    check(*run_main(["score", name, "data.csv"]), 2, ["damaged model directory: ", *words])
    assert changes(before, snapshot(work)) == set()


def test_state_link_is_not_followed(work, monkeypatch):
    monkeypatch.chdir(work)
    m = work / "linked"
    shutil.copytree(work / "model", m)
    shutil.move(m / "state", work / "elsewhere")
    (m / "state").symlink_to(work / "elsewhere")
    check(*run_main(["score", "linked", "data.csv"]), 2, ["linked/state", "symbolic link"])


def test_info_escapes_control_characters(work, monkeypatch, capsys):
    monkeypatch.chdir(work)
    _edited(work, "ansi", lambda m: m.__setitem__("library_version", "\x1b[2J\x1b]0;x\x07"))
    from vmonf_jax import cli

    assert cli.main(["info", "ansi"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\\x1b[2J" in out


# -- sample ----------------------------------------------------------------------------------
@pytest.mark.parametrize("component", [1.7, -0.9, "1", True, 2, -1])
def test_sample_component_is_an_integer_index(work, component):
    model = VMoNF.load(work / "model")
    with pytest.raises(ValueError, match=r"component must be an integer index in \[0, 2\)"):
        model.sample(3, component=component)


def test_sample_draws_each_component_only_for_its_rows(work, monkeypatch):
    """Memory and work of the points kept (it drew n points from every component)."""
    model = VMoNF.load(work / "model")
    drawn = []
    real = estimator._draw

    def draw(model_, params, state, n, key, component):
        drawn.append(n)
        return real(model_, params, state, n, key, component)

    monkeypatch.setattr(estimator, "_draw", draw)
    Xs, k = model.sample(3000, seed=1)
    assert Xs.shape == (3000, 2) and set(np.unique(k)) == {0, 1}
    assert len(drawn) == 2 and sum(drawn) <= 2 * 3000
    assert np.array_equal(model.sample(3000, seed=1)[0], Xs)  # same seed, same points
    Xc, kc = model.sample(5, component=np.int64(1))
    assert Xc.shape == (5, 2) and set(kc) == {1}


# -- sizes checked before allocation, and messages ----------------------------------------
def test_parameter_limit_is_checked_at_fit(work, monkeypatch):
    """Within every per-option limit, but 5e11 parameters: refused before anything is built
    (it deadlocked, deaf to Ctrl-C)."""
    monkeypatch.chdir(work)
    (work / "four.csv").write_text("x,y\n1,2\n3,4\n5,6\n7,8\n")
    with pytest.raises(ValueError, match="parameters, more than the limit of 1073741824"):
        VMoNF(**{**TINY, "hidden": (65536, 65536), "n_blocks": 64}).fit(np.ones((4, 2)))
    with pytest.raises(ValueError, match="n_init=100000000 restarts of .* parameters, more "):
        VMoNF(**{**TINY, "n_init": 10**8}).fit(np.ones((4, 2)))
    with pytest.raises(ValueError, match="validation fraction of 0.9 holds out 4"):
        VMoNF(**{**TINY, "val_fraction": 0.9}).fit(np.ones((4, 2)))
    before = snapshot(work)
    check(*run_main(["fit", "four.csv", "--out", "big", *TINY_ARGS, "--hidden", "65536,65536",
                     "--blocks", "64"]), 2, ["invalid settings", "parameters, more than"])
    check(*run_main(["fit", "four.csv", "--out", "big", *TINY_ARGS, "--val-fraction", "0.9"]),
          2, ["four.csv has 4 rows", "validation fraction of 0.9 holds out 4", "components"])
    assert changes(before, snapshot(work)) == set()


def test_save_on_a_full_disk_is_one_error_naming_the_model(work, tmp_path):
    model = VMoNF.load(work / "model")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1500, hard))  # no file over 1500 bytes
    try:
        with pytest.raises(OSError) as err:
            model.save(tmp_path / "m")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old)
    assert err.value.filename == str(tmp_path / "m") and "cannot save the model" in str(
        err.value)
    assert os.listdir(tmp_path) == []


def test_a_column_name_that_cannot_be_saved_is_refused_at_fit():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(X, columns=["a" * 2000, "b"])
    with pytest.raises(ValueError, match="a column name of 2000 characters, more than the "
                                         "limit of 1000"):
        VMoNF(**TINY).fit(df)


def test_non_numeric_data_frame_columns_are_named():
    """A data frame with text or categorical columns: the error names them all (the float
    conversion alone reports only a first bad value, without its column)."""
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": X[:, 0], "kind": ["x"] * len(X), "b": X[:, 1],
                       "grade": pd.Categorical(["lo", "hi"] * (len(X) // 2))})
    with pytest.raises(ValueError, match=r"X has non-numeric columns 'kind', 'grade': encode"):
        VMoNF(**TINY).fit(df)
    VMoNF(**TINY).fit(df[["a", "b"]].astype({"a": "float32"}))  # numeric frames fit


def test_a_damaged_checkpoint_is_one_exception_and_no_noise(work, capfd):
    """Orbax logged absl warnings and its event loops printed tracebacks, also later in the
    same process; now ``load`` raises one ValueError naming the folder, and that is all."""
    import gc

    m = work / "truncated"
    shutil.copytree(work / "model", m)
    for p in (m / "state").rglob("*"):
        if p.is_file() and p.parent.name == "d":
            p.write_bytes(p.read_bytes()[:10])
    capfd.readouterr()
    for _ in range(2):
        with pytest.raises(ValueError, match="damaged model directory: .*truncated/state"):
            VMoNF.load(m)
        gc.collect()
    VMoNF.load(work / "model")
    out, err = capfd.readouterr()
    assert err == "" and out == "", err


def test_a_state_folder_that_is_not_a_checkpoint_is_never_replaced(tmp_path):
    from vmonf_jax.files import checkpoint as ckpt

    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "thesis.tex").write_text("mine")
    before = snapshot(tmp_path)
    with pytest.raises(ValueError, match="state: not a vmonf training checkpoint"):
        ckpt.save(tmp_path, {"a": np.zeros(3)}, {})
    assert changes(before, snapshot(tmp_path)) == set()
