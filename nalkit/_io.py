"""Atomic, checksummed file writes: a reader never sees a half-written file."""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path


def require_torchvision(what: str):
    """``import torchvision`` for ``what`` (file datasets, ResNet-50, the Fashion-MNIST download), or an ImportError
    that says how to get it: torchvision is the optional extra ``nalkit[vision]``, so that nalkit installs beside
    any torch without pinning a torchvision to it."""
    try:
        import torchvision
    except ImportError as err:
        raise ImportError(f"{what} needs torchvision, which nalkit does not install by itself: pip install "
                          f"'nalkit[vision]' (or the torchvision release that matches your torch)") from err
    return torchvision


def now_iso() -> str:
    """The local time as ISO 8601 with its UTC offset, e.g. ``2026-11-25T13:49:11+0000`` (every record's stamp)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write_bytes(path: str | Path, data: bytes) -> str:
    """Write ``data`` to ``path`` via a temporary file, fsync and rename; return its sha256.

    A crash leaves either the old file or the new one, never a mixture (POSIX rename).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates 0600; give the file the permissions an ordinary open() would (0666 & ~umask)
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return sha256_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> str:
    return atomic_write_bytes(path, text.encode())
