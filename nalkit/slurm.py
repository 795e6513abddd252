"""What Slurm says about a job: asked by the runner while it waits, and by the job when it is stopped.

The runner follows a job array with ``squeue`` (one call per poll covers every task, and with
``--states=all`` finished tasks too, for ``MinJobAge``, 5 minutes by default). ``sacct`` is asked only
about tasks that ``squeue`` no longer knows, and only when accounting is on: many small clusters run
without ``slurmdbd``, where ``sacct`` fails on every call (:func:`sacct_unavailable` finds out once).

Inside a job, Slurm signals every process of the job before it stops it: SIGTERM on ``scancel``,
``scontrol requeue``, preemption and the time limit (then SIGKILL after ``KillWait`` seconds), and the
``--signal`` (USR2 under submitit) shortly before the time limit. :class:`StopSignals` records them;
:func:`why_stopped` asks the controller whether the job is being requeued (its restart count went up)
or ended, so that the job can tell a scheduler's stop from a crash of the experiment.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from .experiment import (
    ExperimentResult,
    ExperimentSpec,
    State,
    Stopped,
    read_stop,
    write_failure,
    write_stop,
)
from .locks import job_id
from .records import RecordError, read_status

#: Task states after which the task does not run again (squeue's %T names).
ENDED = ("COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE",
         "OUT_OF_MEMORY", "REVOKED", "SPECIAL_EXIT")
#: States of the reports :func:`follow` yields before a task's result.
PROGRESS = (State.REQUEUED, State.RUNNING)
POLL_S = 2.0  # result files are looked for this often; squeue is asked every 2 s at first, then less often
QUEUE_POLL_MAX_S = 30.0
RESULT_GRACE_S = 10.0  # how long a result file may lag behind its task's end (shared filesystems)


@dataclass(frozen=True)
class Task:
    """One job (array task) as Slurm reports it."""

    job: str  # "12_3" for an array task, "12" otherwise
    state: str  # PENDING, RUNNING, COMPLETING, CANCELLED, ... (first word; sacct adds "by <uid>")
    restarts: int = 0  # times Slurm requeued it
    reason: str = ""  # why it is pending (BeginTime after a requeue, Resources, ...)

    @property
    def ended(self) -> bool:
        return self.state in ENDED


def _run(cmd: list[str], timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def squeue(jobs: list[str]) -> dict[str, Task] | None:
    """Every task of ``jobs`` (array or task ids) that the controller still knows; None when it did not answer."""
    if not jobs:
        return {}
    try:
        out = _run(["squeue", "-h", "-r", "--states=all", "-j", ",".join(jobs),
                    "-O", "JobArrayID:64,State:24,RestartCnt:8,Reason:200"])
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        # a job purged from the controller's memory is "Invalid job id": it is gone, not unanswered
        return {} if "Invalid job id" in out.stderr else None
    tasks = {}
    for line in out.stdout.splitlines():
        parts = line.split(None, 3)
        if len(parts) >= 3 and parts[2].isdigit():
            tasks[parts[0]] = Task(parts[0], parts[1], int(parts[2]), parts[3].strip() if len(parts) > 3 else "")
    return tasks


def sacct_unavailable() -> str | None:
    """Why ``sacct`` cannot be used here (e.g. "Slurm accounting storage is disabled"), or None when it works."""
    if shutil.which("sacct") is None:
        return "sacct not found"
    try:
        out = _run(["sacct", "-n", "-X", "-j", "1", "-o", "JobID"])
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"sacct did not answer ({err})"
    if out.returncode != 0:
        return ((out.stderr or out.stdout).strip().splitlines() or [f"exit status {out.returncode}"])[0]
    return None


def sacct(jobs: list[str]) -> dict[str, Task]:
    """The final records of ``jobs`` from accounting (call only when :func:`sacct_unavailable` is None)."""
    try:
        out = _run(["sacct", "-n", "-X", "-P", "-j", ",".join(jobs), "-o", "JobID,State"])
    except (OSError, subprocess.TimeoutExpired):
        return {}
    tasks = {}
    for line in out.stdout.splitlines() if out.returncode == 0 else []:
        job, _, state = line.partition("|")
        if job and state:
            tasks[job] = Task(job, state.split()[0])
    return tasks


class Queue:
    """The runner's view of submitted tasks: squeue for live and recently ended tasks, sacct for older ones."""

    def __init__(self) -> None:
        self.no_sacct = sacct_unavailable()

    def describe(self) -> str:
        """One line saying what is used (printed once)."""
        if self.no_sacct:
            return f"following the jobs with squeue (sacct unavailable: {self.no_sacct})"
        return "following the jobs with squeue (sacct for tasks that left the queue)"

    def tasks(self, jobs: list[str]) -> dict[str, Task] | None:
        """The tasks of ``jobs`` (array job ids) by task id; None when the controller did not answer."""
        return squeue(jobs)

    def final(self, task: str) -> Task | None:
        """How a task that squeue no longer knows ended, when accounting can say."""
        return None if self.no_sacct else sacct([task]).get(task)


