"""Phrasing for the horizon chapter (book/horizon.md): the long tier's answers in words."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import pandas as pd
from nalkit import plotting

from .common import _seeds, _where, pct

#: the long tier's variants and their colours, from the book's one palette (nalkit.plotting.line_style: every
#: method and variant is drawn alike in every chapter)
VARIANT_COLORS = {v: plotting.line_style(v)["color"] for v in ("CE", "NAL", "NAL, authors' schedule", "NAL, τ = 1",
                                                               "SCE")}


def _row(summary: pd.DataFrame, setting: str, variant: str):
    hit = summary[(summary.noise == setting) & (summary.variant == variant)]
    return hit.iloc[0] if len(hit) else None


def horizon_fit_lines(summary: pd.DataFrame, settings: Sequence[str]) -> list[str]:
    """Appendix E, from :func:`nalkit.results.horizon_summary`: what CE and NAL fit by the last epoch, and whether
    test accuracy falls from its peak (each drop with its t-interval over seeds)."""
    lines = []
    for s in settings:
        ce, nal = _row(summary, s, "CE"), _row(summary, s, "NAL")
        if ce is None or nal is None:
            continue
        lines.append(
            f"**{s}** ({100 * (1 - ce.clean_fraction):.0f} % of the labels flipped, {_seeds(min(ce.n, nal.n))}): at "
            f"epoch {ce.last_epoch} CE fits {pct(ce.fit_last)} of the noisy training labels and predicts "
            f"{pct(ce.memorized_last)} of the mislabeled samples as their noisy label; NAL fits {pct(nal.fit_last)} "
            f"(the clean fraction is {pct(nal.clean_fraction)}) and memorises {pct(nal.memorized_last)}. CE's test "
            f"accuracy peaks at {pct(ce.test_best)} (median epoch {ce.test_best_epoch:.0f}) and its last epoch is lower by "
            f"{ce.test_drop.sentence()}; NAL's peaks at {pct(nal.test_best)} (median epoch "
            f"{nal.test_best_epoch:.0f}) and its last epoch is lower by {nal.test_drop.sentence()}.")
    return lines


def horizon_fit_verdict(summary: pd.DataFrame, settings: Sequence[str]) -> str:
    """One sentence: does appendix E's picture (CE fits everything and falls; NAL fits about the clean fraction and
    does not fall) hold in every setting?"""
    from nalkit.results.criteria import FLAT, MEMORISED, NEAR_CLEAN
    from nalkit.results.horizon import appendix_e

    judged = appendix_e(summary, settings)
    ce_all, ce_fall, nal_near, nal_flat = (list(judged.noise[judged[c]]) for c in
                                           ("ce_memorises", "ce_falls", "nal_near_clean", "nal_flat"))
    have = [s for s in settings if _row(summary, s, "CE") is not None and _row(summary, s, "NAL") is not None]
    if not have:
        return "The long tier has no complete CE and NAL pair yet."
    where = functools.partial(_where, have=have)
    return (f"**Appendix E, over {int(summary.last_epoch.max())} epochs** (the rules of C3 and C4): CE memorises at "
            f"least {100 * MEMORISED:.0f} % of the mislabeled samples in {where(ce_all)}, and its test accuracy ends "
            f"below its peak beyond the seed spread in {where(ce_fall)}; NAL's training accuracy on the noisy labels "
            f"ends within {100 * NEAR_CLEAN:.0f} points of the clean fraction in {where(nal_near)}, and its test "
            f"accuracy ends within {100 * FLAT:.0f} point of its peak in {where(nal_flat)}.")


def horizon_stage_lines(stages: pd.DataFrame, settings: Sequence[str], low: float = 0.5) -> list[str]:
    """Appendix F per setting and schedule, from :func:`nalkit.results.stage_table` (means over seeds): the AUROC
    of 1 - tau at the first, best and last snapshot, and the share of mislabeled samples set aside (tau < low)."""
    lines = []
    for s in settings:
        parts = []
        for variant in ("NAL", "NAL, authors' schedule"):
            d = stages[(stages.noise == s) & (stages.variant == variant)]
            if not len(d):
                continue
            m = d.groupby("epoch")[["auroc", "set_aside", "clean_set_aside", "median_clean", "median_mislabeled"]].mean()
            best = m.auroc.idxmax()
            peak = (" (its best snapshot)" if best == m.index[0] else
                    f", {m.auroc[best]:.2f} at epoch {best} (its best snapshot)")
            parts.append(
                f"{'the book’s' if variant == 'NAL' else 'the authors’'} schedule: AUROC {m.auroc.iloc[0]:.2f} at epoch "
                f"{m.index[0]}{peak}, {m.auroc.iloc[-1]:.2f} at epoch {m.index[-1]}; there "
                f"{pct(m.set_aside.iloc[-1])} of the mislabeled and {pct(m.clean_set_aside.iloc[-1])} of the clean "
                f"samples have τ < {low:g}")
        if parts:
            lines.append(f"**{s}:** " + "; ".join(parts) + ".")
    return lines


def horizon_stage_verdict(stages: pd.DataFrame, low: float = 0.5) -> str:
    """Which of the appendix's three stages appear, by the rulebook's stage rules (:func:`nalkit.results.tau_stages`,
    the rule C5 decides with), and, as a description, how many cells leave most mislabeled samples at tau < ``low``."""
    from nalkit.results import tau_stages
    from nalkit.results.criteria import (
        STAGE_ALIKE,
        STAGE_APART,
        STAGE_FINAL,
        STAGE_FINAL_CLEAN_MEDIAN,
    )

    if not len(stages):
        return "The long tier has no τ snapshots yet."
    cells = [tau_stages(g) for _, g in stages.groupby(["variant", "noise"])]
    alike, separate, final = (sum(getattr(c, k) for c in cells) for k in ("alike", "apart", "final"))
    m = stages.groupby(["variant", "noise", "epoch"]).set_aside.mean().reset_index()
    aside = sum(g.sort_values("epoch").set_aside.iloc[-1] >= 0.5 for _, g in m.groupby(["variant", "noise"]))
    return (f"**Three stages?** By the rules of [](rules.md): of {len(cells)} (schedule, setting) cells, "
            f"{separate} separate at some snapshot (stage 2: AUROC of 1 − τ ≥ {STAGE_APART:g}) and {final} reach the "
            f"appendix's final stage (stage 3: AUROC ≥ {STAGE_FINAL:g} and the clean median τ ≥ "
            f"{STAGE_FINAL_CLEAN_MEDIAN:g} at the last snapshot)"
            + (": the final stage appears nowhere in these records" if final == 0 else "")
            + f". {alike} start alike (AUROC ≤ {STAGE_ALIKE:g} at the first snapshot), which holds by construction "
            f"and is not evidence. As a description, not a stage: {aside} of the cells end with at least half of the "
            f"mislabeled samples at τ < {low:g}.")


def horizon_schedule_lines(summary: pd.DataFrame, late: pd.DataFrame, settings: Sequence[str]) -> list[str]:
    """The authors' schedule beside the book's at the last epoch: test accuracy (paired difference over seeds)
    and the corrected labels argmax q; ``late`` is :func:`nalkit.results.at_epoch` at the last epoch."""
    from nalkit.results import paired_difference

    lines = []
    for s in settings:
        book, authors = _row(summary, s, "NAL"), _row(summary, s, "NAL, authors' schedule")
        if book is None or authors is None:
            continue
        diff = paired_difference(late[late.noise == s], "test_acc", "NAL, authors' schedule", "NAL", column="variant")
        lines.append(
            f"**{s}:** the authors' schedule ends at {pct(authors.test_last)} test accuracy, the book's at "
            f"{pct(book.test_last)} (authors' − book's: {diff.sentence()}); its corrected labels are right for "
            f"{pct(authors.corrected_last)} of the training samples and {pct(authors.corrected_mislabeled_last)} "
            f"of the mislabeled ones (book's schedule: {pct(book.corrected_last)} and "
            f"{pct(book.corrected_mislabeled_last)}).")
    return lines


def horizon_40_vs_last(epochs: pd.DataFrame, settings: Sequence[str], early: int = 40) -> pd.DataFrame:
    """NAL minus each other variant in test accuracy, paired over seeds, at epoch ``early`` and at the last epoch,
    per setting (:func:`nalkit.results.horizon.early_vs_last`): a table of sentences (rows: setting and comparison;
    columns: the two epochs)."""
    from nalkit.results.horizon import early_vs_last

    diffs = early_vs_last(epochs, settings, early)
    rows = []
    for (s, other), g in diffs.groupby(["noise", "other"], sort=False):
        cells = {f"epoch {r.epoch}": r.diff.sentence(pairs="seeds") if r.diff.n else "–" for r in g.itertuples()}
        rows.append({"setting": s, "NAL minus": other, **cells})
    return pd.DataFrame(rows)
