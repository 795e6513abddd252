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
from .records import RecordError, decode_arrays, read_status, verify_record

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
    "gce_q": "method.gce.q",
    "sce_alpha": "method.sce.alpha",
    "sce_beta": "method.sce.beta",
    "elr_beta": "method.elr.beta",
    "elr_lam": "method.elr.lam",
    "selc_start": "method.selc.start",
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
    """Per-sample arrays of a complete run (labels, noise mask, tau/loss/pred snapshots, test predictions).

    Decoded by :func:`nalkit.records.decode_arrays`: labels and predictions int64, losses and margins float32,
    ``tau``/``phi`` float64 (with their stored logits as ``tau_logit``/``phi_logit``), for records of every
    format.
    """
    run_dir = Path(run_dir)
    verify_record(run_dir, ("arrays.npz",))
    with np.load(run_dir / "arrays.npz") as z:
        out = decode_arrays({k: z[k] for k in z.files})
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

    def sentence(self, what: str = "points", scale: float = 100.0, digits: int = 1, pairs: str = "paired seeds") -> str:
        """``"+9.7 points (95 % CI 6.1 to 13.3, 3 paired seeds)"`` or ``"... : within noise"``."""
        if self.n == 0:
            return "no paired runs"
        if self.n < 2:
            return f"{scale * self.mean:+.{digits}f} {what} (one pair: no interval)"
        text = (f"{scale * self.mean:+.{digits}f} {what} (95 % CI {scale * self.low:+.{digits}f} to "
                f"{scale * self.high:+.{digits}f}, {self.n} {pairs})")
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
        es = row.get("es")
        start = f" from epoch {int(es)}" if es is not None and not pd.isna(es) else ""
        parts.append(f"q updated in epochs divisible by {int(period)}{start}")
    return ", ".join(parts) or "full NAL"


#: each method's main hyperparameters: (column of load_runs, symbol in the book)
METHOD_SETTINGS = {"nal": (("lam", "λ"),), "gce": (("gce_q", "q"),), "sce": (("sce_alpha", "α"), ("sce_beta", "β")),
                   "elr": (("elr_lam", "λ"), ("elr_beta", "β")), "selc": (("selc_start", "turning point"),)}


def describe_method(row: Any) -> str:
    """The method of a run with its main settings: ``GCE (q = 0.7)``, ``NAL (λ = 2, no attention (τ = 1))``."""
    method = row["method"]
    settings = [f"{symbol} = {row[col]:g}" for col, symbol in METHOD_SETTINGS.get(method, ())
                if row.get(col) is not None and not pd.isna(row.get(col))]
    if method == "selc" and settings:
        settings = [f"turning point epoch {int(row['selc_start'])}"]
    if method == "nal" and nal_variant(row) != "full NAL":
        settings.append(nal_variant(row))
    return method.upper() + (f" ({', '.join(settings)})" if settings else "")


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


# --------------------------------------------------------------------------------------------
# reporting rules: which number of a run's per-epoch record the paper's protocol reports
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reported:
    """One reported number of a run, with the epoch it comes from and the rule that chose it."""

    metric: str  # the metrics.csv column, e.g. "test_acc", "ilsvrc12_val_top5"
    what: str  # what the column measures on this dataset, e.g. "WebVision val top-1"
    value: float  # accuracy in [0, 1]
    epoch: int  # 1-indexed epoch of the record the value is read from
    rule: str  # "last epoch", "at the best clean_val_acc epoch (0.71)", "maximum over epochs"
    source: str  # where the rule comes from (appendix, the authors' script and lines)
    note: str = ""  # e.g. that a baseline ran on NAL's schedule

    @property
    def label(self) -> str:
        """``"WebVision val top-1 = 68.10 % (maximum over epochs: epoch 412; ...)"``."""
        text = f"{self.what} = {100 * self.value:.2f} % ({self.rule}: epoch {self.epoch}; {self.source})"
        return f"{text}; {self.note}" if self.note else text


def _one_run(epochs: pd.DataFrame) -> pd.DataFrame:
    if "run" in epochs and epochs["run"].nunique() > 1:
        raise ValueError(f"pass the epochs of one run, not of {epochs['run'].nunique()} (filter on the 'run' column)")
    if "epoch" not in epochs:
        raise ValueError("the frame has no 'epoch' column: pass a run's metrics.csv rows (load_run(...)[1])")
    return epochs.sort_values("epoch", kind="stable")


def _evaluated(epochs: pd.DataFrame, metric: str) -> pd.DataFrame:
    if metric not in epochs:
        raise ValueError(f"the run recorded no {metric!r}; its columns: {', '.join(map(str, epochs.columns))}")
    rows = epochs[epochs[metric].notna()]
    if not len(rows):
        raise ValueError(f"{metric!r} was never evaluated in this run")
    return rows


def last_epoch(epochs: pd.DataFrame, metric: str = "test_acc", *, what: str | None = None,
               source: str = "", note: str = "") -> Reported:
    """``metric`` at the last epoch that evaluated it (the trainer always evaluates the final epoch)."""
    row = _evaluated(_one_run(epochs), metric).iloc[-1]
    return Reported(metric, what or metric, float(row[metric]), int(row["epoch"]), "last epoch", source, note)


