"""The claims table (the book's opening page): one row per claim of the paper that the book tests, with the
deciding numbers and a verdict computed from the records.

:func:`claims_table` builds it from the frames of the grids (``default``, ``long``, ``tuning``; any may be
missing or empty). The verdict rules are plain functions, pinned by the tests on synthetic records:

* :func:`directional_verdict` -- from one interval per setting: *reproduced* only when every interval lies on
  the claimed side of 0 (an interval that covers 0 never reproduces a claim), *partly* when some do, *not
  reproduced* when none does;
* :func:`count_verdict` -- from how many settings meet a stated criterion;
* a claim whose records do not exist is *not tested here*, with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .comparison import TUNED, select_methods
from .horizon import horizon_summary, stage_table, with_variant
from .load import ATTENTION_CONTROLS, nal_variant
from .stats import Difference, epoch_time_by_hardware, mean_interval, paired_difference

REPRODUCED, PARTLY, NOT_REPRODUCED, NOT_TESTED = "reproduced", "partly", "not reproduced", "not tested here"
#: the verdicts, strongest first
VERDICTS = (REPRODUCED, PARTLY, NOT_REPRODUCED, NOT_TESTED)
#: the appendix's settings, in the book's order
SETTINGS = ("sym 40 %", "sym 80 %", "asym 40 %")

#: the thresholds of the verdict rules (fractions), named so that the book can print them
MEMORISED = 0.95       # CE "fits the whole noisy labels": at least this share of the mislabeled samples memorised
NEAR_CLEAN = 0.05      # NAL "fits around the clean fraction": training accuracy on the noisy labels within this
FLAT = 0.01            # NAL's test accuracy "does not fall": it ends within this of its peak (mean over seeds)
STAGE_ALIKE = 0.6      # stage 1: AUROC of 1 - tau at the first snapshot at most this
STAGE_APART = 0.75     # stage 2: at some snapshot at least this
STAGE_FINAL = 0.9      # stage 3: at the last snapshot at least this, with the clean samples' median tau >= 0.9
PHI_GAP = 0.05         # Theorem 1 at work: the mislabeled samples' mean phi at least this below the clean ones'
MATCH = 0.01          # NAL "matches" a method: the 95 % interval of the paired difference lies within +-MATCH
COST_SAME = 1.15       # "about what CE costs": NAL's median epoch time at most this multiple of CE's


@dataclass(frozen=True)
class Claim:
    """One row: the claim, where the paper makes it, where this book tests it, the deciding numbers, the verdict."""

    key: str
    claim: str
    where: str
    evidence: str
    numbers: str
    verdict: str

    def row(self) -> dict[str, str]:
        """The claim as one table row, keyed by the table's column names."""
        return {"": self.key, "claim": self.claim, "paper": self.where, "evidence": self.evidence,
                "deciding numbers": self.numbers, "verdict": self.verdict}


def directional_verdict(diffs: Sequence[Difference]) -> str:
    """*reproduced* when every difference has an interval above 0, *partly* when some do, *not reproduced* when
    none does (below 0, or within noise), *not tested here* without a difference that has an interval."""
    have = [d for d in diffs if d.n >= 2 and np.isfinite(d.low)]
    if not have:
        return NOT_TESTED
    above = sum(d.low > 0 for d in have)
    return REPRODUCED if above == len(have) else PARTLY if above else NOT_REPRODUCED


def count_verdict(met: int, of: int) -> str:
    """*reproduced* when all ``of`` settings meet the criterion, *partly* when some do, *not reproduced* when none,
    *not tested here* when there is none to judge."""
    if of <= 0:
        return NOT_TESTED
    return REPRODUCED if met == of else PARTLY if met else NOT_REPRODUCED


def _pts(x: float) -> str:
    return f"{100 * x:+.1f}"


def _interval(d: Difference) -> str:
    return f"{_pts(d.mean)} [{_pts(d.low)}, {_pts(d.high)}]" if d.n >= 2 else "–"


def _present(runs: pd.DataFrame) -> list[str]:
    have = set(runs.noise) if len(runs) and "noise" in runs else set()
    return [s for s in SETTINGS if s in have]


def _untested(key: str, claim: str, where: str, evidence: str, reason: str) -> Claim:
    return Claim(key, claim, where, evidence, reason, NOT_TESTED)


