"""The intro (book/intro.md): the claims table and the summary sentences."""

from __future__ import annotations

import pandas as pd

from .common import flipped, grid_runs, join_and, table_md
from .horizon import _row

CLAIM_GRIDS = ("default", "long", "tuning", "controls")


def claim_grids() -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """The (runs, epochs) frames of the grids the claims table reads, renamed to the frames' ``noise`` column."""
    return {g: grid_runs(g) for g in CLAIM_GRIDS}


def claims_md(claims, name: str = "tab-claims") -> str:
    """The claims table as a numbered MyST table (the chapters link to it by its name and a row's key)."""
    from nalkit.results import claims_frame

    frame = claims_frame(claims)
    frame["claim"] = [f"{c}<br>*{w}*" for c, w in zip(frame.claim, frame.paper)]
    frame["deciding numbers"] = frame["deciding numbers"].str.replace("; ", "<br>", regex=False)
    frame["beside it"] = frame["beside it"].str.replace("; ", "<br>", regex=False)
    frame["in other regimes"] = frame["in other regimes"].replace("", "–")
    frame["verdict"] = [f"**{v}**" for v in frame.verdict]
    frame = frame.rename(columns={"beside it": "beside it (another horizon or setting, not deciding)",
                                  "in other regimes": "in other regimes (NAL at λ 2, the book's schedule; [](regime.md))"})
    frame = frame.drop(columns="paper").rename(columns={"claim": "claim (where the paper makes it)"})
    return table_md(frame, "The paper's claims that this book tests, and what the committed records say. Verdicts "
                    "are computed when the book is built (nalkit.results.claims_table) by the rules of "
                    "[](rules.md): *reproduced* only when every setting's interval or criterion supports the claim, "
                    "*partly* when some do, *not reproduced* when none does and some contradict it, *undecided* when "
                    "every interval covers the boundary, *not tested here* without records (the reason given).",
                    name, index=False,
                    align="left")


def regime_sentence(stability: pd.DataFrame) -> str:
    """The intro's sentence on which verdicts depend on the regime (from nalkit.results.regime_stability)."""
    if not len(stability):
        return ""
    decided = stability[stability.stable.notna()]
    if not len(decided):
        return ("Whether these verdicts belong to the method or to this regime is not known yet: the regime tier "
                "(more data, augmentation, a ResNet, instance-dependent noise) has no records beyond the CPU regime "
                "([](regime.md)).")
    from nalkit.results.regime import UNDECIDED_WORDS

    turned = sorted({k for k, st in zip(decided.key, decided.stable) if not st})
    held = sorted(set(decided.key) - set(turned))
    rest = stability[~stability.key.isin(set(decided.key) | {"–"})]
    # a claim the reference regime leaves undecided cannot be turned; what other regimes decide is said beside
    open_ref = rest[rest.reference_word.isin(UNDECIDED_WORDS)]
    # a regime's label that two axes share (IDN 40 % over 40 and over 200 epochs) is named with its axis
    axes_of: dict[str, set[str]] = {}
    for a, regimes in zip(stability.axis, stability.tested):
        for r in regimes:
            axes_of.setdefault(r, set()).add(a)
    beside = []
    for k, g in open_ref.groupby("key", sort=True):
        said = {}
        for a, regimes, words in zip(g.axis, g.tested, g.tested_words):
            for r, w in zip(regimes, words):
                said.setdefault(w, []).append(f"{r} ({a})" if len(axes_of[r]) > 1 else r)
        beside.append(f"{k} " + " and ".join(f"{w} at {join_and(list(dict.fromkeys(rs)))}" for w, rs in said.items()))
    untested = sorted(set(rest.key) - set(open_ref.key))
    ref_keys = sorted(set(open_ref.key))

    def verb(keys, one, many):
        return f"{join_and(keys)} {one if len(keys) == 1 else many}"

    text = ("Across the regimes tested so far ([](regime.md)), "
            + (f"the verdict{'s' if len(turned) > 1 else ''} of {verb(turned, 'depends', 'depend')} on the regime"
               if turned else "no verdict depends on the regime")
            + ((", those of " if turned else ": those of ") + f"{join_and(held)} held in every regime that decides them"
               if held else ""))
    if ref_keys:
        text += (f"; {verb(ref_keys, 'is', 'are')} undecided in the CPU regime itself, so no regime can turn "
                 f"{'it' if len(ref_keys) == 1 else 'them'}" + (f" ({'; '.join(beside)})" if beside else ""))
    if untested:
        text += f"; {verb(untested, 'is', 'are')} not decided beyond the CPU regime yet"
    return text + "."


