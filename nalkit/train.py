"""One trainer for NAL and every baseline: config -> data + noise -> model -> epochs -> run record.

Per epoch the trainer records (columns of ``metrics.csv``):

``epoch, lr, loss`` — the mean training loss;
``train_acc_noisy`` — predictions of the training pass against the (noisy) training labels;
``clean_acc`` / ``mislabeled_acc`` — against the *clean* labels, on the clean and on the mislabeled
subset; ``memorized`` — mislabeled samples predicted as their *noisy* label (memorisation);
``tau_clean`` / ``tau_mislabeled`` / ``tau_auroc`` — mean attention weight per subset and the AUROC of
``1 - tau`` for detecting mislabeled samples (NAL only); ``loss_auroc`` — the same for the per-sample
loss (the small-loss criterion); ``corrected_acc`` / ``corrected_acc_mislabeled`` — argmax of the
targets q against the clean labels; ``val_acc_noisy`` — accuracy on the noisy validation split (the
paper's tuning protocol); ``test_acc`` (and ``<name>_acc`` for extra test sets); ``seconds``,
``eval_seconds``.

Training-set quantities come from the training forward passes themselves (model in train mode,
augmented inputs), as in the authors' code; they cost nothing extra.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from . import datasets as ds
from ._progress import progress_bar
from .checkpoint import load_latest_checkpoint, save_checkpoint
from .config import Config, ConfigError
from .loader import DeviceLoader
from .methods import Method, build_method
from .metrics import auroc, masked_mean
from .models import build_model
from .noise import load_or_create_noise
from .records import RunRecord, read_status

Tensor = torch.Tensor


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or inf; the last good checkpoint is kept."""


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------
def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) in one place."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"run.device={name!r} but CUDA is not available here; use run.device=cpu or auto")
    return dev


def lr_at(cfg: Config, epoch: int) -> float:
    """Learning rate of 1-indexed ``epoch``; constant within an epoch, as the authors step per epoch."""
    o = cfg.optim
    if o.schedule == "cosine_restarts":
        t = (epoch - 1) % o.restart_period
        return o.lr_min + (o.lr - o.lr_min) * (1 + math.cos(math.pi * t / o.restart_period)) / 2
    if o.schedule == "multistep":
        return o.lr * o.gamma ** sum(epoch - 1 >= m for m in o.milestones)
    return o.lr


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------
@dataclass
class Prepared:
    """Everything the training loop needs about the data, with labels as numpy arrays."""

    bundle: ds.DatasetBundle
    train: ds.ArraySplit | ds.FileSplit  # training split after subset / validation hold-out
    noisy: np.ndarray  # labels trained on (N,)
    clean: np.ndarray | None  # clean labels where known (-1 = unknown), else None
    train_index: np.ndarray  # position of each training sample in the dataset's training split
    val: ds.ArraySplit | ds.FileSplit | None  # noisy validation split (labels = noisy)
    noise_info: dict[str, Any]


def _take(split: ds.ArraySplit | ds.FileSplit, idx: np.ndarray, labels: np.ndarray, clean: np.ndarray | None):
    if isinstance(split, ds.ArraySplit):
        return ds.ArraySplit(images=split.images[torch.as_tensor(idx)], labels=labels[idx],
                             clean_labels=None if clean is None else clean[idx])
    return ds.FileSplit(paths=[split.paths[i] for i in idx], labels=labels[idx],
                        clean_labels=None if clean is None else clean[idx])


