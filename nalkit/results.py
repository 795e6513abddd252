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
from collections.abc import Iterable, Sequence
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
    "noisy_val_size": "data.noisy_val_size",
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
    """What :func:`load_runs` returns: ``runs`` (one row per run), ``epochs`` (one row per run and epoch), and
    ``problems`` (the damaged records skipped with ``strict=False``)."""

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
        for col in ("memorized", "tau_auroc", "loss_auroc", "tau_clean", "tau_mislabeled", "corrected_acc",
                    "corrected_acc_mislabeled", "clean_acc", "mislabeled_acc", "train_acc_noisy", "val_acc_noisy",
                    "val_acc_clean"):
            if col in epochs:
                row[f"last_{col}"] = float(lastrow[col])
        for k, v in row.items():
            if k in CONFIG_COLUMNS or k in ("noise", "run"):
                epochs[k] = v
    return row, epochs


def load_runs(path: str | Path = "results/runs", *, strict: bool = True, complete_only: bool = False) -> Runs:
    """Load every run record at or below ``path``.

    Args:
        path: a results directory (every run directory below it) or one run directory.
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


# --------------------------------------------------------------------------------------------
# analysis: what the chapters compute from the records
# --------------------------------------------------------------------------------------------
#: Two-sided 95 % quantiles of Student's t by degrees of freedom (1..30); the normal 1.960 beyond.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t_quantile_975(df: int) -> float:
    """The 97.5 % quantile of Student's t with ``df`` degrees of freedom (a 95 % two-sided interval)."""
    if df < 1:
        return float("nan")
    return _T975[df - 1] if df <= len(_T975) else 1.960


def summarize(runs: pd.DataFrame, by: Sequence[str] = ("method", "noise"),
              values: Sequence[str] = ("last_test_acc", "best_test_acc")) -> pd.DataFrame:
    """Mean, standard deviation (ddof 1) and count over seeds of ``values``, one row per group of ``by``.

    Returns a tidy frame: the ``by`` columns, then ``<value>_mean``, ``<value>_std`` per value and ``n``.
    """
    g = runs.groupby(list(by), sort=False)
    out = g.size().rename("n").to_frame()
    for v in values:
        out[f"{v}_mean"] = g[v].mean()
        out[f"{v}_std"] = g[v].std(ddof=1)
    cols = [c for v in values for c in (f"{v}_mean", f"{v}_std")] + ["n"]
    return out[cols].reset_index()


@dataclass
class Difference:
    """``a - b`` paired over seeds: mean, spread and a 95 % t-interval of the mean difference."""

    a: str
    b: str
    n: int
    mean: float
    std: float
    low: float
    high: float

    @property
    def within_noise(self) -> bool:
        """True when the interval covers 0 (or there are too few pairs for one), so no difference is shown."""
        return not (self.low > 0 or self.high < 0)

    def sentence(self, what: str = "points", scale: float = 100.0, digits: int = 1) -> str:
        """``"+9.7 points (95 % CI 6.1 to 13.3, 3 paired seeds)"`` or ``"... : within noise"``."""
        if self.n < 2:
            return f"{scale * self.mean:+.{digits}f} {what} (one seed: no interval)"
        text = (f"{scale * self.mean:+.{digits}f} {what} (95 % CI {scale * self.low:+.{digits}f} to "
                f"{scale * self.high:+.{digits}f}, {self.n} paired seeds)")
        return text + (", within noise" if self.within_noise else "")


def paired_difference(runs: pd.DataFrame, value: str, a: Any, b: Any, column: str = "method",
                      pair: Sequence[str] = ("seed",)) -> Difference:
    """The difference ``a - b`` of ``value`` between the runs with ``column == a`` and ``column == b``.

    Runs are paired on ``pair`` (the seed: the same noisy labels and initial weights for both), the
    mean difference gets a t-interval from the spread of the paired differences. Only complete pairs count.
    """
    pair = list(pair)
    left = runs[runs[column] == a].set_index(pair)[value]
    right = runs[runs[column] == b].set_index(pair)[value]
    if left.index.has_duplicates or right.index.has_duplicates:
        raise ValueError(f"several runs share {pair} within {column}={a!r} or {b!r}; pass a frame of one setting")
    d = (left - right).dropna()
    n = len(d)
    mean = float(d.mean()) if n else float("nan")
    std = float(d.std(ddof=1)) if n > 1 else float("nan")
    half = t_quantile_975(n - 1) * std / np.sqrt(n) if n > 1 else float("nan")
    return Difference(str(a), str(b), n, mean, std, mean - half, mean + half)


def rank_table(runs: pd.DataFrame, value: str = "last_test_acc", by: str = "noise",
               column: str = "method") -> pd.DataFrame:
    """Rank (1 = highest mean ``value``) of every ``column`` entry within each ``by`` group; rows: groups."""
    means = runs.groupby([by, column], sort=False)[value].mean().unstack(column)
    return means.rank(axis=1, ascending=False, method="min").astype("Int64")


@dataclass
class Selection:
    """A hyper-parameter chosen on the noisy validation set: per-candidate table and the choice."""

    parameter: str
    table: pd.DataFrame  # one row per candidate: <metric>_mean, _std, n (and per setting, if several)
    chosen: float
    runner_up: float | None
    margin: Difference | None  # chosen - runner-up, paired over (setting, seed)


