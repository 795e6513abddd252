"""The rulebook: every threshold and verdict rule the book uses, declared once, with its reason.

Each rule is a :class:`Rule` in ``RULES`` (the book's page "How the verdicts are decided" renders
:func:`rulebook`); the module-level constants are their values, and every function of :mod:`nalkit.results` that
decides something imports them from here, so two chapters that ask the same question apply the same rule.

The verdict words (``VERDICTS``):

* *reproduced* -- every setting tested supports the claim (for an interval: it lies on the claimed side of the
  boundary);
* *partly* -- some settings support it (the numbers say which);
* *not reproduced* -- none supports it and at least one contradicts it (the interval on the wrong side);
* *undecided* -- none supports or contradicts it: every interval covers the boundary (more seeds could decide);
* *not tested here* -- the records to judge it do not exist (the reason is given).

A rule's ``after_results`` says whether its value was fixed after the records it judges had been seen (true of
every rule but the 95 % interval, the field's convention: the book has no pre-registration; the page says so
rather than hide it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .stats import Difference

REPRODUCED, PARTLY, NOT_REPRODUCED, UNDECIDED, NOT_TESTED = (
    "reproduced", "partly", "not reproduced", "undecided", "not tested here")
#: the verdicts, strongest first
VERDICTS = (REPRODUCED, PARTLY, NOT_REPRODUCED, UNDECIDED, NOT_TESTED)
#: per setting, what one interval says about a claim
HOLDS, FAILS, OPEN = "holds", "fails", "undecided"
#: a difference over one seed has no interval: it decides nothing
ONE_SEED = "one seed"
#: :func:`standing`'s words, in its order
STANDINGS = ("ahead", "matches", "behind", OPEN, ONE_SEED)


@dataclass(frozen=True)
class Rule:
    """One declared criterion: its name (the constant), value, the question it decides, the rule in words, why this
    value, which claims and chapters use it, and whether it was fixed after seeing the records it judges."""

    name: str
    value: float
    question: str
    rule: str
    reason: str
    used_by: str
    after_results: bool = True


RULES: tuple[Rule, ...] = (
    Rule("CONFIDENCE", 0.95, "Is a difference beyond the seed-to-seed spread?",
         "the two-sided 95 % Student-t interval of the mean difference over paired seeds excludes the boundary; "
         "an interval that covers it decides nothing (undecided)",
         "the convention of the field; with 3-5 seeds the t quantile (2.78-4.30) keeps the interval honest",
         "every paired comparison (C1, C2, C6, C8, ranking, controls)", after_results=False),
    Rule("MATCH", 0.01, "Does NAL match a method (C2's 'matches')?",
         "the 95 % interval of NAL − the method lies within ±1 point of test accuracy",
         "an equivalence margin of one point of test accuracy (the book prints accuracies to 0.1 point; the paper "
         "ranks methods by differences of about a point and more); a wide interval that covers 0 is undecided, not "
         "a match",
         "C2, the ranking of the results and horizon chapters"),
    Rule("MEMORISED", 0.95, "Has CE memorised the noisy labels (C3)?",
         "at the last epoch CE predicts at least 95 % of the mislabeled training samples as their noisy label",
         "the paper's Fig. 7/9: CE 'fits the whole noisy labels'; 95 % leaves room for a few samples never fitted",
         "C3; the regime chapter (a regime below it has not memorised: memorisation claims read 'not reached')"),
    Rule("MEMORISING", 0.5, "Has CE entered memorisation in a regime (the regime chapter)?",
         "CE predicts more than half of the mislabeled training samples as their noisy label at its last epoch; below "
         "it the regime's verdicts on memorisation read 'not reached' (they can neither agree nor disagree)",
         "'most of the mislabeled samples' (the regime issue's wording); more data and augmentation slow "
         "memorisation down, and a claim about resisting it says nothing where it has not happened",
         "the regime chapter's matrix"),
    Rule("NEAR_CLEAN", 0.05, "Does NAL fit only about the clean fraction (C3)?",
         "at the last epoch NAL's training accuracy on the noisy labels lies within 5 points of the clean fraction",
         "the paper's Fig. 7/9 show NAL's training accuracy levelling at the clean fraction",
         "C3, the horizon chapter"),
    Rule("FLAT", 0.01, "Does NAL's test accuracy not fall (C4)?",
         "NAL's mean last-epoch test accuracy is within 1 point of its mean peak",
         "the paper's Fig. 8/10 show NAL's test accuracy flat after its peak",
         "C4, the horizon chapter"),
    Rule("STAGE_ALIKE", 0.6, "Stage 1 of τ: clean and mislabeled alike?",
         "AUROC of 1 − τ at the first snapshot ≤ 0.6. Reported, never counted as evidence: at initialisation τ "
         "knows nothing about which labels are wrong, so stage 1 holds by construction",
         "appendix F's first stage; 0.6 is 'barely separates' (SEPARATE_PARTLY)",
         "C5, the mechanism and horizon chapters"),
    Rule("STAGE_APART", 0.75, "Stage 2 of τ: do clean and mislabeled separate?",
         "AUROC of 1 − τ ≥ 0.75 at some snapshot (mean over seeds)",
         "appendix F's second stage shows two distinct modes; 0.75 is well past 'partly'",
         "C5, the mechanism and horizon chapters (the mechanism chapter's former 'grows by 0.1' is replaced)"),
    Rule("STAGE_FINAL", 0.9, "Stage 3 of τ: clean near 1, mislabeled set aside?",
         "at the last snapshot AUROC of 1 − τ ≥ 0.9 and the clean samples' median τ ≥ 0.9 (mean over seeds)",
         "appendix F's final stage: clean τ near 1 with little overlap (one definition: the former 'mislabeled at a "
         "small τ' and 'τ < 0.5' readings are descriptions, not the stage)",
         "C5, the mechanism and horizon chapters"),
    Rule("PHI_GAP", 0.05, "Theorem 1 at work: does φ scale the mislabeled samples' gradients down?",
         "in an epoch, the clean samples' mean φ exceeds the mislabeled samples' by ≥ 0.05 with a 95 % interval "
         "over seeds above 0",
         "a 5 % smaller gradient is the least the theorem's scaling would need to matter; the former attention "
         "chapter reading (mislabeled φ < 0.5) is replaced by this one",
         "C7, the attention and horizon chapters"),
    Rule("COST_SAME", 1.03, "Does NAL cost about what CE costs (C9)?",
         "the paired step-time ratio NAL / CE (the nal_overhead benchmark: CE and NAL steps alternated in one "
         "process, median of the paired ratios) ≤ 1.03",
         "the benchmark's own target; per-run epoch times, timed at different moments on a shared machine, differ "
         "by more than that between CE runs alone, so they are shown beside it but do not decide",
         "C9, the cost page, benchmarks/nal_overhead.py"),
    Rule("MEMORY_SAME", 1.02, "Does NAL hold about CE's memory (C9)?",
         "the counted memory ratio NAL / CE (parameters, gradients, optimiser state, targets) ≤ 1.02",
         "the benchmark's own target: NAL adds one N x C target store and one linear layer",
         "C9, the cost page, benchmarks/nal_overhead.py"),
    Rule("SEPARATE_PARTLY", 0.6, "Words for an AUROC: 'barely' below, 'partly' from here",
         "AUROC < 0.6 barely separates, 0.6-0.8 separates partly, ≥ 0.8 separates clearly",
         "wording only; no verdict rests on it", "the mechanism chapter's sentences"),
    Rule("SEPARATE_CLEARLY", 0.8, "Words for an AUROC: 'clearly' from here", "see SEPARATE_PARTLY",
         "wording only; no verdict rests on it", "the mechanism chapter's sentences"),
    Rule("UNDERFIT", 0.8, "Is a low memorised share underfitting rather than robustness?",
         "a λ whose mean training accuracy on the correctly labelled samples is below 0.8 × the best λ's underfits",
         "a network that fits neither clean nor mislabeled samples memorises little without being robust",
         "the mechanism chapter's λ sweep"),
    Rule("COLLAPSED", 0.11, "Did a run collapse to predicting one class?",
         "last-epoch test accuracy ≤ 0.11",
         "chance on Fashion-MNIST's 10 balanced test classes is 0.10; one point above it leaves room for the test "
         "set's sampling. Wording only, no claim's verdict rests on it; set after seeing the records",
         "the mechanism chapter's λ sweep"),
    Rule("UNMOVED", 0.005, "Did a target schedule leave q where it started?",
         "a variant's mean last-epoch corrected-label accuracy lies within 0.005 of NAL without target estimation "
         "in every setting",
         "half a point leaves room for the few samples whose argmax q left their noisy label, far less than target "
         "estimation changes where q moves; set after seeing the records",
         "the mechanism chapter's ablations"),
)

_BY_NAME = {r.name: r for r in RULES}
CONFIDENCE = _BY_NAME["CONFIDENCE"].value
MATCH = _BY_NAME["MATCH"].value
MEMORISED = _BY_NAME["MEMORISED"].value
MEMORISING = _BY_NAME["MEMORISING"].value
NEAR_CLEAN = _BY_NAME["NEAR_CLEAN"].value
FLAT = _BY_NAME["FLAT"].value
STAGE_ALIKE = _BY_NAME["STAGE_ALIKE"].value
STAGE_APART = _BY_NAME["STAGE_APART"].value
STAGE_FINAL = _BY_NAME["STAGE_FINAL"].value
PHI_GAP = _BY_NAME["PHI_GAP"].value
COST_SAME = _BY_NAME["COST_SAME"].value
MEMORY_SAME = _BY_NAME["MEMORY_SAME"].value
SEPARATE_PARTLY = _BY_NAME["SEPARATE_PARTLY"].value
SEPARATE_CLEARLY = _BY_NAME["SEPARATE_CLEARLY"].value
UNDERFIT = _BY_NAME["UNDERFIT"].value
COLLAPSED = _BY_NAME["COLLAPSED"].value
UNMOVED = _BY_NAME["UNMOVED"].value
#: the clean samples' median tau that the final stage asks for, with STAGE_FINAL
STAGE_FINAL_CLEAN_MEDIAN = 0.9


def rule(name: str) -> Rule:
    """The declared rule ``name`` (e.g. ``"MATCH"``); a KeyError names the rules there are."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no rule {name!r}; the rules are {', '.join(_BY_NAME)}") from None


