"""The experiment runner: a grid file -> one executed notebook and one run record per experiment.

``nalkit run GRID.yaml`` expands the grid, validates every experiment's config before anything is
written, skips experiments whose run is already complete, and executes
``book/experiments/experiment.ipynb`` once per remaining experiment with papermill. The notebook
trains through :func:`nalkit.train.train` (which resumes an interrupted run from its checkpoint) and
plots the run record; its executed copy lands beside the record, titled with the run name, for the
book. One failed experiment never stops the others.

Grid file format (YAML; relative paths are relative to the directory ``nalkit run`` is started in,
normally the repository root)::

    name: default                      # names <results_dir>/grids/<name>.json (what `nalkit status` reads)
    results_dir: results               # run records go to <results_dir>/runs/<run name>/
    notebook: book/experiments/experiment.ipynb   # null: train without a notebook (no executed copy)
    configs: [configs/fmnist/cpu.yaml] # axis 1: base config files
    overrides:                         # applied to every experiment (a mapping or section.key=value strings)
      optim.epochs: 40
    axes:                              # cartesian product, in this order; each entry is a mapping of
      noise:                           # section.key: value overrides ({} = change nothing)
        - {noise.mode: sym, noise.rate: 0.4}
        - {noise.mode: asym, noise.rate: 0.4}
      method:
        - {method.name: ce}
        - {method.name: nal, method.lam: 0.5}
      seed:
        - {run.seed: 0, noise.seed: 0}
        - {run.seed: 1, noise.seed: 1}
    slurm:                             # optional defaults for --executor slurm (CLI flags win)
      partition: gpu
      time_min: 240
      gpus: 1
      cpus: 8
      mem_gb: 32
      array_parallelism: 16
      slurm_account: myaccount         # any other slurm_* key goes to submitit verbatim

Overrides are applied in the order: the config file, ``overrides``, the axes (in file order), then
overrides given on the command line. Two axes that set the same key in one experiment are an error.
An experiment's name is its run name (:meth:`nalkit.config.Config.run_name`: dataset, noise, method,
seeds and the config digest), so two grids that share an experiment share its run record.

Layout of a results directory::

    <results_dir>/grids/<grid name>.json      the experiments a grid expects (for `nalkit status`)
    <results_dir>/runs/<run name>/            the run record (see nalkit.records), plus
        experiment.ipynb                      the executed notebook (title "# Experiment: <run name>")
        experiment-failed.ipynb               the partially executed notebook of a failed attempt
        failure.json                          error, full traceback, host, time of the last failure
        .lock                                 held while a runner works on the experiment
    <results_dir>/noise/                      content-addressed noise files
    <results_dir>/slurm/                      submitit's job folder (slurm / submitit_local executors)

Executors (``inline``, ``local``, ``slurm``, ``submitit_local``, ``debug``) live in
:mod:`nalkit.executors`; they all call :func:`execute_experiment`, whose per-experiment lock makes any
number of runners over the same results directory safe.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import socket
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import yaml

from ._io import atomic_write_text
from .config import Config, ConfigError
from .records import RecordError, read_status

DEFAULT_NOTEBOOK = "book/experiments/experiment.ipynb"
EXECUTED_NOTEBOOK = "experiment.ipynb"
FAILED_NOTEBOOK = "experiment-failed.ipynb"
PARTIAL_NOTEBOOK = ".experiment.partial.ipynb"
FAILURE_FILE = "failure.json"
LOCK_FILE = ".lock"
TITLE = "# Experiment"
GRID_KEYS = ("name", "results_dir", "notebook", "configs", "overrides", "axes", "slurm")
SLURM_KEYS = ("partition", "time_min", "gpus", "cpus", "mem_gb", "array_parallelism")


class GridError(ValueError):
    """The grid file is wrong; raised before anything is written. The message names the file and entry."""


class LockHeld(RuntimeError):
    """Another live process holds the experiment's lock."""

    def __init__(self, lock_path: Path, holder: dict[str, Any]) -> None:
        self.holder = holder
        super().__init__(f"{lock_path} is held by {_describe_holder(holder)}")


