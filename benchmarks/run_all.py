"""Run every benchmark (``make bench``), each in its own process, and write results/benchmarks/*.csv.

    python benchmarks/run_all.py                 # about 5-10 minutes on 2 CPU cores
    python benchmarks/run_all.py --quick         # smoke test, scratch CSVs (seconds)
    python benchmarks/run_all.py --threads 1     # on a machine busy with other work (see below)

``gpu_epoch`` and ``recipes`` measure only where there is a GPU; elsewhere they record "not yet measured
(no GPU)" rows (``gpu_epoch`` keeps GPU rows measured earlier). With other processes using the cores, torch's default of one OpenMP
thread per core makes every parallel region wait for a descheduled thread: on 2 busy cores a small_cnn step
was ~13x slower with 2 threads than with 1. The ratios stay comparable either way (both sides suffer alike),
but ``--threads 1`` keeps the run short.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ("nal_overhead", "trainer_vs_loop", "augment", "grid_walltime", "gpu_epoch", "recipes")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out-dir", type=Path, default=None, help="write <benchmark>.csv here instead")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--only", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS))
    args = p.parse_args(argv)
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if args.threads is None and load > 0.5 * cores:
        print(f"note: load average {load:.1f} on {cores} cores; consider --threads 1 (see --help)", flush=True)
    failed, took = [], {}
    for name in args.only:
        cmd = [sys.executable, str(HERE / f"{name}.py")]
        if args.quick:
            cmd.append("--quick")
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        if args.out_dir:
            cmd += ["--out", str(args.out_dir / f"{name}.csv")]
        print(f"\n=== {name}: {' '.join(cmd[1:])}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call(cmd, cwd=HERE.parent)
        took[name] = time.perf_counter() - t0
        if rc:
            failed.append(f"{name} (exit {rc})")
    print("\n" + "  ".join(f"{k} {v:.0f}s" for k, v in took.items()), f"total {sum(took.values()):.0f}s")
    if failed:
        print("FAILED: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
