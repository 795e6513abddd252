"""What every dataset format module shares: the containers, the errors, the registry and the file checks.

The format modules (:mod:`.fashion_mnist`, :mod:`.cifar`, ...) build their splits from these containers,
report missing or malformed files through the same helpers (so every "not found" message has one shape:
what was searched, what was expected, where to get it) and register themselves in :data:`DATASETS`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..registry import Registry

# --------------------------------------------------------------------------------------------------
# Errors and containers
# --------------------------------------------------------------------------------------------------


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are missing or malformed.

    The message names the dataset, the directories searched, the files expected and where to get them.
    Subclasses :class:`FileNotFoundError` so callers that only know the builtin still catch it.
    """


class DatasetSizeWarning(UserWarning):
    """A split's size differs from the official release (a partial download or a deliberate subset)."""


@dataclass
class ArraySplit:
    """A split held fully in memory.

    Attributes:
        images: uint8 tensor, shape (N, C, H, W), values 0..255.
        labels: int64 array, shape (N,): the labels as shipped (clean for CIFAR / Fashion-MNIST,
            noisy for real-noise datasets).
        clean_labels: int64 array, shape (N,), where the true labels are known, else None.
    """

    images: torch.Tensor
    labels: np.ndarray
    clean_labels: np.ndarray | None

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class FileSplit:
    """A split read from disk image by image.

    Attributes:
        paths: absolute image paths, length N.
        labels: int64 array, shape (N,): the labels as shipped.
        clean_labels: int64 array, shape (N,), or None. For the Clothing1M training split, entries are
            -1 where the clean label of that image is unknown (most of them).
    """

    paths: list[str]
    labels: np.ndarray
    clean_labels: np.ndarray | None

    def __len__(self) -> int:
        return int(self.labels.shape[0])


Split = ArraySplit | FileSplit


@dataclass
class DatasetBundle:
    """Everything the trainer needs to know about one dataset.

    Attributes:
        name: registry key, e.g. ``"cifar10"``.
        num_classes: C.
        classes: C class names, index = label.
        train, test: the splits.
        val: a clean validation split (Clothing1M only), else None.
        extra_test: further test splits by name, e.g. ``{"ilsvrc12_val": ...}`` for WebVision.
        mean, std: per-channel normalisation in [0, 1] units (length = in_channels).
        image_size: training crop size in pixels.
        in_channels: 1 (Fashion-MNIST) or 3.
        real_noise: True when the shipped labels are already noisy (no noise injection).
        top5: evaluation also records top-5 accuracy (``<split>_top5``) on every evaluation split, as the
            paper does for mini-WebVision (top-1 and top-5 on WebVision val and ILSVRC12 val).
    """

    name: str
    num_classes: int
    classes: list[str]
    train: Split
    test: Split
    val: Split | None = None
    extra_test: dict[str, Split] = field(default_factory=dict)
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.5, 0.5, 0.5)
    image_size: int = 32
    in_channels: int = 3
    real_noise: bool = False
    top5: bool = False


#: ImageNet's per-channel statistics in [0, 1] units: WebVision's normalisation, and ANIMAL-10N's in the
#: authors' script (``data.normalization=imagenet``).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class DatasetInfo:
    """Registry entry: what a dataset is, where it is looked for, and how it is loaded.

    Attributes:
        name: registry key.
        title: human name.
        num_classes: C.
        real_noise: labels as shipped are noisy.
        source: where to download it.
        layout: the expected on-disk layout, relative to ``root`` (for messages and ``nalkit info``).
        find: ``find(root) -> Path | None``, the directory holding the files.
        load: ``load(root, download) -> DatasetBundle``.
    """

    name: str
    title: str
    num_classes: int
    real_noise: bool
    source: str
    layout: str
    find: Callable[[Path], Path | None]
    load: Callable[[Path, bool], DatasetBundle]


