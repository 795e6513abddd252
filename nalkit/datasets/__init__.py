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

Entry point: :func:`load_dataset`. :data:`DATASETS` describes each dataset; :func:`find_dataset`
locates one without loading it.
"""

from __future__ import annotations

import gzip
import os
import pickle
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler

__all__ = [
    "DATASETS",
    "SYSTEM_DATA_DIRS",
    "ArraySplit",
    "ClassBalancedBatchSampler",
    "DatasetBundle",
    "DatasetInfo",
    "DatasetNotFoundError",
    "DatasetSizeWarning",
    "FileSplit",
    "ImageFileDataset",
    "file_transforms",
    "find_dataset",
    "load_dataset",
    "stratified_subset_indices",
]


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


# System-wide locations searched after ``root`` (Debian's ``dataset-fashion-mnist`` package installs
# here). A module-level tuple so tests can point it elsewhere.
SYSTEM_DATA_DIRS: tuple[Path, ...] = (Path("/usr/share/datasets"),)


def _abs(path: Path) -> Path:
    # absolute() rather than resolve(): keep symlinked data directories as the user named them.
    return Path(os.path.abspath(os.path.expanduser(path)))


def _not_found(title: str, searched: Sequence[tuple[Path, str]], expected: str, source: str,
               put: Path | str) -> DatasetNotFoundError:
    lines = [f"{title} not found."]
    lines.append("Searched:")
    lines += [f"  {d}  ({why})" for d, why in searched]
    lines.append(f"Expected: {expected}")
    lines.append(f"Get it from {source} and put the files in {put}")
    return DatasetNotFoundError("\n".join(lines))


def _missing(directory: Path, names: Sequence[str]) -> list[str]:
    return [n for n in names if not (directory / n).is_file()]


def _why(directory: Path, missing: Sequence[str]) -> str:
    if not directory.is_dir():
        return "no such directory"
    return "missing " + ", ".join(missing)


def _check_labels(labels: np.ndarray, num_classes: int, what: str) -> np.ndarray:
    labels = np.asarray(labels, dtype=np.int64)
    if labels.ndim != 1:
        raise DatasetNotFoundError(f"{what}: labels must be 1-D, got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetNotFoundError(
            f"{what}: labels must lie in 0..{num_classes - 1}, found {labels.min()}..{labels.max()}; "
            "the file is corrupt or belongs to another dataset")
    return labels


def _warn_size(title: str, split: str, got: int, expected: int) -> None:
    if got != expected:
        warnings.warn(f"{title} {split}: {got} samples, the official release has {expected} "
                      "(partial download or a custom subset?)", DatasetSizeWarning, stacklevel=3)


# --------------------------------------------------------------------------------------------------
# Fashion-MNIST (idx files)
# --------------------------------------------------------------------------------------------------

FASHION_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                       "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot"]
_FASHION_MNIST_SOURCE = "https://github.com/zalandoresearch/fashion-mnist (or `apt install dataset-fashion-mnist`)"
_IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned byte, 3 dimensions
_IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned byte, 1 dimension


def _fashion_mnist_dirs(root: Path) -> list[Path]:
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
    labels = _check_labels(labels, 10, str(lab_path))
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
            import torchvision

            torchvision.datasets.FashionMNIST(str(root), train=True, download=True)
            torchvision.datasets.FashionMNIST(str(root), train=False, download=True)
        except Exception as e:  # no network, mirror down, ...: report it with the search list
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


# --------------------------------------------------------------------------------------------------
# CIFAR-10 / CIFAR-100 (python pickle batches)
# --------------------------------------------------------------------------------------------------

_CIFAR_SOURCE = "https://www.cs.toronto.edu/~kriz/cifar.html (the 'python version' tar.gz)"


@dataclass(frozen=True)
class _CifarFormat:
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
    return data, _check_labels(labels, fmt.num_classes, str(path))


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


# --------------------------------------------------------------------------------------------------
# ANIMAL-10N (JPEG folders, label in the file name)
# --------------------------------------------------------------------------------------------------

ANIMAL10N_CLASSES = ["cat", "lynx", "wolf", "coyote", "cheetah", "jaguar", "chimpanzee", "orangutan",
                     "hamster", "guinea pig"]
_ANIMAL10N_SOURCE = "https://dm.kaist.ac.kr/datasets/animal-10n/ (request form; the 'raw image' version)"
_ANIMAL10N_SIZE = 64
_IMAGE_EXTS = (".jpg", ".jpeg", ".png")


def _animal10n_dirs(root: Path) -> list[Path]:
    # The archive extracts to raw_image_ver/raw_image/{training,testing}; accept the folders at any of
    # these depths so users need not move them.
    out = []
    for base in (root / "animal-10n", root / "ANIMAL-10N"):
        out += [base, base / "raw_image", base / "raw_image_ver" / "raw_image"]
    return out


def _find_animal10n(root: Path) -> Path | None:
    for d in _animal10n_dirs(root):
        if (d / "training").is_dir() and (d / "testing").is_dir():
            return d
    return None


def _animal10n_files(directory: Path) -> tuple[list[Path], np.ndarray]:
    # Sorted by name so the sample index (the key of NAL's per-sample target store) is reproducible.
    files = sorted(p for p in directory.iterdir() if p.suffix.lower() in _IMAGE_EXTS)
    if not files:
        raise DatasetNotFoundError(f"ANIMAL-10N: no images in {directory}; expected <label>_<imageid>.jpg files")
    labels = np.empty(len(files), dtype=np.int64)
    for i, p in enumerate(files):
        head = p.name.split("_", 1)[0]
        if not head.isdigit() or not 0 <= int(head) < 10:
            raise DatasetNotFoundError(
                f"ANIMAL-10N: cannot read a label from {p}; names must be <label>_<imageid>.jpg, label 0..9")
        labels[i] = int(head)
    return files, labels


def _decode_animal10n(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        if img.size != (_ANIMAL10N_SIZE, _ANIMAL10N_SIZE):
            raise DatasetNotFoundError(
                f"ANIMAL-10N: {path} is {img.size[0]}x{img.size[1]}, expected "
                f"{_ANIMAL10N_SIZE}x{_ANIMAL10N_SIZE}; the file is not from the ANIMAL-10N release")
        # convert() is a no-op for RGB JPEGs; it rescues a stray greyscale/palette file instead of failing.
        return np.asarray(img.convert("RGB"), dtype=np.uint8)


def _read_animal10n_split(directory: Path, desc: str) -> ArraySplit:
    from ._progress import progress_bar

    files, labels = _animal10n_files(directory)
    out = np.empty((len(files), _ANIMAL10N_SIZE, _ANIMAL10N_SIZE, 3), dtype=np.uint8)
    # JPEG decoding releases the GIL, so threads give a near-linear speed-up on 55k small files.
    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, arr in enumerate(progress_bar(pool.map(_decode_animal10n, files), total=len(files),
                                     desc=f"ANIMAL-10N {desc}", unit="img", leave=False)):
            out[i] = arr
    images = torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()  # (N, 3, 64, 64)
    return ArraySplit(images=images, labels=labels, clean_labels=None)


def _channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std in [0, 1] units of a uint8 (N, C, H, W) tensor, in chunks to bound memory."""
    c = images.shape[1]
    s = torch.zeros(c, dtype=torch.float64)
    s2 = torch.zeros(c, dtype=torch.float64)
    for start in range(0, images.shape[0], chunk):
        x = images[start:start + chunk].to(torch.float64) / 255.0
        s += x.sum(dim=(0, 2, 3))
        s2 += (x * x).sum(dim=(0, 2, 3))
    n = images.shape[0] * images.shape[2] * images.shape[3]
    mean = s / n
    std = (s2 / n - mean * mean).clamp_min(0).sqrt()
    return tuple(round(float(v), 4) for v in mean), tuple(round(float(v), 4) for v in std)


