"""CIFAR ResNet-34 epoch time on a GPU against a FLOP floor, and the projected wall time of a paper run.

The paper's CIFAR recipe trains ``cifar_resnet34`` for 500 epochs on 50,000 images. Here one epoch is what
the trainer does on a GPU: a device-resident ``DeviceLoader`` (random crop + flip on the GPU, channels_last),
bf16 autocast (``--precision bf16``, the default) or fp32 (``--precision fp32``: what the paper recipes run,
``run.amp: false``), SGD, and the NAL loss with its target store (``build_method``, targets updated every
batch) -- over random CIFAR-shaped uint8 tensors (the content of the images does not change the time). Every
row names the precision it ran in; the FLOP floor is against the bf16 peak either way.
CE is timed alternately for NAL's relative cost on the GPU.

The floor: forward FLOPs per image counted with ``torch.utils.flop_counter.FlopCounterMode`` (convolutions
and matrix products), x3 for forward + backward, x50,000 images, divided by the device's peak dense bf16
throughput (``--peak-tflops``, or the table below matched against the device name). Target: an epoch
within 2x of that floor. Projected paper run = 500 x the measured epoch (evaluation not included).

Without a GPU nothing is measured: the rows are written with an empty value and the note
"not yet measured (no GPU)" (the FLOP count and the floors, which need no GPU, are filled in). Measured GPU
rows already in the CSV are kept. ``--device cpu --force`` runs the whole measuring path on the CPU (fp32,
to check the script); those numbers go to a scratch file, never to the committed CSV.

    python benchmarks/gpu_epoch.py                          # on a GPU machine
    python benchmarks/gpu_epoch.py --quick --device cpu --force
"""

from __future__ import annotations

import argparse

import torch

import benchlib
from nalkit.config import MethodConfig
from nalkit.loader import DeviceLoader
from nalkit.methods import build_method
from nalkit.models import build_model

BENCHMARK = "gpu_epoch"
NOT_MEASURED = "not yet measured (no GPU)"
PAPER_EPOCHS = 500
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)

#: peak dense bf16 tensor-core throughput (TFLOP/s, without sparsity), from the vendors' data sheets;
#: matched in order against torch.cuda.get_device_name().
PEAK_BF16_TFLOPS = (
    ("H200", 989.4),
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.4),  # SXM
    ("A100", 312.0),
)


def peak_tflops(name: str) -> tuple[float | None, str]:
    for key, tf in PEAK_BF16_TFLOPS:
        if key.lower() in name.lower():
            return tf, f"{key} data-sheet peak {tf:g} TFLOP/s dense bf16"
    return None, f"no peak known for {name!r}; pass --peak-tflops"


def forward_flops_per_image(size: int = 32) -> float:
    """Forward FLOPs of cifar_resnet34 (both heads) per image, counted on the CPU with a batch of 2."""
    from torch.utils.flop_counter import FlopCounterMode

    model = build_model("cifar_resnet34", 10).eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(2, 3, size, size))
    return counter.get_total_flops() / 2


