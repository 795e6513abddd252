"""Full-state checkpoints, written atomically with a checksum beside each file.

A checkpoint holds everything needed to continue a run exactly: model, optimiser, method state
(the target store), data-loader generator, the global RNG states, the epoch and the metrics so
far. ``ckpt-EEEEE.pt`` is written by rename, then ``ckpt-EEEEE.pt.sha256``; a file without a
matching checksum (killed mid-write, truncated, bit-flipped) is never loaded: the loader falls
back to the previous good checkpoint and says which file it skipped.
"""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from ._io import atomic_write_bytes, atomic_write_text, sha256_file

_NAME = re.compile(r"^ckpt-(\d{5,})\.pt$")


class CheckpointError(RuntimeError):
    """No usable checkpoint although checkpoint files exist; the message names them."""


def checkpoint_files(run_dir: str | Path) -> list[tuple[int, Path]]:
    """(epoch, path) of every checkpoint file in ``run_dir``, newest first."""
    out = []
    for p in Path(run_dir).glob("ckpt-*.pt"):
        m = _NAME.match(p.name)
        if m:
            out.append((int(m.group(1)), p))
    return sorted(out, reverse=True)


def save_checkpoint(run_dir: str | Path, epoch: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Write ``state`` as the checkpoint of ``epoch`` and keep the newest ``keep`` checkpoints."""
    buf = io.BytesIO()
    torch.save(state, buf)
    path = Path(run_dir) / f"ckpt-{epoch:05d}.pt"
    digest = atomic_write_bytes(path, buf.getvalue())
    atomic_write_text(path.with_name(path.name + ".sha256"), digest + "\n")
    for _, old in checkpoint_files(run_dir)[keep:]:
        old.unlink(missing_ok=True)
        old.with_name(old.name + ".sha256").unlink(missing_ok=True)
    return path


def verify_checkpoint(path: Path) -> str | None:
    """Return why ``path`` is unusable, or None when its checksum matches."""
    side = path.with_name(path.name + ".sha256")
    if not side.is_file():
        return "no checksum file (the write was interrupted)"
    expected = side.read_text().strip()
    actual = sha256_file(path)
    if actual != expected:
        return f"checksum mismatch (file {actual[:12]}…, recorded {expected[:12]}…): truncated or corrupted"
    return None


def load_latest_checkpoint(run_dir: str | Path, map_location: str | torch.device = "cpu") -> tuple[dict, Path] | None:
    """Load the newest checkpoint whose checksum verifies; None if the run has none at all."""
    files = checkpoint_files(run_dir)
    problems = []
    corrupt = []
    for _, path in files:
        why = verify_checkpoint(path)
        # a checkpoint without its checksum file is an interrupted write, not damage: the run
        # simply had not reached it (a kill between ckpt-E.pt and ckpt-E.pt.sha256 must resume)
        if why is not None and not why.startswith("no checksum file"):
            corrupt.append(path)
        if why is None:
            try:
                state = torch.load(io.BytesIO(path.read_bytes()), map_location=map_location, weights_only=False)
            except Exception as err:  # a verified file that does not unpickle is still unusable
                why = f"cannot be read: {err}"
                corrupt.append(path)
            else:
                if problems:
                    warnings.warn(
                        "skipped unusable checkpoint(s): " + "; ".join(problems) + f"; resuming from {path}",
                        stacklevel=2,
                    )
                return state, path
        problems.append(f"{path} ({why})")
    if problems and not corrupt:
        warnings.warn("skipped interrupted checkpoint write(s): " + "; ".join(problems)
                      + "; no complete checkpoint, starting the run from epoch 1", stacklevel=2)
        return None
    if problems:
        raise CheckpointError(
            "every checkpoint of this run is unusable: " + "; ".join(problems)
            + ". Delete them to restart the run from scratch."
        )
    return None
