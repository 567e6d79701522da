"""Test-set metrics of a fitted ``VMoNF`` and the baselines it is compared with.

Every density is reported in nats of the data as the user gave them: models are fitted in the
estimator's preprocessed space (the same transform; the Gaussian mixtures on one
dequantisation draw from the seed) and the preprocessing log-determinant is added back,
exactly as ``VMoNF.score_samples`` does.

Baselines (all fitted on the same training split, scored on the same test split):

* ``gmm_same_k``: ``sklearn.mixture.GaussianMixture`` with the mixture's K.
* ``gmm_matched_params``: a Gaussian mixture whose parameter count is closest to the VMoNF's,
  with K capped (``gmm_k_cap``: at most 50 and at most one component per 20 training points).
* ``kmeans``: ``sklearn.cluster.KMeans`` with the mixture's K (clustering only).
* ``single_flow``: a VMoNF with one component whose flow is widened (same number of blocks,
  wider hidden layers) until its parameter count is about the mixture's total; the same
  recipe (epochs, warm-up epochs as plain maximum-likelihood epochs), one restart.

Example:
    >>> test = heldout_metrics(model, X_test, y_test)
    >>> base = run_baselines(model, X_train, X_test, y_test)
"""

import time
from functools import partial

import jax
import numpy as np
from sklearn.base import clone
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture

from vmonf_jax.metrics import bits_per_dim, clustering_scores
from vmonf_jax.persist.settings import fit_config

GMM_K_CAP = 50
"""Largest K tried for the parameter-matched Gaussian mixture."""


# -- VMoNF on the test split --------------------------------------------------------------
def predicted_labels(model, X) -> np.ndarray:
    """``predict(X)`` mapped through ``classes_`` when the model saw labels, else components."""
    pred = model.predict(X)
    classes = getattr(model, "classes_", None)
    if classes is None:
        return pred
    # Components beyond the labelled classes have no class: give them labels no class has.
    extra = np.arange(len(classes), model.n_components_) + np.max(classes) + 1
    return np.concatenate([classes, extra])[pred]


def heldout_metrics(model, X, y=None, *, pixels: bool = False) -> dict:
    """The ``test`` block of metrics.json for a fitted ``VMoNF``.

    Keys: ``loglik`` and ``elbo`` (means, nats), ``elbo_gap`` (= loglik - elbo, >= 0),
    ``acc``/``ari``/``nmi``, ``usage`` (mean p(k|x) per component) and ``n_components``
    (K; with the sparse prior the components kept). ``acc`` is the accuracy after the best
    one-to-one matching of components to classes, except when the model was fitted with
    labels: then it is plain accuracy of the predictions mapped through ``classes_``. With
    ``pixels``, also ``bits_per_dim``.
    """
    loglik = float(np.mean(model.score_samples(X)))
    elbo = float(np.mean(model.elbo_samples(X)))
    proba = model.predict_proba(X)
    out = {"loglik": loglik, "elbo": elbo, "elbo_gap": loglik - elbo}
    if y is not None:
        y = np.asarray(y)
        pred = predicted_labels(model, X)
        out.update(clustering_scores(y, pred))
        if getattr(model, "classes_", None) is not None:
            out["acc"] = float(np.mean(pred == y))
    else:
        out.update(acc=None, ari=None, nmi=None)
    out["usage"] = [float(u) for u in proba.mean(0)]
    out["n_components"] = int(model.n_components_)
    if pixels:
        out["bits_per_dim"] = bits_per_dim(loglik, np.asarray(X).shape[1])
    return out


# -- parameter counts ---------------------------------------------------------------------
def count_parameters(model, dim: int) -> int:
    """Trained scalars of an unfitted ``VMoNF`` on ``dim`` features (no computation, only
    shapes); equals ``n_parameters()`` after fitting."""
    mix = fit_config(model.get_params(), int(dim)).model
    return mix.n_parameters(jax.eval_shape(mix.init, jax.random.key(0))[0])


