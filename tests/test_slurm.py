"""The Slurm executor on a real Slurm: a job array, `scontrol requeue`, the time limit, `scancel`, `nalkit status`.

Marked ``slurm``. They run where ``sinfo`` answers: ``make test-slurm`` brings up a single-node Slurm first
(tools/slurm-up.sh: root on Debian), as does ``NALKIT_SLURM_UP=1 pytest -m slurm``; elsewhere they are
skipped, saying why. ``NALKIT_SLURM_PARTITION`` names the partition (default: the cluster's default).

Each test runs ``nalkit run GRID --executor slurm`` as a user would, in a subprocess, and acts on its jobs
while it waits. Every job is tiny and single-threaded: a 1,000-image Fashion-MNIST subset and a width-8 CNN.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from nalkit.grid import load_grid
from nalkit.records import read_metrics
from nalkit.runner import status_table
from nalkit.train import train

from gridlib import REPO, metrics, write_grid  # noqa: E402

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("fashion_mnist")]

# 60 epochs of ~0.3-0.6 s: long enough to act on a running task, short enough to wait for
LONG = {"data.train_subset": 1000, "data.test_subset": 200, "model.width": 8, "optim.epochs": 60,
        "optim.batch_size": 32, "optim.restart_period": 20, "method.nal.es": 2, "method.selc.start": 2,
        "run.eval_every": 10, "run.snapshot_epochs": [60], "run.threads": 1}
NAL = {"method": [{"method.name": "nal", "method.nal.lam": 0.5}]}
CE_NAL = {"method": [{"method.name": "ce"}, {"method.name": "nal", "method.nal.lam": 0.5}]}


def _sinfo() -> str | None:
    """Why Slurm cannot be used here, or None when sinfo answers and sbatch is there."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "no Slurm here (sinfo/sbatch not on PATH)"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%P %T"], capture_output=True, text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 30 s"
    if out.returncode != 0:
        return f"sinfo failed: {(out.stderr.strip().splitlines() or ['?'])[-1]}"
    if not any(state in ("idle", "mixed", "allocated") for _, state in
               (line.split() for line in out.stdout.splitlines() if len(line.split()) == 2)):
        return f"no usable Slurm node (sinfo: {out.stdout.strip()!r})"
    return None


@pytest.fixture(scope="session")
def partition():
    """The partition to submit to; brings Slurm up first when NALKIT_SLURM_UP=1 (make test-slurm)."""
    why = _sinfo()
    if why and os.environ.get("NALKIT_SLURM_UP") == "1":
        up = subprocess.run(["bash", str(REPO / "tools" / "slurm-up.sh")], capture_output=True, text=True,
                            timeout=600, check=False)
        assert up.returncode == 0, f"tools/slurm-up.sh failed:\n{up.stdout}\n{up.stderr}"
        why = _sinfo()
    if why:
        pytest.skip(f"{why}: `make test-slurm` brings up a single-node Slurm (root on Debian), "
                    "or run where sinfo answers")
    if os.environ.get("NALKIT_SLURM_PARTITION"):
        return os.environ["NALKIT_SLURM_PARTITION"]
    names = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, check=True).stdout.split()
    return next((p.rstrip("*") for p in names if p.endswith("*")), names[0])


class Runner:
    """``nalkit run GRID --executor slurm`` in a subprocess, from the repository root (the jobs import
    this checkout); keeps its output lines with the second each was seen."""

    BAR = re.compile(r"\S+:\s+\d+%\|[^|]*\|\s*\d+/\d+ \[[^\]]*\]")  # a progress-bar redraw

    def __init__(self, grid: Path, partition: str, *args: str) -> None:
        self.t0 = time.time()
        self.lines: list[tuple[float, str]] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nalkit.cli", "run", str(grid), "--executor", "slurm", "--partition", partition,
             *args],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:  # text mode: "\r" of the progress bar also ends a line
            text = self.BAR.sub("", line).strip()
            if text:
                self.lines.append((time.time() - self.t0, text))

    def wait(self, timeout: float) -> int:
        rc = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return rc

    @property
    def text(self) -> str:
        return "\n".join(text for _, text in self.lines)

    def transcript(self, title: str) -> str:
        return f"--- {title}\n" + "\n".join(f"{t:6.1f} s  {text}" for t, text in self.lines)


