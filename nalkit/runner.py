"""The experiment runner: a grid file -> one executed notebook and one run record per experiment.

``nalkit run GRID.yaml`` expands the grid (:mod:`nalkit.grid`), validates every experiment's config before
anything is written, skips experiments whose run is already complete, and executes
``book/experiments/experiment.ipynb`` once per remaining experiment with papermill
(:mod:`nalkit.experiment`), through an executor (:mod:`nalkit.executors`: inline, local processes, Slurm).
The notebook trains through :func:`nalkit.train.train` (which resumes an interrupted run from its
checkpoint) and plots the run record; its executed copy lands beside the record, titled with the run
name, for the book. One failed experiment never stops the others. NAL's schedule control
(``method.nal.attention_mode: schedule``) trains on full NAL's mean tau per epoch: the runner reads it from full
NAL's record before the control starts and passes it as the override ``method.nal.tau_schedule`` (the trainer
reads no other run's record); a control whose full NAL is in the same grid and not complete starts after the
other experiments, once it is. ``nalkit status`` (:func:`print_status`) reads the state of every experiment
from the results directory (and asks ``squeue`` about experiments that Slurm requeued, when it is there), and
agrees with the runner's final summary.

The modules form one chain, each importing only those before it:
``grid`` -> ``locks`` -> ``experiment`` -> ``slurm`` -> ``executors`` -> ``runner``.

Layout of a results directory::

    <results_dir>/grids/<grid name>.json      the experiments a grid expects (for `nalkit status`)
    <results_dir>/runs/<run name>/            the run record (see nalkit.records), plus
        experiment.ipynb                      the executed notebook (title "# Experiment: <run name>")
        experiment-failed.ipynb               the partially executed notebook of a failed attempt
        failure.json                          error, full traceback, host, time of the last failure
        stopped.json                          the scheduler stopped it (requeued, cancelled): when, at which epoch
        .lock                                 held while a runner works on the experiment
    <results_dir>/noise/                      content-addressed noise files
    <results_dir>/slurm/                      submitit's job folder (slurm / submitit_local executors)
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import slurm
from ._io import atomic_write_text, now_iso
from ._progress import ProgressBar
from .config import ConfigError
from .executors import PROGRESS, check_executor, run_experiments
from .experiment import (
    FAILURE_FILE,
    ExperimentResult,
    ExperimentSpec,
    State,
    is_complete,
    read_stop,
    relative,
    result_from_status,
    write_failure,
)
from .grid import Experiment, Grid, GridError, expand_grid, load_grid
from .locks import describe_holder, lock_is_live, read_lock
from .records import RecordError, read_status

__all__ = ["GridError", "GridSummary", "State", "expand_grid", "load_grid", "print_status", "run_grid",
           "status_table", "experiment_state"]


@dataclass
class GridSummary:
    grid: str
    table: Any  # pandas DataFrame: experiment, state, seconds, final_test_acc, best_test_acc, requeues, error
    manifest: Path  # <results_dir>/grids/<name>.json

    @property
    def ok(self) -> bool:
        """No experiment failed or was cancelled (a rerun of the grid resumes a cancelled one)."""
        return not self.table["state"].isin([State.FAILED.value, State.CANCELLED.value]).any()


def _write_grid_manifest(grid: Grid) -> Path:
    path = grid.results_dir / "grids" / f"{grid.name}.json"
    root = Path.cwd()  # paths inside the repository are written relative to it: the manifest is committed
    doc = {"name": grid.name, "grid_file": relative(grid.path, root),
           "notebook": relative(grid.notebook, root) if grid.notebook else None, "written": now_iso(),
           "experiments": [{"name": e.name, "config": relative(e.config, root), "overrides": e.overrides,
                            "config_hash": e.cfg.digest(), "run_dir": os.path.relpath(e.run_dir, grid.results_dir)}
                           for e in grid.experiments]}
    try:  # unchanged but for its time stamp: leave the (committed) file alone, so a rerun dirties nothing
        old = json.loads(path.read_text())
        if {**old, "written": None} == {**doc, "written": None}:
            return path
    except (OSError, ValueError):
        pass
    atomic_write_text(path, json.dumps(doc, indent=1))
    return path


def _fmt_acc(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f} %"


def experiment_spec(exp: Experiment, grid: Grid) -> ExperimentSpec:
    """The picklable description of ``exp`` that an executor runs."""
    return ExperimentSpec(name=exp.name, config=exp.config, overrides=list(exp.overrides),
                          config_hash=exp.cfg.digest(), run_dir=str(exp.run_dir), results_dir=str(grid.results_dir),
                          notebook=str(grid.notebook) if grid.notebook else None, repo_root=str(Path.cwd()))


def _tau_schedules(pending: list[tuple[Experiment, ExperimentSpec]], grid: Grid) -> dict[str, str]:
    """Give every schedule control of ``pending`` its tau list now where full NAL's record is complete (an override
    added to its spec); return the controls that wait for a full NAL of ``pending`` still to run (control's name ->
    full NAL's name).

    Raises:
        ConfigError: before anything is written, for a control whose full NAL is neither complete nor pending.
    """
    from .results.load import needs_tau_schedule, schedule_twin, tau_schedule_override

    names = {exp.name for exp, _ in pending}
    waiting: dict[str, str] = {}
    for exp, spec in pending:
        if not needs_tau_schedule(exp.cfg) or is_complete(exp.run_dir, spec.config_hash):
            continue  # (a control trained already, awaiting only its notebook, reads no tau)
        twin = schedule_twin(exp.cfg).run_name()
        try:
            done = read_status(exp.run_dir.parent / twin).get("state") == "complete"
        except RecordError:
            done = False
        if twin in names and not done:
            waiting[spec.name] = twin
            continue
        try:
            spec.overrides += tau_schedule_override(exp.cfg, exp.run_dir)
        except ConfigError as err:
            raise ConfigError(f"{grid.path}: experiment {exp.name}: {err}") from None
    return waiting


def _after_twin(exp: Experiment, spec: ExperimentSpec, twin: str, result: ExperimentResult | None,
                ) -> ExperimentResult | None:
    """A schedule control once the executor is through with its full NAL ``twin`` (and its ``result``): None after
    adding the tau list to ``spec.overrides`` (it can run now), else the control's result: failed (failure.json)
    when full NAL failed, was cancelled or left a record it cannot read; queued, for a rerun of the grid, when full
    NAL is still under way (submitted without waiting, requeued, running elsewhere)."""
    from .results.load import tau_schedule_override

    try:
        spec.overrides += tau_schedule_override(exp.cfg, exp.run_dir)
        return None
    except ConfigError as err:
        state = result.state if result is not None else State.QUEUED
        if state not in (State.DONE, State.FAILED, State.CANCELLED):
            return ExperimentResult(spec.name, State.QUEUED, run_dir=spec.run_dir,
                                    error=f"waits for full NAL {twin} ({state}): run the grid again once it is "
                                          "complete")
        error = write_failure(spec, f"ConfigError: full NAL is {state} in this run of the grid: {err}",
                              "ConfigError", "")
        return ExperimentResult(spec.name, State.FAILED, error=error, run_dir=spec.run_dir)


def _report(res: ExperimentResult) -> None:
    """One line per finished experiment, above the progress bar."""
    if res.state == State.DONE:
        requeued = f"  (requeued {res.requeues}x)" if res.requeues else ""
        line = f"done     {res.name}  {res.seconds:.0f} s  test acc final {_fmt_acc(res.final_test_acc)} " \
               f"best {_fmt_acc(res.best_test_acc)}{requeued}"
    elif res.state == State.FAILED:
        line = f"FAILED   {res.name}  {res.error}  (traceback: {Path(res.run_dir) / FAILURE_FILE})"
    else:
        line = f"{str(res.state):8s} {res.name}  {res.error}"
    ProgressBar.write(line, file=sys.stderr)


def run_grid(grid: str | Path, results_dir: str | Path | None = None, executor: str = "inline", workers: int = 1,
             overrides: list[str] | tuple[str, ...] = (), only: str | None = None,
             slurm: dict[str, Any] | None = None, wait: bool = True, notebooks: bool = True) -> GridSummary:
    """Run every experiment of a grid file that is not complete yet.

    Args:
        grid: the grid YAML.
        results_dir: overrides the grid's ``results_dir``.
        executor: ``inline`` (sequential, in this process), ``local`` (``workers`` processes, one GPU
            each when there are GPUs), ``slurm`` (a submitit job array), ``submitit_local`` or ``debug``
            (submitit's local and in-process executors, for testing).
        workers: parallel workers of the ``local`` executor.
        overrides: ``section.key=value`` strings applied to every experiment (they change run names).
        only: run only experiments whose name contains this substring.
        slurm: submitit parameters (keys of the grid's ``slurm:`` section); they win over the grid's.
        wait: wait for submitted jobs (slurm); ``False`` submits and returns state ``submitted``.
        notebooks: ``False`` trains without executing the grid's notebook; a later run with notebooks
            executes it for the complete runs, where it only reads the records (minutes, not hours).

    Returns:
        A :class:`GridSummary`; ``summary.ok`` is False when any experiment failed or was cancelled.
        Its states are those ``nalkit status`` reports afterwards (``skipped`` ones are ``done`` there,
        or running elsewhere).

    Raises:
        GridError: the grid file is wrong (nothing is written).
        ConfigError: a schedule control (``method.nal.attention_mode: schedule``) whose full NAL is neither
            complete nor among the experiments to run (nothing is written).
    """
    import pandas as pd

    check_executor(executor)
    g = load_grid(grid, overrides, results_dir)
    if not notebooks:
        g.notebook = None
    selected = g.experiments
    if only:
        selected = [e for e in g.experiments if only in e.name]
        if not selected:
            raise GridError(f"--only {only!r} matches none of the {len(g.experiments)} experiments of {g.path} "
                            f"(e.g. {g.experiments[0].name})")

    results: dict[str, ExperimentResult] = {}
    pending: list[tuple[Experiment, ExperimentSpec]] = []
    for exp in selected:
        spec = experiment_spec(exp, g)
        if is_complete(exp.run_dir, spec.config_hash, notebook=g.notebook is not None):
            results[exp.name] = result_from_status(spec, State.SKIPPED, 0.0, "complete")
        else:
            pending.append((exp, spec))
    waiting = _tau_schedules(pending, g)  # NAL's schedule controls: raises before anything is written
    manifest = _write_grid_manifest(g)
    later = f", {len(waiting)} of them after their full NAL" if waiting else ""
    print(f"grid {g.name}: {len(selected)} experiments ({len(results)} complete, {len(pending)} to run{later}) -> "
          f"{g.results_dir}  [executor {executor}]", flush=True)
    slurm_params = {**g.slurm, **{k: v for k, v in (slurm or {}).items() if v is not None}}
    bar = ProgressBar(total=len(pending), desc=g.name, unit="exp", file=sys.stderr, disable=not pending,
                      dynamic_ncols=True)

    def execute(specs: list[ExperimentSpec]) -> None:
        for res in run_experiments(specs, executor, workers=workers, results_dir=g.results_dir,
                                   slurm=slurm_params, wait=wait):
            if res.state not in PROGRESS:  # a requeued task is reported, then waited for
                results[res.name] = res
                bar.update(1)
            _report(res)

    try:
        execute([spec for _, spec in pending if spec.name not in waiting])
        # the schedule controls whose full NAL ran above: its record gives their tau now
        ready = []
        for exp, spec in ((e, s) for e, s in pending if s.name in waiting):
            res = _after_twin(exp, spec, waiting[spec.name], results.get(waiting[spec.name]))
            if res is None:
                ready.append(spec)
            else:
                results[res.name] = res
                bar.update(1)
                _report(res)
        execute(ready)
    finally:
        bar.close()

    rows = [asdict(results.get(e.name) or ExperimentResult(e.name, State.SKIPPED, error="not run")) for e in selected]
    for row in rows:
        row["state"] = str(row["state"])
    table = pd.DataFrame(rows, columns=["name", "state", "seconds", "final_test_acc", "best_test_acc", "requeues",
                                        "error"])
    table = table.rename(columns={"name": "experiment"})
    summary = GridSummary(grid=g.name, table=table, manifest=manifest)
    counts = table.state.value_counts().to_dict()
    with pd.option_context("display.max_rows", 500, "display.max_colwidth", 70, "display.width", 200):
        print(table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    hint = " (run the same command again to resume)" if counts.get(State.CANCELLED.value) else ""
    print(f"grid {g.name}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + hint, flush=True)
    return summary


# --------------------------------------------------------------------------------------------
# status
# --------------------------------------------------------------------------------------------
def experiment_state(run_dir: str | Path, config_hash: str | None = None) -> tuple[State, str]:
    """(state, detail) of one experiment from its run directory alone.

    States: ``done`` (complete), ``running`` (lock held by a live process), ``failed`` (failure.json,
    not complete), ``requeued`` (Slurm requeued it: it resumes when Slurm runs it again), ``cancelled``
    (Slurm or a user cancelled it: a rerun of the grid resumes it), ``interrupted`` (started, no live
    runner: a rerun resumes it), ``queued``. See :func:`status_table` for what squeue adds.
    """
    run_dir = Path(run_dir)
    try:
        st = read_status(run_dir)
    except RecordError as err:
        return State.FAILED, str(err)
    if st.get("state") == "complete" and (config_hash is None or st.get("config_hash") == config_hash):
        acc = st.get("final_test_acc")
        return State.DONE, f"final test acc {_fmt_acc(acc)}"
    holder = read_lock(run_dir)
    progress = f"epoch {st.get('epoch', 0)}/{st.get('epochs', '?')}" if st else ""
    if lock_is_live(holder):
        return State.RUNNING, f"{progress} {describe_holder(holder)}".strip()
    stop = read_stop(run_dir)
    if stop is not None and stop.get("state") in (State.REQUEUED.value, State.CANCELLED.value):
        return State(stop["state"]), f"{progress or 'not started'}: {stop.get('detail', '')}"
    failure = run_dir / FAILURE_FILE
    if failure.is_file():
        try:
            return State.FAILED, json.loads(failure.read_text()).get("error", "")
        except json.JSONDecodeError:
            return State.FAILED, f"{failure} is unreadable"
    if st.get("state") == "running":
        return State.INTERRUPTED, f"{progress}; rerun to resume"
    return State.QUEUED, ""


#: The states ``nalkit status`` counts, in its order.
STATES = (State.DONE, State.RUNNING, State.REQUEUED, State.FAILED, State.CANCELLED, State.INTERRUPTED, State.QUEUED)


def _ask_slurm(rows: list[dict[str, Any]]) -> None:
    """Correct ``requeued`` rows whose Slurm task has ended meanwhile (cancelled while it waited).

    Only when squeue is here and still knows the task; otherwise the run directory's word stands.
    """
    jobs = {i: (read_stop(row["run_dir"]) or {}).get("job") for i, row in enumerate(rows)
            if row["state"] == State.REQUEUED.value}
    jobs = {i: job for i, job in jobs.items() if job}
    if not jobs or shutil.which("squeue") is None:
        return
    tasks = slurm.squeue(sorted(set(jobs.values()))) or {}
    for i, job in jobs.items():
        task = tasks.get(job)
        if task is not None and task.ended:
            rows[i]["state"] = State.CANCELLED.value
            rows[i]["detail"] = f"job {job} requeued, then ended ({task.state}); rerun the grid to resume"


def status_table(results_dir: str | Path) -> Any:
    """One row per expected experiment of every grid in ``results_dir`` (plus runs of no grid)."""
    import pandas as pd

    results_dir = Path(results_dir)
    rows, known = [], set()
    for manifest in sorted((results_dir / "grids").glob("*.json")):
        doc = json.loads(manifest.read_text())
        for e in doc.get("experiments", []):
            run_dir = results_dir / e["run_dir"]
            known.add(run_dir.resolve())
            state, detail = experiment_state(run_dir, e.get("config_hash"))
            rows.append({"grid": doc.get("name", manifest.stem), "experiment": e["name"], "state": str(state),
                         "detail": detail, "run_dir": run_dir})
    runs = results_dir / "runs"
    if runs.is_dir():
        for run_dir in sorted(p for p in runs.iterdir() if p.is_dir() and p.resolve() not in known):
            state, detail = experiment_state(run_dir)
            rows.append({"grid": "-", "experiment": run_dir.name, "state": str(state), "detail": detail,
                         "run_dir": run_dir})
    _ask_slurm(rows)
    return pd.DataFrame(rows, columns=["grid", "experiment", "state", "detail"])


def print_status(results_dir: str | Path) -> Any:
    """Print queued / running / done / failed / interrupted per experiment, with counts; return the table."""
    import pandas as pd

    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"results directory {str(results_dir)!r} does not exist")
    table = status_table(results_dir)
    if not len(table):
        print(f"{results_dir}: no grids (grids/*.json) and no runs (runs/*) yet; start one with `nalkit run GRID.yaml`")
        return table
    with pd.option_context("display.max_rows", 1000, "display.max_colwidth", 80, "display.width", 200):
        print(table.to_string(index=False))
    for grid, part in table.groupby("grid", sort=False):
        counts = part.state.value_counts()
        print(f"{grid}: {len(part)} experiments: " + ", ".join(f"{counts.get(str(s), 0)} {s}" for s in STATES))
    return table