# --------------------------------------------------------------------------------------------
# the runner: following a job array
# --------------------------------------------------------------------------------------------
def _epoch(spec: ExperimentSpec, stopped: bool = False) -> str:
    """The run's epoch now, or (``stopped``) where the scheduler stopped it: where it resumes from."""
    try:
        st = (read_stop(spec.run_dir) if stopped else None) or read_status(spec.run_dir)
    except RecordError:
        st = {}
    return f"epoch {st.get('epoch', 0)}/{st.get('epochs', '?')}" if st else "before its first epoch"


#: How the runner words a task that Slurm ended without a result (a rerun of the grid resumes it).
_ENDED_BY_SLURM = {"CANCELLED": "cancelled", "TIMEOUT": "stopped at its time limit", "PREEMPTED": "preempted",
                   "DEADLINE": "stopped at its deadline", "NODE_FAIL": "lost with its node"}


def _ended_without_result(job: Any, spec: ExperimentSpec, task: Task | None,
                          restarts: int) -> ExperimentResult:
    """A task that left the queue without writing a result: cancelled by Slurm or a user, or dead."""
    jid = job.job_id
    state = task.state if task is not None else None
    stop = read_stop(spec.run_dir)
    if state in _ENDED_BY_SLURM or (state is None and stop is not None):
        what = _ENDED_BY_SLURM.get(state or "", "stopped by Slurm")
        write_stop(spec, State.CANCELLED, f"job {jid} {what}; rerun the grid to resume", job=jid, slurm_state=state)
        return ExperimentResult(spec.name, State.CANCELLED, run_dir=spec.run_dir, requeues=restarts,
                                error=f"job {jid} {what} at {_epoch(spec)}; rerun the grid to resume")
    error = f"job {jid} ended ({state or 'no longer known to squeue'}) without a result (log: {job.paths.stderr})"
    log = job.paths.stderr.read_text(errors="replace")[-20000:] if job.paths.stderr.is_file() else ""
    write_failure(spec, error, f"slurm {state}", log)
    return ExperimentResult(spec.name, State.FAILED, error=error, run_dir=spec.run_dir, requeues=restarts)


def follow(jobs: list[Any], specs: list[ExperimentSpec],
           result_of: Callable[[Any, ExperimentSpec], ExperimentResult]) -> Iterator[ExperimentResult]:
    """Wait for the tasks of submitit ``jobs`` (one per spec) with squeue; yield reports, then results.

    Never asks submitit's watcher (which calls sacct and warns on every poll when accounting is off).
    A task's result is its result file (read with ``result_of``); before it, a task whose restart count
    goes up is reported ``requeued`` and one that runs again ``running`` (``PROGRESS``). A task that
    leaves the queue without a result was cancelled (``stopped.json``) or died (``failure.json``).
    """
    queue = Queue()
    print(queue.describe(), flush=True)
    arrays = sorted({j.job_id.split("_")[0] for j in jobs})
    pending = {j.job_id: (j, s) for j, s in zip(jobs, specs)}
    seen: dict[str, Task] = {}  # the last state squeue gave for each task
    ended: dict[str, float] = {}  # when a task was first seen ended without a result file
    tasks: dict[str, Task] = {}
    start, asked = time.time(), float("-inf")
    while pending:
        now = time.time()
        if now - asked >= min(QUEUE_POLL_MAX_S, max(POLL_S, (now - start) / 20)):
            answer, asked = queue.tasks(arrays), now
            tasks = answer if answer is not None else tasks  # a busy controller: keep the last answer
            fresh = answer is not None
        else:
            fresh = False
        for jid, (job, spec) in list(pending.items()):
            task, prev = tasks.get(jid), seen.get(jid)
            restarts = max(task.restarts if task else 0, prev.restarts if prev else 0)
            if job.paths.result_pickle.exists():
                del pending[jid]
                res = result_of(job, spec)
                yield replace(res, requeues=max(res.requeues, restarts))
                continue
            if task is not None:
                seen[jid] = task
                if task.restarts > (prev.restarts if prev else 0):
                    yield ExperimentResult(spec.name, State.REQUEUED, run_dir=spec.run_dir, requeues=restarts,
                                           error=f"job {jid} requeued by Slurm at {_epoch(spec)} (restart "
                                                 f"{task.restarts}); waiting for it to run again")
                elif task.state == "RUNNING" and prev is not None and prev.state != "RUNNING" and restarts:
                    yield ExperimentResult(spec.name, State.RUNNING, run_dir=spec.run_dir, requeues=restarts,
                                           error=f"job {jid} running again (restart {restarts}), "
                                                 f"resuming from {_epoch(spec, stopped=True)}")
            # ended, or gone from the queue: give a shared filesystem a moment to show the result file
            if ((task is not None and task.ended) or (task is None and fresh)) \
                    and now - ended.setdefault(jid, now) >= RESULT_GRACE_S:
                del pending[jid]
                final = task if task is not None else queue.final(jid)
                yield _ended_without_result(job, spec, final, restarts)
        if pending:
            time.sleep(POLL_S)


