"""Device-resident data: the whole (small) dataset as one uint8 tensor, augmented in batches.

For CIFAR-sized and Fashion-MNIST data the authors' PIL + DataLoader pipeline spends most of an
epoch in Python. Here the images stay on the training device as uint8 (50k CIFAR images are
150 MB), each batch is gathered by index, randomly cropped (zero padding, as torchvision's
``RandomCrop(padding=4)``) and flipped with tensor ops, then normalised. Every batch carries the
dataset index of its samples, which the per-sample target store needs.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

Tensor = torch.Tensor


def random_crop_flip(
    images: Tensor, padding: int, flip: bool, generator: torch.Generator
) -> Tensor:
    """Random ``padding``-pixel-shift crops and horizontal flips of a batch (B, C, H, W), any dtype."""
    b, _, h, w = images.shape
    dev = images.device
    out = images
    if padding > 0:
        padded = torch.nn.functional.pad(images, (padding, padding, padding, padding))
        gen_dev = generator.device
        dy = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=gen_dev).to(dev)
        dx = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=gen_dev).to(dev)
        rows = (dy[:, None] + torch.arange(h, device=dev)[None, :])  # (B, H)
        cols = (dx[:, None] + torch.arange(w, device=dev)[None, :])  # (B, W)
        bidx = torch.arange(b, device=dev)[:, None, None]
        # advanced indexing gives (B, H, W, C); move channels back
        out = padded.permute(0, 2, 3, 1)[bidx, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if flip:
        mask = torch.rand(b, generator=generator, device=generator.device).to(dev) < 0.5
        out = torch.where(mask[:, None, None, None], out.flip(3), out)
    return out


class DeviceLoader:
    """Iterate over ``(x, y, index)`` batches of an in-memory uint8 dataset on ``device``.

    Args:
        images: uint8 (N, C, H, W).
        labels: int64 (N,) -- the labels the model is trained on (noisy ones for training).
        batch_size: samples per batch.
        drop_last: drop the last, smaller batch of every epoch (the authors' ANIMAL-10N loader does); its
            samples are simply not seen that epoch. Default: keep it.
        mean, std: per-channel normalisation in [0, 1] units.
        shuffle: reshuffle every epoch from the loader's own generator (seeded, checkpointable).
        augment: random crop with ``padding`` and, if ``flip``, horizontal flips.
        seed: seed of the loader's generator; never touches the global RNG.
        index: optional dataset indices (N,) reported for each sample (default ``arange(N)``).
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        batch_size: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        *,
        device: torch.device | str = "cpu",
        shuffle: bool = False,
        augment: bool = False,
        padding: int = 4,
        flip: bool = True,
        seed: int = 0,
        index: Tensor | None = None,
        channels_last: bool = False,
        shard: tuple[int, int] = (0, 1),
        drop_last: bool = False,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if len(labels) != len(images):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be >= 1")
        if not 0 <= shard[0] < shard[1]:
            raise ValueError(f"shard={shard} must be (rank, world size) with 0 <= rank < world size")
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.labels = torch.as_tensor(labels, dtype=torch.long).to(self.device)
        self.index = (torch.arange(len(images)) if index is None else torch.as_tensor(index)).long().to(self.device)
        self.batch_size = batch_size
        self.shuffle, self.augment, self.padding, self.flip = shuffle, augment, padding, flip
        self.channels_last = channels_last
        self.drop_last = drop_last
        # (rank, world size): every rank draws the same permutation and augmentation of each global
        # batch and keeps its contiguous share, so a multi-process run sees the single-process batches
        self.rank, self.world = shard
        c = images.shape[1]
        if len(mean) != c or len(std) != c:
            raise ValueError(f"mean/std have {len(mean)}/{len(std)} entries for {c} channels")
        self.mean = torch.tensor(mean, device=self.device).view(1, c, 1, 1) * 255.0
        self.std = torch.tensor(std, device=self.device).view(1, c, 1, 1) * 255.0
        # the generator lives on the CPU so that its state is portable and identical across devices
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.images) // self.batch_size
        return (len(self.images) + self.batch_size - 1) // self.batch_size

    @property
    def num_samples(self) -> int:
        return len(self.images)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        n = len(self.images)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        order = order.to(self.device)
        # the permutation is drawn over all n samples either way, so the generator advances alike and a
        # resumed run (generator state restored from the checkpoint) repeats the uninterrupted one
        stop = n - n % self.batch_size if self.drop_last else n
        for start in range(0, stop, self.batch_size):
            sel = order[start : start + self.batch_size]
            x = self.images[sel]
            if self.augment:
                x = random_crop_flip(x, self.padding, self.flip, self.generator)
            if self.world > 1:
                part = torch.tensor_split(torch.arange(len(sel), device=self.device), self.world)[self.rank]
                sel, x = sel[part], x[part]
            x = (x.float() - self.mean) / self.std
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[sel], self.index[sel]

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
