"""The mechanism chapter's questions: how well per-sample snapshots (tau, loss) separate mislabeled samples, and
what each part of NAL buys.

* :func:`snapshot_separation`, :func:`sweep_snapshots`, :func:`stage_overview` -- tau's snapshots per run, per
  (setting, lambda) cell of the sweep with the rulebook's stages, and across the chapter's panels;
* :func:`tau_at_lambda` -- how well tau and the loss find the mislabeled samples at one lambda, and whether tau
  sorts them better without target estimation (a paired interval, the rulebook's CONFIDENCE);
* :func:`underfitting` -- the lambdas whose low memorisation is underfitting (the rulebook's UNDERFIT);
* :func:`sweep_setting`, :func:`rank_agreement` -- the lambda sweep at one setting (best lambdas, collapsed runs) and
  how far the selection on the noisy validation set agrees with clean labels;
* :func:`ablation_runs`, :func:`ablation_effects`, :func:`resolved_settings`, :func:`ablation_answer`,
  :func:`ablation_means`, :func:`unmoved_targets` -- what removing each part of NAL changes, where its robustness
  comes from, and which target schedules never moved q;
* :func:`attention_timing` -- when the attention branch rescales gradients.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .criteria import COLLAPSED, UNMOVED  # noqa: F401  (the rulebook's; the chapter imports COLLAPSED here)
from .names import DEPARTURES, FULL
from .stats import Difference


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


def ablation_runs(sweep: pd.DataFrame, abl: pd.DataFrame) -> pd.DataFrame:
    """The ablation grid's runs with full NAL beside them: the lambda sweep's runs at the ablations' lambda(s) (full
    NAL is not rerun by the ablation grid) and the ablation runs, each run once."""
    if not len(abl):
        return abl
    lams = sorted(abl.lam.unique())
    full = sweep[sweep.lam.isin(lams)] if len(sweep) else sweep
    return pd.concat([full, abl]).drop_duplicates("run")


@dataclass(frozen=True)
class TauAtLambda:
    """How well tau finds the mislabeled samples at one lambda (the mechanism chapter's answer on tau).

    ``tau`` and ``loss``: mean last-epoch AUROC of 1 - tau and of the per-sample loss per setting at ``lam``;
    ``best_lam``, ``best_tau``: the lambda of the sweep with the highest mean AUROC of 1 - tau (over settings and
    seeds) and that mean; ``alone``: the mean AUROC of 1 - tau without target estimation at ``lam`` per setting
    (empty without ablation records); ``gain``: per setting, its paired difference (no target estimation − full
    NAL, over seeds); ``better``: the settings where that difference lies above 0 by the rulebook's CONFIDENCE
    (:func:`nalkit.results.criteria.side`), in the order of ``settings``."""

    lam: float
    tau: pd.Series
    loss: pd.Series
    best_lam: float
    best_tau: float
    alone: pd.Series
    gain: dict[str, Difference]
    better: list[str]

    @property
    def mean_tau(self) -> float:
        """The mean over settings of the per-setting mean AUROC of 1 - tau at ``lam``."""
        return float(self.tau.mean())


def tau_at_lambda(sweep: pd.DataFrame, abl: pd.DataFrame, lam: float,
                  settings: Sequence[str] | None = None) -> TauAtLambda:
    """:class:`TauAtLambda` from the lambda sweep's runs (``sweep``: ``lam``, ``setting``, ``last_tau_auroc``,
    ``last_loss_auroc``) and the ablation runs (``abl``, with ``variant``); ``settings`` orders ``better`` (default:
    the order the settings first appear in)."""
    from .criteria import HOLDS, side
    from .names import DEPARTURES
    from .stats import paired_difference

    at = sweep[sweep.lam == lam]
    tau = at.groupby("setting").last_tau_auroc.mean()
    loss = at.groupby("setting").last_loss_auroc.mean()
    by_lam = sweep.groupby("lam").last_tau_auroc.mean()
    alone = abl[(abl.lam == lam) & (abl.variant == DEPARTURES["targets"])] if len(abl) else abl.iloc[:0]
    tau_alone = alone.groupby("setting").last_tau_auroc.mean() if len(alone) else pd.Series(dtype=float)
    order = list(settings) if settings is not None else list(dict.fromkeys(alone.setting)) if len(alone) else []
    gain = {}
    for s in [s for s in order if s in tau_alone.index and s in tau.index]:
        pair = pd.concat([at[(at.setting == s) & (at.variant == FULL)], alone[alone.setting == s]])
        gain[s] = paired_difference(pair, "last_tau_auroc", DEPARTURES["targets"], FULL, column="variant")
    return TauAtLambda(lam, tau, loss, float(by_lam.idxmax()), float(by_lam.max()), tau_alone, gain,
                       [s for s, d in gain.items() if side(d) == HOLDS])


@dataclass(frozen=True)
class AblationAnswer:
    """What removing each part of NAL changes, and so where NAL's robustness comes from (the mechanism chapter's
    "why").

    ``effects``: :func:`ablation_effects`; ``costs`` / ``gains``: per ablation the settings where it costs / adds
    accuracy beyond the seed spread (:func:`resolved_settings`); ``memorised`` and ``tau_auroc``: the mean
    last-epoch memorised share and AUROC of 1 - tau per (setting, variant); ``lam``: the lambda the ablations ran
    at (the sweep's selected one where they ran at several)."""

    lam: float
    effects: dict[str, dict[str, Difference]]
    costs: dict[str, list[str]]
    gains: dict[str, list[str]]
    memorised: pd.Series
    tau_auroc: pd.Series

    @property
    def source(self) -> str:
        """Where the robustness comes from, by the ablations' resolved costs: ``"targets"`` (only removing target
        estimation costs accuracy), ``"attention"`` (fixing tau at 1 costs accuracy somewhere), ``"neither"``."""
        attention, targets = ABLATIONS
        if not self.costs[attention] and self.costs[targets]:
            return "targets"
        return "attention" if self.costs[attention] else "neither"


def ablation_answer(sweep: pd.DataFrame, abl: pd.DataFrame, settings: Sequence[str] | None = None
                    ) -> AblationAnswer | None:
    """:class:`AblationAnswer` from the lambda sweep's and the ablation grid's runs (both with ``variant`` and
    ``setting``); None when an ablation has no paired seeds in any setting."""
    from .stats import select_lambda

    if not len(abl) or not len(sweep):
        return None
    both = ablation_runs(sweep, abl)
    have = list(settings) if settings is not None else list(dict.fromkeys(both.setting))
    effects = ablation_effects(both, have)
    if not all(effects.values()):
        return None
    lams = sorted(abl.lam.unique())
    means = ablation_means(both)
    return AblationAnswer(float(lams[0]) if len(lams) == 1 else select_lambda(sweep).chosen, effects,
                          {v: resolved_settings(d, -1) for v, d in effects.items()},
                          {v: resolved_settings(d, +1) for v, d in effects.items()},
                          means.last_memorized, means.last_tau_auroc)


@dataclass(frozen=True)
class SnapshotSeparation:
    """The tau snapshots of one (setting, lambda) cell of the sweep and how they separate the mislabeled samples.

    ``snapshots``: :func:`nalkit.results.load_snapshots` rows at the snapshot epochs (``run``, ``epoch``, ``value``,
    ``is_noisy``); ``separation``: per epoch the mean and std over seeds of each run's AUROC of 1 - tau and median
    tau of the clean and of the mislabeled samples (columns ``auroc_mean``, ``auroc_std``, ``median_clean_mean``,
    ...); ``stages``: the rulebook's stages of the cell (:func:`nalkit.results.tau_stages`; None without
    snapshots)."""

    setting: str
    lam: float
    snapshots: pd.DataFrame
    separation: pd.DataFrame
    stages: object

    @property
    def last_median_mislabeled(self) -> float:
        """The mislabeled samples' median tau at the last snapshot (each seed's median, mean over seeds)."""
        return float(self.separation.median_mislabeled_mean.iloc[-1]) if len(self.separation) else float("nan")


def sweep_snapshots(sweep: pd.DataFrame, setting: str, lam: float) -> SnapshotSeparation:
    """:class:`SnapshotSeparation` of the sweep's runs at ``setting`` and ``lam`` (their tau snapshots)."""
    from .criteria import tau_stages
    from .load import load_snapshots

    dirs = sweep[(sweep.setting == setting) & (sweep.lam == lam)].run_dir if len(sweep) else []
    snaps = load_snapshots(dirs, "tau") if len(dirs) else pd.DataFrame(columns=["run", "epoch", "value", "is_noisy"])
    snaps = snaps[snaps.epoch >= 0]
    if not len(snaps):
        return SnapshotSeparation(setting, lam, snaps, pd.DataFrame(), None)
    per_run = snapshot_separation(snaps)
    sep = per_run.drop(columns="run").groupby("epoch").agg(["mean", "std"])
    sep.columns = [f"{a}_{b}" for a, b in sep.columns]
    return SnapshotSeparation(setting, lam, snaps, sep, tau_stages(per_run))


@dataclass(frozen=True)
class StageOverview:
    """Across the panels of the mechanism chapter's tau figures: the (setting, lambda) cells whose tau reaches the
    rulebook's stage 2 (``apart``, with their :class:`nalkit.results.Stages`) and stage 3 (``final``), and the range
    of the mislabeled samples' median tau at the last snapshot (``lowest``, ``highest``)."""

    apart: list[tuple[str, float, object]]
    final: list[tuple[str, float]]
    lowest: float
    highest: float


def stage_overview(cells: Mapping[tuple[str, float], tuple[object, float]]) -> StageOverview:
    """:class:`StageOverview` of ``{(setting, lambda): (Stages, last median tau of the mislabeled samples)}``."""
    medians = [m for _, m in cells.values()]
    return StageOverview([(s, lam, st) for (s, lam), (st, _) in cells.items() if st.apart],
                         [(s, lam) for (s, lam), (st, _) in cells.items() if st.final],
                         float(min(medians)) if medians else float("nan"),
                         float(max(medians)) if medians else float("nan"))




@dataclass(frozen=True)
class SweepSetting:
    """The lambda sweep at one setting (the mechanism chapter's sweep sentences): per lambda the mean last-epoch test
    accuracy, AUROC of 1 - tau and memorised share (``means``, indexed by lambda, ascending); the lambda with the
    best mean test accuracy (``best_acc``) and the best mean AUROC (``best_tau``); the range of the mean memorised
    share over the sweep (``memorised_low``, ``memorised_high``); and per lambda with collapsed runs (test accuracy
    at most ``COLLAPSED``) the number of those runs and of all runs there (``collapsed``: {lambda: (collapsed, runs)})."""

    setting: str
    means: pd.DataFrame
    best_acc: float
    best_tau: float
    memorised_low: float
    memorised_high: float
    collapsed: dict[float, tuple[int, int]]


def sweep_setting(sweep: pd.DataFrame, setting: str) -> SweepSetting:
    """:class:`SweepSetting` of the sweep's runs at ``setting`` (columns ``lam``, ``setting``, ``last_test_acc``,
    ``last_tau_auroc``, ``last_memorized``)."""
    d = sweep[sweep.setting == setting]
    m = d.groupby("lam")[["last_test_acc", "last_tau_auroc", "last_memorized"]].mean()
    chance = d[d.last_test_acc <= COLLAPSED].groupby("lam").size()
    return SweepSetting(setting, m, float(m.last_test_acc.idxmax()), float(m.last_tau_auroc.idxmax()),
                        float(m.last_memorized.min()), float(m.last_memorized.max()),
                        {float(lam): (int(n), int((d.lam == lam).sum())) for lam, n in chance.items()})


def rank_agreement(sweep: pd.DataFrame, selection) -> float:
    """How far the selection on the noisy validation set agrees with what clean labels would choose: the correlation
    of the candidates' ranks by mean noisy-validation accuracy (``selection.table``, :func:`nalkit.results.select`)
    and by mean accuracy on the same images against their clean labels (``last_val_acc_clean``)."""
    rank_noisy = selection.table[f"{selection.table.columns[0].rsplit('_', 1)[0]}_mean"].rank(ascending=False)
    rank_clean = sweep.groupby(selection.parameter).last_val_acc_clean.mean().rank(ascending=False)
    return float(np.corrcoef(rank_noisy, rank_clean.loc[rank_noisy.index])[0, 1])


def ablation_means(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (setting, variant) of the ablation runs (:func:`ablation_runs`) the mean last-epoch memorised share
    (``last_memorized``), AUROC of 1 - tau (``last_tau_auroc``) and corrected-label accuracy
    (``last_corrected_acc``) over seeds, of those columns ``runs`` has."""
    columns = [c for c in ("last_memorized", "last_tau_auroc", "last_corrected_acc") if c in runs]
    return runs.groupby(["setting", "variant"])[columns].mean()


def unmoved_targets(runs: pd.DataFrame, variants: Sequence[str]) -> list[str]:
    """The variants of ``variants`` whose corrected labels are those of NAL without target estimation: their mean
    last-epoch corrected-label accuracy is within ``UNMOVED`` of its in every setting (q never moved away from the
    noisy label it starts from). Empty without records of NAL without target estimation."""
    corrected = runs.groupby(["variant", "setting"]).last_corrected_acc.mean().unstack()
    alone = DEPARTURES["targets"]
    if alone not in corrected.index:
        return []
    return [v for v in variants if v in corrected.index
            and ((corrected.loc[v] - corrected.loc[alone]).abs() < UNMOVED).all()]