# --------------------------------------------------------------------------------------------
# inside the job
# --------------------------------------------------------------------------------------------
class StopSignals:
    """Record SIGTERM and USR2 while the block runs; earlier handlers (submitit's) still run.

    Args:
        raise_on_term: raise :class:`Stopped` on SIGTERM (for training in this process: it stops at
            once instead of at SIGKILL); never while ``requeueing`` is set.
    """

    def __init__(self, raise_on_term: bool = False) -> None:
        self.raise_on_term = raise_on_term
        self.requeueing = False  # submitit is checkpointing and requeueing: its own exit follows
        self.received: list[tuple[str, float]] = []  # (signal name, time)
        self._saved: dict[int, Any] = {}

    def _handler(self, previous: Any) -> Callable[[int, Any], None]:
        def handle(signum: int, frame: Any) -> None:
            self.received.append((signal.Signals(signum).name, time.time()))
            if callable(previous):
                previous(signum, frame)
            if signum == signal.SIGTERM and self.raise_on_term and not self.requeueing:
                raise Stopped(signal.Signals(signum).name)
        return handle

    def __enter__(self) -> StopSignals:  # noqa: PYI034 -- final in practice
        for sig in (signal.SIGTERM, signal.SIGUSR2):
            previous = signal.getsignal(sig)
            self._saved[sig] = previous
            signal.signal(sig, self._handler(previous))
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._saved.items():
            signal.signal(sig, previous)

    def __getstate__(self) -> dict[str, Any]:  # never pickled with a job: handlers are per process
        return {"raise_on_term": self.raise_on_term, "requeueing": False, "received": [], "_saved": {}}


def scontrol_job(job: str) -> dict[str, str]:
    """``scontrol show job`` of one job as key -> value ({} when the controller did not answer)."""
    try:
        out = _run(["scontrol", "show", "job", "-o", job], timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    fields: dict[str, str] = {}
    for word in out.stdout.split() if out.returncode == 0 else []:
        key, sep, value = word.partition("=")
        if sep and key not in fields:
            fields[key] = value
    return fields


def why_stopped(signals: StopSignals) -> tuple[State, str] | None:
    """(requeued or cancelled, detail) when the scheduler is stopping this job, else None.

    Called after the experiment stopped with an error: without a SIGTERM or USR2 the error is the
    experiment's own. With one, the controller says what it is doing to the job: a restart count above
    this incarnation's (``SLURM_RESTART_COUNT``) means it requeues the job, a job no longer RUNNING
    means it ends it (scancel, time limit, preemption). A job still RUNNING and not requeued was signalled
    by someone else (``scancel --signal``, ``kill``), or submitit gave up requeueing it after too many
    time-outs: then the error stays the experiment's.
    """
    if not signals.received:
        return None
    name = signals.received[-1][0]
    job = os.environ.get("SLURM_JOB_ID")
    info = scontrol_job(job) if job else {}
    if not info:
        return State.INTERRUPTED, f"stopped by {name}; Slurm did not say why (rerun the grid to resume)"
    restarts, mine = int(info.get("Restarts", "0") or 0), int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0)
    where = f"job {job_id()}"
    if restarts > mine:
        return State.REQUEUED, f"{where} requeued by Slurm ({name}, restart {restarts}); it resumes from its checkpoint"
    if info.get("JobState") == "RUNNING":
        return None
    return State.CANCELLED, f"{where} stopped by Slurm ({name}, not requeued); rerun the grid to resume"
