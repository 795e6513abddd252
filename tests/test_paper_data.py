"""The paper recipes' data handling, on fabricated files in each dataset's real on-disk format (issue 12).

Clothing1M's fixed class-balanced subset, mini-WebVision's transforms and top-5 evaluation, the official
ILSVRC12 val layout, ANIMAL-10N's flip-only / ImageNet-normalised / drop_last loader: each against the
authors' scripts (MacLLL/NAL), on files written by :func:`nalkit.datasets.fabricate.fabricate_dataset`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from nalkit import datasets as ds
from nalkit.config import Config, ConfigError
from nalkit.data import prepare_data
from nalkit.data import set_loader_epoch as set_epoch
from nalkit.datasets.fabricate import fabricate_dataset
from nalkit.records import read_metrics
from nalkit.results import load_arrays
from nalkit.train import build, evaluate, predict, train, train_one_epoch

pytestmark = pytest.mark.filterwarnings("ignore::nalkit.datasets.DatasetSizeWarning")

TIMING = ["seconds", "eval_seconds"]

# Clothing1M noisy labels with very unequal classes (as the real ones): 60 images over the 14 classes.
CLOTHING_COUNTS = [10, 8, 6, 5, 5, 4, 4, 3, 3, 3, 3, 2, 2, 2]
CLOTHING_LABELS = np.repeat(np.arange(14), CLOTHING_COUNTS)[np.random.default_rng(0).permutation(60)]


def small(name: str, root: Path, **sections) -> Config:
    """A config of dataset ``name`` at ``root`` with a small model, for the CPU."""
    raw = {"data": {"name": name, "root": str(root), "num_workers": 0}, "noise": {"mode": "none"},
           "model": {"name": "small_cnn", "width": 4},
           "method": {"name": "nal", "nal": {"es": 2, "update_period": 1}},
           "optim": {"epochs": 3, "batch_size": 8, "restart_period": 2},
           "run": {"device": "cpu", "progress": False, "eval_batch_size": 16, "threads": 1}}
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    return Config.from_dict(raw).validate()


# ------------------------------------------------------------------------------------------------
# 1. Clothing1M: one fixed class-balanced subset, drawn once


def test_class_balanced_subset_has_exact_size_and_balance():
    labels = CLOTHING_LABELS
    idx = ds.class_balanced_subset_indices(labels, 24, seed=3)
    assert len(idx) == 24 and len(np.unique(idx)) == 24 and np.all(np.diff(idx) > 0)
    # 24 = 14 x 1 + 10: the ten lowest classes get 2, the other four 1
    assert np.bincount(labels[idx], minlength=14).tolist() == [2] * 10 + [1] * 4
    np.testing.assert_array_equal(ds.class_balanced_subset_indices(labels, 24, seed=3), idx)
    assert not np.array_equal(ds.class_balanced_subset_indices(labels, 24, seed=4), idx)
    # 14 x 3 = 42 > the three 2-image classes: they give all they have, the shortfall is spread over the rest
    counts = np.bincount(labels[ds.class_balanced_subset_indices(labels, 42, seed=0)], minlength=14)
    assert counts.sum() == 42 and counts[11:].tolist() == [2, 2, 2]
    assert counts[:11].max() - counts[:11].min() <= 1 and counts[:11].min() == 3
    # all of it, and too much
    assert len(ds.class_balanced_subset_indices(labels, 60)) == 60
    with pytest.raises(ValueError, match="subset of 61 samples needs 1..60"):
        ds.class_balanced_subset_indices(labels, 61)


def test_clothing1m_trains_on_one_fixed_balanced_subset_with_targets_for_it_only(tmp_path):
    fabricate_dataset("clothing1m", tmp_path / "data", n_train=60, n_test=6, labels=CLOTHING_LABELS)
    cfg = small("clothing1m", tmp_path / "data", data={"batches_per_epoch": 3})
    run = build(cfg, tmp_path / "run", tmp_path / "noise")
    size = 3 * 8
    assert len(run.data.train) == len(run.data.noisy) == size
    assert np.bincount(run.data.noisy, minlength=14).tolist() == [2] * 10 + [1] * 4
    assert tuple(run.method.store.q.shape) == (size, 14)  # q: one row per subset image, not per training image
    # train_index maps each subset image back to its line of noisy_train_key_list.txt
    full = ds.load_dataset("clothing1m", tmp_path / "data")
    assert [full.train.paths[i] for i in run.data.train_index] == run.data.train.paths
    np.testing.assert_array_equal(CLOTHING_LABELS[run.data.train_index], run.data.noisy)
    assert run.data.sampling["size"] == size and run.data.sampling["per_class"] == [2] * 10 + [1] * 4
    # every epoch: exactly the subset, each image once, in a new order
    orders = []
    for epoch in (1, 2):
        set_epoch(run.loader, cfg, epoch)
        batches = [idx.tolist() for _, _, idx in run.loader]
        assert len(batches) == 3 and all(len(b) == 8 for b in batches)
        orders.append(sum(batches, []))
        assert sorted(orders[-1]) == list(range(size))
    assert orders[0] != orders[1]
    # a pure function of the config: a rebuilt (resumed) run draws the same subset; another seed another one
    again = prepare_data(cfg, tmp_path / "noise")
    np.testing.assert_array_equal(again.train_index, run.data.train_index)
    other = prepare_data(small("clothing1m", tmp_path / "data", data={"batches_per_epoch": 3}, run={"seed": 5}),
                         tmp_path / "noise")
    assert not np.array_equal(other.train_index, run.data.train_index)
    assert np.bincount(other.noisy, minlength=14).tolist() == [2] * 10 + [1] * 4


def test_clothing1m_subset_survives_a_resume(tmp_path):
    fabricate_dataset("clothing1m", tmp_path / "data", n_train=60, n_test=6, labels=CLOTHING_LABELS)
    cfg = small("clothing1m", tmp_path / "data", data={"batches_per_epoch": 2}, optim={"epochs": 2})
    full = train(cfg, results_dir=tmp_path / "a")
    part = train(cfg, results_dir=tmp_path / "b", stop_after_epoch=1)
    resumed = train(cfg, results_dir=tmp_path / "b")
    assert resumed == part
    a, b = (read_metrics(d).drop(columns=TIMING) for d in (full, resumed))
    pd.testing.assert_frame_equal(a, b)
    assert "clean_val_acc" in a and a.clean_val_acc.notna().all()
    za, zb = load_arrays(full), load_arrays(resumed)
    np.testing.assert_array_equal(za["train_index"], zb["train_index"])
    assert len(za["train_index"]) == 16 and len(za["final_tau"]) == 16
    status = json.loads((resumed / "status.json").read_text())
    assert status["n_train"] == 16 and status["sampling"]["size"] == 16 and status["sampling"]["seed"] == 0


def test_clothing1m_every_epoch_sampling_and_errors(tmp_path):
    fabricate_dataset("clothing1m", tmp_path / "data", n_train=60, n_test=6, labels=CLOTHING_LABELS)
    cfg = small("clothing1m", tmp_path / "data", data={"batches_per_epoch": 3, "balanced_sampling": "every_epoch"})
    run = build(cfg, tmp_path / "run", tmp_path / "noise")
    assert len(run.data.train) == 60 and isinstance(run.loader.batch_sampler, ds.ClassBalancedBatchSampler)
    with pytest.raises(ConfigError, match=r"batches_per_epoch=8 x optim.batch_size=8 = 64 images, but the "
                                          r"training set holds 60"):
        prepare_data(small("clothing1m", tmp_path / "data", data={"batches_per_epoch": 8}), None)
    with pytest.raises(ConfigError, match="applies only with data.batches_per_epoch"):
        small("clothing1m", tmp_path / "data", data={"balanced_sampling": "every_epoch"})
    with pytest.raises(ConfigError, match="data.balanced_sampling='fresh' is not one of"):
        small("clothing1m", tmp_path / "data", data={"batches_per_epoch": 3, "balanced_sampling": "fresh"})


# ------------------------------------------------------------------------------------------------
# 2 and 8. mini-WebVision: the authors' geometry; ILSVRC12 val in the official flat layout


def _names(transform) -> list[str]:
    return [type(t).__name__ for t in transform.transforms]


def test_webvision_transforms_give_the_authors_shapes_from_the_authors_sizes(tmp_path):
    fabricate_dataset("webvision", tmp_path, n_train=4, n_test=3)
    b = ds.load_dataset("webvision", tmp_path)
    train_tf = ds.file_transforms(b, train=True)
    val_tf = ds.file_transforms(b, train=False, split="test")
    inet_tf = ds.file_transforms(b, train=False, split="ilsvrc12_val")
    # train: RandomCrop(227) of the 256-px image, no resize (dataloader_webvision.py:104-109)
    assert _names(train_tf) == ["RandomCrop", "RandomHorizontalFlip", "ToTensor", "Normalize"]
    assert _names(val_tf) == ["CenterCrop", "ToTensor", "Normalize"]  # :110-114
    assert _names(inet_tf) == ["Resize", "CenterCrop", "ToTensor", "Normalize"]  # :115-120
    assert inet_tf.transforms[0].size == 256 and val_tf.transforms[0].size == (227, 227)
    for split, tf, sizes in ((b.train, train_tf, [(341, 256), (256, 320)]), (b.test, val_tf, [(341, 256)]),
                             (b.extra_test["ilsvrc12_val"], inet_tf, [(500, 375), (500, 333)])):
        for i, size in enumerate(sizes):
            with Image.open(split.paths[i]) as img:
                assert img.size == size  # the release's sizes: 256 px shorter side; ILSVRC12 full size
            x, _, index = ds.ImageFileDataset(split, tf)[i]
            assert x.shape == (3, 227, 227) and x.dtype == torch.float32 and index == i
    # WebVision val: the central 227 x 227 of the stored image itself, not of a resized copy
    with Image.open(b.test.paths[0]) as img:
        w, h = img.size
        left, top = round((w - 227) / 2), round((h - 227) / 2)
        want = np.asarray(img.convert("RGB").crop((left, top, left + 227, top + 227)), np.float32) / 255
    x = ds.ImageFileDataset(b.test, val_tf)[0][0].numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(x * np.array(ds.IMAGENET_STD) + np.array(ds.IMAGENET_MEAN), want, atol=1e-5)
    # Clothing1M keeps Resize(256) + crop 224
    fabricate_dataset("clothing1m", tmp_path, n_train=4, n_test=2)
    c = ds.load_dataset("clothing1m", tmp_path)
    assert _names(ds.file_transforms(c, train=True))[:2] == ["Resize", "RandomCrop"]
    assert ds.ImageFileDataset(c.val, ds.file_transforms(c, False, "clean_val"))[0][0].shape == (3, 224, 224)


def test_ilsvrc12_val_official_flat_folder_with_val_txt(tmp_path):
    base = fabricate_dataset("webvision", tmp_path, n_train=4, n_test=6)
    truth = base / "imagenet" / "ILSVRC2012_devkit_t12" / "data" / "val.txt"
    lines = truth.read_text().split("\n")
    truth.write_text("\n".join(reversed(lines)))  # matched by file name, not by position
    iv = ds.load_dataset("webvision", tmp_path).extra_test["ilsvrc12_val"]
    assert len(iv) == 6 and sorted(iv.labels.tolist()) == [0, 1, 2, 3, 4, 5]  # classes 51 and 998 dropped
    for path, label in zip(iv.paths, iv.labels, strict=True):
        assert Path(path).parent == base / "imagenet" / "val"
        assert f"{Path(path).name} {label}" in lines
    np.testing.assert_array_equal(iv.labels, iv.clean_labels)
    # the ground truth may also sit beside the folder
    truth.rename(base / "imagenet" / "val.txt")
    assert len(ds.load_dataset("webvision", tmp_path).extra_test["ilsvrc12_val"]) == 6
    # the devkit's label-only list is refused with what to provide instead
    (base / "imagenet" / "val.txt").write_text("490\n361\n")
    with pytest.raises(ds.DatasetNotFoundError, match="expected '<file name> <class index>'.*val.txt"):
        ds.load_dataset("webvision", tmp_path)
    (base / "imagenet" / "val.txt").unlink()
    with pytest.raises(ds.DatasetNotFoundError, match="no class folders 0..49 and no ground truth"):
        ds.load_dataset("webvision", tmp_path)
    (base / "imagenet" / "val.txt").write_text("ILSVRC2012_val_00000001.JPEG 0\nILSVRC2012_val_09999999.JPEG 3\n")
    with pytest.raises(ds.DatasetNotFoundError, match="1 of the 2 images .* e.g. ILSVRC2012_val_09999999.JPEG"):
        ds.load_dataset("webvision", tmp_path)


def test_ilsvrc12_val_divide_mix_folders_still_read(tmp_path):
    fabricate_dataset("webvision", tmp_path, n_train=4, n_test=3, imagenet="folders")
    iv = ds.load_dataset("webvision", tmp_path).extra_test["ilsvrc12_val"]
    assert iv.labels.tolist() == list(range(50)) and "/imagenet/val/1/" in iv.paths[1]


# ------------------------------------------------------------------------------------------------
# 7. top-5 where the dataset reports it


def test_predict_top_k_and_webvision_top5_columns(tmp_path):
    class Fixed(torch.nn.Module):
        def forward(self, x):
            return x, None

    logits = torch.tensor([[0.1, 0.9, 0.3, 0.2, 0.8, 0.0, 0.5], [0.7, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]])
    loader = [(logits, torch.zeros(2), torch.arange(2))]
    assert predict(Fixed(), loader, torch.device("cpu"), False).tolist() == [1, 0]
    assert predict(Fixed(), loader, torch.device("cpu"), False, k=5).tolist() == [[1, 4, 6, 2, 3], [0, 6, 5, 4, 3]]

    fabricate_dataset("webvision", tmp_path / "data", n_train=8, n_test=6)
    run = build(small("webvision", tmp_path / "data", optim={"batch_size": 4}), tmp_path / "run", tmp_path / "n")
    accs, test_pred = evaluate(run, run.cfg.optim.epochs)
    assert set(accs) == {"test_acc", "test_top5", "ilsvrc12_val_acc", "ilsvrc12_val_top5"}
    assert accs["test_top5"] >= accs["test_acc"] and accs["ilsvrc12_val_top5"] >= accs["ilsvrc12_val_acc"]
    assert test_pred.shape == (6,)
    # other datasets keep their columns: no top-5
    fabricate_dataset("cifar10", tmp_path / "data", n_train=10, n_test=4)
    run = build(small("cifar10", tmp_path / "data", noise={"mode": "sym", "rate": 0.4}), tmp_path / "r2", None)
    assert set(evaluate(run, 3)[0]) == {"test_acc"}


# ------------------------------------------------------------------------------------------------
# 3. ANIMAL-10N as the authors' script: flip only, ImageNet statistics, drop_last


def test_animal10n_flip_only_imagenet_normalisation_drop_last(tmp_path):
    fabricate_dataset("animal10n", tmp_path / "data", n_train=10, n_test=4)
    opts = {"crop_padding": 0, "normalization": "imagenet", "drop_last": True}
    run = build(small("animal10n", tmp_path / "data", data=opts, optim={"batch_size": 4}), tmp_path / "run", None)
    loader = run.loader
    assert len(loader) == 2 and loader.drop_last
    np.testing.assert_allclose(loader.mean.flatten().numpy() / 255, ds.IMAGENET_MEAN, rtol=1e-6)
    np.testing.assert_allclose(loader.std.flatten().numpy() / 255, ds.IMAGENET_STD, rtol=1e-6)
    images = run.data.train.images.float()
    seen = []
    for x, _, idx in loader:
        raw = x * loader.std + loader.mean  # undo the normalisation: each image is itself or its mirror, uncropped
        for r, i in zip(raw, idx, strict=True):
            assert torch.allclose(r, images[i], atol=1e-3) or torch.allclose(r, images[i].flip(2), atol=1e-3)
        seen += idx.tolist()
    assert len(seen) == 8 and len(set(seen)) == 8  # two images sat this epoch out
    result = train_one_epoch(run, 1)
    assert (result.pred >= 0).sum() == 8 and np.isnan(result.tau).sum() == 2
    from nalkit.train import training_metrics

    metrics = training_metrics(run.data, run.method, result.pred, result.tau, result.loss)
    assert np.isfinite(metrics["tau_mean"]) and np.isfinite(metrics["train_acc_noisy"])
    # the defaults keep nalkit's behaviour: the training set's statistics, every sample, crop + flip
    plain = build(small("animal10n", tmp_path / "data", optim={"batch_size": 4}), tmp_path / "r2", None)
    assert len(plain.loader) == 3 and not plain.loader.drop_last and plain.loader.padding == 4
    np.testing.assert_allclose(plain.loader.mean.flatten().numpy() / 255, run.data.bundle.mean, rtol=1e-6)
    with pytest.raises(ConfigError, match="data.normalization='cifar' is not one of dataset, imagenet"):
        small("animal10n", tmp_path / "data", data={"normalization": "cifar"})
    with pytest.raises(ConfigError, match="drop_last=true with optim.batch_size=16 and 10 training images"):
        build(small("animal10n", tmp_path / "data", data=opts, optim={"batch_size": 16}), tmp_path / "r3", None)


def test_drop_last_run_resumes_exactly(tmp_path):
    fabricate_dataset("animal10n", tmp_path / "data", n_train=10, n_test=4)
    cfg = small("animal10n", tmp_path / "data", data={"crop_padding": 0, "normalization": "imagenet",
                                                      "drop_last": True}, optim={"batch_size": 4})
    full = train(cfg, results_dir=tmp_path / "a")
    train(cfg, results_dir=tmp_path / "b", stop_after_epoch=1)
    resumed = train(cfg, results_dir=tmp_path / "b")
    a, b = (read_metrics(d).drop(columns=TIMING) for d in (full, resumed))
    pd.testing.assert_frame_equal(a, b)
    assert a.tau_mean.notna().all()
