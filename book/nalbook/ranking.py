"""Phrasing for the results chapter (book/results.md): tuning, ranking, what tuning changed."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from .common import (
    PARAMETER_NAMES,
    _span,
    bullets,
    grid_names,
    join_and,
    method_name,
    pm,
    table_md,
)


def accuracy_table(frame: pd.DataFrame, settings: Sequence[str], names: dict[str, str], cols: Sequence[str],
                   value: str, caption: str, name: str) -> str:
    """A numbered table of ``value`` (mean ± std over seeds, in %), one row per setting and one column per method
    of ``cols``; the caption ends with the seeds per cell."""
    n = frame.groupby(["setting", "method"]).size()
    cells = [[pm(frame[(frame.setting == s) & (frame.method == m)][value]) or "–" for m in cols] for s in settings]
    table = pd.DataFrame(cells, index=[names.get(s, s) for s in settings],
                         columns=[method_name(m) for m in cols]).rename_axis("noise")
    seeds = f"{n.min()}" if n.min() == n.max() else f"{n.min()}–{n.max()}"
    return table_md(table, caption + f" Mean ± std over seeds (n = {seeds} per cell).", name)


def tuning_table(chosen: dict, candidates: pd.DataFrame) -> str:
    """Each method's candidates with their mean noisy-validation accuracy, the choice and its margin."""
    from nalkit.results import AUTHORS_VALUES, PAPER_LAMBDA

    if not chosen:
        return "The tuning grids have no records yet (`nalkit run configs/grids/tuning.yaml`)."
    rows = []
    for method in ("gce", "sce", "elr", "selc", "nal"):
        if method not in chosen:
            continue
        sel = chosen[method]
        col = f"{sel.table.columns[0].rsplit('_', 1)[0]}_mean"
        cells = [(f"**{v:g}: {100 * r[col]:.1f}**" if v == sel.chosen else f"{v:g}: {100 * r[col]:.1f}")
                 for v, r in sel.table.iterrows()]
        authors = PAPER_LAMBDA if method == "nal" else AUTHORS_VALUES.get(method)
        rows.append({"method": method_name(method), "parameter": PARAMETER_NAMES[method],
                     "candidates: noisy-val acc (%)": " · ".join(cells),
                     "chosen": f"{sel.chosen:g}", "authors' value": f"{authors:g}" if authors is not None else "–",
                     "chosen − runner-up (points)": sel.margin.sentence(pairs="(setting, seed) pairs")
                     if sel.margin is not None else "–",
                     "runs": int(sel.table.n.sum())})
    frame = pd.DataFrame(rows).set_index("method")
    return table_md(frame, "The equal tuning budget: each method's candidates with their mean last-epoch accuracy on the "
                    "noisy validation set over the three settings and seeds 0–2 (the chosen one in bold), NAL's λ from "
                    "the λ grid. \"authors' value\": each method's CIFAR-10 recipe, NAL's the paper's λ = "
                    f"{PAPER_LAMBDA:g} (the λ grid chose among 8 values, [](mechanism.md)).", "tab-tuning")


def tuning_sentence(chosen: dict, runs: pd.DataFrame, tuning: pd.DataFrame, tuned: bool) -> str:
    """Whether the tuning grid is complete and whether the default grid runs the chosen values."""
    expected = len(grid_names("tuning"))
    text = (f"The tuning grid holds {len(tuning)} of its {expected} runs"
            + (" (complete)." if expected and len(tuning) >= expected else
               ": the choices above are from the candidates run so far and may change.") if expected else
            "The tuning grid has not run.")
    if tuned:
        seen = sorted(set(tuning.seed)) if len(tuning) and "seed" in tuning else []
        unseen = sorted(set(runs.seed) - set(seen)) if len(runs) and "seed" in runs else []
        return text + (" The default grid below runs every method at its chosen value"
                       + (f", over seeds {_span(sorted(set(runs.seed)))}: seeds {_span(unseen)} are ones the selection "
                          "never saw." if unseen else "."))
    return text + (" The default grid's records below predate this selection: they run the baselines at their authors' "
                   "CIFAR-10 values, so in them only NAL is tuned (see the verdict of claim C2 in {numref}`tab-claims`).")


