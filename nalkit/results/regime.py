"""Does the regime matter? The book's claims re-decided in regimes that move the CPU regime toward the paper's.

The CPU regime (``BASE``: 3,000 Fashion-MNIST images, class-conditional noise, no augmentation, a small CNN,
40 epochs) differs from the paper's in each of these; ``configs/grids/regime*.yaml`` moves it one factor at a time
(``REGIMES``, one axis each). In every regime the same five variants run (``regime_variant``, named before
any result was seen: CE, NAL at lambda 2 with the book's schedule, NAL with one learned tau for all samples, NAL
with tau = 1, SCE at its tuned alpha 0.05),
and each claim of ``REGIME_CLAIMS`` is decided in every regime by the rulebook (:mod:`nalkit.results.criteria`).

* ``regime_runs`` -- the complete runs of every regime, labelled with their axis, regime and variant;
* ``regime_matrix`` -- one row per (axis, regime, claim): the deciding number, its interval and the word;
* ``regime_stability`` -- per claim and axis: the reference regime's word and the regimes that turn it;
* ``regime_epochs``, ``memorisation_pace`` -- how fast CE memorises in each regime;
* ``long_noise_comparison`` -- every variant of the 200-epoch noise-type grid against NAL.

A regime in which CE has not memorised (``MEMORISING``) most of the mislabeled samples
by its last epoch answers the claims about memorisation with "not reached": it cannot agree or disagree with them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..detectors import DETECTORS
from .comparison import variant_differences
from .criteria import (
    MEMORISING,
    ONE_SEED,
    OPEN,
    STAGE_APART,
    STAGE_FINAL,
    STAGE_FINAL_CLEAN_MEDIAN,
    side,
    standing,
)
from .detection import detector_table, tau_rank, with_rescored_forgetting
from .horizon import long_variant
from .load import load_arrays
from .stats import Difference, mean_interval, paired_difference

#: the CPU regime every axis starts from (configs/fmnist/cpu.yaml with the default grid's noisy validation set)
BASE = {"dataset": "fashion_mnist", "model": "small_cnn", "augment": False, "train_subset": 3000, "epochs": 40,
        "noise_mode": "sym", "noise_rate": 0.4, "noisy_val_size": 5000, "cv_folds": None}
#: the variants every regime runs, by name, and the tuned values that define them
VARIANTS = ("CE", "NAL", "NAL, one learned τ", "NAL, τ = 1", "SCE (α 0.05)")
NOT_REACHED = "not reached"


def regime_variant(row: Any) -> str | None:
    """The regime tier's name of a run (``VARIANTS``, in the long tier's vocabulary:
    :func:`nalkit.results.long_variant`), or None for any other run."""
    name = long_variant(row)
    return name if name in VARIANTS else None


@dataclass(frozen=True)
class Regime:
    """One regime of one axis: its name, the config values that differ from ``BASE``, and whether it is the
    axis's reference (the CPU regime itself, or the long tier's at 200 epochs)."""

    axis: str
    name: str
    changes: tuple[tuple[str, Any], ...] = ()
    reference: bool = False

    def selects(self, row: Any) -> bool:
        want = {**BASE, **dict(self.changes)}
        for col, value in want.items():
            have = row.get(col)
            if value is None:
                if have is not None and not pd.isna(have):
                    return False
            elif isinstance(value, (str, bool)):
                if have != value:
                    return False
            elif have is None or pd.isna(have) or not np.isclose(float(have), float(value)):
                return False
        return True


REGIMES: tuple[Regime, ...] = (
    Regime("noise type", "class-conditional sym 40 %", reference=True),
    Regime("noise type", "IDN 20 %", (("noise_mode", "idn"), ("noise_rate", 0.2))),
    Regime("noise type", "IDN 40 %", (("noise_mode", "idn"), ("noise_rate", 0.4))),
    Regime("noise type, 200 epochs", "class-conditional sym 40 %", (("epochs", 200),), reference=True),
    Regime("noise type, 200 epochs", "IDN 40 %", (("noise_mode", "idn"), ("epochs", 200))),
    Regime("data size", "3,000 images", reference=True),
    Regime("data size", "12,000 images", (("train_subset", 12000),)),
    Regime("data size", "55,000 images", (("train_subset", 55000),)),
    Regime("augmentation", "none, 200 epochs", (("epochs", 200),), reference=True),
    Regime("augmentation", "crop + flip, 200 epochs", (("epochs", 200), ("augment", True))),
    Regime("model", "small CNN", reference=True),
    Regime("model", "narrow ResNet-18", (("model", "narrow_resnet"),)),
)
AXES = tuple(dict.fromkeys(r.axis for r in REGIMES))


def regime_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Every complete run of ``runs`` (a :func:`nalkit.results.load_runs` frame) that belongs to a regime, once per
    regime it belongs to (the CPU regime is the reference of several axes), with ``axis``, ``regime`` and
    ``variant`` columns."""
    if not len(runs):
        return runs.assign(axis=[], regime=[], variant=[])
    rows = runs[runs.state == "complete"] if "state" in runs else runs
    records = rows.to_dict("records")
    variants = [regime_variant(r) for r in records]
    frames = []
    for regime in REGIMES:
        keep = [i for i, (r, v) in enumerate(zip(records, variants)) if v is not None and regime.selects(r)]
        if keep:
            part = rows.iloc[keep].copy()
            part["axis"], part["regime"], part["variant"] = regime.axis, regime.name, [variants[i] for i in keep]
            frames.append(part)
    return pd.concat(frames, ignore_index=True) if frames else rows.iloc[:0].assign(axis=[], regime=[], variant=[])


