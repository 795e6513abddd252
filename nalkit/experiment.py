"""One experiment: train it under its lock, through the notebook, and leave a portable record.

:func:`execute_experiment` is what every executor runs per experiment. It takes the experiment's lock
(:mod:`nalkit.locks`), skips a complete run, and otherwise executes ``book/experiments/experiment.ipynb``
with papermill (or, for a grid with ``notebook: null``, calls :func:`nalkit.train.train` directly). The
executed copy lands beside the run record as ``experiment.ipynb``, made portable: parameters are paths
relative to the repository, papermill's own path metadata is made relative, the notebook's default
parameters cell (shadowed by the injected one) is dropped, and any remaining mention of the
repository's absolute path is rewritten relative to it. A failure is written to ``failure.json`` and
never raised: one experiment's failure does not stop a grid. An experiment stopped by its scheduler
(requeued, cancelled) has not failed: ``stopped.json`` says what happened, and a rerun resumes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import time
import traceback
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Iterator

from ._io import atomic_write_text, now_iso
from .locks import LockHeld, acquire_lock, describe_holder, job_id, release_lock
from .records import RecordError, read_status

EXECUTED_NOTEBOOK = "experiment.ipynb"
FAILED_NOTEBOOK = "experiment-failed.ipynb"
PARTIAL_NOTEBOOK = ".experiment.partial.ipynb"
FAILURE_FILE = "failure.json"
STOP_FILE = "stopped.json"
TITLE = "# Experiment"


class State(str, Enum):
    """The states an experiment can be in, as the runner and ``nalkit status`` report them."""

    DONE = "done"  # complete run record (and executed notebook)
    SKIPPED = "skipped"  # not run by this runner: complete already, or locked by another live runner
    FAILED = "failed"  # the experiment raised; failure.json says why
    SUBMITTED = "submitted"  # handed to a scheduler without waiting (--no-wait)
    QUEUED = "queued"  # waiting to start
    RUNNING = "running"  # a live process holds its lock
    REQUEUED = "requeued"  # stopped by the scheduler (preemption, time limit, requeue); it will resume
    CANCELLED = "cancelled"  # cancelled by the scheduler or a user; a rerun of the grid resumes it
    INTERRUPTED = "interrupted"  # started, no live runner: a rerun resumes it

    def __str__(self) -> str:
        return self.value


class Stopped(BaseException):
    """Raised in the main thread when the scheduler stops this process (see ``nalkit.slurm.StopSignals``).

    A BaseException, so that ``except Exception`` in training code does not swallow it.
    """


@dataclass
class ExperimentSpec:
    """What a worker needs to execute one experiment (picklable; all paths absolute)."""

    name: str
    config: str
    overrides: list[str]
    config_hash: str
    run_dir: str
    results_dir: str
    notebook: str | None
    repo_root: str
    env: dict[str, str] = field(default_factory=dict)  # extra environment for the kernel (CUDA_VISIBLE_DEVICES, ...)


@dataclass
class ExperimentResult:
    name: str
    state: State
    seconds: float = 0.0
    final_test_acc: float | None = None
    best_test_acc: float | None = None
    error: str = ""  # first line of the error (failed) or why it was skipped
    run_dir: str = ""
    requeues: int = 0  # times a cluster job running it was checkpointed and requeued


def is_complete(run_dir: str | Path, config_hash: str, notebook: bool = False) -> bool:
    """The run under ``run_dir`` is complete for ``config_hash`` (and has its executed notebook)."""
    try:
        st = read_status(run_dir)
    except RecordError:
        return False
    done = st.get("state") == "complete" and st.get("config_hash") == config_hash
    return done and (not notebook or (Path(run_dir) / EXECUTED_NOTEBOOK).is_file())


def result_from_status(spec: ExperimentSpec, state: State, seconds: float = 0.0, error: str = "") -> ExperimentResult:
    """An :class:`ExperimentResult` with the accuracies of the run's status.json (if readable)."""
    try:
        st = read_status(spec.run_dir)
    except RecordError:
        st = {}
    return ExperimentResult(spec.name, state, seconds, st.get("final_test_acc"), st.get("best_test_acc"),
                            error, spec.run_dir)


