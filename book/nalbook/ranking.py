"""Phrasing for the results chapter (book/results.md): tuning, ranking, what tuning changed."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .common import (
    PARAMETER_NAMES,
    _span,
    bullets,
    grid_names,
    join_and,
    method_name,
    table_md,
)


def tuning_table(chosen: dict, candidates: pd.DataFrame) -> str:
    """Each method's candidates with their mean noisy-validation accuracy, the choice and its margin."""
    from nalkit.results import AUTHORS_VALUES

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
        authors = AUTHORS_VALUES.get(method, 2.0 if method == "nal" else None)
        rows.append({"method": method_name(method), "parameter": PARAMETER_NAMES[method],
                     "candidates: noisy-val acc (%)": " · ".join(cells),
                     "chosen": f"{sel.chosen:g}", "authors' value": f"{authors:g}" if authors is not None else "–",
                     "chosen − runner-up (points)": sel.margin.sentence(pairs="(setting, seed) pairs")
                     if sel.margin is not None else "–",
                     "runs": int(sel.table.n.sum())})
    frame = pd.DataFrame(rows).set_index("method")
    return table_md(frame, "The equal tuning budget: each method's candidates with their mean last-epoch accuracy on the "
                    "noisy validation set over the three settings and seeds 0–2 (the chosen one in bold), NAL's λ from "
                    "the λ grid. \"authors' value\": the baselines' CIFAR-10 recipes, NAL's λ chosen earlier from 8 "
                    "values in [](mechanism.md).", "tab-tuning")


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
    """Per setting: the methods best first, NAL against each other method with what is resolved."""
    lines = []
    for s in settings:
        d = order[order.noise == s] if len(order) else order
        if not len(d) or "nal" not in set(d.method):
            continue
        ranked = ", ".join(f"{method_name(m)} {100 * v:.1f}" for m, v in zip(d.method, d["mean"]))
        others = d[d.method != "nal"]
        rival = others.iloc[0]
        rank = int(d[d.method == "nal"]["rank"].iloc[0])
        role = "the runner-up" if rank == 1 else "the best"
        text = (f"**{names.get(s, s)}** (last epoch, best first): {ranked}. NAL − {method_name(rival.method)} ({role}): "
                f"{rival['diff'].sentence()}.")
        above = [method_name(m) for m, x in zip(others.method, others["diff"]) if x.n >= 2 and x.low > 0]
        below = [method_name(m) for m, x in zip(others.method, others["diff"]) if x.n >= 2 and x.high < 0]
        open_ = others[~others.resolved]
        text += (f" NAL is resolved above {join_and(above) or 'no method'}"
                 + (f" and below {join_and(below)}" if below else "") + ".")
        if len(open_):
            need = [f"{method_name(m)} ({'–' if pd.isna(n) else '≥ 1,000' if n >= 1000 else int(n)})"
                    for m, n in zip(open_.method, open_.seeds_needed)]
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
    over the seeds both ran, per setting) and NAL's rank among the same six methods before and after."""
    from nalkit.results import AUTHORS_VALUES, PAPER_LAMBDA, paired_difference

    if not len(untuned):
        return ""
    lines = []
    for method, value in AUTHORS_VALUES.items():
        if method not in chosen:
            continue
        pick = chosen[method].chosen
        if np.isclose(pick, value):
            lines.append(f"{method_name(method)} keeps its authors' value ({value:g}).")
            continue
        change = []
        if tuned and len(tuned_runs):
            both = pd.concat([untuned[untuned.method == method].assign(_v="authors"),
                              tuned_runs[tuned_runs.method == method].assign(_v="tuned")])
            for s in settings:
                d = paired_difference(both[both.setting == s], "last_test_acc", "tuned", "authors", column="_v")
                if d.n >= 2:
                    change.append(f"{100 * d.mean:+.1f} [{100 * d.low:+.1f}, {100 * d.high:+.1f}] at {s}")
        lines.append(f"{method_name(method)} chooses {PARAMETER_NAMES[method].split(' (')[0]} = {pick:g} instead of "
                     f"{value:g}" + (f"; test accuracy, tuned − authors' value, points [95 % CI, paired seeds]: "
                                     f"{join_and(change)}." if change else "."))
    from nalkit.results import rank_change

    change = rank_change(untuned, tuned_runs) if tuned else pd.DataFrame()
    ranks = [f"{r.before} of {r.of_before} → {r.after} of {r.of_after} at {r.noise}" for r in change.itertuples()
             if r.noise in settings]
    text = " ".join(lines)
    if ranks:
        text += (f" NAL's rank by mean last-epoch test accuracy among the same six methods, untuned (every method at "
                 f"its authors' CIFAR-10 value, NAL at the paper's λ = {PAPER_LAMBDA:g}; seeds 0–2) → tuned (seeds "
                 f"0–4): {join_and(ranks)}.")
    return text
