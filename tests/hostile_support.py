"""Helpers shared by the hostile-input tests (``test_hostile*.py``): a tiny model without
training, running ``vmonf_jax.cli.main`` in-process, and snapshots of a folder."""

import contextlib
import io
import os
import time

import jax
import numpy as np

from vmonf_jax import VMoNF, cli
from vmonf_jax.preprocess import make_preprocessor

TINY = {"n_components": 2, "n_blocks": 2, "hidden": (4,), "posterior_hidden": (4,),
        "epochs": 2, "warm_epochs": 1, "batch_size": 16, "n_init": 1, "verbose": False}
TINY_ARGS = ["-k", "2", "--blocks", "2", "--hidden", "4", "--posterior-hidden", "4",
             "--warm-epochs", "1", "--n-init", "1", "--batch-size", "16", "-q"]
"""``TINY`` as ``vmonf fit`` options (without ``--epochs``)."""
LIMIT_S = 20  # per in-process case: generous for 2 busy cores, far from a hang


def data_folder(d, X):
    """``d`` with ``data.csv`` (header ``x,y``) holding ``X``; returns ``d``."""
    np.savetxt(d / "data.csv", X, delimiter=",", header="x,y", comments="", fmt="%.6f")
    return d


def untrained(X, seed=0, shift=0.0):
    """A tiny estimator with initial parameters and a two-epoch history, as a fit leaves it.

    These tests are about files, not training, so no epoch is compiled or run. ``shift``
    moves the preprocessing's mean and the prior logits together, so two such models are
    told apart by either (a reader that mixes them is caught).
    """
    est = VMoNF(**TINY)
    config = est._config(X.shape[1])
    params, state = config.model.init(jax.random.key(seed))
    params = dict(params, prior_logits=params["prior_logits"] + shift)
    history = [{"restart": 0, "phase": "main", "epoch": i, "T": 1.0, "loss": 2.0 - i,
                "elbo": i - 2.0, "loglik": i - 1.9, "usage": [0.5, 0.5]} for i in range(2)]
    est._set_fitted(model_=config.model, config_=config,
                    preprocessor_=make_preprocessor("standardize").fit(X + shift),
                    classes_=None, n_features_in_=X.shape[1], params_=params, state_=state,
                    history_=history, fit_score_=-1.0, best_restart_=0, base_="normal",
                    temperature_=config.final_temperature())
    return est


def snapshot(root):
    """``{relative path: (mode, size, mtime)}`` of everything under ``root``."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            st_ = os.lstat(p)
            out[os.path.relpath(p, root)] = (st_.st_mode, st_.st_size, st_.st_mtime_ns)
    return out


def changes(before, after):
    """Paths whose entry differs between two snapshots."""
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


def run_main(argv):
    """``(status, stderr, seconds)`` of ``cli.main(argv)`` in this process."""
    err, out = io.StringIO(), io.StringIO()
    t0 = time.monotonic()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        rc = cli.main([str(a) for a in argv])
    return rc, err.getvalue(), time.monotonic() - t0


def check(rc, err, elapsed, status, words):
    """The status, no traceback, in time; a failure is one ``error:`` line with ``words``."""
    assert rc == status, err
    assert "Traceback" not in err and elapsed < LIMIT_S, (elapsed, err)
    if status:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "error:" in lines[0], err
    for w in words:
        assert w in err, (w, err)