def gmm_parameter_count(k: int, dim: int, covariance_type: str = "full") -> int:
    """Free parameters of a K-component Gaussian mixture (as ``GaussianMixture._n_parameters``)."""
    cov = {"full": dim * (dim + 1) // 2, "diag": dim, "spherical": 1}[covariance_type]
    return int(k * (cov + dim) + k - 1)


def gmm_k_cap(n_train: int, cap: int = GMM_K_CAP) -> int:
    """Largest K worth fitting: ``cap``, and at least 20 training points per component."""
    return int(max(1, min(cap, n_train // 20)))


def matched_gmm_k(n_parameters: int, dim: int, covariance_type: str, k_max: int) -> int:
    """The K in [1, k_max] whose Gaussian mixture has the parameter count closest to
    ``n_parameters``."""
    ks = np.arange(1, k_max + 1)
    counts = np.array([gmm_parameter_count(k, dim, covariance_type) for k in ks])
    return int(ks[np.argmin(np.abs(counts - n_parameters))])


def single_flow_like(model, dim: int, n_parameters: int | None = None):
    """A one-component ``VMoNF`` with about ``n_parameters`` trained scalars (default: those
    of ``model``), same flow type, blocks and training recipe, hidden layers widened.

    The posterior network of a one-component model is irrelevant (q = 1), so it is shrunk to
    one unit, and restarts (which pick among clusterings) are dropped: ``n_init=1``. The
    width search is a bisection over the common hidden width.
    """
    target = count_parameters(model, dim) if n_parameters is None else int(n_parameters)
    depth = max(1, len(tuple(model.hidden)))

    def candidate(width):
        return clone(model).set_params(n_components=1, hidden=(int(width),) * depth,
                                       posterior_hidden=(1,), n_init=1)

    lo, hi = 1, 1
    while count_parameters(candidate(hi), dim) < target and hi < 2**16:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if count_parameters(candidate(mid), dim) < target:
            lo = mid
        else:
            hi = mid
    best = min((lo, hi), key=lambda w: abs(count_parameters(candidate(w), dim) - target))
    return candidate(best)


# -- baselines ----------------------------------------------------------------------------
def _density_block(loglik_rows, dim, pixels, n_parameters, seconds, **extra):
    loglik = float(np.mean(loglik_rows))
    out = {"loglik": loglik, "n_parameters": int(n_parameters), "wall_s": float(seconds), **extra}
    if pixels:
        out["bits_per_dim"] = bits_per_dim(loglik, dim)
    return out


def gmm_baseline(Z_train, Z_test, log_det_test, y_test, k, *, covariance_type="full", seed=0,
                 pixels=False) -> dict:
    """Fit a Gaussian mixture in the preprocessed space; score and cluster the test split."""
    t0 = time.perf_counter()
    gmm = GaussianMixture(k, covariance_type=covariance_type, n_init=1, random_state=seed,
                          reg_covar=1e-6, max_iter=500).fit(np.asarray(Z_train, np.float64))
    rows = gmm.score_samples(np.asarray(Z_test, np.float64)) + log_det_test
    seconds = time.perf_counter() - t0
    dim = Z_train.shape[1]
    out = _density_block(rows, dim, pixels, gmm_parameter_count(k, dim, covariance_type),
                         seconds, n_components=int(k), covariance_type=covariance_type)
    if y_test is not None:
        out.update(clustering_scores(np.asarray(y_test), gmm.predict(np.asarray(Z_test,
                                                                               np.float64))))
    return out


def kmeans_baseline(F_train, F_test, y_test, k, *, seed=0) -> dict:
    """k-means (10 restarts) fitted on training features, clusters of the test features."""
    t0 = time.perf_counter()
    km = KMeans(k, n_init=10, random_state=seed).fit(np.asarray(F_train, np.float64))
    pred = km.predict(np.asarray(F_test, np.float64))
    out = {"n_components": int(k), "wall_s": time.perf_counter() - t0}
    if y_test is not None:
        out.update(clustering_scores(np.asarray(y_test), pred))
    return out


def single_flow_baseline(model, X_train, X_test, *, pixels=False) -> dict:
    """Fit a one-component VMoNF of about the mixture's parameter count; test log-likelihood."""
    dim = np.asarray(X_train).shape[1]
    flow = single_flow_like(model, dim, model.n_parameters())
    t0 = time.perf_counter()
    flow.fit(X_train)
    seconds = time.perf_counter() - t0
    rows = flow.score_samples(X_test)
    return _density_block(rows, dim, pixels, flow.n_parameters(), seconds,
                          n_blocks=int(flow.n_blocks), hidden=list(flow.hidden))


def run_baselines(model, X_train, X_test, y_test=None, *, seed=0, covariance_type="full",
                  kmeans_features="preprocessed", single_flow=True, gmm_sweep=()) -> dict:
    """Every baseline of metrics.json for a fitted ``VMoNF`` (see the module docstring).

    Args:
        model: the fitted VMoNF (its preprocessing is reused; its K and parameter count set
            the baselines' sizes).
        X_train, X_test: the splits in the user's units; y_test: true classes or None.
        seed: seed of every baseline (and of the training dequantisation, as in ``fit``).
        covariance_type: of the Gaussian mixtures ("diag" for images).
        kmeans_features: "preprocessed" (the model's input space) or "raw" (``X`` itself,
            scaled to [0, 1] for pixels).
        single_flow: fit the single-flow baseline (the costly one).
        gmm_sweep: extra Ks (at most the cap) whose Gaussian-mixture test log-likelihood
            is added as ``gmm_matched_params["loglik_by_k"]`` (e.g. (5, 10, 20, 50) in 2-D).
    """
    pre = model.preprocessor_
    pixels = pre.name == "logit-pixels"
    Z_train, _ = pre.transform(X_train, rng=np.random.default_rng(model.seed))
    Z_test, ld_test = pre.transform(X_test)
    k, dim = int(model.n_components_), Z_train.shape[1]
    k_max = gmm_k_cap(len(Z_train))
    k_matched = matched_gmm_k(model.n_parameters(), dim, covariance_type, k_max)
    gmm = partial(gmm_baseline, Z_train, Z_test, ld_test, y_test,
                  covariance_type=covariance_type, seed=seed, pixels=pixels)
    out = {"gmm_same_k": gmm(k), "gmm_matched_params": gmm(k_matched)}
    out["gmm_matched_params"]["k_cap"] = k_max
    if kmeans_features == "raw":
        scale = 255.0 if pixels else 1.0
        F_train, F_test = np.asarray(X_train) / scale, np.asarray(X_test) / scale
    else:
        F_train, F_test = Z_train, Z_test
    out["kmeans"] = kmeans_baseline(F_train, F_test, y_test, k, seed=seed)
    out["kmeans"]["features"] = kmeans_features
    out["single_flow"] = (single_flow_baseline(model, X_train, X_test, pixels=pixels)
                          if single_flow else {"skipped": True})
    if gmm_sweep:
        out["gmm_matched_params"]["loglik_by_k"] = {
            str(kk): gmm(int(kk))["loglik"] for kk in gmm_sweep if kk <= k_max}
    return out
