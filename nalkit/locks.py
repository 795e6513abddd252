"""Experiment locks: one runner per experiment, across processes and hosts.

``<run_dir>/.lock`` is created atomically (``O_EXCL``) and names its holder (host, pid, start time and,
under Slurm, the array task). A lock whose holder is gone -- a dead pid on this host, or an earlier
incarnation of this same requeued Slurm task -- is stale and taken over; a lock held on another host
counts as live. Any number of runners, of any executor, can therefore share one results directory.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from ._io import now_iso

LOCK_FILE = ".lock"


class LockHeld(RuntimeError):
    """Another live process holds the experiment's lock."""

    def __init__(self, lock_path: Path, holder: dict[str, Any]) -> None:
        self.holder = holder
        super().__init__(f"{lock_path} is held by {describe_holder(holder)}")



def job_id() -> str | None:
    """The Slurm job (array task) this process belongs to; a requeued job keeps it."""
    job = os.environ.get("SLURM_ARRAY_JOB_ID") or os.environ.get("SLURM_JOB_ID")
    if job and os.environ.get("SLURM_ARRAY_TASK_ID"):
        job = f"{job}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    return job


def describe_holder(holder: dict[str, Any]) -> str:
    """``"pid 123 on host since <time>[, slurm job N]"``: who holds a lock, for messages."""
    job = f", slurm job {holder['job']}" if holder.get("job") else ""
    return f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('started')}{job}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_lock(run_dir: str | Path) -> dict[str, Any] | None:
    """The lock holder of ``run_dir`` ({host, pid, started, job}) or None when unlocked."""
    path = Path(run_dir) / LOCK_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        # a holder that died between creating and writing the file
        return {"host": None, "pid": None, "started": None, "corrupt": True, "mtime": path.stat().st_mtime}


def lock_is_live(holder: dict[str, Any] | None) -> bool:
    """Whether the process that wrote ``holder`` may still run (unknown hosts count as live)."""
    if holder is None:
        return False
    if holder.get("corrupt"):
        return time.time() - holder.get("mtime", 0) < 60
    if holder.get("job") and holder.get("job") == job_id():
        return holder.get("pid") == os.getpid()  # an earlier incarnation of this requeued job
    if holder.get("host") != socket.gethostname():
        return True
    return _pid_alive(int(holder["pid"]))


def acquire_lock(run_dir: str | Path) -> Path:
    """Create ``<run_dir>/.lock`` atomically; take over a stale one; raise :class:`LockHeld` otherwise."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    me = {"host": socket.gethostname(), "pid": os.getpid(), "started": now_iso(),
          "job": job_id()}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = read_lock(run_dir)
            if holder is None:
                continue  # released meanwhile
            if lock_is_live(holder):
                raise LockHeld(path, holder) from None
            # stale: move it aside, then check we moved the lock we judged (another runner may have
            # taken it over in between; then put theirs back)
            aside = path.with_name(f"{LOCK_FILE}.stale-{os.getpid()}")
            try:
                os.replace(path, aside)
            except FileNotFoundError:
                continue
            moved = read_lock_file(aside)
            if moved is not None and moved.get("pid") == holder.get("pid") and moved.get("started") == holder.get("started"):
                aside.unlink(missing_ok=True)
                continue
            os.replace(aside, path)
            raise LockHeld(path, moved or holder) from None
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(me))
        return path
    raise LockHeld(path, read_lock(run_dir) or {})


def read_lock_file(path: Path) -> dict[str, Any] | None:
    """The holder recorded in the lock file ``path``, or ``None`` if it is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def release_lock(run_dir: str | Path) -> None:
    """Remove ``<run_dir>/.lock`` if this process holds it (never someone else's)."""
    holder = read_lock(run_dir)
    if holder and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
        (Path(run_dir) / LOCK_FILE).unlink(missing_ok=True)
