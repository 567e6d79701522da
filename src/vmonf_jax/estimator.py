"""``VMoNF``: a scikit-learn style estimator over the functional core.

Data are preprocessed inside (standardised by default; the preprocessing is stored with the
model), so every method takes data in the user's units and log-densities are in those units.

Example:
    >>> m = VMoNF(n_components=5, n_blocks=8, hidden=(8,), posterior_hidden=(3,), epochs=400,
    ...           batch_size=512).fit(X)
    >>> m.predict(X); m.score(X); Xs, ks = m.sample(1000)
"""

import json
import os
import shutil
import tempfile
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin, DensityMixin
from sklearn.utils.validation import check_is_fitted

from vmonf_jax import __version__
from vmonf_jax import checkpoint as ckpt
from vmonf_jax.chunked import map_rows
from vmonf_jax.mixture import Mixture
from vmonf_jax.preprocess import make_preprocessor, preprocessor_from_dict
from vmonf_jax.train import FitConfig, NonFiniteLossError, fit
from vmonf_jax.validation import check_data

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


@partial(jax.jit, static_argnums=(0, 1))
def _rows(model, what, params, state, x, temperature):
    if what == "log_prob":
        return model.log_prob(params, x, state=state)
    if what == "components":
        return model.component_log_prob(params, x, state=state)
    if what == "exact":
        return model.responsibilities(params, x, state=state)
    return model.posterior(params, x, temperature)


@partial(jax.jit, static_argnums=(0, 3))
def _sample(model, params, state, n, key, component):
    if component is None:
        return model.sample(params, key, n, state=state)
    x = model.sample_component(params, key, n, component, state=state)
    return x, jnp.full((n,), component)


