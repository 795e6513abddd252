"""Where the runner's experiments execute: in this process, in N local workers, or on Slurm.

Every executor calls :func:`nalkit.experiment.execute_experiment` once per experiment; its per-experiment
lock makes runners of any kind over the same results directory safe, and a rerun of an interrupted
experiment resumes from the trainer's full-state checkpoint.

``inline``          sequential, in this process (the default).
``local``           ``workers`` processes; with GPUs each worker is pinned to one
                    (``CUDA_VISIBLE_DEVICES``, round robin when workers > GPUs), without GPUs each
                    worker gets ``max(1, cores // workers)`` torch threads (``run.threads``, which
                    does not change the run name, and ``OMP_NUM_THREADS``).
``slurm``           a submitit job array (``AutoExecutor(folder=<results_dir>/slurm)``); the job is a
                    :class:`ExperimentJob`, which submitit checkpoints and requeues when Slurm signals
                    a time-out or preemption; the requeued job resumes the run from its checkpoint.
                    The runner follows the tasks with ``squeue`` (:mod:`nalkit.slurm`): a task that
                    Slurm requeues (``scontrol requeue``, preemption, time limit) is reported
                    ``requeued`` and waited for; one that is cancelled is reported ``cancelled``.
``submitit_local``  the same job through submitit's LocalExecutor (subprocesses), for testing.
``debug``           the same job through submitit's DebugExecutor (in this process), for testing.

Processes and fork safety. A child made by ``fork`` inherits every lock of its parent in the state it
had at that instant, and a lock in shared memory stays shared with it; a parent with threads (CUDA,
torch's intra-op pool, tqdm's monitor) may hold such a lock while it forks. nalkit therefore never forks
a process that may have threads:

* ``local`` workers are started with ``spawn`` (below);
* DataLoader workers of image-file datasets come from a ``forkserver`` (:func:`nalkit.data.worker_context`),
  a fresh single-threaded interpreter;
* papermill's kernels, submitit's local jobs, torchrun's ranks and ``git`` are started by
  ``subprocess`` (fork immediately followed by exec, which replaces the whole image and its locks);
* progress bars (:mod:`nalkit._progress`) hold no lock in shared memory and start no thread.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

from . import slurm
from .experiment import (
    ExperimentResult,
    ExperimentSpec,
    State,
    execute_experiment,
    write_failure,
    write_stop,
)
from .locks import job_id, release_lock

EXECUTORS = ("inline", "local", "slurm", "submitit_local", "debug")
#: States of progress reports that :func:`run_experiments` yields before an experiment's result.
PROGRESS = slurm.PROGRESS
POLL_S = 2.0  # how often the submitit_local executor looks for results


class ExecutorError(ValueError):
    """The executor cannot run here (no Slurm, no submitit); the message says what to use instead."""


_SUBMITIT_CLUSTER = {"slurm": "slurm", "submitit_local": "local", "debug": "debug"}

try:  # submitit is the optional "cluster" extra; the job class only needs it when submitted
    from submitit.helpers import Checkpointable as _Checkpointable
except ImportError:  # pragma: no cover
    _Checkpointable = object  # type: ignore[assignment,misc]


def check_executor(executor: str) -> None:
    """Raise :class:`ExecutorError` now, before the runner writes anything, if ``executor`` cannot run here."""
    if executor not in EXECUTORS:
        raise ExecutorError(f"executor {executor!r} is not one of {', '.join(EXECUTORS)}")
    if executor in _SUBMITIT_CLUSTER:
        try:
            import submitit  # noqa: F401
        except ImportError:
            raise ExecutorError(f"executor {executor!r} needs submitit: pip install -e '.[cluster]'") from None
    if executor == "slurm" and (shutil.which("sbatch") is None or shutil.which("squeue") is None):
        raise ExecutorError("executor 'slurm' needs Slurm (sbatch and squeue not found on PATH); "
                            "use --executor submitit_local to try the same jobs on this machine")


def run_experiments(specs: list[ExperimentSpec], executor: str, *, workers: int = 1,
                    results_dir: str | Path = "results", slurm: dict[str, Any] | None = None,
                    wait: bool = True) -> Iterator[ExperimentResult]:
    """Execute ``specs`` with ``executor``; yield each result as it finishes (any order).

    Under Slurm, reports in a state of ``PROGRESS`` come before a result: ``requeued`` when Slurm
    requeued a task (it will run again), ``running`` when a requeued task runs again. Every other state
    is the experiment's result (done, failed, cancelled, skipped, submitted).
    """
    if not specs:
        return iter(())
    if executor == "inline":
        return (execute_experiment(s) for s in specs)
    if executor == "local":
        return _run_local(specs, workers)
    if executor in _SUBMITIT_CLUSTER:
        return _run_submitit(specs, executor, Path(results_dir), slurm or {}, wait)
    raise ExecutorError(f"executor {executor!r} is not one of {', '.join(EXECUTORS)}")


# --------------------------------------------------------------------------------------------
# local processes
# --------------------------------------------------------------------------------------------
def _visible_gpus() -> list[str]:
    import torch

    n = torch.cuda.device_count()
    if n == 0:
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [v.strip() for v in visible.split(",") if v.strip()] if visible else [str(i) for i in range(n)]
    return ids[:n]


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def die_with_parent() -> bool:
    """Ask Linux to send this process SIGTERM when its parent dies (``prctl(PR_SET_PDEATHSIG)``); False elsewhere.

    A local worker whose runner was killed would otherwise live on, an orphan, take the experiments already queued
    for it and write their records with the code it imported when it started. SIGTERM ends it (and its notebook's
    kernel, which exits with its parent); the experiment resumes from its checkpoint when the grid is run again.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(1, signal.SIGTERM, 0, 0, 0) == 0  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return False


