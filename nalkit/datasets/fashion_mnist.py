"""Fashion-MNIST from its idx files (the release's ``.gz`` files or torchvision's decompressed copies).

Looked for in ``root/fashion-mnist``, ``root/FashionMNIST/raw`` (torchvision's layout) and
``<system dir>/fashion-mnist`` for each of :data:`nalkit.datasets.SYSTEM_DATA_DIRS` (Debian's
``dataset-fashion-mnist`` package). The only dataset that :func:`nalkit.datasets.load_dataset` may
download (through torchvision) when no copy is found.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from ._common import (
    ArraySplit,
    DatasetBundle,
    DatasetInfo,
    DatasetNotFoundError,
    _check_file_labels,
    _not_found,
    _warn_size,
    _why,
    register,
)

FASHION_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                       "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot"]
_FASHION_MNIST_SOURCE = "https://github.com/zalandoresearch/fashion-mnist (or `apt install dataset-fashion-mnist`)"
_IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned byte, 3 dimensions
_IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned byte, 1 dimension


def _fashion_mnist_dirs(root: Path) -> list[Path]:
    # SYSTEM_DATA_DIRS is read from the package at call time: nalkit.datasets.SYSTEM_DATA_DIRS is its one
    # home, so pointing it elsewhere there (as the tests do) changes where this loader looks.
    from . import SYSTEM_DATA_DIRS

    return [root / "fashion-mnist", root / "FashionMNIST" / "raw",
            *(d / "fashion-mnist" for d in SYSTEM_DATA_DIRS)]


def _idx_file(directory: Path, stem: str) -> Path | None:
    # The release ships .gz; torchvision also leaves the decompressed files beside them.
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


def _fashion_mnist_missing(directory: Path) -> list[str]:
    return [stem + ".gz" for stem in FASHION_MNIST_FILES if _idx_file(directory, stem) is None]


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Read one idx file (gzip or raw) into a uint8 array.

    Args:
        path: the file.
        magic: 2051 for images (result shape (N, rows, cols)), 2049 for labels (result shape (N,)).

    Raises:
        DatasetNotFoundError: wrong magic number or a size that disagrees with the header
            (a truncated download).
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:  # gzip raises these on a truncated or non-gzip file
        raise DatasetNotFoundError(f"{path}: cannot read idx file ({e}); delete it and download again") from e
    if len(raw) < 8:
        raise DatasetNotFoundError(f"{path}: {len(raw)} bytes, too short for an idx header")
    got_magic = int.from_bytes(raw[:4], "big")
    if got_magic != magic:
        raise DatasetNotFoundError(
            f"{path}: idx magic number {got_magic}, expected {magic} "
            f"({'images' if magic == _IDX_IMAGES_MAGIC else 'labels'} file); wrong or corrupt file")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise DatasetNotFoundError(
            f"{path}: header says shape {dims} ({expected} bytes) but the file holds {len(raw)} bytes; "
            "truncated or corrupt, delete it and download again")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _read_fashion_mnist_split(directory: Path, prefix: str) -> ArraySplit:
    img_path = _idx_file(directory, f"{prefix}-images-idx3-ubyte")
    lab_path = _idx_file(directory, f"{prefix}-labels-idx1-ubyte")
    assert img_path is not None and lab_path is not None  # checked by the caller
    images = read_idx(img_path, _IDX_IMAGES_MAGIC)
    labels = read_idx(lab_path, _IDX_LABELS_MAGIC)
    if images.shape[1:] != (28, 28):
        raise DatasetNotFoundError(f"{img_path}: images are {images.shape[1:]}, Fashion-MNIST is 28x28")
    if images.shape[0] != labels.shape[0]:
        raise DatasetNotFoundError(
            f"Fashion-MNIST {prefix}: {images.shape[0]} images in {img_path.name} but {labels.shape[0]} "
            f"labels in {lab_path.name}; the files do not belong together")
    labels = _check_file_labels(labels, 10, str(lab_path))
    # copy(): frombuffer arrays are read-only views of the bytes object.
    tensor = torch.from_numpy(images.copy()).unsqueeze(1)  # (N, 1, 28, 28)
    return ArraySplit(images=tensor, labels=labels, clean_labels=labels.copy())


def _find_fashion_mnist(root: Path) -> Path | None:
    for d in _fashion_mnist_dirs(root):
        if d.is_dir() and not _fashion_mnist_missing(d):
            return d
    return None


def _load_fashion_mnist(root: Path, download: bool) -> DatasetBundle:
    directory = _find_fashion_mnist(root)
    searched = [(d, _why(d, _fashion_mnist_missing(d))) for d in _fashion_mnist_dirs(root)]
    if directory is None and download:
        try:
            from .._io import require_torchvision

            torchvision = require_torchvision("downloading Fashion-MNIST")
            torchvision.datasets.FashionMNIST(str(root), train=True, download=True)
            torchvision.datasets.FashionMNIST(str(root), train=False, download=True)
        except Exception as e:  # noqa: BLE001 -- no network, mirror down, ...: report it with the search list
            searched.append((root / "FashionMNIST" / "raw", "torchvision download failed: " + " ".join(str(e).split())))
        else:
            directory = _find_fashion_mnist(root)
    if directory is None:
        raise _not_found("Fashion-MNIST", searched, ", ".join(s + ".gz" for s in FASHION_MNIST_FILES),
                         _FASHION_MNIST_SOURCE, root / "fashion-mnist")
    train = _read_fashion_mnist_split(directory, "train")
    test = _read_fashion_mnist_split(directory, "t10k")
    _warn_size("Fashion-MNIST", "train", len(train), 60000)
    _warn_size("Fashion-MNIST", "test", len(test), 10000)
    return DatasetBundle(name="fashion_mnist", num_classes=10, classes=list(FASHION_MNIST_CLASSES),
                         train=train, test=test, mean=(0.2860,), std=(0.3530,), image_size=28,
                         in_channels=1, real_noise=False)


register(DatasetInfo(
    "fashion_mnist", "Fashion-MNIST", 10, False, _FASHION_MNIST_SOURCE,
    "fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz (or FashionMNIST/raw/, "
    "/usr/share/datasets/fashion-mnist/)",
    _find_fashion_mnist, _load_fashion_mnist))