def prepare_data(cfg: Config, noise_dir: Path | None) -> Prepared:
    d, n = cfg.data, cfg.noise
    bundle = ds.load_dataset(d.name, d.root, train_subset=d.train_subset, subset_seed=d.subset_seed)
    if d.test_subset is not None:
        if d.test_subset > len(bundle.test.labels):
            raise ConfigError(f"data.test_subset={d.test_subset} exceeds the {len(bundle.test.labels)} test images")
        keep = ds.stratified_subset_indices(np.asarray(bundle.test.labels), d.test_subset, d.subset_seed)
        bundle.test = _take(bundle.test, keep, np.asarray(bundle.test.labels), None)
    shipped = np.asarray(bundle.train.labels, dtype=np.int64)
    if bundle.real_noise:
        noisy = shipped
        clean = None if bundle.train.clean_labels is None else np.asarray(bundle.train.clean_labels, np.int64)
        info = {"noise_mode": "real", "nominal_rate": float("nan"), "actual_rate": float("nan")}
    else:
        kwargs = dict(exclude_true_class=n.exclude_true_class)
        if n.mode == "transition":
            kwargs["transition"] = np.asarray(n.transition, dtype=np.float64)
        if noise_dir is None:
            from .noise import inject_noise

            noisy_labels = inject_noise(shipped, bundle.num_classes, n.mode, n.rate, n.seed, d.name, **kwargs)
        else:
            noisy_labels = load_or_create_noise(
                noise_dir, shipped, bundle.num_classes, n.mode, n.rate, n.seed, d.name, **kwargs
            )
        noisy, clean = np.asarray(noisy_labels.labels, np.int64), shipped
        info = {"noise_mode": n.mode, "nominal_rate": float(noisy_labels.nominal_rate),
                "actual_rate": float(noisy_labels.actual_rate), "noise_key": getattr(noisy_labels, "key", "")}
    all_idx = np.arange(len(noisy))
    val = None
    if d.val_fraction > 0:
        # the paper's protocol: a *noisy* validation split taken out of the noisy training set
        rng = np.random.default_rng([n.seed, 7919])
        perm = rng.permutation(len(noisy))
        n_val = int(round(d.val_fraction * len(noisy)))
        val_idx, all_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        val = _take(bundle.train, val_idx, noisy, clean)
    train = _take(bundle.train, all_idx, noisy, clean)
    return Prepared(bundle, train, noisy[all_idx], None if clean is None else clean[all_idx], all_idx, val, info)


def worker_context() -> mp.context.BaseContext:
    """Start method of DataLoader workers: ``forkserver`` (``spawn`` where there is none), never ``fork``.

    Workers are started every epoch (so that their augmentation seeds come from the checkpointed global
    RNG and a resumed run repeats the uninterrupted one), from a trainer that has threads by then (CUDA,
    the intra-op pool, a pinning thread) whose locks a forked child could inherit held. The fork server
    is a fresh single-threaded interpreter that imports torch and the dataset code once; workers forked
    from it start in milliseconds.
    """
    if "forkserver" not in mp.get_all_start_methods():  # pragma: no cover - Windows
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "torchvision", "nalkit.datasets"])
    return ctx


def _file_loader(bundle, split, train: bool, cfg: Config, device: torch.device, shard: tuple[int, int] = (0, 1)):
    dataset = ds.ImageFileDataset(split, ds.file_transforms(bundle, train=train))
    bs = cfg.optim.batch_size if train else cfg.run.eval_batch_size
    kw: dict[str, Any] = dict(num_workers=cfg.data.num_workers, pin_memory=device.type == "cuda",
                              persistent_workers=False)
    if cfg.data.num_workers > 0:
        kw["prefetch_factor"] = 4
        kw["multiprocessing_context"] = worker_context()
    if train and cfg.data.batches_per_epoch:
        batches = ds.ClassBalancedBatchSampler(split.labels, bs, cfg.data.batches_per_epoch, seed=cfg.run.seed)
    elif train:
        gen = torch.Generator().manual_seed(cfg.run.seed)
        batches = torch.utils.data.BatchSampler(
            torch.utils.data.RandomSampler(dataset, generator=gen), bs, drop_last=False)
    else:
        return torch.utils.data.DataLoader(dataset, batch_size=bs, shuffle=False, **kw)
    if shard[1] > 1:
        batches = _ShardedBatches(batches, *shard)
    return torch.utils.data.DataLoader(dataset, batch_sampler=batches, **kw)


