"""Progress bars that stay safe when a process forks.

tqdm's default write lock pairs a thread lock with a ``multiprocessing.RLock`` -- a semaphore in shared
memory, created by the first bar of a process and inherited by every child it forks -- and the first bar
also starts a monitor thread. A forked child killed while it holds that semaphore (SIGKILL in the
middle of a bar update, as a preempted or OOM-killed job is) leaves it held for good, and the next bar
in any sibling blocks forever. A fork taken while the monitor thread holds the lock hands the child a
lock nobody will release.

nalkit's bars never share screen positions across processes, so :class:`ProgressBar` uses a
process-local lock, replaced in every forked child, and no monitor thread. Nothing of it can be held
across a fork. Use :func:`progress_bar` wherever nalkit shows progress.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from tqdm import tqdm


class ProgressBar(tqdm):
    """tqdm without the cross-process semaphore and without the monitor thread."""

    monitor_interval = 0  # no TMonitor thread: a process that showed a bar stays single-threaded
    _lock = threading.RLock()  # process-local (tqdm.get_lock() would create the shared semaphore)


def _fresh_lock_in_child() -> None:
    # a fork copies the lock as it is; if another thread held it at that moment, the child's copy would
    # never be released
    ProgressBar.set_lock(threading.RLock())


os.register_at_fork(after_in_child=_fresh_lock_in_child)


def progress_bar(iterable: Any = None, **kwargs: Any) -> ProgressBar:
    """A :class:`ProgressBar` (tqdm's arguments)."""
    return ProgressBar(iterable, **kwargs)