def select(runs: pd.DataFrame, parameter: str = "lam", metric: str = "last_val_acc_noisy",
           settings: str = "noise") -> Selection:
    """Choose the ``parameter`` value with the highest mean ``metric`` over settings and seeds (the paper's rule:
    one value per dataset, tuned on a noisy validation set drawn from the noisy training set; never the test set).

    ``metric`` must be a validation column (``*val_acc*``): selecting on test accuracy is refused.
    """
    if "val" not in metric:
        raise ValueError(f"select on a validation metric, not {metric!r}: the test set never chooses anything")
    frame = runs.dropna(subset=[metric])
    if not len(frame):
        raise ValueError(f"no run has {metric}: were the runs made with data.noisy_val_size or data.val_fraction?")
    per = frame.groupby([parameter, settings])[metric].mean().unstack(settings)
    table = summarize(frame, by=[parameter], values=[metric]).set_index(parameter).sort_index()
    table = table.join(per)
    order = table[f"{metric}_mean"].sort_values(ascending=False)
    chosen = float(order.index[0])
    runner = float(order.index[1]) if len(order) > 1 else None
    margin = None
    if runner is not None:
        keyed = frame.assign(_pair=frame[settings].astype(str) + "/" + frame["seed"].astype(str))
        margin = paired_difference(keyed, metric, chosen, runner, column=parameter, pair=["_pair"])
    return Selection(parameter, table, chosen, runner, margin)


def select_lambda(runs: pd.DataFrame, metric: str = "last_val_acc_noisy") -> Selection:
    """:func:`select` for NAL's lambda (``method.nal.lam``)."""
    return select(runs[runs.method == "nal"], "lam", metric)


def load_snapshots(run_dirs: Iterable[str | Path], key: str = "tau", epochs: Sequence[int] | None = None) -> pd.DataFrame:
    """Per-sample snapshot arrays of several runs as one tidy frame.

    Columns: ``run``, ``epoch`` (the snapshot epoch, or the last epoch for ``final``), ``sample``, ``value``
    (the ``key`` array: tau, loss, pred or q_argmax), ``is_noisy``. ``epochs`` limits the snapshot epochs;
    the final arrays (``final_<key>``) come as epoch ``-1`` when asked for with ``-1``.
    """
    frames = []
    for d in run_dirs:
        a = load_arrays(d)
        found = sorted(int(k.rsplit("_e", 1)[1]) for k in a if k.startswith(f"{key}_e"))
        for e in [*found, -1]:
            if epochs is not None and e not in epochs:
                continue
            arr = a.get(f"{key}_e{e}" if e >= 0 else f"final_{key}")
            if arr is None:
                continue
            frames.append(pd.DataFrame({"run": Path(d).name, "epoch": e, "sample": np.arange(len(arr)),
                                        "value": arr, "is_noisy": a["is_noisy"]}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["run", "epoch", "sample", "value", "is_noisy"])


#: The NAL variants of the ablation chapter, by the config values that define them.
def nal_variant(row: Any) -> str:
    """A short name of which part of NAL a run keeps: ``full``, ``no target estimation``, ``no attention``,
    ``alpha 0.7``, ``update every epoch``... (from a row of :func:`load_runs`'s ``runs``)."""
    if row["method"] != "nal":
        return row["method"]
    parts = []
    if row.get("estimate_targets") is False or row.get("estimate_targets") == 0:
        parts.append("no target estimation")
    if row.get("attention") is False or row.get("attention") == 0:
        parts.append("no attention (τ = 1)")
    if row.get("alpha") not in (None, 0.9) and not pd.isna(row.get("alpha")):
        parts.append(f"α = {row['alpha']:g}")
    when, period = row.get("update_when"), row.get("update_period")
    if when == "epoch":
        parts.append("q updated once per epoch")
    elif period not in (None, 1) and not pd.isna(period):
        parts.append(f"q updated in epochs divisible by {int(period)}")
    return ", ".join(parts) or "full NAL"


def snapshot_separation(snaps: pd.DataFrame) -> pd.DataFrame:
    """How well a snapshot score separates mislabeled samples, per run and epoch of a :func:`load_snapshots` frame.

    Columns: ``run``, ``epoch``, ``auroc`` (AUROC of ``1 - value`` for finding the mislabeled samples: for tau, low
    means suspect), ``median_clean``, ``median_mislabeled``.
    """
    from .metrics import auroc

    rows = []
    for (run, epoch), g in snaps.groupby(["run", "epoch"], sort=True):
        noisy = g.is_noisy.to_numpy(bool)
        value = g.value.to_numpy(float)
        rows.append({"run": run, "epoch": epoch, "auroc": auroc(1.0 - value, noisy),
                     "median_clean": float(np.median(value[~noisy])) if (~noisy).any() else float("nan"),
                     "median_mislabeled": float(np.median(value[noisy])) if noisy.any() else float("nan")})
    return pd.DataFrame(rows, columns=["run", "epoch", "auroc", "median_clean", "median_mislabeled"])