# --------------------------------------------------------------------------------------------
# grid expansion
# --------------------------------------------------------------------------------------------
@dataclass
class Experiment:
    """One point of a grid: a config file plus overrides, resolved and validated."""

    name: str  # the run name (Config.run_name())
    config: str  # absolute path of the base config file
    overrides: list[str]  # section.key=value strings, in application order
    cfg: Config  # the resolved config
    run_dir: Path  # <results_dir>/runs/<name>
    axes: dict[str, Any] = field(default_factory=dict)  # axis name -> the entry chosen (for messages)


@dataclass
class Grid:
    name: str
    path: Path
    results_dir: Path
    notebook: Path | None
    experiments: list[Experiment]
    slurm: dict[str, Any] = field(default_factory=dict)


def _format_value(value: Any) -> str:
    """``value`` as override text that ``yaml.safe_load`` reads back as the same value."""
    if isinstance(value, str):
        try:
            if yaml.safe_load(value) == value and value.strip() == value and value:
                return value
        except yaml.YAMLError:
            pass
    return json.dumps(value)


def _as_overrides(raw: Any, where: str) -> list[str]:
    """A mapping ``{section.key: value}`` or a list of ``section.key=value`` strings -> strings."""
    if raw is None:
        return []
    if isinstance(raw, dict):
        for k in raw:
            if not isinstance(k, str) or k.count(".") != 1:
                raise GridError(f"{where}: key {k!r} must look like section.key (e.g. method.lam)")
        return [f"{k}={_format_value(v)}" for k, v in raw.items()]
    if isinstance(raw, (list, tuple)):
        out = []
        for item in raw:
            if not isinstance(item, str) or "=" not in item:
                raise GridError(f"{where}: {item!r} must be a section.key=value string (or use a mapping)")
            out.append(item)
        return out
    raise GridError(f"{where}: expected a mapping of section.key: value or a list of section.key=value strings, "
                    f"got {type(raw).__name__}")


def _resolve(path: str | Path, base: Path) -> Path:
    p = Path(os.path.expanduser(str(path)))
    return p if p.is_absolute() else base / p