def baselines_tuned(default: pd.DataFrame, tuning: pd.DataFrame) -> bool:
    """True when every tuned baseline of ``default`` runs with the value :func:`select_methods` chooses from
    ``tuning`` (and the tuning grid has candidates for every baseline of ``default``)."""
    if not len(tuning) or not len(default):
        return False
    chosen = select_methods(tuning)
    for method, column in TUNED.items():
        if method == "nal" or method not in set(default.method):
            continue
        if method not in chosen or column not in default:
            return False
        used = default[default.method == method][column].dropna().unique()
        if len(used) != 1 or not np.isclose(float(used[0]), chosen[method].chosen):
            return False
    return True


def _beats_ce(default: pd.DataFrame) -> Claim:
    key, claim, where = "C1", "NAL beats CE under label noise", "main text (CIFAR); appendix E"
    evidence = "{numref}`tab-acc-last`"
    settings = [s for s in _present(default) if {"nal", "ce"} <= set(default[default.noise == s].method)]
    if not settings:
        return _untested(key, claim, where, evidence, "no default-grid records")
    diffs = [paired_difference(default[default.noise == s], "last_test_acc", "nal", "ce") for s in settings]
    numbers = "; ".join(f"{s}: {_interval(d)}" for s, d in zip(settings, diffs))
    return Claim(key, claim, where, evidence, f"NAL − CE, last epoch, points [95 % CI]: {numbers}",
                 directional_verdict(diffs))


def _beats_baselines(default: pd.DataFrame, tuning: pd.DataFrame) -> Claim:
    key, claim = "C2", "NAL matches or beats the other robust methods"
    where, evidence = "main text (CIFAR, real noise); appendix C, Table 2", "{numref}`tab-acc-last`"
    others = sorted(set(default.method) - {"nal", "ce"}) if len(default) else []
    gaps = against_best(default, "nal", others) if others else {}
    if not gaps:
        return _untested(key, claim, where, evidence, "no default-grid records with baselines")
    parts = [f"{s}: NAL − {best.upper()} {_interval(diff)} ({standing(diff)})" for s, (best, diff) in gaps.items()]
    verdict = count_verdict(sum(standing(d) in ("ahead", "matches") for _, d in gaps.values()), len(gaps))
    tuned = baselines_tuned(default, tuning)
    if not tuned and verdict == REPRODUCED:
        verdict = PARTLY     # a ranking in which only NAL is tuned favours it
    n = int(default.groupby(["noise", "method"]).size().min())
    note = (f"every method tuned on the noisy validation set, {n} seeds" if tuned
            else f"the baselines at their authors' CIFAR-10 values, not tuned here; {n} seeds")
    return Claim(key, claim, where, evidence,
                 "against the best other method, last epoch, points [95 % CI]: " + "; ".join(parts) + f"; {note}; "
                 f"'matches': the interval lies within ±{100 * MATCH:g} point", verdict)


def matches(diff: Difference) -> bool:
    """Two methods match (an equivalence, not a failure to separate): the paired difference's 95 % interval lies
    within ``MATCH`` of 0 on both sides. A wide interval that covers 0 is *undecided*, not a match."""
    return bool(diff.n >= 2 and -MATCH <= diff.low and diff.high <= MATCH)


def _long_rows(long_runs: pd.DataFrame, long_epochs: pd.DataFrame) -> pd.DataFrame:
    if not len(long_runs) or not len(long_epochs):
        return pd.DataFrame()
    return horizon_summary(with_variant(long_runs), with_variant(long_epochs))


def _row(summary: pd.DataFrame, setting: str, variant: str) -> pd.Series | None:
    if not len(summary):
        return None
    m = summary[(summary.noise == setting) & (summary.variant == variant)]
    return m.iloc[0] if len(m) else None


def _ce_against_nal(summary: pd.DataFrame, key: str, claim: str, where: str, head: str,
                    judge: Callable[[pd.Series, pd.Series], bool], describe: Callable[[pd.Series, pd.Series], str]
                    ) -> Claim:
    """A long-tier claim about CE and NAL per setting: ``judge(ce, nal)`` decides a setting, ``describe`` words
    its numbers, and the verdict counts the settings judged true (:func:`count_verdict`)."""
    evidence = "{numref}`fig-horizon-fit`"
    settings = [s for s in SETTINGS if _row(summary, s, "CE") is not None and _row(summary, s, "NAL") is not None]
    if not settings:
        return _untested(key, claim, where, evidence, "no long-training records of CE and NAL")
    met, parts = 0, []
    for s in settings:
        ce, nal = _row(summary, s, "CE"), _row(summary, s, "NAL")
        met += bool(judge(ce, nal))
        parts.append(f"{s}: {describe(ce, nal)}")
    head = head.format(epoch=int(summary.last_epoch.max()))
    return Claim(key, claim, where, evidence, head + "; ".join(parts), count_verdict(met, len(settings)))


