"""ANIMAL-10N from its folders of 64x64 JPEGs, the (noisy) label written in each file name.

Looked for in ``root/animal-10n`` or ``root/ANIMAL-10N``, at any of the depths the archive extracts to
(``raw_image_ver/raw_image/{training,testing}``). Small enough to decode once into memory, so it loads as
an :class:`~nalkit.datasets.ArraySplit` like CIFAR.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ._common import (
    _IMAGE_EXTS,
    ArraySplit,
    DatasetBundle,
    DatasetInfo,
    DatasetNotFoundError,
    _not_found,
    _warn_size,
    _why,
    register,
)

ANIMAL10N_CLASSES = ["cat", "lynx", "wolf", "coyote", "cheetah", "jaguar", "chimpanzee", "orangutan",
                     "hamster", "guinea pig"]
_ANIMAL10N_SOURCE = "https://dm.kaist.ac.kr/datasets/animal-10n/ (request form; the 'raw image' version)"
_ANIMAL10N_SIZE = 64


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
    from .._progress import progress_bar

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
    # No published normalisation constants for ANIMAL-10N; the training set's own statistics cost one pass
    # over data already in memory. The authors' script normalises with ImageNet's constants instead
    # (train_animal10n.py:98-107): data.normalization=imagenet, as configs/paper/animal10n.yaml sets.
    mean, std = _channel_stats(train.images)
    return DatasetBundle(name="animal10n", num_classes=10, classes=list(ANIMAL10N_CLASSES), train=train,
                         test=test, mean=mean, std=std, image_size=64, in_channels=3, real_noise=True)


register(DatasetInfo(
    "animal10n", "ANIMAL-10N", 10, True, _ANIMAL10N_SOURCE,
    "animal-10n/{training,testing}/<label>_<imageid>.jpg",
    _find_animal10n, _load_animal10n))
