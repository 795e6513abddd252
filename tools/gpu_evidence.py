#!/usr/bin/env python3
"""The GPU evidence, in one prepared call on a lent GPU machine (issue: the GPU path), rehearsed on the CPU.

Stages, in order of value, each with a time budget; each stage's output is packed into its own verified archive
under ``--out`` as soon as the stage ends, so a call cut short still returns what it finished:

1. ``preflight``  -- python, torch, CUDA device, which of nalkit's imports are there (papermill decides whether
   the grids run through the notebook or with ``--no-notebook``, whose notebooks a later CPU run executes);
2. ``cuda-tests`` -- ``pytest -m cuda tests/test_cuda.py`` (bf16/fp32 training, NAL under bf16, resume, a CUDA
   checkpoint on the CPU, the device loader, every paper recipe);
3. ``probe``      -- aggregate throughput of 1, 4 and 8 experiments at once on the one GPU; the best count is used;
4. ``long``       -- ``configs/grids/long.yaml`` at the paper's 500 epochs through the runner;
5. ``bench``      -- ``benchmarks/gpu_epoch.py`` and ``benchmarks/recipes.py`` (fewer steps);
6. ``fair``       -- the fair-comparison grid (``configs/grids/tuning.yaml``) as time allows.

At most 4 archives (``1-logs``, ``2-long``, ``3-bench``, ``4-fair``), each at most 16 MiB, each read back and
checked against the sha256 of every file it holds; ``stages.json`` (in ``1-logs``, rewritten at every stage)
records each stage's budget, wall time and exit status.

    python3 tools/gpu_data.py --out gpu-data                            # here, first: the data it carries (8 MB)
    mkdir -p data && cp -r gpu-data/fashion-mnist data/ && \
    python3 tools/gpu_evidence.py --out "$OUT"                          # on the lent GPU (device tool, carry gpu-data)
    python3 tools/gpu_evidence.py --out /tmp/ev --rehearse              # the CPU rehearsal (tests/test_gpu_evidence.py)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIB = 1 << 20
ARCHIVE_LIMIT = 16 * MIB
#: seconds per stage on the GPU; the whole stays under 9 minutes (the device tool allows 10 per command)
BUDGETS = {"preflight": 20, "cuda-tests": 150, "probe": 45, "long": 200, "bench": 60, "fair": 45}
SNAPSHOTS_500 = "[5,20,40,60,100,200,300,400,500]"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MIB), b""):
            h.update(chunk)
    return h.hexdigest()


def pack(out: Path, name: str, files: list[Path], base: Path) -> dict:
    """``files`` (relative to ``base``) into ``out/name.tar.gz``, then read back and checked file by file; returns
    what went in. Files that would push the archive past 16 MiB are left out and listed."""
    archive = out / f"{name}.tar.gz"
    tmp = archive.with_suffix(".partial")
    sums, left_out = {}, []
    with tarfile.open(tmp, "w:gz") as tar:
        for f in sorted(set(files)):
            if not f.is_file():
                continue
            if tmp.stat().st_size + f.stat().st_size > ARCHIVE_LIMIT - MIB:  # compressed size is at most the raw one
                left_out.append(str(f.relative_to(base)))
                continue
            tar.add(f, arcname=str(f.relative_to(base)))
            sums[str(f.relative_to(base))] = sha256(f)
    with tarfile.open(tmp, "r:gz") as tar:  # verify: every member reads back with its checksum
        for member in tar.getmembers():
            data = tar.extractfile(member).read()
            if hashlib.sha256(data).hexdigest() != sums[member.name]:
                raise RuntimeError(f"{archive.name}: {member.name} does not read back with its checksum")
    os.replace(tmp, archive)
    size = archive.stat().st_size
    if size > ARCHIVE_LIMIT:
        raise RuntimeError(f"{archive.name} is {size / MIB:.1f} MiB, over 16 MiB")
    return {"archive": archive.name, "files": len(sums), "bytes": size, "left_out": left_out}


class Evidence:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.work = self.out.parent / f".{self.out.name}-work" if args.work is None else Path(args.work)
        self.logs = self.work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.results = Path(args.results_dir).resolve()
        self.stages: list[dict] = []
        self.started = time.monotonic()
        self.device = "cpu" if args.rehearse else "cuda"
        self.env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
                    "NALKIT_TEST_DEVICE": self.device, "PYTHONUNBUFFERED": "1"}
        self.notebooks = True
        self.best_workers = 1

    # -- running ---------------------------------------------------------------------------------------------
    def budget(self, stage: str) -> float:
        """The stage's budget (doubled in the CPU rehearsal), or what is left of the total if less (at least 5 s)."""
        left = self.args.total - (time.monotonic() - self.started)
        return max(5.0, min(BUDGETS[stage] * (2 if self.args.rehearse else 1), left))  # the CPU is slower

    def run(self, stage: str, cmd: list[str], budget: float, log: str) -> int:
        with open(self.logs / log, "ab") as f:
            f.write(f"$ {' '.join(map(str, cmd))}\n".encode())
            f.flush()
            try:
                return subprocess.run(cmd, cwd=ROOT, env=self.env, stdout=f, stderr=subprocess.STDOUT,
                                      timeout=budget, check=False).returncode
            except subprocess.TimeoutExpired:
                f.write(f"\n[stage {stage}: stopped at its budget of {budget:.0f} s]\n".encode())
                return 124

    def stage(self, name: str, fn) -> None:
        budget = self.budget(name)
        t0 = time.monotonic()
        try:
            status = fn(budget)
        except Exception as err:  # noqa: BLE001 -- a broken stage is recorded; the next ones still run
            status = f"error: {type(err).__name__}: {err}"
        self.stages.append({"stage": name, "budget_s": round(budget), "wall_s": round(time.monotonic() - t0, 1),
                            "status": status})
        (self.logs / "stages.json").write_text(json.dumps(self.stages, indent=1))
        self.pack_logs()

    def pack_logs(self) -> None:
        self.archives = getattr(self, "archives", {})
        self.archives["1-logs"] = pack(self.out, "1-logs", list(self.logs.rglob("*")), self.work)

    def new_runs(self, since: set[str]) -> list[Path]:
        runs = self.results / "runs"
        return [f for d in runs.iterdir() if d.is_dir() and d.name not in since and (d / "status.json").is_file()
                for f in d.iterdir() if f.is_file() and not f.name.startswith("ckpt-")] if runs.is_dir() else []

    # -- the stages ------------------------------------------------------------------------------------------
    def preflight(self, budget: float) -> str:
        code = ("import importlib.util, json, platform, torch; "
                "mods = ['numpy', 'yaml', 'pandas', 'tqdm', 'PIL', 'matplotlib', 'papermill', 'nbclient', "
                "'ipykernel', 'torchvision', 'pytest']; "
                "print(json.dumps({'python': platform.python_version(), 'torch': torch.__version__, "
                "'cuda': torch.version.cuda, 'device': torch.cuda.get_device_name(0) if torch.cuda.is_available() "
                "else None, 'modules': {m: importlib.util.find_spec(m) is not None for m in mods}}))")
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=self.env, capture_output=True, text=True,
                             timeout=budget, check=False)
        (self.logs / "preflight.json").write_text(out.stdout or out.stderr)
        info = json.loads(out.stdout)
        self.notebooks = all(info["modules"][m] for m in ("papermill", "nbclient", "ipykernel", "matplotlib",
                                                           "pandas"))
        return "ok" if info["device"] or self.args.rehearse else "no CUDA device"

    def cuda_tests(self, budget: float) -> str:
        extra = ["-k", "not recipe and not killed"] if self.args.rehearse else []
        rc = self.run("cuda-tests", [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "tests/test_cuda.py", "-rs",
                                     "-p", "no:cacheprovider", f"--junitxml={self.logs / 'cuda-tests.xml'}", *extra],
                      budget, "cuda-tests.log")
        return f"pytest exit {rc}"

    def probe(self, budget: float) -> str:
        counts = (1, 2) if self.args.rehearse else (1, 4, 8)
        epochs = 1 if self.args.rehearse else 3
        rows = []
        for k in counts:
            scratch = self.work / f"probe-{k}"
            t0 = time.monotonic()
            procs = [subprocess.Popen(
                [sys.executable, "-m", "nalkit.cli", "train", "configs/fmnist/cpu.yaml", f"optim.epochs={epochs}",
                 "method.nal.es=1", "run.snapshot_epochs=[]", f"run.seed={i}", f"run.device={self.device}",
                 *self.args.extra, "--results-dir", str(scratch), "--quiet"],
                cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(k)]
            ok = all(p.wait(timeout=budget) == 0 for p in procs)
            wall = time.monotonic() - t0
            rows.append({"concurrent": k, "wall_s": round(wall, 2), "ok": ok,
                         "experiment_epochs_per_s": round(k * epochs / wall, 3)})
        good = [r for r in rows if r["ok"]]
        self.best_workers = max(good, key=lambda r: r["experiment_epochs_per_s"])["concurrent"] if good else 1
        (self.logs / "probe.json").write_text(json.dumps({"rows": rows, "chosen": self.best_workers}, indent=1))
        return f"{self.best_workers} at once"

    def grid(self, name: str, grid: str, overrides: list[str], budget: float, archive: str, only: str | None) -> str:
        before = {d.name for d in (self.results / "runs").iterdir()} if (self.results / "runs").is_dir() else set()
        cmd = [sys.executable, "-m", "nalkit.cli", "run", grid, *overrides, *self.args.extra,
               f"run.device={self.device}", "--executor", "local", "--workers", str(self.best_workers),
               "--results-dir", str(self.results)] + ([] if self.notebooks else ["--no-notebook"]) + \
            (["--only", only] if only else [])
        rc = self.run(name, cmd, budget, f"{name}.log")
        files = self.new_runs(before)
        self.archives[archive] = pack(self.out, archive, files, self.results)
        return f"runner exit {rc}; {len({f.parent for f in files})} run directories packed"

    def bench(self, budget: float) -> str:
        scratch = self.work / "bench"
        scratch.mkdir(exist_ok=True)
        # on the GPU: the ResNet-34 epoch against its FLOP floor, and every recipe for 100 steps (fewer than the
        # benchmark's 300, to fit the budget); the rehearsal runs both scripts' measuring paths at toy sizes
        epoch_args = ["--quick", "--device", "cpu", "--force", "--n", "256", "--batches", "64", "--repeats", "1",
                      "--warmup-steps", "2"] if self.args.rehearse else []
        recipe_args = ["--quick", "--device", "cpu", "--force", "--recipes", "cifar10-sym40", "--steps", "4",
                       "--warmup", "1", "--repeats", "1"] if self.args.rehearse else ["--steps", "100"]
        rcs = [self.run("bench", [sys.executable, "benchmarks/gpu_epoch.py", *epoch_args, "--out",
                                  str(scratch / "gpu_epoch.csv")], budget / 2, "bench.log"),
               self.run("bench", [sys.executable, "benchmarks/recipes.py", *recipe_args, "--out",
                                  str(scratch / "recipes.csv")], budget / 2, "bench.log")]
        self.archives["3-bench"] = pack(self.out, "3-bench", list(scratch.glob("*.csv")), scratch)
        return f"exit {rcs}"

    def main(self) -> int:
        self.stage("preflight", self.preflight)
        self.stage("cuda-tests", self.cuda_tests)
        self.stage("probe", self.probe)
        # the rehearsal's 2 epochs: every schedule that starts later (NAL's es, SELC's turning point) starts at 1
        epochs = ["optim.epochs=2", "run.snapshot_epochs=[1,2]", "method.nal.es=1", "method.selc.start=1"] \
            if self.args.rehearse else \
            ["optim.epochs=500", f"run.snapshot_epochs={SNAPSHOTS_500}"]
        self.stage("long", lambda b: self.grid("long", "configs/grids/long.yaml", epochs, b, "2-long",
                                               self.args.only_long))
        self.stage("bench", self.bench)
        fair = ["optim.epochs=25", "run.snapshot_epochs=[]"] if self.args.rehearse else []  # SELC starts at 25
        self.stage("fair", lambda b: self.grid("fair", "configs/grids/tuning.yaml", fair, b, "4-fair",
                                               self.args.only_fair))
        self.pack_logs()
        print(json.dumps({"stages": self.stages, "archives": self.archives}, indent=1))
        return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="where the archives go ($OUT on the device machine)")
    p.add_argument("--work", default=None, help="scratch directory for logs (default: beside --out)")
    p.add_argument("--results-dir", default=str(ROOT / "results"), help="where the grids write their run records")
    p.add_argument("--total", type=float, default=530.0, help="seconds for all stages together")
    p.add_argument("--rehearse", action="store_true", help="the CPU rehearsal: tiny grids, the CPU as the device")
    p.add_argument("--only-long", default=None, help="run only the long grid's experiments whose name holds this")
    p.add_argument("--only-fair", default=None, help="run only the fair grid's experiments whose name holds this")
    p.add_argument("extra", nargs="*", help="overrides added to every run (the rehearsal makes them tiny)")
    return Evidence(p.parse_args(argv)).main()


if __name__ == "__main__":
    sys.exit(main())
