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
    elbo = fig.axes[0].lines[0].get_ydata()  # restart 0: the entries without a restart
    np.testing.assert_allclose(elbo, [-2.0, np.nan])  # shifted by the offset
    np.testing.assert_allclose(fig.axes[0].lines[2].get_ydata(), [-1.0])  # restart 1
    usage = fig.axes[2].lines
    assert len(usage) == 2  # restart 1's; restart 0 lacks usage in an epoch
    path = plotting.save_figure(fig, tmp_path / "deep" / "curves.svg")
    assert open(path).read(5) == "<?xml"  # the format follows the extension


def _restarts(n_init, epochs, warm=2):
    return [{"restart": r, "phase": "warm" if e < warm else "main", "epoch": e,
             "elbo": -3.0 + 0.01 * e + r, "loglik": -2.5 + 0.01 * e, "T": 0.98 ** e,
             "usage": [0.5, 0.5]}
            for r in range(n_init) for e in range(epochs)]


def test_restarts_share_one_epoch_axis_and_the_kept_one_is_bold():
    fig = plotting.curves_figure(_restarts(3, 60), 2, kept=1)
    for ax in fig.axes:
        assert ax.get_xlim() == (-0.5, 59.5)  # one restart's 60 epochs, not 3 x 60
        assert all(line.get_xdata().max() == 59 for line in ax.lines)
    elbo = [line for line in fig.axes[0].lines if line.get_color() == "C0"]
    assert len(elbo) == 3  # one ELBO curve per restart, overlaid
    widths = [line.get_linewidth() for line in elbo]
    alphas = [line.get_alpha() for line in elbo]
    assert widths[1] > max(widths[0], widths[2]) and alphas[1] > max(alphas[0], alphas[2])
    np.testing.assert_allclose(elbo[1].get_ydata()[0], -2.0)  # restart 1's own values
    assert "bold: kept restart" in fig.axes[0].get_xlabel()
    assert len(fig.axes[0].get_legend().get_texts()) == 2  # ELBO, log-lik: once each
    # without `kept`, every restart is drawn alike
    plain = plotting.curves_figure(_restarts(2, 10), 2).axes[1].lines
    assert len({(line.get_linewidth(), line.get_alpha()) for line in plain}) == 1


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
            "from vmonf_jax import VMoNF, cli, flows, plotting, train\n"
            "from vmonf_jax.cli import plot\n"
            "from vmonf_jax.model import mixture\n"
            "from vmonf_jax.data import load_mnist, pinwheel\n"
            "print(sorted(m for m in ('matplotlib', 'mlxtend', 'tensorflow_datasets', 'flowjax')"
            " if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=300)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
