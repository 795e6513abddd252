"""Helpers shared by the book's chapters: where the records are, how to describe their scale, tables.

Chapters only *read* run records (through :mod:`nalkit.results`) and draw with :mod:`nalkit.plotting`; nothing
here trains or recomputes what the library owns. The results root defaults to ``<repo>/results`` and can be
pointed elsewhere with the environment variable ``NALKIT_RESULTS`` (it must hold ``runs/``, and optionally
``benchmarks/``), e.g. to preview the book on another machine's records.
"""

from __future__ import annotations

import functools
import html
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from nalkit import plotting
from nalkit.datasets import FASHION_MNIST_CLASSES
from nalkit.results import load_runs, load_snapshots, nal_variant, snapshot_separation


def repo_root() -> Path:
    """The repository root: the first parent of the working directory holding ``_toc.yml``."""
    here = Path.cwd().resolve()
    for d in (here, *here.parents):
        if (d / "_toc.yml").is_file():
            return d
    raise FileNotFoundError(f"no _toc.yml above {here}; run the chapters from inside the repository")


ROOT = repo_root()
RESULTS = Path(os.environ.get("NALKIT_RESULTS") or ROOT / "results")
RUNS = RESULTS / "runs"
BENCHMARKS = RESULTS / "benchmarks"

#: Appendix Table 2 of Lu, Bo, He (2022): Clothing1M, ResNet-50. The paper's numbers, not ours.
#: († ImageNet-pretrained, ‡ trained from scratch; "-" = not reported.)
PAPER_TABLE2 = pd.DataFrame(
    [
        ("SCE", "†", 64, "7.39 GB", 71.02),
        ("SCE", "‡", 64, "7.39 GB", 69.40),
        ("SELC", "†", 64, "7.39 GB", 74.01),
        ("SELC", "‡", 64, "7.39 GB", 72.02),
        ("ELR", "†", 64, "-", 72.87),
        ("ELR+", "†", 64, "21.70 GB", 74.81),
        ("ELR+", "‡", 64, "21.70 GB", 72.80),
        ("DivideMix", "†", 32, "19.03 GB", 74.76),
        ("DivideMix", "‡", 32, "19.03 GB", 70.29),
        ("NAL", "‡", 64, "7.46 GB", 73.58),
    ],
    columns=["method", "init", "batch size", "GPU memory", "accuracy (%)"],
)

CLASS_NAMES = {
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
    "fashion_mnist": list(FASHION_MNIST_CLASSES),
}
#: Fashion-MNIST's class names short enough for a matrix's ticks ("Ankle boot" as "Boot", "T-shirt/top" as "T-shirt")
SHORT_CLASS_NAMES = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"]
#: The three noise settings of the appendix's figures, in the order every chapter shows them.
SETTINGS = ["sym 40 %", "sym 80 %", "asym 40 %"]


def paper_table2() -> pd.DataFrame:
    """Table 2 with the init marker joined to the method name, indexed by method."""
    t = PAPER_TABLE2.copy()
    t["method"] = t["method"] + t.pop("init")
    return t.set_index("method")


