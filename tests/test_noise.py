"""Label noise: the DivideMix conventions (spec section 6), determinism, and noise files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nalkit.noise import (
    ASYM_MAPS,
    MODES,
    NOISE_GENERATOR_VERSION,
    NoiseFileError,
    NoisyLabels,
    asym_map,
    inject_noise,
    labels_digest,
    load_noise,
    load_or_create_noise,
    noise_key,
    save_noise,
)


def balanced(n_per_class: int, num_classes: int, seed: int = 123) -> np.ndarray:
    y = np.repeat(np.arange(num_classes), n_per_class)
    return np.random.default_rng(seed).permutation(y)


Y10 = balanced(5000, 10)  # 50,000 labels, like CIFAR-10
Y100 = balanced(500, 100)


# ------------------------------------------------------------------------------------------------
# the chosen indices and the rates


@pytest.mark.parametrize("mode,dataset", [("sym", None), ("asym", "cifar10"), ("pair", None)])
@pytest.mark.parametrize("rate", [0.0, 0.2, 0.45, 0.8, 1.0])
def test_exactly_int_rN_indices_are_chosen(mode, dataset, rate):
    n = 1003  # rate * N not an integer: int() floors
    y = balanced(1003, 10)[:n]
    nz = inject_noise(y, 10, mode, rate, seed=3, dataset=dataset)
    assert nz.chosen.shape == (int(rate * n),)
    assert len(np.unique(nz.chosen)) == nz.chosen.size
    # nothing outside the chosen indices changes
    outside = np.setdiff1d(np.arange(n), nz.chosen)
    np.testing.assert_array_equal(nz.labels[outside], y[outside])


def test_sym_actual_rate_includes_true_class():
    nz = inject_noise(Y10, 10, "sym", 0.4, seed=0)
    assert nz.nominal_rate == 0.4
    assert nz.actual_rate == pytest.approx(0.4 * (1 - 1 / 10), abs=0.01)
    nz100 = inject_noise(Y100, 100, "sym", 0.8, seed=0)
    assert nz100.actual_rate == pytest.approx(0.8 * (1 - 1 / 100), abs=0.01)


def test_sym_matches_reference_generator_exactly():
    """Pin the version-1 generator: one permutation, then uniform draws over all C classes."""
    seed, rate, c = 7, 0.6, 10
    rng = np.random.default_rng(seed)
    k = int(rate * len(Y10))
    idx = rng.permutation(len(Y10))[:k]
    new = rng.integers(0, c, size=k)
    expected = Y10.copy()
    expected[idx] = new

    nz = inject_noise(Y10, c, "sym", rate, seed)
    np.testing.assert_array_equal(nz.labels, expected)
    np.testing.assert_array_equal(nz.chosen, idx)
    assert int(nz.is_noisy.sum()) == int((new != Y10[idx]).sum())
    assert NOISE_GENERATOR_VERSION == 1  # changing the generator means bumping this


def test_sym_exclude_true_class_changes_every_chosen_label():
    nz = inject_noise(Y10, 10, "sym", 0.4, seed=1, exclude_true_class=True)
    assert nz.actual_rate == int(0.4 * len(Y10)) / len(Y10)
    # uniform over the 9 other classes
    off = nz.transition[~np.eye(10, dtype=bool)].reshape(10, 9)
    np.testing.assert_allclose(off, 0.4 / 9, atol=0.01)
    assert "-xt" in nz.key
    assert nz.key != inject_noise(Y10, 10, "sym", 0.4, seed=1).key


def test_transition_matrix_rows_sum_to_one():
    nz = inject_noise(Y10, 10, "sym", 0.5, seed=2)
    t = nz.transition
    assert t.shape == (10, 10) and t.dtype == np.float64
    np.testing.assert_allclose(t.sum(1), 1.0)
    np.testing.assert_allclose(np.diag(t), 1 - 0.5 + 0.5 / 10, atol=0.03)  # 4 sigma at 5,000 per class
    # a class absent from the clean labels has an all-zero row
    y = np.array([0, 1, 1, 3, 3, 3])
    t = inject_noise(y, 5, "sym", 0.5, seed=0).transition
    np.testing.assert_allclose(t.sum(1), [1, 1, 0, 1, 0])


# ------------------------------------------------------------------------------------------------
# asymmetric maps


def test_cifar10_map():
    m = asym_map("cifar10", 10)
    np.testing.assert_array_equal(m, [0, 1, 0, 5, 7, 3, 6, 7, 8, 1])
    assert dict(ASYM_MAPS["cifar10"]) == {9: 1, 2: 0, 4: 7, 3: 5, 5: 3}


def test_cifar100_block_map_spot_checks():
    m = asym_map("cifar100", 100)
    assert (m[4], m[99], m[7], m[0], m[95]) == (0, 95, 8, 1, 96)
    # a permutation inside each block of five indices
    for b in range(20):
        assert sorted(m[5 * b : 5 * b + 5]) == list(range(5 * b, 5 * b + 5))
    assert (m != np.arange(100)).all()


def test_fashion_mnist_map():
    m = asym_map("fashion_mnist", 10)
    expected = np.arange(10)
    expected[[0, 6, 2, 4, 5]] = [6, 0, 4, 2, 7]
    np.testing.assert_array_equal(m, expected)


@pytest.mark.parametrize("dataset", sorted(ASYM_MAPS))
def test_asym_changes_only_mapped_classes(dataset):
    c = 100 if dataset == "cifar100" else 10
    y = Y100 if c == 100 else Y10
    m = asym_map(dataset, c)
    nz = inject_noise(y, c, "asym", 0.4, seed=0, dataset=dataset)
    changed = nz.is_noisy
    np.testing.assert_array_equal(nz.labels[changed], m[y[changed]])
    unmapped = np.flatnonzero(m == np.arange(c))
    assert not changed[np.isin(y, unmapped)].any()
    # every chosen label of a mapped class flips
    chosen_mapped = nz.chosen[m[y[nz.chosen]] != y[nz.chosen]]
    assert changed[chosen_mapped].all()


def test_cifar10_asym40_flips_about_a_fifth():
    nz = inject_noise(Y10, 10, "asym", 0.4, seed=0, dataset="cifar10")
    assert nz.nominal_rate == 0.4
    assert nz.actual_rate == pytest.approx(0.4 * 5 / 10, abs=0.01)


def test_asym_needs_a_known_dataset():
    for ds in (None, "animal10n"):
        with pytest.raises(ValueError, match="cifar10.*cifar100.*fashion_mnist"):
            inject_noise(Y10, 10, "asym", 0.4, seed=0, dataset=ds)
    with pytest.raises(ValueError, match="animal10n"):
        asym_map("animal10n")
    with pytest.raises(ValueError, match="100 classes"):
        asym_map("cifar100", 10)


# ------------------------------------------------------------------------------------------------
# pair, transition, none


def test_pair_flip():
    nz = inject_noise(Y10, 10, "pair", 0.3, seed=0)
    np.testing.assert_array_equal(nz.labels[nz.chosen], (Y10[nz.chosen] + 1) % 10)
    assert nz.actual_rate == int(0.3 * len(Y10)) / len(Y10)


def test_transition_sampling_matches_matrix():
    rng = np.random.default_rng(0)
    t = rng.dirichlet(np.ones(10) * 0.5, size=10)
    t[3] = 0.0
    t[3, 3] = 1.0  # an identity row keeps its class
    t[5, 7] = 0.0
    t[5] /= t[5].sum()  # a zero entry is never drawn
    nz = inject_noise(Y10, 10, "transition", None, seed=4, transition=t)
    np.testing.assert_allclose(nz.transition, t, atol=0.025)
    assert not nz.is_noisy[Y10 == 3].any()
    assert not (nz.labels[Y10 == 5] == 7).any()
    assert nz.nominal_rate == pytest.approx(np.mean(1 - np.diag(t)[Y10]))
    assert nz.key.startswith("custom-transition-T")
    # the rate a config carries is ignored: the matrix sets the noise
    np.testing.assert_array_equal(
        inject_noise(Y10, 10, "transition", 0.4, seed=4, transition=t).labels, nz.labels
    )


@pytest.mark.parametrize(
    "t,match",
    [
        (np.eye(3), r"shape \(3, 3\).*\(10, 10\)"),
        (np.eye(10) * 2 - np.eye(10, k=1), r"negative entry T\[0, 1\]"),
        (np.eye(10) * 0.9, r"row 0 sums to 0.9"),
        (None, "transition="),
    ],
)
def test_transition_validation(t, match):
    with pytest.raises(ValueError, match=match):
        inject_noise(Y10, 10, "transition", None, seed=0, transition=t)


def test_none_keeps_labels():
    nz = inject_noise(Y10, 10, "none", 0.4, seed=0, dataset="cifar10")
    np.testing.assert_array_equal(nz.labels, Y10)
    assert nz.nominal_rate == 0.0 and nz.actual_rate == 0.0
    assert nz.key == inject_noise(Y10, 10, "none", None, seed=0, dataset="cifar10").key


def test_clean_labels_are_a_copy():
    y = Y10.astype(np.int32)
    nz = inject_noise(y, 10, "sym", 0.5, seed=0)
    assert nz.clean_labels.dtype == np.int64 and nz.labels.dtype == np.int64
    np.testing.assert_array_equal(nz.clean_labels, y)
    nz.clean_labels[0] = 99
    assert y[0] != 99
    # tensors and lists work as input
    np.testing.assert_array_equal(inject_noise(torch.as_tensor(y), 10, "sym", 0.5, 0).labels, nz.labels)
    inject_noise(list(y[:10]), 10, "pair", 0.5, 0)


# ------------------------------------------------------------------------------------------------
# determinism and isolation


@pytest.mark.parametrize("mode,kw", [("sym", {}), ("asym", {"dataset": "cifar10"}), ("pair", {})])
def test_same_seed_same_labels_other_seed_other_labels(mode, kw):
    a = inject_noise(Y10, 10, mode, 0.4, seed=0, **kw)
    b = inject_noise(Y10, 10, mode, 0.4, seed=0, **kw)
    c = inject_noise(Y10, 10, mode, 0.4, seed=1, **kw)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert (a.labels != c.labels).any()
    assert a.key != c.key and "seed1" in c.key


def test_global_rngs_untouched():
    np.random.seed(1234)
    torch.manual_seed(99)
    np_state = np.random.get_state()
    torch_state = torch.get_rng_state()
    t = np.full((10, 10), 0.05) + np.eye(10) * 0.5
    for mode, kw in [
        ("sym", {}),
        ("sym", {"exclude_true_class": True}),
        ("asym", {"dataset": "cifar10"}),
        ("pair", {}),
        ("transition", {"transition": t}),
    ]:
        inject_noise(Y10, 10, mode, 0.4, seed=5, **kw)
    after = np.random.get_state()
    assert after[0] == np_state[0] and np.array_equal(after[1], np_state[1]) and after[2:] == np_state[2:]
    assert torch.initial_seed() == 99
    assert torch.equal(torch.get_rng_state(), torch_state)


# ------------------------------------------------------------------------------------------------
# keys


def test_keys():
    k = noise_key("fashion_mnist", "sym", 0.4, 0, 60000, False)
    assert k == "fashion_mnist-sym-0.4000-seed0-n60000-g1"
    c10 = {"dataset": "cifar10", "mode": "sym", "num_labels": 50000}
    assert noise_key(**c10, rate=0.45, seed=0) != noise_key(**c10, rate=0.5, seed=0)
    assert "seed3" in noise_key(**c10, rate=0.4, seed=3)
    assert noise_key(**c10, rate=0.4, seed=0, exclude_true_class=True) != noise_key(**c10, rate=0.4, seed=0)
    assert noise_key(None, "pair", 0.2, 0, 10, False).startswith("custom-pair-0.2000")
    with pytest.raises(ValueError, match="0.12345"):
        noise_key("cifar10", "sym", 0.12345, 0, 50000, False)
    with pytest.raises(ValueError, match="transition_digest"):
        noise_key("cifar10", "transition", None, 0, 50000, False)


def test_key_depends_on_the_clean_labels():
    a = inject_noise(Y10, 10, "sym", 0.4, seed=0, dataset="cifar10")
    b = inject_noise(np.roll(Y10, 1), 10, "sym", 0.4, seed=0, dataset="cifar10")
    assert a.key != b.key
    assert a.key == noise_key("cifar10", "sym", 0.4, 0, len(Y10), False, labels_digest=labels_digest(Y10))


def test_transition_key_depends_on_matrix():
    t1 = np.full((10, 10), 0.1)
    t2 = np.full((10, 10), 0.05) + np.eye(10) * 0.5
    k1 = inject_noise(Y10, 10, "transition", None, 0, transition=t1).key
    k2 = inject_noise(Y10, 10, "transition", None, 0, transition=t2).key
    assert k1 != k2


# ------------------------------------------------------------------------------------------------
# files


def test_save_load_roundtrip(tmp_path):
    t = np.full((10, 10), 0.05) + np.eye(10) * 0.5
    for nz in [
        inject_noise(Y10, 10, "sym", 0.45, seed=2, dataset="cifar10"),
        inject_noise(Y10, 10, "transition", None, seed=2, dataset="cifar10", transition=t),
    ]:
        path = save_noise(nz, tmp_path / "noise")
        assert path.name == f"{nz.key}.npz"
        assert not [p for p in path.parent.iterdir() if p.suffix == ".tmp"]
        back = load_noise(path, expect_dataset="cifar10", expect_num_labels=len(Y10))
        assert isinstance(back, NoisyLabels)
        np.testing.assert_array_equal(back.labels, nz.labels)
        np.testing.assert_array_equal(back.clean_labels, nz.clean_labels)
        np.testing.assert_array_equal(back.chosen, nz.chosen)
        assert back.key == nz.key and back.metadata() == nz.metadata()
        np.testing.assert_array_equal(back.transition, nz.transition)


def _saved(tmp_path):
    nz = inject_noise(Y10[:2000], 10, "sym", 0.4, seed=0, dataset="cifar10")
    return save_noise(nz, tmp_path)


def test_flipped_bytes_raise_naming_the_file(tmp_path):
    path = _saved(tmp_path)
    data = bytearray(path.read_bytes())
    for pos in (len(data) // 3, len(data) // 2):
        bad = data.copy()
        bad[pos] ^= 0xFF
        path.write_bytes(bytes(bad))
        with pytest.raises(NoiseFileError, match=path.name):
            load_noise(path)


def test_truncated_file_raises_naming_the_file(tmp_path):
    path = _saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(NoiseFileError, match=path.name):
        load_noise(path)
    path.write_bytes(b"")
    with pytest.raises(NoiseFileError, match=path.name):
        load_noise(path)
    with pytest.raises(NoiseFileError, match="does not exist"):
        load_noise(tmp_path / "missing.npz")


def test_rewritten_arrays_fail_the_checksum(tmp_path):
    path = _saved(tmp_path)
    with np.load(path) as z:
        members = {k: z[k] for k in z.files}
    members["labels"] = members["labels"].copy()
    members["labels"][0] = (members["labels"][0] + 1) % 10
    np.savez_compressed(path, **members)
    with pytest.raises(NoiseFileError, match="checksum"):
        load_noise(path)


def test_load_for_wrong_dataset_or_size(tmp_path):
    path = _saved(tmp_path)
    with pytest.raises(NoiseFileError, match="'cifar10'.*'cifar100'"):
        load_noise(path, expect_dataset="cifar100")
    with pytest.raises(NoiseFileError, match="2000.*50000"):
        load_noise(path, expect_num_labels=50000)
    assert issubclass(NoiseFileError, ValueError)


def test_load_or_create_reuses_the_file(tmp_path):
    y = Y10[:5000]
    a = load_or_create_noise(tmp_path, y, 10, "sym", 0.4, 0, "cifar10")
    files = list(tmp_path.glob("*.npz"))
    assert [p.name for p in files] == [f"{a.key}.npz"]
    mtime = files[0].stat().st_mtime_ns
    b = load_or_create_noise(tmp_path, y, 10, "sym", 0.4, 0, "cifar10")
    np.testing.assert_array_equal(a.labels, b.labels)
    assert files[0].stat().st_mtime_ns == mtime
    # the stored labels are used even if the generator would now draw differently
    with np.load(files[0]) as z:
        assert np.array_equal(z["labels"], a.labels)
    # another subset of the same size gets its own file, never the first one's labels
    c = load_or_create_noise(tmp_path, Y10[5000:10000], 10, "sym", 0.4, 0, "cifar10")
    np.testing.assert_array_equal(c.clean_labels, Y10[5000:10000])
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_load_or_create_detects_a_corrupt_file(tmp_path):
    y = Y10[:3000]
    a = load_or_create_noise(tmp_path, y, 10, "pair", 0.2, 0, "cifar10")
    path = tmp_path / f"{a.key}.npz"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(NoiseFileError, match=path.name):
        load_or_create_noise(tmp_path, y, 10, "pair", 0.2, 0, "cifar10")


# ------------------------------------------------------------------------------------------------
# invalid inputs


@pytest.mark.parametrize(
    "args,kwargs,match",
    [
        ((Y10, 10, "symmetric", 0.4, 0), {}, r"unknown noise mode 'symmetric'.*none, sym, asym, pair, transition"),
        ((Y10, 10, "pairs", 0.4, 0), {}, r"did you mean 'pair'"),
        ((Y10, 10, "sym", 1.5, 0), {}, r"1\.5"),
        ((Y10, 10, "sym", -0.1, 0), {}, r"-0\.1"),
        ((Y10, 10, "sym", float("nan"), 0), {}, "nan"),
        ((Y10, 10, "sym", 0.123456, 0), {}, "0.123456"),
        ((np.array([0, 1, 10]), 10, "sym", 0.4, 0), {}, r"label 10 .*\[0, 10\)"),
        ((np.array([0, -1, 3]), 10, "sym", 0.4, 0), {}, r"label -1"),
        ((np.array([0.0, 1.5]), 10, "sym", 0.4, 0), {}, "float64"),
        ((np.zeros((2, 2), int), 10, "sym", 0.4, 0), {}, r"\(2, 2\)"),
        ((np.array([], int), 10, "sym", 0.4, 0), {}, "empty"),
        ((Y10, 10, "sym", 0.4, -1), {}, "-1"),
        ((Y10, 10, "sym", 0.4, 1.5), {}, "1.5"),
        ((Y10, 0, "sym", 0.4, 0), {}, "num_classes"),
        ((Y10, 10, "pair", 0.4, 0), {"exclude_true_class": True}, "'pair'"),
        ((Y10, 10, "sym", 0.4, 0), {"transition": np.eye(10)}, "'sym'"),
        ((Y10, 10, "sym", 0.4, 0, "my dataset"), {}, "'my dataset'"),
    ],
)
def test_invalid_inputs(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        inject_noise(*args, **kwargs)


def test_modes_registry():
    assert MODES.names() == ("none", "sym", "asym", "pair", "transition", "idn") == tuple(MODES)
    assert "sym" in MODES and "symmetric" not in MODES
    # "none", "transition" and "idn" have their own handling; the others are corruptions of the chosen indices
    assert MODES.get("none") is None and MODES.get("transition") is None and MODES.get("idn") is None
    src = np.array([0, 3, 9])
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(MODES.get("pair")(src, 10, rng, None, False), [1, 4, 0])
    np.testing.assert_array_equal(MODES.get("asym")(src, 10, rng, "cifar10", False), [0, 5, 1])
