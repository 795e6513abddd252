"""Read run records into tidy pandas frames (what the book's chapters use).

>>> runs = load_runs("results/runs")
>>> runs.runs      # one row per run: config columns + status + last/best test accuracy
>>> runs.epochs    # one row per (run, epoch): config columns + every metrics.csv column
>>> load_arrays(runs.runs.run_dir[0])   # per-sample arrays of one run

Every file read is checked against the run's manifest (checksums); a run whose record is damaged
raises :class:`nalkit.records.RecordError` naming the file, or is reported in ``runs.problems``
with ``strict=False``.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from .config import Config
from .records import RecordError, read_status, verify_record

# config values copied into every row (short names, as the chapters group by them): column -> dotted key
CONFIG_COLUMNS = {
    "dataset": "data.name",
    "train_subset": "data.train_subset",
    "noise_mode": "noise.mode",
    "noise_rate": "noise.rate",
    "noise_seed": "noise.seed",
    "model": "model.name",
    "method": "method.name",
    "lam": "method.nal.lam",
    "alpha": "method.nal.alpha",
    "es": "method.nal.es",
    "update_period": "method.nal.update_period",
    "update_when": "method.nal.update_when",
    "estimate_targets": "method.nal.estimate_targets",
    "attention": "method.nal.attention",
    "epochs": "optim.epochs",
    "batch_size": "optim.batch_size",
    "seed": "run.seed",
}


def config_value(cfg: Config, dotted: str) -> Any:
    """The value of ``section.key`` (or ``method.<method>.<key>``) of ``cfg``."""
    obj: Any = cfg
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass
class Runs:
    runs: pd.DataFrame
    epochs: pd.DataFrame
    problems: list[str] = field(default_factory=list)


def noise_label(mode: str, rate: float) -> str:
    """'sym 40 %' style label of a noise setting."""
    return "clean" if mode == "none" else f"{mode} {round(100 * rate):d} %"


def run_dirs(path: str | Path) -> list[Path]:
    """Run directories (those with a status.json) at or below ``path``."""
    path = Path(path)
    if (path / "status.json").is_file():
        return [path]
    return sorted(p.parent for p in path.rglob("status.json"))


def load_run(run_dir: str | Path) -> tuple[dict, pd.DataFrame]:
    """(summary row, per-epoch frame) of one run, verified against its manifest."""
    run_dir = Path(run_dir)
    env_path = run_dir / "environment.json"
    # every file read below is verified, environment.json included (its device/threads columns)
    verify_record(run_dir, ("config.yaml", "status.json", "metrics.csv")
                  + (("environment.json",) if env_path.is_file() else ()))
    # through Config: records written before the per-method config sections read the same way
    cfg = Config.from_dict(yaml.safe_load((run_dir / "config.yaml").read_text()), source=str(run_dir / "config.yaml"))
    status = read_status(run_dir)
    env = json.loads(env_path.read_text()) if env_path.is_file() else {}
    row: dict = {k: config_value(cfg, key) for k, key in CONFIG_COLUMNS.items()}
    row["noise"] = noise_label(row["noise_mode"], row["noise_rate"])
    row.update(run=run_dir.name, run_dir=str(run_dir), state=status.get("state"),
               epochs_done=status.get("epoch"), seconds=status.get("seconds"),
               actual_noise_rate=(status.get("noise") or {}).get("actual_rate"),
               device=env.get("device"), device_name=env.get("device_name"), threads=env.get("torch_threads"))
    text = (run_dir / "metrics.csv").read_text()
    epochs = pd.read_csv(io.StringIO(text)) if text.strip() else pd.DataFrame()
    if len(epochs):
        tests = epochs["test_acc"].dropna() if "test_acc" in epochs else pd.Series(dtype=float)
        row["last_test_acc"] = float(tests.iloc[-1]) if len(tests) else float("nan")
        row["best_test_acc"] = float(tests.max()) if len(tests) else float("nan")
        row["sec_per_epoch"] = float(epochs["seconds"].median())
        lastrow = epochs.iloc[-1]
        for col in ("memorized", "tau_auroc", "loss_auroc", "corrected_acc", "clean_acc", "mislabeled_acc",
                    "train_acc_noisy", "val_acc_noisy"):
            if col in epochs:
                row[f"last_{col}"] = float(lastrow[col])
        for k, v in row.items():
            if k in CONFIG_COLUMNS or k in ("noise", "run"):
                epochs[k] = v
    return row, epochs


def load_runs(path: str | Path = "results/runs", *, strict: bool = True, complete_only: bool = False) -> Runs:
    """Load every run record at or below ``path``.

    Args:
        strict: raise on a damaged record (default); otherwise skip it and list it in ``problems``.
        complete_only: keep only runs whose status is ``complete``.
    """
    rows, frames, problems = [], [], []
    for d in run_dirs(path):
        try:
            row, ep = load_run(d)
        except (RecordError, OSError, KeyError, ValueError) as err:
            if strict:
                raise
            problems.append(f"{d}: {err}")
            continue
        if complete_only and row["state"] != "complete":
            continue
        rows.append(row)
        frames.append(ep)
    runs = pd.DataFrame(rows)
    epochs = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return Runs(runs=runs, epochs=epochs, problems=problems)


def load_arrays(run_dir: str | Path) -> dict[str, np.ndarray]:
    """Per-sample arrays of a complete run (labels, noise mask, tau/loss/pred snapshots, test predictions)."""
    run_dir = Path(run_dir)
    verify_record(run_dir, ("arrays.npz",))
    with np.load(run_dir / "arrays.npz") as z:
        out = {k: z[k] for k in z.files}
    out["is_noisy"] = out["noisy_labels"] != out["clean_labels"]
    return out


def summarize(runs: pd.DataFrame, by: tuple[str, ...] = ("method", "noise"),
              values: tuple[str, ...] = ("last_test_acc", "best_test_acc")) -> pd.DataFrame:
    """mean, std and count over seeds of ``values`` for each group."""
    agg = runs.groupby(list(by))[list(values)].agg(["mean", "std", "count"])
    return agg