def setup_plots() -> None:
    """Inline PNG figures (also when MPLBACKEND=Agg is inherited, as under pytest) in the book's style."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            shell.run_line_magic("matplotlib", "inline")
    except ImportError:
        pass
    plotting.use_style()


@functools.lru_cache(maxsize=1)
def all_runs() -> tuple[pd.DataFrame, pd.DataFrame, tuple[str, ...]]:
    """(runs, epochs, problems) of every complete record under ``RUNS``, with ``setting`` and ``variant``."""
    if not RUNS.is_dir():
        return pd.DataFrame(), pd.DataFrame(), ()
    loaded = load_runs(RUNS, complete_only=True, strict=False)
    runs, epochs = loaded.runs, loaded.epochs
    if len(runs):
        runs["setting"] = runs.noise
        runs["variant"] = [nal_variant(r) for r in runs.to_dict("records")]
        runs["noisy_val"] = runs.noisy_val_size.notna()
        epochs = epochs.merge(runs[["run", "setting", "variant", "noisy_val"]], on="run")
    return runs, epochs, tuple(loaded.problems)


def _join(values) -> str:
    values = [str(v) for v in values]
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " and " + values[-1]


def scale_sentence(runs: pd.DataFrame) -> str:
    """One Markdown sentence stating the data, model, epochs and hardware of ``runs`` (from the records)."""
    if runs is None or not len(runs):
        return "No complete run records were found, so this page shows no measured numbers yet."
    from nalkit.results import hardware_name

    hw = sorted({hardware_name({}) if pd.isna(h) else h for h in runs.hardware})
    subsets = sorted({"full training set" if pd.isna(s) else f"{int(s):,}-image training subset"
                      for s in runs.train_subset})
    return (f"**Scale of these records:** {len(runs)} complete runs on real {_join(sorted(set(runs.dataset)))} "
            f"({_join(subsets)}), model {_join(sorted(set(runs.model)))}, "
            f"{_join(sorted({int(e) for e in runs.epochs}))} epochs, trained on {_join(hw)}. This is far below "
            "the paper's scale (CIFAR/ResNet-34 for 500 epochs on an A100); see [](paper_scale.md) for the "
            "paper-scale recipes.")


# --------------------------------------------------------------------------------------------
# numbers and tables
# --------------------------------------------------------------------------------------------
def pct(x: float, digits: int = 1) -> str:
    """``0.8431`` -> ``"84.3 %"``; ``n/a`` for a missing value."""
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.{digits}f} %"


def pm(values: Sequence[float] | pd.Series, scale: float = 100.0, digits: int = 1) -> str:
    """Mean ± standard deviation over seeds, e.g. ``"84.3 ± 0.5"`` (the mean alone for one value)."""
    v = pd.Series(values, dtype=float).dropna()
    if not len(v):
        return "–"
    if len(v) == 1:
        return f"{scale * v.iloc[0]:.{digits}f}"
    return f"{scale * v.mean():.{digits}f} ± {scale * v.std(ddof=1):.{digits}f}"


def _cell(value) -> str:
    text = "–" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def table_md(frame: pd.DataFrame, caption: str, name: str, index: bool = True, align: str = "center") -> str:
    """A numbered, captioned MyST table (``{table}`` directive) of ``frame``, for ``{glue:md}`` with ``:format: myst``.

    Tables are numbered as tables (Table 1, ...) and referenced with ``{numref}`tab-...```; cells should already be
    formatted strings rounded to what they can support.
    """
    df = frame.reset_index() if index else frame
    header = "| " + " | ".join(_cell(c) for c in df.columns) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    rows = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    body = "\n".join([header, rule, *rows])
    # a colon fence: a backtick fence's info string may not contain backticks (CommonMark), captions often do
    return f":::{{table}} {caption}\n:name: {name}\n:align: {align}\n\n{body}\n:::\n"


def bullets(lines: Sequence[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)


def grid_names(grid: str) -> set[str]:
    """Run names of the experiments that ``results/grids/<grid>.json`` expects (empty if it was never run)."""
    path = RESULTS / "grids" / f"{grid}.json"
    return {e["name"] for e in json.loads(path.read_text()).get("experiments", [])} if path.is_file() else set()


def grid_runs(grid: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs, epochs) of the complete records of one grid."""
    runs, epochs, _ = all_runs()
    names = grid_names(grid)
    if not len(runs) or not names:
        return runs.iloc[:0], epochs.iloc[:0]
    return runs[runs.run.isin(names)].copy(), epochs[epochs.run.isin(names)].copy()


def settings_of(runs: pd.DataFrame) -> list[str]:
    """The noise settings present, in the book's order (the appendix's three first)."""
    present = list(dict.fromkeys(runs.setting)) if len(runs) else []
    return [s for s in SETTINGS if s in present] + sorted(s for s in present if s not in SETTINGS)


# --------------------------------------------------------------------------------------------
# the book's answers, computed from the records (the intro and the mechanism chapter share them)
# --------------------------------------------------------------------------------------------
def _separation_word(auc: float) -> str:
    from nalkit.results.criteria import separation_word

    return separation_word(auc)