def rulebook() -> pd.DataFrame:
    """The rules as a table (the book's page "How the verdicts are decided")."""
    return pd.DataFrame([{"rule": r.name, "value": f"{r.value:g}", "question": r.question, "decided by": r.rule,
                          "why this value": r.reason, "used by": r.used_by,
                          "fixed after seeing the records": "yes" if r.after_results else "no"} for r in RULES])


# --------------------------------------------------------------------------------------------
# verdicts
# --------------------------------------------------------------------------------------------
def side(diff: Difference, boundary: float = 0.0) -> str:
    """What one paired difference says of a claim that it is above ``boundary``: ``HOLDS`` (the interval lies
    above), ``FAILS`` (below), ``OPEN`` (it covers the boundary, or there is no interval)."""
    if diff.n < 2 or not np.isfinite(diff.low):
        return OPEN
    return HOLDS if diff.low > boundary else FAILS if diff.high < boundary else OPEN


def verdict_from_sides(sides: Sequence[str]) -> str:
    """The verdict of a claim judged per setting: *reproduced* when every setting holds, *partly* when some do,
    *not reproduced* when none holds and some fail, *undecided* when every one is open, *not tested here* when
    there is none."""
    sides = list(sides)
    if not sides:
        return NOT_TESTED
    holds = sides.count(HOLDS)
    if holds == len(sides):
        return REPRODUCED
    if holds:
        return PARTLY
    return NOT_REPRODUCED if FAILS in sides else UNDECIDED