def _array_loader(
    bundle, split: ds.ArraySplit, train: bool, cfg: Config, device: torch.device, shard: tuple[int, int] = (0, 1)
) -> DeviceLoader:
    return DeviceLoader(
        split.images, torch.as_tensor(split.labels), cfg.optim.batch_size if train else cfg.run.eval_batch_size,
        bundle.mean, bundle.std, device=device, shuffle=train, augment=train and cfg.data.augment,
        padding=cfg.data.crop_padding, flip=cfg.data.flip, seed=cfg.run.seed,
        channels_last=cfg.run.channels_last and device.type == "cuda", shard=shard,
    )


@torch.no_grad()
def predict(model: torch.nn.Module, loader, device: torch.device, amp: bool) -> np.ndarray:
    """Argmax predictions of ``model`` over ``loader`` (in loader order)."""
    model.eval()
    preds = []
    for x, _, _ in loader:
        x = x.to(device, non_blocking=True)
        with _autocast(device, amp):
            logits, _ = model(x)
        preds.append(logits.argmax(1))
    return torch.cat(preds).cpu().numpy().astype(np.int64) if preds else np.zeros(0, np.int64)


def _autocast(device: torch.device, amp: bool):
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


# --------------------------------------------------------------------------------------------
# several processes (torchrun): DistributedDataParallel, one shared target store
# --------------------------------------------------------------------------------------------
@dataclass
class _Dist:
    """Rank and world size; ``world == 1`` is the ordinary single-process run."""

    rank: int = 0
    world: int = 1
    owns_group: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_dist(cfg: Config) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    owns = False
    if not dist.is_initialized():
        use_nccl = torch.cuda.is_available() and cfg.run.device != "cpu"
        dist.init_process_group("nccl" if use_nccl else "gloo")
        owns = True
    return _Dist(dist.get_rank(), dist.get_world_size(), owns)


def _gather_rows(index: Tensor, rows: Tensor, world: int) -> tuple[Tensor, Tensor]:
    """All-gather (index, rows) pairs of unequal length from every rank."""
    n = torch.tensor([len(index)], device=index.device)
    sizes = [torch.zeros_like(n) for _ in range(world)]
    dist.all_gather(sizes, n)
    most = int(max(int(x) for x in sizes))
    pad_i = torch.full((most,), -1, dtype=index.dtype, device=index.device)
    pad_r = torch.zeros((most, *rows.shape[1:]), dtype=rows.dtype, device=rows.device)
    pad_i[: len(index)], pad_r[: len(index)] = index, rows
    all_i = [torch.empty_like(pad_i) for _ in range(world)]
    all_r = [torch.empty_like(pad_r) for _ in range(world)]
    dist.all_gather(all_i, pad_i)
    dist.all_gather(all_r, pad_r)
    i, r = torch.cat(all_i), torch.cat(all_r)
    keep = i >= 0
    return i[keep], r[keep]


class _ShardedBatches(torch.utils.data.Sampler):
    """Each rank keeps its contiguous share of every batch of ``batches``."""

    def __init__(self, batches, rank: int, world: int) -> None:
        self.batches, self.rank, self.world = batches, rank, world

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        for batch in self.batches:
            yield list(np.array_split(np.asarray(batch), self.world)[self.rank])

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.batches, "set_epoch"):
            self.batches.set_epoch(epoch)


