"""Training on file-backed datasets (Clothing1M, mini-WebVision): a torch Dataset over a
:class:`~nalkit.datasets.FileSplit`, the paper's transforms, and the class-balanced batch sampler.

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
