"""mini-WebVision (the first 50 classes of WebVision 1.0's Google subset) and its ILSVRC12 val evaluation.

Looked for in ``root/webvision`` (or ``WebVision``, ``mini-webvision``): the ``info/`` file lists and the
``google/`` and ``val_images_256/`` image folders. Optionally the ILSVRC12 validation images of the same 50
classes, in ``imagenet/`` there or in ``root/imagenet``, in either layout:

* the official release: the flat ``imagenet/val/`` folder of the 50,000 ``ILSVRC2012_val_*.JPEG`` files
  plus a ground-truth list ``val.txt`` of ``<file name> <class index>`` lines, the class index in
  WebVision's (sorted-WNID) order, at ``imagenet/ILSVRC2012_devkit_t12/data/val.txt`` (where the authors'
  dataloader_webvision.py:14 reads it) or ``imagenet/val.txt``;
* DivideMix's pre-split layout ``imagenet/val/0..49/`` (one folder per class).

Kept as :class:`~nalkit.datasets.FileSplit` path lists; the training labels are noisy. Evaluation records
top-1 and top-5 accuracy (``DatasetBundle.top5``), as the paper reports both.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ._common import (
    _IMAGE_EXTS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    DatasetBundle,
    DatasetInfo,
    DatasetNotFoundError,
    FileSplit,
    Split,
    _check_sample_exists,
    _missing,
    _not_found,
    _read_keys,
    _warn_size,
    _why,
    register,
)

WEBVISION_NUM_CLASSES = 50
_WEBVISION_FILES = ("info/train_filelist_google.txt", "info/val_filelist.txt")
_WEBVISION_SOURCE = ("https://data.vision.ee.ethz.ch/cvl/webvision/download.html (WebVision 1.0, resized "
                     "Google images + validation); ILSVRC12 val from https://image-net.org (the flat val/ "
                     "folder with a val.txt ground truth, or sorted into imagenet/val/<class index>/ as in "
                     "DivideMix)")
#: Where the ground truth of the flat ILSVRC12 val folder is looked for, relative to the imagenet/ folder.
ILSVRC12_VAL_GROUND_TRUTH = ("ILSVRC2012_devkit_t12/data/val.txt", "val.txt")


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


def _read_imagenet_val_folders(directory: Path) -> FileSplit:
    """DivideMix's layout: ``directory/<class index>/*.JPEG`` for the 50 classes."""
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


def _read_imagenet_val_flat(directory: Path, ground_truth: Path) -> FileSplit:
    """The official flat ``val/`` folder, labelled by ``ground_truth`` (``<file name> <class index>`` lines).

    Images are matched to labels by file name (the authors match the i-th line to the i-th file of the sorted
    folder, dataloader_webvision.py:18-23, which is the same when the list is sorted and complete).
    """
    paths: list[str] = []
    labels: list[int] = []
    with open(ground_truth, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or not parts[1].isdigit():
                raise DatasetNotFoundError(
                    f"{ground_truth}:{lineno}: expected '<file name> <class index>', got {line.strip()!r}. "
                    "(The devkit's ILSVRC2012_validation_ground_truth.txt, labels only and in another class "
                    "order, cannot be used: provide the file-name list, e.g. Caffe's ilsvrc12 val.txt.)")
            label = int(parts[1])
            if label >= 1000:
                raise DatasetNotFoundError(f"{ground_truth}:{lineno}: class index {label} outside 0..999")
            if label < WEBVISION_NUM_CLASSES:
                paths.append(str(directory / parts[0]))
                labels.append(label)
    if not paths:
        raise DatasetNotFoundError(f"ILSVRC12 val: {ground_truth} lists no image of classes 0..49")
    absent = [p for p in paths if not Path(p).is_file()]
    if absent:
        raise DatasetNotFoundError(
            f"ILSVRC12 val: {len(absent)} of the {len(paths)} images of classes 0..49 listed in {ground_truth} "
            f"are not in {directory}, e.g. {Path(absent[0]).name}; is the val/ folder complete?")
    label_array = np.asarray(labels, dtype=np.int64)
    return FileSplit(paths=paths, labels=label_array, clean_labels=label_array.copy())


def _read_ilsvrc12_val(imagenet: Path) -> FileSplit:
    """The ILSVRC12 val split of the 50 classes from ``imagenet/`` (either layout, see the module doc)."""
    val = imagenet / "val"
    if (val / "0").is_dir():
        return _read_imagenet_val_folders(val)
    truth = next((imagenet / t for t in ILSVRC12_VAL_GROUND_TRUTH if (imagenet / t).is_file()), None)
    if truth is None:
        raise DatasetNotFoundError(
            f"ILSVRC12 val: {val} has no class folders 0..49 and no ground truth was found at "
            + " or ".join(str(imagenet / t) for t in ILSVRC12_VAL_GROUND_TRUTH)
            + "; put the list of '<file name> <class index>' lines (class index in WebVision's synset order) "
            "there, or sort the images into val/0..49/")
    return _read_imagenet_val_flat(val, truth)


def _load_webvision(root: Path, download: bool) -> DatasetBundle:
    base = _find_webvision(root)
    if base is None:
        searched = [(b, _why(b, _missing(b, _WEBVISION_FILES))) for b in _webvision_bases(root)]
        raise _not_found("mini-WebVision", searched,
                         "info/train_filelist_google.txt, info/val_filelist.txt, the google/ and val_images_256/ "
                         "image folders, optionally imagenet/val/ (flat, with imagenet/"
                         f"{ILSVRC12_VAL_GROUND_TRUTH[0]}) or imagenet/val/0..49/",
                         _WEBVISION_SOURCE, root / "webvision")
    train = _read_filelist(base / "info" / "train_filelist_google.txt", base, WEBVISION_NUM_CLASSES)
    test = _read_filelist(base / "info" / "val_filelist.txt", base / "val_images_256", WEBVISION_NUM_CLASSES)
    # WebVision val labels were checked by humans: they are the clean labels of that split.
    test.clean_labels = test.labels.copy()
    _check_sample_exists(train.paths, "mini-WebVision train (google/)")
    _check_sample_exists(test.paths, "mini-WebVision val (val_images_256/)")
    _warn_size("mini-WebVision", "val", len(test), 2500)

    extra: dict[str, Split] = {}
    imagenet = next((d for d in (base / "imagenet", root / "imagenet") if (d / "val").is_dir()), None)
    if imagenet is not None:
        extra["ilsvrc12_val"] = _read_ilsvrc12_val(imagenet)
    else:
        # The ILSVRC12 images are a separate (licensed) download; WebVision is usable without them.
        warnings.warn(f"mini-WebVision: no ILSVRC12 val folder at {base / 'imagenet' / 'val'}; "
                      "the ilsvrc12_val evaluation is skipped", UserWarning, stacklevel=2)
    return DatasetBundle(name="webvision", num_classes=WEBVISION_NUM_CLASSES, classes=_webvision_classes(base),
                         train=train, test=test, extra_test=extra,
                         mean=IMAGENET_MEAN, std=IMAGENET_STD,
                         image_size=227, in_channels=3, real_noise=True, top5=True)


register(DatasetInfo(
    "webvision", "mini-WebVision (50 classes)", WEBVISION_NUM_CLASSES, True, _WEBVISION_SOURCE,
    "webvision/info/{train_filelist_google,val_filelist}.txt, webvision/{google,val_images_256}/, "
    "webvision/imagenet/{val/*.JPEG + ILSVRC2012_devkit_t12/data/val.txt, or val/0..49/}",
    _find_webvision, _load_webvision))