def directional_verdict(diffs: Sequence[Difference], boundary: float = 0.0) -> str:
    """:func:`verdict_from_sides` of one interval per setting (:func:`side`); settings without an interval (one
    seed) are left out, and with none left the claim is *not tested here*."""
    have = [d for d in diffs if d.n >= 2 and np.isfinite(d.low)]
    return verdict_from_sides([side(d, boundary) for d in have]) if have else NOT_TESTED


def count_verdict(met: int, of: int, contradicted: int | None = None) -> str:
    """*reproduced* when all ``of`` settings meet a criterion, *partly* when some do, *not reproduced* when none
    does (``contradicted`` settings, default all of the others, contradict it; when none does the claim is
    *undecided*), *not tested here* when there is none to judge."""
    if of <= 0:
        return NOT_TESTED
    if met == of:
        return REPRODUCED
    if met:
        return PARTLY
    return NOT_REPRODUCED if (of if contradicted is None else contradicted) else UNDECIDED


def matches(diff: Difference) -> bool:
    """Two methods match (an equivalence, not a failure to separate): the paired difference's 95 % interval lies
    within ``MATCH`` of 0 on both sides. A wide interval that covers 0 is *undecided*, not a match."""
    return bool(diff.n >= 2 and -MATCH <= diff.low and diff.high <= MATCH)


