"""Every recipe of configs/paper/ on a GPU: that it runs through the trainer, and its training-step time and memory.

For each ``configs/paper/*.yaml`` (``--recipes`` to choose):

1. **runs**: the recipe as written -- model, method, optimiser, precision (``run.amp``), loaders and
   transforms -- is built by the trainer (:func:`nalkit.train.build`) on files fabricated in its dataset's
   on-disk format at the release's image sizes (:mod:`nalkit.datasets.fabricate`, a few images) and trains
   two mini-batches of the recipe's own batch size (:func:`nalkit.train.train_one_epoch`, in an epoch where
   NAL's target estimation is on), then evaluates. What ``tests/test_paper_recipes.py`` does on the CPU with
   batches of 2. Row: the seconds it took; the note gives the loss.
2. **steps**: ``--steps`` training steps (after ``--warmup`` steps) of the recipe's model, method (targets
   updated), SGD settings, batch size and precision on random device-resident uint8 images of the recipe's
   input size (32 px CIFAR, 64 px ANIMAL-10N, 224 px Clothing1M, 227 px WebVision), augmented on the device
   by :class:`nalkit.loader.DeviceLoader` as CIFAR is: ms per step (median over ``--repeats`` blocks) and
   the CUDA allocator's peak memory. Decoding JPEGs is not included (the file-backed recipes read them with
   DataLoader workers), so for Clothing1M and WebVision this is the GPU's side only. Clothing1M's peak can be
   set beside Table 2's "required GPU memory" (NAL 7.46 GB at batch 64), which is another quantity (the whole
   process as nvidia-smi shows it).

Precision: each recipe's own (``run.amp: false``, fp32, in every paper recipe); ``--precision bf16|fp32``
overrides it, and every row names the one that ran.

Without a GPU nothing is measured: the rows are written with an empty value and "not yet measured (no GPU)".
``--device cpu --force`` runs both parts on the CPU (batches of 2, a few steps: it checks the script); those
numbers go to a scratch file, never to the committed CSV.

    python benchmarks/recipes.py                                    # on a GPU machine
    python benchmarks/recipes.py --quick --device cpu --force --recipes cifar10-sym40
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

import benchlib
from nalkit.config import Config
from nalkit.datasets.fabricate import fabricate_dataset
from nalkit.loader import DeviceLoader
from nalkit.methods import build_method
from nalkit.models import build_model
from nalkit.train import build, evaluate, lr_at, train_one_epoch

BENCHMARK = "recipes"
NOT_MEASURED = "not yet measured (no GPU)"
RECIPES = benchlib.ROOT / "configs" / "paper"

#: per dataset: number of classes, input size (px) and the fabricated files for two batches of ``b``
DATA = {
    "cifar10": (10, 32, lambda b: dict(n_train=2 * b, n_test=4)),
    "cifar100": (100, 32, lambda b: dict(n_train=2 * b, n_test=4)),
    "animal10n": (10, 64, lambda b: dict(n_train=2 * b + 1, n_test=4)),  # + 1: the dropped partial batch
    "clothing1m": (14, 224, lambda b: dict(n_train=max(2 * b, 28), n_test=4)),  # the subset is 2 batches of these
    "webvision": (50, 227, lambda b: dict(n_train=2 * b, n_test=4)),
}


def _epoch(cfg: Config) -> int:
    """An epoch in which the method's target update (if any) runs."""
    return {"nal": cfg.method.nal.es, "selc": cfg.method.selc.start}.get(cfg.method.name, 1)


def _amp(cfg: Config, precision: str | None) -> bool:
    return cfg.run.amp if precision is None else precision == "bf16"


