"""Memory-mapped data, fed to training one chunk of rows per epoch (data larger than memory).

A memory-mapped array (``np.load(path, mmap_mode="r")``, ``np.memmap``) is never read whole:

- checks (shape, NaN/inf, float32's range) run chunk by chunk (``Rows.check``);
- the validation rows (at most 20,000 with early stopping) are read into memory;
- the training rows are read in *chunks* of ``chunk_rows(dim)`` rows (at most ``FEED_ROWS``
  and ``FEED_BYTES`` of float32): epoch e trains on chunk e. The training rows are cut into
  blocks of ``BLOCK_ROWS`` consecutive rows; each pass over the data visits the blocks in a
  fresh random order, a chunk at a time (its blocks read in file order, for locality), and
  the compiled epoch shuffles the chunk's rows into batches. So an *epoch is one chunk*:
  ``ceil(n / chunk_rows)`` epochs make one pass (a map of at most one chunk is read whole
  and fitted as in memory: ``source``);
- each chunk brings its own neighbour graph (the consistency regulariser's) and, for the
  warm-start epochs, its rows' warm-start labels: those of their nearest row among a
  labelled sample of the first chunk (where the warm start and the Gaussian start were
  fitted, on their usual subsample);
- a background thread reads and prepares the next epoch's chunk while this one trains.

Host memory: two chunks (this one and the next) and the validation rows, whatever the file's
size; device memory: one chunk. In-memory arrays never come here (their path is unchanged).
"""

from concurrent.futures import ThreadPoolExecutor

import jax.numpy as jnp
import numpy as np

from vmonf_jax.validation import check_rows, check_values

FEED_ROWS = 2**20
"""Most training rows of one chunk (one epoch of a mapped fit)."""
FEED_BYTES = 256 * 2**20
"""Most bytes of one chunk's float32 rows (wide data: fewer rows)."""
BLOCK_ROWS = 4096
"""Consecutive rows read together (the unit of shuffling across chunks)."""
LABEL_ROWS = 20_000
"""Rows of the first chunk whose warm-start labels the other chunks' rows copy."""


def is_mapped(x) -> bool:
    """True for a memory-mapped array (``np.memmap``, ``np.load(..., mmap_mode=...)``)."""
    return isinstance(x, np.memmap | Rows)


def source(data):
    """``(rows, data)``: a ``Rows`` to feed a chunk an epoch, or None and the rows in memory.

    A map of at most ``chunk_rows`` rows is read whole: its fit is the in-memory fit.
    """
    if not is_mapped(data):
        return None, data
    rows = Rows(data)
    if rows.n_rows <= chunk_rows(rows.dim):
        return None, rows.read(slice(None))
    return rows, None