# --------------------------------------------------------------------------------------------
# the loop
# --------------------------------------------------------------------------------------------
def _epoch_metrics(
    prep: Prepared, method: Method, pred: np.ndarray, tau: np.ndarray, loss: np.ndarray
) -> dict[str, float]:
    noisy, clean = prep.noisy, prep.clean
    out: dict[str, float] = {"train_acc_noisy": float(np.mean(pred == noisy))}
    nan = float("nan")
    if clean is not None and (clean >= 0).any():
        known = clean >= 0
        mis = known & (clean != noisy)
        ok = known & (clean == noisy)
        out["clean_acc"] = masked_mean(pred == clean, ok)
        out["mislabeled_acc"] = masked_mean(pred == clean, mis)
        out["memorized"] = masked_mean(pred == noisy, mis)
        has_tau = method.uses_attention
        out["tau_clean"] = masked_mean(tau, ok) if has_tau else nan
        out["tau_mislabeled"] = masked_mean(tau, mis) if has_tau else nan
        out["tau_auroc"] = auroc(1.0 - tau[known], mis[known]) if has_tau else nan
        out["loss_auroc"] = auroc(loss[known], mis[known])
        corrected = method.corrected_labels()
        if corrected is not None:
            out["corrected_acc"] = masked_mean(corrected == clean, known)
            out["corrected_acc_mislabeled"] = masked_mean(corrected == clean, mis)
        else:
            out["corrected_acc"] = out["corrected_acc_mislabeled"] = nan
    elif method.uses_attention:
        out["tau_mean"] = float(np.mean(tau))
    return out


def _load_config(config: Config | str | Path | dict, overrides) -> Config:
    if isinstance(config, Config):
        cfg = config
        if overrides:
            cfg.apply_overrides(list(overrides))
    elif isinstance(config, dict):
        cfg = Config.from_dict(config).apply_overrides(list(overrides))
    else:
        cfg = Config.load(config, list(overrides))
    return cfg.validate()


