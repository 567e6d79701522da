"""Consistency regulariser: q(k|x) should agree between neighbouring training points.

Why: the ELBO alone need not prefer the clusters a user means. On two concentric circles,
RealNVP components reach a higher ELBO by splitting the plane into halves (0.2-0.6 nats per
point) than by taking one circle each, so more training cannot fix it. Clusters that follow
the data's connected structure need another inductive bias: a point's assignment should
match its neighbours' (the smoothness assumption of graph-based clustering and
semi-supervised learning).

What: a k-nearest-neighbour graph of the (preprocessed) training rows is built once, before
training (``knn_graph``; exact, O(N * k) memory). In each step the loss gains

    consistency * mean over the batch's points i and their neighbours j of KL(q(.|x_i) || q(.|x_j))

(``penalty``), with q at the step's temperature. Only the posterior network is evaluated at
the neighbours (gathered from the training rows on device), not the flows. The k-means warm
start then clusters the graph's spectral embedding (``spectral_features``; not with the
sparse prior, whose K is only an upper bound), i.e. it is spectral clustering: measured,
that warm start carries most of the effect (README, "Beyond the paper"). With
``consistency = 0`` no graph is built and the loss is the paper's ELBO.
"""

import warnings

import jax.numpy as jnp
import numpy as np

N_NEIGHBOURS = 10
"""Neighbours of each training point in the graph (fewer when there are fewer points)."""
CHUNK_BYTES = 64 * 2**20
"""Largest block of pairwise distances ``knn_graph`` holds at once."""


def knn_graph(x, k: int = N_NEIGHBOURS) -> np.ndarray:
    """Exact k nearest neighbours (Euclidean) of every row among the other rows.

    Rows are processed in blocks of at most ``CHUNK_BYTES`` of distances, so memory is
    O(N * k) besides one block; time is O(N^2 * D).

    Args:
        x: (n, d) array, n >= 2.
        k: neighbours per row; at most n - 1 are returned.

    Returns:
        (n, min(k, n - 1)) int32 row indices, nearest first.

    Example:
        >>> knn_graph(np.array([[0.0], [1.0], [3.0]]), k=1)[:, 0]
        array([1, 0, 1], dtype=int32)
    """
    x = np.asarray(x, np.float64)
    n = x.shape[0]
    if x.ndim != 2 or n < 2:
        raise ValueError(f"knn_graph needs an (n, d) array with n >= 2, got shape {x.shape}")
    if not (isinstance(k, int | np.integer) and k >= 1):
        raise ValueError(f"k must be a positive integer, got {k!r}")
    k = min(int(k), n - 1)
    rows = max(1, CHUNK_BYTES // (8 * n))
    sq = np.einsum("ij,ij->i", x, x)
    out = np.empty((n, k), np.int32)
    for start in range(0, n, rows):
        block = x[start : start + rows]
        d2 = sq[start : start + rows, None] - 2.0 * block @ x.T + sq[None, :]
        d2[np.arange(len(block)), np.arange(start, start + len(block))] = np.inf  # not itself
        near = np.argpartition(d2, k - 1, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(d2, near, 1), axis=1, kind="stable")
        out[start : start + rows] = np.take_along_axis(near, order, 1)
    return out


def spectral_features(nbrs, n_dims: int, seed: int = 0) -> np.ndarray:
    """(n, n_dims) spectral embedding of the symmetrised neighbour graph ``nbrs``.

    k-means on it is spectral clustering: rows of one connected piece of the graph stay
    together, whatever its shape (the warm start of a fit with the regulariser on).
    """
    from scipy.sparse import coo_matrix
    from sklearn.manifold import spectral_embedding

    n, k = nbrs.shape
    adj = coo_matrix((np.ones(n * k), (np.repeat(np.arange(n), k), nbrs.ravel())), (n, n))
    adj = ((adj + adj.T) > 0).astype(np.float64)
    if n <= n_dims:  # too few rows for a sparse eigensolver
        adj = adj.toarray()
    with warnings.catch_warnings():  # separate pieces are what it should find; few rows
        warnings.filterwarnings("ignore", "Graph is not fully connected")
        warnings.filterwarnings("ignore", "k >= N")
        return spectral_embedding(adj, n_components=n_dims, random_state=seed,
                                  drop_first=False)


def penalty(model, params, x, x_nbrs, temperature):
    """Mean KL(q(.|x_i) || q(.|x_j)) over rows i of ``x`` and their neighbours j.

    Args:
        model: the ``Mixture``.
        params: its parameters.
        x: (B, D) batch rows.
        x_nbrs: (B, k, D) their neighbours.
        temperature: T of q(k|x).

    Returns:
        A scalar >= 0 (nats); 0 when q is the same at every point and its neighbours.
    """
    b, k, d = x_nbrs.shape
    log_q = model.log_posterior(params, x, temperature)[:, None, :]
    log_qn = model.log_posterior(params, x_nbrs.reshape(b * k, d), temperature).reshape(b, k, -1)
    return jnp.sum(jnp.exp(log_q) * (log_q - log_qn), -1).mean()


def neighbour_rows(x, nbrs, idx):
    """(B, k, D) training rows that neighbour the batch rows ``idx`` (a gather on device)."""
    return jnp.take(x, jnp.take(nbrs, idx, axis=0), axis=0)

