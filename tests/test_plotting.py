"""The shared figures module: tolerant curves, saving, clear errors; a core free of extras."""

import subprocess
import sys

import numpy as np
import pytest

from vmonf_jax import plotting


def test_curves_figure_skips_malformed_history_entries(tmp_path):
    history = [{"phase": "warm", "elbo": -3.0, "loglik": -2.5, "T": 1.0, "usage": [0.5, 0.5]},
               "not a dict",
               {"phase": "main", "elbo": "nan?", "loglik": None, "T": 0.9},
               {"phase": "main", "restart": 1, "elbo": -2.0, "loglik": -1.8, "T": 0.8,
                "usage": [0.4, 0.6]}]
    fig = plotting.curves_figure(history, 2, offset=1.0, title="t")
    elbo = fig.axes[0].lines[0].get_ydata()
    np.testing.assert_allclose(elbo, [-2.0, np.nan, -1.0])  # shifted by the offset
    labels = [line.get_label() for line in fig.axes[2].lines]
    assert not any(lb.startswith("component") for lb in labels)  # usage missing in an epoch
    assert len(labels) == 1  # the restart marker
    path = plotting.save_figure(fig, tmp_path / "deep" / "curves.svg")
    assert open(path).read(5) == "<?xml"  # the format follows the extension


def test_usage_curves_of_a_pruned_fit_end_where_components_were_pruned():
    history = [{"phase": "main", "T": 1.0, "usage": [0.5, 0.1, 0.4], "components": [0, 1, 2]},
               {"phase": "main", "T": 1.0, "usage": [0.55, 0.45], "components": [0, 2]}]
    lines = plotting.curves_figure(history, 3).axes[2].lines
    usage = {line.get_label(): line.get_ydata() for line in lines}
    np.testing.assert_allclose(usage["component 1"], [0.1, np.nan])
    np.testing.assert_allclose(usage["component 2"], [0.4, 0.45])
    history[1]["components"] = [0, 7]  # not a component of a K=3 fit: no usage panel
    assert not plotting.curves_figure(history, 3).axes[2].lines


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as if not installed
    with pytest.raises(ImportError, match=r"vmonf-jax\[experiments\]"):
        plotting.curves_figure([], 2)


def test_core_imports_none_of_the_experiments_extra():
    code = ("import sys\n"
            "from vmonf_jax import VMoNF, cli, cli_plot, flows, mixture, plotting, train\n"
            "from vmonf_jax.data import load_mnist, pinwheel\n"
            "print(sorted(m for m in ('matplotlib', 'mlxtend', 'tensorflow_datasets', 'flowjax')"
            " if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=300)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
