"""Comparisons that can decide (the results chapter): every method tuned by the same rule, CE with early stopping,
and how many seeds a difference needs.

* :data:`TUNED` -- each method's main hyperparameter, as a column of :func:`nalkit.results.load_runs`;
* :func:`select_methods` -- :func:`nalkit.results.select` for every method, the same rule and validation set;
* :func:`early_stopping` -- per run, test accuracy at the evaluation epoch with the best noisy-validation accuracy;
* :func:`seeds_needed` -- from an observed paired difference, the number of seeds whose interval would exclude 0;
* :func:`with_early_stopping` -- CE with early stopping as one more method of a ``runs`` frame;
* :func:`ranking` -- per setting, every method's mean and its paired difference to a reference method, with which
  differences are resolved and how many seeds an unresolved one would need;
* :func:`nal_rank`, :func:`nal_standing` -- from that ranking, NAL's rank, its rival and the methods it is resolved
  above and below (the rulebook's ``side``), and its standing per setting;
* ``AUTHORS_VALUES`` -- the baselines' CIFAR-10 values (the untuned runs), ``PAPER_LAMBDA`` NAL's;
* :func:`untuned_runs`, :func:`rank_change`, :func:`tuning_effects` -- every method at its authors' value, where
  NAL ranks before and after tuning, and what tuning changed for each baseline.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .reporting import at_best_epoch
from .stats import Difference, Selection, paired_difference, select, t_quantile_975

#: the hyperparameter each method tunes (configs/grids/tuning.yaml; NAL's lambda in configs/grids/lambda.yaml)
TUNED = {"nal": "lam", "gce": "gce_q", "sce": "sce_alpha", "elr": "elr_lam", "selc": "selc_start"}
#: each baseline's value from its authors' CIFAR-10 recipe (configs/fmnist/cpu.yaml): the untuned runs
AUTHORS_VALUES = {"gce": 0.7, "sce": 0.1, "elr": 3.0, "selc": 20.0}
#: NAL's lambda in the paper's CIFAR-10 recipe (configs/paper/): its untuned value, as AUTHORS_VALUES are the others'
PAPER_LAMBDA = 0.5
#: the name :func:`with_early_stopping` gives CE with early stopping on the noisy validation set
EARLY_STOPPED = "ce + early stop"
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


def with_early_stopping(runs: pd.DataFrame, epochs: pd.DataFrame, method: str = "ce",
                        name: str = EARLY_STOPPED) -> pd.DataFrame:
    """``runs`` with one more row per ``method`` run that evaluated the noisy validation set: the same run stopped
    at its best noisy-validation epoch (:func:`early_stopping`), as method ``name``, its ``last_test_acc`` the
    test accuracy there and ``stop_epoch`` the epoch. Its other columns are the run's own (at the last epoch).
    Pair it with the others on the seed like any method: it is the same run, read at another epoch."""
    base = runs[runs.method == method]
    if not len(base):
        return runs
    es = early_stopping(epochs[epochs.run.isin(base.run)]).set_index("run")
    if not len(es):
        return runs
    extra = base[base.run.isin(es.index)].copy()
    extra["last_test_acc"] = es.loc[extra.run, "value"].to_numpy()
    extra["stop_epoch"] = es.loc[extra.run, "epoch"].to_numpy()
    extra["method"] = name
    return pd.concat([runs, extra], ignore_index=True)


def ranking(runs: pd.DataFrame, value: str = "last_test_acc", reference: str = "nal",
            by: str = "noise") -> pd.DataFrame:
    """Per ``by`` group, every method's mean, std and count of ``value``, best first, with the paired difference
    ``reference - method`` over seeds (``diff``, a :class:`Difference`), whether its interval excludes 0
    (``resolved``) and, where it does not, how many seeds the observed mean and spread would need
    (``seeds_needed``, :func:`seeds_needed`)."""
    from .stats import paired_difference

    rows = []
    for group, d in runs.groupby(by, sort=False):
        g = d.groupby("method")[value]
        stats = pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=1), "n": g.count()}).sort_values(
            "mean", ascending=False)
        for rank, (method, r) in enumerate(stats.iterrows(), start=1):
            diff = (paired_difference(d, value, reference, method)
                    if method != reference and reference in stats.index else None)
            resolved = bool(diff is not None and diff.n >= 2 and not diff.within_noise)
            rows.append({by: group, "rank": rank, "method": method, "mean": r["mean"], "std": r["std"],
                         "n": int(r["n"]), "diff": diff, "resolved": resolved,
                         "seeds_needed": None if diff is None or resolved else seeds_needed(diff)})
    return pd.DataFrame(rows, columns=[by, "rank", "method", "mean", "std", "n", "diff", "resolved", "seeds_needed"])


def untuned_runs(tuning: pd.DataFrame, sweep: pd.DataFrame) -> pd.DataFrame:
    """The untuned comparison: CE and each baseline at its authors' CIFAR-10 value (``AUTHORS_VALUES``) from the
    tuning grid, and full NAL at the paper's CIFAR-10 lambda (``PAPER_LAMBDA``) from the lambda grid."""
    parts = [tuning[tuning.method == "ce"]] if len(tuning) else []
    for method, value in AUTHORS_VALUES.items():
        if len(tuning) and TUNED[method] in tuning:
            d = tuning[tuning.method == method]
            parts.append(d[np.isclose(d[TUNED[method]].astype(float), value)])
    if len(sweep):
        nal = sweep[(sweep.method == "nal") & np.isclose(sweep.lam.astype(float), PAPER_LAMBDA)]
        for col, full in (("estimate_targets", True), ("attention", True), ("alpha", 0.9)):
            if col in nal:
                nal = nal[nal[col] == full]
        if "attention_mode" in nal:
            nal = nal[nal.attention_mode.fillna("sample") == "sample"]
        parts.append(nal)
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def rank_change(untuned: pd.DataFrame, tuned: pd.DataFrame, method: str = "nal") -> pd.DataFrame:
    """Per noise setting, ``method``'s rank by mean last-epoch test accuracy among the methods of ``untuned`` and
    among those of ``tuned`` (CE with early stopping left out): columns ``noise, before, of_before, after,
    of_after``; settings where either lacks the method are left out."""
    rows = []
    tuned = tuned[tuned.method != EARLY_STOPPED] if len(tuned) else tuned
    for s in sorted(set(untuned.noise) & set(tuned.noise)) if len(untuned) and len(tuned) else []:
        before = untuned[untuned.noise == s].groupby("method").last_test_acc.mean().sort_values(ascending=False)
        after = tuned[tuned.noise == s].groupby("method").last_test_acc.mean().sort_values(ascending=False)
        if method in before and method in after and len(before) > 1:
            rows.append({"noise": s, "before": list(before.index).index(method) + 1, "of_before": len(before),
                         "after": list(after.index).index(method) + 1, "of_after": len(after)})
    return pd.DataFrame(rows, columns=["noise", "before", "of_before", "after", "of_after"])


