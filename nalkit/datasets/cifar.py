"""CIFAR-10 and CIFAR-100 from the python-version pickle batches of the official archives.

Looked for in ``root/cifar-10-batches-py`` (``root/cifar-100-python``) or one level down in
``root/cifar10/`` (``root/cifar100/``). The two formats differ only in file names, label keys and class
count (:class:`_CifarFormat`), so one reader serves both and registers both datasets.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._common import (
    ArraySplit,
    DatasetBundle,
    DatasetInfo,
    DatasetNotFoundError,
    _check_file_labels,
    _missing,
    _not_found,
    _warn_size,
    _why,
    register,
)

_CIFAR_SOURCE = "https://www.cs.toronto.edu/~kriz/cifar.html (the 'python version' tar.gz)"


@dataclass(frozen=True)
class _CifarFormat:
    """One CIFAR variant: its file names, pickle keys, class count, official split sizes and normalisation."""

    key: str
    title: str
    dirname: str
    train_files: tuple[str, ...]
    test_file: str
    meta_file: str
    label_key: str
    names_key: str
    num_classes: int
    num_train: int
    num_test: int
    # DivideMix's normalisation constants (the NAL authors build on DivideMix's CIFAR code).
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @property
    def files(self) -> tuple[str, ...]:
        return (*self.train_files, self.test_file, self.meta_file)


_CIFAR10 = _CifarFormat("cifar10", "CIFAR-10", "cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)),
                        "test_batch", "batches.meta", "labels", "label_names", 10, 50000, 10000,
                        (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
_CIFAR100 = _CifarFormat("cifar100", "CIFAR-100", "cifar-100-python", ("train",), "test", "meta", "fine_labels",
                         "fine_label_names", 100, 50000, 10000,
                         (0.507, 0.487, 0.441), (0.267, 0.256, 0.276))


def _cifar_dirs(root: Path, fmt: _CifarFormat) -> list[Path]:
    # Also root/cifar10/cifar-10-batches-py: a common layout when several datasets share one root.
    return [root / fmt.dirname, root / fmt.key / fmt.dirname]


def _find_cifar(root: Path, fmt: _CifarFormat) -> Path | None:
    for d in _cifar_dirs(root, fmt):
        if d.is_dir() and not _missing(d, fmt.files):
            return d
    return None


def _unpickle(path: Path) -> dict[str, Any]:
    # The batches were pickled by Python 2; bytes keys under encoding="bytes". Normalise keys to str so
    # files re-pickled by other tools (str keys) load too. These are pickles: only load trusted files.
    try:
        with open(path, "rb") as f:
            obj = pickle.load(f, encoding="bytes")
    except Exception as e:
        raise DatasetNotFoundError(f"{path}: not a readable CIFAR pickle ({e})") from e
    if not isinstance(obj, dict):
        raise DatasetNotFoundError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _read_cifar_batch(path: Path, fmt: _CifarFormat) -> tuple[np.ndarray, np.ndarray]:
    d = _unpickle(path)
    for key in ("data", fmt.label_key):
        if key not in d:
            raise DatasetNotFoundError(f"{path}: no '{key}' entry (keys: {sorted(d)}); not a {fmt.title} batch")
    data = np.asarray(d["data"])
    labels = np.asarray(d[fmt.label_key])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DatasetNotFoundError(f"{path}: data is {data.dtype} {data.shape}, expected uint8 (N, 3072)")
    if labels.shape != (data.shape[0],):
        raise DatasetNotFoundError(
            f"{path}: {data.shape[0]} images but {labels.size} labels; corrupt batch file")
    return data, _check_file_labels(labels, fmt.num_classes, str(path))


def _load_cifar(root: Path, fmt: _CifarFormat) -> DatasetBundle:
    directory = _find_cifar(root, fmt)
    if directory is None:
        searched = [(d, _why(d, _missing(d, fmt.files))) for d in _cifar_dirs(root, fmt)]
        raise _not_found(fmt.title, searched, ", ".join(fmt.files), _CIFAR_SOURCE,
                         f"{root}/ (extract the archive there, giving {root / fmt.dirname}/)")

    def split(files: Sequence[str]) -> ArraySplit:
        parts = [_read_cifar_batch(directory / f, fmt) for f in files]
        data = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        # Rows are stored channel-major (1024 R, 1024 G, 1024 B), so a plain reshape gives (N, 3, 32, 32).
        images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())
        return ArraySplit(images=images, labels=labels, clean_labels=labels.copy())

    train = split(fmt.train_files)
    test = split([fmt.test_file])
    meta = _unpickle(directory / fmt.meta_file)
    if fmt.names_key not in meta:
        raise DatasetNotFoundError(f"{directory / fmt.meta_file}: no '{fmt.names_key}' entry")
    classes = [n.decode() if isinstance(n, bytes) else str(n) for n in meta[fmt.names_key]]
    if len(classes) != fmt.num_classes:
        raise DatasetNotFoundError(f"{directory / fmt.meta_file}: {len(classes)} class names, "
                                   f"{fmt.title} has {fmt.num_classes}")
    _warn_size(fmt.title, "train", len(train), fmt.num_train)
    _warn_size(fmt.title, "test", len(test), fmt.num_test)
    return DatasetBundle(name=fmt.key, num_classes=fmt.num_classes, classes=classes, train=train, test=test,
                         mean=fmt.mean, std=fmt.std, image_size=32, in_channels=3, real_noise=False)


register(DatasetInfo(
    "cifar10", "CIFAR-10", 10, False, _CIFAR_SOURCE,
    "cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}",
    lambda root: _find_cifar(root, _CIFAR10), lambda root, dl: _load_cifar(root, _CIFAR10)))
register(DatasetInfo(
    "cifar100", "CIFAR-100", 100, False, _CIFAR_SOURCE, "cifar-100-python/{train,test,meta}",
    lambda root: _find_cifar(root, _CIFAR100), lambda root, dl: _load_cifar(root, _CIFAR100)))