@contextlib.contextmanager
def kernel_environment(extra: dict[str, str]) -> Iterator[None]:
    """The kernel inherits os.environ at launch: drop MPLBACKEND=Agg (it hides figures), add ``extra``."""
    saved = dict(os.environ)
    os.environ.pop("MPLBACKEND", None)
    os.environ.update(extra)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def relative(path: str | Path, root: str | Path) -> str:
    """``path`` relative to ``root`` when it lies inside it, else unchanged (POSIX separators)."""
    rel = os.path.relpath(path, root)
    return str(path) if rel.startswith("..") else Path(rel).as_posix()


# --------------------------------------------------------------------------------------------
# the executed notebook
# --------------------------------------------------------------------------------------------
def make_portable(nb: Any, repo_root: str | Path, name: str) -> Any:
    """Make an executed notebook (``nbformat`` node) publishable, in place; return it.

    * title: the first ``# Experiment`` heading becomes ``# Experiment: <name>``;
    * the notebook's default ``parameters`` cell is dropped (papermill's ``injected-parameters`` cell,
      which holds the values the run used, follows it and stays);
    * papermill's ``input_path`` / ``output_path`` become relative to the repository;
    * every remaining mention of the repository's absolute path (in sources, outputs and metadata) is
      written relative to it.
    """
    import nbformat

    cells = []
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "parameters" in tags and "injected-parameters" not in tags:
            continue
        cells.append(cell)
    nb.cells = cells
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.lstrip().startswith(TITLE):
            _, _, rest = cell.source.lstrip().partition("\n")
            cell.source = f"{TITLE}: {name}" + ("\n" + rest if rest else "")
            break
    else:
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(f"{TITLE}: {name}"))
    pm = nb.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):
        if pm.get(key):
            pm[key] = relative(pm[key], repo_root)
    pm.get("parameters", {}).pop("repo_root", None)
    root = re.escape(json.dumps(str(Path(repo_root).resolve()))[1:-1])
    text = re.sub(root + "/", "", nbformat.writes(nb))
    text = re.sub(root + r"(?=[\\\"'\s:,)\]}]|$)", ".", text)
    return nbformat.reads(text, as_version=4)


def _execute_notebook(spec: ExperimentSpec) -> None:
    import nbformat
    import papermill

    run_dir = Path(spec.run_dir)
    partial = run_dir / PARTIAL_NOTEBOOK
    # paths inside the repository are passed relative to it (the kernel's working directory): the
    # executed copy is published in the book and must not carry this machine's layout
    params = dict(config=relative(spec.config, spec.repo_root), overrides=list(spec.overrides),
                  results_dir=relative(spec.results_dir, spec.repo_root),
                  run_dir=relative(spec.run_dir, spec.repo_root))
    with kernel_environment(spec.env):
        papermill.execute_notebook(spec.notebook, str(partial), parameters=params, kernel_name="python3",
                                   cwd=spec.repo_root, progress_bar=False, log_output=False)
    nb = make_portable(nbformat.read(partial, as_version=4), spec.repo_root, spec.name)
    nb.metadata.setdefault("papermill", {})["output_path"] = relative(run_dir / EXECUTED_NOTEBOOK, spec.repo_root)
    atomic_write_text(run_dir / EXECUTED_NOTEBOOK, nbformat.writes(nb))
    partial.unlink(missing_ok=True)


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def write_failure(spec: ExperimentSpec, error: str, kind: str, tb: str) -> str:
    """Write ``failure.json`` (first line of ``error``, its type, the traceback or log); return the first line."""
    run_dir = Path(spec.run_dir)
    first = error.strip().splitlines()[0] if error.strip() else kind
    partial = run_dir / PARTIAL_NOTEBOOK
    failed_nb = None
    if partial.is_file():
        os.replace(partial, run_dir / FAILED_NOTEBOOK)
        failed_nb = relative(run_dir / FAILED_NOTEBOOK, spec.repo_root)
    record = {"experiment": spec.name, "error": first, "type": kind, "traceback": tb,
              "host": socket.gethostname(), "pid": os.getpid(), "time": now_iso(),
              "config": relative(spec.config, spec.repo_root), "overrides": spec.overrides, "notebook": failed_nb}
    atomic_write_text(run_dir / FAILURE_FILE, json.dumps(record, indent=1))
    (run_dir / STOP_FILE).unlink(missing_ok=True)
    return first