class VMoNF(ClusterMixin, DensityMixin, BaseEstimator):
    """Variational Mixture of Normalizing Flows (Pires & Figueiredo, 2020).

    Args mirror ``FitConfig`` and ``Mixture``; see docs/api.md for every default and why.
    Fitted attributes: ``params_``, ``state_``, ``model_``, ``config_``, ``preprocessor_``,
    ``classes_`` (label values seen in ``y``), ``history_``, ``n_features_in_``.
    """

    def __init__(self, *, n_components=2, flow="realnvp", n_blocks=8, hidden=(8,),
                 batch_norm=False, posterior_hidden=(16,), prior="uniform",
                 temperature_start=1.0, temperature_decay=0.98, temperature_min=0.05,
                 epochs=100, batch_size=256, learning_rate=1e-3, weight_decay=0.0,
                 decoupled_weight_decay=False, clip_norm=100.0, n_init=3, init="kmeans",
                 warm_epochs=200, semi_supervised="paper", pretrain_epochs=0,
                 val_fraction=0.0, patience=None, preprocess="standardize", seed=0,
                 verbose=True, parallel=None, devices=None):
        self.n_components = n_components
        self.flow = flow
        self.n_blocks = n_blocks
        self.hidden = hidden
        self.batch_norm = batch_norm
        self.posterior_hidden = posterior_hidden
        self.prior = prior
        self.temperature_start = temperature_start
        self.temperature_decay = temperature_decay
        self.temperature_min = temperature_min
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.decoupled_weight_decay = decoupled_weight_decay
        self.clip_norm = clip_norm
        self.n_init = n_init
        self.init = init
        self.warm_epochs = warm_epochs
        self.semi_supervised = semi_supervised
        self.pretrain_epochs = pretrain_epochs
        self.val_fraction = val_fraction
        self.patience = patience
        self.preprocess = preprocess
        self.seed = seed
        self.verbose = verbose
        self.parallel = parallel  # None | "data" | "components" (docs/distributed.md)
        self.devices = devices  # None = all devices when parallel is set, or a count

    # -- configuration --------------------------------------------------------------------
    def _config(self, dim) -> FitConfig:
        model = Mixture(dim=dim, n_components=int(self.n_components), flow_name=self.flow,
                        n_blocks=int(self.n_blocks), hidden=tuple(self.hidden),
                        batch_norm=bool(self.batch_norm),
                        posterior_hidden=tuple(self.posterior_hidden), prior=self.prior)
        return FitConfig(
            model=model, epochs=int(self.epochs), batch_size=int(self.batch_size),
            learning_rate=float(self.learning_rate), weight_decay=float(self.weight_decay),
            decoupled_weight_decay=bool(self.decoupled_weight_decay), clip_norm=self.clip_norm,
            temperature_start=float(self.temperature_start),
            temperature_decay=float(self.temperature_decay),
            temperature_min=float(self.temperature_min),
            semi_supervised=self.semi_supervised, pretrain_epochs=int(self.pretrain_epochs),
            n_init=int(self.n_init), init=self.init, warm_epochs=int(self.warm_epochs),
            val_fraction=float(self.val_fraction), patience=self.patience,
            verbose=bool(self.verbose))

    def _encode_labels(self, y, n):
        """Map user labels to 0..C-1 through ``classes_``; -1 stays unlabelled."""
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != n:
            raise ValueError(f"y must be 1-D with one label per row ({n}), got shape {y.shape}")
        known = y != -1
        classes = np.unique(y[known])
        if len(classes) > self.n_components:
            raise ValueError(f"y has {len(classes)} distinct labels but only "
                             f"{self.n_components} components")
        codes = np.full(n, -1, np.int32)
        codes[known] = np.searchsorted(classes, y[known])
        return classes, codes

    # -- fitting --------------------------------------------------------------------------
    def fit(self, X, y=None, *, checkpoint_dir=None, resume=False):
        """Fit to ``X`` (n, d); ``y`` optional labels, -1 = unlabelled. Returns self."""
        if int(self.n_components) < 1:
            raise ValueError(f"n_components must be >= 1, got {self.n_components}")
        X = check_data(X, min_rows=int(self.n_components), name="X")
        config = self._config(X.shape[1])
        pre = make_preprocessor(self.preprocess).fit(X)
        Z, _ = pre.transform(X, rng=np.random.default_rng(self.seed))
        classes, codes = (None, None) if y is None else self._encode_labels(y, X.shape[0])
        self.model_, self.config_, self.preprocessor_ = config.model, config, pre
        self.classes_ = classes
        self.n_features_in_ = X.shape[1]
        try:
            res = fit(jax.random.key(int(self.seed)), Z, config, labels=codes,
                      checkpoint_dir=checkpoint_dir, resume=resume,
                      parallel=self.parallel, mesh=self.devices)
        except NonFiniteLossError as err:
            self.params_, self.state_, self.history_ = err.params, err.state, err.history
            raise
        self.params_, self.state_, self.history_ = res.params, res.state, res.history
        self.fit_score_, self.best_restart_ = res.score, res.restart
        return self

    # -- inference ------------------------------------------------------------------------
    def _prepared(self, X):
        check_is_fitted(self, "params_")
        X = check_data(X, dim=self.n_features_in_, name="X")
        return self.preprocessor_.transform(X)

    def _map(self, what, Z):
        t = self.config_.final_temperature()
        return map_rows(lambda c: _rows(self.model_, what, self.params_, self.state_, c, t), Z)

    def score_samples(self, X):
        """Exact log p(x) per row, in the units of ``X``."""
        Z, log_det = self._prepared(X)
        return self._map("log_prob", Z) + log_det

    def score(self, X, y=None):
        """Mean exact log-likelihood of ``X``."""
        return float(np.mean(self.score_samples(X)))

    def component_log_prob(self, X):
        """log p_k(x), shape (n, K), in the units of ``X``."""
        Z, log_det = self._prepared(X)
        return self._map("components", Z) + log_det[:, None]

    def predict_proba(self, X, exact=False):
        """q(k|x) at the final temperature, or the exact p(k|x) with ``exact=True``."""
        Z, _ = self._prepared(X)
        return self._map("exact" if exact else "posterior", Z)

    def predict(self, X):
        """Cluster (component) of each row: argmax_k q(k|x)."""
        return self.predict_proba(X).argmax(1)

    def sample(self, n_samples=1, component=None, seed=None):
        """``(X, k)``: samples in the user's units and the component that drew each."""
        check_is_fitted(self, "params_")
        if int(n_samples) < 1:
            raise ValueError(f"n_samples must be positive, got {n_samples}")
        if component is not None and not 0 <= int(component) < self.n_components:
            raise ValueError(f"component must be in [0, {self.n_components}), got {component}")
        key = jax.random.key(int(self.seed if seed is None else seed))
        comp = None if component is None else int(component)
        z, k = _sample(self.model_, self.params_, self.state_, int(n_samples), key, comp)
        return self.preprocessor_.inverse(np.asarray(z)), np.asarray(k)

    def n_parameters(self) -> int:
        """Number of trained scalars (components, posterior and, if learned, the prior)."""
        check_is_fitted(self, "params_")
        p = dict(self.params_)
        if self.prior == "uniform":
            p.pop("prior_logits")
        return int(sum(a.size for a in jax.tree.leaves(p)))

    def bic(self, X):
        """Bayesian information criterion: -2 log L + p log n (lower is better)."""
        n = np.asarray(X).shape[0]
        return -2 * self.score(X) * n + self.n_parameters() * np.log(n)

    def aic(self, X):
        """Akaike information criterion: -2 log L + 2 p (lower is better)."""
        return -2 * self.score(X) * np.asarray(X).shape[0] + 2 * self.n_parameters()

    # -- persistence ----------------------------------------------------------------------
    def save(self, path):
        """Write the model directory (manifest + Orbax checkpoint) atomically."""
        check_is_fitted(self, "params_")
        path = os.path.abspath(path)
        parent = os.path.dirname(path)
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".tmp-" + os.path.basename(path), dir=parent)
        try:
            ckpt.save(tmp, {"params": self.params_, "state": self.state_}, {})
            last = self.history_[-1] if self.history_ else {}
            manifest = {
                "format_version": FORMAT_VERSION, "library_version": __version__,
                "estimator": self.get_params(), "dim": self.n_features_in_,
                "preprocessing": self.preprocessor_.to_dict(),
                "classes": None if self.classes_ is None else self.classes_.tolist(),
                "training": {"epochs_run": len(self.history_), "final": last,
                             "score": self.fit_score_, "restart": self.best_restart_},
                "history": self.history_,
            }
            with open(os.path.join(tmp, MANIFEST), "w") as f:
                json.dump(manifest, f, indent=1, default=_json_default)
            ckpt.replace_dir(tmp, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @classmethod
    def load(cls, path):
        """Read a model directory written by ``save``; a clear ValueError if it is not one."""
        path = os.path.abspath(path)
        man_path = os.path.join(path, MANIFEST)
        if not os.path.isfile(man_path):
            raise ValueError(f"{path} is not a VMoNF model directory (no {MANIFEST})")
        try:
            with open(man_path) as f:
                manifest = json.load(f)
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"{man_path} is damaged: {err}") from None
        if not isinstance(manifest, dict):
            raise ValueError(f"{man_path} is damaged: not a JSON object")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path}: unknown model format_version "
                             f"{manifest.get('format_version')!r} (this library reads "
                             f"{FORMAT_VERSION})")
        try:
            m = cls(**{k: tuple(v) if isinstance(v, list) else v  # JSON lost the tuples
                       for k, v in manifest["estimator"].items()})
            dim = int(manifest["dim"])
            config = m._config(dim)
            pre = preprocessor_from_dict(manifest["preprocessing"])
            classes, history = manifest["classes"], manifest["history"]
            score, restart = manifest["training"]["score"], manifest["training"]["restart"]
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{man_path} is damaged: {type(err).__name__}: {err}") from None
        params, state = config.model.init(jax.random.key(0)), None
        if config.model.batch_norm:
            params, state = params
        try:
            tree, _ = ckpt.restore(path, {"params": params, "state": state})
        except FileNotFoundError as err:
            raise ValueError(f"{path} is damaged: {err}") from None
        m.model_, m.config_, m.preprocessor_ = config.model, config, pre
        m.params_, m.state_ = tree["params"], tree["state"]
        m.classes_ = None if classes is None else np.asarray(classes)
        m.n_features_in_, m.history_ = dim, history
        m.fit_score_, m.best_restart_ = score, restart
        return m


def _json_default(o):
    if isinstance(o, np.generic | np.ndarray):
        return o.tolist()
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"cannot serialise {type(o).__name__}")