def _load_animal10n(root: Path, download: bool) -> DatasetBundle:
    directory = _find_animal10n(root)
    if directory is None:
        searched = [(d, _why(d, [n for n in ("training/", "testing/") if not (d / n).is_dir()]))
                    for d in _animal10n_dirs(root)]
        raise _not_found("ANIMAL-10N", searched,
                         "training/ (50,000 images) and testing/ (5,000 images), 64x64 JPEGs named "
                         "<label>_<imageid>.jpg", _ANIMAL10N_SOURCE, root / "animal-10n")
    train = _read_animal10n_split(directory / "training", "train")
    test = _read_animal10n_split(directory / "testing", "test")
    _warn_size("ANIMAL-10N", "train", len(train), 50000)
    _warn_size("ANIMAL-10N", "test", len(test), 5000)
    # No published normalisation constants for ANIMAL-10N; the training set's own statistics are the
    # principled choice and cost one pass over data already in memory.
    mean, std = _channel_stats(train.images)
    return DatasetBundle(name="animal10n", num_classes=10, classes=list(ANIMAL10N_CLASSES), train=train,
                         test=test, mean=mean, std=std, image_size=64, in_channels=3, real_noise=True)


# --------------------------------------------------------------------------------------------------
# Clothing1M (key lists + label key-value files)
# --------------------------------------------------------------------------------------------------

