"""Grid files: the experiments of one study, expanded and validated before anything runs.

A grid is a YAML file naming base configs and axes of overrides; :func:`load_grid` expands the
cartesian product into :class:`Experiment` objects, each with a validated :class:`nalkit.config.Config`
and its run directory. Nothing is written here.

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
        - {method.name: nal, method.nal.lam: 0.5}
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
      slurm_max_num_timeout: 10        # time-outs after which a task is still requeued (submitit's default: 3)

Overrides are applied in the order: the config file, ``overrides``, the axes (in file order), then
overrides given on the command line. Two axes that set the same key in one experiment are an error.
An experiment's name is its run name (:meth:`nalkit.config.Config.run_name`: dataset, noise, method,
seeds and the config digest), so two grids that share an experiment share its run record.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .config import Config, ConfigError

DEFAULT_NOTEBOOK = "book/experiments/experiment.ipynb"
GRID_KEYS = ("name", "results_dir", "notebook", "configs", "overrides", "axes", "slurm")
SLURM_KEYS = ("partition", "time_min", "gpus", "cpus", "mem_gb", "array_parallelism")


class GridError(ValueError):
    """The grid file is wrong; raised before anything is written. The message names the file and entry."""



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
            if not isinstance(k, str) or "." not in k:
                raise GridError(f"{where}: key {k!r} must look like section.key (e.g. method.nal.lam)")
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
                                f"{{method.name: nal, method.nal.lam: 0.5}}, got {entry!r}")
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
