"""Executors: local workers, submitit (local / debug), and a requeued job resuming to the same result."""

import json
import os
import signal
import time

import pandas as pd
import pytest
import yaml

from nalkit.executors import ExperimentJob, _submitit_parameters
from nalkit.grid import expand_grid, load_grid
from nalkit.locks import acquire_lock, read_lock
from nalkit.records import read_status
from nalkit.runner import experiment_spec, run_grid
from nalkit.train import train

from gridlib import SMOKE, metrics, write_grid  # noqa: E402

pytestmark = pytest.mark.usefixtures("fashion_mnist")





def test_local_executor_runs_each_experiment_once_in_parallel(tmp_path):
    grid = write_grid(tmp_path / "g.yaml", tmp_path / "results", overrides={
        k: v for k, v in yaml.safe_load(SMOKE.read_text())["overrides"].items() if k != "run.threads"})
    summary = run_grid(grid, executor="local", workers=2)
    assert summary.ok and sorted(summary.table.state) == ["done", "done"]
    assert summary.table.experiment.is_unique
    for name in summary.table.experiment:
        run_dir = tmp_path / "results" / "runs" / name
        assert (run_dir / "experiment.ipynb").is_file()
        # no GPU here: each of the 2 workers gets cores // 2 torch threads
        env = json.loads((run_dir / "environment.json").read_text())
        assert env["torch_threads"] == max(1, env["cpu_count"] // 2) or env["device"].startswith("cuda")
    again = run_grid(grid, executor="local", workers=2)
    assert list(again.table.state) == ["skipped", "skipped"]


def test_submitit_local_executor_completes(tmp_path):
    grid = write_grid(tmp_path / "g.yaml", tmp_path / "results", notebook=None,
                      axes={"method": [{"method.name": "ce"}]}, slurm={"time_min": 5, "cpus": 1})
    summary = run_grid(grid, executor="submitit_local")
    assert summary.ok and list(summary.table.state) == ["done"]
    assert (tmp_path / "results" / "slurm").is_dir()  # submitit's logs and pickles


def test_requeued_job_resumes_to_the_uninterrupted_result(tmp_path):
    """What submitit does on a time-out: checkpoint() -> requeue -> the job runs again on the same spec."""
    grid_path = write_grid(tmp_path / "g.yaml", tmp_path / "results", notebook=None,
                           axes={"method": [{"method.name": "nal", "method.nal.lam": 0.5}]})
    grid = load_grid(grid_path)
    exp = grid.experiments[0]
    spec = experiment_spec(exp, grid)
    # the first attempt: killed after epoch 1 of 3 while holding the experiment's lock
    train(exp.config, exp.overrides, results_dir=grid.results_dir, run_dir=exp.run_dir, stop_after_epoch=1,
          progress=False)
    acquire_lock(exp.run_dir)
    job = ExperimentJob()
    delayed = job.checkpoint(spec)
    assert read_lock(exp.run_dir) is None, "checkpoint() frees the lock for the requeued task"
    assert delayed.function is job and delayed.args == (spec,)
    result = delayed.result()  # the requeued task
    assert result.state == "done" and result.requeues == 1
    assert read_status(exp.run_dir)["state"] == "complete"
    full = train(exp.config, exp.overrides, run_dir=tmp_path / "uninterrupted", progress=False)
    pd.testing.assert_frame_equal(metrics(exp.run_dir), metrics(full))


def test_debug_executor_and_slurm_parameters(tmp_path):
    grid = write_grid(tmp_path / "g.yaml", tmp_path / "results", notebook=None,
                      axes={"method": [{"method.name": "ce"}, {"method.name": "gce"}]})
    summary = run_grid(grid, executor="debug")
    assert summary.ok and sorted(summary.table.state) == ["done", "done"]
    params = _submitit_parameters({"partition": "gpu", "time_min": 90, "gpus": 1, "cpus": 8, "mem_gb": 32,
                                   "array_parallelism": 4, "slurm_account": "lab"}, "slurm")
    assert params == {"name": "nalkit", "timeout_min": 90, "gpus_per_node": 1, "cpus_per_task": 8, "mem_gb": 32,
                      "slurm_partition": "gpu", "slurm_array_parallelism": 4, "slurm_account": "lab"}


@pytest.mark.slow
def test_submitit_local_preemption_requeues_and_resumes(tmp_path):
    """A real preemption signal to a submitit LocalExecutor task: checkpoint, requeue, resume."""
    grid_path = write_grid(tmp_path / "g.yaml", tmp_path / "results", notebook=None,
                           axes={"method": [{"method.name": "ce"}]},
                           overrides={**yaml.safe_load(SMOKE.read_text())["overrides"], "optim.epochs": 40,
                                      "run.snapshot_epochs": [40]})
    import submitit

    from nalkit.executors import ExperimentJob as Job

    grid = load_grid(grid_path)
    exp = grid.experiments[0]
    executor = submitit.AutoExecutor(folder=tmp_path / "slurm", cluster="local")
    executor.update_parameters(timeout_min=10)
    job = executor.submit(Job(), experiment_spec(exp, grid))
    deadline = time.time() + 120
    while (read_status(exp.run_dir) if exp.run_dir.is_dir() else {}).get("epoch", 0) < 3:
        assert time.time() < deadline and not job.done(), "the job did not start training"
        time.sleep(0.2)
    # what Slurm does on preemption: signal the task (its pid is in the experiment's lock);
    # LocalJob._interrupt would signal submitit's controller instead, which does not forward USR2
    os.kill(read_lock(exp.run_dir)["pid"], signal.SIGUSR2)
    result = job.result()
    assert result.state == "done" and result.requeues == 1
    full = train(exp.config, exp.overrides, run_dir=tmp_path / "uninterrupted", progress=False)
    pd.testing.assert_frame_equal(metrics(exp.run_dir), metrics(full))
    assert expand_grid(grid_path)[0].name == exp.name


# --------------------------------------------------------------------------------------------
# Slurm's word, without a Slurm: fake squeue / sacct / scontrol on PATH (tests/test_slurm.py uses a real one)
# --------------------------------------------------------------------------------------------
def fake_slurm(tmp_path, monkeypatch, **scripts):
    """Put shell scripts named like Slurm's commands first on PATH; each prints its file ``<name>.out``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in scripts.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return bin_dir


def tiny_spec(tmp_path, name):
    from nalkit.experiment import ExperimentSpec

    return ExperimentSpec(name=name, config="c.yaml", overrides=[], config_hash="h", run_dir=str(tmp_path / name),
                          results_dir=str(tmp_path), notebook=None, repo_root=str(tmp_path))


def test_follow_reports_requeue_then_result_cancel_and_death(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from nalkit import slurm
    from nalkit.experiment import ExperimentResult, State
    from nalkit.runner import experiment_state

    queue = tmp_path / "queue.txt"
    fake_slurm(tmp_path, monkeypatch, squeue=f"cat {queue}",
               sacct='echo "Slurm accounting storage is disabled"; exit 1')
    monkeypatch.setattr(slurm, "POLL_S", 0.01)
    monkeypatch.setattr(slurm, "RESULT_GRACE_S", 0.0)
    jobs, specs = [], []
    for i in range(3):
        specs.append(tiny_spec(tmp_path, f"exp{i}"))
        folder = tmp_path / "slurm"
        jobs.append(SimpleNamespace(job_id=f"5_{i}", paths=SimpleNamespace(
            result_pickle=folder / f"5_{i}_result.pkl", stderr=folder / f"5_{i}_log.err")))
    done = ExperimentResult("exp0", State.DONE, 1.0, 0.7, 0.7)
    events = slurm.follow(jobs, specs, lambda job, spec: done)

    queue.write_text("5_0 COMPLETING 1 None\n5_1 RUNNING 0 None\n5_2 RUNNING 0 None\n")  # 5_0 requeued
    ev = next(events)
    assert (ev.name, ev.state, ev.requeues) == ("exp0", State.REQUEUED, 1)
    assert "job 5_0 requeued by Slurm" in ev.error and "waiting for it to run again" in ev.error
    queue.write_text("5_0 RUNNING 1 None\n5_1 RUNNING 0 None\n5_2 RUNNING 0 None\n")
    ev = next(events)
    assert (ev.name, ev.state) == ("exp0", State.RUNNING) and "running again (restart 1)" in ev.error
    queue.write_text("5_0 RUNNING 1 None\n5_1 CANCELLED 0 None\n")  # 5_1 scancel'd, 5_2 gone without a trace
    ev = next(events)
    assert (ev.name, ev.state) == ("exp1", State.CANCELLED) and "job 5_1 cancelled" in ev.error
    stop = json.loads((tmp_path / "exp1" / "stopped.json").read_text())
    assert stop["state"] == "cancelled" and stop["job"] == "5_1" and stop["slurm_state"] == "CANCELLED"
    assert experiment_state(tmp_path / "exp1")[0] == State.CANCELLED
    ev = next(events)
    assert (ev.name, ev.state) == ("exp2", State.FAILED) and "job 5_2 ended (no longer known to squeue)" in ev.error
    assert json.loads((tmp_path / "exp2" / "failure.json").read_text())["type"] == "slurm None"
    assert experiment_state(tmp_path / "exp2")[0] == State.FAILED
    jobs[0].paths.result_pickle.parent.mkdir(exist_ok=True)
    jobs[0].paths.result_pickle.write_bytes(b"")  # the requeued task finished: its result counts
    ev = next(events)
    assert (ev.name, ev.state, ev.requeues) == ("exp0", State.DONE, 1)
    with pytest.raises(StopIteration):
        next(events)
    assert slurm.Queue().describe() == ("following the jobs with squeue "
                                        "(sacct unavailable: Slurm accounting storage is disabled)")


@pytest.mark.parametrize(("job_state", "restarts", "expected"), [
    ("COMPLETING", 2, "requeued"),  # the restart count went up: scontrol requeue, preemption
    ("COMPLETING", 1, "cancelled"),  # ending, not requeued: scancel, time limit
    ("RUNNING", 1, None),  # someone else's signal: the error stays the experiment's
])
def test_why_stopped_asks_the_controller(tmp_path, monkeypatch, job_state, restarts, expected):
    from nalkit.slurm import StopSignals, why_stopped

    fake_slurm(tmp_path, monkeypatch, scontrol=f'echo "JobId=9 JobState={job_state} Restarts={restarts} Reason=None"')
    monkeypatch.setenv("SLURM_JOB_ID", "9")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")  # this is the job's second incarnation
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    signals = StopSignals()
    assert why_stopped(signals) is None  # no signal: nothing to ask
    signals.received.append(("SIGTERM", time.time()))
    got = why_stopped(signals)
    assert (got and str(got[0])) == expected


def test_a_scheduler_stop_is_recorded_instead_of_a_failure(tmp_path):
    from nalkit.experiment import State, execute_experiment
    from nalkit.runner import experiment_state, status_table

    grid = write_grid(tmp_path / "g.yaml", tmp_path / "results", notebook=None,
                      axes={"data": [{"data.name": "cifar10", "data.root": str(tmp_path / "no-data")}]})
    g = load_grid(grid)
    spec = experiment_spec(g.experiments[0], g)
    # the training raises (here: no data) while the scheduler stops the job: not the experiment's failure
    res = execute_experiment(spec, stopped=lambda: (State.REQUEUED, "job 7_1 requeued by Slurm (SIGTERM, restart 1)"))
    assert res.state == State.REQUEUED and not (g.experiments[0].run_dir / "failure.json").exists()
    state, detail = experiment_state(spec.run_dir)
    assert state == State.REQUEUED and "job 7_1 requeued by Slurm" in detail
    assert status_table(tmp_path / "results").state.tolist() == ["requeued"]
    # the same error without a scheduler's stop is a failure, and replaces the stop record
    res = execute_experiment(spec, stopped=lambda: None)
    assert res.state == State.FAILED and not (g.experiments[0].run_dir / "stopped.json").exists()
    assert experiment_state(spec.run_dir)[0] == State.FAILED


@pytest.mark.timeout(240)
def test_local_workers_stop_when_their_runner_is_killed(tmp_path):
    """A runner killed with SIGTERM leaves no worker behind to train on (and write records with stale code): the
    worker holding an experiment's lock dies with it, and the grid run again resumes the experiment."""
    import subprocess
    import sys

    overrides = {**yaml.safe_load(SMOKE.read_text())["overrides"], "optim.epochs": 40, "optim.restart_period": 10}
    grid = write_grid(tmp_path / "g.yaml", tmp_path / "results", overrides=overrides, notebook=None)
    runner = subprocess.Popen([sys.executable, "-m", "nalkit.cli", "run", str(grid), "--executor", "local",
                               "--workers", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = tmp_path / "results" / "runs"
    holders = []
    for _ in range(600):  # until both workers hold a lock and a first epoch is recorded
        holders = [read_lock(d) for d in runs.iterdir()] if runs.is_dir() else []
        if len([h for h in holders if h]) == 2 and list(runs.glob("*/ckpt-*.pt")):
            break
        time.sleep(0.2)
    pids = [h["pid"] for h in holders if h]
    assert len(pids) == 2 and runner.pid not in pids
    runner.send_signal(signal.SIGTERM)
    runner.wait(timeout=30)
    deadline = time.time() + 30
    while time.time() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    assert not any(_alive(p) for p in pids), "a worker outlived its runner"
    statuses = [read_status(d).get("state") for d in runs.iterdir()]
    assert "complete" not in statuses  # stopped mid-run, resumable


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by init) is not alive
        return open(f"/proc/{pid}/stat").read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
