"""The long-training tier (chapter "Over the paper's horizon"): what happens after epoch 40.

The functions take the frames of :func:`nalkit.results.load_runs` (``runs``: one row per run, ``epochs``: one
row per run and epoch) and return tidy frames the chapter plots and words:

* :func:`long_variant` -- the five variants of ``configs/grids/long.yaml`` by name;
* :func:`curves` -- a metric against the epoch, mean, standard deviation and count over seeds;
* :func:`peak_and_last` -- per run, a metric's best value, the epoch of it, its last value and the drop;
* :func:`at_epoch` -- per run, the metrics of one epoch, as a ``runs``-like frame for
  :func:`nalkit.results.paired_difference` (the 40-epoch verdicts re-read at epoch 200);
* :func:`detector_series` -- the per-epoch AUROC (or AP) of the mislabel detectors, over seeds;
* :func:`protocol_runs` -- the long tier read as the paper reports (the last epoch of the longest horizon that has
  every method): one row per run, named like the default grid's methods, CE with early stopping added, for
  :func:`nalkit.results.ranking` and the claims at 200 epochs;
* :func:`phi_scaling` -- Theorem 1 at work per variant and setting: the epochs in which the mislabeled
  samples' gradient factor phi is below the clean samples' by the rulebook's ``PHI_GAP`` (C7 and the attention
  chapter both read it);
* :func:`snapshot_epochs`, :func:`stage_table` -- the per-sample snapshots: tau of clean and mislabeled samples
  at each snapshot epoch, their separation and the share of mislabeled samples the attention sets aside;
* :func:`stage_cells`, :func:`stage_counts` -- appendix F per (setting, variant) and counted over cells, by the
  rulebook's stage rules (:func:`nalkit.results.tau_stages`), every requested cell present, seeds counted;
* :func:`phi_cells`, :func:`phi_counts` -- :func:`phi_scaling` per (setting, variant), every requested cell
  present, and how many settings show Theorem 1's scaling by the rulebook's ``PHI_GAP``;
* :func:`schedule_differences` -- the authors' target schedule minus the book's at each lambda, paired over seeds;
* :func:`ranked_means` -- each variant's mean of a metric at one epoch, best first, per setting.

``SCHEDULE_PAIRS`` names NAL at the book's lambda 2 and the paper's 0.5, each under the book's and the authors'
target schedule: the four cells the tau and phi figures compare.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..metrics import auroc
from .load import load_arrays
from .names import long_variant

#: the variants of the long tier's first 45 runs, in the order the chapter shows them
LONG_VARIANTS = ("CE", "NAL", "NAL, authors' schedule", "NAL, τ = 1", "SCE")
#: the protocol issue's additions: every baseline at its tuned value, NAL at the paper's lambda and its controls
PROTOCOL_VARIANTS = ("GCE", "SCE (α 0.05)", "ELR", "SELC", "NAL (λ 0.5)", "NAL (λ 0.5), authors' schedule",
                     "NAL (λ 0.5), authors' schedule, one learned τ", "NAL (λ 0.5), authors' schedule, τ = 1")


def with_variant(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (runs or epochs) with a ``variant`` column from :func:`long_variant`."""
    out = frame.copy()
    out["variant"] = [long_variant(r) for r in out.to_dict("records")] if len(out) else []
    return out


def curves(epochs: pd.DataFrame, metric: str, by: Sequence[str] = ("variant", "noise")) -> pd.DataFrame:
    """``metric`` against the epoch: columns ``*by, epoch, mean, std, n`` over the runs (seeds) of each group,
    epochs where it was not evaluated (NaN) left out."""
    cols = [*by, "epoch"]
    have = epochs.dropna(subset=[metric])
    if not len(have):
        return pd.DataFrame(columns=[*cols, "mean", "std", "n"])
    g = have.groupby(cols, sort=True)[metric]
    return pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=1), "n": g.count()}).reset_index()