@dataclass(frozen=True)
class RegimeClaim:
    """A claim re-decided per regime: its key (the claims table's, with the part of the claim after a space where
    the claim is decided in parts: ``C5 stage 2``; ``claim_key``), what is measured, the function that measures it
    on one regime's runs (``(runs, epochs) -> (Difference or None, extra words)``), the rulebook's word for the
    difference, and how the number reads: ``shown`` names it (empty: a difference in points) and ``offset`` is
    the boundary it was measured from, added back for the reader (the best AUROC itself, not its distance from
    ``STAGE_APART``)."""

    key: str
    name: str
    measure: Callable[[pd.DataFrame, pd.DataFrame], tuple[Difference | None, str]]
    word: Callable[[Difference], str]
    about_memorisation: bool = False
    shown: str = ""
    offset: float = 0.0


def _paired(a: str, b: str, value: str = "last_test_acc") -> Callable[[pd.DataFrame, pd.DataFrame], tuple]:
    def measure(runs: pd.DataFrame, epochs: pd.DataFrame) -> tuple[Difference | None, str]:
        if not {a, b} <= set(runs.variant) or value not in runs:
            return None, ""
        return paired_difference(runs, value, a, b, column="variant"), ""
    return measure


def _memorised(runs: pd.DataFrame, epochs: pd.DataFrame) -> tuple[Difference | None, str]:
    if not {"CE", "NAL"} <= set(runs.variant) or "last_memorized" not in runs:
        return None, ""
    ce = float(runs[runs.variant == "CE"].last_memorized.mean())
    return paired_difference(runs, "last_memorized", "CE", "NAL", column="variant"), f"CE memorised {100 * ce:.0f} %"


def _corrected(runs: pd.DataFrame, epochs: pd.DataFrame) -> tuple[Difference | None, str]:
    nal = runs[runs.variant == "NAL"]
    if not len(nal) or "last_corrected_acc" not in nal or nal.last_corrected_acc.isna().all():
        return None, ""
    return mean_interval(nal.last_corrected_acc - (1 - nal.actual_noise_rate), "corrected", "noisy"), ""


def _tau_auroc(runs: pd.DataFrame, epochs: pd.DataFrame) -> tuple[Difference | None, str]:
    names = set(runs[runs.variant == "NAL"].run)
    e = epochs[epochs.run.isin(names)] if len(epochs) and "tau_auroc" in epochs else pd.DataFrame()
    if not len(e):
        return None, ""
    best = e.groupby("run").tau_auroc.max()
    where = e.loc[e.groupby("run").tau_auroc.idxmax()].epoch.median()
    return mean_interval(best - STAGE_APART, "best AUROC", "STAGE_APART"), f"best around epoch {where:.0f}"