def wait_for(what: str, predicate, timeout: float, runner: Runner | None = None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        if runner is not None and runner.proc.poll() is not None:
            pytest.fail(f"the runner ended before {what}:\n{runner.transcript('runner')}")
        time.sleep(0.5)
    pytest.fail(f"{what}: not within {timeout:.0f} s" + (f"\n{runner.transcript('runner')}" if runner else ""))


def epoch(run_dir: Path) -> int:
    try:
        return json.loads((run_dir / "status.json").read_text()).get("epoch", 0)
    except (FileNotFoundError, json.JSONDecodeError):
        return 0


def task_of(run_dir: Path) -> str | None:
    """The Slurm job (array task) holding the experiment's lock."""
    try:
        return json.loads((run_dir / ".lock").read_text()).get("job")
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def states(results: Path) -> dict[str, tuple[str, str]]:
    """``nalkit status``: experiment -> (state, detail)."""
    table = status_table(results)
    return {r.experiment: (r.state, r.detail) for r in table.itertuples()}


def summary_states(runner: Runner) -> dict[str, str]:
    """The runner's final table: experiment -> state."""
    out = {}
    for _, text in runner.lines:
        parts = text.split()
        if len(parts) >= 2 and parts[0].startswith("fashion_mnist-") and parts[1] in (
                "done", "failed", "cancelled", "skipped"):
            out[parts[0]] = parts[1]
    return out


def with_timing(run_dir: Path) -> pd.DataFrame:
    return read_metrics(run_dir, verify=False)  # also a stopped run's, as it was left


def assert_resumed(before: pd.DataFrame, run_dir: Path) -> None:
    """The epochs recorded before the stop are in the final record as they were, timings included: the run
    resumed from its checkpoint (a restart from scratch would have measured them again)."""
    after = with_timing(run_dir)
    assert len(before) > 0 and list(after.epoch) == list(range(1, len(after) + 1))
    pd.testing.assert_frame_equal(after.iloc[:len(before)].reset_index(drop=True), before)


@pytest.fixture(scope="module")
def long_grid(tmp_path_factory):
    """The 60-epoch CE and NAL experiments, and their uninterrupted runs (trained here, in this process).

    Returns ({method: experiment}, {method: metrics without timings}, NAL's metrics with timings).
    """
    tmp = tmp_path_factory.mktemp("reference")
    grid = write_grid(tmp / "long.yaml", tmp / "unused", name="long", overrides=LONG, axes=CE_NAL)
    exps = {e.cfg.method.name: e for e in load_grid(grid).experiments}
    runs = {m: train(e.config, e.overrides, run_dir=tmp / m, progress=False) for m, e in exps.items()}
    return exps, {m: metrics(r) for m, r in runs.items()}, with_timing(runs["nal"])


def long_run(tmp_path: Path, long_grid) -> tuple[Path, Path, dict[str, Path]]:
    """(grid file, results dir, {method: run dir}) of the 60-epoch CE and NAL runs, in a fresh results dir."""
    results = tmp_path / "results"
    grid = write_grid(tmp_path / "long.yaml", results, name="long", overrides=LONG, axes=CE_NAL)
    return grid, results, {m: results / "runs" / e.name for m, e in long_grid[0].items()}


@pytest.mark.timeout(300)
def test_smoke_grid_runs_as_a_job_array(partition, tmp_path):
    results = tmp_path / "results"
    grid = write_grid(tmp_path / "smoke.yaml", results)
    runner = Runner(grid, partition)
    assert runner.wait(timeout=280) == 0, runner.transcript("runner")
    print(runner.transcript("nalkit run smoke --executor slurm"))
    out = runner.text
    assert re.search(r"submitted 2 jobs \(slurm\): (\d+)_0 \.\.\. \1_1", out), out
    # accounting is off on this cluster: said once, and no warning per poll
    assert out.count("following the jobs with squeue") == 1 and "Bypassing" not in out and "sacct error" not in out
    assert "grid smoke: 2 done" in out
    status = states(results)
    assert {name: s for name, (s, _) in status.items()} == summary_states(runner) == dict.fromkeys(status, "done")
    for name in status:
        assert (results / "runs" / name / "experiment.ipynb").is_file()


@pytest.mark.timeout(600)
def test_scontrol_requeue_resumes_to_the_uninterrupted_result(partition, tmp_path, long_grid):
    """The issue's case: two array tasks, one requeued by `scontrol requeue` while it trains."""
    grid, results, run_dirs = long_run(tmp_path, long_grid)
    run_dir, other = run_dirs["nal"], run_dirs["ce"]
    runner = Runner(grid, partition)
    wait_for("epoch 3", lambda: epoch(run_dir) >= 3, 240, runner)
    job = task_of(run_dir)
    subprocess.run(["scontrol", "requeue", job], check=True)  # what an administrator does (or a preemption)
    requeued_at = time.time() - runner.t0
    # nalkit status while the task waits in the queue
    state, detail = wait_for("status requeued", lambda: (states(results).get(run_dir.name, ("",))[0] == "requeued"
                                                         and states(results)[run_dir.name]), 60, runner)
    assert f"job {job} requeued by Slurm" in detail, detail
    before = with_timing(run_dir)
    assert runner.wait(timeout=480) == 0, runner.transcript("runner")
    print(runner.transcript(f"nalkit run long --executor slurm; `scontrol requeue {job}` at {requeued_at:.1f} s"))
    print(f"nalkit status while requeued: {state}  {detail}")
    out = runner.text
    name = run_dir.name
    assert re.search(r"submitted 2 jobs \(slurm\): (\d+)_0 \.\.\. \1_1", out) and job.endswith("_1"), out
    assert re.search(rf"requeued +{name}  job {job} requeued by Slurm at epoch \d+/60 \(restart 1\)", out), out
    assert re.search(rf"running +{name}  job {job} running again \(restart 1\)", out), out
    assert re.search(rf"done +{name} .*\(requeued 1x\)", out) and re.search(rf"done +{other.name} ", out), out
    assert "grid long: 2 done" in out and "FAILED" not in out and not (run_dir / "failure.json").exists()
    # the kernel was killed by the requeue's SIGTERM, and that was not recorded as a failure
    log = (results / "slurm" / f"{job}_0_log.err").read_text()
    assert "DUE TO JOB REQUEUE" in log and "Kernel died" in log
    assert_resumed(before, run_dir)
    for method, rd in run_dirs.items():
        pd.testing.assert_frame_equal(metrics(rd), long_grid[1][method])
    assert {n: s for n, (s, _) in states(results).items()} == summary_states(runner)
    status = subprocess.run([sys.executable, "-m", "nalkit.cli", "status", str(results)], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout
    assert "long: 2 experiments: 2 done, 0 running, 0 requeued, 0 failed, 0 cancelled" in status, status


@pytest.mark.timeout(600)
def test_preemption_requeues_and_resumes(partition, tmp_path, long_grid):
    """A job of a higher-priority partition preempts both tasks (PreemptMode=REQUEUE): both resume."""
    urgent = os.environ.get("NALKIT_SLURM_PREEMPT_PARTITION", "urgent")
    cpus = subprocess.run(["sinfo", "-h", "-p", urgent, "-o", "%c"], capture_output=True, text=True,
                          check=False).stdout.split()
    if not cpus:
        pytest.skip(f"no partition {urgent!r} whose jobs preempt {partition!r} (tools/slurm-up.sh makes one; "
                    "NALKIT_SLURM_PREEMPT_PARTITION names another)")
    grid, results, run_dirs = long_run(tmp_path, long_grid)
    runner = Runner(grid, partition)
    wait_for("epoch 3 of both", lambda: min(epoch(rd) for rd in run_dirs.values()) >= 3, 240, runner)
    jobs = {m: task_of(rd) for m, rd in run_dirs.items()}
    befores = {m: with_timing(rd) for m, rd in run_dirs.items()}
    # the whole node for 10 s: both tasks must make room
    subprocess.run(["sbatch", "-p", urgent, "-c", cpus[0], "-o", "/dev/null", "--wrap", "sleep 10"], check=True,
                   capture_output=True)
    preempted_at = time.time() - runner.t0
    assert runner.wait(timeout=480) == 0, runner.transcript("runner")
    print(runner.transcript(f"nalkit run long --executor slurm; a job of partition {urgent} at {preempted_at:.1f} s"))
    out = runner.text
    for method, rd in run_dirs.items():
        assert re.search(rf"requeued +{rd.name}  job {jobs[method]} requeued by Slurm at epoch", out), out
        assert re.search(rf"done +{rd.name} .*\(requeued 1x\)", out), out
        assert "DUE TO PREEMPTION" in (results / "slurm" / f"{jobs[method]}_0_log.err").read_text()
        # the epochs before the preemption were kept (a later one may have finished meanwhile)
        after = with_timing(rd)
        pd.testing.assert_frame_equal(after.iloc[:len(befores[method])].reset_index(drop=True), befores[method])
        pd.testing.assert_frame_equal(metrics(rd), long_grid[1][method])
    assert "grid long: 2 done" in out and "FAILED" not in out
    assert {n: s for n, (s, _) in states(results).items()} == summary_states(runner)


@pytest.mark.timeout(600)
def test_scancel_is_reported_cancelled_and_a_rerun_resumes_it(partition, tmp_path, long_grid):
    """`scancel` of one array task: it is cancelled (not failed), the other completes, a rerun resumes it.

    Without notebooks (training in the job's own process, which SIGTERM stops at once); the rerun with
    notebooks resumes the cancelled run and executes both notebooks.
    """
    grid, results, run_dirs = long_run(tmp_path, long_grid)
    run_dir, other = run_dirs["nal"], run_dirs["ce"]
    runner = Runner(grid, partition, "--no-notebook")
    wait_for("epoch 3", lambda: epoch(run_dir) >= 3, 240, runner)
    job = task_of(run_dir)
    subprocess.run(["scancel", job], check=True)
    cancelled_at = time.time() - runner.t0
    assert runner.wait(timeout=400) == 1, runner.transcript("runner")  # the grid is not complete
    print(runner.transcript(f"nalkit run long --executor slurm --no-notebook; `scancel {job}` at {cancelled_at:.1f} s"))
    out, name = runner.text, run_dir.name
    assert re.search(rf"cancelled {name}  job {job} cancelled at epoch \d+/60; rerun the grid to resume", out), out
    assert "grid long: 1 cancelled, 1 done (run the same command again to resume)" in out, out
    assert "FAILED" not in out and not (run_dir / "failure.json").exists()
    assert "(not a failure of the experiment)" in (results / "slurm" / f"{job}_0_log.err").read_text()
    state, detail = states(results)[name]
    print(f"nalkit status after scancel: {state}  {detail}")
    assert f"job {job} cancelled" in detail
    assert {n: s for n, (s, _) in states(results).items()} == summary_states(runner) == {
        name: "cancelled", other.name: "done"}
    before = with_timing(run_dir)

    again = Runner(grid, partition)
    assert again.wait(timeout=400) == 0, again.transcript("rerun")
    print(again.transcript("the same command again"))
    assert "(0 complete, 2 to run)" in again.text  # both lack their executed notebook
    assert re.search(rf"done +{name} ", again.text) and "grid long: 2 done" in again.text
    assert_resumed(before, run_dir)
    pd.testing.assert_frame_equal(metrics(run_dir), long_grid[1]["nal"])
    assert states(results)[name][0] == "done" and not (run_dir / "stopped.json").exists()
    assert all((rd / "experiment.ipynb").is_file() for rd in run_dirs.values())


@pytest.mark.timeout(900)
def test_time_limit_checkpoints_and_requeues_to_completion(partition, tmp_path, long_grid):
    """The job's time limit (--time-min 3) with submitit's signal 120 s before it: Slurm sends USR2 30-60 s
    after the start (it looks at time limits every 30 s and signals early rather than late), submitit
    checkpoints and requeues the task, and the requeued task resumes from the checkpoint, as often as it
    takes."""
    # about 100 s of training at this machine's current speed (the 60-epoch NAL reference's epochs):
    # longer than the first incarnation's minute, and a few incarnations in all
    timing = long_grid[2]
    per_epoch = 1.3 * float((timing.seconds + timing.eval_seconds).mean())  # + checkpoint writes
    epochs = int(min(600, max(150, 100 / per_epoch)))
    print(f"{per_epoch:.2f} s per epoch: {epochs} epochs")
    results = tmp_path / "results"
    grid = write_grid(tmp_path / "tl.yaml", results, name="tl", axes=NAL,
                      overrides={**LONG, "optim.epochs": epochs, "optim.restart_period": 50,
                                 "run.snapshot_epochs": [epochs]},
                      slurm={"time_min": 3, "slurm_signal_delay_s": 120, "slurm_max_num_timeout": 10})
    run_dir = results / "runs" / load_grid(grid).experiments[0].name
    runner = Runner(grid, partition)
    wait_for("requeued", lambda: (run_dir / "stopped.json").is_file(), 300, runner)
    stop = json.loads((run_dir / "stopped.json").read_text())
    before = with_timing(run_dir)
    assert runner.wait(timeout=800) == 0, runner.transcript("runner")
    print(runner.transcript("nalkit run tl --executor slurm --time-min 3 (USR2 120 s before the limit)"))
    print(f"stopped.json at the first requeue: {stop}")
    out, name = runner.text, run_dir.name
    assert stop["state"] == "requeued" and "checkpointed and requeued by submitit" in stop["detail"]
    assert re.search(rf"requeued +{name}  job \d+ requeued by Slurm at epoch \d+/{epochs}", out), out
    requeues = int(re.search(rf"done +{name} .*\(requeued (\d+)x\)", out).group(1))
    assert 1 <= requeues <= 10 and "grid tl: 1 done" in out and "FAILED" not in out
    log = "".join(p.read_text() for p in (results / "slurm").glob("*_log.out"))
    assert "Job has timed out" in log and "Requeued job" in log
    assert_resumed(before, run_dir)
    assert states(results)[name][0] == "done"