#: Every loadable dataset, in the order ``nalkit info`` lists them. Each format module registers its own
#: dataset(s) when :mod:`nalkit.datasets` imports it, so adding a format is one module and one import there.
DATASETS: Registry[DatasetInfo] = Registry("dataset")


def register(info: DatasetInfo) -> None:
    """Register ``info`` under ``info.name`` (the key and the field cannot disagree)."""
    DATASETS.add(info.name, info)


# --------------------------------------------------------------------------------------------------
# File checks and error messages
# --------------------------------------------------------------------------------------------------

# Image files the folder-based formats (ANIMAL-10N, the ILSVRC12 val folders of WebVision) accept.
_IMAGE_EXTS = (".jpg", ".jpeg", ".png")


def _abs(path: Path) -> Path:
    # absolute() rather than resolve(): keep symlinked data directories as the user named them.
    return Path(os.path.abspath(os.path.expanduser(path)))


def _not_found(title: str, searched: Sequence[tuple[Path, str]], expected: str, source: str,
               put: Path | str) -> DatasetNotFoundError:
    """The error for a dataset found nowhere: each searched directory with why it was rejected, the files
    expected, where to download them and where to put them."""
    lines = [f"{title} not found."]
    lines.append("Searched:")
    lines += [f"  {d}  ({why})" for d, why in searched]
    lines.append(f"Expected: {expected}")
    lines.append(f"Get it from {source} and put the files in {put}")
    return DatasetNotFoundError("\n".join(lines))


def _missing(directory: Path, names: Sequence[str]) -> list[str]:
    """Those of ``names`` (paths relative to ``directory``) that are not regular files."""
    return [n for n in names if not (directory / n).is_file()]


def _why(directory: Path, missing: Sequence[str]) -> str:
    """Why ``directory`` was rejected, for the "Searched:" lines of :func:`_not_found`."""
    if not directory.is_dir():
        return "no such directory"
    return "missing " + ", ".join(missing)


def _check_file_labels(labels: np.ndarray, num_classes: int, what: str) -> np.ndarray:
    """Labels read from a dataset file, as int64, checked to be 1-D and in 0..C-1.

    A bad value means a corrupt file or one of another dataset, so the error is a
    :class:`DatasetNotFoundError` naming ``what`` (the file). Empty label arrays pass: emptiness is
    caught by the size checks. (Labels given to :func:`nalkit.noise.inject_noise` by a caller are checked
    more strictly there, with ``ValueError``.)
    """
    labels = np.asarray(labels, dtype=np.int64)
    if labels.ndim != 1:
        raise DatasetNotFoundError(f"{what}: labels must be 1-D, got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetNotFoundError(
            f"{what}: labels must lie in 0..{num_classes - 1}, found {labels.min()}..{labels.max()}; "
            "the file is corrupt or belongs to another dataset")
    return labels


def _warn_size(title: str, split: str, got: int, expected: int) -> None:
    """Warn (:class:`DatasetSizeWarning`) when a split's size differs from the official release.

    ``stacklevel=3`` points the warning at the caller of the format's load function (``load_dataset``).
    """
    if got != expected:
        warnings.warn(f"{title} {split}: {got} samples, the official release has {expected} "
                      "(partial download or a custom subset?)", DatasetSizeWarning, stacklevel=3)


def _read_keys(path: Path) -> list[str]:
    """The non-blank lines of a text file, stripped (key lists, class-name files)."""
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def _check_sample_exists(paths: Sequence[str], what: str, n: int = 32) -> None:
    """Stat a fixed spread of n paths: catches a missing or misplaced image folder without
    stat-ing a million files on every start."""
    if not paths:
        raise DatasetNotFoundError(f"{what}: the split is empty")
    idx = np.unique(np.linspace(0, len(paths) - 1, num=min(n, len(paths))).astype(np.int64))
    absent = [paths[i] for i in idx if not os.path.isfile(paths[i])]
    if absent:
        raise DatasetNotFoundError(
            f"{what}: {len(absent)} of {len(idx)} checked images are missing, e.g. {absent[0]}; "
            "are the images extracted in the right place?")