CLOTHING1M_CLASSES = ["T-Shirt", "Shirt", "Knitwear", "Chiffon", "Sweater", "Hoodie", "Windbreaker",
                      "Jacket", "Down Coat", "Suit", "Shawl", "Dress", "Vest", "Underwear"]
CLOTHING1M_ANNOTATIONS = ("noisy_label_kv.txt", "clean_label_kv.txt", "noisy_train_key_list.txt",
                          "clean_val_key_list.txt", "clean_test_key_list.txt")
_CLOTHING1M_SOURCE = "https://github.com/Cysu/noisy_label (request access from the authors)"


def _clothing1m_bases(root: Path) -> list[Path]:
    return [root / "clothing1m", root / "Clothing1M", root / "clothing1M"]


def _clothing1m_annotation_dir(base: Path) -> Path | None:
    for d in (base / "annotations", base):
        if d.is_dir() and not _missing(d, CLOTHING1M_ANNOTATIONS):
            return d
    return None


def _find_clothing1m(root: Path) -> Path | None:
    for base in _clothing1m_bases(root):
        if _clothing1m_annotation_dir(base) is not None and (base / "images").is_dir():
            return base
    return None


def _read_kv(path: Path, num_classes: int) -> dict[str, int]:
    out: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise DatasetNotFoundError(f"{path}:{lineno}: expected '<key> <label>', got {line.strip()!r}")
            label = int(parts[1])
            if not 0 <= label < num_classes:
                raise DatasetNotFoundError(f"{path}:{lineno}: label {label} outside 0..{num_classes - 1}")
            out[parts[0]] = label
    return out


def _read_keys(path: Path) -> list[str]:
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


def _load_clothing1m(root: Path, download: bool) -> DatasetBundle:
    base = _find_clothing1m(root)
    if base is None:
        searched = []
        for b in _clothing1m_bases(root):
            ann = b / "annotations" if (b / "annotations").is_dir() else b
            why = _missing(ann, CLOTHING1M_ANNOTATIONS) + ([] if (b / "images").is_dir() else ["images/"])
            searched.append((b, _why(b, why)))
        raise _not_found("Clothing1M", searched,
                         "images/ and, in annotations/ or beside images/: " + ", ".join(CLOTHING1M_ANNOTATIONS)
                         + " (category_names_eng.txt optional)", _CLOTHING1M_SOURCE, root / "clothing1m")
    ann = _clothing1m_annotation_dir(base)
    assert ann is not None
    noisy = _read_kv(ann / "noisy_label_kv.txt", 14)
    clean = _read_kv(ann / "clean_label_kv.txt", 14)

    def split(key_file: str, primary: dict[str, int], secondary: dict[str, int] | None) -> FileSplit:
        keys = _read_keys(ann / key_file)
        absent = [k for k in keys if k not in primary]
        if absent:
            src = "noisy_label_kv.txt" if primary is noisy else "clean_label_kv.txt"
            raise DatasetNotFoundError(
                f"Clothing1M: {len(absent)} keys of {ann / key_file} have no label in {ann / src}, "
                f"e.g. {absent[0]!r}; the annotation files do not belong together")
        labels = np.fromiter((primary[k] for k in keys), dtype=np.int64, count=len(keys))
        if secondary is None:
            clean_labels = labels.copy()
        else:
            # Only ~37k of the 1M noisy training images also carry a clean label; -1 marks the rest.
            clean_labels = np.fromiter((secondary.get(k, -1) for k in keys), dtype=np.int64, count=len(keys))
        paths = [str(base / k) for k in keys]
        _check_sample_exists(paths, f"Clothing1M {key_file}")
        return FileSplit(paths=paths, labels=labels, clean_labels=clean_labels)

    train = split("noisy_train_key_list.txt", noisy, clean)
    val = split("clean_val_key_list.txt", clean, None)
    test = split("clean_test_key_list.txt", clean, None)
    _warn_size("Clothing1M", "val", len(val), 14313)
    _warn_size("Clothing1M", "test", len(test), 10526)

    classes = list(CLOTHING1M_CLASSES)
    names_file = ann / "category_names_eng.txt"
    if names_file.is_file():
        names = _read_keys(names_file)
        if len(names) != 14:
            raise DatasetNotFoundError(f"{names_file}: {len(names)} class names, Clothing1M has 14")
        classes = names
    return DatasetBundle(name="clothing1m", num_classes=14, classes=classes, train=train, test=test, val=val,
                         # DivideMix's Clothing1M statistics (the NAL authors reuse its loader).
                         mean=(0.6959, 0.6537, 0.6371), std=(0.3113, 0.3192, 0.3214),
                         image_size=224, in_channels=3, real_noise=True)