def _memorises(summary: pd.DataFrame) -> Claim:
    return _ce_against_nal(
        summary, "C3", "CE memorises every noisy label; NAL fits only about the clean fraction",
        "appendix E, Fig. 7 and 9", "epoch {epoch}: ",
        lambda ce, nal: ce.memorized_last >= MEMORISED and abs(nal.fit_last - nal.clean_fraction) <= NEAR_CLEAN,
        lambda ce, nal: (f"CE memorised {100 * ce.memorized_last:.0f} %, NAL fits {100 * nal.fit_last:.1f} % "
                         f"(clean {100 * nal.clean_fraction:.1f} %)"))


def _falls(summary: pd.DataFrame) -> Claim:
    return _ce_against_nal(
        summary, "C4", "CE's test accuracy falls as it memorises; NAL's does not", "appendix E, Fig. 8 and 10; B.3",
        "peak − epoch {epoch}, points: ",
        lambda ce, nal: ce.test_drop.n >= 2 and ce.test_drop.low > 0 and nal.test_drop.mean <= FLAT,
        lambda ce, nal: f"CE {_interval(ce.test_drop)}, NAL {_pts(nal.test_drop.mean)}")


def stages_present(stages: pd.DataFrame) -> tuple[bool, bool, bool]:
    """Which of appendix F's stages one (schedule, setting) cell of :func:`nalkit.results.stage_table` shows,
    from the means over its seeds: alike at first (AUROC of 1 − tau ≤ ``STAGE_ALIKE`` at the first snapshot),
    separating (≥ ``STAGE_APART`` at some snapshot), and the final stage (clean tau near 1, little overlap: AUROC
    ≥ ``STAGE_FINAL`` and the clean samples' median tau ≥ 0.9 at the last snapshot)."""
    if not len(stages):
        return False, False, False
    m = stages.groupby("epoch")[["auroc", "median_clean"]].mean().sort_index()
    return (bool(m.auroc.iloc[0] <= STAGE_ALIKE), bool(m.auroc.max() >= STAGE_APART),
            bool(m.auroc.iloc[-1] >= STAGE_FINAL and m.median_clean.iloc[-1] >= 0.9))


def _three_stages(stages: pd.DataFrame) -> Claim:
    key, claim = "C5", "τ moves in three stages: alike, separating, then clean near 1 with little overlap"
    where, evidence = "appendix F, Fig. 11–13 (CIFAR-10, sym 40 %)", "{numref}`fig-horizon-stages-0`"
    cells = stages[stages.noise == "sym 40 %"] if len(stages) else stages
    if not len(cells):
        return _untested(key, claim, where, evidence, "no τ snapshots of long NAL runs at sym 40 %")
    best, parts = 0, []
    for variant, g in cells.groupby("variant", sort=True):
        found = stages_present(g)
        best = max(best, sum(found))
        last = g[g.epoch == g.epoch.max()]
        parts.append(f"{variant}: stages {'/'.join('yes' if f else 'no' for f in found)}, last AUROC "
                     f"{last.auroc.mean():.2f}, mislabeled at τ < 0.5 {100 * last.set_aside.mean():.0f} %")
    verdict = REPRODUCED if best == 3 else PARTLY if best else NOT_REPRODUCED
    return Claim(key, claim, where, evidence, "sym 40 %: " + "; ".join(parts), verdict)


def _corrects(default: pd.DataFrame) -> Claim:
    key, claim = "C6", "Target estimation corrects labels: argmax q beats the noisy labels"
    where, evidence = "appendix D, Fig. 1–6", "{numref}`tab-corrected`"
    nal = default[default.method == "nal"] if len(default) else default
    settings = [s for s in _present(nal) if nal[nal.noise == s].last_corrected_acc.notna().any()]
    if not settings:
        return _untested(key, claim, where, evidence, "no NAL records of the default grid")
    diffs = []
    for s in settings:
        d = nal[nal.noise == s]
        diffs.append(mean_interval(d.last_corrected_acc - (1 - d.actual_noise_rate), "corrected", "noisy"))
    numbers = "; ".join(f"{s}: {_interval(d)}" for s, d in zip(settings, diffs))
    return Claim(key, claim, where, evidence, f"correct labels, corrected − noisy, points [95 % CI]: {numbers}",
                 directional_verdict(diffs))


