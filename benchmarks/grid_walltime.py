"""Wall time of the default experiment grid on this machine, read from the committed run records.

Nothing is rerun: every complete run record (``nalkit.results.load_runs``) carries its ``seconds`` (training +
evaluation, without process start-up and notebook execution). Reported per source directory: the number of
runs, the median per-run time, the sum per seed, and the projection of one seed of the grid
(``configs/grids/default.yaml``: its runs per seed x the median per-run time). Where CE and other methods
are both present, each method's median per-run time over CE's is given as a cross-check of
``nal_overhead`` -- not side by side, so it carries whatever else the machine was doing.

``results/runs`` holds the runs of every grid; only the experiments of ``--grid`` are counted.

    python benchmarks/grid_walltime.py
"""

from __future__ import annotations

import argparse
import statistics
from collections import Counter
from pathlib import Path

import pandas as pd
import torch

import benchlib
from nalkit.results import epoch_time_by_hardware, load_runs
from nalkit.grid import expand_grid

BENCHMARK = "grid_walltime"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sources", nargs="+", type=Path, default=[benchlib.ROOT / "results" / "runs"])
    p.add_argument("--grid", type=Path, default=benchlib.ROOT / "configs" / "grids" / "default.yaml")
    finish = benchlib.parse_common(p, BENCHMARK)
    args = finish(p.parse_args(argv), argv)

    experiments = expand_grid(args.grid)
    per_seed = Counter(e.cfg.run.seed for e in experiments)
    runs_per_seed = max(per_seed.values())
    table = benchlib.Table(BENCHMARK, torch.device("cpu"))
    grid_name = args.grid.relative_to(benchlib.ROOT) if args.grid.is_relative_to(benchlib.ROOT) else args.grid
    table.add(f"runs in the grid ({grid_name})", len(experiments), "runs",
              note=f"{len(per_seed)} seeds x {runs_per_seed} runs")
    for src in args.sources:
        label = src.relative_to(benchlib.ROOT) if src.is_relative_to(benchlib.ROOT) else src
        runs = load_runs(src, strict=False).runs if src.is_dir() else None
        if runs is not None and len(runs):
            runs = runs[runs["run"].isin({e.name for e in experiments})]
        if runs is None or not len(runs):
            table.add(f"{label}: complete runs", 0, "runs", note="no run records yet")
            continue
        done = runs[runs["state"] == "complete"]
        threads = ", ".join(sorted({str(t) for t in done["threads"].dropna()})) or "?"
        table.add(f"{label}: complete runs", len(done), "runs",
                  note=f"{len(runs) - len(done)} not complete (ignored); recorded with torch threads {threads}")
        if not len(done):
            continue
        secs = done["seconds"].astype(float)
        med = statistics.median(secs)
        table.add(f"{label}: per-run wall time, median", med, "s",
                  note=f"range {secs.min():.0f}-{secs.max():.0f} s; median s/epoch "
                       f"{statistics.median(done['sec_per_epoch']):.2f}")
        for seed, group in done.groupby("seed"):
            table.add(f"{label}: sum of seconds, seed {seed}", float(group["seconds"].sum()), "s",
                      note=f"{len(group)} runs")
        machines = sorted({str(h) for h in done.get("hardware", pd.Series(dtype=object)).dropna()})
        table.add(f"{label}: projected one-seed grid ({runs_per_seed} runs x median)",
                  runs_per_seed * med / 60, "min",
                  note="sequential, at the records' timings (" + ("; ".join(machines) or "hardware not recorded")
                  + ")" + ("; from NAL runs only" if set(done["method"]) == {"nal"} else ""))
        # a ratio only between runs on the same hardware (the one with most CE runs): the grid may share runs made
        # on other machines
        median, count = epoch_time_by_hardware(done, "seconds")
        if len(median):
            hw = count["ce"].idxmax()
            for method in median.columns.drop("ce"):
                if pd.notna(median.loc[hw, method]):
                    m = float(median.loc[hw, method])
                    table.add(f"{label}: per-run wall time, {method} / ce", m, "s", ratio=m / median.loc[hw, "ce"],
                              note=f"medians over runs on {hw} ({int(count.loc[hw, method])} {method}, "
                                   f"{int(count.loc[hw, 'ce'])} ce); not side by side (different times)")
    table.print()
    table.write(args.out, args.append)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
