"""Merging a Gaussian start's components into clusters: the sparse prior's start (automatic K).

With ``prior="sparse"`` the Gaussian start's EM runs at the upper bound K and a cluster that
one Gaussian cannot fit (a curved pinwheel wing) takes several. Flows trained on those pieces
each keep more rows than the minimum-message-length rule asks of them, and stay (docs/api.md,
"Automatic K"). So the start first merges components that share one cluster, by the entropy
criterion of Baudry, Raftery, Celeux, Lo and Gottardo (2010, "Combining mixture components
for clustering"): merging a and b removes the uncertainty between them from the
responsibilities tau, an entropy drop of

    D(a, b) = sum_x [(tau_a + tau_b) log(tau_a + tau_b) - tau_a log tau_a - tau_b log tau_b],

large when the two share rows, near 0 when they are apart. Divided by the smaller one's rows
(sum of its tau) it is the mean uncertainty, in nats, of that component's rows between the
two. Greedily, the pair with the largest such drop is merged (its tau summed) while that is
at least ``MERGE_ENTROPY``. Each merged group starts as one Gaussian, moment-matched to its
members (``merged_gaussians``).
"""

import numpy as np
from scipy.special import logsumexp
from scipy.stats import t as student_t

MERGE_ENTROPY = 0.1
"""Nats per row of the smaller component. The Gaussian start's EM at K = 10 on the pinwheel
and K = 8 on three blobs (seeds 0-4; ``studies/autok.py --pairs``) put at most 0.023
between components of different clusters and joined each cluster's components by links of
at least 0.248; 0.1 lies between them, at least a factor of 2.5 from each."""


def responsibilities(x, means, covs, weights) -> np.ndarray:
    """(n, K) posterior probabilities of the components of a Gaussian mixture for rows ``x``."""
    log_p = joint_log_prob(x, means, covs, weights)
    return np.exp(log_p - logsumexp(log_p, axis=1, keepdims=True))


def joint_log_prob(x, means, covs, weights, df=None) -> np.ndarray:
    """(n, K) log w_k + log N(x; mean_k, cov_k) of a Gaussian mixture for rows ``x``.

    ``df``: each component is instead its location-scale image of independent Student-t
    marginals with ``df`` degrees of freedom (a flow at the identity on
    ``bases.StudentTBase``, whitened by the Cholesky factor of cov_k), or None.
    """
    x = np.asarray(x, np.float64)
    chol = np.linalg.cholesky(np.asarray(covs, np.float64))
    log_p = np.empty((x.shape[0], len(weights)))
    for k, (mu, c) in enumerate(zip(np.asarray(means, np.float64), chol)):
        z = np.linalg.solve(c, (x - mu).T)  # (d, n): whitened rows
        if df is None:
            log_p[:, k] = (np.log(max(weights[k], 1e-300)) - 0.5 * (z * z).sum(0)
                           - np.log(np.diagonal(c)).sum() - 0.5 * x.shape[1] * np.log(2 * np.pi))
        else:
            log_p[:, k] = (np.log(max(weights[k], 1e-300)) + student_t.logpdf(z, df).sum(0)
                           - np.log(np.diagonal(c)).sum())
    return log_p


def _xlogx(a):
    return a * np.log(np.maximum(a, 1e-300))


def entropy_drops(tau) -> np.ndarray:
    """(K, K) entropy drop of merging each pair, per row of its smaller member (module doc).

    ``tau``: (K, n) responsibilities, one row per component. The diagonal is -inf.
    """
    own = _xlogx(tau).sum(1)
    rows = np.maximum(tau.sum(1), 1e-12)
    drop = np.full((len(tau), len(tau)), -np.inf)
    for a in range(len(tau) - 1):
        joint = _xlogx(tau[a] + tau[a + 1:]).sum(1)
        drop[a, a + 1:] = (joint - own[a] - own[a + 1:]) / np.minimum(rows[a], rows[a + 1:])
    return np.maximum(drop, drop.T)


def entropy_groups(resp, threshold: float = MERGE_ENTROPY, fewest: int = 1) -> np.ndarray:
    """(K,) group of each component, groups numbered 0.. in order of their first member.

    ``resp``: (n, K) responsibilities. Merges greedily (module docstring) while the best
    pair's entropy drop per row of its smaller member is at least ``threshold`` and more
    than ``fewest`` groups remain.

    Example:
        >>> tau = np.array([[0.5, 0.5, 0.0]] * 4 + [[0.0, 0.0, 1.0]] * 4)
        >>> entropy_groups(tau).tolist()  # 0 and 1 share their rows; 2 is apart
        [0, 0, 1]
    """
    tau = np.asarray(resp, np.float64).T.copy()  # (K, n): one row per current group
    members = [[k] for k in range(len(tau))]
    while len(tau) > max(1, fewest):
        drop = entropy_drops(tau)
        a, b = sorted(np.unravel_index(np.argmax(drop), drop.shape))
        if not drop[a, b] >= threshold:
            break
        tau[a] += tau[b]
        members[a] += members.pop(b)
        tau = np.delete(tau, b, 0)
    group = np.empty(np.shape(resp)[1], np.int32)
    for g, ks in enumerate(sorted(members, key=min)):
        group[ks] = g
    return group


def merged_gaussians(means, covs, weights, group):
    """``(means, covs, weights)`` of one Gaussian per group, moment-matched to its members.

    A group's weight is its members' sum; its mean and covariance are those of the mixture of
    its members (so the merged mixture has the moments of each group).
    """
    means, covs = np.asarray(means, np.float64), np.asarray(covs, np.float64)
    weights = np.asarray(weights, np.float64)
    out = [], [], []
    for g in range(int(group.max()) + 1):
        w = weights[group == g]
        mu = means[group == g]
        m = (w[:, None] * mu).sum(0) / w.sum()
        dev = mu - m
        cov = np.einsum("k,kij->ij", w, covs[group == g] + dev[:, :, None] * dev[:, None, :])
        for part, value in zip(out, (m, cov / w.sum(), w.sum())):
            part.append(value)
    return tuple(np.asarray(part) for part in out)
