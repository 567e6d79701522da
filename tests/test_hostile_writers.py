"""Hostile situations, second round: writers. Nothing the user did not name is changed.

Inputs read from stdin, checkpoint and ``.partial`` folders holding other files, ``save``
after ``set_params``, a save killed (``kill -9``) at every step, readers racing a writer,
and a second ``fit`` while one runs. Processes that are killed or race run as subprocesses
with timeouts; the rest runs in-process.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

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

from vmonf_jax import VMoNF
from vmonf_jax.cli import runtime
from vmonf_jax.persist import fitrecord

pytestmark = pytest.mark.usefixtures("fast_compile", "no_disk_cache")
SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
ENV = {**os.environ, "JAX_PLATFORMS": "cpu", "VMONF_NO_CACHE": "1",
       "PYTHONPATH": os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)}
X = np.random.default_rng(0).normal(size=(40, 2))


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A data file and two tiny models, A and B (told apart by mean and prior together)."""
    d = data_folder(tmp_path_factory.mktemp("writers"), X)
    untrained(X).save(d / "A")
    untrained(X, seed=1, shift=5.0).save(d / "B")
    return d


def _which(path):
    """"A" or "B": the model at ``path``, checking that its parts come from one model."""
    m = VMoNF.load(path)
    by_mean = "B" if m.preprocessor_.mean[0] > 2.5 else "A"
    by_params = "B" if float(m.params_["prior_logits"][0]) > 2.5 else "A"
    assert by_mean == by_params, "a reader mixed two models"
    return by_mean


def _python(code, cwd, timeout=120, **kw):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=ENV,
                          timeout=timeout, capture_output=True, text=True, **kw)


