"""Several training processes (``torchrun``): rank, world size and the collective helpers the trainer needs.

A run started by ``torchrun --nproc-per-node N -m nalkit.cli train ...`` trains one model with
DistributedDataParallel: every rank draws the same global batches and keeps its contiguous share
(:class:`ShardedBatches`, or :class:`nalkit.loader.DeviceLoader`'s ``shard``), gradients are averaged by DDP,
per-sample state (NAL's targets) is kept identical on every rank by the method itself
(:meth:`nalkit.methods.Method.sync_batch`), and rank 0 alone evaluates and writes the run record. A plain
``python -m nalkit.cli train`` is the world of one: every helper here is then a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as tdist

Tensor = torch.Tensor


@dataclass
class Dist:
    """Rank and world size of this process; ``world == 1`` is the ordinary single-process run."""

    rank: int = 0
    world: int = 1
    owns_group: bool = False  # this process created the process group (and destroys it)

    @property
    def main(self) -> bool:
        """True on rank 0, the process that evaluates and writes."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            tdist.barrier()

    def finish(self) -> None:
        """Wait for every rank, then tear down the group if this process made it."""
        if self.world > 1:
            tdist.barrier()
            if self.owns_group:
                tdist.destroy_process_group()

    def all_reduce_(self, tensor: Tensor, op: str = "sum") -> Tensor:
        """In-place all-reduce (``sum``, ``max`` or ``min``); returns ``tensor``."""
        if self.world > 1:
            tdist.all_reduce(tensor, op={"sum": tdist.ReduceOp.SUM, "max": tdist.ReduceOp.MAX,
                                         "min": tdist.ReduceOp.MIN}[op])
        return tensor


def init(use_cuda: bool) -> Dist:
    """Join the process group that torchrun describes (``WORLD_SIZE``, ``RANK``...), or a world of one.

    Args:
        use_cuda: use NCCL (one GPU per rank) instead of gloo.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    owns = False
    if not tdist.is_initialized():
        tdist.init_process_group("nccl" if use_cuda else "gloo")
        owns = True
    return Dist(tdist.get_rank(), tdist.get_world_size(), owns)


def local_device(dist: Dist, device: torch.device) -> torch.device:
    """The GPU of this rank (``LOCAL_RANK``) when training on CUDA under torchrun, else ``device``."""
    if dist.world > 1 and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return device


def gather_rows(index: Tensor, rows: Tensor, dist: Dist) -> tuple[Tensor, Tensor]:
    """All-gather ``(index, rows)`` pairs of unequal length from every rank: (M,), (M, ...)."""
    n = torch.tensor([len(index)], device=index.device)
    sizes = [torch.zeros_like(n) for _ in range(dist.world)]
    tdist.all_gather(sizes, n)
    most = int(max(int(x) for x in sizes))
    pad_i = torch.full((most,), -1, dtype=index.dtype, device=index.device)
    pad_r = torch.zeros((most, *rows.shape[1:]), dtype=rows.dtype, device=rows.device)
    pad_i[: len(index)], pad_r[: len(index)] = index, rows
    all_i = [torch.empty_like(pad_i) for _ in range(dist.world)]
    all_r = [torch.empty_like(pad_r) for _ in range(dist.world)]
    tdist.all_gather(all_i, pad_i)
    tdist.all_gather(all_r, pad_r)
    i, r = torch.cat(all_i), torch.cat(all_r)
    keep = i >= 0
    return i[keep], r[keep]


def wrap_model(model: torch.nn.Module, dist: Dist, device: torch.device, uses_attention: bool) -> torch.nn.Module:
    """The module the training step calls: ``model`` itself, or its DistributedDataParallel wrapper."""
    if dist.world <= 1:
        return model
    if device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None,
        # a loss that ignores the attention head leaves it without gradient: DDP must not wait for it
        find_unused_parameters=not uses_attention,
    )


def global_batch_size(local: int, dist: Dist, device: torch.device) -> float:
    """Samples in this step's global batch (the sum of every rank's share)."""
    if dist.world <= 1:
        return float(local)
    n = torch.tensor(float(local), device=device)
    tdist.all_reduce(n)
    return float(n)


def combine_epoch(dist: Dist, per_sample: list[Tensor], sums: list[Tensor], finite: Tensor) -> Tensor:
    """Merge one epoch's per-sample records and sums over ranks; returns the global "all finite" flag.

    Per-sample tensors are filled with ``-inf`` (floats) or ``-1`` (ints) where a rank did not see the
    sample and combined by a max-reduction (every sample is seen by exactly one rank), then ``-inf`` becomes
    NaN again. ``sums`` are summed.
    """
    if dist.world <= 1:
        return finite
    for t in per_sample:
        dist.all_reduce_(t, "max")
        if t.is_floating_point():
            t[torch.isinf(t)] = float("nan")
    for t in sums:
        dist.all_reduce_(t, "sum")
    ok = dist.all_reduce_(finite.to(torch.int32), "min")
    return ok.bool()


class ShardedBatches(torch.utils.data.Sampler):
    """Each rank keeps its contiguous share of every batch of ``batches`` (a batch sampler)."""

    def __init__(self, batches: Any, rank: int, world: int) -> None:
        self.batches, self.rank, self.world = batches, rank, world

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        for batch in self.batches:
            yield list(np.array_split(np.asarray(batch), self.world)[self.rank])

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.batches, "set_epoch"):
            self.batches.set_epoch(epoch)
