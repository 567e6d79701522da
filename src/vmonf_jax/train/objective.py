"""The training objective as parts: a step's batch, the loss terms and their weighted sum.

A step's loss is the mean of ``point_losses`` over its batch (the ELBO of unlabelled rows,
or ``marginal_losses``: the same value with the exact likelihood's gradient for the flows;
the supervised loss of labelled ones) plus weighted penalty terms, each a function
``(model, params, batch, temperature) -> scalar``: ``marginal_kl`` (``init="balanced"``'s
warm-up) and ``consistency_penalty`` (``train.consistency``). ``combine`` sums the terms a
recipe picks (``run.runner``) into the loss of ``step.make_epoch``.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from vmonf_jax.model.mixture import elbo_from_terms
from vmonf_jax.train.consistency import penalty


class Batch(NamedTuple):
    """The rows of one step.

    ``x`` (b, D) and ``y`` (b,) labels, -1 for unlabelled rows; ``x_nbrs`` (b0, k, D): the
    graph neighbours of the first b0 rows (the training rows of the batch), or None.
    """

    x: Any
    y: Any
    x_nbrs: Any = None


class Term(NamedTuple):
    """A penalty ``fn(model, params, batch, temperature) -> scalar`` and its weight.

    ``weight``: a number, or the name of a weight each epoch is given (one that changes with
    the phase).
    """

    fn: Callable
    weight: float | str


def labelled_losses(joint, log_q, y):
    """Per row with label ``y``: -log p_y(x) - log pi_y - log q(y|x).

    ``joint`` (n, K): log p_k(x) + log pi_k; ``log_q`` (n, K): log q(k|x). A labelled row
    trains its own component and the posterior (cross-entropy).
    """
    yc = jnp.maximum(y, 0)[:, None]
    return -(jnp.take_along_axis(joint, yc, -1) + jnp.take_along_axis(log_q, yc, -1))[:, 0]


def marginal_losses(joint, log_q):
    """Per row: -log p(x) + KL(q(.|x) || p(.|x)), the exact posterior held constant.

    Its value is -ELBO (ELBO = log p(x) - KL), and its gradient is the ELBO's for q(k|x), but
    the flows and weights get the exact log-likelihood's gradient: each row trains component k
    in proportion to p(k|x), as in EM, rather than to q(k|x). ``joint`` (n, K):
    log p_k(x) + log pi_k; ``log_q`` (n, K).
    """
    loglik = jax.nn.logsumexp(joint, -1)
    fixed = jax.lax.stop_gradient(joint)
    return -loglik - elbo_from_terms(fixed, log_q) + jax.nn.logsumexp(fixed, -1)


def point_losses(model, params, state, x, y, temperature, objective="elbo"):
    """Per-point loss of an unlabelled row (y = -1) under ``objective``, else ``labelled_losses``.

    ``objective``: ``"elbo"`` (the paper's: -ELBO(x)) or ``"marginal"``
    (``marginal_losses``); both have the value -ELBO(x). One function serves unsupervised,
    supervised and mixed batches, so one compile serves all. Aux: new batch-norm state and
    metrics (ELBO, exact log p, component usage).
    """
    comp, state = model.component_log_prob(params, x, state=state, train=True)
    joint = comp + model.log_prior(params)
    log_q = model.log_posterior(params, x, temperature)
    elbo = elbo_from_terms(joint, log_q)
    metrics = {"elbo": elbo.mean(), "loglik": jax.nn.logsumexp(joint, -1).mean(),
               "usage": jnp.exp(log_q).mean(0)}
    rows = marginal_losses(joint, log_q) if objective == "marginal" else -elbo
    return jnp.where(y >= 0, labelled_losses(joint, log_q, y), rows), (state, metrics)


def marginal_kl(model, params, batch, temperature):
    """KL(mean_x q(.|x) || pi) over the batch's rows: how far their usage is from the weights.

    The ELBO's KL(q(.|x) || pi) term averages to this plus the mutual information of x and
    k; weighting this part up keeps every component in use. Why ``init="balanced"`` needs
    it: from random parameters in high dimension one flow is ahead on every row by many
    nats, the exact posterior is one-hot on it everywhere, and the others never get data
    (MNIST: usage 1.00 by epoch 5).
    """
    x = batch.x
    log_q = model.log_posterior(params, x, temperature)
    log_use = jax.nn.logsumexp(log_q, 0) - jnp.log(x.shape[0])
    return jnp.sum(jnp.exp(log_use) * (log_use - model.log_prior(params)))


def consistency_penalty(model, params, batch, temperature):
    """``consistency.penalty`` of the batch's training rows and their graph neighbours."""
    x = batch.x[: batch.x_nbrs.shape[0]]
    return penalty(model, params, x, batch.x_nbrs, temperature)


def combine(*terms: Term, objective: str = "elbo"):
    """The loss ``(model, params, state, batch, T, weights) -> (loss, (state, metrics))``.

    The mean of ``point_losses`` (under ``objective``) plus each term times its weight, added
    in order; ``weights``: the named weights of this epoch.
    """

    def loss(model, params, state, batch, temperature, weights):
        losses, aux = point_losses(model, params, state, batch.x, batch.y, temperature,
                                   objective)
        total = losses.mean()
        for term in terms:
            weight = weights[term.weight] if isinstance(term.weight, str) else term.weight
            total = total + weight * term.fn(model, params, batch, temperature)
        return total, aux

    return loss