def summary_sentences(grids: dict[str, tuple[pd.DataFrame, pd.DataFrame]], stages: pd.DataFrame) -> list[str]:
    """Plain sentences, one per question, each with its horizon and deciding number, from the same records and the same functions of
    :mod:`nalkit.results.claims` as the claims table (this function only phrases them)."""
    from nalkit.results import horizon_summary, with_variant
    from nalkit.results.claims import (MATCH, PER_SAMPLE_CONTROL, accuracy_horizons, against_best, baselines_tuned,
                                       by_standing, corrected_labels, fewest_seeds, nal_against, per_sample_gaps,
                                       stage_summary, strongest_control_gaps)

    out: list[str] = []
    empty = (pd.DataFrame(), pd.DataFrame())
    default = grids.get("default", empty)[0]
    long_runs, long_epochs = grids.get("long", empty)
    controls = grids.get("controls", empty)[0]
    first = "sym 40 %"
    h = accuracy_horizons(grids)
    # C1 and C2 at the horizon that decides them (the last epoch of the long tier when it has the methods), the
    # 40-epoch default grid beside it: each clause says its horizon and seeds
    c1 = [(f"after {h.epochs} epochs", h.long)] if h.ce_complete else []
    c1 += [("after 40 epochs", default)] if len(default) and {"nal", "ce"} <= set(default.method) else []
    clauses = []
    for label, frame in c1:
        diffs = nal_against(frame, "ce")
        if first in diffs:
            ahead = f"{len(by_standing(diffs)['ahead'])} of {len(diffs)}"
            clauses.append(f"{label} ({fewest_seeds(frame)} seeds) NAL ends {100 * diffs[first].mean:.1f} points of "
                           f"test accuracy above cross-entropy at {flipped(frame).get(first, first)}, and above it "
                           f"beyond the seed spread in {ahead} settings" if not clauses else
                           f"{label} ({fewest_seeds(frame)} seeds) {100 * diffs[first].mean:.1f} points, and {ahead}")
    if clauses:
        out.append(clauses[0][0].upper() + clauses[0][1:] + (f"; {clauses[1]}." if len(clauses) > 1 else "."))
    c2 = [(f"after {h.epochs} epochs", h.long)] if h.complete else []
    c2 += [("after 40 epochs", h.short)] if len(default) else []
    clauses = []
    for label, frame in c2:
        others = sorted(set(frame.method) - {"nal", "ce", "ce + early stop"})
        if not others:
            continue
        gaps = against_best(frame, "nal", others)
        groups = by_standing({s: d for s, (_, d) in gaps.items()})
        ahead_of, level, behind = ([f"{gaps[s][0].upper()} at {s}" for s in groups[w]]
                                   for w in ("ahead", "matches", "behind"))
        split = len(gaps) - len(ahead_of) - len(level) - len(behind)
        counted = [f"ahead beyond the seed spread in {len(ahead_of)} of {len(gaps)} settings"
                   + (f" ({'; '.join(ahead_of)})" if ahead_of else ""),
                   f"level (within ±{100 * MATCH:g} point) in {len(level)}"
                   + (f" ({'; '.join(level)})" if level else ""),
                   f"behind in {len(behind)}" + (f" ({'; '.join(behind)})" if behind else "")]
        clauses.append(f"{label} ({fewest_seeds(frame)} seeds) NAL is {join_and(counted)}"
                       + (f", and the records cannot decide {split}" if split else ""))
    if clauses:
        tuned = baselines_tuned(default, grids.get("tuning", empty)[0])
        out.append(f"Against the best of the other robust methods in each setting "
                   f"({'each tuned like NAL' if tuned else 'not tuned'}), " + "; ".join(clauses) + ".")
    if len(long_runs) and len(long_epochs):
        summary = horizon_summary(with_variant(long_runs), with_variant(long_epochs))
        ce, nal = _row(summary, first, "CE"), _row(summary, first, "NAL")
        if ce is not None and nal is not None:
            out.append(f"Over {int(summary.last_epoch.max())} epochs at {first}, cross-entropy memorises "
                       f"{100 * ce.memorized_last:.0f} % of the mislabeled samples and ends "
                       f"{100 * ce.test_drop.mean:.1f} points below its best test accuracy, while NAL memorises "
                       f"{100 * nal.memorized_last:.1f} % and ends {100 * nal.test_drop.mean:.1f} points below its best.")
    corrected = corrected_labels(default) if len(default) and "nal" in set(default.method) else None
    if corrected is not None and first in corrected.index:
        c = corrected.loc[first]
        out.append(f"After 40 epochs NAL's corrected labels (argmax q) are right for {100 * c.nal:.1f} % of the "
                   f"training samples at {first}, against {100 * c.noisy:.1f} % for the noisy labels.")
    gaps = per_sample_gaps(controls)
    if gaps:
        words = by_standing(gaps)
        ahead, behind = words["ahead"], words["behind"]
        strongest = strongest_control_gaps(controls)
        tough = by_standing({s: d for s, (_, d) in strongest.items()})["ahead"]
        out.append(f"After 40 epochs ({min(d.n for d in gaps.values())} seeds), against {PER_SAMPLE_CONTROL} for all samples "
                   f"(the control C8 names) full NAL is ahead beyond the seed spread in {len(ahead)} of {len(gaps)} "
                   f"settings" + (f" ({join_and(ahead)})" if ahead else "") + f", behind in {len(behind)} and not "
                   f"separated in {len(gaps) - len(ahead) - len(behind)}; against the best of the three controls "
                   f"without a per-sample τ it is ahead in {len(tough)} of {len(strongest)}"
                   + (f" ({join_and(tough)})" if tough else "") + ".")
    cells = stage_summary(stages)
    if cells is not None:
        where = join_and([f"{v} at {s}" for s, v in cells.final_cells])
        text = (f"Over {cells.horizon} epochs τ reaches the appendix's final stage in {cells.final} of {cells.cells} "
                f"(λ, schedule, setting) cells ({where})" if cells.final else
                f"Over {cells.horizon} epochs τ never reaches the appendix's final stage in its {cells.cells} "
                f"(λ, schedule, setting) cells")
        aside = ("no mislabeled sample sits below τ = 0.5 in any cell" if cells.set_aside_max == 0 else
                 f"at most {100 * cells.set_aside_max:.0f} % of the mislabeled samples sit below τ = 0.5 in a cell")
        out.append(text + f": at the last snapshot {aside}, and the mislabeled samples' median τ is at least "
                   f"{cells.median_mislabeled_min:.3f} ([](horizon.md), [](attention.md)).")
    return out
