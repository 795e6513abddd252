"""Helpers shared by the book's chapters: where the records are, how to describe their scale, plot styling.

Chapters only *read* run records (through :mod:`nalkit.results`); nothing here trains or recomputes what the
library owns. The results root defaults to ``<repo>/results`` and can be pointed elsewhere with the
environment variable ``NALKIT_RESULTS`` (it must hold ``runs/``, and optionally ``search/`` and
``benchmarks/``), e.g. to preview the book on another machine's records.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import yaml


def repo_root() -> Path:
    """The repository root: the first parent of the working directory holding ``_toc.yml``."""
    here = Path.cwd().resolve()
    for d in (here, *here.parents):
        if (d / "_toc.yml").is_file():
            return d
    raise FileNotFoundError(f"no _toc.yml above {here}; run the chapters from inside the repository")


ROOT = repo_root()
RESULTS = Path(os.environ.get("NALKIT_RESULTS") or ROOT / "results")
RUNS = RESULTS / "runs"
SEARCH = RESULTS / "search"
BENCHMARKS = RESULTS / "benchmarks"

#: Appendix Table 2 of Lu, Bo, He (2022): Clothing1M, ResNet-50. The paper's numbers, not ours.
#: († ImageNet-pretrained, ‡ trained from scratch; "-" = not reported.)
PAPER_TABLE2 = pd.DataFrame(
    [
        ("SCE", "†", 64, "7.39 GB", 71.02),
        ("SCE", "‡", 64, "7.39 GB", 69.40),
        ("SELC", "†", 64, "7.39 GB", 74.01),
        ("SELC", "‡", 64, "7.39 GB", 72.02),
        ("ELR", "†", 64, "-", 72.87),
        ("ELR+", "†", 64, "21.70 GB", 74.81),
        ("ELR+", "‡", 64, "21.70 GB", 72.80),
        ("DivideMix", "†", 32, "19.03 GB", 74.76),
        ("DivideMix", "‡", 32, "19.03 GB", 70.29),
        ("NAL", "‡", 64, "7.46 GB", 73.58),
    ],
    columns=["method", "init", "batch size", "GPU memory", "accuracy (%)"],
)


CLASS_NAMES = {
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"],
}


def paper_table2() -> pd.DataFrame:
    """Table 2 with the init marker joined to the method name, indexed by method."""
    t = PAPER_TABLE2.copy()
    t["method"] = t["method"] + t.pop("init")
    return t.set_index("method")


def setup_plots() -> None:
    """Inline PNG figures (also when MPLBACKEND=Agg is inherited, as under pytest) and the book's style."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            shell.run_line_magic("matplotlib", "inline")
    except ImportError:
        pass
    plt.rcParams.update({
        "figure.dpi": 110, "savefig.dpi": 110, "figure.figsize": (7.0, 3.6), "axes.grid": True,
        "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False, "font.size": 9,
        "legend.frameon": False,
    })


def read_env(run_dir: str | Path) -> dict:
    p = Path(run_dir) / "environment.json"
    return json.loads(p.read_text()) if p.is_file() else {}


def read_config(run_dir: str | Path) -> dict:
    return yaml.safe_load((Path(run_dir) / "config.yaml").read_text())


def _join(values) -> str:
    values = [str(v) for v in values]
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " and " + values[-1]


def scale_sentence(runs: pd.DataFrame) -> str:
    """One Markdown sentence stating the data, model, epochs and hardware of ``runs`` (from the records)."""
    if runs is None or not len(runs):
        return "No complete run records were found, so this page shows no measured numbers yet."
    envs = [read_env(d) for d in runs.run_dir]
    hw = sorted({f"{e.get('device', '?')} ({e.get('device_name', '?')}, {e.get('cpu_count', '?')} cores visible, "
                 f"{e.get('torch_threads', '?')} torch threads)" for e in envs})
    subsets = sorted({"full training set" if pd.isna(s) else f"{int(s):,}-image training subset"
                      for s in runs.train_subset})
    datasets = sorted(set(runs.dataset))
    models = sorted(set(runs.model))
    epochs = sorted({int(e) for e in runs.epochs})
    return (f"**Scale of these records:** {len(runs)} complete runs on real {_join(datasets)} "
            f"({_join(subsets)}), model {_join(models)}, {_join(epochs)} epochs, trained on {_join(hw)}. "
            "This is far below the paper's scale (CIFAR/ResNet-34 for 500 epochs on an A100); "
            "see [](paper_scale.md) for the paper-scale recipes.")


def pct(x: float, digits: int = 1) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.{digits}f} %"


def confusion_ax(ax, m: np.ndarray, title: str, class_names=None, annotate: bool = True) -> None:
    """Draw a row-normalised confusion matrix (rows = clean class)."""
    ax.imshow(m, cmap="Blues", vmin=0, vmax=1)
    c = m.shape[0]
    ax.set_xticks(range(c))
    ax.set_yticks(range(c))
    if class_names is not None:
        ax.set_xticklabels(class_names, rotation=90, fontsize=6)
        ax.set_yticklabels(class_names, fontsize=6)
    ax.set_xlabel("label")
    ax.set_ylabel("clean label")
    ax.set_title(title, fontsize=9)
    ax.grid(False)
    if annotate and c <= 10:
        for i in range(c):
            for j in range(c):
                if m[i, j] >= 0.005:
                    ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=5.5,
                            color="white" if m[i, j] > 0.5 else "black")
