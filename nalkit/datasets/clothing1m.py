"""Clothing1M from its key lists and label key-value files (Xiao et al. 2015).

Looked for in ``root/clothing1m`` (or ``Clothing1M``, ``clothing1M``): an ``images/`` folder and the five
annotation files, in ``annotations/`` or beside ``images/``. One million images, so the splits are
:class:`~nalkit.datasets.FileSplit` path lists read by a DataLoader; the training labels are noisy, and
the ~37k training images that also carry a clean label keep it in ``clean_labels`` (-1 elsewhere).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._common import (
    DatasetBundle,
    DatasetInfo,
    DatasetNotFoundError,
    FileSplit,
    _check_sample_exists,
    _missing,
    _not_found,
    _read_keys,
    _warn_size,
    _why,
    register,
)

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


register(DatasetInfo(
    "clothing1m", "Clothing1M", 14, True, _CLOTHING1M_SOURCE,
    "clothing1m/images/..., clothing1m/[annotations/]{" + ",".join(CLOTHING1M_ANNOTATIONS) + "}",
    _find_clothing1m, _load_clothing1m))
