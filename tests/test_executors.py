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