def ranking_lines(order: pd.DataFrame, settings: Sequence[str], names: dict[str, str]) -> str:
    """Per setting: the methods best first, NAL against each other method with what is resolved
    (:func:`nalkit.results.comparison.nal_rank`, the rulebook's ``side``)."""
    from nalkit.results.comparison import nal_rank

    lines = []
    for r in nal_rank(order, settings).itertuples():
        d = order[order.noise == r.noise]
        ranked = ", ".join(f"{method_name(m)} {100 * v:.1f}" for m, v in zip(d.method, d["mean"]))
        role = "the runner-up" if r.rank == 1 else "the best"
        text = (f"**{names.get(r.noise, r.noise)}** (last epoch, best first): {ranked}. NAL − {method_name(r.rival)} "
                f"({role}): {r.diff.sentence()}.")
        above, below = [method_name(m) for m in r.above], [method_name(m) for m in r.below]
        text += (f" NAL is resolved above {join_and(above) or 'no method'}"
                 + (f" and below {join_and(below)}" if below else "") + ".")
        if r.unresolved:
            need = [f"{method_name(m)} ({'–' if pd.isna(n) else '≥ 1,000' if n >= 1000 else int(n)})"
                    for m, n in r.unresolved]
            text += (" Unresolved, with the seeds the observed mean and spread would need for a 95 % interval that "
                     f"excludes 0: {join_and(need)}.")
        lines.append(text)
    return bullets(lines) if lines else ""


def ranking_verdict(order: pd.DataFrame, settings: Sequence[str]) -> str:
    """One sentence: in how many settings NAL is resolved above all, below some, or not separable from its rival
    (:func:`nalkit.results.comparison.nal_standing`, the rulebook's MATCH for "level")."""
    from nalkit.results.comparison import nal_standing
    from nalkit.results.criteria import MATCH

    st = nal_standing(order, settings)
    if not len(st):
        return ""
    first, behind = list(st.noise[st.status == "first"]), list(st.noise[st.status == "behind"])
    open_ = st[st.status == "open"]
    n = int(order.n.min())
    parts = [f"NAL is resolved above every other method at {join_and(first) or 'no setting'}"]
    if behind:
        parts.append(f"resolved below at least one at {join_and(behind)}")
    if len(open_):
        level = open_[open_.level]
        parts.append(f"not separable from the best of the others at {join_and(list(open_.noise))} with {n} seeds")
        if len(level):
            parts[-1] += (", and level with it within ±" + f"{100 * MATCH:g} point (95 % interval) at "
                          + join_and([f"{r.noise} (NAL − {method_name(r.rival)} {100 * r.diff.mean:+.1f} points, 95 % "
                                      f"CI {100 * r.diff.low:+.1f} to {100 * r.diff.high:+.1f})"
                                      for r in level.itertuples()]))
    return "**Ranking:** " + "; ".join(parts) + "."


def untuned_verdict(untuned: pd.DataFrame, tuned_runs: pd.DataFrame, chosen: dict, settings: Sequence[str],
                    tuned: bool = True) -> str:
    """What tuning changed: each baseline's chosen value against its authors' one (last-epoch test accuracy, paired
    over the seeds both ran, per setting: :func:`nalkit.results.comparison.tuning_effects`) and NAL's rank among the
    same six methods before and after (:func:`nalkit.results.rank_change`). Without ``tuned`` (the default grid does
    not run the chosen values) only the choices are stated."""
    from nalkit.results import PAPER_LAMBDA, rank_change
    from nalkit.results.comparison import tuning_effects

    if not len(untuned):
        return ""
    lines = []
    compared = tuned_runs if tuned else tuned_runs.iloc[:0]
    for r in tuning_effects(untuned, compared, chosen, settings).itertuples():
        if r.kept:
            lines.append(f"{method_name(r.method)} keeps its authors' value ({r.authors:g}).")
            continue
        change = [f"{100 * d.mean:+.1f} [{100 * d.low:+.1f}, {100 * d.high:+.1f}] at {s}" for s, d in r.change.items()]
        lines.append(f"{method_name(r.method)} chooses {PARAMETER_NAMES[r.method].split(' (')[0]} = {r.chosen:g} "
                     f"instead of {r.authors:g}" + (f"; test accuracy, tuned − authors' value, points [95 % CI, paired "
                                                    f"seeds]: {join_and(change)}." if change else "."))
    change = rank_change(untuned, tuned_runs) if tuned else pd.DataFrame()
    ranks = [f"{r.before} of {r.of_before} → {r.after} of {r.of_after} at {r.noise}" for r in change.itertuples()
             if r.noise in settings]
    text = " ".join(lines)
    if ranks:
        text += (f" NAL's rank by mean last-epoch test accuracy among the same six methods, untuned (every method at "
                 f"its authors' CIFAR-10 value, NAL at the paper's λ = {PAPER_LAMBDA:g}; seeds 0–2) → tuned (seeds "
                 f"0–4): {join_and(ranks)}.")
    return text
