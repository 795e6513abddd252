"""Phrasing for the mechanism chapter (book/mechanism.md) and the intro's findings."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from .common import bullets, grid_runs, join_and, settings_of


def _separation_word(auc: float) -> str:
    from nalkit.results.criteria import separation_word

    return separation_word(auc)


def findings() -> dict[str, str]:
    """Verdict sentences from the default, lambda and ablation grids; a key is absent when its records are.

    Every number and decision comes from :mod:`nalkit.results` (:func:`~nalkit.results.comparison.nal_rank`,
    :func:`~nalkit.results.select_lambda`, :func:`~nalkit.results.mechanism.tau_at_lambda`,
    :func:`~nalkit.results.mechanism.ablation_answer`); this function only phrases them."""
    from nalkit.plotting import method_label as L
    from nalkit.results import ranking, select_lambda
    from nalkit.results.comparison import nal_rank
    from nalkit.results.mechanism import ABLATIONS, ablation_answer, ablation_runs, tau_at_lambda

    out: dict[str, str] = {}
    default, _ = grid_runs("default")
    sweep, sweep_epochs = grid_runs("lambda")
    abl, _ = grid_runs("ablations")
    settings = settings_of(default)
    if len(default):
        parts = [f"at {r.noise} NAL ranks {r.rank} of {r.of} with {100 * r.mean:.1f} % "
                 f"(NAL − {L(r.rival)}, the {'runner-up' if r.rank == 1 else 'best'}: {r.diff.sentence()}; NAL − CE: "
                 f"{r.ce.sentence() if r.ce is not None else 'no CE runs'})"
                 for r in nal_rank(ranking(default), settings).itertuples()]
        lam = ", ".join(f"{v:g}" for v in sorted(default[default.method == "nal"].lam.unique()))
        seeds = default.groupby(["setting", "method"]).seed.nunique()
        n = f"{seeds.min()}" if seeds.min() == seeds.max() else f"{seeds.min()}–{seeds.max()}"
        out["ranking"] = (f"Against the five baselines in the default grid (NAL at λ = {lam}, last-epoch test accuracy, "
                          f"{n} seeds): " + "; ".join(parts) + ".")
    if len(sweep):
        sel = select_lambda(sweep)
        out["selection"] = (f"The paper's protocol (a noisy validation set, never the test set) chooses λ = {sel.chosen:g}, "
                            f"ahead of the runner-up λ = {sel.runner_up:g} by "
                            f"{sel.margin.sentence(pairs='paired (setting, seed) runs')}.")
        at = sweep[sweep.lam == sel.chosen]
        t = tau_at_lambda(sweep, abl, sel.chosen, settings_of(abl) if len(abl) else [])
        out["tau"] = (f"At λ = {sel.chosen:g}, 1 − τ finds the mislabeled training samples with an AUROC of "
                      + ", ".join(f"{t.tau[s]:.2f} ({s})" for s in settings_of(at))
                      + f": τ {_separation_word(t.mean_tau)}. The per-sample loss of the same runs (the small-loss "
                      "criterion) reaches " + ", ".join(f"{t.loss[s]:.2f}" for s in settings_of(at)) + ". Over the "
                      f"whole sweep the best mean AUROC of τ is {t.best_tau:.2f}, at λ = {t.best_lam:g}.")
        if len(t.alone):
            alone = abl[(abl.lam == sel.chosen) & abl.setting.isin(t.alone.index)]
            gains = join_and([f"{t.gain[s].mean:+.2f} [{t.gain[s].low:+.2f}, {t.gain[s].high:+.2f}] at {s}"
                              for s in t.better])
            out["tau"] += (" Without target estimation (q stays the noisy label) the same λ gives τ an AUROC of "
                           + ", ".join(f"{t.alone[s]:.2f}" for s in settings_of(alone))
                           + (f": at {join_and(t.better)} τ sorts the samples better when q cannot move towards the "
                              "network's predictions (AUROC without − with target estimation, paired over seeds [95 % "
                              f"CI]: {gains})." if t.better else "."))
    answer = ablation_answer(sweep, abl, settings_of(ablation_runs(sweep, abl))) if len(abl) and len(sweep) else None
    if answer is not None:
        attention, targets = ABLATIONS
        parts = []
        for variant, name in ((attention, "removing the attention branch (τ = 1)"),
                              (targets, "removing target estimation")):
            changes = join_and([f"{100 * d.mean:+.1f} points at {s}" + (" (within noise)" if d.within_noise else "")
                                for s, d in answer.effects[variant].items()])
            parts.append(f"{name} changes the last-epoch test accuracy by {changes}")
        out["ablation"] = "At the selected λ, " + "; ".join(parts) + " (paired over seeds, 95 % t-intervals)."
        costs, helps = answer.costs, answer.gains
        if answer.source == "targets":
            out["why"] = ("So, on these records, NAL's robustness comes from its target estimation: without it NAL "
                          f"loses accuracy at {', '.join(costs[targets])}, while fixing τ at 1 costs nothing measurable"
                          + (f" (it even helps at {', '.join(helps[attention])})" if helps[attention] else "")
                          + ". The attention weight is not why NAL resists noise here.")
        elif answer.source == "attention":
            mem, s0 = answer.memorised, costs[attention][0]
            auc = float(answer.tau_auroc[(s0, "full NAL")])
            out["why"] = (f"Fixing τ at 1 costs accuracy at {join_and(costs[attention])}: there the attention branch "
                          "contributes to NAL's robustness"
                          + (f"; removing target estimation costs accuracy at {join_and(costs[targets])}."
                             if costs[targets] else "; removing target estimation costs nothing measurable.")
                          + f" With τ fixed at 1 the network memorises {100 * mem[(s0, attention)]:.1f} % of the "
                          f"mislabeled samples at {s0} instead of {100 * mem[(s0, 'full NAL')]:.1f} %, while full NAL's τ "
                          f"{_separation_word(auc)} (AUROC {auc:.2f}).")
            long_runs, _ = grid_runs("long")
            when = when_attention_acts(sweep[sweep.lam == answer.lam], sweep_epochs[sweep_epochs.lam == answer.lam],
                                       long_runs[long_runs.lam == answer.lam] if len(long_runs) else long_runs,
                                       costs[attention])
            out["why"] += (" " + when) if when else ""
        else:
            out["why"] = ("Neither removing the attention branch nor removing target estimation changes the accuracy "
                          "beyond the seed-to-seed spread here.")
    return out


def mechanism_verdict(sweep: pd.DataFrame, abl: pd.DataFrame, default: pd.DataFrame) -> str:
    """The mechanism chapter's closing answer, as Markdown bullets computed from the records."""
    f = findings()
    lines = [f[k] for k in ("selection", "tau", "ablation", "why", "ranking") if k in f]
    return bullets(lines) if lines else "Not enough records yet to answer."