def train(
    config: Config | str | Path | dict,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    results_dir: str | Path = "runs",
    run_dir: str | Path | None = None,
    noise_dir: str | Path | None = None,
    stop_after_epoch: int | None = None,
    progress: bool | None = None,
) -> Path:
    """Train one run described by ``config`` and return its run-record directory.

    Args:
        config: a :class:`Config`, a YAML path, or a dict of sections.
        overrides: ``section.key=value`` strings applied on top.
        results_dir: parent of the run directory (default ``runs/``); the directory name is
            :meth:`Config.run_name` (dataset, noise, method, seeds, config hash).
        run_dir: explicit run directory instead.
        noise_dir: where content-addressed noise files live (default ``<results_dir>/noise``).
        stop_after_epoch: stop (as if killed) after this epoch; the run stays resumable.
        progress: show a progress bar (default: ``config.run.progress``).

    A run directory with a checkpoint is resumed; a complete one is returned untouched.
    """
    cfg = _load_config(config, overrides)
    dd = _init_dist(cfg)
    device = resolve_device(cfg.run.device)
    if dd.world > 1 and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    results_dir = Path(results_dir)
    run_dir = Path(run_dir) if run_dir is not None else results_dir / cfg.run_name()
    noise_dir = Path(noise_dir) if noise_dir is not None else results_dir / "noise"
    show = (cfg.run.progress if progress is None else progress) and dd.main

    status = read_status(run_dir)
    if status.get("config_hash") not in (None, cfg.digest()):
        raise ConfigError(
            f"{run_dir} holds a run of another config (hash {status['config_hash']}, this one {cfg.digest()}); "
            f"choose another run directory"
        )
    if status.get("state") == "complete":
        for path in run_dir.glob("ckpt-*"):  # a kill after the final status may have left them
            path.unlink(missing_ok=True)
        return run_dir

    if cfg.run.threads:
        torch.set_num_threads(cfg.run.threads)
    prep = prepare_data(cfg, noise_dir)  # raises DatasetNotFoundError before anything is written
    bundle = prep.bundle
    set_seed(cfg.run.seed)
    model_kwargs = {k: v for k, v in (("width", cfg.model.width), ("hidden", cfg.model.hidden)) if v is not None}
    if cfg.model.norm != "batch":
        model_kwargs["norm"] = cfg.model.norm
    model = build_model(cfg.model.name, bundle.num_classes, in_channels=bundle.in_channels, **model_kwargs).to(device)
    if cfg.run.channels_last and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    method = build_method(cfg.method, prep.noisy, bundle.num_classes, device)
    step_model: torch.nn.Module = model
    if dd.world > 1:
        if device.type == "cuda":
            step_model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        step_model = torch.nn.parallel.DistributedDataParallel(
            step_model, device_ids=[device.index] if device.type == "cuda" else None,
            # baselines do not use the attention head: DDP must not wait for its gradient
            find_unused_parameters=not method.uses_attention,
        )
    if cfg.run.compile:
        step_model = torch.compile(step_model)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.optim.lr, momentum=cfg.optim.momentum,
                          weight_decay=cfg.optim.weight_decay)
    n_train = len(prep.noisy)
    shard = (dd.rank, dd.world)
    if isinstance(prep.train, ds.ArraySplit):
        loader = _array_loader(bundle, prep.train, True, cfg, device, shard)
        make_eval = _array_loader
    else:
        loader = _file_loader(bundle, prep.train, True, cfg, device, shard)
        make_eval = _file_loader
    # evaluation runs on the main process only
    eval_splits: dict[str, Any] = {"test": bundle.test}
    if prep.val is not None:
        eval_splits["val"] = prep.val
    if bundle.val is not None and not isinstance(prep.train, ds.ArraySplit):
        eval_splits["clean_val"] = bundle.val
    eval_splits.update(bundle.extra_test)
    eval_loaders = {k: make_eval(bundle, v, False, cfg, device) for k, v in eval_splits.items()} if dd.main else {}
    eval_labels = {k: np.asarray(v.labels) for k, v in eval_splits.items()}

    rows: list[dict[str, Any]] = []
    snapshots: dict[str, np.ndarray] = {}
    last: dict[str, np.ndarray] = {}
    start_epoch, elapsed = 1, 0.0
    loaded = load_latest_checkpoint(run_dir, map_location=device) if run_dir.is_dir() else None
    if loaded is not None:
        state, ckpt_path = loaded
        if state.get("config_hash") not in (None, cfg.digest()):
            raise ConfigError(
                f"{ckpt_path} is a checkpoint of another config (hash {state['config_hash']}, this one "
                f"{cfg.digest()}); choose another run directory"
            )
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        method.load_state_dict(state["method"])
        if isinstance(loader, DeviceLoader):
            loader.load_state_dict(state["loader"])
        torch.set_rng_state(state["rng"]["torch"].cpu())
        np.random.set_state(state["rng"]["numpy"])
        random.setstate(state["rng"]["python"])
        if device.type == "cuda" and state["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(state["rng"]["cuda"].cpu(), device)
        rows, snapshots, last = state["rows"], state["snapshots"], state["last"]
        start_epoch, elapsed = state["epoch"] + 1, state["elapsed"]
    if dd.world > 1:
        dist.barrier()  # nobody writes before every rank has read the checkpoint

    record = RunRecord(run_dir) if dd.main else None
    started = status.get("started") or time.strftime("%Y-%m-%dT%H:%M:%S%z")
    common = dict(config_hash=cfg.digest(), run_name=run_dir.name, started=started, epochs=cfg.optim.epochs,
                  noise=prep.noise_info, n_train=n_train, world_size=dd.world)
    if record is not None:
        record.write_config(cfg.to_yaml())
        record.write_environment(device)
        record.write_status(state="running", epoch=start_epoch - 1, seconds=elapsed, **common)

    epochs = range(start_epoch, cfg.optim.epochs + 1)
    bar = progress_bar(epochs, total=cfg.optim.epochs, initial=start_epoch - 1, desc=run_dir.name[:40],
               disable=not show, file=sys.stderr, mininterval=2.0, dynamic_ncols=True)
    # per-sample records: single process fills NaN/-1 for unseen samples; several processes fill
    # -inf/-1 and combine with a max-reduction (every sample is seen by exactly one rank per epoch)
    empty = float("nan") if dd.world == 1 else float("-inf")
    for epoch in bar:
        t0 = time.perf_counter()
        lr = lr_at(cfg, epoch)
        for g in opt.param_groups:
            g["lr"] = lr
        _set_epoch(loader, cfg, epoch)
        step_model.train()
        pred = torch.full((n_train,), -1, dtype=torch.long, device=device)
        tau = torch.full((n_train,), empty, dtype=torch.float32, device=device)
        sample_loss = torch.full((n_train,), empty, dtype=torch.float32, device=device)
        loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        finite = torch.ones((), device=device, dtype=torch.bool)
        count = torch.zeros((), device=device, dtype=torch.float64)
        for x, y, idx in loader:
            x = x.to(device, non_blocking=True)
            y = y.to(device, non_blocking=True)
            idx = idx.to(device, non_blocking=True)
            with _autocast(device, cfg.run.amp):
                logits, att = step_model(x)
            per = method.batch_loss(logits, att if method.uses_attention else None, y, idx, epoch)
            if dd.world == 1:
                loss = per.mean()
                n_batch = len(y)
            else:
                # DDP averages gradients over ranks; scale so that the result is the mean over the global batch
                n = torch.tensor(float(len(y)), device=device)
                dist.all_reduce(n)
                n_batch = float(n)
                loss = per.sum() * dd.world / n_batch
                if method.store is not None:
                    gi, gq = _gather_rows(idx, method.store.get(idx), dd.world)
                    method.store.q[gi] = gq
            finite &= torch.isfinite(loss)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                pred[idx] = logits.argmax(1)
                sample_loss[idx] = per.detach().float()
                if method.uses_attention:
                    tau[idx] = torch.sigmoid(att.detach().float().reshape(-1))
                loss_sum += per.detach().double().sum() if dd.world > 1 else loss.detach().double() * len(y)
            count += len(y)
        if dd.world > 1:
            for t in (pred, tau, sample_loss):
                dist.all_reduce(t, op=dist.ReduceOp.MAX)
            for t in (loss_sum, count):
                dist.all_reduce(t)
            ok = finite.to(torch.int32)
            dist.all_reduce(ok, op=dist.ReduceOp.MIN)
            finite = ok.bool()
            tau[torch.isinf(tau)] = float("nan")
            sample_loss[torch.isinf(sample_loss)] = float("nan")
            if method.store is not None and method.store._epoch_probs is not None:
                seen = torch.nonzero(method.store._epoch_probs.sum(1) > 0).squeeze(1)
                gi, gp = _gather_rows(seen, method.store._epoch_probs[seen], dd.world)
                method.store._epoch_probs[gi] = gp
        method.end_epoch(epoch)
        if not bool(finite):
            raise NonFiniteLossError(
                f"{run_dir.name}: the training loss became NaN/inf in epoch {epoch} (lr {lr:.4g}); "
                f"stopped without saving this epoch. "
                + (f"The last good checkpoint (epoch {epoch - 1}) is kept in {run_dir}; " if epoch > 1 else "")
                + "lower optim.lr or check the data."
            )
        train_seconds = time.perf_counter() - t0
        if not dd.main:
            dist.barrier()  # wait for the main process's evaluation and writes
            if stop_after_epoch is not None and epoch >= stop_after_epoch and epoch < cfg.optim.epochs:
                return run_dir
            continue

        pred_np, tau_np, loss_np = pred.cpu().numpy(), tau.cpu().numpy(), sample_loss.cpu().numpy()
        row: dict[str, Any] = {"epoch": epoch, "lr": lr, "loss": float(loss_sum) / max(float(count), 1.0)}
        row.update(_epoch_metrics(prep, method, pred_np, tau_np, loss_np))
        t1 = time.perf_counter()
        evaluate = epoch % cfg.run.eval_every == 0 or epoch == cfg.optim.epochs
        test_pred = None
        for name, ev in eval_loaders.items():
            key = "test_acc" if name == "test" else f"{name}_acc" if name != "val" else "val_acc_noisy"
            if evaluate:
                p = predict(model, ev, device, cfg.run.amp)
                row[key] = float(np.mean(p == eval_labels[name]))
                if name == "test":
                    test_pred = p
            else:
                row[key] = float("nan")
        row["seconds"] = train_seconds
        row["eval_seconds"] = time.perf_counter() - t1
        rows.append(row)
        elapsed += time.perf_counter() - t0

        last = {"pred": pred_np, "loss": loss_np, "tau": tau_np}
        if test_pred is not None:
            last["test_pred"] = test_pred
        corrected = method.corrected_labels()
        if corrected is not None:
            last["q_argmax"] = corrected
        if epoch in cfg.run.snapshot_epochs:
            for k in ("pred", "loss", "tau", "q_argmax"):
                if k in last:
                    snapshots[f"{k}_e{epoch}"] = last[k]
        rng = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
               "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}
        save_checkpoint(run_dir, epoch, {
            "epoch": epoch, "elapsed": elapsed, "model": model.state_dict(), "optimizer": opt.state_dict(),
            "method": method.state_dict(),
            "loader": loader.state_dict() if isinstance(loader, DeviceLoader) else None,
            "rng": rng, "rows": rows, "snapshots": snapshots, "last": last, "config_hash": cfg.digest(),
        })
        record.write_metrics(rows)
        record.write_status(state="running", epoch=epoch, seconds=elapsed, **common)
        bar.set_postfix(loss=f"{row['loss']:.3f}", test=f"{row.get('test_acc', float('nan')):.3f}", refresh=False)
        if dd.world > 1:
            dist.barrier()
        if stop_after_epoch is not None and epoch >= stop_after_epoch and epoch < cfg.optim.epochs:
            bar.close()
            return run_dir
    bar.close()
    if not dd.main:
        _finish_dist(dd)
        return run_dir

    arrays = {
        "train_index": prep.train_index, "noisy_labels": prep.noisy,
        "clean_labels": prep.clean if prep.clean is not None else np.full(n_train, -1, np.int64),
        "test_labels": eval_labels["test"], **{f"final_{k}": v for k, v in last.items()}, **snapshots,
    }
    record.write_arrays(arrays)
    record.write_metrics(rows)
    final = rows[-1]
    tests = [r["test_acc"] for r in rows if not math.isnan(r.get("test_acc", float("nan")))]
    record.write_status(state="complete", epoch=cfg.optim.epochs, seconds=elapsed,
                        finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                        final_test_acc=final.get("test_acc"), best_test_acc=max(tests) if tests else None,
                        **common)
    for path in run_dir.glob("ckpt-*"):
        path.unlink(missing_ok=True)
    _finish_dist(dd)
    return run_dir


def _set_epoch(loader, cfg: Config, epoch: int) -> None:
    """Reseed a DataLoader's batch order for ``epoch`` (DeviceLoader carries its own generator)."""
    if isinstance(loader, DeviceLoader):
        return
    batches = loader.batch_sampler
    if hasattr(batches, "set_epoch"):  # class-balanced sampler (possibly inside the sharding wrapper)
        batches.set_epoch(epoch)
    inner = getattr(batches, "batches", batches)
    sampler = getattr(inner, "sampler", None)
    if getattr(sampler, "generator", None) is not None:
        sampler.generator.manual_seed(cfg.run.seed * 100_003 + epoch)


def _finish_dist(dd: _Dist) -> None:
    if dd.world > 1:
        dist.barrier()
        if dd.owns_group:
            dist.destroy_process_group()