# -- inputs are never outputs --------------------------------------------------------------
def test_stdin_is_an_input(work, tmp_path):
    """``score MODEL - --out DATA --overwrite < DATA`` would replace the data being read."""
    shutil.copy(work / "data.csv", tmp_path / "data.csv")
    before = (tmp_path / "data.csv").read_bytes()
    with open(tmp_path / "data.csv", "rb") as stdin:
        r = subprocess.run([sys.executable, "-m", "vmonf_jax.cli", "score", str(work / "A"),
                            "-", "--out", "data.csv", "--overwrite"], cwd=tmp_path, env=ENV,
                           stdin=stdin, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "data.csv: is an input of this command" in r.stderr and "stdin" in r.stderr
    assert (tmp_path / "data.csv").read_bytes() == before


# -- checkpoint folders hold only a fit's own files ------------------------------------------
def _record(folder):
    """A checkpoint folder as a fit leaves it before its first checkpoint."""
    fitrecord.start_or_resume(str(folder), {"seed": 0}, (X,), resume=False)


@pytest.mark.parametrize("fill, words", [
    (lambda d: (d / "notes.txt").write_text("mine"), ["notes.txt", "no vmonf fit writes"]),
    (lambda d: ((d / "state").mkdir(), (d / "state" / "thesis.tex").write_text("mine")),
     ["state", "not a vmonf training checkpoint"]),
    (_record, ["already holds a fit", "resume"]),
])
def test_fit_never_clears_a_checkpoint_dir(tmp_path, fill, words):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    fill(folder)
    before = snapshot(tmp_path)
    with pytest.raises(ValueError) as err:
        VMoNF(**TINY).fit(X, checkpoint_dir=folder)
    assert all(w in str(err.value) for w in words), err.value
    assert changes(before, snapshot(tmp_path)) == set()


def test_resume_refuses_a_partial_folder_with_other_files(work, tmp_path, monkeypatch):
    """``--overwrite`` refused to delete such a folder; ``--resume`` deleted its files."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(work / "data.csv", tmp_path)
    _record(tmp_path / "m.partial")
    (tmp_path / "m.partial" / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    for mode in ("--resume", "--overwrite"):
        check(*run_main(["fit", "data.csv", "--out", "m", mode, *TINY_ARGS]), 2,
              ["m.partial", "notes.txt"])
    assert changes(before, snapshot(tmp_path)) == set()


# -- save writes only what load accepts ---------------------------------------------------
@pytest.mark.parametrize("change", [{"n_blocks": 3}, {"hidden": (5,)}, {"flow": "maf"},
                                    {"preprocess": "none"}, {"n_components": 3}])
def test_save_after_set_params_keeps_the_good_model(work, tmp_path, change):
    shutil.copytree(work / "A", tmp_path / "good")
    model = VMoNF.load(tmp_path / "good").set_params(**change)
    before = snapshot(tmp_path)
    with pytest.raises(ValueError, match="cannot save this model: .*fit again before saving"):
        model.save(tmp_path / "good")
    assert changes(before, snapshot(tmp_path)) == set()
    assert _which(tmp_path / "good") == "A"


# -- kill -9 at every step of a save --------------------------------------------------------
_KILLED_SAVE = """
    import os, shutil, signal, sys
    from vmonf_jax import VMoNF
    step = int(sys.argv[1])
    def step_of(a, b=""):  # the steps of VMoNF.save("target"), by the names they touch
        if b.endswith("/state") and ".target.vmonf-new-" in b:
            return 1  # the checkpoint into the new folder
        if ".target.vmonf-old-" in b:
            return 2  # the old model aside
        if b.endswith("/target"):
            return 3  # the new model into place
        return 4 if ".target.vmonf-old-" in a else 0  # the old copy deleted
    def dies(real):
        def call(a, b="", *rest, **k):
            if step_of(str(a), str(b)) == step:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(a, b, *rest, **k) if b != "" else real(a, *rest, **k)
        return call
    model = VMoNF.load("B")
    os.rename, shutil.rmtree = dies(os.rename), dies(shutil.rmtree)
    model.save(os.path.abspath("target"))
"""


def test_kill_9_at_every_step_of_a_save(work, tmp_path, monkeypatch):
    """Renames: the checkpoint into the new folder (1), the old model aside (2), the new
    model into place (3); then the old copy is deleted (4). After a kill before each, and
    ``target`` loads as the old model (A) or the new one (B), never mixed or
    missing; after a kill between the two renames (3) the new one is recovered."""
    steps = (1, 2, 3, 4)
    for s in steps:
        shutil.copytree(work / "A", tmp_path / f"s{s}" / "target")
        shutil.copytree(work / "B", tmp_path / f"s{s}" / "B")
    procs = {s: subprocess.Popen([sys.executable, "-c", textwrap.dedent(_KILLED_SAVE),
                                  str(s)], cwd=tmp_path / f"s{s}", env=ENV,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for s in steps}
    want = {1: "A", 2: "A", 3: "B", 4: "B"}
    for s, p in procs.items():
        out, err = p.communicate(timeout=240)
        assert p.returncode == -signal.SIGKILL, (s, err)
        monkeypatch.chdir(tmp_path / f"s{s}")
        check(*run_main(["info", "target"]), 0, [])
        assert _which("target") == want[s], s
        assert sorted(os.listdir("target")) == ["manifest.json", "state"]


# -- readers racing a writer ---------------------------------------------------------------
_WRITER = """
    import sys, time
    from vmonf_jax import VMoNF
    models = [VMoNF.load("A"), VMoNF.load("B")]
    print("ready", flush=True)
    end, i = time.monotonic() + float(sys.argv[1]), 0
    while time.monotonic() < end:
        models[i % 2].save("shared")
        i += 1
    print(i, flush=True)
"""


def test_a_reader_never_mixes_two_models(work, tmp_path):
    """A writer swaps A and B into ``shared`` without pause while this process loads it:
    every load sees one whole model, and the writer's temporary folders are never taken."""
    for name in ("A", "B"):
        shutil.copytree(work / name, tmp_path / name)
    shutil.copytree(work / "A", tmp_path / "shared")
    writer = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_WRITER), "10"],
                              cwd=tmp_path, env=ENV, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "ready", writer.stderr.read()
        seen, t_end = [], time.monotonic() + 8
        while time.monotonic() < t_end and writer.poll() is None:
            seen.append(_which(tmp_path / "shared"))
        out, err = writer.communicate(timeout=120)
    finally:
        writer.kill()
    assert writer.returncode == 0, err
    assert int(out.split()[-1]) >= 4 and len(seen) >= 10, (out, len(seen))
    assert set(seen) <= {"A", "B"}
    assert sorted(os.listdir(tmp_path)) == ["A", "B", "shared"]


