"""Phrasing for the horizon chapter (book/horizon.md): the long tier's answers in words."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import pandas as pd
from nalkit import plotting

from .common import _seeds, _where, join_and, pct

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


PAPER_SETTING_NOTE = "the paper's setting; "
PAPER_NOTE = "the authors' schedule is the paper's setting; "


def _paper(variant: str) -> bool:
    from nalkit.results.horizon import PAPER_SETTING

    return variant == PAPER_SETTING


def _seed_note(n: int, most: int) -> str:
    """``3 seeds``, ``1 seed so far`` (fewer than the best-recorded cell has), ``no records yet``."""
    return "no records yet" if n == 0 else _seeds(n) + (" so far" if n < most else "")


def _seed_range(lo: int, hi: int) -> str:
    """``3 seeds``, ``1–3 seeds``."""
    return _seeds(hi) if lo == hi else f"{lo}–{hi} seeds"


def _lam(lam: float) -> str:
    return f"λ {lam:g}"


def _by_setting(cells: pd.DataFrame, line) -> list[str]:
    """One bullet per setting of ``cells`` with one sub-bullet per variant (in italics, with its seeds, the paper's
    setting said as such): ``line(row)``, or a note for a cell without records."""
    most = int(cells.seeds.max()) if len(cells) else 0
    lines = []
    for s, g in cells.groupby("noise", sort=False):
        if not (g.seeds > 0).any():
            lines.append(f"**{s}:** no records of these variants yet.")
            continue
        subs = [f"*{r.variant}* ({PAPER_SETTING_NOTE if _paper(r.variant) else ''}{_seed_note(r.seeds, most)})"
                + (f": {line(r)}" if r.seeds else ".") for r in g.itertuples()]
        lines.append(f"**{s}:**\n" + "\n".join(f"  - {x}" for x in subs))
    return lines


def horizon_stage_lines(cells: pd.DataFrame) -> list[str]:
    """Appendix F per setting and variant, from :func:`nalkit.results.horizon.stage_cells` (means over seeds): the
    AUROC of 1 - tau at the first, best and last snapshot, and the shares of mislabeled and clean samples with tau
    below ``SET_ASIDE_TAU`` at the last; each variant with its seeds, a cell without records said so."""
    from nalkit.results.horizon import SET_ASIDE_TAU

    def line(r) -> str:
        peak = (" (its best snapshot)" if r.best_epoch == r.first_epoch else
                f", {r.best_auroc:.2f} at epoch {r.best_epoch} (its best snapshot)")
        return (f"AUROC {r.first_auroc:.2f} at epoch {r.first_epoch}{peak}, {r.last_auroc:.2f} at epoch "
                f"{r.last_epoch}; there {pct(r.last_set_aside)} of the mislabeled and {pct(r.last_clean_set_aside)} "
                f"of the clean samples have τ < {SET_ASIDE_TAU:g}.")

    return _by_setting(cells, line)


def horizon_stage_verdict(cells: pd.DataFrame) -> str:
    """Which of the appendix's three stages appear at each lambda, by the rulebook's stage rules (C5's), from
    :func:`nalkit.results.horizon.stage_counts` over :func:`nalkit.results.horizon.stage_cells`: first the answer
    (does the final stage fail at the paper's lambda, or only at the book's?), then per lambda (both schedules) and
    at the paper's setting alone, with the seeds behind each count and, as a description, the cells that leave
    most mislabeled samples at a small tau."""
    from nalkit.results.criteria import (
        STAGE_ALIKE,
        STAGE_APART,
        STAGE_FINAL,
        STAGE_FINAL_CLEAN_MEDIAN,
    )
    from nalkit.results.horizon import (
        PAPER_SETTING,
        SCHEDULE_PAIRS,
        SET_ASIDE_TAU,
        stage_counts,
    )

    if not len(cells) or not (cells.seeds > 0).any():
        return "The long tier has no τ snapshots yet."
    most = int(cells.seeds.max())
    parts, counted = [], {}
    for lam, pair in SCHEDULE_PAIRS.items():
        c = stage_counts(cells, pair)
        if not c.cells:
            parts.append(f"**{_lam(lam)}** ({' and '.join(pair)}): no τ snapshots yet.")
            continue
        counted[lam] = c
        parts.append(
            f"**{_lam(lam)}** ({' and '.join(pair)}; {_seed_range(*c.seeds)} per cell"
            + (" so far" if c.seeds[1] < most else "")
            + (f"; {c.missing} of {c.cells + c.missing} cells not recorded yet" if c.missing else "")
            + f"): of {c.cells} (schedule, setting) cells, {c.apart} separate at some snapshot (stage 2) and "
            f"{c.final} reach the appendix's final stage (stage 3); {c.alike} start alike, which holds by "
            f"construction and is not evidence. As a description, not a stage: {c.set_aside} of the cells end with "
            f"at least half of the mislabeled samples at τ < {SET_ASIDE_TAU:g}.")
    paper = stage_counts(cells, [PAPER_SETTING])
    if paper.cells:
        parts.append(f"**The paper's setting** ({PAPER_SETTING}; {_seed_range(*paper.seeds)} per setting"
                     f"{' so far' if paper.seeds[1] < most else ''}): stage 2 in {paper.apart} and stage 3 in "
                     f"{paper.final} of {paper.cells} settings; by C5's rule over these settings: {paper.verdict}.")
    found = [(lam, c) for lam, c in counted.items() if c.final]
    if not found:
        answer = ("the final stage appears nowhere in these records: it fails at the paper's λ as it does at the "
                  "book's" if len(counted) == len(SCHEDULE_PAIRS) else "the final stage appears nowhere in these "
                  "records (a λ without snapshots cannot say whether it fails there)")
    else:
        where = join_and([f"{v} at {s}" for _, c in found for s, v in c.final_cells])
        answer = (f"the final stage appears only at {join_and([_lam(lam) for lam, _ in found])} ({where})"
                  if len(found) < len(counted) else f"the final stage appears at every λ ({where})")
    few = [f"{_lam(lam)} has {_seed_range(*c.seeds)} per cell so far" for lam, c in counted.items()
           if c.seeds[1] < most]
    caveat = f"; {join_and(few)}, a reading that more seeds may change" if few and found else ""
    return (f"**Three stages?** By the rules of [](rules.md) (stage 2: AUROC of 1 − τ ≥ {STAGE_APART:g} at some "
            f"snapshot; stage 3: AUROC ≥ {STAGE_FINAL:g} and the clean median τ ≥ {STAGE_FINAL_CLEAN_MEDIAN:g} at the "
            f"last snapshot; stage 1: AUROC ≤ {STAGE_ALIKE:g} at the first; means over seeds), {answer}{caveat}."
            "\n\n" + "\n".join(f"- {p}" for p in parts))


def horizon_phi_lines(cells: pd.DataFrame) -> list[str]:
    """Per setting and variant, Theorem 1 at work as :func:`nalkit.results.horizon.phi_cells` finds it (the
    rulebook's PHI_GAP, the rule C7 decides with), each variant with its seeds and a cell without records said so."""
    from nalkit.results.criteria import PHI_GAP

    def line(r) -> str:
        if r.seeds >= 2:
            span = (f"in {len(r.scaled)} of {r.epochs} epochs (first {min(r.scaled)}, last {max(r.scaled)})"
                    if r.scaled else "in no epoch")
            head = (f"the mislabeled samples' mean φ is below the clean samples' by at least {PHI_GAP:g} (95 % "
                    f"interval over seeds above 0) {span}")
        else:
            head = "one seed has no interval over seeds, so C7's rule cannot tell yet"
        return (f"{head}; the mislabeled samples' mean φ is lowest in epoch {r.lowest_epoch} ({r.lowest:.2f}, clean "
                f"samples {r.clean_at_lowest:.2f}); at epoch {r.last_epoch} it is {r.last_mislabeled:.4f} (clean "
                f"{r.last_clean:.4f}).")

    return _by_setting(cells, line)


def horizon_phi_verdict(cells: pd.DataFrame) -> str:
    """Per variant, in how many settings the mislabeled samples' φ is scaled down (the rule of C7, from
    :func:`nalkit.results.horizon.phi_counts`), in some epoch and in the last, and how many settings the rule cannot
    judge yet (one seed has no interval)."""
    from nalkit.results.criteria import PHI_GAP
    from nalkit.results.horizon import phi_counts

    if not len(cells) or not (cells.seeds > 0).any():
        return "The long tier has no φ records yet."
    parts = []
    for v in dict.fromkeys(cells.variant):
        c = phi_counts(cells, [v])
        name = f"*{v}*" + (" (the paper's setting)" if _paper(v) else "")
        if not c.cells:
            parts.append(f"{name}: no φ records yet")
            continue
        text = (f"scaled down in some epoch in {c.anywhere} and in the last epoch in {c.at_last} of {c.decided} "
                f"settings ({_seed_range(*c.seeds)} each)" if c.decided else
                f"no setting it can judge yet ({_seed_range(*c.seeds)} per setting so far)")
        one = c.cells - c.decided
        parts.append(f"{name}: {text}"
                     + (f"; {one} setting{'s' if one != 1 else ''} with one seed so far" if one and c.decided else "")
                     + (f"; {c.missing} not recorded yet" if c.missing else ""))
    return (f"**Theorem 1's scaling, by C7's rule** (the mislabeled samples' mean φ below the clean ones' by at least "
            f"{PHI_GAP:g}, with a 95 % interval over seeds above 0, which one seed cannot give):\n\n"
            + "\n".join(f"- {p}." for p in parts))


def horizon_schedule_lines(diffs: pd.DataFrame) -> list[str]:
    """The authors' schedule beside the book's at the last epoch, at each lambda, from
    :func:`nalkit.results.horizon.schedule_differences`: test accuracy (paired difference over seeds) and the
    corrected labels argmax q, each lambda with its seeds; a pair without records said so."""
    most = int(diffs[["seeds_book", "seeds_authors"]].to_numpy().max()) if len(diffs) else 0
    lines = []
    for s, g in diffs.groupby("noise", sort=False):
        subs = []
        for r in g.itertuples():
            seeds = ("no records yet" if not r.seeds_book and not r.seeds_authors else
                     f"{_seeds(r.seeds_book)} each" + (" so far" if r.seeds_book < most else "")
                     if r.seeds_book == r.seeds_authors else
                     f"authors' {_seed_note(r.seeds_authors, most)}, book's {_seed_note(r.seeds_book, most)}")
            head = f"*{_lam(r.lam)}* ({PAPER_NOTE if _paper(r.authors) else ''}{seeds})"
            if not r.seeds_book or not r.seeds_authors:
                subs.append(f"{head}: not both schedules recorded yet.")
                continue
            subs.append(
                f"{head}: the authors' schedule ends at {pct(r.test_authors)} test accuracy, the book's at "
                f"{pct(r.test_book)} (authors' − book's: {r.diff.sentence()}); its corrected labels are right for "
                f"{pct(r.corrected_authors)} of the training samples and {pct(r.corrected_mislabeled_authors)} of "
                f"the mislabeled ones (book's schedule: {pct(r.corrected_book)} and "
                f"{pct(r.corrected_mislabeled_book)}).")
        lines.append(f"**{s}:**\n" + "\n".join(f"  - {x}" for x in subs))
    return lines


def rank_lines(ranked: pd.DataFrame, settings: Sequence[str]) -> list[str]:
    """``**sym 40 %:** SCE 84.1 > NAL 84.0 > ... (epoch 40)`` per setting and epoch, from
    :func:`nalkit.results.horizon.ranked_means` frames concatenated (best first within each)."""
    return [f"**{s}:** " + " > ".join(f"{r.variant} {100 * r.mean:.1f}" for r in g.itertuples()) + f" (epoch {e})"
            for s in settings for e, g in ranked[ranked.noise == s].groupby("epoch", sort=False)]


# --------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------
def _seed_span(seeds: pd.DataFrame, variant: str) -> tuple[int, int]:
    """(fewest, most) seeds of ``variant``'s cells with records in ``seeds`` (columns ``variant``, ``seeds``)."""
    n = seeds[(seeds.variant == variant) & (seeds.seeds > 0)].seeds
    return (int(n.min()), int(n.max())) if len(n) else (0, 0)


def column_title(variant: str, seeds: int | tuple[int, int]) -> str:
    """A figure column's title: the variant's name, wrapped before its schedule, and its seeds (a number, or the
    fewest and most of the column's cells)."""
    name = variant.replace(", authors'", ",\nauthors'")
    lo, hi = seeds if isinstance(seeds, tuple) else (seeds, seeds)
    return f"{name}\n({_seed_range(lo, hi)})" if hi else f"{name}\n(no records yet)"


def legend_label(variant: str, seeds: pd.DataFrame) -> str:
    """``NAL (3 seeds)``, ``NAL (λ 0.5) (1–3 seeds)``: a variant with the seeds of its cells in ``seeds``
    (:func:`nalkit.results.horizon.seeds_per_cell`)."""
    span = _seed_span(seeds, variant)
    return f"{variant} ({_seed_range(*span) if span[1] else 'no records yet'})"


def _mark_missing(axes: np.ndarray, have: np.ndarray, text: str) -> None:
    """A note in the cells of a panel grid without data (``have[r, c]`` False): in the top panel only when the
    whole column is empty, else in each empty panel."""
    for c in range(have.shape[1]):
        rows = [0] if not have[:, c].any() else [r for r in range(have.shape[0]) if not have[r, c]]
        for r in rows:
            axes[r, c].text(0.5, 0.5, text, transform=axes[r, c].transAxes, ha="center", va="center",
                            fontsize=plotting.FONT_SIZE - 1, color="0.3")


def stage_figures(runs: pd.DataFrame, settings: Sequence[str], cells: pd.DataFrame, height: float = 1.05) -> list:
    """One :func:`nalkit.plotting.tau_grid` per setting of ``settings``: tau of clean and mislabeled samples at each
    snapshot epoch (rows) of each variant of ``cells`` (:func:`nalkit.results.horizon.stage_cells`; columns, titled
    with their seeds), pooled over seeds. Every figure shares one tau axis and overflow bin; a cell without
    snapshots is blank with a note; a setting without any, a placeholder."""
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    from nalkit.results import load_snapshots

    from .common import placeholder_figure

    variants = list(dict.fromkeys(cells.variant))
    seeds = {(r.noise, r.variant): int(r.seeds) for r in cells.itertuples()}
    data: dict[str, dict] = {}
    for s in settings:
        data[s] = {}
        for v in variants:
            dirs = runs[(runs.noise == s) & (runs.variant == v)].run_dir if len(runs) else []
            snaps = load_snapshots(dirs, "tau") if len(dirs) else pd.DataFrame(columns=["epoch"])
            for e, x in snaps[snaps.epoch >= 0].groupby("epoch"):
                data[s][(f"epoch {e}", column_title(v, seeds.get((s, v), 0)))] = (x.value.to_numpy(),
                                                                                   x.is_noisy.to_numpy())
    # one tau axis for every figure, so that they compare, with an overflow bin in each when any panel needs one
    taus = [tau for d in data.values() for tau, _ in d.values()]
    limits = plotting.tau_limits(*taus, cap=plotting.TAU_CAP) if taus else None
    overflow = bool(taus) and max(plotting.overflow_share(tau, limits) for tau in taus) >= 0.001
    figs = []
    for s in settings:
        d = data[s]
        if not d:
            figs.append(placeholder_figure(f"no τ snapshots of the long tier at {s} yet"))
            continue
        rows = sorted({r for r, _ in d}, key=lambda r: int(r.split()[1]))
        columns = [column_title(v, seeds.get((s, v), 0)) for v in variants]
        fig = plotting.tau_grid(d, rows, columns, height=height, limits=limits, overflow=overflow)
        axes = np.array(fig.axes[:len(rows) * len(columns)]).reshape(len(rows), len(columns))
        # four columns at the book's width: a wider gap between panels, so that one panel's "> 0.999999" is not
        # read as the next one's first tick
        if isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine):  # the book's style (plotting.use_style)
            fig.get_layout_engine().set(wspace=0.08)
        for ax in axes[-1]:
            ax.tick_params(axis="x", labelsize=plotting.FONT_SIZE - 2)
        for c, title in enumerate(columns):
            axes[0, c].set_title(title, fontsize=plotting.FONT_SIZE - 1)
        _mark_missing(axes, np.array([[(row, col) in d for col in columns] for row in rows]), "no τ snapshots yet")
        figs.append(fig)
    return figs


def detector_figure_by_variant(series: pd.DataFrame, settings: Sequence[str], variants: Sequence[str],
                               seeds: pd.DataFrame):
    """AUROC of 1 - tau (top row) and of the per-sample loss (bottom row) against the epoch, one column per setting,
    one line per variant in its :func:`nalkit.plotting.line_style` (``series``:
    :func:`nalkit.results.detector_series`; the legend names each variant with its seeds, from ``seeds``:
    :func:`nalkit.results.horizon.seeds_per_cell`); chance dotted."""
    import matplotlib.pyplot as plt

    rows = [("tau", "AUROC of 1 − τ"), ("loss", "AUROC of the loss")]
    fig, axes = plt.subplots(len(rows), len(settings), figsize=(plotting.FIG_WIDTH, 2.0 * len(rows) + 0.9),
                             sharex=True, sharey=True, squeeze=False)
    for r, (det, label) in enumerate(rows):
        for c, s in enumerate(settings):
            ax = axes[r, c]
            for v in variants:
                g = series[(series.detector == det) & (series.noise == s) & (series.variant == v)]
                if len(g):
                    ax.plot(g.epoch, g["mean"], lw=1.3, label=legend_label(v, seeds), **plotting.line_style(v))
            ax.axhline(0.5, color="grey", lw=0.8, ls=":")
            ax.set(ylim=(0.4, 1.0))
            if r == 0:
                ax.set_title(s)
            if r == len(rows) - 1:
                ax.set_xlabel("epoch")
            if c == 0:
                ax.set_ylabel(label)
    plotting.legend_outside(fig, axes, ncol=2)
    return fig


def phi_figure(epochs: pd.DataFrame, settings: Sequence[str], cells: pd.DataFrame, labels: dict[str, str]):
    """:func:`nalkit.plotting.gap_grid` of φ of the clean and the mislabeled samples, one row per setting (named by
    ``labels``), one column per variant of ``cells`` (:func:`nalkit.results.horizon.phi_cells`), each column titled
    with its seeds (the fewest and most of its settings with records); a cell without records is blank with a
    note."""
    variants = list(dict.fromkeys(cells.variant))
    titles = {v: column_title(v, _seed_span(cells, v)) for v in variants}
    have = epochs[epochs.variant.isin(variants)]
    fig = plotting.gap_grid(have.assign(noise=have.noise.map(labels)), [labels[s] for s in settings], variants,
                            ("phi_clean", "phi_mislabeled"), titles=titles, ylabel="mean φ, %", height=2.0)
    axes = np.array(fig.axes[:len(settings) * len(variants)]).reshape(len(settings), len(variants))
    for c in range(len(variants)):
        axes[0, c].set_title(titles[variants[c]], fontsize=plotting.FONT_SIZE - 1)
    seeds = {(r.noise, r.variant): r.seeds for r in cells.itertuples()}
    _mark_missing(axes, np.array([[bool(seeds.get((s, v))) for v in variants] for s in settings]), "no φ records yet")
    return fig


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