def at_best_epoch(epochs: pd.DataFrame, metric: str = "test_acc", by: str = "clean_val_acc", *,
                  what: str | None = None, source: str = "", note: str = "") -> Reported:
    """``metric`` at the epoch where ``by`` is highest; the earliest such epoch on ties (the authors keep a new
    best only when it is strictly higher, train_clothing1m.py:250)."""
    rows = _evaluated(_evaluated(_one_run(epochs), by), metric)
    row = rows.loc[rows[by].idxmax()]  # idxmax: the first maximum
    return Reported(metric, what or metric, float(row[metric]), int(row["epoch"]),
                    f"at the best {by} epoch ({100 * float(row[by]):.2f} %)", source, note)


def max_over_epochs(epochs: pd.DataFrame, metric: str, *, what: str | None = None, source: str = "",
                    note: str = "") -> Reported:
    """The highest ``metric`` over all epochs (earliest on ties). Chosen on the evaluation set itself: an
    optimistic number, reported where the paper's protocol reports it (mini-WebVision)."""
    rows = _evaluated(_one_run(epochs), metric)
    row = rows.loc[rows[metric].idxmax()]
    return Reported(metric, what or metric, float(row[metric]), int(row["epoch"]), "maximum over epochs", source, note)


_LAST_CIFAR = "appendix B: 'All test accuracy are recorded from the last epoch of training' (CIFAR)"
_WEBVISION_METRICS = {"test_acc": "WebVision val top-1", "test_top5": "WebVision val top-5",
                      "ilsvrc12_val_acc": "ILSVRC12 val top-1", "ilsvrc12_val_top5": "ILSVRC12 val top-5"}
#: The rule each dataset's numbers are reported by (``report`` applies it), in words.
REPORTING_RULES = {
    "cifar10": "test accuracy of the last epoch (" + _LAST_CIFAR + ")",
    "cifar100": "test accuracy of the last epoch (" + _LAST_CIFAR + ")",
    "fashion_mnist": "test accuracy of the last epoch (the CIFAR rule; nalkit's CPU regime)",
    "animal10n": "test accuracy of the last epoch (the authors' train_animal10n.py:227-231 prints it every "
                 "epoch and names no rule; the appendix states the last-epoch rule for CIFAR)",
    "clothing1m": "test accuracy at the epoch of the best clean-validation accuracy (appendix B; the authors' "
                  "train_clothing1m.py:243-266), and of the last epoch",
    "webvision": "top-1 and top-5 on WebVision val and ILSVRC12 val, each its own maximum over epochs (the "
                 "authors' rule, train_webvision.py:248-255, 275), and each at the last epoch",
}
BASELINE_NOTE = ("baseline run on NAL's schedule, model and data pipeline (the recipe's optim section), not on "
                 "its own paper's schedule")


def report(epochs: pd.DataFrame, dataset: str, method: str | None = None) -> list[Reported]:
    """The numbers the paper's protocol reports for one run of ``dataset`` (:data:`REPORTING_RULES`).

    Args:
        epochs: that run's per-epoch rows (``load_run(run_dir)[1]``, or ``load_runs(...).epochs`` filtered on
            one ``run``).
        dataset: ``data.name`` of the run.
        method: ``method.name``; a baseline's numbers carry ``BASELINE_NOTE`` (default: read from the
            frame's ``method`` column when there is one).

    Returns:
        The reported numbers, the paper's rule first: CIFAR-10/100, Fashion-MNIST, ANIMAL-10N: the last
        epoch's test accuracy. Clothing1M: test accuracy at the best ``clean_val_acc`` epoch, then at the
        last epoch. mini-WebVision: for each of WebVision val top-1 / top-5 and ILSVRC12 val top-1 / top-5
        that was recorded, its maximum over epochs, then all four at the last epoch.
    """
    if dataset not in REPORTING_RULES:
        raise ValueError(f"no reporting rule for dataset {dataset!r}; known: {', '.join(REPORTING_RULES)}")
    if method is None and "method" in epochs and len(epochs):
        method = str(epochs["method"].iloc[0])
    note = BASELINE_NOTE if method not in (None, "nal") else ""
    if dataset == "clothing1m":
        source = "appendix B; authors' train_clothing1m.py:243-266"
        return [at_best_epoch(epochs, "test_acc", "clean_val_acc", what="Clothing1M test", source=source, note=note),
                last_epoch(epochs, "test_acc", what="Clothing1M test", source="for comparison", note=note)]
    if dataset == "webvision":
        present = [m for m in _WEBVISION_METRICS if m in epochs]
        source = "the authors' rule, train_webvision.py:248-255: chosen on the evaluation set itself"
        best = [max_over_epochs(epochs, m, what=_WEBVISION_METRICS[m], source=source, note=note) for m in present]
        last = [last_epoch(epochs, m, what=_WEBVISION_METRICS[m], source="for comparison", note=note)
                for m in present]
        return best + last
    return [last_epoch(epochs, "test_acc", what="test", source=REPORTING_RULES[dataset], note=note)]