def peak_and_last(epochs: pd.DataFrame, metric: str = "test_acc") -> pd.DataFrame:
    """Per run: ``best`` (the highest value of ``metric``), ``best_epoch``, ``last`` (the value at the last
    evaluated epoch) and ``drop`` = best - last, with the run's identifying columns."""
    keep = [c for c in ("run", "variant", "method", "noise", "seed") if c in epochs]
    rows = []
    for run, g in epochs.dropna(subset=[metric]).groupby("run", sort=True):
        g = g.sort_values("epoch")
        i = int(np.argmax(g[metric].to_numpy()))
        best, last = float(g[metric].iloc[i]), float(g[metric].iloc[-1])
        rows.append({**{c: g[c].iloc[0] for c in keep}, "best": best, "best_epoch": int(g.epoch.iloc[i]),
                     "last": last, "last_epoch": int(g.epoch.iloc[-1]), "drop": best - last})
    return pd.DataFrame(rows, columns=[*keep, "best", "best_epoch", "last", "last_epoch", "drop"])


def at_epoch(epochs: pd.DataFrame, epoch: int, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per run with the values of ``metrics`` (default: every numeric column) at ``epoch``; runs that
    did not reach it are left out. Feed it to :func:`nalkit.results.paired_difference` with ``value=<metric>``."""
    sel = epochs[epochs.epoch == epoch]
    if metrics is not None:
        ident = [c for c in ("run", "variant", "method", "noise", "seed", "lam") if c in sel]
        sel = sel[[*ident, *[m for m in metrics if m not in ident]]]
    return sel.reset_index(drop=True)


def mislabeled_fraction(runs: pd.DataFrame, by: str = "noise") -> pd.Series:
    """The share of training labels the noise actually changed, mean over the runs of each ``by`` group (the
    clean fraction is one minus it: what a model that fits only the correct labels reaches on the noisy ones)."""
    return runs.groupby(by).actual_noise_rate.mean()


def memorisation_gap(epochs: pd.DataFrame, runs: pd.DataFrame, epoch: int | None = None) -> pd.DataFrame:
    """Per run at ``epoch`` (default: each run's last): training accuracy on the noisy labels minus the clean
    fraction of its setting (``excess``, > 0: it fits mislabeled samples too) and the memorised share of the
    mislabeled samples, with the run's identifying columns."""
    rate = runs.set_index("run").actual_noise_rate
    rows = []
    for run, g in epochs.groupby("run", sort=True):
        g = g.sort_values("epoch")
        r = g[g.epoch == epoch].iloc[-1] if epoch is not None and (g.epoch == epoch).any() else g.iloc[-1]
        clean = 1.0 - float(rate[run])
        rows.append({"run": run, "variant": r.get("variant"), "noise": r["noise"], "seed": r["seed"],
                     "epoch": int(r.epoch), "train_acc_noisy": float(r.train_acc_noisy), "clean_fraction": clean,
                     "excess": float(r.train_acc_noisy) - clean, "memorized": float(r.memorized)})
    return pd.DataFrame(rows)


def detector_series(epochs: pd.DataFrame, detectors: Sequence[str] = ("tau", "loss"), stat: str = "auroc",
                    by: Sequence[str] = ("variant", "noise")) -> pd.DataFrame:
    """The per-epoch separation of the mislabel detectors: columns ``*by, detector, epoch, mean, std, n`` of the
    ``<detector>_<stat>`` columns of the metrics (``stat`` ``auroc`` or ``ap``), detectors a run lacks left out."""
    frames = []
    for name in detectors:
        col = f"{name}_{stat}"
        if col not in epochs:
            continue
        c = curves(epochs, col, by)
        c.insert(len(by), "detector", name)
        frames.append(c)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=[*by, "detector", "epoch", "mean", "std", "n"])


def snapshot_epochs(run_dir: str | Path) -> list[int]:
    """The epochs whose per-sample arrays a run kept (``run.snapshot_epochs``), ascending."""
    keys = load_arrays(run_dir)
    return sorted({int(k.rpartition("_e")[2]) for k in keys if k.startswith("tau_e") or k.startswith("pred_e")})


#: the tau below which :func:`stage_table` counts a sample as set aside (a description beside the stages, not one)
SET_ASIDE_TAU = 0.5


def stage_table(runs: pd.DataFrame, low: float = SET_ASIDE_TAU) -> pd.DataFrame:
    """tau at every snapshot epoch of every run in ``runs`` (with attention): one row per run and epoch.

    Columns: the run's ``run, variant, noise, seed``, then ``epoch``, ``auroc`` (of 1 - tau for finding the
    mislabeled samples), ``median_clean``, ``median_mislabeled``, ``set_aside`` (the share of mislabeled samples
    with tau < ``low``: the appendix's third stage puts them there) and ``clean_set_aside`` (the same share of
    clean samples), ``overlap`` (the area both tau histograms share on the logit axis, 1 = the same
    distribution, 0 = disjoint).
    """
    rows = []
    for r in runs.to_dict("records"):
        a = load_arrays(r["run_dir"])
        noisy = a["is_noisy"] & (a["clean_labels"] >= 0)
        clean = ~a["is_noisy"] & (a["clean_labels"] >= 0)
        for e in sorted(int(k[5:]) for k in a if k.startswith("tau_e")):
            tau = a[f"tau_e{e}"]
            if not np.isfinite(tau).all():
                continue
            rows.append({"run": r["run"], "variant": r.get("variant"), "noise": r["noise"], "seed": r["seed"],
                         "epoch": e, "auroc": auroc(1.0 - tau[noisy | clean], noisy[noisy | clean]),
                         "median_clean": float(np.median(tau[clean])),
                         "median_mislabeled": float(np.median(tau[noisy])),
                         "set_aside": float(np.mean(tau[noisy] < low)),
                         "clean_set_aside": float(np.mean(tau[clean] < low)),
                         "overlap": histogram_overlap(a[f"tau_logit_e{e}"][clean], a[f"tau_logit_e{e}"][noisy])})
    return pd.DataFrame(rows, columns=["run", "variant", "noise", "seed", "epoch", "auroc", "median_clean",
                                       "median_mislabeled", "set_aside", "clean_set_aside", "overlap"])


def histogram_overlap(a: np.ndarray, b: np.ndarray, bins: int = 40) -> float:
    """The area two samples' normalised histograms share over their common range (1: the same distribution,
    0: no bin holds both); NaN for an empty sample."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if not len(a) or not len(b):
        return float("nan")
    both = np.concatenate([a, b])
    lo, hi = float(np.min(both)), float(np.max(both))
    if hi <= lo:
        return 1.0
    edges = np.linspace(lo, hi, bins + 1)
    ha = np.histogram(a, edges)[0] / len(a)
    hb = np.histogram(b, edges)[0] / len(b)
    return float(np.minimum(ha, hb).sum())


def horizon_summary(runs: pd.DataFrame, epochs: pd.DataFrame, early: int = 40) -> pd.DataFrame:
    """The long tier's answers per ``(noise, variant)``, means over seeds (fractions, not %).

    Columns: ``n`` (seeds), ``last_epoch``, ``clean_fraction``, ``fit_last`` (training accuracy on the noisy labels at the last
    epoch), ``memorized_early``/``memorized_last`` (mislabeled samples predicted as their noisy label at epoch
    ``early`` and at the last), ``test_best``, ``test_best_epoch`` (median), ``test_early``, ``test_last``,
    ``test_drop`` (best - last, a :class:`nalkit.results.Difference` with its t-interval over seeds), ``tau_auroc_max``,
    ``tau_auroc_max_epoch`` (median), ``tau_auroc_last``, ``loss_auroc_last``, ``corrected_last`` and
    ``corrected_mislabeled_last`` (argmax q against the clean labels).
    """
    from .stats import mean_interval

    runs = with_variant(runs) if "variant" not in runs else runs
    epochs = with_variant(epochs) if "variant" not in epochs else epochs
    peaks = peak_and_last(epochs).set_index("run")
    rate = runs.set_index("run").actual_noise_rate
    rows = []
    for (noise, variant), g in epochs.groupby(["noise", "variant"], sort=False):
        names = sorted(g.run.unique())
        last = g.sort_values("epoch").groupby("run").tail(1).set_index("run")
        at_early = g[g.epoch == early].set_index("run")

        def mean(frame: pd.DataFrame, col: str) -> float:
            return float(frame[col].mean()) if col in frame and len(frame) else float("nan")

        tau = g.dropna(subset=["tau_auroc"]) if "tau_auroc" in g else g.iloc[:0]
        best_tau = tau.loc[tau.groupby("run").tau_auroc.idxmax()] if len(tau) else tau
        p = peaks.loc[names]
        rows.append({"noise": noise, "variant": variant, "n": len(names), "last_epoch": int(g.epoch.max()),
                     "clean_fraction": 1.0 - float(rate[names].mean()),
                     "fit_last": mean(last, "train_acc_noisy"), "memorized_early": mean(at_early, "memorized"),
                     "memorized_last": mean(last, "memorized"), "test_best": float(p.best.mean()),
                     "test_best_epoch": float(p.best_epoch.median()), "test_early": mean(at_early, "test_acc"),
                     "test_last": float(p["last"].mean()), "test_drop": mean_interval(p["drop"], "best", "last"),
                     "tau_auroc_max": mean(best_tau, "tau_auroc"),
                     "tau_auroc_max_epoch": float(best_tau.epoch.median()) if len(best_tau) else float("nan"),
                     "tau_auroc_last": mean(last, "tau_auroc"), "loss_auroc_last": mean(last, "loss_auroc"),
                     "corrected_last": mean(last, "corrected_acc"),
                     "corrected_mislabeled_last": mean(last, "corrected_acc_mislabeled")})
    return pd.DataFrame(rows)


def phi_scaling(epochs: pd.DataFrame, by: Sequence[str] = ("variant", "noise")) -> pd.DataFrame:
    """Theorem 1 at work, one row per ``by`` group of per-epoch records with phi (``phi_clean``, ``phi_mislabeled``):

    ``seeds`` (runs in the group; one has no interval, so nothing is "scaled"), ``epochs`` (how many have phi),
    ``scaled`` (the epochs in which the clean samples' mean phi exceeds the
    mislabeled samples' by the rulebook's ``PHI_GAP`` with a 95 % interval over seeds above 0:
    ``nalkit.results.criteria.scales_down``), ``last_scaled`` (whether the last epoch is one), ``lowest_epoch``
    and ``lowest`` (the mislabeled samples' lowest mean phi) with ``clean_at_lowest``, ``last_epoch``,
    ``last_clean``, ``last_mislabeled`` (means over seeds)."""
    from .criteria import scales_down
    from .stats import mean_interval

    cols = [*by, "seeds", "epochs", "scaled", "last_scaled", "lowest_epoch", "lowest", "clean_at_lowest",
            "last_epoch", "last_clean", "last_mislabeled"]
    if not len(epochs) or "phi_mislabeled" not in epochs:
        return pd.DataFrame(columns=cols)
    have = epochs.dropna(subset=["phi_clean", "phi_mislabeled"])
    rows = []
    for key, g in have.groupby(list(by), sort=True):
        g = g.assign(gap=g.phi_clean - g.phi_mislabeled)
        per_epoch = {int(e): mean_interval(h.gap) for e, h in g.groupby("epoch")}
        m = g.groupby("epoch")[["phi_clean", "phi_mislabeled"]].mean()
        low = int(m.phi_mislabeled.idxmin())
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))), "seeds": int(g.run.nunique()),
                     "epochs": len(per_epoch),
                     "scaled": [e for e, d in per_epoch.items() if scales_down(d)],
                     "last_scaled": scales_down(per_epoch[max(per_epoch)]), "lowest_epoch": low,
                     "lowest": float(m.phi_mislabeled[low]), "clean_at_lowest": float(m.phi_clean[low]),
                     "last_epoch": int(m.index[-1]), "last_clean": float(m.phi_clean.iloc[-1]),
                     "last_mislabeled": float(m.phi_mislabeled.iloc[-1])})
    return pd.DataFrame(rows, columns=cols)


#: the long tier's variant that stands for each method in the paper's protocol: every method at the value the
#: 40-epoch tuning chose (NAL lambda 2 with the book's schedule; SCE alpha 0.05), as in the default grid
PROTOCOL_METHODS = {"CE": "ce", "NAL": "nal", "GCE": "gce", "SCE (α 0.05)": "sce", "ELR": "elr", "SELC": "selc"}
#: NAL at the paper's setting (lambda 0.5, the authors' target schedule) and the controls that decide there
PAPER_SETTING = "NAL (λ 0.5), authors' schedule"
PAPER_CONTROLS = {"one learned τ": "NAL (λ 0.5), authors' schedule, one learned τ",
                  "τ = 1": "NAL (λ 0.5), authors' schedule, τ = 1"}
#: NAL of the long tier at each lambda, ``(book's schedule, authors' schedule)``: the book's selected lambda 2 and
#: the paper's 0.5, whose authors' schedule is the paper's setting. The tau and phi figures compare these four.
SCHEDULE_PAIRS = {2.0: ("NAL", "NAL, authors' schedule"), 0.5: ("NAL (λ 0.5)", PAPER_SETTING)}
#: the four, in the order the figures show them
LAMBDA_SCHEDULES = tuple(v for pair in SCHEDULE_PAIRS.values() for v in pair)


def protocol_runs(runs: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """The long tier's runs of ``PROTOCOL_METHODS`` as a runs frame whose ``method`` is the default grid's name
    (``nal``, ``sce``, ...), read at their last epoch, plus CE stopped at its best noisy-validation epoch
    (:func:`nalkit.results.with_early_stopping`): the frame :func:`nalkit.results.ranking` ranks. Only complete
    (setting, method) cells count: a method with fewer than 2 seeds in a setting is left out of that setting."""
    from .comparison import with_early_stopping

    if not len(runs):
        return runs
    runs = with_variant(runs)  # always the long tier's names (a frame may carry nal_variant's in "variant")
    out = runs[runs.variant.isin(list(PROTOCOL_METHODS))].copy()
    out["method"] = out.variant.map(PROTOCOL_METHODS)
    seeds = out.groupby(["noise", "method"]).seed.transform("nunique")
    out = out[seeds >= 2]
    if "val_acc_noisy" in epochs:
        out = with_early_stopping(out, epochs)
    return out.reset_index(drop=True)


def missing_methods(protocol: pd.DataFrame, settings: Sequence[str]) -> dict[str, list[str]]:
    """Per setting, the methods of ``PROTOCOL_METHODS`` that :func:`protocol_runs` lacks there (an empty list
    when the setting has them all)."""
    want = list(PROTOCOL_METHODS.values())
    have = protocol.groupby("noise").method.agg(set).to_dict() if len(protocol) else {}
    return {s: [m for m in want if m not in have.get(s, set())] for s in settings}


def appendix_e(summary: pd.DataFrame, settings: Sequence[str] | None = None) -> pd.DataFrame:
    """Appendix E's picture per setting, by the rulebook (C3, C4 and the horizon chapter read it): ``ce_memorises``
    (CE memorised at least MEMORISED of the mislabeled samples at the last epoch), ``ce_falls`` (CE's drop from its
    peak has a 95 % interval above 0), ``nal_near_clean`` (NAL's training accuracy on the noisy labels within
    NEAR_CLEAN of the clean fraction), ``nal_flat`` (NAL's mean drop at most FLAT), from :func:`horizon_summary`'s
    ``CE`` and ``NAL`` rows; settings without both are left out."""
    from .criteria import FLAT, MEMORISED, NEAR_CLEAN

    rows = []
    have = list(dict.fromkeys(summary.noise)) if len(summary) else []
    for s in (settings if settings is not None else have):
        d = summary[summary.noise == s] if len(summary) else summary
        ce, nal = d[d.variant == "CE"], d[d.variant == "NAL"]
        if not len(ce) or not len(nal):
            continue
        ce, nal = ce.iloc[0], nal.iloc[0]
        rows.append({"noise": s, "ce_memorises": bool(ce.memorized_last >= MEMORISED),
                     "ce_falls": bool(ce.test_drop.n >= 2 and ce.test_drop.low > 0),
                     "nal_near_clean": bool(abs(nal.fit_last - nal.clean_fraction) <= NEAR_CLEAN),
                     "nal_flat": bool(nal.test_drop.mean <= FLAT)})
    return pd.DataFrame(rows, columns=["noise", "ce_memorises", "ce_falls", "nal_near_clean", "nal_flat"])


def early_vs_last(epochs: pd.DataFrame, settings: Sequence[str], early: int = 40,
                  others: Sequence[str] = ("CE", "SCE", "NAL, τ = 1", "NAL, authors' schedule")) -> pd.DataFrame:
    """NAL minus each of ``others`` in test accuracy, paired over seeds, at epoch ``early`` and at the last epoch, per
    setting: one row per (setting, other, epoch) with the :class:`nalkit.results.Difference` in ``diff``."""
    from .stats import paired_difference

    last = int(epochs.epoch.max()) if len(epochs) else early
    frames = {e: at_epoch(epochs, e, ["test_acc", "memorized"]) for e in (early, last)}
    rows = [{"noise": s, "other": other, "epoch": e,
             "diff": paired_difference(f[f.noise == s], "test_acc", "NAL", other, column="variant")}
            for s in settings for other in others for e, f in frames.items()]
    return pd.DataFrame(rows, columns=["noise", "other", "epoch", "diff"])


# --------------------------------------------------------------------------------------------
# the chapter's questions over the lambdas and schedules: one row per requested cell, missing ones included
# --------------------------------------------------------------------------------------------
_STAGE_COLUMNS = ["noise", "variant", "seeds", "first_epoch", "first_auroc", "best_epoch", "best_auroc", "last_epoch",
                  "last_auroc", "last_median_clean", "last_median_mislabeled", "last_set_aside",
                  "last_clean_set_aside", "alike", "apart",
                  "final", "stages"]


def stage_cells(stages: pd.DataFrame, settings: Sequence[str], variants: Sequence[str]) -> pd.DataFrame:
    """Appendix F per (setting, variant), from :func:`stage_table` (one row per run and snapshot).

    One row per ``settings`` x ``variants`` cell, in that order, with ``seeds`` (runs with snapshots; 0 for a cell
    without records, whose other columns are NaN / None). The AUROC of 1 - tau at the ``first``, ``best`` and
    ``last`` snapshot, the clean median tau and the shares of mislabeled and clean samples with tau below
    :func:`stage_table`'s ``low`` at the last one (``last_set_aside``, ``last_clean_set_aside``) are means over the
    seeds per snapshot; ``alike``, ``apart``, ``final`` and ``stages`` (the :class:`nalkit.results.Stages`) are
    :func:`nalkit.results.tau_stages`'s verdicts by the rulebook's ``STAGE_ALIKE``, ``STAGE_APART``, ``STAGE_FINAL``.
    """
    from .criteria import tau_stages

    rows = []
    for s in settings:
        for v in variants:
            d = stages[(stages.noise == s) & (stages.variant == v)] if len(stages) else stages
            found = tau_stages(d) if len(d) else None
            if found is None:
                rows.append({"noise": s, "variant": v, "seeds": 0, "stages": None})
                continue
            m = d.groupby("epoch")[[c for c in ("set_aside", "clean_set_aside", "median_mislabeled") if c in d]].mean()
            m = m.sort_index().reindex(columns=["set_aside", "clean_set_aside", "median_mislabeled"])
            rows.append({"noise": s, "variant": v, "seeds": int(d.run.nunique()),
                         "first_epoch": int(m.index[0]), "first_auroc": found.first_auroc,
                         "best_epoch": found.best_epoch, "best_auroc": found.best_auroc,
                         "last_epoch": found.last_epoch, "last_auroc": found.last_auroc,
                         "last_median_clean": found.last_median_clean,
                         "last_median_mislabeled": float(m.median_mislabeled.iloc[-1]),
                         "last_set_aside": float(m.set_aside.iloc[-1]),
                         "last_clean_set_aside": float(m.clean_set_aside.iloc[-1]),
                         "alike": found.alike, "apart": found.apart, "final": found.final, "stages": found})
    out = pd.DataFrame(rows, columns=_STAGE_COLUMNS)
    # epochs stay integers beside the NaN of a cell without records
    return out.astype({c: "Int64" for c in ("seeds", "first_epoch", "best_epoch", "last_epoch")})


@dataclass(frozen=True)
class StageCounts:
    """Appendix F's stages counted over a group of cells (e.g. the settings of one lambda's two schedules).

    ``cells``: cells with snapshots; ``missing``: requested cells without; ``seeds``: (fewest, most) seeds of a
    cell with snapshots, (0, 0) without one; ``alike``, ``apart``, ``final``: cells showing each stage by the
    rulebook's rules; ``set_aside``: cells whose last snapshot has at least ``share`` of the mislabeled samples at a
    tau below :func:`stage_table`'s ``low`` (a description, not a stage); ``verdict``: C5's rule over these cells
    (:func:`nalkit.results.criteria.stages_verdict`); ``final_cells``: the ``(setting, variant)`` cells in the
    final stage."""

    cells: int
    missing: int
    seeds: tuple[int, int]
    alike: int
    apart: int
    final: int
    set_aside: int
    verdict: str
    final_cells: tuple[tuple[str, str], ...] = ()


def stage_counts(cells: pd.DataFrame, variants: Sequence[str] | None = None, share: float = 0.5) -> StageCounts:
    """:class:`StageCounts` of the rows of :func:`stage_cells` whose variant is in ``variants`` (default: all)."""
    from .criteria import stages_verdict

    rows = cells[cells.variant.isin(list(variants))] if variants is not None else cells
    have = rows[rows.seeds > 0]
    return StageCounts(cells=len(have), missing=len(rows) - len(have),
                       seeds=(int(have.seeds.min()), int(have.seeds.max())) if len(have) else (0, 0),
                       alike=int(have.alike.sum()), apart=int(have.apart.sum()), final=int(have.final.sum()),
                       set_aside=int((have.last_set_aside >= share).sum()),
                       verdict=stages_verdict(list(have.stages)),
                       final_cells=tuple((r.noise, r.variant) for r in have[have.final.astype(bool)].itertuples()))


def phi_cells(epochs: pd.DataFrame, settings: Sequence[str], variants: Sequence[str]) -> pd.DataFrame:
    """:func:`phi_scaling` with one row per ``settings`` x ``variants`` cell, in that order; a cell without phi
    records has ``seeds`` 0 and the other columns empty."""
    table = phi_scaling(epochs[epochs.variant.isin(list(variants))] if len(epochs) and "variant" in epochs
                        else epochs.iloc[:0])
    cols = ["noise", "variant", *[c for c in table.columns if c not in ("noise", "variant")]]
    have = {(r["noise"], r["variant"]): r for r in table.to_dict("records")}
    empty = {"seeds": 0, "epochs": 0, "scaled": [], "last_scaled": False}
    rows = [have.get((s, v), {"noise": s, "variant": v, **empty}) for s in settings for v in variants]
    out = pd.DataFrame(rows, columns=cols)
    # epochs stay integers beside the NaN of a cell without records
    return out.astype({c: "Int64" for c in ("seeds", "epochs", "lowest_epoch", "last_epoch") if c in out})


@dataclass(frozen=True)
class PhiCounts:
    """Theorem 1's scaling (the rulebook's ``PHI_GAP``, :func:`nalkit.results.criteria.scales_down`) counted over
    the cells of one variant: ``cells`` with phi records, ``missing`` without, ``seeds`` (fewest, most), ``decided``
    (cells with at least 2 seeds: one seed has no interval, so the rule cannot tell), and of those ``anywhere``
    (scaled in some epoch) and ``at_last`` (scaled in the last epoch)."""

    cells: int
    missing: int
    seeds: tuple[int, int]
    decided: int
    anywhere: int
    at_last: int


def phi_counts(cells: pd.DataFrame, variants: Sequence[str] | None = None) -> PhiCounts:
    """:class:`PhiCounts` of the rows of :func:`phi_cells` whose variant is in ``variants`` (default: all)."""
    rows = cells[cells.variant.isin(list(variants))] if variants is not None else cells
    have = rows[rows.seeds > 0]
    decided = have[have.seeds >= 2]
    return PhiCounts(cells=len(have), missing=len(rows) - len(have),
                     seeds=(int(have.seeds.min()), int(have.seeds.max())) if len(have) else (0, 0),
                     decided=len(decided), anywhere=int(sum(bool(x) for x in decided.scaled)),
                     at_last=int(decided.last_scaled.sum()))


def schedule_differences(summary: pd.DataFrame, epochs: pd.DataFrame, settings: Sequence[str],
                         pairs: dict[float, tuple[str, str]] | None = None) -> pd.DataFrame:
    """The authors' target schedule beside the book's at each lambda of ``pairs`` (default ``SCHEDULE_PAIRS``), per
    setting: one row per (setting, lambda), every one present.

    Columns: ``noise``, ``lam``, ``book``, ``authors`` (the variants), ``seeds_book``, ``seeds_authors`` (0 when a
    schedule has no records; :func:`horizon_summary`'s ``n``), ``test_book``, ``test_authors`` (mean test accuracy
    at the last epoch), ``diff`` (authors' - book's test accuracy at the last epoch of ``epochs``, paired over
    seeds: a :class:`nalkit.results.Difference`, ``n`` 0 without a pair), ``corrected_book``, ``corrected_authors``,
    ``corrected_mislabeled_book``, ``corrected_mislabeled_authors`` (argmax q against the clean labels, all and the
    mislabeled samples), from :func:`horizon_summary`."""
    from .stats import paired_difference

    pairs = SCHEDULE_PAIRS if pairs is None else pairs
    last = int(epochs.epoch.max()) if len(epochs) else 0
    late = at_epoch(epochs, last, ["test_acc"]) if len(epochs) else epochs
    cols = ["noise", "lam", "book", "authors", "seeds_book", "seeds_authors", "test_book", "test_authors", "diff",
            "corrected_book", "corrected_authors", "corrected_mislabeled_book", "corrected_mislabeled_authors"]
    rows = []
    for s in settings:
        for lam, (book, authors) in pairs.items():
            row = {"noise": s, "lam": lam, "book": book, "authors": authors}
            for key, variant in (("book", book), ("authors", authors)):
                hit = summary[(summary.noise == s) & (summary.variant == variant)] if len(summary) else summary
                r = hit.iloc[0] if len(hit) else None
                row[f"seeds_{key}"] = int(r.n) if r is not None else 0
                for col, src in (("test", "test_last"), ("corrected", "corrected_last"),
                                 ("corrected_mislabeled", "corrected_mislabeled_last")):
                    row[f"{col}_{key}"] = float(r[src]) if r is not None else float("nan")
            here = late[late.noise == s] if len(late) else late
            row["diff"] = paired_difference(here, "test_acc", authors, book, column="variant")
            rows.append(row)
    return pd.DataFrame(rows, columns=cols)


def seeds_per_cell(runs: pd.DataFrame, settings: Sequence[str], variants: Sequence[str]) -> pd.DataFrame:
    """How many seeds (complete runs) each ``settings`` x ``variants`` cell of ``runs`` has: columns ``noise``,
    ``variant``, ``seeds`` (0 for a cell without records), one row per cell in that order."""
    n = runs.groupby(["noise", "variant"]).seed.nunique().to_dict() if len(runs) else {}
    return pd.DataFrame([{"noise": s, "variant": v, "seeds": int(n.get((s, v), 0))} for s in settings for v in variants],
                        columns=["noise", "variant", "seeds"])


def ranked_means(epochs: pd.DataFrame, epoch: int, metric: str = "test_acc", by: str = "variant") -> pd.DataFrame:
    """Each ``by`` group's mean ``metric`` over its runs (seeds) at ``epoch``, per setting, best first: columns
    ``noise``, ``epoch``, ``by``, ``mean``, ``n``, in the settings' order of appearance; runs that did not reach
    ``epoch`` are left out."""
    at = at_epoch(epochs, epoch, [metric]) if len(epochs) else epochs
    cols = ["noise", "epoch", by, "mean", "n"]
    if not len(at):
        return pd.DataFrame(columns=cols)
    g = at.groupby(["noise", by], sort=False)[metric]
    out = pd.DataFrame({"mean": g.mean(), "n": g.count()}).reset_index()
    order = {s: i for i, s in enumerate(dict.fromkeys(at.noise))}
    out = out.assign(epoch=epoch, _o=out.noise.map(order))
    return out.sort_values(["_o", "mean"], ascending=[True, False], kind="stable")[cols].reset_index(drop=True)