def _init_worker(slots: Any, env_by_slot: list[dict[str, str]]) -> None:
    # each worker takes one slot for its lifetime: its GPU (or thread count) stays fixed
    os.environ.update(env_by_slot[slots.get()])
    die_with_parent()


def _run_local(specs: list[ExperimentSpec], workers: int) -> Iterator[ExperimentResult]:
    n = max(1, min(int(workers), len(specs)))
    gpus = _visible_gpus()
    if gpus:
        env_by_slot = [{"CUDA_VISIBLE_DEVICES": gpus[i % len(gpus)]} for i in range(n)]
    else:
        threads = max(1, _cores() // n)
        env_by_slot = [{"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}] * n
        # run.threads is not part of the config digest: the run names stay those of the grid
        specs = [replace(s, overrides=[*s.overrides, f"run.threads={threads}"])
                 if not any(o.startswith("run.threads=") for o in s.overrides) else s for s in specs]
    # spawn, not fork: the parent may hold CUDA or torch thread pools that a fork would inherit broken
    ctx = mp.get_context("spawn")
    slots = ctx.Queue()
    for i in range(n):
        slots.put(i)
    with ProcessPoolExecutor(n, mp_context=ctx, initializer=_init_worker, initargs=(slots, env_by_slot)) as pool:
        futures = {pool.submit(execute_experiment, s): s for s in specs}
        try:
            for fut in as_completed(futures):
                spec = futures[fut]
                try:
                    yield fut.result()
                except Exception as err:  # noqa: BLE001 -- a dead worker (OOM kill) fails its experiment only
                    yield ExperimentResult(spec.name, State.FAILED, error=f"worker died: {type(err).__name__}: {err}",
                                           run_dir=spec.run_dir)
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise


# --------------------------------------------------------------------------------------------
# submitit (Slurm)
# --------------------------------------------------------------------------------------------
class ExperimentJob(_Checkpointable):
    """The callable submitit runs in each array task: one experiment.

    On a time-out or preemption signal submitit calls :meth:`checkpoint` and requeues the returned
    submission; the requeued task calls the job again on the same spec, and the trainer resumes from
    the run directory's last full-state checkpoint.
    """

    def __init__(self) -> None:
        self.requeues = 0  # travels with the pickled job: how often this experiment was checkpointed
        self._signals: slurm.StopSignals | None = None  # this process's only

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_signals": None}

    def __call__(self, spec: ExperimentSpec) -> ExperimentResult:
        if job_id() is None:  # submitit's local executors: no scheduler stops the job
            return replace(execute_experiment(spec), requeues=self.requeues)
        # Slurm signals every process of the job when it requeues or cancels it: the papermill kernel
        # dies of SIGTERM, and that is the scheduler's doing, not the experiment's (slurm.why_stopped)
        with slurm.StopSignals(raise_on_term=spec.notebook is None) as signals:
            self._signals = signals
            result = execute_experiment(spec, stopped=lambda: slurm.why_stopped(signals))
        if result.state in (State.REQUEUED, State.CANCELLED, State.INTERRUPTED):
            # end without a result: submitit then writes none, and the runner follows the task in the
            # queue (a requeued task writes its result when it completes); stopped.json says what happened
            print(f"nalkit: {spec.name}: {result.error} (not a failure of the experiment)", file=sys.stderr,
                  flush=True)
            raise SystemExit(128 + signal.SIGTERM)
        return replace(result, requeues=self.requeues)

    def checkpoint(self, spec: ExperimentSpec) -> Any:
        from submitit.core.utils import DelayedSubmission

        signals = getattr(self, "_signals", None)  # absent from jobs pickled by an older nalkit
        if signals is not None:
            signals.requeueing = True  # submitit's `scontrol requeue` sends us SIGTERM next
        # free the lock now: the requeued task may start on another node before this process is gone
        release_lock(spec.run_dir)
        self.requeues += 1
        if job_id() is not None:
            write_stop(spec, State.REQUEUED, f"job {job_id()} checkpointed and requeued by submitit "
                       f"(time limit or preemption signal, requeue {self.requeues}); it resumes from its checkpoint")
        return DelayedSubmission(self, spec)


def _submitit_parameters(params: dict[str, Any], cluster: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": "nalkit"}
    generic = {"time_min": "timeout_min", "gpus": "gpus_per_node", "cpus": "cpus_per_task", "mem_gb": "mem_gb"}
    for key, target in generic.items():
        if params.get(key) is not None:
            out[target] = params[key]
    if params.get("partition") is not None:
        out["slurm_partition"] = params["partition"]
    if params.get("array_parallelism") is not None:
        out["slurm_array_parallelism"] = params["array_parallelism"]
    out.update({k: v for k, v in params.items() if k.startswith("slurm_") and v is not None})
    if cluster == "debug":  # the debug executor takes no resources
        out = {k: v for k, v in out.items() if k in ("name", "timeout_min") or k.startswith("slurm_")}
    return out


def _run_submitit(specs: list[ExperimentSpec], kind: str, results_dir: Path, params: dict[str, Any],
                  wait: bool) -> Iterator[ExperimentResult]:
    import submitit

    check_executor(kind)
    cluster = _SUBMITIT_CLUSTER[kind]
    params = dict(params)
    # how many time-outs a task may be requeued after is the executor's, not a job parameter
    limit = params.pop("slurm_max_num_timeout", None)
    executor = submitit.AutoExecutor(folder=results_dir / "slurm", cluster=cluster,
                                     **({"slurm_max_num_timeout": int(limit)} if limit is not None else {}))
    executor.update_parameters(**_submitit_parameters(params, cluster))
    jobs = executor.map_array(ExperimentJob(), specs)
    by_job = dict(zip((j.job_id for j in jobs), specs))
    print(f"submitted {len(jobs)} jobs ({cluster}): {jobs[0].job_id} ... {jobs[-1].job_id}; "
          f"logs in {results_dir / 'slurm'}", flush=True)
    if not wait:
        for job, spec in zip(jobs, specs):
            yield ExperimentResult(spec.name, State.SUBMITTED, error=f"job {job.job_id}", run_dir=spec.run_dir)
        return
    if cluster == "slurm":
        yield from slurm.follow(jobs, specs, _job_result)
        return
    pending = list(jobs)
    while pending:
        # the debug executor only runs a job when its result is asked for
        ready = pending if cluster == "debug" else [j for j in pending if j.done()]
        for job in ready:
            pending.remove(job)
            yield _job_result(job, by_job[job.job_id])
        if pending:
            time.sleep(POLL_S)


def _job_result(job: Any, spec: ExperimentSpec) -> ExperimentResult:
    """The result a finished submitit job wrote; a job that raised outside the experiment is failed."""
    try:
        return job.result()
    except Exception as err:  # noqa: BLE001 -- a job killed outside Python (OOM), submitit gave up requeueing
        first = (str(err).strip().splitlines() or [type(err).__name__])[-1]
        error = f"job {job.job_id} died: {first} (log: {job.paths.stderr})"
        write_failure(spec, error, type(err).__name__, str(err))
        return ExperimentResult(spec.name, State.FAILED, error=error, run_dir=spec.run_dir)