def trainer_batches(path: Path, device: torch.device, batch: int | None, precision: str | None,
                    workdir: Path) -> tuple[float, float, str]:
    """Part 1: (seconds, mean loss, precision) of two trainer mini-batches of recipe ``path`` on fabricated files."""
    cfg = Config.load(path)
    b = batch or cfg.optim.batch_size
    fabricate_dataset(cfg.data.name, workdir / "data", **DATA[cfg.data.name][2](b))
    overrides = [f"data.root={workdir / 'data'}", f"run.device={device}", f"optim.batch_size={b}",
                 "run.progress=false", "run.eval_batch_size=4",
                 # file-backed recipes read with DataLoader workers (the forkserver context) on a GPU machine
                 f"data.num_workers={2 if device.type == 'cuda' else 0}"]
    if cfg.data.batches_per_epoch:
        overrides.append("data.batches_per_epoch=2")
    if precision is not None:
        overrides.append(f"run.amp={'true' if precision == 'bf16' else 'false'}")
    cfg = Config.load(path, overrides).validate()
    benchlib.sync(device)
    t0 = time.perf_counter()
    run = build(cfg, workdir / "run", workdir / "noise")
    result = train_one_epoch(run, _epoch(cfg))
    accs, _ = evaluate(run, cfg.optim.epochs)
    benchlib.sync(device)
    seconds = time.perf_counter() - t0
    if (result.pred >= 0).sum() != 2 * b or not np.isfinite(result.mean_loss):
        raise RuntimeError(f"{path.name}: expected two finite batches of {b}, got {(result.pred >= 0).sum()} samples, "
                           f"loss {result.mean_loss}")
    return seconds, result.mean_loss, ("bf16 autocast" if cfg.run.amp and device.type == "cuda" else "fp32")


