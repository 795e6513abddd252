"""The mechanism chapter's questions: how well per-sample snapshots (tau, loss) separate mislabeled samples."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .names import DEPARTURES, FULL

def snapshot_separation(snaps: pd.DataFrame) -> pd.DataFrame:
    """How well a snapshot score separates mislabeled samples, per run and epoch of a :func:`load_snapshots` frame.

    Columns: ``run``, ``epoch``, ``auroc`` (AUROC of ``1 - value`` for finding the mislabeled samples: for tau, low
    means suspect), ``median_clean``, ``median_mislabeled``.
    """
    from ..metrics import auroc

    rows = []
    for (run, epoch), g in snaps.groupby(["run", "epoch"], sort=True):
        noisy = g.is_noisy.to_numpy(bool)
        value = g.value.to_numpy(float)
        rows.append({"run": run, "epoch": epoch, "auroc": auroc(1.0 - value, noisy),
                     "median_clean": float(np.median(value[~noisy])) if (~noisy).any() else float("nan"),
                     "median_mislabeled": float(np.median(value[noisy])) if noisy.any() else float("nan")})
    return pd.DataFrame(rows, columns=["run", "epoch", "auroc", "median_clean", "median_mislabeled"])


def underfitting(runs: pd.DataFrame, x: str = "lam", share: float | None = None) -> tuple[pd.Series, object]:
    """Which values of ``x`` (one setting's sweep) underfit by the rulebook's UNDERFIT: those whose mean last-epoch
    training accuracy on the correctly labelled samples (``last_clean_acc``) is below ``share`` times the best
    value's. Returns (the underfitting values' mean accuracy, indexed by value; the best value), empty without
    records of that accuracy."""
    from .criteria import UNDERFIT

    share = UNDERFIT if share is None else share
    if not len(runs) or "last_clean_acc" not in runs:
        return pd.Series(dtype=float), None
    fit = runs.groupby(x).last_clean_acc.mean().dropna()
    if not len(fit):
        return pd.Series(dtype=float), None
    best = fit.idxmax()
    return fit[fit < share * fit[best]], (best, float(fit[best]))


#: the two ablations of the mechanism chapter, as :func:`nalkit.results.nal_variant` names them
ABLATIONS = (DEPARTURES["attention"], DEPARTURES["targets"])
#: every variant of the ablation grid (configs/grids/ablations.yaml) beside full NAL, in the order the chapter shows
#: them: one part removed, then the target momentum, then when q is updated
ABLATION_VARIANTS = (FULL, DEPARTURES["targets"], DEPARTURES["attention"], "α 0.7", "α 0.99",
                     "q updated every 10th epoch from epoch 20", DEPARTURES["epoch"])


def ablation_effects(runs: pd.DataFrame, settings: list[str] | None = None) -> dict[str, dict[str, object]]:
    """What removing each part of NAL changes: per ablation of :data:`ABLATIONS` and setting, the paired difference
    (over seeds) of the last-epoch test accuracy, ablation − full NAL (``runs`` has ``variant`` and ``setting``
    columns); settings without paired seeds are left out."""
    from .stats import paired_difference

    have = settings if settings is not None else list(dict.fromkeys(runs.setting)) if len(runs) else []
    out: dict[str, dict[str, object]] = {}
    for variant in ABLATIONS:
        diffs = {s: paired_difference(runs[runs.setting == s], "last_test_acc", variant, "full NAL", column="variant")
                 for s in have}
        out[variant] = {s: d for s, d in diffs.items() if d.n >= 2}
    return out


def resolved_settings(effects: dict[str, object], sign: int) -> list[str]:
    """The settings whose difference is resolved (its 95 % interval excludes 0, the rulebook's CONFIDENCE) with the
    given sign (-1: a cost, +1: a gain)."""
    return [s for s, d in effects.items() if not d.within_noise and d.mean * sign > 0]


def attention_timing(sweep: pd.DataFrame, epochs: pd.DataFrame, long_runs: pd.DataFrame, settings: list[str],
                     near: float = 0.99, early: float = 0.9) -> dict[str, object]:
    """When the attention branch rescales gradients, from the records of one lambda (the mechanism chapter's "when
    tau acts"): ``last`` (the sweep's last epoch); per setting ``end_tau`` (the mislabeled samples' mean tau then),
    ``phi_near`` (the long tier's share of samples with phi above ``near`` at that epoch, where it has snapshots),
    ``below`` ((lowest, highest, last epoch) of both groups' mean tau in the epochs before either reaches
    ``early``) and ``middle`` ((5 %, 95 % quantiles of every sample's tau, the snapshot epochs before the last)).
    ``sweep``, ``epochs`` and ``long_runs`` carry ``setting`` (and ``variant`` for ``long_runs``)."""
    from .load import load_snapshots

    out: dict[str, object] = {"last": int(epochs.epoch.max()) if len(epochs) else 0, "end_tau": {}, "phi_near": {},
                              "below": {}, "middle": {}, "long_epochs": None}
    if not settings or not len(epochs) or "tau_mislabeled" not in epochs:
        return out
    last = out["last"]
    out["end_tau"] = sweep.groupby("setting").last_tau_mislabeled.mean().to_dict()
    full = long_runs[long_runs.variant == "full NAL"] if len(long_runs) else long_runs
    phi = load_snapshots(full[full.setting.isin(settings)].run_dir, "phi", epochs=[last]) if len(full) else None
    if phi is not None and len(phi):
        where = full.set_index("run").setting
        out["phi_near"] = phi.assign(setting=phi.run.map(where)).groupby("setting").value.apply(
            lambda v: float((v > near).mean())).to_dict()
        out["long_epochs"] = int(full.epochs.max())
    for s in settings:
        m = epochs[epochs.setting == s].groupby("epoch")[["tau_clean", "tau_mislabeled"]].mean()
        reached = m.index[(m.max(axis=1) >= early)]
        below = m.loc[: reached.min() - 1] if len(reached) else m
        if not len(below):
            continue
        out["below"][s] = (float(below.min().min()), float(below.max().max()), int(below.index.max()))
        snaps = load_snapshots(sweep[sweep.setting == s].run_dir, "tau")
        snaps = snaps[(snaps.epoch >= 0) & (snaps.epoch < last)]
        if len(snaps):
            lo, hi = np.quantile(snaps.value, [0.05, 0.95])
            out["middle"][s] = (float(lo), float(hi), sorted(int(e) for e in snaps.epoch.unique()))
    return out