# --------------------------------------------------------------------------------------------------
# mini-WebVision (first 50 classes of the Google subset) + ILSVRC12 val
# --------------------------------------------------------------------------------------------------

WEBVISION_NUM_CLASSES = 50
_WEBVISION_FILES = ("info/train_filelist_google.txt", "info/val_filelist.txt")
_WEBVISION_SOURCE = ("https://data.vision.ee.ethz.ch/cvl/webvision/download.html (WebVision 1.0, resized "
                     "Google images + validation); ILSVRC12 val from https://image-net.org, sorted into "
                     "imagenet/val/<class index>/ as in DivideMix")


def _webvision_bases(root: Path) -> list[Path]:
    return [root / "webvision", root / "WebVision", root / "mini-webvision"]


def _find_webvision(root: Path) -> Path | None:
    for b in _webvision_bases(root):
        if b.is_dir() and not _missing(b, _WEBVISION_FILES):
            return b
    return None


def _read_filelist(path: Path, prefix: Path, num_classes: int) -> FileSplit:
    paths: list[str] = []
    labels: list[int] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or not parts[1].isdigit():
                raise DatasetNotFoundError(f"{path}:{lineno}: expected '<image path> <label>', got {line.strip()!r}")
            label = int(parts[1])
            # mini-WebVision: the full list has 1000 classes; keep the first 50 (DivideMix convention).
            if label < num_classes:
                paths.append(str(prefix / parts[0]))
                labels.append(label)
    return FileSplit(paths=paths, labels=np.asarray(labels, dtype=np.int64), clean_labels=None)


def _webvision_classes(base: Path) -> list[str]:
    synsets = base / "info" / "synsets.txt"  # "n01440764 tench, Tinca tinca"
    if synsets.is_file():
        lines = _read_keys(synsets)[:WEBVISION_NUM_CLASSES]
        if len(lines) == WEBVISION_NUM_CLASSES:
            return [ln.split(" ", 1)[1].split(",")[0].strip() if " " in ln else ln for ln in lines]
    return [f"class_{i:02d}" for i in range(WEBVISION_NUM_CLASSES)]


def _read_imagenet_val(directory: Path) -> FileSplit:
    paths: list[str] = []
    labels: list[int] = []
    for c in range(WEBVISION_NUM_CLASSES):
        d = directory / str(c)
        if not d.is_dir():
            raise DatasetNotFoundError(
                f"ILSVRC12 val: {directory} exists but has no folder {c}/; expected folders 0..49 holding "
                "each class's 50 validation images (DivideMix layout)")
        files = sorted(p for p in d.iterdir() if p.suffix.lower() in _IMAGE_EXTS)
        if not files:
            raise DatasetNotFoundError(f"ILSVRC12 val: no images in {d}")
        paths += [str(p) for p in files]
        labels += [c] * len(files)
    label_array = np.asarray(labels, dtype=np.int64)
    return FileSplit(paths=paths, labels=label_array, clean_labels=label_array.copy())