def chunk_rows(dim: int) -> int:
    """Rows of a chunk of ``dim``-column data: a multiple of ``BLOCK_ROWS``, at least one block."""
    most = min(FEED_ROWS, FEED_BYTES // (4 * dim))
    return max(BLOCK_ROWS, most // BLOCK_ROWS * BLOCK_ROWS)


class Rows:
    """A mapped (n, d) array, read a few rows at a time through ``transform``.

    ``transform``: float64 rows in the file's units -> float32 rows the model trains on
    (the estimator's preprocessing); None: a cast to float32.
    """

    def __init__(self, x, transform=None):
        if isinstance(x, Rows):
            x, transform = x.x, transform or x.transform
        if x.ndim != 2 or 0 in x.shape:
            raise ValueError(f"data must be a non-empty 2-D array (rows, features), got shape "
                             f"{x.shape}")
        if x.dtype.kind not in "iuf":
            raise ValueError(f"data is not numeric (dtype {x.dtype})")
        self.x, self.transform = x, transform
        self.n_rows, self.dim = x.shape

    def read(self, rows) -> np.ndarray:
        """float32 rows ``rows`` (sorted indices, or a slice) after ``transform``."""
        raw = np.asarray(self.x[rows], np.float64)
        return np.asarray(raw if self.transform is None else self.transform(raw), np.float32)

    def check(self, name: str = "data", dim: int | None = None, min_rows: int = 1) -> None:
        """ValueError for too few rows, other columns than ``dim``, NaN, inf or float32 overflow.

        ``validation.check_values`` reads the map a block of rows at a time.
        """
        if dim is not None and self.dim != dim:
            raise ValueError(f"{name} has {self.dim} columns but the model expects {dim}")
        check_rows(self.n_rows, min_rows, name)
        check_values(self.x, name)

    def sample(self, n: int, seed: int) -> np.ndarray:
        """Raw float64 rows: ``n`` at random (sorted), or all when there are fewer."""
        if n >= self.n_rows:
            return np.asarray(self.x, np.float64)
        idx = np.sort(np.random.default_rng(seed).choice(self.n_rows, n, replace=False))
        return np.asarray(self.x[idx], np.float64)


class Feed:
    """Each epoch's training chunk of a ``Rows``, with its graph and warm-start labels.

    Args:
        rows: the data.
        val: sorted indices of the validation rows (excluded from training), or empty.
        seed: the block order of every pass derives from it (a resumed fit reads the same
            chunks).
        graph: build each chunk's neighbour graph (``consistency.knn_graph``).
        size: rows per chunk (default ``chunk_rows``; never more than the training rows).
    """

    def __init__(self, rows: Rows, val, seed: int, graph: bool, size: int | None = None):
        self.rows, self.val, self.seed, self.graph = rows, np.asarray(val, np.int64), seed, graph
        self.n_train = rows.n_rows - len(self.val)
        size = min(size or chunk_rows(rows.dim), self.n_train)
        self.block = min(BLOCK_ROWS, size) if size < self.n_train else size
        self.size = size // self.block * self.block
        self.per_pass = -(-self.n_train // self.size)
        self.first, self._labels, self._next, self.warm, self.epochs = None, None, None, 0, 0
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="vmonf-feed")

    def train_rows(self, t) -> np.ndarray:
        """File rows of training rows ``t`` (training row t is the t-th row not held out)."""
        return t + np.searchsorted(self.val - np.arange(len(self.val)), t, side="right")

    def rows_of(self, epoch: int) -> np.ndarray:
        """Sorted file rows of ``epoch``'s chunk (``size`` of them)."""
        if self.per_pass == 1:
            return self.train_rows(np.arange(self.n_train))
        n_pass, j = divmod(int(epoch), self.per_pass)
        per, b = self.size // self.block, self.block
        order = np.random.default_rng([self.seed, n_pass]).permutation(-(-self.n_train // b))
        pick = np.roll(order, -j * per)[: per + 1]  # one more: the file's last block is short
        t = (pick[:, None] * b + np.arange(b)).ravel()
        return self.train_rows(np.sort(t[t < self.n_train][: self.size]))

    def start(self, arrays, warm: int, epochs: int) -> None:
        """Take epoch 0's prepared ``arrays`` (its graph, warm-start labels) as the reference.

        The other chunks' warm-start labels are those of their nearest row among at most
        ``LABEL_ROWS`` rows of this chunk, for the ``warm`` warm-start epochs (-1 after);
        ``epochs``: the plan's length (no chunk is prefetched past it).
        """
        self.first, self.warm, self.epochs = arrays, warm, epochs
        if arrays.y_warm is not None and self.per_pass > 1:
            from sklearn.neighbors import NearestNeighbors

            x0 = np.asarray(arrays.x)
            pick = np.sort(np.random.default_rng(self.seed).choice(
                len(x0), min(LABEL_ROWS, len(x0)), replace=False))
            self._labels = (NearestNeighbors(n_neighbors=1).fit(x0[pick]),
                            np.asarray(arrays.y_warm)[:, pick])

    def arrays(self, epoch: int, base):
        """``base`` (the run's ``Data``) with ``epoch``'s chunk; prefetches the next."""
        if self.per_pass == 1 or epoch == 0:
            got = self.first
        else:
            fut, self._next = self._next, None
            x, nbrs, y = fut[1].result() if fut and fut[0] == epoch else self._prepare(epoch)
            got = self.first._replace(x=jnp.asarray(x),
                                      nbrs=None if nbrs is None else jnp.asarray(nbrs),
                                      y_warm=None if y is None else jnp.asarray(y))
        if self.per_pass > 1 and epoch + 1 < self.epochs:
            self._next = (epoch + 1, self._pool.submit(self._prepare, epoch + 1))
        return got._replace(y_warm=None if base.y_warm is None else got.y_warm,
                            x_val=base.x_val, x_lab=base.x_lab, y_lab=base.y_lab)

    def _prepare(self, epoch):
        """Host arrays of ``epoch``'s chunk: ``(x, neighbour graph or None, labels or None)``."""
        from vmonf_jax.train.consistency import knn_graph

        x = self.rows.read(self.rows_of(epoch))
        nbrs = knn_graph(x, seed=self.seed) if self.graph else None
        y = None
        if self._labels is not None:
            nn, labels = self._labels
            y = (labels[:, nn.kneighbors(x, return_distance=False)[:, 0]] if epoch < self.warm
                 else np.full((len(labels), len(x)), -1, np.int32))
        return x, nbrs, y

    def close(self) -> None:
        """Stop the prefetching thread (a chunk being read is dropped)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def split(rows: Rows, n_val: int, seed: int):
    """``(sorted validation indices, their rows in memory or None)``: ``n_val`` at random."""
    if not n_val:
        return np.zeros(0, np.int64), None
    val = np.sort(np.random.default_rng(seed).choice(rows.n_rows, n_val, replace=False))
    return val, rows.read(val)
