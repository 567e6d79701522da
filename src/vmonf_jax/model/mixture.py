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

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vmonf_jax.model.flows import Flow, make_flow
from vmonf_jax.model.nets import MLP
from vmonf_jax.model.priors import Prior, prior_named

FLOW_DEFAULTS = {"n_blocks": 8, "hidden": (8,), "batch_norm": False, "prelu": False,
                 "affine": False, "base": "normal", "spline_bins": 8, "spline_bound": 4.0}
"""Options of a flow given by name (as ``flows.make_flow`` takes them)."""


@dataclass(frozen=True, init=False)
class Mixture:
    """Static description of a VMoNF model (hashable: a valid static argument to ``jit``).

    Args:
        dim: data dimension.
        n_components: K.
        flow: the components' flow: a ``flows.Flow`` (used as is), a name of
            ``registry.FLOWS`` (built with the options below) or a mapping
            ``{"name": ..., **options}``. The flow is built once, here.
        n_blocks: option of a flow given by name (default 8 blocks).
        hidden: option of a flow given by name (default hidden (8,)).
        batch_norm: option of a flow given by name (default no batch-norm).
        prelu: option of a flow given by name (default no PReLU layers).
        affine: option of a flow given by name (default none): a last, location-scale
            layer, the one a Gaussian start sets (``train.gaussian_start``).
        base: option of a flow given by name: ``"normal"`` (default) or ``"student_t"``
            (``bases``).
        spline_bins: option of a spline flow given by name (default 8 bins).
        spline_bound: option of a spline flow given by name (default 4.0: [-4, 4]).
        posterior_hidden: hidden sizes of the posterior network q(k|x) (tanh MLP).
        prior: ``"uniform"``, ``"learned"``, ``"em"`` or ``"sparse"`` (K an upper bound:
            ``train.fit`` prunes components; docs/api.md, "Automatic K").
        flow_name: the older name of ``flow`` (a name only).

    Raises:
        ValueError: bad sizes, an unknown flow or prior, a flow of another ``dim``, or flow
            options next to a ``Flow`` object.

    Example:
        >>> Mixture(dim=2, n_components=5, flow="glow", n_blocks=4, prelu=True)
        >>> Mixture(dim=2, flow=flows.maf(2, n_blocks=3, hidden=(16,)))
    """

    dim: int
    n_components: int
    flow: Flow
    posterior_hidden: tuple[int, ...]
    prior: Prior

    def __init__(self, dim: int, n_components: int = 2, flow=None, *, n_blocks=None,
                 hidden=None, batch_norm=None, prelu=None, affine=None, base=None,
                 spline_bins=None, spline_bound=None, posterior_hidden=(16,),
                 prior="uniform", flow_name=None):
        if flow is not None and flow_name is not None:
            raise ValueError("give the flow as flow= or flow_name=, not both")
        options = {"n_blocks": n_blocks, "hidden": hidden, "batch_norm": batch_norm,
                   "prelu": prelu, "affine": affine, "base": base, "spline_bins": spline_bins,
                   "spline_bound": spline_bound}
        options = {k: v for k, v in options.items() if v is not None}
        flow = _build_flow(flow_name if flow is None else flow, int(dim), options)
        if int(n_components) < 1:
            raise ValueError(f"n_components must be >= 1, got {n_components}")
        prior = prior_named(prior)
        posterior_hidden = tuple(int(h) for h in posterior_hidden)
        if any(h < 1 for h in posterior_hidden):
            raise ValueError(f"posterior_hidden sizes must be positive, got {posterior_hidden}")
        for name, value in (("dim", int(dim)), ("n_components", int(n_components)),
                            ("flow", flow), ("posterior_hidden", posterior_hidden),
                            ("prior", prior)):
            object.__setattr__(self, name, value)

    @property
    def batch_norm(self) -> bool:
        """Whether the flows carry running statistics (a state with arrays)."""
        return self.flow.has_state

    @cached_property
    def _posterior_net(self):
        return MLP(self.posterior_hidden, self.n_components, activation=nn.tanh,
                   zero_last=False)

    def init(self, key, dtype=jnp.float32):
        """``(params, state)``; the state (stacked flow states) has arrays only with batch-norm."""
        k_comp, k_post = jax.random.split(key)
        comp, state = jax.vmap(lambda k: self.flow.init(k, dtype))(
            jax.random.split(k_comp, self.n_components))
        post = self._posterior_net.init(k_post, jnp.zeros((1, self.dim), dtype))
        params = {
            "components": comp,
            "posterior": jax.tree.map(lambda a: a.astype(dtype), post),
            "prior_logits": jnp.zeros((self.n_components,), dtype),
        }
        return params, state

    def init_state(self, dtype=jnp.float32):
        """The state of K fresh flows, stacked (no arrays without batch-norm layers)."""
        return jax.tree.map(lambda a: jnp.broadcast_to(a, (self.n_components, *a.shape)),
                            self.flow.init_state(dtype))

    def _state(self, state):
        """``state``, or the empty state of flows without batch-norm when it is None."""
        if state is not None:
            return state
        if self.batch_norm:
            raise ValueError("the flows have batch-norm layers: pass state=")
        return self.init_state()

    def n_parameters(self, params) -> int:
        """Trained scalars in ``params`` (arrays or ``jax.eval_shape`` structs).

        Counts the components and the posterior network, and the prior logits unless the
        prior is uniform (then they stay at zero).
        """
        params = dict(params)
        if self.prior.fixed:
            params.pop("prior_logits", None)
        return int(sum(np.prod(a.shape, dtype=np.int64) for a in jax.tree.leaves(params)))

    # -- building blocks ------------------------------------------------------------------
    def component_log_prob(self, params, x, *, state=None, train=False):
        """log p_k(x) for every component, shape (n, K); with ``train`` also the new state."""
        fn = lambda p, s: self.flow.log_prob(p, x, state=s, train=train)  # noqa: E731
        out = jax.vmap(fn)(params["components"], self._state(state))
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
        return self.flow.sample(jax.tree.map(pick, params["components"]), key, n,
                                state=jax.tree.map(pick, self._state(state)))

    def sample(self, params, key, n: int, *, state=None):
        """``n`` samples from the mixture and the component that drew each: ``(x, k)``.

        Draws k ~ pi, then for each component in turn (a ``lax.scan``) n candidates, keeping
        row i of component k_i: memory of two (n, dim) arrays whatever K (the estimator's
        ``sample`` draws each component only for its own rows).
        """
        k_cat, k_flow = jax.random.split(key)
        ks = jax.random.categorical(k_cat, self.log_prior(params), shape=(n,))
        keys = jax.random.split(k_flow, self.n_components)
        dtype = jax.tree.leaves(params["components"])[0].dtype

        def one(out, inputs):
            p, s, k, c = inputs
            x = self.flow.sample(p, k, n, state=s)
            return jnp.where((ks == c)[:, None], x, out), None

        out, _ = jax.lax.scan(one, jnp.zeros((n, self.dim), dtype),
                              (params["components"], self._state(state), keys,
                               jnp.arange(self.n_components)))
        return out, ks


