"""The experiments index (book/experiments.md): one sortable row per run."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd
from nalkit import plotting

from .common import RESULTS, RUNS, SETTINGS, pm

RUNS_INDEX_HEAD = ["grid", "noise", "method", "seed", "test acc", "best", "memorised", "τ AUROC", "noisy val",
                   "s / epoch", "notebook"]


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
            text += ", " + variant
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