def _theorem(long_epochs: pd.DataFrame) -> Claim:
    key = "C7"
    claim = "Theorem 1: NAL scales a sample's CE gradient by φ ∈ (0, 1), smaller for the mislabeled samples"
    where, evidence = "appendix A.2", "{numref}`fig-phi-epochs`"
    if not len(long_epochs) or "phi_mislabeled" not in long_epochs:
        return _untested(key, claim, where, evidence, "no records of φ")
    e = with_variant(long_epochs)
    e = e[(e.variant == "NAL")].dropna(subset=["phi_clean", "phi_mislabeled"])
    settings = _present(e)
    if not settings:
        return _untested(key, claim, where, evidence, "no records of φ")
    met, parts, anywhere = 0, [], 0
    for s in settings:
        g = e[e.noise == s].assign(gap=lambda x: x.phi_clean - x.phi_mislabeled)
        per_epoch = {ep: mean_interval(h.gap) for ep, h in g.groupby("epoch")}
        scaled = [ep for ep, d in per_epoch.items() if scales_down(d)]
        met += scales_down(per_epoch[max(per_epoch)])
        anywhere += bool(scaled)
        span = (f"{len(scaled)} of {len(per_epoch)} epochs (first {min(scaled)}, last {max(scaled)})" if scaled
                else "no epoch")
        end = g[g.epoch == g.epoch.max()]
        parts.append(f"{s}: mislabeled φ below clean by ≥ {PHI_GAP:g} in {span}, at the last epoch φ = "
                     f"{end.phi_clean.mean():.4f} (clean), {end.phi_mislabeled.mean():.4f} (mislabeled)")
    verdict = REPRODUCED if met == len(settings) else PARTLY if anywhere else NOT_REPRODUCED
    return Claim(key, claim, where, evidence, "; ".join(parts) + " (the formula itself is checked against autograd "
                 "in the tests)", verdict)


def scales_down(gap: Difference) -> bool:
    """Theorem 1's scaling shows in one epoch: the clean samples' mean φ exceeds the mislabeled samples' by at
    least ``PHI_GAP`` (a gradient at least that much smaller), with a 95 % interval above 0 over the seeds."""
    return bool(gap.n >= 2 and gap.low > 0 and gap.mean >= PHI_GAP)


def against_best(runs: pd.DataFrame, reference: str, rivals: Sequence[str], column: str = "method"
                 ) -> dict[str, tuple[str, Difference]]:
    """Per noise setting: the best of ``rivals`` (by mean last-epoch test accuracy) and ``reference``'s paired
    difference to it over seeds (``reference - best``). Settings without ``reference`` or a rival are left out."""
    gaps = {}
    for s in _present(runs):
        d = runs[runs.noise == s]
        means = d[d[column].isin(rivals)].groupby(column).last_test_acc.mean()
        if reference in set(d[column]) and len(means):
            best = str(means.idxmax())
            gaps[s] = (best, paired_difference(d, "last_test_acc", reference, best, column=column))
    return gaps


def standing(diff: Difference) -> str:
    """``ahead`` (the interval above 0), else ``matches`` (:func:`matches`), else ``behind`` (below 0), else
    ``undecided``; ``one seed`` without an interval."""
    if diff.n < 2:
        return "one seed"
    return "ahead" if diff.low > 0 else "matches" if matches(diff) else "behind" if diff.high < 0 else "undecided"


def per_sample_gaps(controls: pd.DataFrame) -> dict[str, tuple[str, Difference]]:
    """:func:`against_best` of full NAL against the attention controls without per-sample tau
    (``full NAL - control``, over seeds)."""
    runs = controls[controls.method == "nal"] if len(controls) and "method" in controls else controls.iloc[:0]
    runs = runs.assign(variant=runs.apply(nal_variant, axis=1)) if len(runs) else runs
    return against_best(runs, "full NAL", list(ATTENTION_CONTROLS.values()), column="variant") if len(runs) else {}


