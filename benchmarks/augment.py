"""Batched tensor augmentation (``nalkit.loader.DeviceLoader``) against the authors' per-sample PIL pipeline.

Both produce one epoch of normalised float batches of CIFAR-shaped images (random uint8, 3x32x32) with a
random crop (zero padding 4) and a horizontal flip:

* ``DeviceLoader(augment=True)``: the uint8 dataset as one tensor, each batch gathered, cropped, flipped
  and normalised with tensor ops (here on the CPU, the only device of this machine);
* ``torch.utils.data.DataLoader`` over a dataset that, per sample, makes a PIL image and applies
  ``RandomCrop(32, padding=4), RandomHorizontalFlip(), ToTensor(), Normalize(...)`` as in the authors'
  code, with ``num_workers`` 0 and 2 (workers are started every epoch, ``persistent_workers=False``,
  the DataLoader default the authors use, so their start-up is part of the epoch).

Candidates alternate; ratios are medians of the per-repeat ratios.

    python benchmarks/augment.py
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch

import benchlib
from nalkit.loader import DeviceLoader

BENCHMARK = "augment"
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


class PILDataset(torch.utils.data.Dataset):
    def __init__(self, images_hwc: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = images_hwc, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=10000, help="images per epoch")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--workers", default="0,2", help="DataLoader num_workers values to compare")
    finish = benchlib.parse_common(p, BENCHMARK)
    args = finish(p.parse_args(argv), argv)
    if args.quick:
        args.n, args.repeats = 512, 2
    import torchvision.transforms as T

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.n, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (args.n,), generator=g)
    device_loader = DeviceLoader(images, labels, args.batch, MEAN, STD, device="cpu", shuffle=True,
                                 augment=True, padding=4, flip=True, seed=0)
    transform = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(MEAN, STD)])
    dataset = PILDataset(images.permute(0, 2, 3, 1).contiguous().numpy(), labels.numpy(), transform)
    workers = [int(w) for w in args.workers.split(",") if w.strip()]

    def epoch(loader) -> None:
        n = 0
        for batch in loader:
            n += len(batch[0])
        assert n == args.n, (n, args.n)

    candidates = {"device": lambda: epoch(device_loader)}
    for w in workers:
        candidates[f"pil{w}"] = (lambda w=w: epoch(torch.utils.data.DataLoader(
            dataset, batch_size=args.batch, shuffle=True, num_workers=w)))
    for fn in candidates.values():  # warm-up (imports, first worker fork)
        fn()
    paired = benchlib.alternate(candidates, args.repeats)

    table = benchlib.Table(BENCHMARK, torch.device("cpu"))
    setup = (f"{args.n} random uint8 3x32x32 images, batch {args.batch}, crop padding 4 + flip + normalise; "
             f"{args.repeats} alternating repeats")
    table.add("throughput, DeviceLoader (batched tensor ops, CPU)", args.n / paired.median("device"), "img/s",
              note=setup)
    for w in workers:
        r = sorted(paired.ratios(f"pil{w}", "device"))  # PIL time / device time = device img/s / PIL img/s
        table.add(f"throughput, PIL DataLoader num_workers={w}", args.n / paired.median(f"pil{w}"), "img/s")
        table.add(f"DeviceLoader / PIL DataLoader num_workers={w}", args.n / paired.median("device"), "img/s",
                  ratio=statistics.median(r),
                  target=">= 1", note=f"median of {len(r)} paired repeats, range {r[0]:.2f}-{r[-1]:.2f}")
    table.print()
    table.write(args.out, args.append)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