def elbo_from_terms(joint, log_q):
    """sum_k q_k (joint_k - log q_k) for rows of (n, K) arrays; 0 * -inf terms count as 0."""
    q = jnp.exp(log_q)
    return jnp.sum(jnp.where(q > 0, q * (joint - log_q), 0.0), axis=-1)


def _build_flow(spec, dim: int, options: dict) -> Flow:
    """A ``Flow`` from a Flow object, a name (default "realnvp") or ``{"name": ..., ...}``."""
    if isinstance(spec, Flow):
        if options:
            raise ValueError(f"flow options {sorted(options)} apply to a flow given by name, "
                             "not to a Flow object")
        if spec.dim != dim:
            raise ValueError(f"the flow has dim {spec.dim}, the mixture dim {dim}")
        return spec
    if isinstance(spec, Mapping):
        spec = dict(spec)
        if "name" not in spec:
            raise ValueError(f"a flow spec mapping needs a 'name', got {sorted(spec)}")
        name = spec.pop("name")
        overlap = set(spec) & set(options)
        if overlap:
            raise ValueError(f"flow options {sorted(overlap)} given twice")
        options = {**options, **spec}
    else:
        name = "realnvp" if spec is None else spec
    unknown = set(options) - set(FLOW_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown flow options {sorted(unknown)}; accepted: "
                         f"{sorted(FLOW_DEFAULTS)}")
    return make_flow(name, dim, **{**FLOW_DEFAULTS, **options})
