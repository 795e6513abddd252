"""Comparisons that can decide (the results chapter): every method tuned by the same rule, CE with early stopping,
and how many seeds a difference needs.

* :data:`TUNED` -- each method's main hyperparameter, as a column of :func:`nalkit.results.load_runs`;
* :func:`select_methods` -- :func:`nalkit.results.select` for every method, the same rule and validation set;
* :func:`early_stopping` -- per run, test accuracy at the evaluation epoch with the best noisy-validation accuracy;
* :func:`seeds_needed` -- from an observed paired difference, the number of seeds whose interval would exclude 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .reporting import at_best_epoch
from .stats import Difference, Selection, select, t_quantile_975

#: the hyperparameter each method tunes (configs/grids/tuning.yaml; NAL's lambda in configs/grids/lambda.yaml)
TUNED = {"nal": "lam", "gce": "gce_q", "sce": "sce_alpha", "elr": "elr_lam", "selc": "selc_start"}
#: NAL's share of the lambda grid under the same budget of 4 candidates as every baseline
NAL_CANDIDATES = (0.5, 2.0, 5.0, 10.0)


def select_methods(runs: pd.DataFrame, seeds: tuple[int, ...] = (0, 1, 2),
                   metric: str = "last_val_acc_noisy") -> dict[str, Selection]:
    """Each tuned method's choice among its candidates in ``runs``: the highest mean ``metric`` over the settings
    and ``seeds`` (:func:`nalkit.results.select`), one value for all settings, the same rule for every method.

    NAL is restricted to ``NAL_CANDIDATES`` and to its full variant (the lambda grid's runs), so that it has the
    same budget of 4 candidates; a method with fewer than 2 candidates in ``runs`` is left out.
    """
    out: dict[str, Selection] = {}
    frame = runs[runs.seed.isin(seeds)]
    for method, column in TUNED.items():
        d = frame[frame.method == method]
        if not len(d) or column not in d:
            continue
        if method == "nal":
            d = d[d.lam.isin(NAL_CANDIDATES)]
            for col, full in (("estimate_targets", True), ("attention", True), ("alpha", 0.9)):
                if col in d:
                    d = d[d[col] == full]
            if "update_period" in d:
                d = d[d.update_period == d.update_period.mode().iloc[0]] if len(d) else d
        if column in d and d[column].nunique() >= 2 and d[metric].notna().any():
            out[method] = select(d, column, metric)
    return out


def early_stopping(epochs: pd.DataFrame, by: str = "val_acc_noisy", metric: str = "test_acc") -> pd.DataFrame:
    """Per run: ``metric`` at the evaluation epoch with the highest ``by`` (the earliest on ties), i.e. what a
    practitioner who stops on the noisy validation set reports.

    Columns: ``run``, ``epoch`` (the chosen one), ``value``, and the run's ``method``, ``noise``, ``seed`` where the
    frame has them. Runs that never evaluated ``by`` are left out.
    """
    ident = [c for c in ("method", "noise", "seed") if c in epochs]
    rows = []
    for run, g in epochs.groupby("run", sort=True):
        if by not in g or g[by].isna().all() or g[metric].isna().all():
            continue
        chosen = at_best_epoch(g, metric, by)
        rows.append({"run": run, **{c: g[c].iloc[0] for c in ident}, "epoch": chosen.epoch, "value": chosen.value})
    return pd.DataFrame(rows, columns=["run", *ident, "epoch", "value"])


def seeds_needed(diff: Difference, limit: int = 1000) -> int | None:
    """The smallest number of seeds at which a paired difference of the observed mean and spread would have a
    95 % t-interval that excludes 0 (``|mean| > t(n-1) * std / sqrt(n)``); None when the mean is 0 or the spread
    unknown, ``diff.n`` when it already does, and ``limit`` capped."""
    if diff.n < 2 or not np.isfinite(diff.std) or not np.isfinite(diff.mean) or diff.mean == 0:
        return None
    if diff.std == 0:
        return 2
    for n in range(2, limit + 1):
        if abs(diff.mean) > t_quantile_975(n - 1) * diff.std / np.sqrt(n):
            return n
    return limit
