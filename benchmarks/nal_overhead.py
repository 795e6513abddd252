"""NAL's cost over cross-entropy: training-step time and memory, same model, same batches, side by side.

Both methods are built with :func:`nalkit.methods.build_method` and train their own copy of one
:func:`nalkit.models.build_model` network (identical initial weights): the model always has its attention
branch, which NAL reads and CE ignores, so the difference measured is the loss and the target store.
NAL runs its most expensive schedule (targets updated in every batch, ``update_when=batch``, ``es=1``); a
third candidate, NAL before ``es`` (no target update), shows how much of the cost is the store update.

A step is what the trainer does per batch: forward, ``method.batch_loss``, mean, zero_grad, backward,
SGD step. Candidates alternate (rotating order) over ``--repeats`` blocks of ``--steps`` steps; the
ratio is the median of the per-block ratios. On CUDA the steps run under bf16 autocast (``--precision bf16``,
the default) or in fp32 (``--precision fp32``, as the paper recipes train); the CPU runs fp32. The step-time
note names the precision that ran.

Memory: on CUDA the peak of ``torch.cuda.max_memory_allocated`` over a few steps, each method measured
alone. On the CPU there is no allocator peak to read, so the footprint is *counted*: parameters + their
gradients + optimizer state + the method's state (target store) + the tensors autograd saves for the
backward pass (``torch.autograd.graph.saved_tensors_hooks``, distinct storages, parameters excluded).
That is the resident memory at the end of the forward pass, i.e. the usual training peak, minus the
allocator's slack and backward's transient buffers.

    python benchmarks/nal_overhead.py                      # small_cnn hidden=512, 28x28, batch 64
    python benchmarks/nal_overhead.py --model cifar_resnet18 --size 32 --n-train 50000
"""

from __future__ import annotations

import argparse
import copy
import gc

import numpy as np
import torch

import benchlib
from nalkit.config import MethodConfig
from nalkit.results.criteria import COST_SAME, MEMORY_SAME  # the rulebook decides C9 on these targets
from nalkit.methods import build_method
from nalkit.models import build_model

BENCHMARK = "nal_overhead"


def make_model(args, device: torch.device) -> torch.nn.Module:
    kw = {}
    if args.hidden:
        kw["hidden"] = args.hidden
    if args.width:
        kw["width"] = args.width
    model = build_model(args.model, 10, in_channels=args.channels, **kw).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return model


def make_method(name: str, labels: np.ndarray, device: torch.device, es: int = 1):
    cfg = MethodConfig(name=name, lam=0.5, alpha=0.9, es=es, update_period=1, update_when="batch")
    return build_method(cfg, labels, 10, device)


class Trainee:
    """One model + SGD + method, stepping through a fixed list of batches."""

    def __init__(self, model, method, batches, device, precision: str = "bf16"):
        self.model, self.method, self.batches, self.device = model, method, batches, device
        self.precision = precision
        self.opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=5e-4)
        self.i = 0
        self.model.train()

    def step(self) -> torch.Tensor:
        x, y, idx = self.batches[self.i % len(self.batches)]
        self.i += 1
        return benchlib.train_step(self.model, self.method, self.opt, x, y, idx,
                                   benchlib.autocast(self.device, self.precision))

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.step()


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def counted_footprint(t: Trainee) -> dict[str, int]:
    """Bytes of parameters, gradients, optimizer state, method state and saved activations (see module doc)."""
    params = list(t.model.parameters())
    param_ptrs = {p.untyped_storage().data_ptr() for p in params}
    param_ptrs |= {b.untyped_storage().data_ptr() for b in t.model.buffers()}
    saved: dict[int, int] = {}

    def pack(x: torch.Tensor):
        st = x.untyped_storage()
        if st.data_ptr() not in param_ptrs:
            saved[st.data_ptr()] = st.nbytes()
        return x

    x, y, idx = t.batches[0]
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        with benchlib.autocast(t.device, t.precision):
            logits, att = t.model(x)
        per = t.method.batch_loss(logits, att if t.method.uses_attention else None, y, idx, 1)
        loss = per.mean()
    store = 0
    if t.method.store is not None:
        store = _nbytes(t.method.store.q)
        if t.method.store._epoch_probs is not None:
            store += _nbytes(t.method.store._epoch_probs)
    out = {
        "parameters": sum(_nbytes(p) for p in params) + sum(_nbytes(b) for b in t.model.buffers()),
        "gradients": sum(_nbytes(p.grad) for p in params if p.grad is not None),  # CE leaves the attention head without one
        "optimizer state": sum(_nbytes(v) for s in t.opt.state.values() for v in s.values()
                               if isinstance(v, torch.Tensor)),
        "target store": store,
        "saved activations": sum(saved.values()),
    }
    del loss, per, logits, att
    return out