class EpochRunner:
    """One model + optimizer + method on ``device``, training full epochs over a DeviceLoader."""

    def __init__(self, method: str, batch: int, images, labels, device: torch.device, precision: str = "bf16") -> None:
        torch.manual_seed(0)
        self.device, self.precision = device, precision
        self.model = build_model("cifar_resnet34", 10).to(device)
        if device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.02, momentum=0.9, weight_decay=1e-3)
        cfg = MethodConfig(name=method, es=1, update_period=1, update_when="batch")
        self.method = build_method(cfg, labels.cpu().numpy(), 10, device)
        self.loader = DeviceLoader(images, labels, batch, MEAN, STD, device=device, shuffle=True, augment=True,
                                   seed=0, channels_last=device.type == "cuda")

    def epoch(self, max_steps: int | None = None) -> None:
        self.model.train()
        for i, (x, y, idx) in enumerate(self.loader):
            if max_steps is not None and i >= max_steps:
                break
            benchlib.train_step(self.model, self.method, self.opt, x, y, idx,
                                benchlib.autocast(self.device, self.precision))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    benchlib.add_device(p)
    p.add_argument("--n", type=int, default=50000, help="images per epoch")
    p.add_argument("--batches", default="64,128", help="batch sizes")
    p.add_argument("--methods", default="nal,ce", help="methods timed alternately; the first gets the floor target")
    p.add_argument("--repeats", type=int, default=2, help="timed epochs per method and batch size")
    p.add_argument("--warmup-steps", type=int, default=30)
    p.add_argument("--peak-tflops", type=float, default=None, help="device peak dense bf16 TFLOP/s")
    benchlib.add_precision(p)
    finish = benchlib.parse_common(p, BENCHMARK)
    args = p.parse_args(argv)
    explicit_out = args.out is not None
    args = finish(args, argv)
    if args.quick:
        args.n, args.batches, args.repeats, args.warmup_steps = 32, "8,16", 1, 1
    batches = [int(b) for b in args.batches.split(",") if b.strip()]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]

    device = benchlib.resolve_device(p, args.device)
    measure = device.type == "cuda" or args.force
    if device.type != "cuda" and args.force and not explicit_out:
        args.out = benchlib.default_out(BENCHMARK + "-cpu-forced", quick=True)  # never the committed CSV

    fwd = forward_flops_per_image()
    step_flops = 3 * fwd  # forward + backward (backward ~ 2x forward)
    table = benchlib.Table(BENCHMARK, device if measure else torch.device("cpu"))
    cpu = torch.device("cpu")
    table.add("forward FLOPs per image (cifar_resnet34, 32x32)", fwd / 1e9, "GFLOP", device=cpu,
              note="counted with torch.utils.flop_counter.FlopCounterMode; x3 for forward + backward")
    if not measure:
        for key, tf in PEAK_BF16_TFLOPS:
            table.add(f"FLOP floor of one {args.n}-image epoch, {key}", step_flops * args.n / (tf * 1e12), "s",
                      device=cpu, note=f"computed (not measured): 3 x forward FLOPs / {tf:g} TFLOP/s dense bf16")
        kept = benchlib.measured_cuda_rows(args.out, BENCHMARK, "epoch time")
        if kept:
            print(f"no GPU here; {args.out} already holds {len(kept)} measured GPU epoch rows "
                  f"({kept[0]['device_name']}, {kept[0]['date']}): kept, not overwritten")
        else:
            for b in batches:
                precision = "bf16 autocast" if args.precision == "bf16" else "fp32"
                table.add(f"epoch time, batch {b}, {methods[0].upper()} ({precision}, channels_last)", None, "s",
                          target="<= 2", device="cuda", note=NOT_MEASURED + "; ratio = epoch / FLOP floor")
                for m in methods[1:]:
                    table.add(f"epoch time, batch {b}, {m.upper()}; ratio {methods[0].upper()} / {m.upper()}",
                              None, "s", device="cuda", note=NOT_MEASURED)
                table.add(f"projected {PAPER_EPOCHS}-epoch paper run, batch {b} ({precision})", None, "h",
                          device="cuda", note=NOT_MEASURED)
        table.print()
        table.write(args.out, args.append)
        return 0

    name = benchlib.device_name(device)
    peak, peak_note = (args.peak_tflops, f"--peak-tflops {args.peak_tflops:g}") if args.peak_tflops else (
        peak_tflops(name) if device.type == "cuda" else (None, "CPU: no peak known; pass --peak-tflops"))
    floor = step_flops * args.n / (peak * 1e12) if peak else None
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.n, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (args.n,), generator=g)
    precision = (f"{benchlib.precision_label(device, args.precision)}, channels_last" if device.type == "cuda"
                 else "fp32 (CPU check run)")
    table.add(f"FLOP floor of one {args.n}-image epoch", floor, "s", note=f"3 x forward FLOPs / {peak_note}")
    for b in batches:
        runners = {m: EpochRunner(m, b, images, labels, device, args.precision) for m in methods}
        for r in runners.values():
            r.epoch(max_steps=args.warmup_steps)  # cuDNN autotuning, allocator warm-up
        paired = benchlib.alternate({m: r.epoch for m, r in runners.items()}, args.repeats, device)
        first = methods[0]
        t = paired.median(first)
        table.add(f"epoch time, batch {b}, {first.upper()} ({precision})", t, "s",
                  ratio=t / floor if floor else None, target="<= 2",
                  note=f"{args.n} images, median of {args.repeats} epochs; ratio = epoch / FLOP floor")
        for m in methods[1:]:
            table.add(f"epoch time, batch {b}, {m.upper()}; ratio {first.upper()} / {m.upper()}", paired.median(m),
                      "s", ratio=paired.ratio(first, m), note=paired.spread(first, m))
        table.add(f"projected {PAPER_EPOCHS}-epoch paper run, batch {b} ({precision})",
                  t * PAPER_EPOCHS * 50000 / args.n / 3600, "h",
                  note=f"{PAPER_EPOCHS} x the {first.upper()} epoch scaled to 50,000 images; no evaluation; the paper "
                       "recipes run fp32 (run.amp: false), so their projection is the --precision fp32 one")
        if device.type == "cuda":
            table.add(f"peak memory, batch {b}", torch.cuda.max_memory_allocated(device) / 2**30, "GiB",
                      note="torch.cuda.max_memory_allocated, all methods' models resident")
            torch.cuda.reset_peak_memory_stats(device)
        del runners
    table.print()
    table.write(args.out, args.append)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