def when_attention_acts(sweep: pd.DataFrame, epochs: pd.DataFrame, long_runs: pd.DataFrame,
                        settings: Sequence[str], near: float = 0.99, early: float = 0.9) -> str:
    """When the attention branch rescales gradients, from the records of one λ: the λ sweep's runs and per-epoch
    rows at that λ (``sweep``, ``epochs``) and the long tier's runs at it (``long_runs``, which record the
    gradient factor φ per sample), at the ``settings`` where fixing τ at 1 costs accuracy.

    One Markdown sentence: at the sweep's last epoch, the mislabeled samples' mean τ and the share of samples
    whose φ exceeds ``near`` (the long tier at the same epoch: its first epochs are the same runs); then the
    epochs in which both groups' mean τ stays below ``early`` and the middle 90 % of every sample's τ at the
    snapshots before the last. Empty when the sweep has no per-epoch τ there.
    """
    from nalkit.results.mechanism import attention_timing

    settings = [s for s in settings if len(sweep) and (sweep.setting == s).any()]
    if not settings or not len(epochs) or "tau_mislabeled" not in epochs:
        return ""
    t = attention_timing(sweep, epochs, long_runs, settings, near, early)
    last, end_tau, share = t["last"], t["end_tau"], t["phi_near"]
    text = (f"**When τ acts.** At the last epoch ({last}) the attention branch barely rescales any gradient: the "
            "mislabeled samples' mean τ is " + join_and([f"{end_tau[s]:.4f} at {s}" for s in settings]))
    if share:
        text += (f", and in the long tier (the same recipe and seeds trained for {t['long_epochs']} epochs, "
                 f"which records each sample's gradient factor φ of Theorem 1) φ exceeds {near:g} at epoch {last} for "
                 + join_and([f"{100 * share[s]:.1f} % of the training samples at {s}" for s in settings if s in share])
                 + f" (a gradient within {100 * (1 - near):.0f} % of cross-entropy's)")
    text += ". Whatever fixing τ at 1 costs must be bought earlier: "
    parts = []
    for s in settings:
        if s not in t["below"]:
            continue
        low, high, until = t["below"][s]
        part = (f"at {s} the mean τ of clean and of mislabeled samples stays between {low:.2f} and {high:.2f} up to "
                f"epoch {until}")
        if s in t["middle"]:
            lo, hi, snap = t["middle"][s]
            part += (f", and at epoch{'s' if len(snap) > 1 else ''} {join_and([str(e) for e in snap])} the middle "
                     f"90 % of all samples' τ lies between {lo:.2f} and {hi:.2f}")
        parts.append(part)
    if not parts:
        return ""
    return (text + "; ".join(parts) + ": a down-weighting of every sample, clean or not, which [](attention.md) "
            "measures through φ over training.")


