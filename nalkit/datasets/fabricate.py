"""Tiny copies of each dataset's on-disk release format: for tests, benchmarks and dry runs of a recipe.

:func:`fabricate_dataset` writes under ``root`` the files that dataset's loader reads, in the release's
format and at the release's image sizes; only the number of images differs (and the pixels, which are
random). So a recipe of ``configs/paper/`` can build its loader, transforms, model and method and take a
step with ``data.root`` pointed at a temporary directory, without the (licensed, large) data:

========================  ==========================================================================
dataset                   what is written
========================  ==========================================================================
``fashion_mnist``         the four gzipped idx files, 28x28
``cifar10``               ``cifar-10-batches-py/``: five ``data_batch_*`` pickles, ``test_batch``,
                          ``batches.meta``; 32x32
``cifar100``              ``cifar-100-python/``: ``train``, ``test``, ``meta`` pickles; 32x32
``animal10n``             ``animal-10n/{training,testing}/<label>_<id>.jpg``, 64x64 JPEGs
``clothing1m``            ``clothing1m/images/...jpg`` (about 256 px, sizes vary as in the release) and
                          ``clothing1m/annotations/``: the five key / label files + class names
``webvision``             ``webvision/info/`` file lists and ``synsets.txt``, ``google/`` and
                          ``val_images_256/`` JPEGs (256 px on the shorter side), and the ILSVRC12 val
                          images at full size in the official flat ``imagenet/val/`` folder with
                          ``imagenet/ILSVRC2012_devkit_t12/data/val.txt`` (or DivideMix's
                          ``imagenet/val/0..49/``, or none)
========================  ==========================================================================

Labels cycle through the classes (``i % C``) unless given, so every class is present once ``n >= C``.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from .clothing1m import CLOTHING1M_ANNOTATIONS, CLOTHING1M_CLASSES


def _labels(n: int, num_classes: int, labels: Sequence[int] | None) -> np.ndarray:
    if labels is None:
        return np.arange(n, dtype=np.int64) % num_classes
    out = np.asarray(labels, dtype=np.int64)
    if out.shape != (n,) or (n and (out.min() < 0 or out.max() >= num_classes)):
        raise ValueError(f"labels must be {n} class indices in 0..{num_classes - 1}, got shape {out.shape}")
    return out


def write_jpeg(path: Path, size: tuple[int, int], rng: np.random.Generator) -> None:
    """A random smooth RGB JPEG of ``size`` = (width, height) pixels at ``path`` (folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    coarse = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)  # upscaled: compresses like a photo
    Image.fromarray(coarse).resize(size, Image.BILINEAR).save(path, quality=90)


def _idx(path: Path, array: np.ndarray, magic: int) -> None:
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _fashion_mnist(root: Path, n_train: int, n_test: int, labels, rng, **_) -> Path:
    d = root / "fashion-mnist"
    d.mkdir(parents=True, exist_ok=True)
    for prefix, n, lab in (("train", n_train, _labels(n_train, 10, labels)), ("t10k", n_test, None)):
        _idx(d / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), 2051)
        _idx(d / f"{prefix}-labels-idx1-ubyte.gz", _labels(n, 10, lab), 2049)
    return d


def _pickle(path: Path, obj: dict) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=2))  # the release was pickled by Python 2: bytes keys


def _cifar10(root: Path, n_train: int, n_test: int, labels, rng, **_) -> Path:
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True, exist_ok=True)
    train_labels = _labels(n_train, 10, labels)
    parts = np.array_split(np.arange(n_train), 5)
    for i, part in enumerate(parts, 1):
        _pickle(d / f"data_batch_{i}", {b"batch_label": f"training batch {i} of 5".encode(),
                                        b"labels": train_labels[part].tolist(),
                                        b"data": rng.integers(0, 256, (len(part), 3072), dtype=np.uint8),
                                        b"filenames": [b"x.png"] * len(part)})
    _pickle(d / "test_batch", {b"batch_label": b"testing batch 1 of 1", b"labels": _labels(n_test, 10, None).tolist(),
                               b"data": rng.integers(0, 256, (n_test, 3072), dtype=np.uint8),
                               b"filenames": [b"x.png"] * n_test})
    names = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    _pickle(d / "batches.meta", {b"label_names": [n.encode() for n in names], b"num_vis": 3072,
                                 b"num_cases_per_batch": 10000})
    return d


