"""Instance-dependent label noise (mode "idn"): Xia et al.'s part-dependent generator (NeurIPS 2020).

What a user relies on: the flip rate a paper's "IDN-20 %" / "IDN-40 %" means, labels that go where the image
points (not where the class alone points, and not uniformly as with sym), draws that a seed reproduces, and a
noise file that is reused only for the same images.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from nalkit.config import Config, ConfigError
from nalkit.metrics import auroc
from nalkit.noise import (
    IDN_STD,
    MODES,
    NoiseFileError,
    features_digest,
    idn_expected_rate,
    inject_noise,
    labels_digest,
    load_noise,
    load_or_create_noise,
    noise_key,
    save_noise,
)

C = 10
ROOT = Path(__file__).resolve().parents[1]


def structured(n: int, d: int, seed: int = 2026) -> tuple[np.ndarray, np.ndarray]:
    """(n, d) float32 features with class structure (a random mean per class + unit Gaussian spread) and their
    balanced, shuffled labels. The spread is as large as the class means, so images of one class differ as
    much as the classes do, and a flip's destination can depend on the image and not only on its class."""
    g = np.random.default_rng(seed)
    y = g.permutation(np.repeat(np.arange(C), n // C))
    mu = g.standard_normal((C, d))
    return (mu[y] + g.standard_normal((n, d))).astype(np.float32), y


X20, Y20 = structured(20_000, 32)


def _fit_softmax_regression(x: np.ndarray, y: np.ndarray, k: int):
    """Multinomial logistic regression (L-BFGS, small L2), deterministic; returns x -> (n, k) probabilities.

    One torch thread: these problems are tiny (a few hundred x 32), and threads only wait on busy cores
    (40x slower when the cores run other work)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        xs = torch.as_tensor(x, dtype=torch.float64)
        lin = torch.nn.Linear(xs.shape[1], k).double()
        opt = torch.optim.LBFGS(lin.parameters(), max_iter=100, line_search_fn="strong_wolfe")
        target = torch.as_tensor(y, dtype=torch.int64)

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(lin(xs), target) + 1e-3 * lin.weight.square().sum()
            loss.backward()
            return loss

        opt.step(closure)
        w, b = lin.weight.detach().numpy().T.copy(), lin.bias.detach().numpy().copy()
    finally:
        torch.set_num_threads(threads)

    def predict(z: np.ndarray) -> np.ndarray:
        logits = np.asarray(z, dtype=np.float64) @ w + b
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        return p / p.sum(axis=1, keepdims=True)

    return predict


# ------------------------------------------------------------------------------------------------
# the rate


@pytest.mark.parametrize("rate", [0.2, 0.4])
def test_actual_rate_is_the_truncated_normals_mean(rate):
    """Every label flips with its own probability q_i ~ N(rate, 0.1^2) truncated to [0, 1], so the flips are
    i.i.d. Bernoulli(m), m = E[q] = idn_expected_rate(rate): on N labels the actual rate is m within
    4 sd = 4 sqrt(m (1 - m) / N) (0.005 at rate 0.2, 0.006 at 0.4 for N = 100,000). The truncation at 0
    shifts m to 0.2055 at rate 0.2, so the nominal 0.2 is met within 0.01 (0.0055 + 4 sd = 0.0106 at worst,
    a 3.5-sd event), and 0.4 within 0.01 easily (m = 0.4000)."""
    x, y = structured(100_000, 8, seed=1)
    nz = inject_noise(y, C, "idn", rate, seed=0, dataset="fashion_mnist", features=x)
    m = idn_expected_rate(rate)
    sd = math.sqrt(m * (1 - m) / len(y))
    assert abs(nz.actual_rate - m) < 4 * sd
    assert abs(nz.actual_rate - rate) < 0.01
    assert nz.nominal_rate == rate and nz.mode == "idn"
    assert nz.chosen.tolist() == list(range(len(y)))  # every sample draws from its own row
    # each class keeps 1 - m of its labels (10,000 per class: 5 sd = 0.025): the true class keeps its 1 - q_i
    # and none of the flip mass q_i lands back on it (the softmax runs over the other classes only)
    np.testing.assert_allclose(np.diag(nz.transition), 1 - m, atol=0.025)
    np.testing.assert_allclose(nz.transition.sum(axis=1), 1.0)


def test_expected_rate_matches_scipy_truncnorm():
    stats = pytest.importorskip("scipy.stats")
    for rate in (0.05, 0.2, 0.4, 0.5, 0.8, 0.97):
        a, b = (0 - rate) / IDN_STD, (1 - rate) / IDN_STD
        assert idn_expected_rate(rate) == pytest.approx(stats.truncnorm(a, b, loc=rate, scale=IDN_STD).mean(),
                                                        abs=1e-12)
    assert round(idn_expected_rate(0.2), 4) == 0.2055 and round(idn_expected_rate(0.4), 4) == 0.4


def test_a_flipped_label_is_never_the_true_class_and_two_classes_always_swap():
    x, y = structured(4_000, 8)
    nz = inject_noise(y, C, "idn", 0.4, seed=3, features=x)
    assert np.array_equal(nz.is_noisy, nz.labels != y)
    y2 = y % 2
    nz2 = inject_noise(y2, 2, "idn", 0.4, seed=3, features=x)
    assert set(np.unique(nz2.labels[nz2.is_noisy] + y2[nz2.is_noisy])) == {1}  # 0 -> 1 and 1 -> 0 only


# ------------------------------------------------------------------------------------------------
# what depends on the image, and what does not


@pytest.mark.parametrize("rate", [0.2, 0.4])
def test_the_image_decides_where_a_flipped_label_goes(rate):
    """Held out: per true class, a logistic regression fitted on the flipped samples of one half predicts the
    noisy class of the other half's flipped samples from the image. For idn it beats the best guess from
    the class alone (its most frequent noisy class) by more than 0.15 (measured: 0.71 against 0.45 at
    rate 0.2, 0.76 against 0.41 at 0.4). For sym the noisy class is uniform over the other nine whatever
    the image, and both stay within 0.05 of chance, 1/9 (2,000 to 4,000 flipped test samples: sd at most
    0.007; measured 0.10 to 0.12)."""
    half = np.arange(len(Y20)) < len(Y20) // 2

    def accuracies(nz):
        hit, base, n = 0.0, 0.0, 0
        for c in range(C):
            tr, te = half & nz.is_noisy & (Y20 == c), ~half & nz.is_noisy & (Y20 == c)
            predict = _fit_softmax_regression(X20[tr], nz.labels[tr], C)
            hit += float((predict(X20[te]).argmax(1) == nz.labels[te]).sum())
            base += float((np.bincount(nz.labels[tr], minlength=C).argmax() == nz.labels[te]).sum())
            n += int(te.sum())
        return hit / n, base / n

    acc, class_only = accuracies(inject_noise(Y20, C, "idn", rate, seed=0, features=X20))
    assert acc > class_only + 0.15
    acc_sym, class_only_sym = accuracies(inject_noise(Y20, C, "sym", rate, seed=0, exclude_true_class=True))
    assert abs(acc_sym - 1 / 9) < 0.05 and abs(class_only_sym - 1 / 9) < 0.05


@pytest.mark.parametrize("mode", ["idn", "sym"])
def test_whether_a_label_flips_does_not_depend_on_the_image(mode):
    """In Xia et al.'s generator the flip probability of sample i is its q_i, drawn independently of the
    image (only the destination depends on it), so who is flipped is as unpredictable as under sym: a
    held-out logistic regression on (image, class) detects the flipped samples at AUROC 0.5 (10,000 test
    samples, ~3,000 flipped: sd 0.006; tolerance 5 sd). A generator whose flip *probability* followed the
    image would fail here."""
    kw = {"features": X20} if mode == "idn" else {}
    nz = inject_noise(Y20, C, mode, 0.3, seed=0, **kw)
    inputs = np.hstack([X20, np.eye(C, dtype=np.float32)[Y20]])
    half = np.arange(len(Y20)) < len(Y20) // 2
    predict = _fit_softmax_regression(inputs[half], nz.is_noisy[half].astype(np.int64), 2)
    assert abs(auroc(predict(inputs[~half])[:, 1], nz.is_noisy[~half]) - 0.5) < 0.03


# ------------------------------------------------------------------------------------------------
# reproducibility and keys


def test_same_seed_same_labels_other_seed_other_labels():
    a = inject_noise(Y20, C, "idn", 0.4, seed=0, dataset="cifar10", features=X20)
    b = inject_noise(Y20.copy(), C, "idn", 0.4, seed=0, dataset="cifar10", features=X20.copy())
    c = inject_noise(Y20, C, "idn", 0.4, seed=1, dataset="cifar10", features=X20)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.key == b.key and a.key != c.key
    assert (a.labels != c.labels).mean() > 0.3  # two independent 40 % draws differ on about half the labels


def test_global_rngs_untouched():
    np.random.seed(5)
    torch.manual_seed(5)
    before = (np.random.get_state()[1].copy(), torch.get_rng_state().clone())
    inject_noise(Y20[:500], C, "idn", 0.4, seed=0, features=X20[:500])
    np.testing.assert_array_equal(np.random.get_state()[1], before[0])
    assert torch.equal(torch.get_rng_state(), before[1])


def test_the_key_depends_on_the_images():
    a = inject_noise(Y20, C, "idn", 0.4, seed=0, dataset="cifar10", features=X20)
    other = inject_noise(Y20, C, "idn", 0.4, seed=0, dataset="cifar10", features=X20 * 2)  # other scaling
    assert a.key != other.key
    assert a.key == noise_key("cifar10", "idn", 0.4, 0, len(Y20), labels_digest=labels_digest(Y20),
                              features_digest=features_digest(X20))
    assert f"-F{features_digest(X20)}-g" in a.key and a.key.startswith("cifar10-idn-0.4000-seed0-n20000-L")
    assert features_digest(X20) != features_digest(X20.astype(np.float64))  # dtype is part of the digest
    assert features_digest(X20) == features_digest(torch.as_tensor(X20))
    # the sym key of the same setting is unchanged by the new mode (no -F, generator version 1)
    assert inject_noise(Y20, C, "sym", 0.4, 0, "cifar10").key.endswith("-g1")
    assert "-F" not in inject_noise(Y20, C, "sym", 0.4, 0, "cifar10").key


def test_a_file_is_reused_only_for_the_same_images(tmp_path):
    made = load_or_create_noise(tmp_path, Y20, C, "idn", 0.4, 0, "cifar10", features=X20)
    path = tmp_path / f"{made.key}.npz"
    assert path.is_file()
    back = load_noise(path, expect_dataset="cifar10", expect_num_labels=len(Y20))
    np.testing.assert_array_equal(back.labels, made.labels)
    assert back.key == made.key and back.metadata() == made.metadata()
    assert back.metadata()["features_digest"] == features_digest(X20)
    mtime = path.stat().st_mtime_ns
    again = load_or_create_noise(tmp_path, Y20, C, "idn", 0.4, 0, "cifar10", features=X20)
    np.testing.assert_array_equal(again.labels, made.labels)
    assert path.stat().st_mtime_ns == mtime  # read, not remade
    shifted = load_or_create_noise(tmp_path, Y20, C, "idn", 0.4, 0, "cifar10", features=X20 + 1)
    assert shifted.key != made.key and len(list(tmp_path.glob("*.npz"))) == 2
    # a file renamed onto another image set's key is caught by the digest it records
    path.replace(tmp_path / f"{shifted.key}.npz")
    with pytest.raises(NoiseFileError, match="other images"):
        load_or_create_noise(tmp_path, Y20, C, "idn", 0.4, 0, "cifar10", features=X20 + 1)


def test_other_modes_files_do_not_record_a_features_digest(tmp_path):
    nz = inject_noise(Y20, C, "sym", 0.4, 0, "cifar10")
    assert "features_digest" not in nz.metadata()
    back = load_noise(save_noise(nz, tmp_path))
    assert back.features_digest is None and back.key == nz.key


# ------------------------------------------------------------------------------------------------
# errors and configuration


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({}, r"mode 'idn' needs the images: pass features=\.\.\., an \(N, d\) float array .* N = 20000"),
        ({"features": X20[:100]}, r"features has shape \(100, 32\); expected \(N, d\) = \(20000, d >= 1\)"),
        ({"features": X20.reshape(-1)}, r"features has shape \(640000,\)"),
        ({"features": np.where(np.arange(32) == 3, np.nan, X20)}, "NaN"),
        ({"features": X20.astype(np.complex64)}, "complex64"),
        ({"features": X20, "rate": 0.0}, r"strictly between 0 and 1.*got 0\.0"),
        ({"features": X20, "rate": 1.0}, r"strictly between 0 and 1.*got 1\.0"),
        ({"features": X20, "rate": 0.12345}, "0.12345"),
        ({"features": X20, "num_classes": 1, "labels": np.zeros(20_000, int)}, "num_classes >= 2"),
        ({"features": X20, "exclude_true_class": True}, "'sym' only"),
    ],
)
def test_idn_errors_name_what_is_wrong(kwargs, match):
    args = {"labels": Y20, "num_classes": C, "mode": "idn", "rate": 0.4, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=match):
        inject_noise(**args)


def test_features_are_refused_by_other_modes_and_required_by_the_key(tmp_path):
    with pytest.raises(ValueError, match="only mode 'idn' reads them"):
        inject_noise(Y20, C, "sym", 0.4, 0, features=X20)
    with pytest.raises(ValueError, match="only mode 'idn' reads them"):
        load_or_create_noise(tmp_path, Y20, C, "sym", 0.4, 0, features=X20)
    with pytest.raises(ValueError, match="needs the images"):
        load_or_create_noise(tmp_path, Y20, C, "idn", 0.4, 0)
    with pytest.raises(ValueError, match="features_digest"):
        noise_key("cifar10", "idn", 0.4, 0, 100)
    with pytest.raises(ValueError, match="for mode 'idn' only"):
        noise_key("cifar10", "sym", 0.4, 0, 100, features_digest="abc123")
    assert list(tmp_path.iterdir()) == []
    assert "idn" in MODES and MODES.get("idn") is None


@pytest.mark.parametrize("rate,ok", [(0.2, True), (0.4, True), (0.0, False), (1.0, False)])
def test_config_accepts_idn_with_a_rate_strictly_inside_0_1(rate, ok):
    cfg = Config.load(ROOT / "configs" / "fmnist" / "cpu.yaml", ["noise.mode=idn", f"noise.rate={rate}"])
    if ok:
        cfg.validate()
    else:
        with pytest.raises(ConfigError, match=r"noise\.rate=.* is outside \(0, 1\), which noise\.mode=idn needs"):
            cfg.validate()


# ------------------------------------------------------------------------------------------------
# at full size


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_full_fashion_mnist_size(fashion_mnist):
    """60,000 x 784 images scaled to [0, 1]: the rate holds on real images and generation stays about a
    second (the limit, 30 s, only catches a per-sample Python loop, ~100x slower)."""
    from nalkit.datasets import load_dataset

    root = next(d for d in ("data", "/usr/share/datasets") if (Path(d) / "fashion-mnist").is_dir())
    train = load_dataset("fashion_mnist", root).train
    x = np.asarray(train.images).reshape(len(train.labels), -1).astype(np.float32) / 255.0
    y = np.asarray(train.labels, dtype=np.int64)
    start = time.perf_counter()
    nz = inject_noise(y, C, "idn", 0.4, seed=0, dataset="fashion_mnist", features=x)
    elapsed = time.perf_counter() - start
    m = idn_expected_rate(0.4)
    assert abs(nz.actual_rate - m) < 4 * math.sqrt(m * (1 - m) / len(y))
    assert elapsed < 30


# ------------------------------------------------------------------------------------------------
# the data pipeline


def test_the_data_pipeline_projects_the_raw_pixels():
    """nalkit.data feeds idn the split's images flattened in (C, H, W) order as raw 0..255 values, as Xia et
    al.'s code does (uint8 cast to float): a view, not a copy, and the same labels as the float32 values."""
    from nalkit import datasets as ds
    from nalkit.data import corrupt_labels, idn_features

    g = np.random.default_rng(0)
    images = torch.as_tensor(g.integers(0, 256, size=(500, 3, 4, 4), dtype=np.uint8))
    y = g.integers(0, C, 500)
    split = ds.ArraySplit(images=images, labels=y, clean_labels=None)
    feats = idn_features(split, "cifar10")
    assert feats.shape == (500, 48) and feats.dtype == np.uint8 and np.shares_memory(feats, images.numpy())
    np.testing.assert_array_equal(feats[7], images[7].numpy().ravel())
    cfg = Config.load(ROOT / "configs" / "fmnist" / "cpu.yaml", ["noise.mode=idn", "noise.rate=0.4"]).validate()
    made = corrupt_labels(cfg, split, C, None)
    as_float = inject_noise(y, C, "idn", 0.4, cfg.noise.seed, cfg.data.name, features=feats.astype(np.float32))
    np.testing.assert_array_equal(made.labels, as_float.labels)
    assert made.features_digest == features_digest(feats)
    files = ds.FileSplit(paths=[f"/nonexistent/{i}.jpg" for i in range(500)], labels=y, clean_labels=None)
    with pytest.raises(ConfigError, match="noise.mode=idn projects the images, but data.name='clothing1m' reads"):
        idn_features(files, "clothing1m")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_run_with_idn_noise_reports_its_rate(fashion_mnist, tmp_path):
    import json

    from nalkit.train import train

    run_dir = train(ROOT / "configs" / "fmnist" / "cpu.yaml",
                    ["noise.mode=idn", "noise.rate=0.4", "optim.epochs=1", "method.nal.es=1", "data.train_subset=300",
                     "run.eval_every=1", "run.snapshot_epochs=[1]"], results_dir=tmp_path, progress=False)
    noise = json.loads((Path(run_dir) / "status.json").read_text())["noise"]
    assert noise["noise_mode"] == "idn" and noise["nominal_rate"] == 0.4
    assert abs(noise["actual_rate"] - idn_expected_rate(0.4)) < 4 * math.sqrt(0.24 / 300)  # 4 sd = 0.11
    [file] = (tmp_path / "noise").glob("*.npz")
    assert file.stem == noise["noise_key"] and "-F" in file.stem


@pytest.mark.timeout(120)
@pytest.mark.usefixtures("fashion_mnist")
def test_the_cli_makes_idn_noise_from_the_training_images(tmp_path, capsys):
    """`nalkit noise make --mode idn` projects the training images, as training does (nalkit.data.idn_features)."""
    from nalkit.cli import main

    argv = ["noise", "make", "--dataset", "fashion_mnist", "--mode", "idn", "--rate", "0.4", "--root", "data",
            "--train-subset", "300", "--out", str(tmp_path)]
    assert main(argv) == 0
    files = list(tmp_path.glob("fashion_mnist-idn-0.4000-seed0-n300-*-F*.npz"))
    assert len(files) == 1, list(tmp_path.iterdir())
