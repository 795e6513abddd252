"""nalkit.loader: epoch order, batching, seeding and resumption, normalisation, augmentation, sharding."""

from __future__ import annotations

import pytest
import torch

from nalkit.loader import DeviceLoader, random_crop_flip


def images(n: int = 10, c: int = 3, h: int = 8, w: int = 8, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, h, w), dtype=torch.uint8, generator=g)


def loader(n: int = 10, batch_size: int = 4, **kw) -> DeviceLoader:
    x = images(n)
    y = torch.arange(n) % 3
    return DeviceLoader(x, y, batch_size, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), **kw)


def epoch(dl: DeviceLoader) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    return list(dl)


def same_epochs(a, b) -> bool:
    return len(a) == len(b) and all(
        torch.equal(xa, xb) and torch.equal(ya, yb) and torch.equal(ia, ib)
        for (xa, ya, ia), (xb, yb, ib) in zip(a, b, strict=True))


# ----------------------------------------------------------------------------------------------- order


def test_shuffled_epoch_visits_every_index_once() -> None:
    dl = loader(n=23, batch_size=5, shuffle=True, seed=1)
    orders = []
    for _ in range(3):
        idx = torch.cat([i for _, _, i in dl])
        assert sorted(idx.tolist()) == list(range(23))
        orders.append(idx.tolist())
    assert orders[0] != orders[1] != orders[2]  # reshuffled every epoch
    assert orders[0] != list(range(23))


def test_unshuffled_order_and_labels_follow_index() -> None:
    dl = loader(n=10, batch_size=4)
    batches = epoch(dl)
    assert torch.cat([i for _, _, i in batches]).tolist() == list(range(10))
    for _, y, i in batches:
        assert torch.equal(y, i % 3)  # each label travels with its sample


def test_batch_count_and_sizes_keep_the_last_partial_batch() -> None:
    dl = loader(n=10, batch_size=4, shuffle=True)
    assert len(dl) == 3 and dl.num_samples == 10
    assert [len(i) for _, _, i in dl] == [4, 4, 2]
    assert [x.shape for x, _, _ in loader(n=8, batch_size=4)] == [torch.Size([4, 3, 8, 8])] * 2
    assert len(loader(n=8, batch_size=4)) == 2
    assert len(loader(n=3, batch_size=10)) == 1


def test_custom_index_is_reported() -> None:
    x = images(4)
    dl = DeviceLoader(x, torch.zeros(4, dtype=torch.long), 3, (0.5,) * 3, (0.5,) * 3,
                      index=torch.tensor([40, 41, 42, 43]))
    assert torch.cat([i for _, _, i in dl]).tolist() == [40, 41, 42, 43]


# ------------------------------------------------------------------------------------- seeds and state


def test_same_seed_same_order_and_augmentation() -> None:
    a = [epoch(loader(n=20, batch_size=6, shuffle=True, augment=True, seed=7)) for _ in range(2)]
    assert same_epochs(a[0], a[1])
    other = epoch(loader(n=20, batch_size=6, shuffle=True, augment=True, seed=8))
    assert not same_epochs(a[0], other)


def test_loader_does_not_touch_the_global_rng() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    epoch(loader(shuffle=True, augment=True))
    assert torch.equal(torch.rand(3), expected)


def test_state_dict_resumes_the_exact_next_epoch() -> None:
    kw = {"n": 20, "batch_size": 6, "shuffle": True, "augment": True, "seed": 3}
    first = loader(**kw)
    epoch(first)
    state = first.state_dict()
    second_epoch = epoch(first)
    third_epoch = epoch(first)

    resumed = loader(**kw)  # a fresh process: same arguments, state restored from the checkpoint
    resumed.load_state_dict(state)
    assert same_epochs(epoch(resumed), second_epoch)
    assert same_epochs(epoch(resumed), third_epoch)
    assert not same_epochs(second_epoch, third_epoch)


# ------------------------------------------------------------------------------- normalisation, augment