def _cifar100(root: Path, n_train: int, n_test: int, labels, rng, **_) -> Path:
    d = root / "cifar-100-python"
    d.mkdir(parents=True, exist_ok=True)
    for name, n, lab in (("train", n_train, _labels(n_train, 100, labels)), ("test", n_test, None)):
        fine = _labels(n, 100, lab)
        _pickle(d / name, {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                           b"fine_labels": fine.tolist(), b"coarse_labels": (fine // 5).tolist()})
    _pickle(d / "meta", {b"fine_label_names": [f"class{i}".encode() for i in range(100)],
                         b"coarse_label_names": [f"super{i}".encode() for i in range(20)]})
    return d


def _animal10n(root: Path, n_train: int, n_test: int, labels, rng, **_) -> Path:
    d = root / "animal-10n"
    for folder, n, lab in (("training", n_train, _labels(n_train, 10, labels)), ("testing", n_test, None)):
        for i, y in enumerate(_labels(n, 10, lab)):
            write_jpeg(d / folder / f"{y}_{i:05d}.jpg", (64, 64), rng)
    return d


# Clothing1M's images come in varied sizes around 256 px; a few of them, cycled.
_CLOTHING1M_SIZES = ((256, 256), (300, 256), (256, 342), (280, 280))


def _clothing1m(root: Path, n_train: int, n_test: int, labels, rng, n_val: int | None = None, **_) -> Path:
    base = root / "clothing1m"
    ann = base / "annotations"
    ann.mkdir(parents=True, exist_ok=True)
    n_val = n_test if n_val is None else n_val

    def keys(first: int, n: int) -> list[str]:  # the release's keys look like images/3/71/1234567890.jpg
        return [f"images/{i % 10}/{i // 10 % 100:02d}/{1_000_000 + i}.jpg" for i in range(first, first + n)]

    train, val, test = keys(0, n_train), keys(n_train, n_val), keys(n_train + n_val, n_test)
    noisy = dict(zip(train, _labels(n_train, 14, labels).tolist(), strict=True))
    # Some training images also carry a clean label (about 37k of the real 1M); val and test are all clean.
    clean = {k: (y + 1) % 14 for k, y in list(noisy.items())[::7]}
    clean |= {k: i % 14 for i, k in enumerate(val + test)}
    files = dict(zip(CLOTHING1M_ANNOTATIONS, (noisy, clean, train, val, test), strict=True))
    for name, content in files.items():
        lines = [f"{k} {v}" for k, v in content.items()] if isinstance(content, dict) else content
        (ann / name).write_text("\n".join(lines) + "\n")
    (ann / "category_names_eng.txt").write_text("\n".join(CLOTHING1M_CLASSES) + "\n")
    for i, k in enumerate(train + val + test):
        write_jpeg(base / k, _CLOTHING1M_SIZES[i % len(_CLOTHING1M_SIZES)], rng)
    return base


# The resized WebVision release: 256 px on the shorter side. ILSVRC12 val: full-size photos.
_WEBVISION_SIZES = ((341, 256), (256, 320), (256, 256))
_ILSVRC12_SIZES = ((500, 375), (500, 333), (375, 500))


def _webvision(root: Path, n_train: int, n_test: int, labels, rng, imagenet: str | None = "flat",
               n_imagenet: int | None = None, **_) -> Path:
    base = root / "webvision"
    (base / "info").mkdir(parents=True, exist_ok=True)
    # The full lists cover 1000 classes; the loader keeps the first 50. Two lines of other classes check that.
    train_labels = _labels(n_train, 50, labels).tolist() + [50, 999]
    lines = []
    for i, y in enumerate(train_labels):
        rel = f"google/q{y + 1:04d}/img{i:06d}.jpg"
        lines.append(f"{rel} {y}")
        write_jpeg(base / rel, _WEBVISION_SIZES[i % len(_WEBVISION_SIZES)], rng)
    (base / "info" / "train_filelist_google.txt").write_text("\n".join(lines) + "\n")
    lines = []
    for i, y in enumerate(_labels(n_test, 50, None).tolist() + [700]):
        lines.append(f"val{i + 1:06d}.jpg {y}")
        write_jpeg(base / "val_images_256" / f"val{i + 1:06d}.jpg", _WEBVISION_SIZES[i % 3], rng)
    (base / "info" / "val_filelist.txt").write_text("\n".join(lines) + "\n")
    (base / "info" / "synsets.txt").write_text("".join(f"n{i:08d} class{i}, alias\n" for i in range(1000)))
    n_imagenet = n_test if n_imagenet is None else n_imagenet
    inet_labels = _labels(n_imagenet, 50, None).tolist() + [51, 998]
    if imagenet == "flat":
        lines = []
        for i, y in enumerate(inet_labels):
            name = f"ILSVRC2012_val_{i + 1:08d}.JPEG"
            lines.append(f"{name} {y}")
            write_jpeg(base / "imagenet" / "val" / name, _ILSVRC12_SIZES[i % 3], rng)
        truth = base / "imagenet" / "ILSVRC2012_devkit_t12" / "data" / "val.txt"
        truth.parent.mkdir(parents=True, exist_ok=True)
        truth.write_text("\n".join(lines) + "\n")
    elif imagenet == "folders":  # this layout has a folder for each of the 50 classes: one image at least
        inet_labels = _labels(max(n_imagenet, 50), 50, None).tolist()
        for c in range(50):
            for i in np.flatnonzero(np.asarray(inet_labels) == c):
                write_jpeg(base / "imagenet" / "val" / str(c) / f"ILSVRC2012_val_{i + 1:08d}.JPEG",
                           _ILSVRC12_SIZES[i % 3], rng)
    elif imagenet is not None:
        raise ValueError(f"imagenet={imagenet!r} is not 'flat', 'folders' or None")
    return base


_FABRICATORS: dict[str, Callable[..., Path]] = {
    "fashion_mnist": _fashion_mnist, "cifar10": _cifar10, "cifar100": _cifar100, "animal10n": _animal10n,
    "clothing1m": _clothing1m, "webvision": _webvision,
}


def fabricate_dataset(name: str, root: str | Path, n_train: int = 20, n_test: int = 10, *,
                      labels: Sequence[int] | None = None, seed: int = 0, **options) -> Path:
    """Write a tiny copy of dataset ``name`` in its release format under ``root``; return its directory.

    Args:
        name: a dataset of :data:`nalkit.datasets.DATASETS`.
        root: what ``data.root`` will point at.
        n_train: training images (mini-WebVision: of the 50 kept classes; two more of other classes are
            listed, as the full lists hold 1000 classes).
        n_test: test images (Clothing1M: also the clean validation images unless ``n_val`` is given;
            mini-WebVision: WebVision val images, and ILSVRC12 val images unless ``n_imagenet`` is given; at
            least 50 in the ``"folders"`` layout, which has a folder per class).
        labels: the ``n_train`` training labels (noisy ones for the real-noise datasets); default ``i % C``.
        seed: seed of the random pixels.
        **options: ``n_val`` (Clothing1M); ``imagenet`` = ``"flat"`` (default), ``"folders"`` or None and
            ``n_imagenet`` (mini-WebVision).

    Raises:
        ValueError: unknown dataset or bad labels.
    """
    if name not in _FABRICATORS:
        raise ValueError(f"cannot fabricate {name!r}; known: {', '.join(_FABRICATORS)}")
    return _FABRICATORS[name](Path(root), n_train, n_test, labels, np.random.default_rng(seed), **options)