def _load_webvision(root: Path, download: bool) -> DatasetBundle:
    base = _find_webvision(root)
    if base is None:
        searched = [(b, _why(b, _missing(b, _WEBVISION_FILES))) for b in _webvision_bases(root)]
        raise _not_found("mini-WebVision", searched,
                         "info/train_filelist_google.txt, info/val_filelist.txt, the google/ and val_images_256/ "
                         "image folders, optionally imagenet/val/0..49/", _WEBVISION_SOURCE, root / "webvision")
    train = _read_filelist(base / "info" / "train_filelist_google.txt", base, WEBVISION_NUM_CLASSES)
    test = _read_filelist(base / "info" / "val_filelist.txt", base / "val_images_256", WEBVISION_NUM_CLASSES)
    # WebVision val labels were checked by humans: they are the clean labels of that split.
    test.clean_labels = test.labels.copy()
    _check_sample_exists(train.paths, "mini-WebVision train (google/)")
    _check_sample_exists(test.paths, "mini-WebVision val (val_images_256/)")
    _warn_size("mini-WebVision", "val", len(test), 2500)

    extra: dict[str, Split] = {}
    imagenet = next((d for d in (base / "imagenet" / "val", root / "imagenet" / "val") if d.is_dir()), None)
    if imagenet is not None:
        extra["ilsvrc12_val"] = _read_imagenet_val(imagenet)
    else:
        # The ILSVRC12 images are a separate (licensed) download; WebVision is usable without them.
        warnings.warn(f"mini-WebVision: no ILSVRC12 val folder at {base / 'imagenet' / 'val'}; "
                      "the ilsvrc12_val evaluation is skipped", UserWarning, stacklevel=2)
    return DatasetBundle(name="webvision", num_classes=WEBVISION_NUM_CLASSES, classes=_webvision_classes(base),
                         train=train, test=test, extra_test=extra,
                         mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                         image_size=227, in_channels=3, real_noise=True)


# --------------------------------------------------------------------------------------------------
# Registry and entry points
# --------------------------------------------------------------------------------------------------

DATASETS: dict[str, DatasetInfo] = {
    "fashion_mnist": DatasetInfo(
        "fashion_mnist", "Fashion-MNIST", 10, False, _FASHION_MNIST_SOURCE,
        "fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz (or FashionMNIST/raw/, "
        "/usr/share/datasets/fashion-mnist/)",
        _find_fashion_mnist, _load_fashion_mnist),
    "cifar10": DatasetInfo(
        "cifar10", "CIFAR-10", 10, False, _CIFAR_SOURCE,
        "cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}",
        lambda root: _find_cifar(root, _CIFAR10), lambda root, dl: _load_cifar(root, _CIFAR10)),
    "cifar100": DatasetInfo(
        "cifar100", "CIFAR-100", 100, False, _CIFAR_SOURCE, "cifar-100-python/{train,test,meta}",
        lambda root: _find_cifar(root, _CIFAR100), lambda root, dl: _load_cifar(root, _CIFAR100)),
    "animal10n": DatasetInfo(
        "animal10n", "ANIMAL-10N", 10, True, _ANIMAL10N_SOURCE,
        "animal-10n/{training,testing}/<label>_<imageid>.jpg",
        _find_animal10n, _load_animal10n),
    "clothing1m": DatasetInfo(
        "clothing1m", "Clothing1M", 14, True, _CLOTHING1M_SOURCE,
        "clothing1m/images/..., clothing1m/[annotations/]{" + ",".join(CLOTHING1M_ANNOTATIONS) + "}",
        _find_clothing1m, _load_clothing1m),
    "webvision": DatasetInfo(
        "webvision", "mini-WebVision (50 classes)", WEBVISION_NUM_CLASSES, True, _WEBVISION_SOURCE,
        "webvision/info/{train_filelist_google,val_filelist}.txt, webvision/{google,val_images_256}/, "
        "webvision/imagenet/val/0..49/",
        _find_webvision, _load_webvision),
}


def _info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    return DATASETS[name]


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


def _subset(split: Split, idx: np.ndarray) -> Split:
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
        root: data directory; each dataset is looked for in its usual sub-folder (see ``DATASETS[name].layout``).
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
        bundle.train = _subset(bundle.train, idx)
    return bundle


# --------------------------------------------------------------------------------------------------
# File-backed training: Dataset, transforms, class-balanced sampler
# --------------------------------------------------------------------------------------------------