def _clean_median_tau(run_dir: Any) -> float:
    """The clean samples' median τ at the last epoch (the per-sample arrays' ``final_tau``; of the sampled training
    samples for a record of format 3 or later); NaN where the record has none. Read once per record and state of
    its arrays file: the reference regime's runs are the reference of every axis."""
    if not isinstance(run_dir, str) or not run_dir:
        return float("nan")
    path = Path(run_dir) / "arrays.npz"
    return _clean_median_tau_of(run_dir, path.stat().st_mtime_ns if path.is_file() else 0)


@functools.lru_cache(maxsize=4096)
def _clean_median_tau_of(run_dir: str, stamp: int) -> float:
    a = load_arrays(run_dir)
    if "final_tau" not in a or "is_noisy" not in a:
        return float("nan")
    clean = ~a["is_noisy"] & (a["clean_labels"] >= 0)
    tau = np.asarray(a["final_tau"], np.float64)[clean]
    tau = tau[np.isfinite(tau)]
    return float(np.median(tau)) if len(tau) else float("nan")


def _final_stage(runs: pd.DataFrame, epochs: pd.DataFrame) -> tuple[Difference | None, str]:
    """Stage 3 of τ (``tau_stages``' rule, ``STAGE_FINAL`` and ``STAGE_FINAL_CLEAN_MEDIAN``) at the last epoch of
    each NAL run: the weaker of its two margins, ``last AUROC − STAGE_FINAL`` and ``clean median τ −
    STAGE_FINAL_CLEAN_MEDIAN`` (a run shows stage 3 when both are ≥ 0), with a 95 % interval over the seeds."""
    nal = runs[runs.variant == "NAL"]
    if not len(nal) or "last_tau_auroc" not in nal or "run_dir" not in nal or nal.last_tau_auroc.isna().all():
        return None, ""
    auroc = nal.last_tau_auroc.to_numpy(np.float64)
    median = np.array([_clean_median_tau(d) for d in nal.run_dir], np.float64)
    keep = np.isfinite(auroc) & np.isfinite(median)
    if not keep.any():
        return None, ""
    margin = np.minimum(auroc[keep] - STAGE_FINAL, median[keep] - STAGE_FINAL_CLEAN_MEDIAN)
    return (mean_interval(margin, "stage-3 margin", "0"),
            f"last AUROC {auroc[keep].mean():.2f}, clean median τ {median[keep].mean():.2f}")


def _detectors(runs: pd.DataFrame, epochs: pd.DataFrame) -> tuple[Difference | None, str]:
    nal = runs[runs.variant == "NAL"]
    e = epochs[epochs.run.isin(set(nal.run))] if len(epochs) and len(nal) else pd.DataFrame()
    if not len(e) or "tau_auroc" not in e:
        return None, ""
    e = with_rescored_forgetting(e, nal).assign(group="NAL")  # older records: forgetting rescored, last epoch
    rank = tau_rank(detector_table(e, by=("group",)), by=("group",))
    if not len(rank):
        return None, ""
    r = rank.iloc[0]
    return None, (f"1 − τ ranks {r.last_rank} of {r.of} at the last epoch (best: {DETECTORS[r.last_top]}, "
                  f"{r.last_top_value:.2f})")


REGIME_CLAIMS: tuple[RegimeClaim, ...] = (
    RegimeClaim("C1", "NAL − CE, test accuracy", _paired("NAL", "CE"), lambda d: side(d)),
    RegimeClaim("C2", "NAL − SCE (α 0.05), test accuracy", _paired("NAL", "SCE (α 0.05)"), standing),
    RegimeClaim("C3", "CE − NAL, mislabeled samples memorised", _memorised, lambda d: side(d), True),
    RegimeClaim("C5 stage 2", f"τ separates (best AUROC of 1 − τ ≥ {STAGE_APART:g})", _tau_auroc,
                lambda d: side(d), shown="best AUROC", offset=STAGE_APART),
    RegimeClaim("C5 stage 3", f"τ ends apart (last AUROC ≥ {STAGE_FINAL:g} and clean median τ ≥ "
                f"{STAGE_FINAL_CLEAN_MEDIAN:g})", _final_stage, lambda d: side(d), shown="weaker margin"),
    RegimeClaim("C6", "corrected − noisy labels right", _corrected, lambda d: side(d)),
    RegimeClaim("C8", "NAL − one learned τ, test accuracy", _paired("NAL", "NAL, one learned τ"), lambda d: side(d)),
    RegimeClaim("–", "τ among the mislabel detectors", _detectors, lambda d: ""),
)


