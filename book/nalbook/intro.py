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
                                  "in other regimes": "in other regimes ([](regime.md))"})
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
    turned = sorted({k for k, st in zip(decided.key, decided.stable) if not st})
    held = sorted(set(decided.key) - set(turned))
    untested = sorted(set(stability.key) - set(decided.key) - {"–"})
    return ("Across the regimes tested so far ([](regime.md)), "
            + (f"the verdicts of {join_and(turned)} depend on the regime" if turned else "no verdict depends on the regime")
            + (f", those of {join_and(held)} held in every one" if held else "")
            + (f"; {join_and(untested)} {'is' if len(untested) == 1 else 'are'} not tested beyond the CPU regime yet"
               if untested else "") + ".")


def summary_sentences(grids: dict[str, tuple[pd.DataFrame, pd.DataFrame]], stages: pd.DataFrame) -> list[str]:
    """At most five plain sentences, each with its deciding number, from the same records as the claims table."""
    from nalkit.results import horizon_summary, with_variant
    from nalkit.results.claims import baselines_tuned

    out: list[str] = []
    default = grids.get("default", (pd.DataFrame(), pd.DataFrame()))[0]
    long_runs, long_epochs = grids.get("long", (pd.DataFrame(), pd.DataFrame()))
    first = "sym 40 %"
    if len(default) and {"nal", "ce"} <= set(default.method):
        names = flipped(default)
        from nalkit.results.claims import nal_against
        from nalkit.results.criteria import HOLDS, side

        diffs = nal_against(default, "ce")
        ahead = [s for s, d in diffs.items() if side(d) == HOLDS]
        if first in diffs:
            out.append(f"After 40 epochs NAL ends {100 * diffs[first].mean:.1f} points of test accuracy above "
                       f"cross-entropy at {names.get(first, first)}, and above it beyond the seed spread in {len(ahead)} "
                       f"of {len(diffs)} noise settings.")
        others = sorted(set(default.method) - {"nal", "ce"})
        if others:
            from nalkit.results.claims import MATCH, against_best
            from nalkit.results.criteria import standing

            ahead_of, level, behind = [], [], []
            for s, (best, x) in against_best(default, "nal", others).items():
                word = standing(x)
                if word in ("ahead", "matches", "behind"):
                    {"ahead": ahead_of, "matches": level, "behind": behind}[word].append(f"{best.upper()} at {s}")
            n = int(default.groupby(["noise", "method"]).size().min())
            tuned = baselines_tuned(default, grids.get("tuning", (pd.DataFrame(), None))[0])
            split = len(diffs) - len(ahead_of) - len(level) - len(behind)
            counted = [f"ahead beyond the seed spread in {len(ahead_of)} of {len(diffs)} settings"
                       + (f" ({'; '.join(ahead_of)})" if ahead_of else ""),
                       f"level (within ±{100 * MATCH:g} point) in {len(level)}"
                       + (f" ({'; '.join(level)})" if level else ""),
                       f"behind in {len(behind)}" + (f" ({'; '.join(behind)})" if behind else "")]
            out.append(f"After 40 epochs, against the best of the other robust methods in each setting ("
                       f"{'each tuned like NAL' if tuned else 'not tuned'}, {n} seeds), NAL is {join_and(counted)}"
                       + (f"; the records cannot decide {split}." if split else "."))
    if len(long_runs) and len(long_epochs):
        summary = horizon_summary(with_variant(long_runs), with_variant(long_epochs))
        ce, nal = _row(summary, first, "CE"), _row(summary, first, "NAL")
        if ce is not None and nal is not None:
            out.append(f"Over {int(summary.last_epoch.max())} epochs at {first}, cross-entropy memorises "
                       f"{100 * ce.memorized_last:.0f} % of the mislabeled samples and ends "
                       f"{100 * ce.test_drop.mean:.1f} points below its best test accuracy, while NAL memorises "
                       f"{100 * nal.memorized_last:.1f} % and ends {100 * nal.test_drop.mean:.1f} points below its best.")
    if len(default) and "nal" in set(default.method):
        d = default[(default.method == "nal") & (default.noise == first)]
        if len(d) and d.last_corrected_acc.notna().any():
            out.append(f"After 40 epochs NAL's corrected labels (argmax q) are right for "
                       f"{100 * d.last_corrected_acc.mean():.1f} % of the training samples at {first}, against "
                       f"{100 * (1 - d.actual_noise_rate.mean()):.1f} % for the noisy labels.")
    if len(stages):
        from nalkit.results import stages_present

        last = stages[stages.epoch == stages.groupby("run").epoch.transform("max")]
        cells = last.groupby(["variant", "noise"])[["set_aside", "median_mislabeled"]].mean()
        final = sum(stages_present(g)[2] for _, g in stages.groupby(["variant", "noise"]))
        horizon = int(stages.epoch.max())
        text = (f"over {horizon} epochs τ reaches the appendix's final stage in {final} of {len(cells)} (λ, schedule, "
                f"setting) cells" if final else f"over {horizon} epochs τ never reaches the appendix's final stage")
        from nalkit.results.claims import per_sample_gaps

        gaps = per_sample_gaps(grids.get("controls", (pd.DataFrame(), None))[0])
        if gaps:
            from nalkit.results.claims import PER_SAMPLE_CONTROL
            from nalkit.results.criteria import standing

            words = {s: standing(d) for s, d in gaps.items()}
            ahead = [s for s, w in words.items() if w == "ahead"]
            behind = [s for s, w in words.items() if w == "behind"]
            lead = None  # set below, once the strongest test is known
            from nalkit.results.claims import strongest_control_gaps

            strongest = strongest_control_gaps(grids.get("controls", (pd.DataFrame(), None))[0])
            tough = [s for s, (_, d) in strongest.items() if standing(d) == "ahead"]
            lead = ("The per-sample part of τ adds no test accuracy beyond the seed spread here" if not ahead else
                    f"The per-sample part of τ adds test accuracy beyond the seed spread at {join_and(tough)}" if tough
                    else f"The per-sample part of τ adds test accuracy beyond the seed spread at {join_and(ahead)} "
                    f"against the control C8 names, but not against the control that does best there")
            text = (f"{lead}: against {PER_SAMPLE_CONTROL} (the control C8 names), full NAL is ahead in "
                    f"{len(ahead)} of {len(gaps)} settings, behind in {len(behind)}, not separated in "
                    f"{len(gaps) - len(ahead) - len(behind)}, and against the best of the three controls without a "
                    f"per-sample τ it is ahead in {len(tough)} of {len(strongest)} (40 epochs); and {text}")
        else:
            text = "But " + text
        aside = ("no mislabeled sample sits below τ = 0.5 in any cell" if cells.set_aside.max() == 0 else
                 f"at most {100 * cells.set_aside.max():.0f} % of the mislabeled samples sit below τ = 0.5 in a cell")
        out.append(text + f": at the last snapshot {aside}, and the mislabeled samples' median τ is at least "
                   f"{cells.median_mislabeled.min():.3f} ([](horizon.md), [](attention.md)).")
    return out[:5]
