"""The prior over components (the mixture weights pi): one object per kind.

Each kind says, once, what the rest of the library asks of it: whether its logits are fixed
(uniform: zero, not parameters), trained by gradient (learned), or set from q(k|x) after
every main epoch (em, sparse: ``logits``), and whether it prunes (sparse: K is an upper
bound; ``train.prune`` removes light components by index). ``Mixture.prior`` holds one.
Importing this module loads no JAX (the parameter table reads the names).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Prior:
    """A prior over the K components.

    Attributes:
        name: the estimator's ``prior`` value.
        fixed: the logits stay at zero (pi uniform) and are not counted as parameters.
        trained: the logits train with the flows and the posterior network.
        prunes: K is an upper bound; components whose weight falls below the threshold are
            removed during and after training.
    """

    name: str
    fixed: bool = False
    trained: bool = False
    prunes: bool = False

    @property
    def from_posterior(self) -> bool:
        """Whether ``logits`` sets the weights from q(k|x) after each main epoch."""
        return type(self).logits is not Prior.logits

    def logits(self, model, params, x, temperature, alpha):
        """The logits set after a main epoch (only where ``from_posterior``)."""
        raise TypeError(f"the {self.name} prior is not set from q(k|x)")


@dataclass(frozen=True)
class EMPrior(Prior):
    """pi = mean_x q(k|x): the weights that maximise the ELBO for the current q."""

    def logits(self, model, params, x, temperature, alpha=None):
        """log mean_x q(k|x) (chunked over the rows of ``x``)."""
        import jax.numpy as jnp

        from vmonf_jax.chunked import mean_rows

        q = mean_rows(lambda c: model.posterior(params, c, temperature), x)
        return jnp.log(jnp.maximum(q, 1e-12)).astype(params["prior_logits"].dtype)


@dataclass(frozen=True)
class SparsePrior(Prior):
    """pi under a sparse Dirichlet(``alpha``) prior, as variational Bayesian mixtures set it.

    pi_k = exp(E[log pi_k]) / Z with E[log pi_k] = digamma(alpha + N_k) - digamma(K alpha +
    N), N_k = sum_x q(k|x): with ``alpha`` << 1 a component with few points gets a weight far
    below its share (digamma(a) ~ -1/a), so small components die and are pruned.
    """

    def logits(self, model, params, x, temperature, alpha):
        """log pi of the Dirichlet(``alpha``) posterior mean of log pi."""
        import jax

        from vmonf_jax.chunked import mean_rows

        counts = mean_rows(lambda c: model.posterior(params, c, temperature), x) * x.shape[0]
        return jax.nn.log_softmax(jax.scipy.special.digamma(alpha + counts)).astype(
            params["prior_logits"].dtype)


PRIORS = {p.name: p for p in (Prior("uniform", fixed=True), Prior("learned", trained=True),
                              EMPrior("em"), SparsePrior("sparse", prunes=True))}
"""Every prior by name (the estimator's ``prior`` choices)."""


def prior_named(prior) -> Prior:
    """The ``Prior`` of a name (or a ``Prior`` itself).

    Raises:
        ValueError: an unknown name.
    """
    if isinstance(prior, Prior):
        return prior
    if not isinstance(prior, str) or prior not in PRIORS:
        raise ValueError(f"unknown prior {prior!r}; choose one of {list(PRIORS)}")
    return PRIORS[prior]
