"""Memory-mapped data (issue 24, item 3): chunks of rows an epoch, never the whole file."""

import tracemalloc

import jax
import numpy as np
import pytest

from vmonf_jax import VMoNF
from vmonf_jax.files.io import read_data
from vmonf_jax.train import feeder

pytestmark = pytest.mark.usefixtures("fast_compile")
SMALL = dict(n_components=2, n_blocks=1, hidden=(4,), posterior_hidden=(4,), epochs=4,
             warm_epochs=2, n_init=1, batch_size=256, verbose=False)


def _blobs(n, seed, dim=2):
    rng = np.random.default_rng(seed)
    centre = np.where(rng.integers(0, 2, n) == 0, -3.0, 3.0)[:, None]
    x = rng.normal(size=(n, dim)) * 0.5
    x[:, :1] += centre
    return x.astype(np.float32)


def _mapped(tmp_path, x, name="x.npy"):
    np.save(tmp_path / name, x)
    return np.load(tmp_path / name, mmap_mode="r")


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 1,024 rows in blocks of 256: small data take several chunks a pass."""
    monkeypatch.setattr(feeder, "FEED_ROWS", 1024)
    monkeypatch.setattr(feeder, "BLOCK_ROWS", 256)


def test_training_rows_skip_the_validation_rows(tmp_path):
    rows = feeder.Rows(_mapped(tmp_path, _blobs(1000, 0)))
    val, x_val = feeder.split(rows, 97, seed=3)
    feed = feeder.Feed(rows, val, seed=0, graph=False)
    want = np.setdiff1d(np.arange(1000), val)
    np.testing.assert_array_equal(feed.train_rows(np.arange(feed.n_train)), want)
    np.testing.assert_array_equal(x_val, np.asarray(rows.x)[val])
    feed.close()


def test_a_pass_of_chunks_visits_every_training_row(tmp_path, small_chunks):
    rows = feeder.Rows(_mapped(tmp_path, _blobs(5000, 0)))
    val, _ = feeder.split(rows, 300, seed=1)
    feed = feeder.Feed(rows, val, seed=7, graph=False)
    assert (feed.size, feed.per_pass) == (1024, 5)  # 4,700 training rows
    seen = np.zeros(rows.n_rows, int)
    for epoch in range(feed.per_pass):
        got = feed.rows_of(epoch)
        assert len(got) == feed.size and np.all(np.diff(got) > 0)  # sorted, no repeats
        seen[got] += 1
    assert not seen[val].any()
    train = np.setdiff1d(np.arange(rows.n_rows), val)
    assert seen[train].min() >= 1 and seen.sum() == 5 * 1024
    again = feeder.Feed(rows, val, seed=7, graph=False)
    np.testing.assert_array_equal(again.rows_of(3), feed.rows_of(3))  # resumable
    assert not np.array_equal(feed.rows_of(0), feed.rows_of(feed.per_pass))  # a new order
    feed.close(), again.close()


def test_mapped_fit_streams_chunks_and_matches_the_in_memory_fit(tmp_path, small_chunks,
                                                                  monkeypatch):
    x, test = _blobs(4000, 0), _blobs(2000, 1)
    read = []
    real_read = feeder.Rows.read
    monkeypatch.setattr(feeder.Rows, "read", lambda self, r: read.append(len(
        np.arange(self.n_rows)[r])) or real_read(self, r))
    kw = dict(SMALL, consistency=1.0, epochs=8)
    mapped = VMoNF(**kw).fit(_mapped(tmp_path, x))
    assert read and max(read) <= 1024  # a chunk (or the validation rows) at a time
    assert len(mapped.history_) == 10 and len(mapped.labels_) == 4000
    monkeypatch.setattr(feeder.Rows, "read", real_read)
    memory = VMoNF(**kw).fit(x)
    assert mapped.score(test) == pytest.approx(memory.score(test), abs=0.1)
    agree = (mapped.labels_ == memory.labels_).mean()
    assert max(agree, 1 - agree) > 0.99  # the same two blobs, up to their names


def test_mapped_fit_holds_no_copy_of_the_data(tmp_path, small_chunks):
    x = _blobs(200_000, 0, dim=8)  # 6.4 MB of float32; a chunk is 32 KB
    data = _mapped(tmp_path, x)
    kw = dict(SMALL, epochs=1, warm_epochs=1, early_stopping=False)  # (validation rows: 15%)
    VMoNF(**kw).fit(data[:5000])  # compile outside
    tracemalloc.start()
    try:
        est = VMoNF(**kw).fit(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(est.labels_) == len(x)
    assert peak < x.nbytes / 2, peak  # NumPy's: labels_ (int64) and chunks, no copy of x


def test_mapped_data_errors_name_the_problem(tmp_path, small_chunks):
    x = _blobs(70_000, 0)
    x[68_000, 1] = np.nan
    with pytest.raises(ValueError, match="NaN.*row 68000, column 1"):
        VMoNF(**SMALL).fit(_mapped(tmp_path, x))
    with pytest.raises(ValueError, match="labels need the data in memory"):
        y = np.full(3000, -1)
        y[:5] = 0
        VMoNF(**SMALL).fit(_mapped(tmp_path, _blobs(3000, 0), "y.npy"), y)


def test_a_map_of_one_chunk_fits_as_in_memory(tmp_path):
    x = np.random.default_rng(0).normal(size=(200, 2))
    path = tmp_path / "x.npy"
    np.save(path, x)
    kw = dict(n_components=2, n_blocks=1, hidden=(4,), posterior_hidden=(4,), epochs=2,
              warm_epochs=1, n_init=1, batch_size=64, verbose=False)
    mapped = np.load(path, mmap_mode="r")
    a, b = VMoNF(**kw).fit(mapped), VMoNF(**kw).fit(np.load(path))
    assert isinstance(mapped, np.memmap) and 200 <= feeder.chunk_rows(2)
    for u, v in zip(jax.tree.leaves(a.params_), jax.tree.leaves(b.params_)):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
    np.testing.assert_array_equal(a.labels_, b.labels_)


def test_cli_reads_a_npy_file_as_a_memory_map(tmp_path):
    np.save(tmp_path / "x.npy", _blobs(50, 0))
    assert isinstance(read_data(tmp_path / "x.npy").X, np.memmap)
