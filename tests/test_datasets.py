"""Dataset loaders, on tiny fabricated copies of each real on-disk format, plus the real Debian Fashion-MNIST."""

from __future__ import annotations

import gzip
import pickle
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nalkit import datasets as ds
from nalkit.datasets import (
    ArraySplit,
    ClassBalancedBatchSampler,
    DatasetNotFoundError,
    DatasetSizeWarning,
    FileSplit,
    ImageFileDataset,
    file_transforms,
    find_dataset,
    load_dataset,
    stratified_subset_indices,
)

# Fabricated sets are deliberately smaller than the official releases.
pytestmark = pytest.mark.filterwarnings("ignore::nalkit.datasets.DatasetSizeWarning")

DEBIAN_FMNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def no_system_dirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep the machine's /usr/share/datasets out of fabricated-data tests."""
    monkeypatch.setattr(ds, "SYSTEM_DATA_DIRS", (tmp_path / "no-system-data",))


# ---------------------------------------------------------------------------------------------- writers


def write_idx(path: Path, array: np.ndarray, magic: int, *, compress: bool = True,
              dims: tuple[int, ...] | None = None) -> None:
    dims = array.shape if dims is None else dims
    raw = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(path, "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)


def make_fmnist(directory: Path, n_train: int = 40, n_test: int = 20, *,
                compress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    out = []
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = np.arange(n) % 10
        sfx = ".gz" if compress else ""
        write_idx(directory / f"{prefix}-images-idx3-ubyte{sfx}", images, 2051, compress=compress)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte{sfx}", labels, 2049, compress=compress)
        out.append(images)
    return out[0], out[1]


def make_cifar10(root: Path, per_batch: int = 4) -> np.ndarray:
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    rng = np.random.default_rng(1)
    first = None
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        first = data if first is None else first
        batch = {b"batch_label": name.encode(), b"labels": list(rng.integers(0, 10, per_batch)),
                 b"data": data, b"filenames": [b"x.png"] * per_batch}
        (d / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {b"label_names": [n.encode() for n in ("airplane", "automobile", "bird", "cat", "deer", "dog",
                                                   "frog", "horse", "ship", "truck")], b"num_vis": 3072}
    (d / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return first


def make_cifar100(root: Path, n_train: int = 200, n_test: int = 100) -> None:
    d = root / "cifar-100-python"
    d.mkdir(parents=True)
    for name, n in (("train", n_train), ("test", n_test)):
        batch = {b"data": np.zeros((n, 3072), np.uint8), b"fine_labels": list(np.arange(n) % 100),
                 b"coarse_labels": list(np.arange(n) % 20)}
        (d / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {b"fine_label_names": [f"c{i}".encode() for i in range(100)],
            b"coarse_label_names": [f"s{i}".encode() for i in range(20)]}
    (d / "meta").write_bytes(pickle.dumps(meta, protocol=2))


def write_jpg(path: Path, size: tuple[int, int] = (64, 64), colour: tuple[int, int, int] = (200, 30, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, quality=95)


def make_animal10n(root: Path, n_train: int = 20, n_test: int = 10, *, base: Path | None = None) -> None:
    base = root / "animal-10n" if base is None else base
    for folder, n in (("training", n_train), ("testing", n_test)):
        for i in range(n):
            write_jpg(base / folder / f"{i % 10}_{i:05d}.jpg", colour=(i * 10 % 256, 100, 50))


CLOTHING_KEYS = {
    "train": [f"images/{i % 10}/{i:02d}/{i}.jpg" for i in range(28)],
    "val": [f"images/5/val/{i}.jpg" for i in range(6)],
    "test": [f"images/6/test/{i}.jpg" for i in range(7)],
}


def make_clothing1m(root: Path, *, annotations_subdir: bool = True) -> Path:
    base = root / "clothing1m"
    ann = base / "annotations" if annotations_subdir else base
    ann.mkdir(parents=True)
    noisy = {k: i % 14 for i, k in enumerate(CLOTHING_KEYS["train"])}
    # Two train images also have a clean label (as ~37k of the real 1M do); val/test are clean.
    clean = {CLOTHING_KEYS["train"][0]: 3, CLOTHING_KEYS["train"][5]: 7}
    clean |= {k: (i + 1) % 14 for i, k in enumerate(CLOTHING_KEYS["val"] + CLOTHING_KEYS["test"])}
    (ann / "noisy_label_kv.txt").write_text("".join(f"{k} {v}\n" for k, v in noisy.items()))
    (ann / "clean_label_kv.txt").write_text("".join(f"{k} {v}\n" for k, v in clean.items()))
    (ann / "noisy_train_key_list.txt").write_text("\n".join(CLOTHING_KEYS["train"]) + "\n")
    (ann / "clean_val_key_list.txt").write_text("\n".join(CLOTHING_KEYS["val"]) + "\n")
    (ann / "clean_test_key_list.txt").write_text("\n".join(CLOTHING_KEYS["test"]) + "\n")
    (ann / "category_names_eng.txt").write_text("\n".join(ds.CLOTHING1M_CLASSES) + "\n")
    for keys in CLOTHING_KEYS.values():
        for k in keys:
            write_jpg(base / k, size=(40, 30))
    return base


def make_webvision(root: Path, *, imagenet: bool = True) -> Path:
    base = root / "webvision"
    (base / "info").mkdir(parents=True)
    train_lines, val_lines = [], []
    for i, label in enumerate([0, 49, 50, 3, 999, 7]):  # 50 and 999 are outside mini-WebVision
        rel = f"google/q{label + 1:04d}/img{i}.jpg"
        train_lines.append(f"{rel} {label}")
        write_jpg(base / rel, size=(48, 40))
    for i, label in enumerate([1, 60, 2]):
        val_lines.append(f"ILSVRC2012_val_{i:08d}.jpg {label}")
        write_jpg(base / "val_images_256" / f"ILSVRC2012_val_{i:08d}.jpg", size=(48, 40))
    (base / "info" / "train_filelist_google.txt").write_text("\n".join(train_lines) + "\n")
    (base / "info" / "val_filelist.txt").write_text("\n".join(val_lines) + "\n")
    (base / "info" / "synsets.txt").write_text(
        "".join(f"n{i:08d} name{i}, alias\n" for i in range(1000)))
    if imagenet:
        for c in range(50):
            for j in range(2 if c == 0 else 1):
                write_jpg(base / "imagenet" / "val" / str(c) / f"ILSVRC2012_val_{c:03d}{j}.JPEG", size=(8, 8))
    return base


# ---------------------------------------------------------------------------------------------- tests


def test_fashion_mnist_idx_gz(tmp_path: Path) -> None:
    train_images, _ = make_fmnist(tmp_path / "fashion-mnist")
    b = load_dataset("fashion_mnist", tmp_path, download=False)
    assert b.name == "fashion_mnist" and b.num_classes == 10 and b.in_channels == 1 and b.image_size == 28
    assert isinstance(b.train, ArraySplit)
    assert b.train.images.shape == (40, 1, 28, 28) and b.train.images.dtype == torch.uint8
    assert b.test.images.shape == (20, 1, 28, 28)
    assert torch.equal(b.train.images[:, 0], torch.from_numpy(train_images))
    assert b.train.labels.dtype == np.int64 and list(b.train.labels[:12]) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    np.testing.assert_array_equal(b.train.labels, b.train.clean_labels)
    assert b.classes[0] == "T-shirt/top" and b.classes[9] == "Ankle boot"
    assert b.mean == (0.2860,) and b.std == (0.3530,) and not b.real_noise
    assert find_dataset("fashion_mnist", tmp_path) == tmp_path / "fashion-mnist"


def test_fashion_mnist_torchvision_layout_uncompressed(tmp_path: Path) -> None:
    make_fmnist(tmp_path / "FashionMNIST" / "raw", compress=False)
    b = load_dataset("fashion_mnist", tmp_path, download=False)
    assert b.train.images.shape == (40, 1, 28, 28)


def test_fashion_mnist_missing_file_is_named(tmp_path: Path) -> None:
    d = tmp_path / "fashion-mnist"
    make_fmnist(d)
    (d / "t10k-labels-idx1-ubyte.gz").unlink()
    assert find_dataset("fashion_mnist", tmp_path) is None
    with pytest.raises(DatasetNotFoundError, match="t10k-labels-idx1-ubyte.gz") as exc:
        load_dataset("fashion_mnist", tmp_path, download=False)
    msg = str(exc.value)
    assert "Fashion-MNIST" in msg and str(d) in msg and "zalandoresearch" in msg
    assert isinstance(exc.value, FileNotFoundError)


def test_fashion_mnist_download_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision

    calls = []

    def fake_download(root: str, train: bool, download: bool) -> None:
        calls.append(train)
        make_fmnist(Path(root) / "FashionMNIST" / "raw", n_train=30)  # torchvision's layout

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", fake_download)
    with pytest.raises(DatasetNotFoundError):
        load_dataset("fashion_mnist", tmp_path, download=False)
    assert calls == []
    assert len(load_dataset("fashion_mnist", tmp_path, download=True).train) == 30

    def offline(root: str, train: bool, download: bool) -> None:
        raise RuntimeError("Error downloading:\nName or service not known")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", offline)
    with pytest.raises(DatasetNotFoundError, match="torchvision download failed: Error downloading: Name or"):
        load_dataset("fashion_mnist", tmp_path / "elsewhere", download=True)


def test_fashion_mnist_inconsistent_counts(tmp_path: Path) -> None:
    d = tmp_path / "fashion-mnist"
    make_fmnist(d)
    write_idx(d / "train-labels-idx1-ubyte.gz", np.arange(39) % 10, 2049)  # 40 images, 39 labels
    with pytest.raises(DatasetNotFoundError, match="40 images .* but 39 labels"):
        load_dataset("fashion_mnist", tmp_path, download=False)


def test_fashion_mnist_bad_magic_and_truncation(tmp_path: Path) -> None:
    d = tmp_path / "fashion-mnist"
    make_fmnist(d)
    write_idx(d / "train-images-idx3-ubyte.gz", np.zeros((40, 28, 28)), 2049)
    with pytest.raises(DatasetNotFoundError, match="magic number 2049, expected 2051"):
        load_dataset("fashion_mnist", tmp_path, download=False)
    # Header claims 41 images, the body holds 40: a truncated download.
    write_idx(d / "train-images-idx3-ubyte.gz", np.zeros((40, 28, 28)), 2051, dims=(41, 28, 28))
    with pytest.raises(DatasetNotFoundError, match="truncated"):
        load_dataset("fashion_mnist", tmp_path, download=False)


def test_fashion_mnist_label_out_of_range(tmp_path: Path) -> None:
    d = tmp_path / "fashion-mnist"
    make_fmnist(d)
    write_idx(d / "t10k-labels-idx1-ubyte.gz", np.full(20, 10), 2049)
    with pytest.raises(DatasetNotFoundError, match=r"0\.\.9"):
        load_dataset("fashion_mnist", tmp_path, download=False)


def test_size_warning_on_non_official_counts(tmp_path: Path) -> None:
    make_fmnist(tmp_path / "fashion-mnist")
    with pytest.warns(DatasetSizeWarning, match="official release has 60000"):
        load_dataset("fashion_mnist", tmp_path, download=False)


def test_cifar10_pickles(tmp_path: Path) -> None:
    first = make_cifar10(tmp_path)
    b = load_dataset("cifar10", tmp_path)
    assert b.train.images.shape == (20, 3, 32, 32) and b.train.images.dtype == torch.uint8
    assert b.test.images.shape == (4, 3, 32, 32)
    # Channel-major rows: the first 1024 bytes are the red plane.
    assert torch.equal(b.train.images[0, 0].flatten(), torch.from_numpy(first[0, :1024]))
    assert torch.equal(b.train.images[0, 2].flatten(), torch.from_numpy(first[0, 2048:]))
    assert b.classes[1] == "automobile" and b.num_classes == 10 and len(b.mean) == 3
    assert b.train.labels.dtype == np.int64 and b.train.clean_labels is not None


def test_cifar100_pickles(tmp_path: Path) -> None:
    make_cifar100(tmp_path)
    b = load_dataset("cifar100", tmp_path)
    assert b.num_classes == 100 and len(b.classes) == 100
    assert b.train.images.shape == (200, 3, 32, 32)
    assert np.bincount(b.train.labels).tolist() == [2] * 100


def test_cifar_missing_and_corrupt(tmp_path: Path) -> None:
    make_cifar10(tmp_path)
    d = tmp_path / "cifar-10-batches-py"
    (d / "data_batch_3").unlink()
    with pytest.raises(DatasetNotFoundError, match="data_batch_3") as exc:
        load_dataset("cifar10", tmp_path)
    assert "cs.toronto.edu" in str(exc.value)
    batch = {b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2]}
    (d / "data_batch_3").write_bytes(pickle.dumps(batch))
    with pytest.raises(DatasetNotFoundError, match="4 images but 3 labels"):
        load_dataset("cifar10", tmp_path)


def test_animal10n_folders(tmp_path: Path) -> None:
    make_animal10n(tmp_path)
    b = load_dataset("animal10n", tmp_path)
    assert b.real_noise and b.train.clean_labels is None and b.image_size == 64
    assert b.train.images.shape == (20, 3, 64, 64) and b.train.images.dtype == torch.uint8
    assert b.test.images.shape == (10, 3, 64, 64)
    assert b.train.labels.tolist() == sorted(i % 10 for i in range(20))  # sorted by file name: label first
    assert b.classes[9] == "guinea pig"
    # JPEG is lossy, but a flat colour survives within a few levels.
    assert abs(int(b.train.images[3, 1].float().mean()) - 100) <= 3
    assert int(b.train.images[0, 0].float().mean()) <= 3  # 0_00000.jpg, red 0
    assert abs(int(b.train.images[1, 0].float().mean()) - 100) <= 3  # 0_00010.jpg, red 100
    # No published constants for ANIMAL-10N: mean/std are the training set's own channel statistics.
    x = b.train.images.double() / 255
    np.testing.assert_allclose(b.mean, x.mean(dim=(0, 2, 3)).numpy(), atol=1e-4)
    np.testing.assert_allclose(b.std, x.std(dim=(0, 2, 3), correction=0).numpy(), atol=1e-4)


def test_animal10n_nested_release_layout(tmp_path: Path) -> None:
    nested = tmp_path / "ANIMAL-10N" / "raw_image_ver" / "raw_image"
    make_animal10n(tmp_path, n_train=10, n_test=10, base=nested)
    assert find_dataset("animal10n", tmp_path) == nested
    assert len(load_dataset("animal10n", tmp_path).train) == 10


def test_animal10n_wrong_size_names_file(tmp_path: Path) -> None:
    make_animal10n(tmp_path)
    bad = tmp_path / "animal-10n" / "training" / "3_99999.jpg"
    write_jpg(bad, size=(32, 32))
    with pytest.raises(DatasetNotFoundError, match=r"3_99999\.jpg is 32x32, expected 64x64"):
        load_dataset("animal10n", tmp_path)


def test_animal10n_bad_name_and_missing(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="training/") as exc:
        load_dataset("animal10n", tmp_path)
    assert "animal-10n" in str(exc.value)
    make_animal10n(tmp_path)
    write_jpg(tmp_path / "animal-10n" / "testing" / "cat_00001.jpg")
    with pytest.raises(DatasetNotFoundError, match="cat_00001.jpg"):
        load_dataset("animal10n", tmp_path)


@pytest.mark.parametrize("annotations_subdir", [True, False])
def test_clothing1m(tmp_path: Path, annotations_subdir: bool) -> None:
    base = make_clothing1m(tmp_path, annotations_subdir=annotations_subdir)
    b = load_dataset("clothing1m", tmp_path)
    assert b.real_noise and b.num_classes == 14 and b.image_size == 224
    assert isinstance(b.train, FileSplit) and isinstance(b.val, FileSplit) and isinstance(b.test, FileSplit)
    assert b.train.paths == [str(base / k) for k in CLOTHING_KEYS["train"]]
    assert all(Path(p).is_absolute() for p in b.train.paths)
    assert b.train.labels.tolist() == [i % 14 for i in range(28)]
    expected_clean = np.full(28, -1)
    expected_clean[0], expected_clean[5] = 3, 7
    np.testing.assert_array_equal(b.train.clean_labels, expected_clean)
    assert b.val.labels.tolist() == [(i + 1) % 14 for i in range(6)]
    assert b.test.labels.tolist() == [(i + 7) % 14 for i in range(7)]
    np.testing.assert_array_equal(b.test.labels, b.test.clean_labels)
    assert b.classes[8] == "Down Coat"
    assert find_dataset("clothing1m", tmp_path) == base


def test_clothing1m_errors(tmp_path: Path) -> None:
    base = make_clothing1m(tmp_path)
    (base / "annotations" / "clean_val_key_list.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match="clean_val_key_list.txt"):
        load_dataset("clothing1m", tmp_path)
    (base / "annotations" / "clean_val_key_list.txt").write_text("images/9/nolabel.jpg\n")
    with pytest.raises(DatasetNotFoundError, match="no label in .*clean_label_kv.txt"):
        load_dataset("clothing1m", tmp_path)
    (base / "annotations" / "clean_val_key_list.txt").write_text("\n".join(CLOTHING_KEYS["val"]))
    (base / CLOTHING_KEYS["test"][0]).unlink()
    with pytest.raises(DatasetNotFoundError, match="missing"):
        load_dataset("clothing1m", tmp_path)


def test_webvision(tmp_path: Path) -> None:
    base = make_webvision(tmp_path)
    b = load_dataset("webvision", tmp_path)
    assert b.real_noise and b.num_classes == 50 and b.image_size == 227 and len(b.classes) == 50
    assert b.classes[0] == "name0"
    assert b.train.labels.tolist() == [0, 49, 3, 7]  # labels >= 50 dropped
    assert b.train.paths[1] == str(base / "google" / "q0050" / "img1.jpg")
    assert b.train.clean_labels is None
    assert b.test.labels.tolist() == [1, 2]
    assert b.test.paths[1] == str(base / "val_images_256" / "ILSVRC2012_val_00000002.jpg")
    iv = b.extra_test["ilsvrc12_val"]
    assert isinstance(iv, FileSplit) and len(iv) == 51
    assert iv.labels.tolist() == [0, 0] + list(range(1, 50))
    assert iv.paths[2].endswith("imagenet/val/1/ILSVRC2012_val_0010.JPEG")


def test_webvision_without_imagenet_and_missing(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="train_filelist_google.txt"):
        load_dataset("webvision", tmp_path)
    make_webvision(tmp_path, imagenet=False)
    with pytest.warns(UserWarning, match="ILSVRC12"):
        b = load_dataset("webvision", tmp_path)
    assert b.extra_test == {}


def test_image_file_dataset_and_transforms(tmp_path: Path) -> None:
    make_clothing1m(tmp_path)
    b = load_dataset("clothing1m", tmp_path)
    raw = ImageFileDataset(b.train)
    img, label, index = raw[4]
    assert img.shape == (3, 30, 40) and img.dtype == torch.uint8 and label == 4 and index == 4
    train_tf = ImageFileDataset(b.train, file_transforms(b, train=True))
    x, _, _ = train_tf[0]
    assert x.shape == (3, 224, 224) and x.dtype == torch.float32
    x, _, _ = ImageFileDataset(b.test, file_transforms(b, train=False))[0]
    assert x.shape == (3, 224, 224)
    make_webvision(tmp_path, imagenet=True)
    w = load_dataset("webvision", tmp_path)
    x, _, _ = ImageFileDataset(w.train, file_transforms(w, train=True))[0]
    assert x.shape == (3, 227, 227)
    loader = torch.utils.data.DataLoader(ImageFileDataset(w.test, file_transforms(w, train=False)), batch_size=2)
    xb, yb, ib = next(iter(loader))
    assert xb.shape == (2, 3, 227, 227) and yb.tolist() == [1, 2] and ib.tolist() == [0, 1]
    make_fmnist(tmp_path / "fashion-mnist")
    with pytest.raises(ValueError, match="file-backed"):
        file_transforms(load_dataset("fashion_mnist", tmp_path, download=False), train=True)


def test_class_balanced_batch_sampler() -> None:
    rng = np.random.default_rng(0)
    # Very unequal classes, as in Clothing1M's noisy labels; class 2 is smaller than one epoch's demand.
    labels = np.concatenate([np.zeros(500), np.ones(120), np.full(7, 2), np.full(60, 3)]).astype(np.int64)
    labels = labels[rng.permutation(len(labels))]
    s = ClassBalancedBatchSampler(labels, batch_size=10, num_batches=30, seed=5)
    batches = list(s)
    assert len(batches) == len(s) == 30
    for batch in batches:
        assert len(batch) == 10
        counts = np.bincount(labels[batch], minlength=4)
        assert counts.max() - counts.min() <= 1
    # Small classes are cycled through without replacement: every member used equally often (within 1).
    small = np.bincount([i for b in batches for i in b if labels[i] == 2], minlength=len(labels))
    small = small[labels == 2]
    assert small.sum() >= 70 and small.max() - small.min() <= 1
    # Deterministic per (seed, epoch); a new epoch changes the batches.
    assert list(ClassBalancedBatchSampler(labels, 10, 30, seed=5)) == batches
    s.set_epoch(1)
    epoch1 = list(s)
    assert epoch1 != batches
    s.set_epoch(0)
    assert list(s) == batches
    assert list(ClassBalancedBatchSampler(labels, 10, 30, seed=6)) != batches


def test_train_subset_stratified_and_deterministic(tmp_path: Path) -> None:
    d = tmp_path / "fashion-mnist"
    d.mkdir()
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(10), [50, 50, 50, 50, 50, 30, 30, 30, 30, 30])
    labels = labels[rng.permutation(len(labels))]
    images = rng.integers(0, 256, size=(400, 28, 28), dtype=np.uint8)
    write_idx(d / "train-images-idx3-ubyte.gz", images, 2051)
    write_idx(d / "train-labels-idx1-ubyte.gz", labels, 2049)
    write_idx(d / "t10k-images-idx3-ubyte.gz", images[:10], 2051)
    write_idx(d / "t10k-labels-idx1-ubyte.gz", labels[:10], 2049)
    a = load_dataset("fashion_mnist", tmp_path, download=False, train_subset=80, subset_seed=1)
    assert len(a.train) == 80 and a.train.images.shape == (80, 1, 28, 28)
    assert np.bincount(a.train.labels).tolist() == [10] * 5 + [6] * 5
    idx = stratified_subset_indices(labels, 80, seed=1)
    assert np.all(np.diff(idx) > 0)
    assert torch.equal(a.train.images, torch.from_numpy(images[idx]).unsqueeze(1))
    np.testing.assert_array_equal(a.train.clean_labels, labels[idx])
    again = load_dataset("fashion_mnist", tmp_path, download=False, train_subset=80, subset_seed=1)
    assert torch.equal(a.train.images, again.train.images)
    assert not np.array_equal(stratified_subset_indices(labels, 80, seed=2), idx)
    counts = np.bincount(labels[stratified_subset_indices(labels, 77, seed=0)], minlength=10)
    assert counts.sum() == 77 and np.all(np.abs(counts - 77 * np.bincount(labels) / 400) < 1)
    assert len(a.test) == 10  # only the training split is subset
    with pytest.raises(ValueError, match="between 1 and the training set size 400"):
        load_dataset("fashion_mnist", tmp_path, download=False, train_subset=401)


def test_train_subset_file_split(tmp_path: Path) -> None:
    make_clothing1m(tmp_path)
    b = load_dataset("clothing1m", tmp_path, train_subset=14, subset_seed=0)
    assert len(b.train.paths) == 14 and sorted(b.train.labels.tolist()) == list(range(14))
    assert b.train.clean_labels is not None and len(b.train.clean_labels) == 14


def test_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown dataset 'mnist'; choose one of fashion_mnist, cifar10"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="unknown dataset"):
        find_dataset("imagenet")
    assert set(ds.DATASETS) == {"fashion_mnist", "cifar10", "cifar100", "animal10n", "clothing1m", "webvision"}


def test_system_dir_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system = tmp_path / "share"
    make_fmnist(system / "fashion-mnist", n_train=30)
    monkeypatch.setattr(ds, "SYSTEM_DATA_DIRS", (system,))
    root = tmp_path / "data"
    assert find_dataset("fashion_mnist", root) == system / "fashion-mnist"
    assert len(load_dataset("fashion_mnist", root, download=False).train) == 30
    make_fmnist(root / "fashion-mnist", n_train=20)  # root wins over the system copy
    assert len(load_dataset("fashion_mnist", root, download=False).train) == 20


@pytest.mark.skipif(not DEBIAN_FMNIST.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_real_debian_fashion_mnist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ds, "SYSTEM_DATA_DIRS", (DEBIAN_FMNIST.parent,))
    with warnings.catch_warnings(record=True) as record:  # the real release must not warn about its size
        warnings.simplefilter("always")
        b = load_dataset("fashion_mnist", tmp_path / "empty", download=False)
    assert not [w for w in record if issubclass(w.category, DatasetSizeWarning)]
    assert b.train.images.shape == (60000, 1, 28, 28) and b.test.images.shape == (10000, 1, 28, 28)
    assert b.train.images.dtype == torch.uint8
    assert np.bincount(b.train.labels).tolist() == [6000] * 10
    assert np.bincount(b.test.labels).tolist() == [1000] * 10
    # The published normalisation constants are this data's statistics.
    x = b.train.images.float() / 255
    assert abs(x.mean().item() - b.mean[0]) < 1e-3 and abs(x.std().item() - b.std[0]) < 1e-3


def test_registry_entries_and_read_idx_hook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # One registration per dataset, in the order `nalkit info` lists them, each under its own name.
    assert list(ds.DATASETS) == ["fashion_mnist", "cifar10", "cifar100", "animal10n", "clothing1m", "webvision"]
    assert all(ds.DATASETS.get(name).name == name for name in ds.DATASETS)
    assert ds.DATASETS.get("cifar100").num_classes == 100 and ds.DATASETS.get("webvision").real_noise
    # tests/faultlib.py shares parsed idx files between forked runs by patching the reader the loader
    # calls: nalkit.datasets.fashion_mnist.read_idx.
    import nalkit.datasets.fashion_mnist as fmnist

    make_fmnist(tmp_path / "fashion-mnist")
    read = []
    real = fmnist.read_idx
    monkeypatch.setattr(fmnist, "read_idx", lambda path, magic: read.append(path.name) or real(path, magic))
    load_dataset("fashion_mnist", tmp_path, download=False)
    assert sorted(read) == sorted(s + ".gz" for s in ds.FASHION_MNIST_FILES)