def nal_standing(order: pd.DataFrame, settings: Sequence[str] | None = None, reference: str = "nal") -> pd.DataFrame:
    """From :func:`ranking`'s frame, per setting: ``status`` -- ``first`` (``reference`` resolved above every other
    method), ``behind`` (resolved below at least one), ``open`` (neither) -- the best other method (``rival``) with
    ``reference``'s paired difference to it (``diff``), whether that difference is a match (``level``, the rulebook's
    MATCH) and the fewest seeds of any method there (``n``)."""
    from .criteria import FAILS, HOLDS, matches, side

    rows = []
    if not len(order) or reference not in set(order.method):
        return pd.DataFrame(rows, columns=["noise", "status", "rival", "diff", "level", "n"])
    for s in (settings if settings is not None else list(dict.fromkeys(order.noise))):
        d = order[(order.noise == s) & (order.method != reference)]
        if not len(d):
            continue
        sides = [side(x) for x in d["diff"]]
        if all(x == HOLDS for x in sides):
            status = "first"
        elif FAILS in sides:
            status = "behind"
        else:
            status = "open"
        rival = d.iloc[0]  # best first
        rows.append({"noise": s, "status": status, "rival": rival.method, "diff": rival["diff"],
                     "level": bool(status == "open" and matches(rival["diff"])),
                     "n": int(order[order.noise == s].n.min())})
    return pd.DataFrame(rows, columns=["noise", "status", "rival", "diff", "level", "n"])


def nal_rank(order: pd.DataFrame, settings: Sequence[str] | None = None, reference: str = "nal") -> pd.DataFrame:
    """From :func:`ranking`'s frame, per setting that has ``reference``: its ``rank`` of ``of`` methods and its mean
    (``mean``); the best other method (``rival``: the runner-up when ``reference`` ranks first, else the best) with
    the paired difference to it (``diff``); the difference to CE (``ce``, None without CE runs); the other methods
    it is resolved ``above`` and ``below`` (each difference's side by the rulebook's CONFIDENCE,
    :func:`nalkit.results.criteria.side`) and the ``unresolved`` ones as (method, seeds the observed mean and
    spread would need) pairs; methods in each list best first."""
    from .criteria import FAILS, HOLDS, OPEN, side

    columns = ["noise", "rank", "of", "mean", "rival", "diff", "ce", "above", "below", "unresolved"]
    rows = []
    if not len(order):
        return pd.DataFrame(rows, columns=columns)
    for s in (settings if settings is not None else list(dict.fromkeys(order.noise))):
        d = order[order.noise == s]
        if reference not in set(d.method):
            continue
        me, others = d[d.method == reference].iloc[0], d[d.method != reference]
        if not len(others):
            continue
        sides = [side(x) for x in others["diff"]]
        ce = others[others.method == "ce"]
        rows.append({"noise": s, "rank": int(me["rank"]), "of": len(d), "mean": float(me["mean"]),
                     "rival": others.iloc[0].method, "diff": others.iloc[0]["diff"],
                     "ce": ce["diff"].iloc[0] if len(ce) else None,
                     "above": [m for m, x in zip(others.method, sides) if x == HOLDS],
                     "below": [m for m, x in zip(others.method, sides) if x == FAILS],
                     "unresolved": [(m, n) for m, n, x in zip(others.method, others.seeds_needed, sides) if x == OPEN]})
    return pd.DataFrame(rows, columns=columns)