def load_grid(path: str | Path, extra_overrides: list[str] | tuple[str, ...] = (),
              results_dir: str | Path | None = None) -> Grid:
    """Read, expand and validate a grid file; raise :class:`GridError` on the first problem.

    Args:
        path: the grid YAML (format in the module docstring).
        extra_overrides: ``section.key=value`` strings applied last to every experiment.
        results_dir: overrides the grid's ``results_dir``.
    """
    path = Path(path)
    base = Path.cwd()
    if not path.is_file():
        raise GridError(f"grid file {str(path)!r} does not exist (grids live in configs/grids/)")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise GridError(f"grid file {str(path)!r} is not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise GridError(f"{path}: expected a mapping with keys {', '.join(GRID_KEYS)}")
    unknown = [k for k in raw if k not in GRID_KEYS]
    if unknown:
        raise GridError(f"{path}: unknown key(s) {', '.join(map(repr, unknown))}; a grid has {', '.join(GRID_KEYS)}")
    grid_name = raw.get("name") or path.stem
    if not isinstance(grid_name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", grid_name):
        raise GridError(f"{path}: name {grid_name!r} must be letters, digits, '.', '_' or '-' (it names a file)")
    res = _resolve(results_dir if results_dir is not None else raw.get("results_dir", "results"), base)
    notebook = raw.get("notebook", DEFAULT_NOTEBOOK)
    nb_path = None if notebook is None else _resolve(notebook, base)
    if nb_path is not None and not nb_path.is_file():
        raise GridError(f"{path}: notebook {str(notebook)!r} does not exist (expected {nb_path})")

    configs = raw.get("configs")
    if isinstance(configs, str):
        configs = [configs]
    if not configs or not isinstance(configs, list):
        raise GridError(f"{path}: 'configs' must be a non-empty list of config files, got {configs!r}")
    config_paths = []
    for c in configs:
        p = _resolve(str(c), base)
        if not p.is_file():
            raise GridError(f"{path}: config file {str(c)!r} does not exist (looked at {p})")
        config_paths.append(p)

    common = _as_overrides(raw.get("overrides"), f"{path}: overrides")
    axes_raw = raw.get("axes") or {}
    if not isinstance(axes_raw, dict):
        raise GridError(f"{path}: 'axes' must map an axis name to a list of override mappings")
    axes: list[tuple[str, list[tuple[dict, list[str]]]]] = []
    for axis, entries in axes_raw.items():
        if not isinstance(entries, list) or not entries:
            raise GridError(f"{path}: axis {axis!r} must be a non-empty list of override mappings, got {entries!r}")
        parsed = []
        for i, entry in enumerate(entries):
            if entry is None:
                entry = {}
            if not isinstance(entry, dict):
                raise GridError(f"{path}: axis {axis!r} entry {i} must be a mapping like "
                                f"{{method.name: nal, method.lam: 0.5}}, got {entry!r}")
            parsed.append((entry, _as_overrides(entry, f"{path}: axis {axis!r} entry {i}")))
        axes.append((str(axis), parsed))

    slurm = raw.get("slurm") or {}
    if not isinstance(slurm, dict):
        raise GridError(f"{path}: 'slurm' must be a mapping (keys {', '.join(SLURM_KEYS)} or slurm_*)")
    bad = [k for k in slurm if k not in SLURM_KEYS and not str(k).startswith("slurm_")]
    if bad:
        raise GridError(f"{path}: unknown slurm key(s) {bad}; use {', '.join(SLURM_KEYS)} or a slurm_* submitit key")

    experiments: list[Experiment] = []
    seen: dict[str, Experiment] = {}
    for cfg_path, *choice in itertools.product(config_paths, *[entries for _, entries in axes]):
        chosen = {axis: entry for (axis, _), (entry, _) in zip(axes, choice)}
        set_by: dict[str, str] = {}
        for axis, (entry, _) in zip([a for a, _ in axes], choice):
            for key in entry:
                if key in set_by:
                    raise GridError(f"{path}: axes {set_by[key]!r} and {axis!r} both set {key}; "
                                    f"move the key to one axis")
                set_by[key] = axis
        overrides = common + [o for _, (_, ovr) in zip(axes, choice) for o in ovr] + list(extra_overrides)
        label = f"{cfg_path.name} + {chosen}" if chosen else cfg_path.name
        try:
            cfg = Config.load(cfg_path, overrides).validate()
        except ConfigError as err:
            raise GridError(f"{path}: experiment {label}: {err}") from None
        name = cfg.run_name()
        if name in seen:
            raise GridError(f"{path}: experiments {label} and {seen[name].config} + {seen[name].axes} resolve to the "
                            f"same run {name}; remove the duplicate entry")
        exp = Experiment(name=name, config=str(cfg_path), overrides=overrides, cfg=cfg,
                         run_dir=res / "runs" / name, axes=chosen)
        seen[name] = exp
        experiments.append(exp)
    return Grid(name=grid_name, path=path.resolve(), results_dir=res, notebook=nb_path,
                experiments=experiments, slurm=dict(slurm))


def expand_grid(path: str | Path, extra_overrides: list[str] | tuple[str, ...] = ()) -> list[Experiment]:
    """The validated experiments of a grid file (see :func:`load_grid`)."""
    return load_grid(path, extra_overrides).experiments


# --------------------------------------------------------------------------------------------
# locks: one runner per experiment, across processes and hosts
# --------------------------------------------------------------------------------------------
def _job_id() -> str | None:
    """The Slurm job (array task) this process belongs to; a requeued job keeps it."""
    job = os.environ.get("SLURM_ARRAY_JOB_ID") or os.environ.get("SLURM_JOB_ID")
    if job and os.environ.get("SLURM_ARRAY_TASK_ID"):
        job = f"{job}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    return job


def _describe_holder(holder: dict[str, Any]) -> str:
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
    if holder.get("job") and holder.get("job") == _job_id():
        return holder.get("pid") == os.getpid()  # an earlier incarnation of this requeued job
    if holder.get("host") != socket.gethostname():
        return True
    return _pid_alive(int(holder["pid"]))


def acquire_lock(run_dir: str | Path) -> Path:
    """Create ``<run_dir>/.lock`` atomically; take over a stale one; raise :class:`LockHeld` otherwise."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    me = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
          "job": _job_id()}
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
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def release_lock(run_dir: str | Path) -> None:
    """Remove ``<run_dir>/.lock`` if this process holds it (never someone else's)."""
    holder = read_lock(run_dir)
    if holder and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
        (Path(run_dir) / LOCK_FILE).unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# one experiment
# --------------------------------------------------------------------------------------------
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
    state: str  # done | skipped | failed | submitted
    seconds: float = 0.0
    final_test_acc: float | None = None
    best_test_acc: float | None = None
    error: str = ""  # first line of the error (failed) or why it was skipped
    run_dir: str = ""
    requeues: int = 0  # times a cluster job running it was checkpointed and requeued


def is_complete(run_dir: str | Path, config_hash: str) -> bool:
    try:
        st = read_status(run_dir)
    except RecordError:
        return False
    return st.get("state") == "complete" and st.get("config_hash") == config_hash


def _result_from_status(spec: ExperimentSpec, state: str, seconds: float, error: str = "") -> ExperimentResult:
    try:
        st = read_status(spec.run_dir)
    except RecordError:
        st = {}
    return ExperimentResult(spec.name, state, seconds, st.get("final_test_acc"), st.get("best_test_acc"),
                            error, spec.run_dir)


@contextlib.contextmanager
def _kernel_environment(extra: dict[str, str]) -> Iterator[None]:
    """The kernel inherits os.environ at launch: drop MPLBACKEND=Agg (it hides figures), add ``extra``."""
    saved = dict(os.environ)
    os.environ.pop("MPLBACKEND", None)
    os.environ.update(extra)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _set_title(notebook: Path, name: str) -> str:
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.lstrip().startswith(TITLE):
            first, _, rest = cell.source.lstrip().partition("\n")
            cell.source = f"{TITLE}: {name}" + ("\n" + rest if rest else "")
            break
    else:
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(f"{TITLE}: {name}"))
    return nbformat.writes(nb)


def _relative(path: str, root: str) -> str:
    rel = os.path.relpath(path, root)
    return path if rel.startswith("..") else rel


def _execute_notebook(spec: ExperimentSpec) -> None:
    import papermill

    run_dir = Path(spec.run_dir)
    partial = run_dir / PARTIAL_NOTEBOOK
    # paths inside the repository are passed relative to it: the executed copy is published in the book
    params = dict(config=_relative(spec.config, spec.repo_root), overrides=list(spec.overrides),
                  results_dir=_relative(spec.results_dir, spec.repo_root),
                  run_dir=_relative(spec.run_dir, spec.repo_root), repo_root=spec.repo_root)
    with _kernel_environment(spec.env):
        papermill.execute_notebook(spec.notebook, str(partial), parameters=params, kernel_name="python3",
                                   cwd=spec.repo_root, progress_bar=False, log_output=False)
    atomic_write_text(run_dir / EXECUTED_NOTEBOOK, _set_title(partial, spec.name))
    partial.unlink(missing_ok=True)


def _write_failure(spec: ExperimentSpec, err: BaseException) -> str:
    run_dir = Path(spec.run_dir)
    ename = getattr(err, "ename", None)
    if ename is not None:  # papermill: the error happened in the kernel; its traceback is the useful one
        first = f"{ename}: {getattr(err, 'evalue', '')}"
        tb = _ANSI.sub("", "\n".join(getattr(err, "traceback", []) or []))
    else:
        first = f"{type(err).__name__}: {err}"
        tb = "".join(traceback.format_exception(err))
    first = first.strip().splitlines()[0] if first.strip() else type(err).__name__
    partial = run_dir / PARTIAL_NOTEBOOK
    failed_nb = None
    if partial.is_file():
        os.replace(partial, run_dir / FAILED_NOTEBOOK)
        failed_nb = str(run_dir / FAILED_NOTEBOOK)
    record = {"experiment": spec.name, "error": first, "type": ename or type(err).__name__, "traceback": tb,
              "host": socket.gethostname(), "pid": os.getpid(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "config": spec.config, "overrides": spec.overrides, "notebook": failed_nb}
    atomic_write_text(run_dir / FAILURE_FILE, json.dumps(record, indent=1))
    return first


def execute_experiment(spec: ExperimentSpec) -> ExperimentResult:
    """Run one experiment under its lock: notebook (or bare training), executed copy, failure record.

    Never raises for a failing experiment: the failure is written to ``<run_dir>/failure.json`` and
    returned as state ``failed``. An experiment locked by a live process is ``skipped``.
    """
    run_dir = Path(spec.run_dir)
    try:
        acquire_lock(run_dir)
    except LockHeld as held:
        return ExperimentResult(spec.name, "skipped", error=f"running elsewhere ({_describe_holder(held.holder)})",
                                run_dir=spec.run_dir)
    try:
        if is_complete(run_dir, spec.config_hash) and (
                spec.notebook is None or (run_dir / EXECUTED_NOTEBOOK).is_file()):
            return _result_from_status(spec, "skipped", 0.0, "complete")
        t0 = time.perf_counter()
        try:
            if spec.notebook is not None:
                _execute_notebook(spec)
            else:
                from .train import train

                with _kernel_environment(spec.env):
                    train(spec.config, spec.overrides, results_dir=spec.results_dir, run_dir=run_dir, progress=False)
            if not is_complete(run_dir, spec.config_hash):
                st = read_status(run_dir)
                raise RuntimeError(
                    f"{run_dir}: training returned but the run is not complete with config hash {spec.config_hash} "
                    f"(status: state {st.get('state')!r}, hash {st.get('config_hash')!r}); did nalkit's config "
                    f"change while the grid ran? Rerun the grid")
        except Exception as err:  # noqa: BLE001 -- one experiment's failure must not stop the grid
            return ExperimentResult(spec.name, "failed", time.perf_counter() - t0, error=_write_failure(spec, err),
                                    run_dir=spec.run_dir)
        (run_dir / FAILURE_FILE).unlink(missing_ok=True)
        (run_dir / FAILED_NOTEBOOK).unlink(missing_ok=True)
        return _result_from_status(spec, "done", time.perf_counter() - t0)
    finally:
        release_lock(run_dir)


# --------------------------------------------------------------------------------------------
# the grid
# --------------------------------------------------------------------------------------------
@dataclass
class GridSummary:
    grid: str
    table: Any  # pandas DataFrame: experiment, state, seconds, final_test_acc, best_test_acc, error
    manifest: Path  # <results_dir>/grids/<name>.json

    @property
    def ok(self) -> bool:
        """No experiment failed."""
        return not (self.table["state"] == "failed").any() if len(self.table) else True


def _write_grid_manifest(grid: Grid) -> Path:
    path = grid.results_dir / "grids" / f"{grid.name}.json"
    doc = {"name": grid.name, "grid_file": str(grid.path), "notebook": str(grid.notebook) if grid.notebook else None,
           "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "experiments": [{"name": e.name, "config": e.config, "overrides": e.overrides, "config_hash": e.cfg.digest(),
                            "run_dir": os.path.relpath(e.run_dir, grid.results_dir)} for e in grid.experiments]}
    atomic_write_text(path, json.dumps(doc, indent=1))
    return path


def _fmt_acc(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f} %"


def _spec(exp: Experiment, grid: Grid) -> ExperimentSpec:
    return ExperimentSpec(name=exp.name, config=exp.config, overrides=list(exp.overrides),
                          config_hash=exp.cfg.digest(), run_dir=str(exp.run_dir), results_dir=str(grid.results_dir),
                          notebook=str(grid.notebook) if grid.notebook else None, repo_root=str(Path.cwd()))


def run_grid(grid: str | Path, results_dir: str | Path | None = None, executor: str = "inline", workers: int = 1,
             overrides: list[str] | tuple[str, ...] = (), only: str | None = None,
             slurm: dict[str, Any] | None = None, wait: bool = True) -> GridSummary:
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

    Returns:
        A :class:`GridSummary`; ``summary.ok`` is False when any experiment failed.
    """
    import pandas as pd
    from ._progress import ProgressBar

    from .executors import check_executor, run_experiments

    check_executor(executor)
    g = load_grid(grid, overrides, results_dir)
    selected = g.experiments
    if only:
        selected = [e for e in g.experiments if only in e.name]
        if not selected:
            raise GridError(f"--only {only!r} matches none of the {len(g.experiments)} experiments of {g.path} "
                            f"(e.g. {g.experiments[0].name})")
    manifest = _write_grid_manifest(g)

    results: dict[str, ExperimentResult] = {}
    todo: list[ExperimentSpec] = []
    for exp in selected:
        spec = _spec(exp, g)
        if is_complete(exp.run_dir, spec.config_hash) and (
                g.notebook is None or (exp.run_dir / EXECUTED_NOTEBOOK).is_file()):
            results[exp.name] = _result_from_status(spec, "skipped", 0.0, "complete")
        else:
            todo.append(spec)
    print(f"grid {g.name}: {len(selected)} experiments ({len(results)} complete, {len(todo)} to run) -> "
          f"{g.results_dir}  [executor {executor}]", flush=True)
    slurm_params = {**g.slurm, **{k: v for k, v in (slurm or {}).items() if v is not None}}
    bar = ProgressBar(total=len(todo), desc=g.name, unit="exp", file=sys.stderr, disable=not todo, dynamic_ncols=True)
    try:
        for res in run_experiments(todo, executor, workers=workers, results_dir=g.results_dir,
                                   slurm=slurm_params, wait=wait):
            results[res.name] = res
            bar.update(1)
            if res.state == "done":
                line = f"done     {res.name}  {res.seconds:.0f} s  test acc final {_fmt_acc(res.final_test_acc)} " \
                       f"best {_fmt_acc(res.best_test_acc)}"
            elif res.state == "failed":
                line = f"FAILED   {res.name}  {res.error}  (traceback: {Path(res.run_dir) / FAILURE_FILE})"
            else:
                line = f"{res.state:8s} {res.name}  {res.error}"
            ProgressBar.write(line, file=sys.stderr)
    finally:
        bar.close()

    rows = [asdict(results[e.name]) if e.name in results else asdict(ExperimentResult(e.name, "skipped", error="not run"))
            for e in selected]
    table = pd.DataFrame(rows, columns=["name", "state", "seconds", "final_test_acc", "best_test_acc", "error"])
    table = table.rename(columns={"name": "experiment"})
    summary = GridSummary(grid=g.name, table=table, manifest=manifest)
    counts = table.state.value_counts().to_dict()
    with pd.option_context("display.max_rows", 500, "display.max_colwidth", 70, "display.width", 200):
        print(table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    print(f"grid {g.name}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())), flush=True)
    return summary


# --------------------------------------------------------------------------------------------
# status
# --------------------------------------------------------------------------------------------
def experiment_state(run_dir: str | Path, config_hash: str | None = None) -> tuple[str, str]:
    """(state, detail) of one experiment from its run directory alone.

    States: ``done`` (complete), ``running`` (lock held by a live process), ``failed`` (failure.json,
    not complete), ``interrupted`` (started, no live runner: a rerun resumes it), ``queued``.
    """
    run_dir = Path(run_dir)
    try:
        st = read_status(run_dir)
    except RecordError as err:
        return "failed", str(err)
    if st.get("state") == "complete" and (config_hash is None or st.get("config_hash") == config_hash):
        acc = st.get("final_test_acc")
        return "done", f"final test acc {_fmt_acc(acc)}"
    holder = read_lock(run_dir)
    progress = f"epoch {st.get('epoch', 0)}/{st.get('epochs', '?')}" if st else ""
    if lock_is_live(holder):
        return "running", f"{progress} {_describe_holder(holder)}".strip()
    failure = run_dir / FAILURE_FILE
    if failure.is_file():
        try:
            return "failed", json.loads(failure.read_text()).get("error", "")
        except json.JSONDecodeError:
            return "failed", f"{failure} is unreadable"
    if st.get("state") == "running":
        return "interrupted", f"{progress}; rerun to resume"
    return "queued", ""


STATES = ("done", "running", "failed", "interrupted", "queued")


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
            rows.append({"grid": doc.get("name", manifest.stem), "experiment": e["name"], "state": state,
                         "detail": detail})
    runs = results_dir / "runs"
    if runs.is_dir():
        for run_dir in sorted(p for p in runs.iterdir() if p.is_dir() and p.resolve() not in known):
            state, detail = experiment_state(run_dir)
            rows.append({"grid": "-", "experiment": run_dir.name, "state": state, "detail": detail})
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
        print(f"{grid}: {len(part)} experiments: " + ", ".join(f"{counts.get(s, 0)} {s}" for s in STATES))
    return table
