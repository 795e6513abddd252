"""The run record: one directory per run, everything a chapter needs, checksummed.

Layout of ``<results>/<run name>/`` as :func:`nalkit.train.train` writes it through :class:`RunRecord`::

    config.yaml        the resolved configuration (its hash is in status.json and ends the run's name)
    environment.json   nalkit/python/torch/numpy versions, git commit, host, platform, CPU model and vector
                       ISA, threads, device (written at every (re)start)
    status.json        state ("running" or "complete"), epochs done, seconds, noise rates, start and end time,
                       final and best test accuracy
    metrics.csv        one row per epoch (columns: see nalkit.train)
    arrays.npz         written once, at the end: train_index, noisy_labels, clean_labels (-1 = unknown),
                       test_labels, final_{pred,loss,tau,test_pred,q_argmax} and, per snapshot epoch E,
                       {pred,loss,tau,q_argmax}_eE
    manifest.json      sha256 of every file above; updated before each file is replaced (see _write)
    ckpt-*.pt(.sha256) full-state checkpoints (nalkit.checkpoint; removed once the run is complete)

Readers (:mod:`nalkit.results`) verify the manifest, so a truncated metrics file is never read.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from ._io import atomic_write_bytes, atomic_write_text, now_iso, sha256_bytes, sha256_file


class RecordError(ValueError):
    """A run record file is missing, truncated or altered; the message names the file."""


RECORD_FILES = ("config.yaml", "environment.json", "status.json", "metrics.csv", "arrays.npz")


class RunRecord:
    """Writer for one run directory."""

    def __init__(self, run_dir: str | Path) -> None:
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.manifest_path = self.dir / "manifest.json"

    # Every write goes through here. The manifest is updated *before* the file: a process killed in
    # between leaves the old file under a new checksum (detected, and rewritten by the resumed run),
    # and a status.json that says "complete" is always already listed in the manifest -- written
    # file-first, a kill in between left a complete run whose record never verified again.
    def _write(self, name: str, data: bytes) -> None:
        manifest = self.manifest()
        manifest[name] = sha256_bytes(data)
        atomic_write_text(self.manifest_path, json.dumps(manifest, indent=1, sort_keys=True))
        atomic_write_bytes(self.dir / name, data)

    def manifest(self) -> dict[str, str]:
        if not self.manifest_path.is_file():
            return {}
        try:
            return json.loads(self.manifest_path.read_text())
        except json.JSONDecodeError:
            raise RecordError(f"{self.manifest_path} is not valid JSON (corrupted)") from None

    def write_config(self, yaml_text: str) -> None:
        self._write("config.yaml", yaml_text.encode())

    def write_environment(self, device: Any) -> None:
        self._write("environment.json", json.dumps(environment(device), indent=1).encode())

    def write_status(self, **status: Any) -> None:
        status.setdefault("updated", now_iso())
        self._write("status.json", json.dumps(status, indent=1, default=_jsonable).encode())

    def status(self) -> dict[str, Any]:
        return read_status(self.dir)

    def write_metrics(self, rows: list[dict[str, Any]]) -> None:
        buf = io.StringIO()
        if rows:
            cols = list(rows[0].keys())
            for r in rows[1:]:
                cols += [k for k in r if k not in cols]
            w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
        self._write("metrics.csv", buf.getvalue().encode())

    def write_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        self._write("arrays.npz", buf.getvalue())

    def verify(self) -> None:
        """Raise :class:`RecordError` if any file disagrees with the manifest."""
        verify_record(self.dir)


def read_status(run_dir: str | Path) -> dict[str, Any]:
    """The run's status.json, or {} when the run has not started; corrupt JSON is an error."""
    p = Path(run_dir) / "status.json"
    if not p.is_file():
        return {}
    data = p.read_bytes()
    try:
        status = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RecordError(f"{p} is not valid JSON (truncated or corrupted); delete the run directory to rerun") from None
    if not isinstance(status, dict):
        raise RecordError(f"{p} holds {type(status).__name__}, not a status mapping (corrupted); "
                          f"delete the run directory to rerun")
    if status.get("state") == "complete":
        # a complete status is listed in the manifest before it is written (RunRecord._write), so a
        # mismatch is damage: never trust, skip or report such a run as complete
        try:
            listed = json.loads((p.parent / "manifest.json").read_text()).get("status.json")
        except (OSError, ValueError, AttributeError):
            listed = None
        if listed is not None and sha256_bytes(data) != listed:
            raise RecordError(f"{p} does not match its checksum in {p.parent / 'manifest.json'}: truncated or "
                              f"altered; delete the run directory to rerun")
    return status


def verify_record(run_dir: str | Path, names: tuple[str, ...] | None = None) -> dict[str, str]:
    """Check files of a run record against its ``manifest.json`` and return the manifest (name -> sha256).

    Args:
        run_dir: the run directory.
        names: the files to check (default: every file the manifest lists).

    Raises:
        RecordError: no or unreadable manifest, a file missing, unlisted, or not matching its checksum.
    """
    run_dir = Path(run_dir)
    mpath = run_dir / "manifest.json"
    if not mpath.is_file():
        raise RecordError(f"{run_dir} has no manifest.json: not a nalkit run record (or written before it finished)")
    try:
        manifest = json.loads(mpath.read_text())
    except json.JSONDecodeError:
        raise RecordError(f"{mpath} is not valid JSON (corrupted)") from None
    for name in names or tuple(manifest):
        path = run_dir / name
        if name not in manifest:
            raise RecordError(f"{path} is not listed in {mpath}")
        if not path.is_file():
            raise RecordError(f"{path} is missing (listed in {mpath})")
        if sha256_file(path) != manifest[name]:
            raise RecordError(f"{path} does not match its checksum in {mpath}: truncated or altered")
    return manifest


def _jsonable(x: Any) -> Any:
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, Path):
        return str(x)
    return str(x)


def git_commit() -> str | None:
    """The git commit of the nalkit source tree, or ``None`` outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def cpu_model() -> str:
    """The processor's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: Any) -> dict[str, Any]:
    """Describe where a run ran: hardware, library versions, commit (airbench-style); ``device`` a torch.device."""
    import torch
    import torchvision

    from . import __version__

    env: dict[str, Any] = {
        "nalkit": __version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "device_name": platform.processor() or platform.machine(),
        # float results are bit-identical only on the same kernels: the CPU model and the vector ISA torch picked
        "cpu_model": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    if device.type == "cuda":
        env["device_name"] = torch.cuda.get_device_name(device)
        env["cuda"] = torch.version.cuda
        env["cudnn"] = torch.backends.cudnn.version()
    return env
