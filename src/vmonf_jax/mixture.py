"""The VMoNF mixture: K stacked flows, a posterior network q(k|x) with temperature, a prior.

    p(x)     = sum_k pi_k p_k(x)
    q(k|x)   = softmax(g(x) / T)
    ELBO(x)  = sum_k q(k|x) [log p_k(x) + log pi_k - log q(k|x)]      (paper eq. 31)
    log p(x) = logsumexp_k [log pi_k + log p_k(x)] >= ELBO(x)

Parameters are a dict: ``components`` (every leaf with a leading K axis, made by vmapping the
flow's init over K keys), ``posterior`` (Flax MLP parameters) and ``prior_logits`` (K,).
All K flows are evaluated by one ``jax.vmap``; there is no Python loop over components.
Flows with batch-norm also carry ``state`` (running statistics, leading K axis).
"""

from dataclasses import dataclass

import flax.linen as nn
import jax
import jax.numpy as jnp

from vmonf_jax.flows import Flow, make_flow
from vmonf_jax.nets import MLP

PRIORS = ("uniform", "learned", "em")


@dataclass(frozen=True)
class Mixture:
    """Static description of a VMoNF model (hashable: a valid static argument to ``jit``)."""

    dim: int
    n_components: int = 2
    flow_name: str = "realnvp"
    n_blocks: int = 8
    hidden: tuple[int, ...] = (8,)
    batch_norm: bool = False
    posterior_hidden: tuple[int, ...] = (16,)
    prior: str = "uniform"

    def __post_init__(self):
        if int(self.n_components) < 1:
            raise ValueError(f"n_components must be >= 1, got {self.n_components}")
        if self.prior not in PRIORS:
            raise ValueError(f"unknown prior {self.prior!r}; choose one of {list(PRIORS)}")
        if any(int(h) < 1 for h in self.posterior_hidden):
            raise ValueError(
                f"posterior_hidden sizes must be positive, got {self.posterior_hidden}")
        _ = self.flow  # validates the flow name, dim and sizes

    @property
    def flow(self) -> Flow:
        return make_flow(self.flow_name, self.dim, self.n_blocks, self.hidden, self.batch_norm)

    @property
    def _posterior_net(self):
        return MLP(tuple(self.posterior_hidden), self.n_components, activation=nn.tanh,
                   zero_last=False)

    def init(self, key, dtype=jnp.float32):
        """Parameters; ``(params, state)`` when the flows have batch-norm layers."""
        k_comp, k_post = jax.random.split(key)
        comp = jax.vmap(lambda k: self.flow.init(k, dtype))(
            jax.random.split(k_comp, self.n_components))
        post = self._posterior_net.init(k_post, jnp.zeros((1, self.dim), dtype))
        params = {
            "components": comp[0] if self.batch_norm else comp,
            "posterior": jax.tree.map(lambda a: a.astype(dtype), post),
            "prior_logits": jnp.zeros((self.n_components,), dtype),
        }
        return (params, comp[1]) if self.batch_norm else params

    # -- building blocks ------------------------------------------------------------------
    def component_log_prob(self, params, x, *, state=None, train=False):
        """log p_k(x) for every component, shape (n, K); with ``train`` also the new state."""
        comps = params["components"]
        if not self.batch_norm:
            return jax.vmap(self.flow.log_prob, in_axes=(0, None))(comps, x).T
        fn = lambda p, s: self.flow.log_prob(p, x, state=s, train=train)  # noqa: E731
        out = jax.vmap(fn)(comps, state)
        return (out[0].T, out[1]) if train else out.T

    def log_prior(self, params):
        """log pi, shape (K,)."""
        return jax.nn.log_softmax(params["prior_logits"])

    def log_posterior(self, params, x, temperature):
        """log q(k|x) = log_softmax(g(x) / T), shape (n, K)."""
        return jax.nn.log_softmax(self._posterior_net.apply(params["posterior"], x) / temperature)

    # -- public quantities ----------------------------------------------------------------
    def posterior(self, params, x, temperature=1.0):
        """q(k|x) at temperature T, shape (n, K)."""
        return jnp.exp(self.log_posterior(params, x, temperature))

    def joint(self, params, x, *, state=None):
        """log pi_k + log p_k(x), shape (n, K)."""
        return self.component_log_prob(params, x, state=state) + self.log_prior(params)

    def log_prob(self, params, x, *, state=None):
        """Exact log p(x) per row."""
        return jax.nn.logsumexp(self.joint(params, x, state=state), axis=-1)

    def responsibilities(self, params, x, *, state=None):
        """Exact posterior p(k|x), shape (n, K)."""
        return jax.nn.softmax(self.joint(params, x, state=state), axis=-1)

    def elbo(self, params, x, temperature=1.0, *, state=None):
        """Per-point ELBO (paper eq. 31) with q at temperature T."""
        return elbo_from_terms(self.joint(params, x, state=state),
                               self.log_posterior(params, x, temperature))

    def sample_component(self, params, key, n: int, component, *, state=None):
        """``n`` samples from component ``component`` (may be a traced integer)."""
        pick = lambda a: a[component]  # noqa: E731
        st = None if state is None else jax.tree.map(pick, state)
        return self.flow.sample(jax.tree.map(pick, params["components"]), key, n, state=st)

    def sample(self, params, key, n: int, *, state=None):
        """``n`` samples from the mixture and the component that drew each: ``(x, k)``.

        Draws k ~ pi, then n candidates from every component in one vmap and keeps row i of
        component k_i (K times the work of the draws kept, but one fused call).
        """
        k_cat, k_flow = jax.random.split(key)
        ks = jax.random.categorical(k_cat, self.log_prior(params), shape=(n,))
        keys = jax.random.split(k_flow, self.n_components)
        if state is None:
            xs = jax.vmap(lambda p, k: self.flow.sample(p, k, n))(params["components"], keys)
        else:
            xs = jax.vmap(lambda p, s, k: self.flow.sample(p, k, n, state=s))(
                params["components"], state, keys)
        return xs[ks, jnp.arange(n)], ks


def elbo_from_terms(joint, log_q):
    """sum_k q_k (joint_k - log q_k) for rows of (n, K) arrays; 0 * -inf terms count as 0."""
    q = jnp.exp(log_q)
    return jnp.sum(jnp.where(q > 0, q * (joint - log_q), 0.0), axis=-1)