def step_times(path: Path, device: torch.device, batch: int | None, precision: str | None, steps: int,
               warmup: int, repeats: int) -> tuple[list[float], float | None, str, int]:
    """Part 2: per-block ms/step, peak GiB (CUDA), precision label and batch size of recipe ``path``."""
    cfg = Config.load(path).validate()
    num_classes, size, _ = DATA[cfg.data.name]
    b = batch or cfg.optim.batch_size
    amp = _amp(cfg, precision)
    label = benchlib.precision_label(device, "bf16" if amp else "fp32")
    g = torch.Generator().manual_seed(0)
    n = 4 * b
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, num_classes, (n,), generator=g)
    torch.manual_seed(cfg.run.seed)
    model = build_model(cfg.model.name, num_classes).to(device)
    channels_last = cfg.run.channels_last and device.type == "cuda"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    method = build_method(cfg.method, labels.numpy(), num_classes, device)
    o = cfg.optim
    opt = torch.optim.SGD(model.parameters(), lr=lr_at(cfg, _epoch(cfg)), momentum=o.momentum,
                          weight_decay=o.weight_decay)
    loader = DeviceLoader(images, labels, b, (0.5,) * 3, (0.25,) * 3, device=device, shuffle=True,
                          augment=cfg.data.augment, padding=cfg.data.crop_padding, flip=cfg.data.flip,
                          seed=0, channels_last=channels_last)
    batches = iter(())

    def step() -> None:
        nonlocal batches
        try:
            x, y, idx = next(batches)
        except StopIteration:
            batches = iter(loader)
            x, y, idx = next(batches)
        benchlib.train_step(model, method, opt, x, y, idx, benchlib.autocast(device, "bf16" if amp else "fp32"),
                            epoch=_epoch(cfg))

    model.train()
    for _ in range(warmup):  # cuDNN autotuning, allocator warm-up
        step()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    block = max(1, steps // repeats)
    times = []
    for _ in range(repeats):
        benchlib.sync(device)
        t0 = time.perf_counter()
        for _ in range(block):
            step()
        benchlib.sync(device)
        times.append(1000 * (time.perf_counter() - t0) / block)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return times, peak, label, b


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    benchlib.add_device(p)
    p.add_argument("--recipes", default="", help="comma-separated recipe names (default: every configs/paper/*.yaml)")
    p.add_argument("--precision", choices=benchlib.PRECISIONS, default=None,
                   help="override every recipe's run.amp: bf16 autocast or fp32 (default: the recipe's own)")
    p.add_argument("--steps", type=int, default=300, help="timed training steps per recipe")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--repeats", type=int, default=5, help="blocks the steps are timed in (median reported)")
    p.add_argument("--batch", type=int, default=None, help="override every recipe's batch size")
    finish = benchlib.parse_common(p, BENCHMARK)
    args = p.parse_args(argv)
    explicit_out = args.out is not None
    args = finish(args, argv)
    names = [n.strip() for n in args.recipes.split(",") if n.strip()]
    paths = [RECIPES / f"{n}.yaml" for n in names] if names else sorted(RECIPES.glob("*.yaml"))
    missing = [str(q) for q in paths if not q.is_file()]
    if missing:
        p.error(f"no such recipe: {', '.join(missing)} (choose among {', '.join(q.stem for q in RECIPES.glob('*.yaml'))})")

    device = benchlib.resolve_device(p, args.device)
    measure = device.type == "cuda" or args.force
    if device.type != "cuda" and args.force:
        if not explicit_out:
            args.out = benchlib.default_out(BENCHMARK + "-cpu-forced", quick=True)  # never the committed CSV
        args.batch = args.batch or 2
        args.steps, args.warmup, args.repeats = min(args.steps, 4), min(args.warmup, 1), min(args.repeats, 2)
    if args.quick:
        args.steps, args.warmup, args.repeats = min(args.steps, 4), min(args.warmup, 1), min(args.repeats, 2)
    has_timm = importlib.util.find_spec("timm") is not None
    if not measure and benchlib.measured_cuda_rows(args.out, BENCHMARK):
        print(f"no GPU here; {args.out} already holds measured GPU rows of this benchmark: kept, not overwritten")
        return 0

    table = benchlib.Table(BENCHMARK, device if measure else torch.device("cpu"))
    for path in paths:
        cfg = Config.load(path)
        precision = args.precision or ("bf16" if cfg.run.amp else "fp32")
        b = args.batch or cfg.optim.batch_size
        what = f"{path.stem} ({cfg.model.name}, batch {b}, {precision})"
        if not measure:
            for quantity, unit in (("runs: 2 trainer batches on fabricated files", "s"), ("step time", "ms"),
                                   ("peak memory (CUDA allocator)", "GiB")):
                table.add(f"{what}: {quantity}", None, unit, device="cuda", note=NOT_MEASURED)
            continue
        if cfg.model.name == "inception_resnet_v2" and not has_timm:
            table.add(f"{what}: runs", None, "s", note="timm not installed (pip install 'nalkit[models]'): not run")
            continue
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fabricated sets are smaller than the releases (DatasetSizeWarning)
            seconds, loss, ran = trainer_batches(path, device, args.batch, args.precision, Path(tmp))
        what = f"{path.stem} ({cfg.model.name}, batch {b}, {ran})"
        table.add(f"{what}: runs: 2 trainer batches on fabricated files", seconds, "s",
                  note=f"build + 2 batches + evaluation; mean loss {loss:.4f} (finite)")
        times, peak, label, b = step_times(path, device, args.batch, args.precision, args.steps, args.warmup,
                                           args.repeats)
        table.add(f"{what}: step time", statistics.median(times), "ms",
                  note=f"median of {len(times)} blocks of {max(1, args.steps // args.repeats)} steps "
                       f"(range {min(times):.3g}-{max(times):.3g}); random {label} inputs on the device, no JPEG "
                       "decoding")
        table.add(f"{what}: peak memory (CUDA allocator)", peak, "GiB",
                  note="torch.cuda.max_memory_allocated over the timed steps" if peak is not None
                  else "CPU: no allocator peak")
        if device.type == "cuda":
            torch.cuda.empty_cache()
    table.print()
    table.write(args.out, args.append)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
