"""Spline flows (``flow="spline"``, ``"spline_ar"``): the layers inside and outside the bound,
identity at init, normalisation on a grid, the fused mixture, and the estimator and CLI.

The registry of tests/test_bijectors.py also checks both spline layers (round trip, log-det
against ``jacfwd``, jit vs eager).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vmonf_jax import VMoNF, flows
from vmonf_jax.model.bases import StudentTBase
from vmonf_jax.model.bijectors import SplineARLayer, SplineCoupling
from vmonf_jax.model.mixture import Mixture

pytestmark = pytest.mark.usefixtures("fast_compile")  # tiny, compile-bound shapes

RT_ATOL = 1e-4  # round trip, float32 (API.md)
LD_ATOL = 1e-3  # log-det vs slogdet(jacfwd), float32
BOUND = 2.0
LAYERS = {
    "coupling": SplineCoupling(4, (8,), parity=1, bins=5, bound=BOUND),
    "autoregressive": SplineARLayer(3, (8,), reverse=True, bins=5, bound=BOUND),
}


def _points(dim, seed=0):
    """Rows with coordinates inside [-BOUND, BOUND], outside it, and on both sides."""
    rng = np.random.default_rng(seed)
    inside = rng.uniform(-0.9 * BOUND, 0.9 * BOUND, (8, dim))
    outside = rng.choice([-1.0, 1.0], (8, dim)) * rng.uniform(1.1 * BOUND, 4 * BOUND, (8, dim))
    mixed = np.where(rng.random((8, dim)) < 0.5, inside, outside)
    return jnp.asarray(np.concatenate([inside, outside, mixed]), jnp.float32)


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_inside_and_outside_the_bound(name, perturb, jacobian_log_det):
    layer = LAYERS[name]
    params = perturb(1, layer.init(jax.random.key(0), jnp.float32), 0.3)
    bij = layer.bijector(params)
    x = _points(layer.dim)

    @jax.jit
    def run(x):
        z, ld_i = bij.inverse_and_log_det(x)
        x_back, ld_f = bij.forward_and_log_det(z)
        return (z, ld_i, x_back, ld_f, jacobian_log_det(bij.inverse, x),
                jacobian_log_det(bij.forward, z))

    z, ld_i, x_back, ld_f, jac_i, jac_f = map(np.asarray, run(x))
    assert np.abs(z - np.asarray(x)).max() > 0.1  # the draw is not the identity
    np.testing.assert_allclose(x_back, x, rtol=0, atol=RT_ATOL)
    np.testing.assert_allclose(ld_i, jac_i, rtol=0, atol=LD_ATOL)
    np.testing.assert_allclose(ld_f, jac_f, rtol=0, atol=LD_ATOL)
    np.testing.assert_allclose(ld_f, -ld_i, rtol=0, atol=LD_ATOL)
    # each spline is the identity outside the bound: those coordinates do not move
    out = np.abs(np.asarray(x)) > BOUND
    np.testing.assert_allclose(z[out], np.asarray(x)[out], rtol=0, atol=1e-6)
    assert np.all(np.abs(z[~out]) <= BOUND + 1e-5)  # and the interval onto itself


@pytest.mark.parametrize("name", ["spline", "spline_ar"])
def test_flow_is_the_identity_at_init(name):
    flow = flows.make_flow(name, 3, n_blocks=3, hidden=(8,), prelu=True, affine=True,
                           spline_bins=4)
    params, _ = flow.init(jax.random.key(0))
    z = _points(3)
    x, log_det = jax.jit(flow.forward)(params, z)
    np.testing.assert_allclose(x, z, rtol=0, atol=1e-5)
    np.testing.assert_allclose(log_det, 0.0, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name,base", [("spline", "normal"), ("spline_ar", "student_t")])
def test_2d_spline_density_integrates_to_one(name, base, perturb, grid_density):
    flow = flows.make_flow(name, 2, n_blocks=3, hidden=(8,), base=base, spline_bound=3.0)
    params = perturb(11, flow.init(jax.random.key(1))[0], 0.2)
    mass, density = grid_density(lambda x: flow.log_prob(params, x), n=641)  # spacing 0.05
    assert 0.5 < density.max() < 5.0  # far from the base, yet resolvable on this grid
    assert abs(mass - 1.0) < 0.01, mass


def test_spline_mixture_vmap_equals_per_component(perturb):
    model = Mixture(dim=3, n_components=3, flow="spline", n_blocks=2, hidden=(4,),
                    posterior_hidden=(4,), base="student_t", batch_norm=True, spline_bins=4)
    params, state = model.init(jax.random.key(2))
    params = perturb(3, params, 0.3)
    x = _points(3, seed=4)
    got = jax.jit(lambda p, s: model.component_log_prob(p, x, state=s))(params, state)
    one = jax.jit(lambda p, s: model.flow.log_prob(p, x, state=s))
    for k in range(3):
        p_k, s_k = jax.tree.map(lambda a, k=k: a[k], (params["components"], state))
        np.testing.assert_allclose(got[:, k], one(p_k, s_k), rtol=1e-5, atol=1e-5)
    assert np.ptp(np.asarray(got)[0]) > 1e-3  # the components differ


def test_spline_options_are_checked():
    with pytest.raises(ValueError, match="spline needs at least 2 features"):
        flows.spline(1)
    assert flows.spline_ar(1, n_blocks=2, hidden=(4,)).dim == 1
    with pytest.raises(ValueError, match="bins must be a positive integer"):
        flows.make_flow("spline", 2, spline_bins=0)
    with pytest.raises(ValueError, match="bound must be a finite number > 0"):
        flows.make_flow("spline_ar", 2, spline_bound=float("inf"))
    with pytest.raises(ValueError, match="unknown base 'cauchy'"):
        flows.make_flow("realnvp", 2, base="cauchy")


@pytest.mark.parametrize("kw,match", [
    ({"spline_bins": 1}, r"spline_bins must be an integer in \[2, 64\], got 1"),
    ({"spline_bins": 65}, r"spline_bins must be an integer in \[2, 64\]"),
    ({"spline_bound": 0.0}, r"spline_bound must be positive, got 0.0"),
    ({"spline_bound": float("nan")}, "spline_bound must be a finite number"),
    ({"base": "cauchy"}, r"base must be one of \['auto', 'normal', 'student_t'\]"),
])
def test_estimator_limits_name_the_parameter(kw, match):
    x = np.random.default_rng(0).normal(size=(40, 2))
    with pytest.raises(ValueError, match=match):
        VMoNF(flow="spline", verbose=False, **kw).fit(x)


def test_one_feature_needs_an_autoregressive_flow():
    x = np.random.default_rng(0).normal(size=(40, 1))
    with pytest.raises(ValueError, match="spline needs at least 2 features"):
        VMoNF(flow="spline", verbose=False).fit(x)


# --- estimator, model directory, CLI ------------------------------------------------------

TINY = ["--components", "2", "--blocks", "2", "--hidden", "4", "--posterior-hidden", "4",
        "--warm-epochs", "1", "--epochs", "3", "--batch-size", "32", "--n-init", "1",
        "--no-early-stopping", "--quiet"]


def _blobs(dim, n=80):
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(size=(n // 2, dim)) + 3.0, rng.normal(size=(n // 2, dim))])


def _same_model(a, b, x):
    assert a.get_params() == b.get_params()
    np.testing.assert_array_equal(a.score_samples(x), b.score_samples(x))
    np.testing.assert_array_equal(a.predict_proba(x), b.predict_proba(x))
    for u, v in zip(a.sample(20, seed=1), b.sample(20, seed=1)):
        np.testing.assert_array_equal(u, v)


@pytest.mark.usefixtures("no_disk_cache")
def test_cli_fits_a_spline_student_t_model_that_saves_loads_and_shows(tmp_path, capsys):
    from vmonf_jax.cli import main

    x = _blobs(2)
    np.savetxt(tmp_path / "d.csv", x, delimiter=",")
    model = tmp_path / "m"
    assert main(["fit", str(tmp_path / "d.csv"), "--out", str(model), *TINY, "--flow", "spline",
                 "--base", "student_t", "--spline-bins", "5", "--spline-bound", "3"]) == 0
    fitted = VMoNF.load(model)
    assert (fitted.flow, fitted.base, fitted.spline_bins, fitted.spline_bound) == (
        "spline", "student_t", 5, 3.0)
    raw_df = np.asarray(fitted.params_["components"][-1]["raw_df"])
    start = np.asarray(StudentTBase().init(jnp.float32)["raw_df"])
    assert raw_df.shape == (2,) and np.all(raw_df != start)  # one df per flow, trained
    fitted.save(tmp_path / "again")
    _same_model(VMoNF.load(tmp_path / "again"), fitted, x)
    capsys.readouterr()
    assert main(["info", str(model)]) == 0
    out = capsys.readouterr().out
    assert "spline components" in out and "5 bins on [-3, 3], student_t base" in out
    assert main(["plot", str(model), "--out", str(tmp_path / "regions.png")]) == 0
    assert (tmp_path / "regions.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_spline_ar_on_one_feature_fits_saves_and_loads(tmp_path, capsys):
    from vmonf_jax.cli import main

    x = _blobs(1)
    fitted = VMoNF(n_components=2, flow="spline_ar", n_blocks=2, hidden=(4,),
                   posterior_hidden=(4,), warm_epochs=1, epochs=3, batch_size=32, n_init=1,
                   early_stopping=False, verbose=False, spline_bins=4).fit(x)
    assert np.all(np.isfinite(fitted.score_samples(x)))
    fitted.save(tmp_path / "m")
    _same_model(VMoNF.load(tmp_path / "m"), fitted, x)
    capsys.readouterr()
    assert main(["info", str(tmp_path / "m")]) == 0
    assert "spline_ar components" in capsys.readouterr().out
    # not 2-D: the training curves
    assert main(["plot", str(tmp_path / "m"), "--out", str(tmp_path / "curves.png")]) == 0
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_a_fit_recorded_before_the_spline_options_resumes(tmp_path):
    """A checkpoint folder's fit.json without base/spline_* had normal bases, default splines."""
    import json

    from vmonf_jax.persist import fitrecord

    settings = {k: v for k, v in VMoNF().get_params().items() if k != "verbose"}
    data = (np.zeros((4, 2)), None)
    fitrecord.start_or_resume(tmp_path, settings, data, resume=False)
    record = json.loads((tmp_path / "fit.json").read_text())
    for k in ("base", "spline_bins", "spline_bound"):
        del record["estimator"][k]
    (tmp_path / "fit.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"these differ: base='auto' \(was 'normal'\)"):
        fitrecord.start_or_resume(tmp_path, settings, data, True)  # "auto" came later
    before = {**settings, "base": "normal"}
    assert fitrecord.start_or_resume(tmp_path, before, data, resume=True) is False
    with pytest.raises(ValueError, match=r"these differ: base='student_t' \(was 'normal'\)"):
        fitrecord.start_or_resume(tmp_path, {**settings, "base": "student_t"}, data, True)
