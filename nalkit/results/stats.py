"""Summaries, paired differences with t-intervals, ranks, and hyperparameter selection over runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

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


def mean_interval(values: Sequence[float], a: str = "", b: str = "") -> Difference:
    """The mean of ``values`` (one per seed, e.g. each run's drop from its peak) with a 95 % t-interval, as a
    :class:`Difference` (``a``, ``b`` name what was subtracted, for its sentence)."""
    x = np.asarray([v for v in values if np.isfinite(v)], dtype=np.float64)
    n = len(x)
    if n == 0:
        return Difference(a, b, 0, float("nan"), float("nan"), float("nan"), float("nan"))
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if n > 1 else float("nan")
    half = t_quantile_975(n - 1) * std / np.sqrt(n) if n > 1 else float("nan")
    return Difference(a, b, n, mean, std, mean - half, mean + half)


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
    return mean_interval((left - right).dropna(), str(a), str(b))


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

    ``metric`` must be a validation column (``*val_acc*``): selecting on test accuracy is refused. Equal means
    (to 1e-12) go to the smaller parameter value, so a tie is chosen the same way on every machine.
    """
    if "val" not in metric:
        raise ValueError(f"select on a validation metric, not {metric!r}: the test set never chooses anything")
    frame = runs.dropna(subset=[metric])
    if not len(frame):
        raise ValueError(f"no run has {metric}: were the runs made with data.noisy_val_size or data.val_fraction?")
    per = frame.groupby([parameter, settings])[metric].mean().unstack(settings)
    table = summarize(frame, by=[parameter], values=[metric]).set_index(parameter).sort_index()
    table = table.join(per)
    # round away float summation noise, then a stable sort over the ascending index: ties go to the smaller value
    order = table[f"{metric}_mean"].round(12).sort_values(ascending=False, kind="stable")
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


def epoch_time_by_hardware(runs: pd.DataFrame, value: str = "sec_per_epoch") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Median seconds per training epoch (or another timing column, ``value``: ``seconds`` per run) and run counts,
    one row per ``hardware`` that timed CE, one column per method. Timings compare only on the same hardware: a
    grid may share runs made on other machines, and a ratio across them measures the machines, not the methods.
    Runs without ``hardware`` or timings are left out."""
    need = {"method", "hardware", value}
    if not len(runs) or not need <= set(runs.columns):
        return pd.DataFrame(), pd.DataFrame()
    timed = runs.dropna(subset=["hardware", value])
    median = timed.groupby(["hardware", "method"])[value].median().unstack("method")
    count = timed.groupby(["hardware", "method"]).size().unstack("method")
    keep = median.index[median["ce"].notna()] if "ce" in median else median.index[:0]
    return median.loc[keep], count.loc[keep]