def underfit_sentence(runs: pd.DataFrame, x: str = "lam", share: float | None = None) -> str:
    """Which values of ``x`` (one setting's sweep) underfit (:func:`nalkit.results.mechanism.underfitting`, the
    rulebook's UNDERFIT): a network that fits neither the clean nor the mislabeled samples memorises little without
    being robust, so the sentence says that their low memorisation is underfitting. Empty when no value underfits."""
    from nalkit.results.criteria import UNDERFIT
    from nalkit.results.mechanism import underfitting

    share = UNDERFIT if share is None else share
    low, best = underfitting(runs, x, share)
    if not len(low):
        return ""
    name = {"lam": "λ"}.get(x, x)
    span = (f"{100 * low.min():.0f}–{100 * low.max():.0f} %" if len(low) > 1 else f"{100 * low.iloc[0]:.0f} %")
    return (f" At {name} = {join_and([f'{v:g}' for v in low.index])} the network fits only {span} of its correctly "
            f"labelled training samples ({name} = {best[0]:g}: {100 * best[1]:.1f} %; under {share:g} times that counts "
            "as underfitting): there a low memorised share is underfitting, not robustness.")


def tau_stages(sweep: pd.DataFrame, setting: str, lams: Sequence[float]) -> tuple[dict, list[str], dict]:
    """The λ sweep's tau snapshots at one noise setting, for each λ in ``lams``
    (:func:`nalkit.results.mechanism.sweep_snapshots`).

    Returns the histogram cells ``{("λ = 0.5", "epoch 5"): (tau values, is_noisy)}`` pooled over seeds, one sentence
    per λ on how the AUROC of 1 - tau and the median taus move from snapshot to snapshot (mean ± std over seeds),
    and ``{λ: (the rulebook's stages of the cell, :func:`nalkit.results.tau_stages`; the last median tau of the
    mislabeled samples)}``.
    """
    from nalkit.results.mechanism import sweep_snapshots

    cells, lines, stages = {}, [], {}
    for lam in lams:
        cell = sweep_snapshots(sweep, setting, lam)
        for e, x in cell.snapshots.groupby("epoch"):
            cells[(f"λ = {lam:g}", f"epoch {e}")] = (x.value.to_numpy(), x.is_noisy.to_numpy())
        if cell.stages is None:
            lines.append(f"**{setting}, λ = {lam:g}:** no snapshots.")
            continue
        sep = cell.separation
        stages[lam] = (cell.stages, cell.last_median_mislabeled)
        lines.append(
            f"**{setting}, λ = {lam:g}:** AUROC of 1 − τ " + " → ".join(
                f"{r.auroc_mean:.2f} ± {r.auroc_std:.2f} (epoch {e})" for e, r in sep.iterrows())
            + f"; median τ at epoch {sep.index[-1]} (each seed's median, averaged over seeds): clean "
            f"{sep.median_clean_mean.iloc[-1]:.4f}, mislabeled {cell.last_median_mislabeled:.4f}.")
    return cells, lines, stages


def three_stages_sentence(stages: dict) -> str:
    """Whether the appendix's picture appears, by the rulebook's stage rules (the rule C5 and the horizon chapter
    use), from ``{(setting, λ): (Stages, last median tau of the mislabeled)}`` of :func:`tau_stages`
    (:func:`nalkit.results.mechanism.stage_overview`)."""
    from nalkit.results.criteria import STAGE_APART, STAGE_FINAL
    from nalkit.results.mechanism import stage_overview

    o = stage_overview(stages)
    apart = [f"{s} at λ = {lam:g} ({st.best_auroc:.2f} at epoch {st.best_epoch})" for s, lam, st in o.apart]
    final = [f"{s} at λ = {lam:g}" for s, lam in o.final]
    return ("**Three stages?** By the rules of [](rules.md), τ separates clean from mislabeled samples (AUROC of "
            f"1 − τ ≥ {STAGE_APART:g} at some snapshot) at " + (join_and(apart) if apart else "no setting and λ")
            + f", and reaches the final stage (AUROC ≥ {STAGE_FINAL:g} with the clean samples near 1) at "
            + (join_and(final) if final else "none") + f"; at the last snapshot the median τ of the mislabeled "
            f"samples lies between {o.lowest:.3f} and {o.highest:.4f} in every panel.")