# -- one fit at a time, and a full disk ---------------------------------------------------
_FULL_DISK = """
    import resource, signal, sys
    from vmonf_jax.cli import main
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1500, 1500))  # no file over 1500 bytes
    sys.exit(main(sys.argv[1:]))
"""


def test_a_running_fit_is_left_alone_and_a_full_disk_is_one_line(work, tmp_path,
                                                                 monkeypatch):
    """While a fit runs, a second ``fit`` of the same MODEL_DIR (plain, --overwrite or
    --resume) is refused and readers say it is running; SIGTERM still saves its checkpoint.
    Meanwhile a fit whose files cannot be written ends with one line and leaves nothing."""
    shutil.copy(work / "data.csv", tmp_path)
    first = subprocess.Popen([sys.executable, "-m", "vmonf_jax.cli", "fit", "data.csv", "--out",
                              "m", "--epochs", "100000", "--checkpoint-seconds", "0",
                              "--no-early-stopping", *TINY_ARGS], cwd=tmp_path, env=ENV,
                             stderr=subprocess.PIPE, text=True)
    full = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_FULL_DISK), "fit",
                             "data.csv", "--out", "full", "--epochs", "1",
                             "--no-early-stopping", *TINY_ARGS],
                            cwd=tmp_path, env=ENV, stderr=subprocess.PIPE, text=True)
    try:
        t_end = time.monotonic() + 180
        while not (tmp_path / "m.partial" / "state").is_dir():
            assert time.monotonic() < t_end and first.poll() is None, first.stderr.read()
            time.sleep(0.5)
        monkeypatch.chdir(tmp_path)
        for mode in ([], ["--overwrite"], ["--resume"]):
            check(*run_main(["fit", "data.csv", "--out", "m", "--epochs", "3", *TINY_ARGS,
                             *mode]), 2, ["another vmonf fit of it is running"])
        check(*run_main(["info", "m"]), 2, ["m: a vmonf fit of it is still running"])
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=120) == 130
        assert "checkpoint saved" in first.stderr.read()
        assert full.wait(timeout=240) == 2
        err = full.stderr.read()
        assert err.count("\n") == 1 and "cannot save the model" in err and "full" in err, err
        assert sorted(os.listdir(tmp_path)) == ["data.csv", "m.partial"]
    finally:
        first.kill()
        full.kill()


# -- the compilation cache is trusted only when private -----------------------------------
def test_the_compilation_cache_must_be_private(tmp_path, monkeypatch):
    monkeypatch.delenv("VMONF_NO_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # ignored, as XDG says
    path = runtime.cache_dir()
    assert path == str(tmp_path / "home" / ".cache" / "vmonf-jax" / "jax")
    os.makedirs(os.path.dirname(os.path.dirname(path)))
    assert runtime.untrusted(path) is None  # created 0700
    assert all(os.stat(p).st_mode & 0o777 == 0o700 for p in (path, os.path.dirname(path)))
    os.chmod(path, 0o777)
    assert "writable by others (mode 777)" in runtime.untrusted(path)
    os.chmod(path, 0o700)
    if os.getuid() == 0:  # only root can give a folder away
        os.chown(os.path.dirname(path), 12345, -1)
        assert "owned by another user (uid 12345)" in runtime.untrusted(path)
        os.chown(os.path.dirname(path), 0, -1)
    os.rmdir(path)
    os.symlink(tmp_path, path)
    assert "not a folder (a link" in runtime.untrusted(path)


def test_fit_overwrite_killed_between_renames_is_recovered(work, tmp_path, monkeypatch):
    """``fit --overwrite`` killed between its two renames leaves MODEL_DIR missing, the new
    model under its temporary name and MODEL_DIR.partial beside them: the next command
    recovers the new model (it said "training has not finished" instead)."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(work / "B", tmp_path / ".m.vmonf-new-0123abcd")
    shutil.copytree(work / "A", tmp_path / ".m.vmonf-old-4567cdef")
    _record(tmp_path / "m.partial")
    check(*run_main(["info", "m"]), 0, [])
    assert _which("m") == "B"
    assert json.loads((tmp_path / "m" / "manifest.json").read_text())["dim"] == 2
