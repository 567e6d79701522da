"""Consistency regulariser: q(k|x) should agree between neighbouring training points.

Why: the ELBO alone need not prefer the clusters a user means. On two concentric circles,
RealNVP components reach a higher ELBO by splitting the plane into halves (0.2-0.6 nats per
point) than by taking one circle each, so more training cannot fix it. Clusters that follow
the data's connected structure need another inductive bias: a point's assignment should
match its neighbours' (the smoothness assumption of graph-based clustering and
semi-supervised learning).

What: a k-nearest-neighbour graph of the (preprocessed) training rows, in grid steps when
every column is dequantised (``train.partition``), is built once, before training
(``knn_graph``: a KD-tree for few columns, brute force or nearest-neighbour descent for
many; O(N * k) memory). In each step the loss gains

    consistency * mean over the batch's points i and their neighbours j of KL(q(.|x_i) || q(.|x_j))

(``penalty``), with q at the step's temperature. Only the posterior network is evaluated at
the neighbours (gathered from the training rows on device), not the flows. The k-means warm
start then clusters the graph's spectral embedding (``spectral_features``; not with the
sparse prior, whose K is only an upper bound), i.e. it is spectral clustering (on a
subsample for large N, ``spectral_labels``): measured,
that warm start carries most of the effect (README, "Beyond the paper"). With
``consistency = 0`` no graph is built and the loss is the paper's ELBO.
"""

import warnings

import jax.numpy as jnp
import numpy as np

N_NEIGHBOURS = 10
"""Neighbours of each training point in the graph (fewer when there are fewer points)."""
TREE_MAX_DIMS = 15
"""Up to this many columns the graph comes from a KD-tree (exact, about O(N log N))."""
BRUTE_MAX_ROWS = 50_000
"""Wider data: exact brute force (O(N^2 D)) up to this many rows, approximate beyond."""
WARM_START_ROWS = 20_000
"""The spectral warm start embeds at most this many rows; the rest take their labels along
the graph (``spread_labels``). The k-means warm start fits on at most this many too."""
_BRUTE_MEMORY_MB = 64  # largest block of pairwise distances the brute-force search holds


def knn_graph(x, k: int = N_NEIGHBOURS, method: str = "auto", seed: int = 0) -> np.ndarray:
    """The k nearest neighbours (Euclidean) of every row among the other rows.

    ``method``: "tree" (scipy's KD-tree on every core: exact), "brute" (exact, in blocks of
    pairwise distances: O(N^2 D) time, O(N k) memory), "approx" (``pynndescent``'s
    nearest-neighbour descent, near-linear, seeded by ``seed``; the ``scale`` extra) or
    "auto": "tree" up to ``TREE_MAX_DIMS`` columns, else "brute" up to ``BRUTE_MAX_ROWS``
    rows, else "approx" (brute force with a warning where pynndescent is not installed).
    Measured on 2 loaded cores (docs/speed.md): 10^6 2-D rows take about 6 s by KD-tree;
    32-D Gaussian rows 3.3 s by brute force at 20,000 rows, 6 s by pynndescent at 10^5 rows
    (after about 2 minutes of one-off numba compilation, cached on disk afterwards).

    Args:
        x: (n, d) array, n >= 2.
        k: neighbours per row; at most n - 1 are returned.
        method: as above.
        seed: the approximate search's seed.

    Returns:
        (n, min(k, n - 1)) int32 row indices, nearest first (ties in any order).

    Example:
        >>> knn_graph(np.array([[0.0], [1.0], [3.0]]), k=1)[:, 0]
        array([1, 0, 1], dtype=int32)
    """
    from sklearn import config_context
    from sklearn.neighbors import NearestNeighbors

    x = np.asarray(x, np.float64)
    n = x.shape[0]
    if x.ndim != 2 or n < 2:
        raise ValueError(f"knn_graph needs an (n, d) array with n >= 2, got shape {x.shape}")
    if not (isinstance(k, int | np.integer) and k >= 1):
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if method not in ("auto", "tree", "brute", "approx"):
        raise ValueError(f"method must be 'auto', 'tree', 'brute' or 'approx', got {method!r}")
    k = min(int(k), n - 1)
    if method == "auto":
        method = ("tree" if x.shape[1] <= TREE_MAX_DIMS
                  else "brute" if n <= BRUTE_MAX_ROWS else "approx")
    if method == "approx":
        try:
            return _descent_graph(x, k, seed)
        except ImportError:
            warnings.warn(f"{n} rows of {x.shape[1]} columns: the exact neighbour graph costs "
                          "O(N^2 D); install pynndescent (pip install 'vmonf-jax[scale]') for "
                          "a near-linear approximate one", stacklevel=2)
            method = "brute"
    if method == "tree":  # scipy's KD-tree, on every core: 1.3x sklearn's on one (10^6 2-D)
        from scipy.spatial import cKDTree

        return _without_self(cKDTree(x).query(x, k + 1, workers=-1)[1].reshape(n, -1), k)
    with config_context(working_memory=_BRUTE_MEMORY_MB):
        nn = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(x)
        return nn.kneighbors(None, k, return_distance=False).astype(np.int32)


def _descent_graph(x, k, seed) -> np.ndarray:
    """Approximate k nearest neighbours by nearest-neighbour descent (pynndescent)."""
    from pynndescent import NNDescent

    idx = NNDescent(x, n_neighbors=k + 1, random_state=seed, low_memory=True).neighbor_graph[0]
    return _without_self(idx, k)