def join_and(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = list(items)
    return " and ".join(items) if len(items) < 3 else ", ".join(items[:-1]) + " and " + items[-1]


def findings() -> dict[str, str]:
    """Verdict sentences from the default, lambda and ablation grids; a key is absent when its records are."""
    from nalkit.plotting import method_label as L
    from nalkit.results import select_lambda

    out: dict[str, str] = {}
    default, _ = grid_runs("default")
    sweep, sweep_epochs = grid_runs("lambda")
    abl, _ = grid_runs("ablations")
    settings = settings_of(default)
    if len(default):
        from nalkit.results import ranking

        order = ranking(default)
        parts = []
        for s in settings:
            d = order[order.noise == s]
            if "nal" not in set(d.method):
                continue
            rank = int(d[d.method == "nal"]["rank"].iloc[0])
            others = d[d.method != "nal"]
            rival = others.iloc[0]  # the runner-up, or the best when NAL is not first
            ce = others[others.method == "ce"]
            parts.append(f"at {s} NAL ranks {rank} of {len(d)} with {100 * d[d.method == 'nal']['mean'].iloc[0]:.1f} % "
                         f"(NAL − {L(rival.method)}, the {'runner-up' if rank == 1 else 'best'}: "
                         f"{rival['diff'].sentence()}; NAL − CE: "
                         f"{ce['diff'].iloc[0].sentence() if len(ce) else 'no CE runs'})")
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
        tau = at.groupby("setting").last_tau_auroc.mean()
        loss = at.groupby("setting").last_loss_auroc.mean()
        best_tau = sweep.groupby("lam").last_tau_auroc.mean()
        out["tau"] = (f"At λ = {sel.chosen:g}, 1 − τ finds the mislabeled training samples with an AUROC of "
                      + ", ".join(f"{tau[s]:.2f} ({s})" for s in settings_of(at)) + f": τ {_separation_word(tau.mean())}. "
                      "The per-sample loss of the same runs (the small-loss criterion) reaches "
                      + ", ".join(f"{loss[s]:.2f}" for s in settings_of(at)) + ". Over the whole sweep the best mean "
                      f"AUROC of τ is {best_tau.max():.2f}, at λ = {best_tau.idxmax():g}.")
        alone = abl[(abl.lam == sel.chosen) & (abl.variant == "no target estimation")]
        if len(alone):
            tau_alone = alone.groupby("setting").last_tau_auroc.mean()
            better = [s for s in settings_of(alone) if s in tau and tau_alone[s] > tau[s] + 0.05]
            out["tau"] += (" Without target estimation (q stays the noisy label) the same λ gives τ an AUROC of "
                           + ", ".join(f"{tau_alone[s]:.2f}" for s in settings_of(alone))
                           + (f": at {join_and(better)} τ sorts the samples better when q cannot move towards the "
                              "network's predictions." if better else "."))
    if len(abl) and len(sweep):
        lam_abl = sorted(abl.lam.unique())
        both = pd.concat([sweep[sweep.lam.isin(lam_abl)], abl]).drop_duplicates("run")
        from nalkit.results.mechanism import ablation_effects, resolved_settings

        attention, targets = "no attention (τ = 1)", "no target estimation"
        effect = ablation_effects(both, settings_of(both))
        parts = []
        for variant, name in ((attention, "removing the attention branch (τ = 1)"),
                              (targets, "removing target estimation")):
            changes = join_and([f"{100 * d.mean:+.1f} points at {s}" + (" (within noise)" if d.within_noise else "")
                                for s, d in effect[variant].items()])
            parts.append(f"{name} changes the last-epoch test accuracy by {changes}")
        if not all(effect.values()):
            return out  # the ablation records are not there (yet)
        out["ablation"] = "At the selected λ, " + "; ".join(parts) + " (paired over seeds, 95 % t-intervals)."
        costs = {v: resolved_settings(diffs, -1) for v, diffs in effect.items()}
        helps = {v: resolved_settings(diffs, +1) for v, diffs in effect.items()}
        if not costs[attention] and costs[targets]:
            out["why"] = ("So, on these records, NAL's robustness comes from its target estimation: without it NAL "
                          f"loses accuracy at {', '.join(costs[targets])}, while fixing τ at 1 costs nothing measurable"
                          + (f" (it even helps at {', '.join(helps[attention])})" if helps[attention] else "")
                          + ". The attention weight is not why NAL resists noise here.")
        elif costs[attention]:
            mem = both.groupby(["setting", "variant"]).last_memorized.mean()
            s0 = costs[attention][0]
            full_at = both[(both.setting == s0) & (both.variant == "full NAL")]
            out["why"] = (f"Fixing τ at 1 costs accuracy at {join_and(costs[attention])}: there the attention branch "
                          "contributes to NAL's robustness"
                          + (f"; removing target estimation costs accuracy at {join_and(costs[targets])}."
                             if costs[targets] else "; removing target estimation costs nothing measurable.")
                          + f" With τ fixed at 1 the network memorises {100 * mem[(s0, attention)]:.1f} % of the "
                          f"mislabeled samples at {s0} instead of {100 * mem[(s0, 'full NAL')]:.1f} %, while full NAL's τ "
                          f"{_separation_word(float(full_at.last_tau_auroc.mean()))} (AUROC "
                          f"{full_at.last_tau_auroc.mean():.2f}).")
            lam_sel = lam_abl[0] if len(lam_abl) == 1 else select_lambda(sweep).chosen
            long_runs, _ = grid_runs("long")
            when = when_attention_acts(sweep[sweep.lam == lam_sel], sweep_epochs[sweep_epochs.lam == lam_sel],
                                       long_runs[long_runs.lam == lam_sel] if len(long_runs) else long_runs,
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


# -- the cost page (book/cost.ipynb) -------------------------------------------------------------------------------
def target_met(ratio, target) -> str:
    """``yes`` / ``no`` for a benchmark ratio against a target such as ``<= 1.03``; empty when either is missing."""
    if pd.isna(ratio) or pd.isna(target) or not str(target).strip():
        return ""
    op, bound = str(target).split()
    ok = float(ratio) <= float(bound) if op == "<=" else float(ratio) >= float(bound)
    return "yes" if ok else "no"


def read_benchmarks(folder: Path | None = None) -> list[tuple[str, pd.DataFrame]]:
    """``(file name, table)`` of every benchmark CSV in ``folder`` (default ``BENCHMARKS``), sorted by name; a file
    that cannot be read comes back as a one-column table saying why."""
    folder = BENCHMARKS if folder is None else Path(folder)
    out = []
    for path in sorted(folder.glob("*.csv")) if folder.is_dir() else []:
        try:
            out.append((path.name, pd.read_csv(path, dtype={"target": str, "note": str})))
        except Exception as err:  # noqa: BLE001 -- a malformed file is reported on the page, not fatal
            out.append((path.name, pd.DataFrame({"could not read": [f"{type(err).__name__}: {err}"]})))
    return out


def nal_cost(overhead: pd.DataFrame, runs: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The cost page's answer: the paired NAL / CE ratios of the ``nal_overhead`` benchmark as a table, and a
    sentence that sets them beside the ratio of median seconds per epoch of NAL's and CE's runs in ``runs`` (the
    default grid's records, as the results chapter computes it), saying which measurement is which."""
    rows = overhead[overhead.ratio.notna()] if len(overhead) and "ratio" in overhead else overhead.iloc[:0]
    table = pd.DataFrame({
        "quantity": list(rows.quantity),
        "NAL / CE": [f"{r:.2f}" for r in rows.ratio],
        "target": list(rows.target.fillna("")),
        "met": [target_met(r, t) for r, t in zip(rows.ratio, rows.target)],
        "spread": [str(n) if isinstance(n, str) else "" for n in rows.note],
    })
    from nalkit.results.claims import cost

    c = cost(overhead, runs)
    parts = []
    if np.isfinite(c.step):
        parts.append(f"a NAL training step takes {c.step:.2f}× CE's")
    if np.isfinite(c.memory):
        parts.append(f"it holds {c.memory:.2f}× CE's memory")
    met = [m for m in table.met if m]
    lead = ("NAL costs what cross-entropy costs" if met and all(m == "yes" for m in met)
            else "NAL against cross-entropy")
    text = (f"**{lead}:** " + " and ".join(parts) + " (paired, side by side in one process; table below)." if parts
            else "The paired NAL / CE benchmark (`nal_overhead`) has no results yet.")
    if np.isfinite(c.per_run) and np.isfinite(c.step):
        text += (f" The results chapter's cost table gives a different ratio, {c.per_run:.2f}× CE: it divides the "
                 f"median seconds per epoch of NAL's {c.n_nal} runs by those of CE's {c.n_ce} on the same CPU, runs "
                 f"timed one by one at different times on a shared machine, where CE's own runs range from "
                 f"{c.ce_fastest:.2f} to {c.ce_slowest:.2f} s per epoch "
                 f"({100 * (c.ce_slowest / c.ce_fastest - 1):.0f} % apart). The micro-benchmark instead alternates "
                 f"CE and NAL steps in one process, so both see the same load, and takes the median of the paired "
                 f"ratios: {c.step:.2f}. The paired ratio is NAL's cost and decides claim C9 (rule COST_SAME, "
                 f"[](rules.md)); the per-run ratio adds how busy the machine was when each run trained.")
    return table, text


def unmeasured_sentence(tables: Sequence[tuple[str, pd.DataFrame]]) -> str:
    """One sentence for every benchmark row without a value, grouped by file and by the note that says why:
    quantities named ``<configuration>: <what>`` are listed once per ``what``, with the configurations counted."""
    groups = []
    for name, t in tables:
        if not {"value", "quantity"} <= set(t):
            continue
        missing = t[t.value.isna()]
        why = (missing.note.fillna("no reason recorded") if "note" in t
               else pd.Series("no reason recorded", index=missing.index)).str.split(";").str[0].str.strip()
        for note, g in missing.groupby(why):
            split = [q.split(": ", 1) for q in g.quantity]
            if all(len(p) == 2 for p in split) and len({p[0] for p in split}) > 1:
                whats = list(dict.fromkeys(p[1] for p in split))
                configs = list(dict.fromkeys(p[0].split(" (")[0] for p in split))
                what = (f"{join_and(whats)} of each of {len(configs)} configurations ({', '.join(configs)})")
            else:
                what = join_and([f"“{q}”" for q in g.quantity])
            groups.append((len(g), f"in `{name.removesuffix('.csv')}`, {what} (note: “{note}”)"))
    if not groups:
        return ""
    return (f"**Not measured** ({sum(n for n, _ in groups)} rows of the files above, left out of their tables): "
            + "; ".join(text for _, text in groups) + ". `make bench` on a machine with a GPU fills them in.")


def benchmark_table(name: str, t: pd.DataFrame, number: int) -> str:
    """One benchmark file's measured rows as a numbered table, with the notes below it keyed by row; "" when the
    file has no measured row (:func:`unmeasured_sentence` names those)."""
    if not {"quantity", "value", "ratio", "target"} <= set(t):
        return f"`{name}` is not in the benchmark format; its columns are {', '.join(map(str, t.columns))}."
    t = t[t.value.notna()].reset_index(drop=True)
    if not len(t):
        return ""
    shown = pd.DataFrame({
        "#": range(1, len(t) + 1),
        "quantity": t["quantity"],
        "value": [f"{float(f'{v:.3g}'):,g}" for v in t["value"]],
        "unit": t["unit"].fillna(""),
        "ratio": [("" if pd.isna(r) else f"{r:.2f}") for r in t["ratio"]],
        "target": t["target"].fillna(""),
        "met": [target_met(r, g) for r, g in zip(t["ratio"], t["target"])],
    })
    runs = t[["device_name", "threads", "torch", "date", "command"]].drop_duplicates().fillna("")
    where = "; ".join(f"{r.device_name or 'no device'}, {r.threads} thread(s), torch {r.torch}, {str(r.date)[:10]}, "
                      f"`{r.command}`" for r in runs.itertuples())
    notes = [f"{i}. {n}" for i, n in zip(shown["#"], t["note"].fillna("")) if str(n).strip()]
    return (table_md(shown, f"Benchmark `{name.removesuffix('.csv')}`: {where}.", f"tab-bench-{number}", index=False)
            + ("\nNotes (by row):\n\n" + "\n".join(notes) + "\n" if notes else ""))


# -- the experiments index (book/experiments.md) ------------------------------------------------------------------
RUNS_INDEX_HEAD = ["grid", "noise", "method", "seed", "test acc", "best", "memorised", "τ AUROC", "noisy val",
                   "s / epoch", "notebook"]
_SHORT_VARIANT = {"no target estimation": "no q", "no attention (τ = 1)": "τ = 1",
                  "q updated once per epoch": "q per epoch", "q updated in epochs divisible by 10": "q every 10th epoch",
                  "one learned τ for all samples": "one τ", "one learned τ per class": "τ per class",
                  "τ = full NAL's mean per epoch": "mean τ per epoch"}


def _short_variant(variant: str) -> str:
    """The runs index's name of a NAL variant: a short form, or the variant itself where it can wrap."""
    if variant in _SHORT_VARIANT:
        return _SHORT_VARIANT[variant]
    found = re.fullmatch(r"q updated in epochs divisible by (\d+) from epoch (\d+)", variant)
    if found:
        return f"q every {found[1]}th epoch from {found[2]}"
    # a short one stays one token ("α=0.7"); a long one keeps its spaces, so that the cell can wrap
    return variant.replace(" ", "") if len(variant) <= 12 else variant


def grid_membership(results: Path | None = None) -> dict[str, list[str]]:
    """Run name -> the grids (manifests in ``results/grids/``) that list it, in name order."""
    grids: dict[str, list[str]] = {}
    for manifest in sorted(((results or RESULTS) / "grids").glob("*.json")):
        for e in json.loads(manifest.read_text()).get("experiments", []):
            grids.setdefault(e["name"], []).append(manifest.stem)
    return grids


def method_cell(method: str, lam: float, variant: str) -> str:
    """'NAL λ=2, τ = 1' for a NAL run (its λ and, unless full NAL, its ablation), the method's label otherwise."""
    text = plotting.method_label(method)
    if method == "nal":
        text += f" λ={lam:g}"
        if variant != "full NAL":
            text += ", " + _short_variant(variant)
    return text


def runs_index_html(runs: pd.DataFrame, grids: dict[str, list[str]], runs_dir: Path | None = None) -> str:
    """The sortable, filterable HTML table of every run (one row per run, by setting, method, λ, variant, seed),
    each linking to its executed notebook when one is committed; the page's script sorts and filters it."""
    order = {m: i for i, m in enumerate(plotting.method_order(runs.method))}
    runs = runs.assign(_m=runs.method.map(order), _s=runs.setting.map({s: i for i, s in enumerate(SETTINGS)}))
    rows = []
    for r in runs.sort_values(["_s", "_m", "lam", "variant", "seed"]).itertuples():
        nb = (runs_dir or RUNS) / r.run / "experiment.ipynb"
        link = (f'<a href="../results/runs/{r.run}/experiment.html" title="{r.run}">open</a>' if nb.is_file()
                else "–")
        noise = r.setting.replace(" ", "\u00a0")  # "sym 40 %" never breaks before its "%"
        cells = [", ".join(grids.get(r.run, ["–"])), noise, method_cell(r.method, r.lam, r.variant), str(r.seed),
                 pm([r.last_test_acc]), pm([r.best_test_acc]), pm([r.last_memorized]), pm([r.last_tau_auroc], 1, 2),
                 pm([getattr(r, "last_val_acc_noisy", float("nan"))]), f"{r.sec_per_epoch:.2f}"]
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + f"<td>{link}</td></tr>")
    return ('<input class="nalkit-filter" data-table="runs-index" type="search" '
            'placeholder="filter: type words such as  nal  asym  λ=0.5" aria-label="filter the runs">'
            f'<p id="runs-index-count">{len(rows)} of {len(rows)} runs shown</p>'
            '<table class="nalkit-sortable" id="runs-index"><thead><tr>'
            + "".join(f"<th>{html.escape(h)}</th>" for h in RUNS_INDEX_HEAD) + "</tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


# -- tau at three stages (book/mechanism.md) ---------------------------------------------------------------------
def tau_stages(sweep: pd.DataFrame, setting: str, lams: Sequence[float]) -> tuple[dict, list[str], dict]:
    """The λ sweep's tau snapshots at one noise setting, for each λ in ``lams``.

    Returns the histogram cells ``{("λ = 0.5", "epoch 5"): (tau values, is_noisy)}`` pooled over seeds, one sentence
    per λ on how the AUROC of 1 - tau and the median taus move from snapshot to snapshot (mean ± std over seeds),
    and ``{λ: (the rulebook's stages of the cell, :func:`nalkit.results.tau_stages`; the last median tau of the
    mislabeled samples)}``.
    """
    from nalkit.results import tau_stages as rule_stages

    cells, lines, stages = {}, [], {}
    for lam in lams:
        dirs = sweep[(sweep.setting == setting) & (sweep.lam == lam)].run_dir
        snaps = load_snapshots(dirs, "tau") if len(dirs) else pd.DataFrame(columns=["epoch"])
        snaps = snaps[snaps.epoch >= 0]
        for e, x in snaps.groupby("epoch"):
            cells[(f"λ = {lam:g}", f"epoch {e}")] = (x.value.to_numpy(), x.is_noisy.to_numpy())
        if not len(snaps):
            lines.append(f"**{setting}, λ = {lam:g}:** no snapshots.")
            continue
        per_run = snapshot_separation(snaps)
        sep = per_run.drop(columns="run").groupby("epoch").agg(["mean", "std"])
        stages[lam] = (rule_stages(per_run), sep[("median_mislabeled", "mean")].iloc[-1])
        lines.append(
            f"**{setting}, λ = {lam:g}:** AUROC of 1 − τ " + " → ".join(
                f"{r[('auroc', 'mean')]:.2f} ± {r[('auroc', 'std')]:.2f} (epoch {e})" for e, r in sep.iterrows())
            + f"; median τ at epoch {sep.index[-1]} (each seed's median, averaged over seeds): clean "
            f"{sep[('median_clean', 'mean')].iloc[-1]:.4f}, mislabeled {sep[('median_mislabeled', 'mean')].iloc[-1]:.4f}.")
    return cells, lines, stages


def three_stages_sentence(stages: dict) -> str:
    """Whether the appendix's picture appears, by the rulebook's stage rules (the rule C5 and the horizon chapter
    use), from ``{(setting, λ): (Stages, last median tau of the mislabeled)}`` of :func:`tau_stages`."""
    from nalkit.results.criteria import STAGE_APART, STAGE_FINAL

    apart = [f"{s} at λ = {lam:g} ({st.best_auroc:.2f} at epoch {st.best_epoch})"
             for (s, lam), (st, _) in stages.items() if st.apart]
    final = [f"{s} at λ = {lam:g}" for (s, lam), (st, _) in stages.items() if st.final]
    medians = [m for _, m in stages.values()]
    return ("**Three stages?** By the rules of [](rules.md), τ separates clean from mislabeled samples (AUROC of "
            f"1 − τ ≥ {STAGE_APART:g} at some snapshot) at " + (join_and(apart) if apart else "no setting and λ")
            + f", and reaches the final stage (AUROC ≥ {STAGE_FINAL:g} with the clean samples near 1) at "
            + (join_and(final) if final else "none") + f"; at the last snapshot the median τ of the mislabeled "
            f"samples lies between {min(medians):.3f} and {max(medians):.4f} in every panel.")


def placeholder_figure(text: str):
    """A one-line figure that says why the figure is missing (e.g. no records of a setting yet)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.2, 0.8))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center")
    return fig


# -- over the paper's horizon (book/horizon.md) --------------------------------------------------------------------
#: the long tier's variants and their colours, from the book's one palette (nalkit.plotting.line_style: every
#: method and variant is drawn alike in every chapter)
VARIANT_COLORS = {v: plotting.line_style(v)["color"] for v in ("CE", "NAL", "NAL, authors' schedule", "NAL, τ = 1",
                                                               "SCE")}


def flipped(runs: pd.DataFrame, column: str = "noise") -> dict[str, str]:
    """Each nominal setting of ``runs`` with the share of labels its noise actually changed (mean over the runs):
    ``{"asym 40 %": "asym 40 % (21 % flipped)"}``, for row labels and table headers."""
    from nalkit.results import mislabeled_fraction

    if not len(runs):
        return {}
    return {s: f"{s} ({100 * r:.0f} % flipped)" for s, r in mislabeled_fraction(runs, column).items()}


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


def _seeds(n: int) -> str:
    return f"{n} seed{'s' if n != 1 else ''}"


def _where(found: Sequence[str], have: Sequence[str]) -> str:
    return "every setting" if set(found) >= set(have) else (join_and(found) if found else "no setting")


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
    from nalkit.results.criteria import STAGE_ALIKE, STAGE_APART, STAGE_FINAL, STAGE_FINAL_CLEAN_MEDIAN

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


# -- how the attention helps (book/attention.md) -------------------------------------------------------------------
#: full NAL, tau = 1 and the three attention controls, as nalkit.results.nal_variant names them
CONTROL_VARIANTS = ["full NAL", "no attention (τ = 1)", "one learned τ for all samples", "one learned τ per class",
                    "τ = full NAL's mean per epoch"]
CONTROL_COLORS = {v: plotting.line_style(v)["color"] for v in CONTROL_VARIANTS}


def control_table(runs: pd.DataFrame, settings: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """The controls beside full NAL and tau = 1 per setting (test accuracy, memorisation, each paired over seeds
    against full NAL), one sentence per setting saying which variant stays within the seed spread of full NAL,
    and a last sentence answering the section's question by C8's rule (:func:`nalkit.results.claims.per_sample_answer`:
    full NAL against the control the rule names, one learned tau for all samples)."""
    from nalkit.results.claims import control_differences

    rows, lines = [], []
    chosen = runs[runs.setting.isin(settings)] if len(runs) else runs
    diffs = control_differences(chosen.assign(noise=chosen.setting) if len(chosen) else chosen, CONTROL_VARIANTS)
    for s in settings:
        d = diffs[diffs.noise == s] if len(diffs) else diffs
        if not len(d):
            continue
        recovered, short = [], []
        for r in d.itertuples():
            x = runs[(runs.setting == s) & (runs.variant == r.variant)]
            rows.append({"setting": s, "variant": r.variant, "test acc": f"{pm(x.last_test_acc)} ({len(x)})",
                         "memorised": pm(x.last_memorized),
                         "test acc − full NAL": r.test.sentence(pairs="seeds") if r.test is not None else "–",
                         "memorised − full NAL": r.memorised.sentence(pairs="seeds") if r.memorised is not None else "–"})
            if isinstance(r.side, str):  # a difference with an interval (not full NAL itself)
                (short if r.side == "fails" else recovered).append(f"{r.variant} ({100 * r.test.mean:+.1f})")
        if recovered or short:
            lines.append(f"**{s}:** within the seed spread of full NAL or above it: "
                         f"{join_and(recovered) if recovered else 'none'}; below it: {join_and(short) if short else 'none'}.")
    from nalkit.results.claims import PER_SAMPLE_CONTROL, per_sample_answer

    chosen = runs[runs.setting.isin(settings)] if len(runs) else runs
    answer = per_sample_answer(chosen.assign(noise=chosen.setting) if len(chosen) else chosen)
    answer = answer[answer.test.map(lambda x: x.n >= 2)] if len(answer) else answer
    if len(answer):
        parts = [f"{r.noise}: {100 * r.test.mean:+.1f} points of test accuracy (95 % CI {100 * r.test.low:+.1f} to "
                 f"{100 * r.test.high:+.1f}; {r.standing}) and {100 * r.memorised.mean:+.1f} points memorised (CI "
                 f"{100 * r.memorised.low:+.1f} to {100 * r.memorised.high:+.1f})" for r in answer.itertuples()]
        ahead = [r.noise for r in answer.itertuples() if r.standing == "ahead"]
        behind = [r.noise for r in answer.itertuples() if r.standing == "behind"]
        open_ = [r.noise for r in answer.itertuples() if r.standing in ("undecided", "matches")]
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
    learning's row (``cl``: {(setting, seed): nalkit.results.confident_learning output}), and per setting where
    1 - tau ranks among the detectors at their best and at the last epoch (:func:`nalkit.results.tau_rank`)."""
    from nalkit.detectors import DETECTORS
    from nalkit.results import tau_rank

    rows, lines = [], []
    for s in settings:
        d = table[(table.noise == s) & (table.variant == variant)] if len(table) else table
        for r in d.itertuples():
            rows.append({"setting": s, "detector": DETECTORS[r.detector],
                         "best AUROC (epoch)": f"{r.best_auroc:.2f} ({r.best_epoch:.0f})",
                         "last AUROC": f"{r.last_auroc:.2f}", "best AP": f"{r.best_ap:.2f}",
                         "last AP": f"{r.last_ap:.2f}"})
        mine = [v for (setting, _), v in cl.items() if setting == s]
        if mine:
            auc, ap = np.mean([v["auroc"] for v in mine]), np.mean([v["ap"] for v in mine])
            rows.append({"setting": s, "detector": f"confident learning (CE, 5-fold, n = {len(mine)})",
                         "best AUROC (epoch)": f"{auc:.2f}", "last AUROC": f"{auc:.2f}", "best AP": f"{ap:.2f}",
                         "last AP": f"{ap:.2f}"})
        ranks = tau_rank(d)
        if len(ranks):
            r = ranks.iloc[0]
            lines.append(
                f"**{s}:** at their best epochs 1 − τ ranks {r.best_rank} of {r.of} (AUROC {r.tau_best:.2f}, reached "
                f"around epoch {r.tau_best_epoch}; best: {DETECTORS[r.best_top]}, {r.best_top_value:.2f}); at the "
                f"last epoch it ranks {r.last_rank} (AUROC {r.tau_last:.2f}; best: {DETECTORS[r.last_top]}, "
                f"{r.last_top_value:.2f}) and {r.ap_rank} by average precision ({r.tau_ap:.2f}; best: "
                f"{DETECTORS[r.ap_top]}, {r.ap_top_value:.2f})"
                + (f"; confident learning reaches AUROC {np.mean([v['auroc'] for v in mine]):.2f}, average "
                   f"precision {np.mean([v['ap'] for v in mine]):.2f}." if mine else "."))
    shown = pd.DataFrame(rows).set_index(["setting", "detector"]) if rows else pd.DataFrame()
    return shown, lines


# -- the intro: the claims table and the five-sentence summary -----------------------------------------------------
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
    return (f"Across the regimes tested so far ([](regime.md)), "
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


# -- the results chapter: tuning, ranking, what tuning changed -----------------------------------------------------
PARAMETER_NAMES = {"nal": "λ", "gce": "q", "sce": "α (β 1)", "elr": "λ (β 0.7)", "selc": "turning point"}


def method_name(method: str) -> str:
    """The name tables and sentences give a method (``ce + early stop`` -> ``CE + early stop``)."""
    from nalkit.results import EARLY_STOPPED

    return "CE + early stop" if method == EARLY_STOPPED else method.upper()


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


def _span(values: Sequence[int]) -> str:
    """``0–4`` for consecutive integers, ``0, 2 and 5`` otherwise."""
    values = [int(v) for v in values]
    if len(values) > 2 and values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}–{values[-1]}"
    return join_and([str(v) for v in values])


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


# -- the regime chapter (book/regime.md): phrasing of nalkit.results.regime ---------------------------------------
def regime_cell(row) -> str:
    """One cell of the regime matrix: the rulebook's word and the deciding number with its 95 % interval, in points
    (for τ's AUROC, the best AUROC itself); the detectors' cell is its note."""
    if row.key == "–" or not np.isfinite(row["mean"]):
        return row.note or row.word or "–"
    from nalkit.results.criteria import STAGE_APART

    if row.key == "C5":
        number = f"best AUROC {row['mean'] + STAGE_APART:.2f}"
        if np.isfinite(row.low):
            number += f" [{row.low + STAGE_APART:.2f}, {row.high + STAGE_APART:.2f}]"
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
    """One sentence per claim: stable across the regimes tested, or which regime turns it (and where it was not
    reached, or not tested yet)."""
    lines = []
    for (key, claim), g in stability.groupby(["key", "claim"], sort=False):
        if key == "–":  # τ among the detectors has a rank, not a verdict: listed per regime below
            continue
        tested = [(a, r) for a, rs in zip(g.axis, g.tested) for r in rs]
        turned = [f"{r} ({a}: {w} → {matrix[(matrix.axis == a) & (matrix.regime == r) & (matrix.key == key)].word.iloc[0]})"
                  for a, rs, w in zip(g.axis, g.turned, g.reference_word) for r in rs]
        unreached = [f"{r} ({a})" for a, rs in zip(g.axis, g.unreached) for r in rs]
        name = f"**{key}, {claim}:**" if key != "–" else f"**{claim}:**"
        if not tested:
            text = f"{name} no regime beyond the CPU regime has records yet"
        elif turned:
            text = f"{name} turned by {join_and(turned)}; the same as in the CPU regime in the other " \
                   f"{len(tested) - len(turned)} regime{'s' if len(tested) - len(turned) != 1 else ''} tested"
        else:
            text = f"{name} the same verdict in all {len(tested)} regime{'s' if len(tested) != 1 else ''} tested"
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
