"""Where the records are, the book's settings and names, and how numbers and tables are printed."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from nalkit import plotting
from nalkit.datasets import FASHION_MNIST_CLASSES
from nalkit.results import load_runs, nal_variant


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
    "fashion_mnist": list(FASHION_MNIST_CLASSES),
}


#: Fashion-MNIST's class names short enough for a matrix's ticks ("Ankle boot" as "Boot", "T-shirt/top" as "T-shirt")
SHORT_CLASS_NAMES = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"]


#: The three noise settings of the appendix's figures, in the order every chapter shows them.
SETTINGS = ["sym 40 %", "sym 80 %", "asym 40 %"]


def paper_table2() -> pd.DataFrame:
    """Table 2 with the init marker joined to the method name, indexed by method."""
    t = PAPER_TABLE2.copy()
    t["method"] = t["method"] + t.pop("init")
    return t.set_index("method")


def setup_plots() -> None:
    """Inline PNG figures (also when MPLBACKEND=Agg is inherited, as under pytest) in the book's style."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            shell.run_line_magic("matplotlib", "inline")
    except ImportError:
        pass
    plotting.use_style()


@functools.lru_cache(maxsize=1)
def all_runs() -> tuple[pd.DataFrame, pd.DataFrame, tuple[str, ...]]:
    """(runs, epochs, problems) of every complete record under ``RUNS``, with ``setting`` and ``variant``."""
    if not RUNS.is_dir():
        return pd.DataFrame(), pd.DataFrame(), ()
    loaded = load_runs(RUNS, complete_only=True, strict=False)
    runs, epochs = loaded.runs, loaded.epochs
    if len(runs):
        runs["setting"] = runs.noise
        runs["variant"] = [nal_variant(r) for r in runs.to_dict("records")]
        runs["noisy_val"] = runs.noisy_val_size.notna()
        epochs = epochs.merge(runs[["run", "setting", "variant", "noisy_val"]], on="run")
    return runs, epochs, tuple(loaded.problems)


def _join(values) -> str:
    values = [str(v) for v in values]
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " and " + values[-1]


def scale_sentence(runs: pd.DataFrame) -> str:
    """One Markdown sentence stating the data, model, epochs and hardware of ``runs`` (from the records)."""
    if runs is None or not len(runs):
        return "No complete run records were found, so this page shows no measured numbers yet."
    from nalkit.results import hardware_name

    hw = sorted({hardware_name({}) if pd.isna(h) else h for h in runs.hardware})
    subsets = sorted({"full training set" if pd.isna(s) else f"{int(s):,}-image training subset"
                      for s in runs.train_subset})
    return (f"**Scale of these records:** {len(runs)} complete runs on real {_join(sorted(set(runs.dataset)))} "
            f"({_join(subsets)}), model {_join(sorted(set(runs.model)))}, "
            f"{_join(sorted({int(e) for e in runs.epochs}))} epochs, trained on {_join(hw)}. This is far below "
            "the paper's scale (CIFAR/ResNet-34 for 500 epochs on an A100); see [](paper_scale.md) for the "
            "paper-scale recipes.")


def pct(x: float, digits: int = 1) -> str:
    """``0.8431`` -> ``"84.3 %"``; ``n/a`` for a missing value."""
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.{digits}f} %"


def pm(values: Sequence[float] | pd.Series, scale: float = 100.0, digits: int = 1) -> str:
    """Mean ± standard deviation over seeds, e.g. ``"84.3 ± 0.5"`` (the mean alone for one value)."""
    v = pd.Series(values, dtype=float).dropna()
    if not len(v):
        return "–"
    if len(v) == 1:
        return f"{scale * v.iloc[0]:.{digits}f}"
    return f"{scale * v.mean():.{digits}f} ± {scale * v.std(ddof=1):.{digits}f}"


def _cell(value) -> str:
    text = "–" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def table_md(frame: pd.DataFrame, caption: str, name: str, index: bool = True, align: str = "center") -> str:
    """A numbered, captioned MyST table (``{table}`` directive) of ``frame``, for ``{glue:md}`` with ``:format: myst``.

    Tables are numbered as tables (Table 1, ...) and referenced with ``{numref}`tab-...```; cells should already be
    formatted strings rounded to what they can support.
    """
    df = frame.reset_index() if index else frame
    header = "| " + " | ".join(_cell(c) for c in df.columns) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    rows = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    body = "\n".join([header, rule, *rows])
    # a colon fence: a backtick fence's info string may not contain backticks (CommonMark), captions often do
    return f":::{{table}} {caption}\n:name: {name}\n:align: {align}\n\n{body}\n:::\n"


def bullets(lines: Sequence[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)


def grid_names(grid: str) -> set[str]:
    """Run names of the experiments that ``results/grids/<grid>.json`` expects (empty if it was never run)."""
    path = RESULTS / "grids" / f"{grid}.json"
    return {e["name"] for e in json.loads(path.read_text()).get("experiments", [])} if path.is_file() else set()


def grid_runs(grid: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs, epochs) of the complete records of one grid."""
    runs, epochs, _ = all_runs()
    names = grid_names(grid)
    if not len(runs) or not names:
        return runs.iloc[:0], epochs.iloc[:0]
    return runs[runs.run.isin(names)].copy(), epochs[epochs.run.isin(names)].copy()


def settings_of(runs: pd.DataFrame) -> list[str]:
    """The noise settings present, in the book's order (the appendix's three first)."""
    present = list(dict.fromkeys(runs.setting)) if len(runs) else []
    return [s for s in SETTINGS if s in present] + sorted(s for s in present if s not in SETTINGS)


def join_and(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = list(items)
    return " and ".join(items) if len(items) < 3 else ", ".join(items[:-1]) + " and " + items[-1]


def placeholder_figure(text: str):
    """A one-line figure that says why the figure is missing (e.g. no records of a setting yet)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.2, 0.8))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center")
    return fig


def flipped(runs: pd.DataFrame, column: str = "noise") -> dict[str, str]:
    """Each nominal setting of ``runs`` with the share of labels its noise actually changed (mean over the runs):
    ``{"asym 40 %": "asym 40 % (21 % flipped)"}``, for row labels and table headers."""
    from nalkit.results import mislabeled_fraction

    if not len(runs):
        return {}
    return {s: f"{s} ({100 * r:.0f} % flipped)" for s, r in mislabeled_fraction(runs, column).items()}


def _seeds(n: int) -> str:
    return f"{n} seed{'s' if n != 1 else ''}"


def _where(found: Sequence[str], have: Sequence[str]) -> str:
    return "every setting" if set(found) >= set(have) else (join_and(found) if found else "no setting")


PARAMETER_NAMES = {"nal": "λ", "gce": "q", "sce": "α (β 1)", "elr": "λ (β 0.7)", "selc": "turning point"}


def method_name(method: str) -> str:
    """The name tables and sentences give a method (``ce + early stop`` -> ``CE + early stop``)."""
    from nalkit.results import EARLY_STOPPED

    return "CE + early stop" if method == EARLY_STOPPED else method.upper()


def _span(values: Sequence[int]) -> str:
    """``0–4`` for consecutive integers, ``0, 2 and 5`` otherwise."""
    values = [int(v) for v in values]
    if len(values) > 2 and values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}–{values[-1]}"
    return join_and([str(v) for v in values])