def _without_self(idx, k) -> np.ndarray:
    """(n, k) of the (n, k + 1) neighbour lists ``idx`` that include each row itself."""
    own = idx == np.arange(len(idx))[:, None]
    own[~own.any(1), -1] = True  # a row missing from its own list drops its farthest instead
    return idx[~own].reshape(len(idx), k).astype(np.int32)


def spectral_features(nbrs, n_dims: int, seed: int = 0, solver: str | None = None) -> np.ndarray:
    """(n, n_dims) spectral embedding of the symmetrised neighbour graph ``nbrs``.

    k-means on it is spectral clustering: rows of one connected piece of the graph stay
    together, whatever its shape (the warm start of a fit with the regulariser on).
    ``solver``: scikit-learn's ``eigen_solver`` (None: its default, ARPACK in shift-invert
    mode, which factorises the graph's Laplacian: cheap for graphs of few dimensions, but on
    20,000 rows of 32-D Gaussians 113 s against 0.23 s for "lobpcg"; on 2-D rows 0.95 s
    against 6.5 s).
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
                                  drop_first=False, eigen_solver=solver)


def spectral_labels(x, nbrs, n_clusters: int, seeds, kmeans) -> np.ndarray:
    """(len(seeds), n) spectral-clustering labels of the rows, one k-means per seed.

    Up to ``WARM_START_ROWS`` rows: k-means (``kmeans(feats, n_clusters, seed)``) on the
    ``spectral_features`` of the graph ``nbrs``. More rows: the same on a random subsample of
    ``WARM_START_ROWS`` rows (with its own neighbour graph), and every other row takes the
    label its graph neighbours carry (``spread_labels``): linear in N, where an eigensolver
    on the whole graph is not. The subsample of wide rows (more than ``TREE_MAX_DIMS``
    columns) is embedded by LOBPCG, not ARPACK (``spectral_features``).
    """
    n = x.shape[0]
    if n <= WARM_START_ROWS:
        feats = spectral_features(nbrs, n_clusters, seeds[0])
        return np.stack([kmeans(feats, n_clusters, s) for s in seeds])
    sub = np.sort(np.random.default_rng(seeds[0]).choice(n, WARM_START_ROWS, replace=False))
    solver = "lobpcg" if x.shape[1] > TREE_MAX_DIMS else None
    feats = spectral_features(knn_graph(x[sub], nbrs.shape[1], seed=seeds[0]), n_clusters,
                              seeds[0], solver)
    return spread_labels(x, nbrs, sub, np.stack([kmeans(feats, n_clusters, s) for s in seeds]),
                         n_clusters)


def spread_labels(x, nbrs, rows, labels, n_clusters: int) -> np.ndarray:
    """Labels of all rows from those of ``rows``, spread along the neighbour graph ``nbrs``.

    Each round, every unlabelled row with labelled neighbours takes their most common label
    (ties: the lowest); O(N k) per round, a few rounds. Rows the graph never reaches (a piece
    without a labelled row) take the label of their nearest labelled row. ``labels``: (m,)
    or (S, m), S labellings of the same rows spread together (the rounds are the same).
    """
    from sklearn.neighbors import NearestNeighbors

    labels = np.asarray(labels)
    many = np.atleast_2d(labels)
    out = np.full((len(many), x.shape[0]), -1, np.int32)
    out[:, rows] = many
    todo = np.flatnonzero(out[0] < 0)
    while todo.size:
        hood = nbrs[todo]
        r, c = np.nonzero(out[0, hood] >= 0)  # labelled neighbours (the same for every S)
        found = np.zeros(todo.size, bool)
        found[r] = True
        if not found.any():
            break
        cell = (np.arange(len(many))[:, None] * todo.size + r) * n_clusters + out[:, hood[r, c]]
        votes = np.bincount(cell.ravel(), minlength=len(many) * todo.size * n_clusters)
        out[:, todo[found]] = votes.reshape(len(many), todo.size, n_clusters)[:, found].argmax(2)
        todo = todo[~found]
    if todo.size:
        nn = NearestNeighbors(n_neighbors=1).fit(x[rows])
        out[:, todo] = many[:, nn.kneighbors(x[todo], return_distance=False)[:, 0]]
    return out if labels.ndim == 2 else out[0]


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



AUTO = "auto"
"""``consistency="auto"``: the weight is ``auto_weight``'s, decided per data set."""
AUTO_WEIGHT = 1.0
"""The weight ``auto_weight`` gives to rows of at most ``TREE_MAX_DIMS`` columns."""


def auto_weight(dim: int) -> float:
    """The regulariser's weight under ``consistency="auto"``: ``AUTO_WEIGHT`` or 0.

    On for rows of at most ``TREE_MAX_DIMS`` columns, off above: Euclidean neighbours in
    many dimensions carry little (the regulariser lowered MNIST's likelihood). A rule on the
    agreement of the graph's spectral partition with k-means was measured and rejected: it
    turned the penalty off on the pinwheel, which then scored worse (docs/results.md,
    "Training budget and consistency rule"); the real data sets scored the same either way.

    Example:
        >>> auto_weight(2), auto_weight(784)
        (1.0, 0.0)
    """
    return AUTO_WEIGHT if dim <= TREE_MAX_DIMS else 0.0