class ImageFileDataset(Dataset):
    """A :class:`FileSplit` as a torch Dataset.

    ``dataset[i]`` is ``(image, label, i)``: ``image`` is ``transform(PIL RGB image)`` (a uint8 (3, H, W)
    tensor when ``transform`` is None), ``label`` the shipped int label, and ``i`` the sample index, which
    keys NAL's per-sample target store.
    """

    def __init__(self, split: FileSplit, transform: Callable[[Image.Image], Any] | None = None) -> None:
        self.split = split
        self.transform = transform

    def __len__(self) -> int:
        return len(self.split.paths)

    def __getitem__(self, index: int) -> tuple[Any, int, int]:
        path = self.split.paths[index]
        with Image.open(path) as img:
            img = img.convert("RGB")  # greyscale / CMYK / palette files occur in web-crawled sets
        if self.transform is not None:
            image = self.transform(img)
        else:
            image = torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1)
        return image, int(self.split.labels[index]), index


# (resize, crop) per file-backed dataset, from the paper's appendix.
_FILE_SIZES = {"clothing1m": (256, 224), "webvision": (320, 227)}


def file_transforms(bundle: DatasetBundle, train: bool) -> Callable[[Image.Image], torch.Tensor]:
    """The paper's transforms for a file-backed dataset.

    Clothing1M: resize short side 256, then random crop 224 + horizontal flip (train) or centre crop 224
    (test). WebVision: resize 320, random crop 227 + flip, or centre crop 227. Then ToTensor and
    normalisation with ``bundle.mean`` / ``bundle.std``. Output: float (3, crop, crop).

    Raises:
        ValueError: the bundle is held in memory (those are augmented on the device by the trainer).
    """
    from torchvision import transforms as T

    if bundle.name not in _FILE_SIZES:
        raise ValueError(f"file_transforms is for file-backed datasets {sorted(_FILE_SIZES)}, got "
                         f"{bundle.name!r}; in-memory datasets are augmented by the trainer")
    resize, crop = _FILE_SIZES[bundle.name]
    geometry = [T.Resize(resize), T.RandomCrop(crop), T.RandomHorizontalFlip()] if train else \
        [T.Resize(resize), T.CenterCrop(crop)]
    return T.Compose([*geometry, T.ToTensor(), T.Normalize(bundle.mean, bundle.std)])


class ClassBalancedBatchSampler(Sampler[list[int]]):
    """Yields ``num_batches`` index batches per epoch, every class equally represented.

    The NAL authors train Clothing1M on 2000 mini-batches of 64 per epoch, balanced by the noisy label.
    Each batch holds ``batch_size // K`` samples of each of the K classes present in ``labels``, and the
    ``batch_size % K`` leftover slots go to distinct random classes, so per-batch class counts differ by
    at most one. Within a class, samples are drawn without replacement from a shuffled order, reshuffled
    when exhausted, so over an epoch every image of a small class is seen before any repeats.

    Use with ``DataLoader(dataset, batch_sampler=sampler)``; call :meth:`set_epoch` each epoch. The
    batches are a pure function of (labels, batch_size, num_batches, seed, epoch).
    """

    def __init__(self, labels: np.ndarray | Sequence[int], batch_size: int, num_batches: int, seed: int = 0) -> None:
        labels = np.asarray(labels, dtype=np.int64)
        if batch_size < 1 or num_batches < 1:
            raise ValueError(f"batch_size ({batch_size}) and num_batches ({num_batches}) must be >= 1")
        if labels.ndim != 1 or labels.size == 0:
            raise ValueError(f"labels must be a non-empty 1-D array, got shape {labels.shape}")
        self.classes = np.unique(labels)
        self.by_class = [np.flatnonzero(labels == c) for c in self.classes]
        self.batch_size = batch_size
        self.num_batches = num_batches
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration the (deterministic) batches of ``epoch``."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        k = len(self.classes)
        base, extra = divmod(self.batch_size, k)
        orders = [rng.permutation(ix) for ix in self.by_class]
        cursors = [0] * k

        def draw(c: int, n: int) -> list[int]:
            out: list[int] = []
            while n > 0:
                if cursors[c] == len(orders[c]):
                    orders[c] = rng.permutation(self.by_class[c])
                    cursors[c] = 0
                m = min(n, len(orders[c]) - cursors[c])
                out += orders[c][cursors[c]:cursors[c] + m].tolist()
                cursors[c] += m
                n -= m
            return out

        for _ in range(self.num_batches):
            counts = np.full(k, base, dtype=np.int64)
            if extra:
                counts[rng.choice(k, size=extra, replace=False)] += 1
            batch = [i for c in range(k) for i in draw(c, int(counts[c]))]
            yield [batch[j] for j in rng.permutation(len(batch))]
