"""nalkit's trainer against a minimal hand-written PyTorch loop: training throughput, side by side.

Candidate A is :func:`nalkit.train.train` on ``configs/fmnist/cpu.yaml`` (real Fashion-MNIST, 3,000-image
subset, small_cnn hidden=512, batch 64), a fresh run each repeat with a few epochs and evaluation pushed
out of the way (``run.eval_every`` large, a small ``data.test_subset``: evaluation is not in the epoch's
``seconds`` anyway). Its throughput is read from the ``seconds`` column of the run's own metrics
(:func:`nalkit.records.read_metrics`).

Candidate B is the least a user would write: the same data (``nalkit.data.prepare_data``, the same noisy
labels), the same model (``build_model``), the same ``DeviceLoader``, SGD with the same hyper-parameters, the
same method object (``build_method``: NAL with targets updated every batch, ``es=1``, unless ``--method``
says otherwise), and per batch only forward, loss, backward, step. What the trainer does on top (per-sample
bookkeeping of predictions, attention and loss for the run record, the NaN check) is what the ratio prices.

Epoch 1 of every repeat is warm-up and dropped; the repeat's value is the median of its later epochs.
Candidates alternate; the ratio (trainer img/s / loop img/s) is the median of the per-repeat ratios.

    python benchmarks/trainer_vs_loop.py
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

import benchlib
from nalkit.config import Config
from nalkit.data import prepare_data
from nalkit.loader import DeviceLoader
from nalkit.methods import build_method
from nalkit.models import build_model
from nalkit.records import read_metrics
from nalkit.train import set_seed, train

BENCHMARK = "trainer_vs_loop"
CONFIG = benchlib.ROOT / "configs" / "fmnist" / "cpu.yaml"


def overrides(args) -> list[str]:
    return [f"method.name={args.method}", "method.es=1", f"optim.epochs={args.epochs}",
            f"data.train_subset={args.train_subset}", "data.test_subset=500", "run.eval_every=100000",
            "run.snapshot_epochs=[]", "run.progress=false", "run.device=cpu", f"run.threads={torch.get_num_threads()}", "run.seed=0"]


def trainer_epoch_seconds(args, work: Path, rep: int) -> float:
    run_dir = train(str(CONFIG), overrides(args), run_dir=work / f"trainer-{rep}", noise_dir=work / "noise",
                    progress=False)
    secs = [float(s) for s in read_metrics(run_dir)["seconds"]]
    return statistics.median(secs[1:])


def loop_epoch_seconds(args, work: Path) -> float:
    cfg = Config.load(str(CONFIG), overrides(args)).validate()
    prep = prepare_data(cfg, work / "noise")
    bundle = prep.bundle
    set_seed(cfg.run.seed)
    kw = {k: v for k, v in (("width", cfg.model.width), ("hidden", cfg.model.hidden)) if v is not None}
    model = build_model(cfg.model.name, bundle.num_classes, in_channels=bundle.in_channels, **kw)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.optim.lr, momentum=cfg.optim.momentum,
                          weight_decay=cfg.optim.weight_decay)
    method = build_method(cfg.method, prep.noisy, bundle.num_classes, "cpu")
    loader = DeviceLoader(prep.train.images, torch.as_tensor(prep.train.labels), cfg.optim.batch_size,
                          bundle.mean, bundle.std, shuffle=True, augment=cfg.data.augment,
                          padding=cfg.data.crop_padding, flip=cfg.data.flip, seed=cfg.run.seed)
    secs = []
    for epoch in range(1, cfg.optim.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        for x, y, idx in loader:
            logits, att = model(x)
            loss = method.batch_loss(logits, att if method.uses_attention else None, y, idx, epoch).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        method.end_epoch(epoch)
        secs.append(time.perf_counter() - t0)
    return statistics.median(secs[1:])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", default="nal", help="method of both candidates (default nal)")
    p.add_argument("--epochs", type=int, default=3, help="epochs per repeat; the first is dropped as warm-up")
    p.add_argument("--train-subset", type=int, default=3000)
    p.add_argument("--repeats", type=int, default=5)
    finish = benchlib.parse_common(p, BENCHMARK)
    args = finish(p.parse_args(argv), argv)
    if args.quick:
        args.epochs, args.train_subset, args.repeats = 2, 300, 2
    if args.epochs < 2:
        p.error(f"--epochs {args.epochs}: need at least 2 (the first epoch is dropped as warm-up)")

    with tempfile.TemporaryDirectory(prefix="nalkit-bench-") as tmp:
        work = Path(tmp)
        rep = iter(range(10**6))
        paired = benchlib.alternate({
            "trainer": lambda: trainer_epoch_seconds(args, work, next(rep)),
            "loop": lambda: loop_epoch_seconds(args, work),
        }, args.repeats)

    n = args.train_subset
    table = benchlib.Table(BENCHMARK, torch.device("cpu"))
    setup = (f"configs/fmnist/cpu.yaml, method {args.method} (es=1), {n} Fashion-MNIST images, batch 64; "
             f"{args.repeats} alternating repeats of {args.epochs} epochs, epoch 1 dropped")
    table.add("throughput, hand-written loop", n / paired.median("loop"), "img/s", note=setup)
    # img/s ratio = inverse time ratio, per repeat
    ratios = sorted(1.0 / r for r in paired.ratios("trainer", "loop"))
    table.add("throughput, nalkit train() / loop", n / paired.median("trainer"), "img/s",
              ratio=statistics.median(ratios), target=">= 0.97",
              note=f"median of {len(ratios)} paired repeats, range {ratios[0]:.3f}-{ratios[-1]:.3f}; "
                   "trainer seconds from its run record's metrics")
    table.print()
    table.write(args.out, args.append)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