def tuning_effects(untuned: pd.DataFrame, tuned: pd.DataFrame, chosen: dict[str, Selection],
                   settings: Sequence[str] | None = None) -> pd.DataFrame:
    """What tuning changed for each baseline of ``AUTHORS_VALUES`` that ``chosen`` (:func:`select_methods`) tuned:
    its authors' value (``authors``), the chosen one (``chosen``), whether tuning kept the authors' value (``kept``)
    and, where it did not, per setting the paired difference of last-epoch test accuracy, the chosen value's runs
    (``tuned``) − the authors' value's runs (``untuned``, :func:`untuned_runs`), over the seeds both ran (``change``:
    ``{setting: Difference}`` in the order of ``settings``; settings with fewer than two pairs left out)."""
    from .stats import paired_difference

    rows = []
    for method, value in AUTHORS_VALUES.items():
        if method not in chosen:
            continue
        pick = chosen[method].chosen
        kept = bool(np.isclose(pick, value))
        change = {}
        if not kept and len(tuned) and len(untuned):
            both = pd.concat([untuned[untuned.method == method].assign(_v="authors"),
                              tuned[tuned.method == method].assign(_v="tuned")])
            for s in (settings if settings is not None else list(dict.fromkeys(both.noise))):
                d = paired_difference(both[both.noise == s], "last_test_acc", "tuned", "authors", column="_v")
                if d.n >= 2:
                    change[s] = d
        rows.append({"method": method, "authors": value, "chosen": pick, "kept": kept, "change": change})
    return pd.DataFrame(rows, columns=["method", "authors", "chosen", "kept", "change"])


#: the appendix's settings, in the book's order
SETTINGS = ("sym 40 %", "sym 80 %", "asym 40 %")


def settings_present(runs: pd.DataFrame) -> list[str]:
    """The noise settings of ``runs``: the appendix's (``SETTINGS``) in the book's order, then any other (e.g. the
    regime tier's IDN settings), sorted."""
    have = set(runs.noise) if len(runs) and "noise" in runs else set()
    return [s for s in SETTINGS if s in have] + sorted(s for s in have if s not in SETTINGS and isinstance(s, str))


def variant_differences(runs: pd.DataFrame, variants: Sequence[str], base: str) -> pd.DataFrame:
    """Each variant of ``variants`` beside ``base``, per setting (``runs`` with ``variant`` and ``noise``): one row per
    (setting, variant) present with its runs' count (``n``), the mean and standard deviation (ddof 1) over them of the
    last-epoch test accuracy (``test_mean``, ``test_std``) and memorised share (``memorised_mean``,
    ``memorised_std``), ``test`` and ``memorised`` (variant − ``base``, paired over seeds; None for ``base`` itself),
    ``side`` of the test difference by the rulebook (``holds``: above ``base``, ``fails``: below, ``undecided``: the
    interval covers 0; None without an interval) and ``recovers`` (True when the variant stays within the seed spread
    of ``base`` or above it, i.e. its side is not ``fails``; None without an interval)."""
    from .criteria import FAILS, side

    columns = ["noise", "variant", "n", "test_mean", "test_std", "memorised_mean", "memorised_std", "test",
               "memorised", "side", "recovers"]
    rows = []
    for s in settings_present(runs) if len(runs) else []:
        d = runs[runs.noise == s]
        if base not in set(d.variant):
            continue
        for v in [v for v in variants if v in set(d.variant)]:
            x = d[d.variant == v]
            test = paired_difference(d, "last_test_acc", v, base, column="variant") if v != base else None
            mem = paired_difference(d, "last_memorized", v, base, column="variant") if v != base else None
            where = side(test) if test is not None and test.n >= 2 else None
            acc, memorised = x.last_test_acc.dropna(), x.last_memorized.dropna()
            rows.append({"noise": s, "variant": v, "n": len(x), "test_mean": acc.mean(), "test_std": acc.std(ddof=1),
                         "memorised_mean": memorised.mean(), "memorised_std": memorised.std(ddof=1), "test": test,
                         "memorised": mem, "side": where, "recovers": None if where is None else where != FAILS})
    return pd.DataFrame(rows, columns=columns)