def standing(diff: Difference) -> str:
    """``ahead`` (the interval above 0), else ``matches`` (``matches``), else ``behind`` (below 0), else
    ``undecided``; ``one seed`` without an interval."""
    if diff.n < 2:
        return ONE_SEED
    return "ahead" if diff.low > 0 else "matches" if matches(diff) else "behind" if diff.high < 0 else OPEN


def separation_word(auc: float) -> str:
    """How well an AUROC separates two groups, in words (``SEPARATE_PARTLY``, ``SEPARATE_CLEARLY``)."""
    if not np.isfinite(auc):
        return "cannot be judged"
    return ("barely separates them" if auc < SEPARATE_PARTLY else "separates them partly" if auc < SEPARATE_CLEARLY
            else "separates them clearly")


@dataclass(frozen=True)
class Stages:
    """Appendix F's three stages of τ in one cell (a λ, schedule and setting), from the means over its seeds.

    ``alike`` is reported but is not evidence (it holds by construction at initialisation); ``evidence`` counts the
    two stages that are: ``apart`` and ``final``."""

    alike: bool
    apart: bool
    final: bool
    first_auroc: float
    best_auroc: float
    best_epoch: int
    last_auroc: float
    last_median_clean: float
    last_epoch: int

    @property
    def evidence(self) -> int:
        return int(self.apart) + int(self.final)

    def words(self) -> str:
        """``stage 2 yes (AUROC 0.90 at epoch 60), stage 3 no (last 0.52, clean median τ 1.00)``."""
        return (f"stage 2 {'yes' if self.apart else 'no'} (best AUROC {self.best_auroc:.2f} at epoch "
                f"{self.best_epoch}), stage 3 {'yes' if self.final else 'no'} (epoch {self.last_epoch}: AUROC "
                f"{self.last_auroc:.2f}, clean median τ {self.last_median_clean:.2f})")


def tau_stages(stages: pd.DataFrame) -> Stages | None:
    """:class:`Stages` of one cell of :func:`nalkit.results.stage_table` (columns ``epoch``, ``auroc``,
    ``median_clean``; one row per run and snapshot), by ``STAGE_ALIKE``, ``STAGE_APART`` and
    ``STAGE_FINAL``; None without snapshots."""
    if not len(stages):
        return None
    m = stages.groupby("epoch")[["auroc", "median_clean"]].mean().sort_index()
    best = m.auroc.idxmax()
    return Stages(alike=bool(m.auroc.iloc[0] <= STAGE_ALIKE), apart=bool(m.auroc.max() >= STAGE_APART),
                  final=bool(m.auroc.iloc[-1] >= STAGE_FINAL and m.median_clean.iloc[-1] >= STAGE_FINAL_CLEAN_MEDIAN),
                  first_auroc=float(m.auroc.iloc[0]), best_auroc=float(m.auroc.max()), best_epoch=int(best),
                  last_auroc=float(m.auroc.iloc[-1]), last_median_clean=float(m.median_clean.iloc[-1]),
                  last_epoch=int(m.index[-1]))


def stages_verdict(cells: Sequence[Stages]) -> str:
    """C5 over the cells that decide it (e.g. the settings at the paper's λ and schedule): *reproduced* when every
    cell shows stages 2 and 3, *partly* when some cell shows at least stage 2, *not reproduced* when none does."""
    cells = [c for c in cells if c is not None]
    if not cells:
        return NOT_TESTED
    if all(c.evidence == 2 for c in cells):
        return REPRODUCED
    return PARTLY if any(c.evidence for c in cells) else NOT_REPRODUCED


def scales_down(gap: Difference) -> bool:
    """Theorem 1's scaling shows in one epoch: the clean samples' mean φ exceeds the mislabeled samples' by at
    least ``PHI_GAP`` (a gradient at least that much smaller), with a 95 % interval above 0 over the seeds."""
    return bool(gap.n >= 2 and gap.low > 0 and gap.mean >= PHI_GAP)


def cost_verdict(step_ratio: float, memory_ratio: float | None = None) -> str:
    """C9 from the paired benchmark: *reproduced* when the step-time ratio is within ``COST_SAME`` (and the
    memory ratio, where measured, within ``MEMORY_SAME``), *partly* when one of the two is, *not reproduced*
    when neither is; *not tested here* without a step-time ratio."""
    if step_ratio is None or not np.isfinite(step_ratio):
        return NOT_TESTED
    ok = [step_ratio <= COST_SAME]
    if memory_ratio is not None and np.isfinite(memory_ratio):
        ok.append(memory_ratio <= MEMORY_SAME)
    return REPRODUCED if all(ok) else PARTLY if any(ok) else NOT_REPRODUCED
