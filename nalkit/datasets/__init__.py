"""Datasets: loaders for the on-disk formats the NAL experiments use.

Every loader reads the files users actually download (idx files, the CIFAR python pickles, the
ANIMAL-10N JPEG folders, the Clothing1M and WebVision key lists), checks what it reads, and fails
with a :class:`DatasetNotFoundError` that says which directories were searched, which files were
expected and where to get them.

Two kinds of split:

- :class:`ArraySplit` -- small datasets (Fashion-MNIST, CIFAR, ANIMAL-10N) held fully in memory as one
  uint8 tensor, so the trainer can move the whole set to the GPU and augment in batches.
- :class:`FileSplit` -- large image datasets (Clothing1M, mini-WebVision) kept as paths and read by a
  DataLoader through :class:`ImageFileDataset`, with the paper's transforms from :func:`file_transforms`.

Labels are int64 numpy arrays. ``labels`` are always the labels as shipped: clean for the synthetic-noise
datasets (noise is injected later by :mod:`nalkit.noise`), already noisy for the real-noise datasets.

Entry point: :func:`load_dataset`. :data:`DATASETS` (a :class:`~nalkit.registry.Registry`) describes each
dataset; :func:`find_dataset` locates one without loading it.

One module per on-disk format, each registering its dataset(s) in :data:`DATASETS` on import:
:mod:`.fashion_mnist` (idx files), :mod:`.cifar` (pickle batches), :mod:`.animal10n` (JPEG folders),
:mod:`.clothing1m` (key lists), :mod:`.webvision` (file lists); :mod:`._common` holds the containers and
the file checks they share, :mod:`.files` the Dataset, transforms and sampler of file-backed training.
Every public name is importable from ``nalkit.datasets`` itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

# Importing a format module registers its dataset(s) in DATASETS, so the order of these imports is the
# registry's order (the order of `nalkit info` and of the names in error messages).
from . import fashion_mnist, cifar, animal10n, clothing1m, webvision  # noqa: F401  # isort: skip
from ._common import (
    DATASETS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    ArraySplit,
    DatasetBundle,
    DatasetInfo,
    DatasetNotFoundError,
    DatasetSizeWarning,
    FileSplit,
    Split,
    _abs,
)
from .animal10n import ANIMAL10N_CLASSES
from .clothing1m import CLOTHING1M_ANNOTATIONS, CLOTHING1M_CLASSES

# read_idx is re-exported for callers; the Fashion-MNIST loader calls nalkit.datasets.fashion_mnist.read_idx,
# so code that wants to intercept the reads patches it there.
from .fashion_mnist import FASHION_MNIST_CLASSES, FASHION_MNIST_FILES, read_idx
from .files import (
    FILE_GEOMETRY,
    ClassBalancedBatchSampler,
    ImageFileDataset,
    class_balanced_subset_indices,
    file_transforms,
)
from .webvision import WEBVISION_NUM_CLASSES

# System-wide locations searched after ``root`` (Debian's ``dataset-fashion-mnist`` package installs
# here). Its one home is this package attribute: the loaders that search it (today Fashion-MNIST's) read it
# from here at call time, so ``monkeypatch.setattr(nalkit.datasets, "SYSTEM_DATA_DIRS", ...)`` takes effect.
SYSTEM_DATA_DIRS: tuple[Path, ...] = (Path("/usr/share/datasets"),)

__all__ = [
    "ANIMAL10N_CLASSES",
    "CLOTHING1M_ANNOTATIONS",
    "CLOTHING1M_CLASSES",
    "DATASETS",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_FILES",
    "FILE_GEOMETRY",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "SYSTEM_DATA_DIRS",
    "WEBVISION_NUM_CLASSES",
    "ArraySplit",
    "ClassBalancedBatchSampler",
    "DatasetBundle",
    "DatasetInfo",
    "DatasetNotFoundError",
    "DatasetSizeWarning",
    "FileSplit",
    "ImageFileDataset",
    "Split",
    "class_balanced_subset_indices",
    "file_transforms",
    "find_dataset",
    "load_dataset",
    "read_idx",
    "stratified_subset_indices",
    "take",
]


def _info(name: str) -> DatasetInfo:
    # The registry's error: a ValueError naming the known datasets and the closest match.
    return DATASETS.get(name)


def find_dataset(name: str, root: str | Path = "data") -> Path | None:
    """Return the directory where ``name``'s files are, without loading or downloading; None if absent.

    Raises:
        ValueError: unknown dataset name.
    """
    return _info(name).find(_abs(Path(root)))


def stratified_subset_indices(labels: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """Indices of a class-stratified random subset, sorted ascending.

    Each class gets ``floor(size * n_c / N)`` samples; the remaining slots go to the classes with the
    largest fractional parts (ties to the lower class index), so proportions match the full split to
    within one sample per class. Deterministic in (labels, size, seed).

    Args:
        labels: int array (N,).
        size: subset size, 1..N.
        seed: numpy Generator seed.

    Returns:
        int64 array (size,), sorted.
    """
    labels = np.asarray(labels)
    n = labels.shape[0]
    if not 1 <= size <= n:
        raise ValueError(f"train_subset={size} must be between 1 and the training set size {n}")
    classes, counts = np.unique(labels, return_counts=True)
    exact = size * counts / n
    take = np.floor(exact).astype(np.int64)
    remainder = size - int(take.sum())
    # Stable sort on -fraction: ties go to the lower class index, keeping the result seed-independent.
    order = np.argsort(-(exact - take), kind="stable")
    take[order[:remainder]] += 1
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take, strict=True)]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def take(split: Split, idx: np.ndarray) -> Split:
    """The samples ``idx`` (int array) of ``split``, in that order, with their labels and clean labels."""
    clean = None if split.clean_labels is None else split.clean_labels[idx]
    if isinstance(split, ArraySplit):
        return ArraySplit(images=split.images[torch.from_numpy(idx)].contiguous(), labels=split.labels[idx],
                          clean_labels=clean)
    return FileSplit(paths=[split.paths[i] for i in idx], labels=split.labels[idx], clean_labels=clean)


def load_dataset(name: str, root: str | Path = "data", *, download: bool = True,
                 train_subset: int | None = None, subset_seed: int = 0) -> DatasetBundle:
    """Load one dataset from its on-disk release format.

    Args:
        name: one of :data:`DATASETS` (``fashion_mnist``, ``cifar10``, ``cifar100``, ``animal10n``,
            ``clothing1m``, ``webvision``).
        root: data directory; each dataset is looked for in its usual sub-folder (see ``DATASETS.get(name).layout``).
        download: Fashion-MNIST only: fetch it with torchvision if no local copy is found. The other
            datasets need a manual download (licences, request forms, size).
        train_subset: if given, keep a class-stratified random subset of this many training samples
            (indices sorted, so order follows the original split). Used for the CPU regime.
        subset_seed: seed of that subset.

    Returns:
        A :class:`DatasetBundle`.

    Raises:
        ValueError: unknown name, or ``train_subset`` outside 1..len(train).
        DatasetNotFoundError: files missing or malformed.
    """
    info = _info(name)
    bundle = info.load(_abs(Path(root)), download)
    if train_subset is not None:
        idx = stratified_subset_indices(bundle.train.labels, train_subset, subset_seed)
        bundle.train = take(bundle.train, idx)
    return bundle