def cuda_peak(make: callable, device: torch.device, steps: int = 3) -> int:
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    t = make()
    t.run(steps)
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) - base
    del t
    gc.collect()
    return peak


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="small_cnn")
    p.add_argument("--size", type=int, default=28, help="image height = width")
    p.add_argument("--channels", type=int, default=None, help="input channels (default 1 at size 28, else 3)")
    p.add_argument("--hidden", type=int, default=None, help="small_cnn FC layer (default 512 for small_cnn)")
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--n-train", type=int, default=3000, help="training-set size = rows of the target store")
    p.add_argument("--repeats", type=int, default=45)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--device", default="auto")
    benchlib.add_precision(p)
    finish = benchlib.parse_common(p, BENCHMARK)
    args = finish(p.parse_args(argv), argv)
    if args.quick:
        args.repeats, args.steps = 2, 3
    if args.channels is None:
        args.channels = 1 if args.size == 28 else 3
    if args.hidden is None and args.model == "small_cnn":
        args.hidden = 512
    device = benchlib.resolve_device(p, args.device)

    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (args.n_train,), generator=g)
    batches = []
    for _ in range(8):
        idx = torch.randperm(args.n_train, generator=g)[: args.batch]
        x = torch.randn(args.batch, args.channels, args.size, args.size, generator=g)
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        batches.append((x.to(device), labels[idx].to(device), idx.to(device)))
    labels_np = labels.numpy()

    torch.manual_seed(0)
    base = make_model(args, device)
    trainees = {
        "ce": Trainee(copy.deepcopy(base), make_method("ce", labels_np, device), batches, device, args.precision),
        "nal": Trainee(copy.deepcopy(base), make_method("nal", labels_np, device), batches, device, args.precision),
        "nal_no_update": Trainee(copy.deepcopy(base), make_method("nal", labels_np, device, es=10**9), batches, device,
                                 args.precision),
    }
    for t in trainees.values():  # warm-up: allocator, oneDNN primitives, cuDNN autotune
        t.run(3 if args.quick else 5)
    paired = benchlib.alternate({k: (lambda t=t: t.run(args.steps)) for k, t in trainees.items()},
                                args.repeats, device)

    table = benchlib.Table(BENCHMARK, device)
    setup = (f"{args.model}{f' hidden={args.hidden}' if args.hidden else ''}, {args.channels}x{args.size}x{args.size}, "
             f"batch {args.batch}, store {args.n_train}x10, {benchlib.precision_label(device, args.precision)}; "
             f"{args.repeats} alternating repeats of {args.steps} steps")
    ms = 1000.0 / args.steps
    table.add("step time, CE", paired.median("ce") * ms, "ms", note=setup)
    table.add("step time, NAL (targets updated every batch) / CE", paired.median("nal") * ms, "ms",
              ratio=paired.ratio("nal", "ce"), target=f"<= {COST_SAME:g}", note=paired.spread("nal", "ce"))
    table.add("step time, NAL before es (no target update) / CE", paired.median("nal_no_update") * ms, "ms",
              ratio=paired.ratio("nal_no_update", "ce"), note=paired.spread("nal_no_update", "ce"))

    counted = {k: counted_footprint(trainees[k]) for k in ("ce", "nal")}
    total = {k: sum(v.values()) for k, v in counted.items()}
    parts = "; ".join(f"{part} {counted['ce'][part] / 2**20:.2f} / {counted['nal'][part] / 2**20:.2f}"
                      for part in counted["ce"])
    method_note = ("counted, not an allocator peak: parameters + gradients + optimizer state + target store + "
                   "tensors saved for backward (saved_tensors_hooks); MiB CE / NAL: " + parts)
    table.add("memory (counted), CE", total["ce"] / 2**20, "MiB", note=method_note)
    table.add("memory (counted), NAL / CE", total["nal"] / 2**20, "MiB", ratio=total["nal"] / total["ce"],
              target=f"<= {MEMORY_SAME:g}")
    if device.type == "cuda":
        del trainees
        peaks = {k: cuda_peak(lambda k=k: Trainee(copy.deepcopy(base), make_method(k, labels_np, device),
                                                  batches, device, args.precision), device) for k in ("ce", "nal")}
        note = "torch.cuda.max_memory_allocated over 3 steps, each method alone, minus memory held before"
        table.add("peak memory (CUDA allocator), CE", peaks["ce"] / 2**20, "MiB", note=note)
        table.add("peak memory (CUDA allocator), NAL / CE", peaks["nal"] / 2**20, "MiB",
                  ratio=peaks["nal"] / peaks["ce"], target=f"<= {MEMORY_SAME:g}")
    table.print()
    table.write(args.out, args.append)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
