"""Phrasing and tables for the cost page (book/cost.ipynb): the benchmark files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .common import BENCHMARKS, join_and, table_md


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
