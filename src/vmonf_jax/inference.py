"""A fitted model at work: preprocessing, then chunked densities and posteriors.

``FittedModel`` holds what prediction needs (the mixture, its parameters, the stored
preprocessing and the temperature of the kept parameters) and nothing of scikit-learn, so
``vmonf predict``/``score`` load it from a model directory without importing the estimator;
``VMoNF`` delegates its inference methods to it. Rows are evaluated in chunks
(``chunked.map_rows``), so any number fits in memory.

Example:
    >>> fitted, manifest = FittedModel.load("model")
    >>> fitted.score_samples(X); fitted.predict_proba(X).argmax(1)
"""

from dataclasses import dataclass
from functools import partial

import jax
import numpy as np

from vmonf_jax.chunked import map_rows
from vmonf_jax.persist import modeldir

POSTERIORS = ("exact", "q")
"""``posterior=`` of ``predict``/``predict_proba``: the mixture's p(k|x), or the trained q(k|x)."""


@partial(jax.jit, static_argnums=(0, 1))
def _rows(model, what, params, state, x, temperature):
    if what == "log_prob":
        return model.log_prob(params, x, state=state)
    if what == "components":
        return model.component_log_prob(params, x, state=state)
    if what == "exact":
        return model.responsibilities(params, x, state=state)
    if what == "elbo":
        return model.elbo(params, x, temperature, state=state)
    return model.posterior(params, x, temperature)


@dataclass(frozen=True)
class FittedModel:
    """A fitted mixture with its preprocessing; methods take data in the user's units.

    Data passed to the methods are checked float (n, dim) arrays (``validation.check_data``);
    the results are numpy arrays.

    Attributes:
        model: the ``Mixture``.
        preprocessor: the fitted ``Preprocessor``.
        params, state: the parameters and the flow state (no arrays without batch-norm).
        temperature: T of q(k|x) for these parameters.
    """

    model: object
    preprocessor: object
    params: dict
    state: object
    temperature: float

    @classmethod
    def load(cls, path) -> tuple["FittedModel", dict]:
        """``(fitted model, manifest)`` of the model directory ``path`` (``modeldir.load``)."""
        got = modeldir.load(path)
        return cls(got.config.model, got.preprocessor, got.params, got.state,
                   got.temperature), got.manifest

    @property
    def n_features_in_(self) -> int:
        """The number of data columns (as ``VMoNF.n_features_in_``)."""
        return self.model.dim

    def _map(self, what, X):
        """``(_rows(what) of preprocessed X, log_det)``, in chunks.

        Raises:
            ValueError: a row whose result is not finite (its values, once preprocessed,
                are too far from the training data for float32 arithmetic), named.
        """
        Z, log_det = self.preprocessor.transform(X)
        out = map_rows(lambda c: _rows(self.model, what, self.params, self.state, c,
                                       self.temperature), Z)
        bad = ~np.isfinite(np.asarray(out).reshape(len(Z), -1)).all(1) | ~np.isfinite(log_det)
        if bad.any():
            i = int(np.argmax(bad))
            z = np.abs(np.asarray(Z[i], np.float64)).max()
            raise ValueError(f"row {i}: the model's result is not finite ({int(bad.sum())} "
                             f"such rows): once preprocessed its largest value is {z:.3g}, "
                             "too far from the training data for float32 arithmetic")
        return out, log_det

    def score_samples(self, X) -> np.ndarray:
        """Exact log p(x) per row, in the units of ``X``."""
        lp, log_det = self._map("log_prob", X)
        return lp + log_det

    def elbo_samples(self, X) -> np.ndarray:
        """Per-row ELBO with q(k|x) at ``temperature``, in the units of ``X``.

        The preprocessing shifts it as it shifts log p(x): log p(x) - ELBO(x) is unchanged.
        """
        elbo, log_det = self._map("elbo", X)
        return elbo + log_det

    def component_log_prob(self, X) -> np.ndarray:
        """log p_k(x), shape (n, K), in the units of ``X``."""
        lp, log_det = self._map("components", X)
        return lp + log_det[:, None]

    def predict_proba(self, X, posterior="exact") -> np.ndarray:
        """Exact p(k|x) (``"exact"``) or q(k|x) at ``temperature`` (``"q"``), shape (n, K)."""
        if posterior not in POSTERIORS:
            raise ValueError(f"posterior must be one of {POSTERIORS}, got {posterior!r}")
        return self._map(posterior, X)[0]

    def predict(self, X, posterior="exact") -> np.ndarray:
        """Cluster (component) of each row: argmax_k of ``predict_proba(X, posterior)``."""
        return self.predict_proba(X, posterior).argmax(1)
