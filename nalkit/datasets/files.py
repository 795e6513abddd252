"""Training on file-backed datasets (Clothing1M, mini-WebVision): a torch Dataset over a
:class:`~nalkit.datasets.FileSplit`, the authors' transforms, and class-balanced sampling (a fixed subset
or fresh batches every epoch).

In-memory datasets (:class:`~nalkit.datasets.ArraySplit`) do not come here: the trainer moves them to the
device whole and augments them in batches there (:mod:`nalkit.loader`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler

from ._common import DatasetBundle, FileSplit


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


#: Geometry of each file-backed split: (resize, crop) in pixels. ``resize`` is the shorter side an image is
#: scaled to first (None: it is cropped at the size it is stored in); the crop is random (+ horizontal flip)
#: for training and central for evaluation. Keys: dataset, then "train", "eval" or an evaluation split's name.
#:
#: * Clothing1M: Resize(256) + crop 224 (appendix B.1; the authors' dataloader_clothing1m.py:110-122).
#: * mini-WebVision: crop 227 straight from the 256-px release images, no resize (the authors'
#:   dataloader_webvision.py:104-114, as ELR+'s loader); the appendix says only "227 x 227". ILSVRC12 val
#:   images are full size, so they are resized to 256 first (dataloader_webvision.py:115-120).
FILE_GEOMETRY: dict[str, dict[str, tuple[int | None, int]]] = {
    "clothing1m": {"train": (256, 224), "eval": (256, 224)},
    "webvision": {"train": (None, 227), "eval": (None, 227), "ilsvrc12_val": (256, 227)},
}


def file_transforms(bundle: DatasetBundle, train: bool, split: str = "test",
                    mean: Sequence[float] | None = None,
                    std: Sequence[float] | None = None) -> Callable[[Image.Image], torch.Tensor]:
    """The authors' transforms for one split of a file-backed dataset (``FILE_GEOMETRY``).

    Training: [resize] + random crop + horizontal flip; evaluation: [resize] + centre crop. Then ToTensor and
    normalisation with ``mean`` / ``std`` (default ``bundle.mean`` / ``bundle.std``). Output: float
    (3, crop, crop), e.g. (3, 227, 227) for every mini-WebVision split.

    Args:
        bundle: a file-backed dataset (Clothing1M, mini-WebVision).
        train: the training transform (``split`` is then ignored).
        split: the evaluation split's name (``"test"``, ``"clean_val"``, ``"ilsvrc12_val"``...): splits
            without their own entry in ``FILE_GEOMETRY`` use the dataset's ``"eval"`` geometry.

    Raises:
        ValueError: the bundle is held in memory (those are augmented on the device by the trainer).
    """
    from .._io import require_torchvision

    T = require_torchvision("the file-backed datasets' transforms").transforms

    if bundle.name not in FILE_GEOMETRY:
        raise ValueError(f"file_transforms is for file-backed datasets {sorted(FILE_GEOMETRY)}, got "
                         f"{bundle.name!r}; in-memory datasets are augmented by the trainer")
    sizes = FILE_GEOMETRY[bundle.name]
    resize, crop = sizes["train"] if train else sizes.get(split, sizes["eval"])
    geometry = [] if resize is None else [T.Resize(resize)]
    if train:
        # pad_if_needed never fires on the releases' images (256 px or more on the shorter side); it keeps a
        # stray smaller file from stopping a 500-epoch run.
        geometry += [T.RandomCrop(crop, pad_if_needed=True), T.RandomHorizontalFlip()]
    else:
        geometry += [T.CenterCrop(crop)]
    mean = bundle.mean if mean is None else tuple(mean)
    std = bundle.std if std is None else tuple(std)
    return T.Compose([*geometry, T.ToTensor(), T.Normalize(mean, std)])


def class_balanced_subset_indices(labels: np.ndarray | Sequence[int], size: int, seed: int = 0) -> np.ndarray:
    """Indices of a random subset of exactly ``size`` samples with the classes as equal as they can be.

    Every class gets ``size // K`` samples and ``size % K`` classes (the lowest class indices) one more;
    should a class hold fewer samples than its share, all of them are taken and the shortfall is spread the
    same way over the other classes. The authors' Clothing1M loader (dataloader_clothing1m.py:43-52) caps
    each class at ``size / 14`` while walking a shuffled list, which gives the same counts up to the
    one-sample rounding, except that it returns fewer samples when a class is short.

    Args:
        labels: int array (N,), e.g. the noisy labels (the balance is by noisy label).
        size: 1..N samples.
        seed: numpy Generator seed; the result is a pure function of (labels, size, seed).

    Returns:
        int64 array (size,), sorted ascending.

    Raises:
        ValueError: ``size`` outside 1..N, or labels not a non-empty 1-D array.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {labels.shape}")
    if not 1 <= size <= labels.size:
        raise ValueError(f"a class-balanced subset of {size} samples needs 1..{labels.size} (the number of "
                         f"samples there are)")
    classes, counts = np.unique(labels, return_counts=True)
    k = len(classes)
    take = np.zeros(k, dtype=np.int64)
    left = size
    order = np.argsort(counts, kind="stable")  # smallest classes first: they may run out
    for pos, c in enumerate(order):
        if counts[c] * (k - pos) <= left:  # the class is no larger than an equal share of what is left
            take[c] = counts[c]
            left -= int(counts[c])
            continue
        rest = np.sort(order[pos:])  # every remaining class holds more than an equal share
        base, extra = divmod(left, len(rest))
        take[rest] = base
        take[rest[:extra]] += 1
        break
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:n] for c, n in zip(classes, take, strict=True)]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


class ClassBalancedBatchSampler(Sampler[list[int]]):
    """Yields ``num_batches`` index batches per epoch, every class equally represented.

    Appendix B.3 read literally: every epoch, 2000 fresh mini-batches of 64 balanced by the noisy label
    (``data.balanced_sampling=every_epoch``). The authors' code instead draws one fixed class-balanced subset
    of 2000 x 64 images (:func:`class_balanced_subset_indices`, ``data.balanced_sampling=fixed_subset``).
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