def _write_failure(spec: ExperimentSpec, err: BaseException) -> str:
    ename = getattr(err, "ename", None)
    if ename is not None:  # papermill: the error happened in the kernel; its traceback is the useful one
        return write_failure(spec, f"{ename}: {getattr(err, 'evalue', '')}", ename,
                             _ANSI.sub("", "\n".join(getattr(err, "traceback", []) or [])))
    return write_failure(spec, f"{type(err).__name__}: {err}", type(err).__name__,
                         "".join(traceback.format_exception(err)))


def write_stop(spec: ExperimentSpec, state: State, detail: str, **info: Any) -> None:
    """Write ``stopped.json``: the scheduler stopped the experiment (``state`` requeued or cancelled).

    Records the epoch reached (from status.json) and the Slurm job (``info`` may name it: the runner
    writes for tasks it follows), so that ``nalkit status`` can say where it resumes and ask squeue.
    """
    run_dir = Path(spec.run_dir)
    try:
        st = read_status(run_dir)
    except RecordError:
        st = {}
    record = {"experiment": spec.name, "state": str(state), "detail": detail, "epoch": st.get("epoch", 0),
              "epochs": st.get("epochs"), "job": job_id(), "host": socket.gethostname(), "time": now_iso(), **info}
    atomic_write_text(run_dir / STOP_FILE, json.dumps(record, indent=1))
    (run_dir / FAILURE_FILE).unlink(missing_ok=True)
    (run_dir / PARTIAL_NOTEBOOK).unlink(missing_ok=True)  # the next attempt executes the notebook afresh


def read_stop(run_dir: str | Path) -> dict[str, Any] | None:
    """The record of :func:`write_stop` (None when there is none or it is unreadable)."""
    try:
        return json.loads((Path(run_dir) / STOP_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def execute_experiment(spec: ExperimentSpec,
                       stopped: Callable[[], tuple[State, str] | None] | None = None) -> ExperimentResult:
    """Run one experiment under its lock: notebook (or bare training), executed copy, failure record.

    Never raises for a failing experiment: the failure is written to ``<run_dir>/failure.json`` and
    returned as state ``failed``. An experiment locked by a live process is ``skipped``.

    Args:
        spec: the experiment.
        stopped: asked when the experiment raised (a kernel killed by a signal, :class:`Stopped`):
            ``(state, detail)`` when the scheduler stopped this process (requeue, cancel), else None.
            Then the error is not the experiment's: ``stopped.json`` is written instead of
            ``failure.json`` and the result has that state.
    """
    run_dir = Path(spec.run_dir)
    try:
        acquire_lock(run_dir)
    except LockHeld as held:
        return ExperimentResult(spec.name, State.SKIPPED, error=f"running elsewhere ({describe_holder(held.holder)})",
                                run_dir=spec.run_dir)
    try:
        if is_complete(run_dir, spec.config_hash, notebook=spec.notebook is not None):
            return result_from_status(spec, State.SKIPPED, 0.0, "complete")
        t0 = time.perf_counter()
        try:
            if spec.notebook is not None:
                _execute_notebook(spec)
            else:
                from .train import train

                with kernel_environment(spec.env):
                    train(spec.config, spec.overrides, results_dir=spec.results_dir, run_dir=run_dir, progress=False)
            if not is_complete(run_dir, spec.config_hash):
                st = read_status(run_dir)
                raise RuntimeError(
                    f"{run_dir}: training returned but the run is not complete with config hash {spec.config_hash} "
                    f"(status: state {st.get('state')!r}, hash {st.get('config_hash')!r}); did nalkit's config "
                    f"change while the grid ran? Rerun the grid")
        except (Exception, Stopped) as err:  # noqa: BLE001 -- one experiment's failure must not stop the grid
            stop = stopped() if stopped is not None else None
            if stop is not None:
                write_stop(spec, *stop)
                return ExperimentResult(spec.name, stop[0], time.perf_counter() - t0, error=stop[1],
                                        run_dir=spec.run_dir)
            return ExperimentResult(spec.name, State.FAILED, time.perf_counter() - t0,
                                    error=_write_failure(spec, err), run_dir=spec.run_dir)
        for name in (FAILURE_FILE, FAILED_NOTEBOOK, STOP_FILE):
            (run_dir / name).unlink(missing_ok=True)
        return result_from_status(spec, State.DONE, time.perf_counter() - t0)
    finally:
        release_lock(run_dir)
