"""Phrasing and figures for the attention chapter (book/attention.md): controls, phi, detectors."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from nalkit import plotting

from .common import join_and
from .horizon import VARIANT_COLORS

#: full NAL, tau = 1 and the three attention controls, as nalkit.results.nal_variant names them
CONTROL_VARIANTS = ["full NAL", "τ = 1", "one learned τ", "one learned τ per class",
                    "τ = full NAL's mean per epoch"]


CONTROL_COLORS = {v: plotting.line_style(v)["color"] for v in CONTROL_VARIANTS}


def _pm(mean: float, std: float) -> str:
    """``mean ± std`` in percent as :func:`nalbook.pm` prints a column (the mean alone without a spread)."""
    if not np.isfinite(mean):
        return "–"
    return f"{100 * mean:.1f}" if not np.isfinite(std) else f"{100 * mean:.1f} ± {100 * std:.1f}"


def difference_rows(diffs: pd.DataFrame, base: str) -> list[dict]:
    """Table rows of :func:`nalkit.results.variant_differences`' frame: each variant's test accuracy and
    memorised share (mean ± std, n) and its paired difference from ``base`` in both."""
    return [{"setting": r.noise, "variant": r.variant, "test acc": f"{_pm(r.test_mean, r.test_std)} ({r.n})",
             "memorised": _pm(r.memorised_mean, r.memorised_std),
             f"test acc − {base}": r.test.sentence(pairs="seeds") if r.test is not None else "–",
             f"memorised − {base}": r.memorised.sentence(pairs="seeds") if r.memorised is not None else "–"}
            for r in diffs.itertuples()]


def control_table(runs: pd.DataFrame, settings: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """The controls beside full NAL and tau = 1 per setting (test accuracy, memorisation, each paired over seeds
    against full NAL: :func:`nalkit.results.claims.control_differences`), one sentence per setting saying which
    variant stays within the seed spread of full NAL, and a last sentence answering the section's question by C8's
    rule (:func:`nalkit.results.claims.per_sample_answer`: full NAL against the control the rule names, one learned
    tau for all samples)."""
    from nalkit.results.claims import PER_SAMPLE_CONTROL, by_standing, control_differences, per_sample_answer
    from nalkit.results.criteria import ONE_SEED

    rows, lines = [], []
    chosen = runs[runs.setting.isin(settings)] if len(runs) else runs
    chosen = chosen.assign(noise=chosen.setting) if len(chosen) else chosen
    diffs = control_differences(chosen, CONTROL_VARIANTS)
    for s in settings:
        d = diffs[diffs.noise == s] if len(diffs) else diffs
        if not len(d):
            continue
        rows += difference_rows(d, "full NAL")
        judged = [r for r in d.itertuples() if r.recovers is not None]  # not full NAL itself, nor one seed
        recovered = [f"{r.variant} ({100 * r.test.mean:+.1f})" for r in judged if r.recovers]
        short = [f"{r.variant} ({100 * r.test.mean:+.1f})" for r in judged if not r.recovers]
        if recovered or short:
            lines.append(f"**{s}:** within the seed spread of full NAL or above it: "
                         f"{join_and(recovered) if recovered else 'none'}; below it: {join_and(short) if short else 'none'}.")
    answer = per_sample_answer(chosen)
    answer = answer[answer.standing != ONE_SEED] if len(answer) else answer
    if len(answer):
        parts = [f"{r.noise}: {100 * r.test.mean:+.1f} points of test accuracy (95 % CI {100 * r.test.low:+.1f} to "
                 f"{100 * r.test.high:+.1f}; {r.standing}) and {100 * r.memorised.mean:+.1f} points memorised (CI "
                 f"{100 * r.memorised.low:+.1f} to {100 * r.memorised.high:+.1f})" for r in answer.itertuples()]
        groups = by_standing(dict(zip(answer.noise, answer.test)))
        ahead, behind, open_ = groups["ahead"], groups["behind"], groups["matches"] + groups["undecided"]
        open_ = [s for s in answer.noise if s in open_]  # in the settings' order
        lines.append(f"**The per-sample part of τ** (full NAL − {PER_SAMPLE_CONTROL}, the control claim C8 names: "
                     f"everything of NAL but a τ per sample; paired over seeds): {'; '.join(parts)}. It adds test "
                     f"accuracy beyond the seed spread in {len(ahead)} of {len(answer)} settings"
                     + (f" ({join_and(ahead)})" if ahead else "")
                     + (f"; the control is ahead of full NAL beyond the spread at {join_and(behind)}" if behind else "")
                     + (f"; the records do not separate the two at {join_and(open_)}" if open_ else "") + ".")
    table = pd.DataFrame(rows).set_index(["setting", "variant"]) if rows else pd.DataFrame()
    return table, lines


def phi_lines(epochs: pd.DataFrame, settings: Sequence[str]) -> list[str]:
    """Per setting and schedule, Theorem 1 at work as :func:`nalkit.results.phi_scaling` finds it (the rulebook's
    PHI_GAP, the rule C7 decides with): the epochs in which the mislabeled samples' φ is below the clean ones',
    the lowest mean φ of the mislabeled samples, and φ at the last epoch."""
    from nalkit.results import phi_scaling
    from nalkit.results.criteria import PHI_GAP

    table = phi_scaling(epochs[epochs.noise.isin(settings)]) if len(epochs) else phi_scaling(epochs)
    order = {s: i for i, s in enumerate(settings)}
    rank = {v: i for i, v in enumerate(VARIANT_COLORS)}
    lines = []
    for r in sorted(table.itertuples(), key=lambda r: (order.get(r.noise, 99), rank.get(r.variant, 99), r.variant)):
        span = (f"in {len(r.scaled)} of {r.epochs} epochs (first {min(r.scaled)}, last {max(r.scaled)})" if r.scaled
                else "in no epoch" if r.seeds >= 2 else "in no epoch it can tell (one seed so far: no interval)")
        lines.append(
            f"**{r.noise}, {r.variant}:** the mislabeled samples' mean φ is below the clean samples' by at least "
            f"{PHI_GAP:g} (95 % interval over seeds above 0) {span}; it is lowest in epoch {r.lowest_epoch} "
            f"({r.lowest:.2f}, clean samples {r.clean_at_lowest:.2f}); at epoch {r.last_epoch} it is "
            f"{r.last_mislabeled:.4f} (clean {r.last_clean:.4f}).")
    return lines


DETECTOR_COLORS = dict(zip(["tau", "loss", "meanloss", "aum", "wrong", "forget"], plotting.OKABE_ITO))


def detector_figure(epochs: pd.DataFrame, settings: Sequence[str], chance_ap: dict[str, float] | None = None):
    """One column per setting: every detector's AUROC (top) and average precision (bottom) against the epoch (mean
    over runs); chance dotted (AUROC 0.5; AP the mislabeled fraction, ``chance_ap`` per setting)."""
    import matplotlib.pyplot as plt
    from nalkit.detectors import DETECTORS
    from nalkit.results import detector_series

    fig, axes = plt.subplots(2, len(settings), figsize=(plotting.FIG_WIDTH, 5.0), sharey="row", sharex=True,
                             squeeze=False)
    for row, stat in enumerate(("auroc", "ap")):
        series = detector_series(epochs, tuple(DETECTORS), stat=stat, by=("noise",))
        for ax, s in zip(axes[row], settings):
            for name, g in series[series.noise == s].groupby("detector", sort=False):
                ax.plot(g.epoch, g["mean"], color=DETECTOR_COLORS.get(name, "grey"), lw=1.3,
                        label=DETECTORS[name])
            chance = 0.5 if stat == "auroc" else (chance_ap or {}).get(s)
            if chance is not None:
                ax.axhline(chance, color="grey", lw=0.8, ls=":")
            ax.set(title=s if row == 0 else "", xlabel="epoch" if row == 1 else "",
                   ylim=(0.3, 1.0) if stat == "auroc" else (0.0, 1.0))
        axes[row, 0].set_ylabel("AUROC" if stat == "auroc" else "average precision")
    plotting.legend_outside(fig, axes, ncol=3)
    return fig


def detector_summary(table: pd.DataFrame, cl: dict, settings: Sequence[str],
                     variant: str = "NAL") -> tuple[pd.DataFrame, list[str]]:
    """The detector table of ``variant``'s runs (from :func:`nalkit.results.detector_table`) with confident
    learning's row (``cl``: {(setting, seed): nalkit.results.confident_learning output}, averaged per setting by
    :func:`nalkit.results.detection.confident_learning_summary`), and per setting where 1 - tau ranks among the
    detectors at their best and at the last epoch (:func:`nalkit.results.tau_rank`)."""
    from nalkit.detectors import DETECTORS
    from nalkit.results import tau_rank
    from nalkit.results.detection import confident_learning_summary

    rows, lines = [], []
    learned = confident_learning_summary(cl)
    for s in settings:
        d = table[(table.noise == s) & (table.variant == variant)] if len(table) else table
        for r in d.itertuples():
            rows.append({"setting": s, "detector": DETECTORS[r.detector],
                         "best AUROC (epoch)": f"{r.best_auroc:.2f} ({r.best_epoch:.0f})",
                         "last AUROC": f"{r.last_auroc:.2f}", "best AP": f"{r.best_ap:.2f}",
                         "last AP": f"{r.last_ap:.2f}"})
        c = learned.loc[s] if s in learned.index else None
        if c is not None:
            rows.append({"setting": s, "detector": f"confident learning (CE, 5-fold, n = {int(c.n)})",
                         "best AUROC (epoch)": f"{c.auroc:.2f}", "last AUROC": f"{c.auroc:.2f}", "best AP": f"{c.ap:.2f}",
                         "last AP": f"{c.ap:.2f}"})
        ranks = tau_rank(d)
        if len(ranks):
            r = ranks.iloc[0]
            lines.append(
                f"**{s}:** at their best epochs 1 − τ ranks {r.best_rank} of {r.of} (AUROC {r.tau_best:.2f}, reached "
                f"around epoch {r.tau_best_epoch}; best: {DETECTORS[r.best_top]}, {r.best_top_value:.2f}); at the "
                f"last epoch it ranks {r.last_rank} (AUROC {r.tau_last:.2f}; best: {DETECTORS[r.last_top]}, "
                f"{r.last_top_value:.2f}) and {r.ap_rank} by average precision ({r.tau_ap:.2f}; best: "
                f"{DETECTORS[r.ap_top]}, {r.ap_top_value:.2f})"
                + (f"; confident learning reaches AUROC {c.auroc:.2f}, average precision {c.ap:.2f}." if c is not None
                   else "."))
    shown = pd.DataFrame(rows).set_index(["setting", "detector"]) if rows else pd.DataFrame()
    return shown, lines