def regime_matrix(runs: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """Every claim of ``REGIME_CLAIMS`` in every regime with records: one row per (axis, regime, claim).

    Columns: ``axis, regime, reference, key, claim, seeds``, ``seeds_most`` (the fewest and the most seeds of a
    variant there), ``ce_memorised``
    (CE's mean memorised share at the last epoch), ``mean, low, high`` (fractions; NaN where the claim has no
    interval), ``word`` (the rulebook's word: ``holds``/``fails``/``undecided`` or C2's standing; ``not reached``
    for a memorisation claim where CE memorised at most MEMORISING), ``note``, and ``shown``, ``offset`` (how the
    number reads: the claim's ``RegimeClaim``)."""
    labelled = regime_runs(runs)
    rows = []
    for regime in REGIMES:
        d = labelled[(labelled.axis == regime.axis) & (labelled.regime == regime.name)] if len(labelled) else labelled
        if not len(d):
            continue
        e = epochs[epochs.run.isin(set(d.run))] if len(epochs) else epochs
        per_variant = d.groupby("variant").seed.nunique()
        seeds, most = int(per_variant.min()), int(per_variant.max())
        ce = d[d.variant == "CE"].last_memorized.mean() if "last_memorized" in d else np.nan
        for claim in REGIME_CLAIMS:
            diff, note = claim.measure(d, e)
            word = claim.word(diff) if diff is not None else ("" if note else "no records")
            if claim.about_memorisation and np.isfinite(ce) and ce <= MEMORISING:
                word = NOT_REACHED
            rows.append({"axis": regime.axis, "regime": regime.name, "reference": regime.reference, "key": claim.key,
                         "claim": claim.name, "seeds": seeds, "seeds_most": most, "ce_memorised": float(ce),
                         "mean": diff.mean if diff is not None else np.nan,
                         "low": diff.low if diff is not None else np.nan,
                         "high": diff.high if diff is not None else np.nan, "word": word, "note": note,
                         "shown": claim.shown, "offset": claim.offset})
    return pd.DataFrame(rows, columns=["axis", "regime", "reference", "key", "claim", "seeds", "seeds_most",
                                       "ce_memorised", "mean", "low", "high", "word", "note", "shown", "offset"])


#: the IDN 40 % grid over 200 epochs (configs/grids/regime-noise-long.yaml) runs these, and the long tier runs the
#: same at class-conditional sym 40 % (its reference): the tier's variants less τ = 1, plus NAL with the authors'
#: target schedule and ELR at its tuned λ (``LONG_NOISE_ELR_LAM``)
LONG_NOISE_VARIANTS = ("CE", "NAL", "NAL, authors' schedule", "NAL, one learned τ", "SCE (α 0.05)", "ELR")
LONG_NOISE_AXIS = "noise type, 200 epochs"
LONG_NOISE_ELR_LAM = 3.0


def long_noise_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The complete runs of ``LONG_NOISE_AXIS``'s regimes (class-conditional sym 40 % and IDN 40 %, 200 epochs)
    whose variant (:func:`nalkit.results.long_variant`) is one of ``LONG_NOISE_VARIANTS``, with a ``variant``
    column."""
    if not len(runs):
        return runs.assign(variant=[])
    rows = runs[runs.state == "complete"] if "state" in runs else runs
    regimes = [r for r in REGIMES if r.axis == LONG_NOISE_AXIS]
    keep, names = [], []
    for i, r in enumerate(rows.to_dict("records")):
        name = long_variant(r)
        if name in LONG_NOISE_VARIANTS and any(g.selects(r) for g in regimes) and (
                r["method"] != "elr" or np.isclose(float(r["elr_lam"]), LONG_NOISE_ELR_LAM)):
            keep.append(i)
            names.append(name)
    return rows.iloc[keep].assign(variant=names)


def long_noise_comparison(runs: pd.DataFrame) -> pd.DataFrame:
    """Every variant of ``LONG_NOISE_VARIANTS`` against NAL (the book's schedule), per noise setting, over 200
    epochs: :func:`nalkit.results.variant_differences` with NAL as the base."""
    return variant_differences(long_noise_runs(runs), LONG_NOISE_VARIANTS, base="NAL")


def regime_epochs(runs: pd.DataFrame, epochs: pd.DataFrame, variant: str = "CE") -> pd.DataFrame:
    """The per-epoch rows of ``variant``'s runs in every regime, labelled with ``axis``, ``regime``, ``reference``
    and ``horizon`` (the run's epochs). The reference regimes of several axes are the same runs: each distinct
    set of runs appears once, under the first axis that has it."""
    labelled = regime_runs(runs)
    if not len(labelled) or not len(epochs):
        return epochs.iloc[:0].assign(axis=[], regime=[], reference=[], horizon=[])
    chosen = labelled[labelled.variant == variant]
    frames, seen = [], set()
    for (axis, regime), g in chosen.groupby(["axis", "regime"], sort=False):
        names = frozenset(g.run)
        if names in seen:
            continue
        seen.add(names)
        e = epochs[epochs.run.isin(names)].drop(columns=["variant"], errors="ignore")
        reference = any(r.reference for r in REGIMES if r.axis == axis and r.name == regime)
        frames.append(e.assign(axis=axis, regime=regime, reference=reference, horizon=int(g.epochs.max())))
    return pd.concat(frames, ignore_index=True) if frames else epochs.iloc[:0].assign(
        axis=[], regime=[], reference=[], horizon=[])


def memorisation_pace(runs: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """How fast CE memorises in each regime (one row per distinct set of runs, as ``regime_epochs``):
    ``last`` (the share of mislabeled samples CE predicts as their noisy label at its last epoch, mean over seeds)
    with ``low``, ``high`` (its 95 % t-interval, cut to [0, 1], the values a share can take: with 2 seeds the
    t-interval alone can reach past both ends), ``n`` seeds, ``reached`` (the seeds whose share passed
    ``MEMORISING`` at some epoch) and ``first`` (the mean first epoch at which it did, over those seeds; NaN when
    none did)."""
    e = regime_epochs(runs, epochs, "CE")
    cols = ["axis", "regime", "reference", "horizon", "n", "last", "low", "high", "reached", "first"]
    if not len(e) or "memorized" not in e:
        return pd.DataFrame(columns=cols)
    rows = []
    for (axis, regime), g in e.dropna(subset=["memorized"]).groupby(["axis", "regime"], sort=False):
        last, first = [], []
        for _, r in g.sort_values("epoch").groupby("run"):
            last.append(float(r.memorized.iloc[-1]))
            over = r[r.memorized > MEMORISING]
            if len(over):
                first.append(int(over.epoch.iloc[0]))
        d = mean_interval(last)
        rows.append({"axis": axis, "regime": regime, "reference": bool(g.reference.iloc[0]),
                     "horizon": int(g.horizon.iloc[0]), "n": d.n, "last": d.mean,
                     "low": float(np.clip(d.low, 0.0, 1.0)), "high": float(np.clip(d.high, 0.0, 1.0)),
                     "reached": len(first), "first": float(np.mean(first)) if first else np.nan})
    return pd.DataFrame(rows, columns=cols)


#: words that decide nothing: the interval covers the boundary, or a regime has one seed
UNDECIDED_WORDS = (OPEN, ONE_SEED)


def regime_stability(matrix: pd.DataFrame) -> pd.DataFrame:
    """Per claim and axis: ``reference_word`` (the word in the axis's reference regime), ``tested`` (the other
    regimes that decide the claim) and ``tested_words`` (their words, in the same order), ``turned`` (those of them
    whose word differs from the reference's), ``open`` (regimes with records that leave it undecided: an interval
    across the boundary, or one seed), ``unreached`` (regimes where the memorisation claim is not reached) and
    ``stable`` (True when no tested regime turns it; None when the reference is undecided or no other regime decides
    it).

    The rule: a regime turns a verdict only where the reference and the regime both decide it and their words
    differ. An undecided cell neither keeps nor turns a verdict (the rulebook: an interval that covers the boundary
    is never a verdict), and "not reached" and "no records" are neither."""
    rows = []
    if not len(matrix):
        return pd.DataFrame(columns=["key", "claim", "axis", "reference_word", "tested", "tested_words", "turned",
                                     "open", "unreached", "stable"])
    for (key, claim, axis), g in matrix.groupby(["key", "claim", "axis"], sort=False):
        ref = g[g.reference]
        ref_word = str(ref.word.iloc[0]) if len(ref) else ""
        decided_ref = ref_word not in ("", "no records", NOT_REACHED, *UNDECIDED_WORDS)
        others = g[~g.reference]
        tested = [r.regime for r in others.itertuples()
                  if r.word not in ("no records", NOT_REACHED, "", *UNDECIDED_WORDS)]
        turned = [r for r in tested if decided_ref and others[others.regime == r].word.iloc[0] != ref_word]
        undecided = [r.regime for r in others.itertuples() if r.word in UNDECIDED_WORDS]
        unreached = [r.regime for r in others.itertuples() if r.word == NOT_REACHED]
        words = [str(others[others.regime == r].word.iloc[0]) for r in tested]
        rows.append({"key": key, "claim": claim, "axis": axis, "reference_word": ref_word, "tested": tested,
                     "tested_words": words, "turned": turned, "open": undecided, "unreached": unreached,
                     "stable": (not turned) if tested and decided_ref else None})
    return pd.DataFrame(rows)


def claim_key(key: str) -> str:
    """The claims table's key of a regime row's key: ``C5`` of ``C5 stage 2``."""
    return key.split(" ", 1)[0]


def held_in_every_regime(stability: pd.DataFrame, key: str) -> str:
    """The claims table's regime column for claim ``key``: ``turned by <regime> (<axis>: <reference's word> →
    <regime's word>)``, ``held in every regime that decides it (n): <the reference's word>, as in the CPU regime``
    (the regime tier's reference runs NAL at λ 2 with the book's schedule, which may differ from the setting the
    claims table decides at), ``not decided in another regime`` (records, but every interval covers the boundary, or
    the reference is undecided) or ``not tested in another regime``; the regimes that leave it undecided are named
    after it. A claim decided in parts (``C5 stage 2``, ``C5 stage 3``) gets one sentence per part
    (``Stage 2: ...``)."""
    g = stability[[claim_key(k) == key for k in stability.key]] if len(stability) else stability
    if not len(g):
        return "not tested in another regime"
    parts = list(dict.fromkeys(g.key))
    if len(parts) > 1:
        return " ".join(f"{p.split(' ', 1)[1].capitalize()}: {_held(g[g.key == p])}." for p in parts)
    return _held(g)


def _held(g: pd.DataFrame) -> str:
    decided = g[g.stable.notna()]
    turned = [f"{r} ({a}: {ref} → {w})" for a, rs, ws, ref in zip(decided.axis, decided.tested, decided.tested_words,
                                                                  decided.reference_word)
              for r, w in zip(rs, ws) if w != ref]
    n = sum(len(t) for t in decided.tested)
    undecided = [f"{r} ({a})" for a, rs in zip(g.axis, g.open) for r in rs]
    if turned:
        text = f"turned by {', '.join(turned)}"
    elif n:
        refs = " or ".join(dict.fromkeys(decided.reference_word))
        text = f"held in every regime that decides it ({n}): {refs}, as in the CPU regime"
    elif undecided or any(len(t) for t in g.tested):
        text = "not decided in another regime"
    else:
        return "not tested in another regime"
    return text + (f"; undecided in {', '.join(undecided)}" if undecided else "")


__all__ = [
    "AXES",
    "BASE",
    "LONG_NOISE_VARIANTS",
    "NOT_REACHED",
    "REGIMES",
    "REGIME_CLAIMS",
    "UNDECIDED_WORDS",
    "VARIANTS",
    "Regime",
    "RegimeClaim",
    "claim_key",
    "held_in_every_regime",
    "long_noise_comparison",
    "long_noise_runs",
    "memorisation_pace",
    "regime_epochs",
    "regime_matrix",
    "regime_runs",
    "regime_stability",
    "regime_variant",
]
