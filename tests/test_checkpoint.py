"""nalkit.checkpoint: round trip, pruning, and what happens to interrupted, corrupted and foreign files."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from nalkit.checkpoint import (
    CheckpointError,
    checkpoint_files,
    load_latest_checkpoint,
    save_checkpoint,
    verify_checkpoint,
)


def state(epoch: int) -> dict:
    g = torch.Generator().manual_seed(epoch)
    return {"epoch": epoch, "model": {"w": torch.randn(3, 4, generator=g)}, "rng": g.get_state(),
            "metrics": [0.5, 0.25 * epoch]}


def side(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def test_round_trip(tmp_path: Path) -> None:
    s = state(3)
    path = save_checkpoint(tmp_path, 3, s)
    assert path == tmp_path / "ckpt-00003.pt" and side(path).is_file()
    assert verify_checkpoint(path) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean load warns about nothing
        loaded, where = load_latest_checkpoint(tmp_path)
    assert where == path
    assert loaded["epoch"] == 3 and loaded["metrics"] == s["metrics"]
    assert torch.equal(loaded["model"]["w"], s["model"]["w"]) and torch.equal(loaded["rng"], s["rng"])


def test_no_checkpoint_is_none(tmp_path: Path) -> None:
    assert load_latest_checkpoint(tmp_path) is None
    assert load_latest_checkpoint(tmp_path / "absent") is None
    assert checkpoint_files(tmp_path) == []


def test_keep_prunes_older_checkpoints_and_their_checksums(tmp_path: Path) -> None:
    for e in range(1, 6):
        save_checkpoint(tmp_path, e, state(e), keep=2)
    assert [e for e, _ in checkpoint_files(tmp_path)] == [5, 4]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ckpt-00004.pt", "ckpt-00004.pt.sha256", "ckpt-00005.pt", "ckpt-00005.pt.sha256"]
    save_checkpoint(tmp_path, 6, state(6), keep=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-00006.pt", "ckpt-00006.pt.sha256"]
    assert load_latest_checkpoint(tmp_path)[0]["epoch"] == 6


def test_checkpoint_files_newest_first_by_epoch_number(tmp_path: Path) -> None:
    for e in (2, 10, 99999, 100000, 7):
        save_checkpoint(tmp_path, e, state(e), keep=10)
    # not checkpoints: a wrong number of digits, another suffix, a temporary file of an unfinished write
    for name in ("ckpt-12.pt", "ckpt-00003.pth", "notes.txt", ".ckpt-00008.pt.abc.tmp"):
        (tmp_path / name).write_bytes(b"x")
    files = checkpoint_files(tmp_path)
    assert [e for e, _ in files] == [100000, 99999, 10, 7, 2]  # numeric, not lexicographic
    assert all(p == tmp_path / f"ckpt-{e:05d}.pt" for e, p in files)
    assert load_latest_checkpoint(tmp_path)[0]["epoch"] == 100000


def test_missing_checksum_is_skipped_with_a_warning(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, 1, state(1))
    newest = save_checkpoint(tmp_path, 2, state(2))
    side(newest).unlink()  # killed between writing ckpt-00002.pt and its .sha256
    assert verify_checkpoint(newest).startswith("no checksum file")
    with pytest.warns(UserWarning, match=r"ckpt-00002\.pt \(no checksum file.*resuming from .*ckpt-00001\.pt"):
        loaded, where = load_latest_checkpoint(tmp_path)
    assert loaded["epoch"] == 1 and where.name == "ckpt-00001.pt"


def test_only_an_interrupted_first_write_starts_from_scratch(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path, 1, state(1))
    side(path).unlink()
    with pytest.warns(UserWarning, match="interrupted checkpoint write.*starting the run from epoch 1"):
        assert load_latest_checkpoint(tmp_path) is None


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupted_newest_falls_back_to_the_previous_one(tmp_path: Path, damage: str) -> None:
    save_checkpoint(tmp_path, 1, state(1))
    newest = save_checkpoint(tmp_path, 2, state(2))
    data = bytearray(newest.read_bytes())
    if damage == "truncate":
        newest.write_bytes(bytes(data[: len(data) // 2]))
    else:
        data[len(data) // 2] ^= 0x01  # one bit
        newest.write_bytes(bytes(data))
    assert "checksum mismatch" in verify_checkpoint(newest)
    with pytest.warns(UserWarning, match=r"skipped unusable.*ckpt-00002\.pt \(checksum mismatch"):
        loaded, where = load_latest_checkpoint(tmp_path)
    assert loaded["epoch"] == 1 and where.name == "ckpt-00001.pt"
    assert newest.exists()  # reported, not deleted: the user decides


def test_every_checkpoint_damaged_raises(tmp_path: Path) -> None:
    for e in (1, 2):
        path = save_checkpoint(tmp_path, e, state(e))
        path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match=r"every checkpoint.*ckpt-00002\.pt.*ckpt-00001\.pt.*Delete them"):
        load_latest_checkpoint(tmp_path)


def test_damaged_and_interrupted_only_raises(tmp_path: Path) -> None:
    # an older checkpoint corrupted and the newest interrupted: nothing usable, and damage is not silent
    old = save_checkpoint(tmp_path, 1, state(1))
    old.write_bytes(b"garbage")
    side(save_checkpoint(tmp_path, 2, state(2))).unlink()
    with pytest.raises(CheckpointError, match="no checksum file.*checksum mismatch"):
        load_latest_checkpoint(tmp_path)


def test_verified_file_that_does_not_unpickle_is_unusable(tmp_path: Path) -> None:
    from nalkit._io import atomic_write_bytes, atomic_write_text

    save_checkpoint(tmp_path, 1, state(1))
    bad = tmp_path / "ckpt-00002.pt"
    atomic_write_text(side(bad), atomic_write_bytes(bad, b"not a torch file") + "\n")  # checksum matches
    assert verify_checkpoint(bad) is None
    with pytest.warns(UserWarning, match=r"ckpt-00002\.pt \(cannot be read"):
        loaded, _ = load_latest_checkpoint(tmp_path)
    assert loaded["epoch"] == 1
    (tmp_path / "ckpt-00001.pt").write_bytes(b"")  # now nothing loads
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_latest_checkpoint(tmp_path)
