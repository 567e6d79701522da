"""``VMoNF``: a scikit-learn style estimator over the functional core.

Data are preprocessed inside (standardised by default; the preprocessing is stored with the
model), so every method takes data in the user's units and log-densities are in those units.
Inputs are checked with scikit-learn's ``validate_data`` (its messages for sparse, complex,
empty and mis-shaped input, ``n_features_in_`` and ``feature_names_in_``), then for NaN,
infinity and float32's range with the row and column of the first bad value.

Example:
    >>> m = VMoNF(n_components=5, n_blocks=8, hidden=(8,), posterior_hidden=(3,), epochs=400,
    ...           batch_size=512).fit(X)
    >>> m.predict(X); m.score(X); Xs, ks = m.sample(1000)
"""

from dataclasses import replace
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin, DensityMixin, clone
from sklearn.utils.validation import (
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from vmonf_jax import __version__, mapped
from vmonf_jax.chunked import bucket
from vmonf_jax.hygiene import auto_base, warn_about
from vmonf_jax.inference import FittedModel
from vmonf_jax.persist import fitrecord, manifest, modeldir
from vmonf_jax.persist.settings import fit_config
from vmonf_jax.preprocess import make_preprocessor
from vmonf_jax.spec.parameters import estimator_init
from vmonf_jax.train import FitConfig, fit
from vmonf_jax.train.budget import Budget
from vmonf_jax.train.prune import dead_components, warn_dead
from vmonf_jax.validation import check_numeric_columns, check_rows, check_split, check_values

MANIFEST = modeldir.MANIFEST


@partial(jax.jit, static_argnums=(0, 3))
def _draw(model, params, state, n, key, component):
    return model.sample_component(params, key, n, component, state=state)


SAMPLE_CHUNK = 65536
"""Most points drawn from one component per compiled call (a power of two)."""


class VMoNF(ClusterMixin, DensityMixin, BaseEstimator):
    """Variational Mixture of Normalizing Flows (Pires & Figueiredo, 2020).

    Parameters: the rows of ``parameters.PARAMS`` (all keyword; they go to ``Mixture`` and
    ``FitConfig``); docs/api.md gives every default and why.
    Fitted attributes: ``params_``, ``state_``, ``model_``, ``config_``, ``preprocessor_``,
    ``n_components_`` (K; with ``prior="sparse"`` the components kept), ``usage_`` (mean
    p(k|x) over the training rows; components below 1/(10K) are named in a warning),
    ``classes_`` (label values of a semi-supervised ``y``, else None),
    ``labels_`` (the cluster of each training row, as ``predict``), ``temperature_`` (T of
    q(k|x) for the kept parameters), ``consistency_`` (the weight used, "auto" resolved),
    ``budget_`` (``train.budget.Budget``), ``base_`` (the flows' base, "auto" resolved),
    ``history_``, ``n_features_in_``, and
    ``feature_names_in_`` when ``X`` had string column names.
    """

    __init__ = estimator_init()  # every parameter of parameters.PARAMS, by keyword

    # -- configuration --------------------------------------------------------------------
    def _config(self, dim, n_components=None, base=None) -> FitConfig:
        """The ``FitConfig`` of these parameters.

        ``n_components``: K kept by a sparse fit; ``base``: what ``base="auto"`` resolved to.
        """
        return fit_config(self.get_params(), dim, n_components, base)

    def _encode_labels(self, X, y):
        """``(classes, codes)`` of a semi-supervised ``y``, or ``(None, None)``.

        ``y`` is read as labels only when some of its entries are -1, scikit-learn's mark of
        an unlabelled row; the other values map to 0..C-1 through the sorted ``classes``.
        Any other ``y`` is ignored, as clusterers ignore it (docs/api.md, "Labels").
        """
        if y is None or not np.any(np.asarray(y) == -1):
            return None, None
        y = column_or_1d(y, warn=True)
        check_consistent_length(X, y)
        unlabelled = y == -1
        known = y[~unlabelled]
        if known.dtype.kind == "f" and not np.all(np.isfinite(known)):
            raise ValueError("y holds NaN or infinity; mark unlabelled rows with -1")
        try:
            classes = np.unique(known)
        except TypeError as err:
            raise ValueError(f"the labels of y cannot be sorted (mixed types?): {err}") from None
        if len(classes) > self.n_components:
            raise ValueError(f"y has {len(classes)} distinct labels but only "
                             f"{self.n_components} components")
        if len(classes) == 0:
            return None, None
        codes = np.full(len(y), -1, np.int32)
        codes[~unlabelled] = np.searchsorted(classes, known)
        return classes, codes

    def _validated(self, X, *, reset):
        """Validate ``X`` into a checked float64 (n, d) array.

        With ``reset`` (at fit) the check runs on a clone of ``self``, which records
        ``n_features_in_``/``feature_names_in_``; otherwise on ``self``.

        Returns:
            ``(X, estimator)``: the array and the estimator it was checked against.
        """
        est = clone(self) if reset else self
        if mapped.feeder.is_mapped(X):  # checked in blocks, never read whole
            return mapped.validated(est, X, reset), est
        check_numeric_columns(X, "X")
        columns = getattr(X, "columns", None)  # a data frame's, to name a bad value's
        X = validate_data(est, X, reset=reset, dtype=np.float64, ensure_all_finite=False)
        check_values(X, "X", None if columns is None else [str(c) for c in columns])
        return X, est

    # -- fitting --------------------------------------------------------------------------
    def fit(self, X, y=None, *, checkpoint_dir=None, resume=False, checkpoint_seconds=30.0,
            feature_names=None):
        """Fit to ``X`` (n, d); ``y`` optional labels, -1 = unlabelled. Returns self.

        Args:
            X: the data, (n_samples, n_features).
            y: semi-supervision when some entries are -1 (unlabelled rows; the others are
                labels, mapped to components through ``classes_``); ignored otherwise, as
                scikit-learn's clusterers ignore ``y``.
            checkpoint_dir: a folder for training checkpoints (every 25 epochs, at least
                ``checkpoint_seconds`` apart, and on interrupt) and ``fit.json``, the record
                of these settings and a fingerprint of the data.
            resume: continue the fit in ``checkpoint_dir`` (from its last checkpoint, if
                any): a ValueError if the settings or data differ from the recorded ones.
            checkpoint_seconds: the least time between periodic checkpoints (>= 0).
            feature_names: the names of ``X``'s columns when ``X`` is an array (the CLI
                passes a CSV header's), as a data frame's columns give them: warnings name
                the columns by them, and they are kept as ``feature_names_in_``.

        Atomic: if fitting fails (bad input, a device error, ``NonFiniteLossError``, an
        interrupt), the estimator keeps every fitted attribute it had before (or stays
        unfitted); ``NonFiniteLossError`` carries the last good parameters instead.
        """
        if not (isinstance(checkpoint_seconds, (int, float)) and checkpoint_seconds >= 0):
            raise ValueError(f"checkpoint_seconds must be a number >= 0, got "
                             f"{checkpoint_seconds!r}")
        X, probe = self._validated(X, reset=True)  # standardised in float64, then cast
        names = manifest.fitted_names(getattr(probe, "feature_names_in_", None), feature_names,
                                      X.shape[1])  # as save stores them
        check_rows(X.shape[0], _n_components(self.n_components), "X")
        config = self._config(X.shape[1])  # parameters checked before the data are read
        check_split(X.shape[0], config.model.n_components, config.val_fraction, "X")
        classes, codes = self._encode_labels(X, y)
        stats = mapped.sample(X)  # X, or a sample of a memory-mapped X
        pre = make_preprocessor(self.preprocess, self.dequantize).fit(stats)
        warn_about(stats, self.preprocess, pre.dequantized, self.base,
                   None if names is None else names.tolist())
        base = auto_base(stats, self.preprocess, pre.dequantized) if self.base == "auto" else None
        if base is not None:  # "auto" resolved from the data
            config = self._config(X.shape[1], base=base)
        if checkpoint_dir is not None:
            settings = {k: v for k, v in self.get_params().items() if k != "verbose"}
            resume = fitrecord.start_or_resume(checkpoint_dir, settings, (X, codes), resume)
        elif resume:
            raise ValueError("resume=True needs the checkpoint_dir of the interrupted fit")
        Z = mapped.training_rows(pre, X)  # integers, pixels: at the midpoints; noise each step
        res = fit(jax.random.key(int(self.seed)), Z, config, labels=codes,
                  noise=pre.noise_width(),
                  checkpoint_dir=checkpoint_dir, resume=resume,
                  checkpoint_seconds=checkpoint_seconds, parallel=self.parallel,
                  mesh=self.devices)
        fitted = FittedModel(res.model, pre, res.params, res.state, res.temperature)
        labels, usage = mapped.assign(fitted, X)
        warn_dead(usage)
        self._set_fitted(model_=res.model, config_=replace(config, model=res.model),
                         preprocessor_=pre, usage_=usage,
                         classes_=classes, n_features_in_=X.shape[1], params_=res.params,
                         state_=res.state, history_=res.history, fit_score_=res.score,
                         best_restart_=res.restart, temperature_=res.temperature,
                         labels_=labels, consistency_=res.consistency,
                         budget_=res.budget, base_=base or self.base,
                         feature_names_in_=names)
        return self

    def _set_fitted(self, *, feature_names_in_=None, temperature_, usage_=None,
                    consistency_=None, budget_=None, **attrs):
        """Assign every fitted attribute at once (nothing can fail in between).

        ``feature_names_in_`` None removes the attribute (scikit-learn's convention for data
        without column names); ``usage_``, ``consistency_``, ``budget_`` None: not recorded;
        ``n_components_`` is the model's K.
        """
        self.__dict__.pop("feature_names_in_", None)
        if feature_names_in_ is not None:
            attrs["feature_names_in_"] = feature_names_in_
        self.__dict__.update(attrs, temperature_=float(temperature_), usage_=usage_,
                             consistency_=consistency_, budget_=budget_,
                             n_components_=attrs["model_"].n_components)

    # -- inference ------------------------------------------------------------------------
    def _prepared(self, X):
        """``(fitted model, X)``: the ``FittedModel`` and ``X`` validated against it."""
        check_is_fitted(self, "params_")
        fitted = FittedModel(self.model_, self.preprocessor_, self.params_, self.state_,
                             self.temperature_)
        return fitted, self._validated(X, reset=False)[0]

    def score_samples(self, X):
        """Exact log p(x) per row, in the units of ``X``."""
        fitted, X = self._prepared(X)
        return fitted.score_samples(X)

    def score(self, X, y=None):
        """Mean exact log-likelihood of ``X``."""
        return float(np.mean(self.score_samples(X)))

    def elbo_samples(self, X):
        """Per-row ELBO (paper eq. 31) with q(k|x) at ``temperature_``, in the units of ``X``.

        At most ``score_samples(X)``: the gap is KL(q(k|x) || p(k|x)).
        """
        fitted, X = self._prepared(X)
        return fitted.elbo_samples(X)

    def component_log_prob(self, X):
        """log p_k(x), shape (n, K), in the units of ``X``."""
        fitted, X = self._prepared(X)
        return fitted.component_log_prob(X)

    def predict_proba(self, X, posterior="exact"):
        """Posterior over components, shape (n, K).

        Args:
            X: the data.
            posterior: ``"exact"``: p(k|x) = pi_k p_k(x) / p(x) of the fitted mixture (the
                Bayes rule's posterior); ``"q"``: the trained recognition network q(k|x) at
                ``temperature_``, the temperature of the kept parameters.
        """
        fitted, X = self._prepared(X)
        return fitted.predict_proba(X, posterior)

    def predict(self, X, posterior="exact"):
        """Cluster (component) of each row: argmax_k of ``predict_proba(X, posterior)``."""
        fitted, X = self._prepared(X)
        return fitted.predict(X, posterior)

    def sample(self, n_samples=1, component=None, seed=None):
        """``(X, k)``: samples in the user's units and the component that drew each."""
        check_is_fitted(self, "params_")
        if not (manifest.is_int(n_samples) and 1 <= n_samples <= MAX_SAMPLES):
            raise ValueError(f"n_samples must be an integer in [1, {MAX_SAMPLES}], got "
                             f"{n_samples!r}")
        if seed is not None and not (manifest.is_int(seed)
                                     and 0 <= seed < manifest.LIMITS["seed"]):
            raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
        k_max = int(self.n_components_)
        if component is not None and not (manifest.is_int(component)
                                          and 0 <= component < k_max):
            raise ValueError(f"component must be an integer index in [0, {k_max}), got "
                             f"{component!r}")
        n = int(n_samples)
        k_cat, k_flow = jax.random.split(jax.random.key(int(self.seed if seed is None
                                                            else seed)))
        if component is None:  # inverse CDF: memory of n numbers, whatever K
            pi = np.exp(np.asarray(self.model_.log_prior(self.params_), np.float64))
            u = np.asarray(jax.random.uniform(k_cat, (n,)), np.float64)
            ks = np.minimum(np.searchsorted(np.cumsum(pi) / pi.sum(), u, side="right"),
                            k_max - 1)
        else:
            ks = np.full(n, int(component))
        z = np.empty((n, self.n_features_in_), np.float32)
        for c in np.unique(ks):  # each component draws only the rows it owns
            rows = np.flatnonzero(ks == c)
            for start in range(0, len(rows), SAMPLE_CHUNK):
                part = rows[start:start + SAMPLE_CHUNK]
                key = jax.random.fold_in(jax.random.fold_in(k_flow, int(c)), start)
                draw = _draw(self.model_, self.params_, self.state_,
                             bucket(len(part), SAMPLE_CHUNK), key, jnp.int32(c))
                z[part] = np.asarray(draw)[:len(part)]
        X = np.empty_like(z)  # back to the data's units chunk by chunk (float64 inside)
        for start in range(0, n, SAMPLE_CHUNK):
            X[start:start + SAMPLE_CHUNK] = self.preprocessor_.inverse(
                z[start:start + SAMPLE_CHUNK])
        if not np.all(np.isfinite(X)):
            raise ValueError("the samples are not finite in the data's units (float32 "
                             "overflow): the model's preprocessing scale is too large")
        return X, ks.astype(np.int64)

    def n_parameters(self) -> int:
        """Number of trained scalars (components, posterior and, if learned, the prior)."""
        check_is_fitted(self, "params_")
        return self.model_.n_parameters(self.params_)

    def bic(self, X):
        """Bayesian information criterion: -2 log L + p log n (lower is better)."""
        n = np.asarray(X).shape[0]
        return -2 * self.score(X) * n + self.n_parameters() * np.log(n)

    def aic(self, X):
        """Akaike information criterion: -2 log L + 2 p (lower is better)."""
        return -2 * self.score(X) * np.asarray(X).shape[0] + 2 * self.n_parameters()

    # -- persistence ----------------------------------------------------------------------
    def __getstate__(self):
        """Pickle without ``model_``/``config_``.

        Their flows hold JAX functions that do not pickle; ``__setstate__`` rebuilds both
        from the parameters.
        """
        state = dict(super().__getstate__())  # a copy: it may be self.__dict__ itself
        state.pop("model_", None)
        state.pop("config_", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "params_" in state:
            config = self._config(self.n_features_in_, self.n_components_,
                                  getattr(self, "base_", None))  # absent: pickled before "auto"
            self.__dict__.update(model_=config.model, config_=config)

    def save(self, path):
        """Write the model directory ``path`` (manifest + Orbax checkpoint) safely.

        ``path`` may be absent, an empty folder or a model directory (replaced; until the new
        model is in place the old one stays there or under a temporary name that ``load``
        recovers). Anything else is refused with a ValueError and left untouched.
        """
        check_is_fitted(self, "params_")
        last = self.history_[-1] if self.history_ else {}
        man = {
            "format_version": manifest.FORMAT_VERSION, "library_version": __version__,
            "estimator": self.get_params(), "dim": self.n_features_in_,
            "preprocessing": self.preprocessor_.to_dict(),
            "classes": None if self.classes_ is None else self.classes_.tolist(),
            "feature_names": (self.feature_names_in_.tolist()
                              if hasattr(self, "feature_names_in_") else None),
            "training": {"epochs_run": len(self.history_), "final": last,
                         "score": self.fit_score_, "restart": self.best_restart_,
                         "temperature": self.temperature_, "n_components": self.n_components_,
                         "usage": self.usage_, "dead_components": dead_components(self.usage_),
                         "consistency": self.consistency_, "base": self.base_,
                         "budget": None if self.budget_ is None else self.budget_._asdict()},
            "history": self.history_,
        }
        modeldir.save(path, {"params": self.params_, "state": self.state_}, man)

    @classmethod
    def load(cls, path):
        """Read a model directory written by ``save``.

        Raises:
            ValueError: not a model directory, or a damaged one (the message begins
                "damaged model directory: " and names the file and field).
        """
        return cls.load_with_manifest(path)[0]

    @classmethod
    def load_with_manifest(cls, path):
        """``(model, manifest)``: ``load`` and the checked manifest it read."""
        got = modeldir.load(path)
        m, man = cls(**got.settings), got.manifest
        names = man.get("feature_names")
        m._set_fitted(model_=got.config.model, config_=got.config, preprocessor_=got.preprocessor,
                      params_=got.params, state_=got.state,
                      usage_=_array(man["training"].get("usage")),
                      classes_=None if man["classes"] is None else np.asarray(man["classes"]),
                      n_features_in_=man["dim"], history_=man["history"],
                      fit_score_=man["training"]["score"],
                      best_restart_=man["training"]["restart"],
                      temperature_=got.temperature,
                      consistency_=man["training"].get("consistency"),
                      base_=man["training"].get("base", got.settings["base"]),
                      budget_=Budget(**man["training"]["budget"])
                      if man["training"].get("budget") else None,
                      feature_names_in_=None if names is None else np.asarray(names, object))
        return m, man


MAX_SAMPLES = 10_000_000
"""Most points one ``sample`` call draws (a documented limit)."""


def _array(v):
    return None if v is None else np.asarray(v, np.float64)


def _n_components(k):
    if not (manifest.is_int(k) and k >= 1):
        raise ValueError(f"n_components must be an integer >= 1, got {k!r}")
    return int(k)