def test_normalisation_uses_mean_and_std_in_unit_range() -> None:
    x = images(5, c=2)
    mean, std = (0.2, 0.6), (0.5, 0.1)
    (out, _, _), = DeviceLoader(x, torch.zeros(5, dtype=torch.long), 5, mean, std)
    expected = (x.float() / 255 - torch.tensor(mean).view(1, 2, 1, 1)) / torch.tensor(std).view(1, 2, 1, 1)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_random_crop_shifts_within_padding() -> None:
    p, h, w, n = 3, 15, 15, 400
    x = torch.zeros(n, 1, h, w, dtype=torch.uint8)
    x[:, 0, 7, 7] = 255  # one bright pixel in the middle, never cropped away by a shift of <= p
    out = random_crop_flip(x, padding=p, flip=False, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == torch.uint8
    assert torch.equal((out == 255).flatten(1).sum(1), torch.ones(n, dtype=torch.long))  # moved, not lost
    pos = out[:, 0].flatten(1).argmax(1)  # the one non-zero pixel
    dy, dx = pos // w - 7, pos % w - 7
    assert dy.abs().max() <= p and dx.abs().max() <= p
    assert set(dy.tolist()) == set(dx.tolist()) == set(range(-p, p + 1))  # every shift occurs
    assert out.sum() == 255 * n  # the padding is zeros: nothing else appears


def test_random_crop_pads_with_zeros_at_the_border() -> None:
    x = torch.full((200, 1, 6, 6), 9, dtype=torch.uint8)
    out = random_crop_flip(x, padding=2, flip=False, generator=torch.Generator().manual_seed(1))
    zeros = (out == 0).flatten(1).sum(1)
    assert (zeros > 0).any() and (zeros == 0).any()  # some crops are shifted, some are not
    assert set(out.unique().tolist()) == {0, 9}


def test_flip_is_a_horizontal_mirror() -> None:
    x = images(300, c=3, h=5, w=7)
    out = random_crop_flip(x, padding=0, flip=True, generator=torch.Generator().manual_seed(2))
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(3)).flatten(1).all(1)
    assert torch.all(same | mirrored)  # each image is unchanged or mirrored left-right, never up-down
    assert 100 < int(mirrored.sum()) < 200 and 100 < int(same.sum()) < 200  # about half flipped


def test_no_augmentation_without_augment() -> None:
    a = epoch(loader(n=6, batch_size=6, augment=False))
    b = epoch(loader(n=6, batch_size=6, augment=False, seed=99))
    assert same_epochs(a, b)  # deterministic: the seed only matters for shuffling and augmentation


# --------------------------------------------------------------------------------------------- sharding


@pytest.mark.parametrize("world", [2, 3])
def test_shards_split_each_global_batch_contiguously(world: int) -> None:
    kw = {"n": 23, "batch_size": 7, "shuffle": True, "augment": True, "seed": 5}
    full = epoch(loader(**kw))
    shards = [epoch(loader(shard=(rank, world), **kw)) for rank in range(world)]
    assert all(len(s) == len(full) for s in shards)
    for b, (x, y, i) in enumerate(full):
        parts = [s[b] for s in shards]
        sizes = [len(p[2]) for p in parts]
        assert sum(sizes) == len(i) and max(sizes) - min(sizes) <= 1
        # rank r holds the r-th contiguous piece, so concatenating in rank order gives the global batch
        assert torch.equal(torch.cat([p[0] for p in parts]), x)
        assert torch.equal(torch.cat([p[1] for p in parts]), y)
        assert torch.equal(torch.cat([p[2] for p in parts]), i)


# ------------------------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("make, match", [
    (lambda: DeviceLoader(images(4).float(), torch.zeros(4), 2, (0.5,) * 3, (0.5,) * 3), "uint8"),
    (lambda: DeviceLoader(images(4)[:, 0], torch.zeros(4), 2, (0.5,) * 3, (0.5,) * 3), r"\(N, C, H, W\)"),
    (lambda: DeviceLoader(images(4), torch.zeros(5), 2, (0.5,) * 3, (0.5,) * 3), "4 images but 5 labels"),
    (lambda: DeviceLoader(images(4), torch.zeros(4), 2, (0.5,), (0.5,) * 3), "for 3 channels"),
    (lambda: DeviceLoader(images(4), torch.zeros(4), 2, (0.5,) * 3, (0.5, 0.5)), "for 3 channels"),
])
def test_bad_inputs_raise_value_error(make, match) -> None:
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("kwargs, match", [({"batch_size": 0}, "batch_size=0"), ({"shard": (2, 2)}, "shard=")])
def test_bad_batch_size_or_shard_is_refused(kwargs, match):
    images = torch.zeros(4, 1, 2, 2, dtype=torch.uint8)
    args = {"batch_size": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        DeviceLoader(images, torch.zeros(4, dtype=torch.long), args.pop("batch_size"), (0.5,), (0.5,), **args)
