"""Reporting rules: which number of a run's per-epoch record the paper's protocol reports."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

@dataclass(frozen=True)
class Reported:
    """One reported number of a run, with the epoch it comes from and the rule that chose it."""

    metric: str  # the column of the metrics (metrics.csv.gz), e.g. "test_acc", "ilsvrc12_val_top5"
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
        raise ValueError("the frame has no 'epoch' column: pass a run's per-epoch metrics (load_run(...)[1])")
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
    """The numbers the paper's protocol reports for one run of ``dataset`` (``REPORTING_RULES``).

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
