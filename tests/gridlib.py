"""Shared helpers of the runner and executor tests: the smoke grid, rewritten for a temporary results dir."""

from pathlib import Path

import pandas as pd
import yaml

from nalkit.records import read_metrics

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "configs" / "grids" / "smoke.yaml"
TIMING = ["seconds", "eval_seconds"]


def write_grid(path: Path, results_dir: Path, **changes) -> Path:
    """The smoke grid with absolute paths, ``results_dir`` and ``changes`` (None deletes a key)."""
    grid = yaml.safe_load(SMOKE.read_text())
    grid.update(results_dir=str(results_dir), configs=[str(REPO / "configs/fmnist/cpu.yaml")],
                notebook=str(REPO / "book/experiments/experiment.ipynb"))
    for k, v in changes.items():
        if v is None:
            grid.pop(k, None)
        else:
            grid[k] = v
    path.write_text(yaml.safe_dump(grid, sort_keys=False))
    return path


def metrics(run_dir) -> pd.DataFrame:
    """A run's metrics without the timing columns (what must match between runs)."""
    return read_metrics(run_dir).drop(columns=TIMING)
