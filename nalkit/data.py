"""The data pipeline: a config -> the training split with its noisy labels, the evaluation splits, the loaders.

:func:`prepare_data` loads the dataset (:mod:`nalkit.datasets`), takes the class-stratified training subset,
corrupts its labels with the config's synthetic noise (:func:`corrupt_labels`, saved as data by
:mod:`nalkit.noise`), and splits off what the run evaluates besides the test set: the noisy validation split
(``data.val_fraction`` out of the training set, or ``data.noisy_val_size`` images from outside the subset,
corrupted by the same process), Clothing1M's fixed class-balanced subset and a K-fold held-out fold. What it
returns, :class:`Prepared`, is everything the trainer needs about the data. :func:`make_loader` turns a split
into batches ``(x, y, index)``: in-memory datasets stay on the device (:class:`nalkit.loader.DeviceLoader`),
image-file datasets go through DataLoader workers started from a fork server (:func:`worker_context`).

Nothing here trains or writes a run record; noise files are the one thing written (content-addressed, under the
``noise_dir`` given).
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import datasets as ds
from .config import Config, ConfigError
from .distributed import ShardedBatches
from .loader import DeviceLoader
from .noise import NoisyLabels, inject_noise, load_or_create_noise


@dataclass
class Prepared:
    """Everything the training loop needs about the data, with labels as numpy arrays."""

    bundle: ds.DatasetBundle
    train: ds.ArraySplit | ds.FileSplit  # training split after subset / validation hold-out
    noisy: np.ndarray  # labels trained on (N,)
    clean: np.ndarray | None  # clean labels where known (-1 = unknown), else None
    # position of each training sample in the dataset's training split (after data.train_subset): for
    # Clothing1M's fixed class-balanced subset, its line in noisy_train_key_list.txt
    train_index: np.ndarray
    val: ds.ArraySplit | ds.FileSplit | None  # noisy validation split (labels = noisy)
    noise_info: dict[str, Any]
    heldout: ds.ArraySplit | ds.FileSplit | None = None  # data.cv_folds: the held-out fold (labels = noisy)
    heldout_index: np.ndarray | None = None  # its positions in the training set, as train_index
    sampling: dict[str, Any] = field(default_factory=dict)  # how the training split was drawn (status.json)


def _with_labels(split: ds.Split, idx: np.ndarray, labels: np.ndarray, clean: np.ndarray | None) -> ds.Split:
    """The samples ``idx`` of ``split``, labelled ``labels[idx]`` (clean labels ``clean[idx]``)."""
    return dataclasses.replace(ds.take(split, idx), labels=labels[idx],
                               clean_labels=None if clean is None else clean[idx])


def corrupt_labels(cfg: Config, split: ds.Split, num_classes: int, noise_dir: Path | None) -> NoisyLabels:
    """The labels of ``split`` (its clean labels, (N,)) corrupted by the config's synthetic noise (``noise.mode``,
    ``noise.rate``, ``noise.seed``): a :class:`nalkit.noise.NoisyLabels` whose ``labels`` are the noisy ones.

    With ``noise_dir`` the noise is a content-addressed file there (read when it exists, else made and saved);
    ``None`` makes it in memory. It takes the whole split, not only its labels, so that a noise mode whose flips
    depend on the samples themselves (instance-dependent noise) can read ``split.images`` here; the training
    split and the noisy validation split both come through this one function. ``noise.mode=idn`` reads them
    through :func:`idn_features`.
    """
    n, d = cfg.noise, cfg.data
    labels = np.asarray(split.labels, np.int64)
    kwargs: dict[str, Any] = dict(exclude_true_class=n.exclude_true_class)
    if n.mode == "transition":
        kwargs["transition"] = np.asarray(n.transition, dtype=np.float64)
    if n.mode == "idn":
        kwargs["features"] = idn_features(split, d.name)
    if noise_dir is None:
        return inject_noise(labels, num_classes, n.mode, n.rate, n.seed, d.name, **kwargs)
    return load_or_create_noise(noise_dir, labels, num_classes, n.mode, n.rate, n.seed, d.name, **kwargs)


def idn_features(split: ds.Split, dataset: str) -> np.ndarray:
    """The (N, d) features instance-dependent noise projects: each image of ``split`` flattened in (C, H, W)
    order, as its raw pixel values 0..255 (uint8, a view of the split's images, no copy).

    Raw values, as in Xia et al.'s code (``torch.from_numpy(images).float()``, no scaling): the scale of the
    features is the softmax's temperature, so images scaled to [0, 1] would spread each flip over more classes
    than Xia et al.'s generator does (see :mod:`nalkit.noise`).
    """
    if not isinstance(split, ds.ArraySplit):
        raise ConfigError(
            f"noise.mode=idn projects the images, but data.name={dataset!r} reads its images from files; use an "
            "in-memory dataset (fashion_mnist, cifar10, cifar100) or another noise.mode"
        )
    images = split.images.detach().cpu()
    return images.reshape(images.shape[0], -1).numpy()


def prepare_data(cfg: Config, noise_dir: Path | None) -> Prepared:
    """Load the dataset, take the training subset, inject (or read) the noise, split off validation."""
    d, n = cfg.data, cfg.noise
    bundle = ds.load_dataset(d.name, d.root)
    full = bundle.train
    subset = np.arange(len(full)) if d.train_subset is None else \
        ds.stratified_subset_indices(np.asarray(full.labels), d.train_subset, d.subset_seed)
    bundle.train = ds.take(full, subset) if d.train_subset is not None else full
    if d.test_subset is not None:
        if d.test_subset > len(bundle.test.labels):
            raise ConfigError(f"data.test_subset={d.test_subset} exceeds the {len(bundle.test.labels)} test images")
        keep = ds.stratified_subset_indices(np.asarray(bundle.test.labels), d.test_subset, d.subset_seed)
        bundle.test = _with_labels(bundle.test, keep, np.asarray(bundle.test.labels), None)
    shipped = np.asarray(bundle.train.labels, dtype=np.int64)
    if bundle.real_noise:
        noisy = shipped
        clean = None if bundle.train.clean_labels is None else np.asarray(bundle.train.clean_labels, np.int64)
        info = {"noise_mode": "real", "nominal_rate": float("nan"), "actual_rate": float("nan")}
    else:
        made = corrupt_labels(cfg, bundle.train, bundle.num_classes, noise_dir)
        noisy, clean = np.asarray(made.labels, np.int64), shipped
        info = {"noise_mode": n.mode, "nominal_rate": float(made.nominal_rate),
                "actual_rate": float(made.actual_rate), "noise_key": getattr(made, "key", "")}
    all_idx = np.arange(len(noisy))
    val = None
    if d.val_fraction > 0:
        # the paper's protocol: a *noisy* validation split taken out of the noisy training set
        rng = np.random.default_rng([n.seed, 7919])
        perm = rng.permutation(len(noisy))
        n_val = int(round(d.val_fraction * len(noisy)))
        val_idx, all_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        val = _with_labels(bundle.train, val_idx, noisy, clean)
    elif d.noisy_val_size is not None:
        val = _noisy_validation(cfg, full, subset, bundle.num_classes, noise_dir)
    sampling: dict[str, Any] = {}
    if d.batches_per_epoch is not None and d.balanced_sampling == "fixed_subset":
        all_idx, sampling = _fixed_balanced_subset(cfg, noisy, all_idx)
    heldout = heldout_idx = None
    if d.cv_folds is not None:
        # one permutation per noise seed: the K folds of every fold's run partition the same training set
        folds = np.array_split(np.random.default_rng([n.seed, 104729]).permutation(all_idx), d.cv_folds)
        heldout_idx = np.sort(folds[d.cv_fold])
        all_idx = np.setdiff1d(all_idx, heldout_idx)
        heldout = _with_labels(bundle.train, heldout_idx, noisy, clean)
        sampling = {"rule": f"fold {d.cv_fold} of {d.cv_folds} held out", "heldout": int(len(heldout_idx))}
    train = _with_labels(bundle.train, all_idx, noisy, clean)
    return Prepared(bundle, train, noisy[all_idx], None if clean is None else clean[all_idx], all_idx, val, info,
                    sampling=sampling, heldout=heldout, heldout_index=heldout_idx)


def _fixed_balanced_subset(cfg: Config, noisy: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, dict]:
    """The authors' Clothing1M training set: ``batches_per_epoch x batch_size`` of ``candidates``, balanced by
    noisy label, drawn once (a pure function of the labels and ``run.seed``, so a resumed run draws it again).

    The authors seed this draw with their training seed (train_clothing1m.py:45 seeds ``random`` before
    dataloader_clothing1m.py:43 shuffles), so here it is ``run.seed``: every training seed its own subset,
    every method of one seed the same one.
    """
    size = cfg.data.batches_per_epoch * cfg.optim.batch_size
    if size > len(candidates):
        raise ConfigError(f"data.batches_per_epoch={cfg.data.batches_per_epoch} x optim.batch_size="
                          f"{cfg.optim.batch_size} = {size} images, but the training set holds {len(candidates)}; "
                          "lower data.batches_per_epoch")
    pick = ds.class_balanced_subset_indices(noisy[candidates], size, seed=cfg.run.seed)
    chosen = candidates[pick]
    per_class = np.bincount(noisy[chosen], minlength=int(noisy.max()) + 1)
    return chosen, {"rule": "fixed class-balanced subset (by noisy label), drawn once, reshuffled every epoch",
                    "size": int(size), "seed": int(cfg.run.seed), "per_class": per_class.tolist()}


def _noisy_validation(cfg: Config, full: ds.Split, subset: np.ndarray, num_classes: int,
                      noise_dir: Path | None) -> ds.Split:
    """``data.noisy_val_size`` images from outside the training subset, noisy by the same process."""
    pick = noisy_validation_indices(np.asarray(full.labels, np.int64), subset, cfg.data.noisy_val_size,
                                    cfg.data.subset_seed, cfg.data.train_subset)
    split = ds.take(full, pick)
    noisy = np.asarray(corrupt_labels(cfg, split, num_classes, noise_dir).labels, np.int64)
    return dataclasses.replace(split, labels=noisy, clean_labels=np.asarray(split.labels, np.int64))


def noisy_validation_indices(labels: np.ndarray, subset: np.ndarray, size: int, seed: int,
                             train_subset: int | None = None) -> np.ndarray:
    """The ``data.noisy_val_size`` images of the training split outside ``subset``: a class-stratified draw
    (``data.subset_seed``) from the rest, as positions in the full training split."""
    rest = np.setdiff1d(np.arange(len(labels)), subset)
    if size > len(rest):
        raise ConfigError(f"data.noisy_val_size={size} exceeds the {len(rest)} training images outside "
                          f"data.train_subset={train_subset}")
    return rest[ds.stratified_subset_indices(np.asarray(labels)[rest], size, seed)]


def training_images_read(cfg: Config, labels: np.ndarray) -> np.ndarray:
    """Positions in the full training split of every image a run of ``cfg`` reads (its training subset and its
    noisy validation set), given the split's ``labels``; sorted. Every image when there is no subset."""
    d = cfg.data
    if d.train_subset is None:
        return np.arange(len(labels))
    subset = ds.stratified_subset_indices(np.asarray(labels), d.train_subset, d.subset_seed)
    if d.noisy_val_size is None:
        return subset
    val = noisy_validation_indices(labels, subset, d.noisy_val_size, d.subset_seed, d.train_subset)
    return np.union1d(subset, val)


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


def normalization(bundle: ds.DatasetBundle, cfg: Config) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (mean, std) in [0, 1] units that ``cfg.data.normalization`` selects for ``bundle``."""
    if cfg.data.normalization == "imagenet":
        if bundle.in_channels != 3:
            raise ConfigError(f"data.normalization=imagenet needs RGB images; {bundle.name} has "
                              f"{bundle.in_channels} channel(s): use data.normalization=dataset")
        return ds.IMAGENET_MEAN, ds.IMAGENET_STD
    return tuple(bundle.mean), tuple(bundle.std)


def make_loader(bundle: ds.DatasetBundle, split: ds.Split, train: bool, cfg: Config, device: torch.device,
                shard: tuple[int, int] = (0, 1), name: str = "test") -> Any:
    """Batches ``(x, y, index)`` of ``split``: a :class:`DeviceLoader` for in-memory data, else a DataLoader.

    ``name`` is an evaluation split's name (``test``, ``clean_val``, ``ilsvrc12_val``...): file-backed splits
    take their transform by it (``nalkit.datasets.FILE_GEOMETRY``).
    """
    mean, std = normalization(bundle, cfg)
    drop_last = train and cfg.data.drop_last
    bs = cfg.optim.batch_size if train else cfg.run.eval_batch_size
    if drop_last and len(split) < bs:
        raise ConfigError(f"data.drop_last=true with optim.batch_size={bs} and {len(split)} training images "
                          "leaves no batch; lower the batch size or set data.drop_last=false")
    if isinstance(split, ds.ArraySplit):
        if train and cfg.data.batches_per_epoch and cfg.data.balanced_sampling == "every_epoch":
            raise ConfigError(f"data.balanced_sampling=every_epoch is implemented for file-backed datasets only, "
                              f"not {bundle.name}; use data.balanced_sampling=fixed_subset")
        return DeviceLoader(
            split.images, torch.as_tensor(split.labels), bs, mean, std, device=device, shuffle=train,
            augment=train and cfg.data.augment, padding=cfg.data.crop_padding, flip=cfg.data.flip,
            seed=cfg.run.seed, channels_last=cfg.run.channels_last and device.type == "cuda", shard=shard,
            drop_last=drop_last,
        )
    dataset = ds.ImageFileDataset(split, ds.file_transforms(bundle, train=train, split=name, mean=mean, std=std))
    kw: dict[str, Any] = dict(num_workers=cfg.data.num_workers, pin_memory=device.type == "cuda",
                              persistent_workers=False)
    if cfg.data.num_workers > 0:
        kw["prefetch_factor"] = 4
        kw["multiprocessing_context"] = worker_context()
    if train and cfg.data.batches_per_epoch and cfg.data.balanced_sampling == "every_epoch":
        batches = ds.ClassBalancedBatchSampler(split.labels, bs, cfg.data.batches_per_epoch, seed=cfg.run.seed)
    elif train:  # (the fixed class-balanced subset, if any, is the split itself: see prepare_data)
        gen = torch.Generator().manual_seed(cfg.run.seed)
        batches = torch.utils.data.BatchSampler(
            torch.utils.data.RandomSampler(dataset, generator=gen), bs, drop_last=drop_last)
    else:
        return torch.utils.data.DataLoader(dataset, batch_size=bs, shuffle=False, **kw)
    if shard[1] > 1:
        batches = ShardedBatches(batches, *shard)
    return torch.utils.data.DataLoader(dataset, batch_sampler=batches, **kw)


def set_loader_epoch(loader: Any, cfg: Config, epoch: int) -> None:
    """Reseed the batch order of a loader from :func:`make_loader` for 1-indexed ``epoch``, so that a resumed run
    draws the batches of the uninterrupted one (a DataLoader's sampler; a DeviceLoader carries its own generator)."""
    if isinstance(loader, DeviceLoader):
        return
    batches = loader.batch_sampler
    if hasattr(batches, "set_epoch"):  # class-balanced sampler (possibly inside the sharding wrapper)
        batches.set_epoch(epoch)
    inner = getattr(batches, "batches", batches)
    sampler = getattr(inner, "sampler", None)
    if getattr(sampler, "generator", None) is not None:
        sampler.generator.manual_seed(cfg.run.seed * 100_003 + epoch)
