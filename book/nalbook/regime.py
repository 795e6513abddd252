"""Phrasing for the regime chapter (book/regime.md): the claims x regimes matrix in words."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .common import join_and, table_md


def regime_cell(row) -> str:
    """One cell of the regime matrix: the rulebook's word and the deciding number with its 95 % interval, in points
    or as the claim shows it (``shown``: for τ's stage 2 the best AUROC itself); the detectors' cell is its
    note."""
    if row.key == "–" or not np.isfinite(row["mean"]):
        return row.note or row.word or "–"
    if row.shown:
        o = row.offset
        number = f"{row.shown} {row['mean'] + o:.2f}"
        if np.isfinite(row.low):
            number += f" [{row.low + o:.2f}, {row.high + o:.2f}]"
        if row.note:  # where τ separated best; the two numbers stage 3's margin is the weaker of
            number += f" ({row.note})"
    else:
        number = f"{100 * row['mean']:+.1f}" + (f" [{100 * row.low:+.1f}, {100 * row.high:+.1f}]"
                                                if np.isfinite(row.low) else "")
    return f"**{row.word}**: {number}"


def regime_matrix_md(matrix: pd.DataFrame, axis: str, number: int) -> str:
    """The claims × regimes table of one axis (numbered ``tab-regime-<number>``)."""
    from nalkit.results.criteria import MEMORISING

    d = matrix[matrix.axis == axis]
    regimes = list(dict.fromkeys(d.regime))
    heads = {}
    for r in regimes:
        g = d[d.regime == r].iloc[0]
        mem = (f"; CE memorised {100 * g.ce_memorised:.0f} %" if np.isfinite(g.ce_memorised) else "")
        seeds = f"{g.seeds}" if g.seeds == g.seeds_most else f"{g.seeds}–{g.seeds_most}"
        heads[r] = f"{r}{' (reference)' if g.reference else ''}<br>{seeds} seed{'s' if g.seeds_most != 1 else ''}{mem}"
    cells = {r: {c.claim: regime_cell(c) for _, c in d[d.regime == r].iterrows()} for r in regimes}
    claims = list(dict.fromkeys(d.claim))
    keys = dict(zip(d.claim, d.key))
    table = pd.DataFrame({heads[r]: [cells[r].get(c, "–") for c in claims] for r in regimes},
                         index=[f"{keys[c]}: {c}" if keys[c] != "–" else c for c in claims]).rename_axis("claim")
    return table_md(table, f"Axis *{axis}*: each claim in each regime, decided by the rulebook ([](rules.md)); "
                    f"differences in points with their 95 % interval over paired seeds. A memorisation claim reads "
                    f"*not reached* where CE memorised at most {100 * MEMORISING:.0f} % of the mislabeled samples.",
                    f"tab-regime-{number}", align="left")


def regime_lines(stability: pd.DataFrame, matrix: pd.DataFrame) -> list[str]:
    """One sentence per claim: stable across the regimes that decide it, or which regime turns it (and where it
    stays undecided, was not reached, or is not tested yet), by :func:`nalkit.results.regime_stability`'s rule."""
    from nalkit.results.regime import UNDECIDED_WORDS

    lines = []
    for (key, claim), g in stability.groupby(["key", "claim"], sort=False):
        if key == "–":  # τ among the detectors has a rank, not a verdict: listed per regime below
            continue
        decided = g[g.stable.notna()]
        tested = [(a, r) for a, rs in zip(decided.axis, decided.tested) for r in rs]
        words = [(r, a, w, rw) for a, rs, ws, w in zip(decided.axis, decided.tested, decided.tested_words,
                                                       decided.reference_word) for r, rw in zip(rs, ws)]
        turned = [f"{r} ({a}: {w} → {rw})" for r, a, w, rw in words if rw != w]
        same = [f"{r} ({a})" for r, a, w, rw in words if rw == w]
        # axes whose reference leaves the claim undecided: what the other regimes say is reported, not compared
        ref_open = g[g.reference_word.isin(UNDECIDED_WORDS)]
        beside = [f"{r} ({a}): {rw}" for a, rs, ws in zip(ref_open.axis, ref_open.tested, ref_open.tested_words)
                  for r, rw in zip(rs, ws)]
        undecided = [f"{r} ({a})" for a, rs in zip(g.axis, g.open) for r in rs]
        unreached = [f"{r} ({a})" for a, rs in zip(g.axis, g.unreached) for r in rs]
        name = f"**{key}, {claim}:**"
        where = join_and([f"{r} ({a})" for a, r in tested])
        axes = join_and([f"*{a}*" for a in dict.fromkeys(ref_open.axis)])
        if turned:
            text = f"{name} turned by {join_and(turned)}" + (
                f"; the same verdict as in the reference in {join_and(same)}" if same else "")
        elif tested:
            text = f"{name} the same verdict as in the reference in every regime that decides it: {where}"
        elif beside:
            text = f"{name} undecided in the reference regime of {axes}, so no regime there can turn it"
        else:
            text = f"{name} no regime beyond the CPU regime decides it yet"
        if beside:
            text += (f"; decided in {join_and(beside)}" if not tested and not turned else
                     f"; undecided in the reference regime of {axes}, decided in {join_and(beside)}")
        elif len(ref_open):
            text += f"; undecided in the reference regime of {axes}"
        if undecided:
            text += f"; undecided (an interval across the boundary, or one seed) in {join_and(undecided)}"
        if unreached:
            text += f"; not reached in {join_and(unreached)}"
        lines.append(text + ".")
    ranks = matrix[(matrix.key == "–") & (matrix.note != "")]
    # the reference regimes of several axes are the same runs: each distinct reference once
    ranks = pd.concat([ranks[ranks.reference].drop_duplicates(["seeds", "seeds_most", "note"]),
                       ranks[~ranks.reference]])
    if len(ranks):
        lines.append("**τ among the mislabel detectors:** " + "; ".join(
            f"{r.regime} ({r.axis}): {r.note}" for r in ranks.itertuples()) + ".")
    return lines


def regime_label(axis: str, regime: str, reference: bool, horizon: int) -> str:
    """A regime's name in a figure: the reference regimes (the same runs for several axes) by their horizon."""
    return f"CPU regime, {horizon} epochs (reference)" if reference else f"{regime} ({axis})"


def memorisation_figure(ce_epochs: pd.DataFrame):
    """CE's memorised share against the epoch in every regime (:func:`nalkit.results.regime.regime_epochs`), one
    panel per horizon, the MEMORISING line dotted."""
    import matplotlib.pyplot as plt
    from nalkit import plotting
    from nalkit.results import curves
    from nalkit.results.criteria import MEMORISING

    horizons = sorted(set(ce_epochs.horizon))
    fig, axes = plt.subplots(1, len(horizons), figsize=(plotting.FIG_WIDTH, 3.9), squeeze=False, sharey=True)
    c = curves(ce_epochs, "memorized", by=("axis", "regime", "reference", "horizon"))
    others = list(dict.fromkeys((a, r) for a, r, ref in zip(c.axis, c.regime, c.reference) if not ref))
    colors = {k: f"C{i % 10}" for i, k in enumerate(others)}  # one colour per regime across the panels
    for ax, h in zip(axes[0], horizons):
        for (axis, regime, reference), g in c[c.horizon == h].groupby(["axis", "regime", "reference"], sort=False):
            ax.plot(g.epoch, 100 * g["mean"], color="black" if reference else colors[(axis, regime)],
                    lw=1.6 if reference else 1.2,
                    label="CPU regime (reference)" if reference else regime_label(axis, regime, reference, h))
        ax.axhline(100 * MEMORISING, color="grey", lw=0.8, ls=":")
        ax.set_title(f"{h} epochs")
        ax.set_xlabel("epoch")
    axes[0][0].set_ylabel("CE: mislabeled samples\nmemorised (%)")
    handles = list({h.get_label(): h for ax in axes[0] for h in ax.get_lines()
                    if not h.get_label().startswith("_")}.values())  # the reference once
    fig.legend(handles=handles, loc="outside lower center", ncol=2, fontsize=plotting.FONT_SIZE - 2)
    return fig


def memorisation_lines(pace: pd.DataFrame) -> list[str]:
    """One sentence per regime (:func:`nalkit.results.regime.memorisation_pace`): CE's memorised share at its last
    epoch with its interval, and when it first passed MEMORISING, beside the reference of the same horizon."""
    from nalkit.results.criteria import MEMORISING

    lines = []
    for r in pace.itertuples():
        share = f"{100 * r.last:.0f} %" + (f" [{100 * r.low:.0f}, {100 * r.high:.0f}]" if np.isfinite(r.low) else "")
        when = (f"it passed {100 * MEMORISING:.0f} % at epoch {r.first:.0f} on average"
                + (f" in {r.reached} of {r.n} seeds" if r.reached < r.n else "") if r.reached else
                f"it never passed {100 * MEMORISING:.0f} %")
        lines.append(f"**{regime_label(r.axis, r.regime, r.reference, r.horizon)}:** CE memorised {share} of the "
                     f"mislabeled samples by epoch {r.horizon} ({r.n} seed{'s' if r.n != 1 else ''}); {when}.")
    return lines


def long_noise_table(diffs: pd.DataFrame) -> tuple[str, list[str]]:
    """The 200-epoch noise-type comparison (:func:`nalkit.results.regime.long_noise_comparison`) as a numbered
    table and one sentence per setting: which variants are above NAL, within its seed spread or below it, by the
    rulebook's side of each paired difference; and a last sentence naming the variants whose side differs between
    the settings."""
    from nalkit.results.criteria import FAILS, HOLDS

    from .attention import difference_rows

    if not len(diffs):
        return "No 200-epoch records of the noise-type comparison yet.", []
    rows = difference_rows(diffs, "NAL")
    table = table_md(pd.DataFrame(rows).set_index(["setting", "variant"]),
                     "Over 200 epochs, 3,000 images: every variant of the 200-epoch noise-type grid beside NAL (λ 2, "
                     "the book's schedule), last-epoch test accuracy and the share of mislabeled samples memorised (%, "
                     "mean ± std over seeds, n in brackets), and each variant minus NAL in both, paired over seeds "
                     "(points, 95 % t-interval). Class-conditional sym 40 % is the long tier's records.",
                     "tab-regime-idn-long")
    words = {HOLDS: "above NAL", FAILS: "below NAL"}
    lines, sides = [], {}
    for s, d in diffs.groupby("noise", sort=False):
        judged = d[d.side.notna()]
        sides[s] = dict(zip(judged.variant, judged.side))
        parts = [f"{words.get(w, 'within its seed spread')}: "
                 + join_and([f"*{r.variant}* ({100 * r.test.mean:+.1f})" for r in judged[judged.side == w].itertuples()])
                 for w in (HOLDS, "undecided", FAILS) if (judged.side == w).any()]
        if parts:
            lines.append(f"**{s}, 200 epochs:** " + "; ".join(parts) + ".")
    if len(sides) > 1:
        first, *others = list(sides)
        for s in others:
            both = [v for v in sides[first] if v in sides[s]]
            moved = [f"*{v}* ({words.get(sides[first][v], 'within')} → {words.get(sides[s][v], 'within')})"
                     for v in both if sides[first][v] != sides[s][v]]
            lines.append(f"From {first} to {s}: " + (f"{join_and(moved)} moved against NAL" if moved else
                                                     f"each of the {len(both)} variants judged in both stays where it "
                                                     "was against NAL") + ".")
    return table, lines