def _per_sample(controls: pd.DataFrame) -> Claim:
    key = "C8"
    claim = ("The attention's per-sample values matter: a τ that is not per sample (one for all, one per class, NAL's "
             "mean per epoch) does worse")
    where = "implied by the branch's design (one logit per sample) and appendix F (τ per sample, clean vs mislabeled)"
    evidence = "{numref}`tab-controls`"
    if not len(controls) or "method" not in controls:
        return _untested(key, claim, where, evidence, "no records of the attention controls")
    gaps = per_sample_gaps(controls)
    if not gaps:
        return _untested(key, claim, where, evidence, "no setting has full NAL beside a control")
    parts = [f"{s}: full NAL − {best} {_interval(diff)}" for s, (best, diff) in gaps.items()]
    return Claim(key, claim, where, evidence, "last-epoch test accuracy, full NAL − the best control, points "
                 f"[95 % CI]: {'; '.join(parts)}", directional_verdict([d for _, d in gaps.values()]))


def _cost(default: pd.DataFrame) -> Claim:
    key, claim = "C9", "NAL costs about what a single network with a robust loss costs"
    where, evidence = "appendix C, Table 2 (GPU memory)", "{numref}`tab-cost-ours`"
    if not len(default) or not {"nal", "ce"} <= set(default.method) or "sec_per_epoch" not in default:
        return _untested(key, claim, where, evidence, "no default-grid timings")
    t, n = epoch_time_by_hardware(default)
    same = list(t[["nal", "ce"]].dropna().index) if "nal" in t else []
    if not same:
        return _untested(key, claim, where, evidence, "no hardware has timings of both NAL and CE")
    ratios = {h: float(t.loc[h, "nal"] / t.loc[h, "ce"]) for h in same}
    worst = max(ratios.values())
    verdict = REPRODUCED if worst <= COST_SAME else PARTLY if worst <= 1.5 else NOT_REPRODUCED
    parts = [f"{r:.2f} ({int(n.loc[h, 'nal'])} NAL and {int(n.loc[h, 'ce'])} CE runs on {h})" for h, r in ratios.items()]
    return Claim(key, claim, where, evidence, f"median epoch time NAL / CE on the same hardware = {'; '.join(parts)}"
                 " (GPU memory needs a GPU, not measured here)", verdict)


NOT_HERE = (
    ("C10", "Accuracy tables on CIFAR-10 and CIFAR-100 (ResNet-34, 500 epochs)", "main text",
     "needs CIFAR data and a GPU (no network access here; configs/paper/ has the recipes)"),
    ("C11", "Accuracy on real label noise: ANIMAL-10N, Clothing1M, mini-WebVision", "main text; appendix C",
     "needs the real-noise datasets and a GPU (loaders tested on fabricated files only)"),
)


def claims_table(grids: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]], stages: pd.DataFrame | None = None
                 ) -> list[Claim]:
    """The claims table from the grids' ``(runs, epochs)`` frames (keys ``default``, ``long``, ``tuning``,
    ``controls``; any may be absent). ``stages`` is :func:`nalkit.results.stage_table` of the long tier's NAL runs; computed from
    their per-sample records when not given."""
    empty = (pd.DataFrame(), pd.DataFrame())
    default, _ = grids.get("default", empty)
    long_runs, long_epochs = grids.get("long", empty)
    tuning, _ = grids.get("tuning", empty)
    controls, _ = grids.get("controls", empty)
    summary = _long_rows(long_runs, long_epochs)
    if stages is None:
        nal = with_variant(long_runs) if len(long_runs) else long_runs
        nal = nal[nal.variant.isin(("NAL", "NAL, authors' schedule"))] if len(nal) else nal
        stages = stage_table(nal) if len(nal) else pd.DataFrame()
    rows = [_beats_ce(default), _beats_baselines(default, tuning), _memorises(summary), _falls(summary),
            _three_stages(stages), _corrects(default), _theorem(long_epochs), _per_sample(controls),
            _cost(default)]
    rows += [Claim(key, claim, where, "–", reason, NOT_TESTED) for key, claim, where, reason in NOT_HERE]
    return rows


def claims_frame(claims: Sequence[Claim]) -> pd.DataFrame:
    """The claims as a frame, one row each (the book prints it)."""
    return pd.DataFrame([c.row() for c in claims])
