"""The experiment runner end to end: grid -> papermill -> trainer -> run record + executed notebook.

Every run is tiny (configs/grids/smoke.yaml: 300 training images, width-8 CNN, 3 epochs); the cost
is papermill's kernel start, a few seconds per executed notebook.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from nalkit.cli import main
from nalkit.grid import GridError, expand_grid, load_grid
from nalkit.locks import LockHeld, acquire_lock, read_lock, release_lock
from nalkit.runner import print_status, run_grid, status_table
from nalkit.train import train

from gridlib import REPO, metrics, write_grid  # noqa: E402

pytestmark = pytest.mark.usefixtures("fashion_mnist")




def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: the pid is free
    return proc.pid


def write_lock(run_dir: Path, pid: int) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / ".lock").write_text(json.dumps({"host": socket.gethostname(), "pid": pid, "started": "earlier"}))



@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The smoke grid run once through papermill: (grid file, results dir, summary)."""
    tmp = tmp_path_factory.mktemp("smoke")
    grid = write_grid(tmp / "smoke.yaml", tmp / "results")
    return grid, tmp / "results", run_grid(grid)


def test_smoke_grid_runs_end_to_end(smoke, capsys):
    grid, results, summary = smoke
    assert summary.ok
    assert list(summary.table.state) == ["done", "done"]
    assert (summary.table.final_test_acc > 0.1).all()
    for name in summary.table.experiment:
        run_dir = results / "runs" / name
        assert json.loads((run_dir / "status.json").read_text())["state"] == "complete"
        nb = nbformat.read(run_dir / "experiment.ipynb", as_version=4)
        assert nb.cells[0].source.splitlines()[0] == f"# Experiment: {name}"
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
        assert any("image/png" in o.get("data", {}) for o in outputs), "the accuracy figure is missing"
        assert not any(o.get("output_type") == "error" for o in outputs)
        assert not (run_dir / ".lock").exists() and not (run_dir / "failure.json").exists()
        assert not (run_dir / ".experiment.partial.ipynb").exists()
    nal = next(n for n in summary.table.experiment if "-nal-" in n)
    nb = nbformat.read(results / "runs" / nal / "experiment.ipynb", as_version=4)
    assert sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs) == 2
    manifest = json.loads((results / "grids" / "smoke.json").read_text())
    assert [e["name"] for e in manifest["experiments"]] == list(summary.table.experiment)

    # a second run skips both: nothing is re-executed
    mtimes = {p: p.stat().st_mtime_ns for p in results.glob("runs/*/experiment.ipynb")}
    mtimes[results / "grids" / "smoke.json"] = (results / "grids" / "smoke.json").stat().st_mtime_ns
    again = run_grid(grid)
    assert again.ok and list(again.table.state) == ["skipped", "skipped"]
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes, "a rerun rewrote a notebook or the grid manifest"
    capsys.readouterr()
    table = print_status(results)
    assert list(table.state) == ["done", "done"]
    assert "2 done" in capsys.readouterr().out


def test_incomplete_run_is_resumed_to_the_uninterrupted_result(smoke, tmp_path):
    _, smoke_results, summary = smoke
    grid = write_grid(tmp_path / "g.yaml", tmp_path / "results")
    exp = next(e for e in expand_grid(grid) if "-ce-" in e.name)
    train(exp.config, exp.overrides, results_dir=tmp_path / "results", run_dir=exp.run_dir, stop_after_epoch=1,
          progress=False)
    assert status_table(tmp_path / "results").set_index("experiment").state.to_dict() == {exp.name: "interrupted"}
    result = run_grid(grid, only="-ce-")
    assert result.ok and list(result.table.state) == ["done"]
    pd.testing.assert_frame_equal(metrics(exp.run_dir), metrics(smoke_results / "runs" / exp.name))


def test_failure_is_recorded_and_the_others_complete(tmp_path):
    grid = write_grid(tmp_path / "g.yaml", tmp_path / "results",
                      axes={"data": [{}, {"data.name": "cifar10", "data.root": str(tmp_path / "no-data")}]})
    good, bad = expand_grid(grid)
    write_lock(good.run_dir, dead_pid())  # a stale lock (same host, dead process) is taken over
    summary = run_grid(grid)
    assert not summary.ok
    states = dict(zip(summary.table.experiment, summary.table.state))
    assert states == {good.name: "done", bad.name: "failed"}
    err = summary.table.set_index("experiment").error[bad.name]
    assert "DatasetNotFoundError" in err and "CIFAR" in err
    failure = json.loads((bad.run_dir / "failure.json").read_text())
    assert "DatasetNotFoundError" in failure["traceback"] and "prepare_data" in failure["traceback"]
    assert "\x1b[" not in failure["traceback"]
    assert (bad.run_dir / "experiment-failed.ipynb").is_file() and not (bad.run_dir / "experiment.ipynb").exists()
    assert not (bad.run_dir / ".lock").exists() and not (good.run_dir / ".lock").exists()
    assert (good.run_dir / "experiment.ipynb").is_file()
    st = status_table(tmp_path / "results").set_index("experiment").state
    assert st[good.name] == "done" and st[bad.name] == "failed"
    # the command line exits 1 when an experiment failed
    assert main(["run", str(grid), "--only", "cifar10"]) == 1


def test_an_experiment_locked_by_a_live_process_is_skipped(tmp_path, capsys):
    grid = write_grid(tmp_path / "g.yaml", tmp_path / "results")
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        exps = expand_grid(grid)
        for e in exps:
            write_lock(e.run_dir, holder.pid)
        summary = run_grid(grid)
        assert summary.ok and list(summary.table.state) == ["skipped", "skipped"]
        assert summary.table.error.str.contains(f"running elsewhere .*pid {holder.pid}").all()
        for e in exps:
            assert not (e.run_dir / "status.json").exists() and not (e.run_dir / "experiment.ipynb").exists()
            assert read_lock(e.run_dir)["pid"] == holder.pid, "someone else's lock is never removed"
        assert list(status_table(tmp_path / "results").state) == ["running", "running"]
    finally:
        holder.kill()
        holder.wait()
    assert list(status_table(tmp_path / "results").state) == ["queued", "queued"]


def test_lock_protocol(tmp_path):
    run_dir = tmp_path / "run"
    path = acquire_lock(run_dir)
    me = read_lock(run_dir)
    assert me["pid"] == os.getpid() and me["host"] == socket.gethostname() and path.name == ".lock"
    with pytest.raises(LockHeld, match=f"pid {os.getpid()}"):
        acquire_lock(run_dir)  # held by a live process (this one)
    release_lock(run_dir)
    assert not path.exists()
    write_lock(run_dir, dead_pid())
    acquire_lock(run_dir)
    assert read_lock(run_dir)["pid"] == os.getpid()
    release_lock(run_dir)
    (run_dir / ".lock").write_text(json.dumps({"host": "another-host", "pid": 1, "started": "x"}))
    with pytest.raises(LockHeld, match="another-host"):
        acquire_lock(run_dir)
    release_lock(run_dir)  # not ours: kept
    assert (run_dir / ".lock").exists()


@pytest.mark.parametrize("changes, message", [
    ({"axes": {"method": []}}, "axis 'method' must be a non-empty list"),
    ({"configs": ["configs/fmnist/nope.yaml"]}, "nope.yaml' does not exist"),
    ({"configs": []}, "'configs' must be a non-empty list"),
    ({"axes": {"method": [{"method.lamda": 1.0}]}}, "unknown key 'method.lamda' .*did you mean 'method.nal.lam'"),
    ({"axes": {"noise": [{"noise.rate": 1.5}]}}, r"noise.rate=1.5 is outside \[0, 1\]"),
    ({"axes": {"method": [{"method.name": "ce"}, {"method.name": "ce"}]}}, "same run .*remove the duplicate"),
    ({"axes": {"a": [{"method.nal.lam": 1.0}], "b": [{"method.nal.lam": 2.0}]}},
     "axes 'a' and 'b' both set method.nal.lam"),
    ({"axis": {}}, "unknown key.*'axis'"),
    ({"notebook": "book/missing.ipynb"}, "notebook 'book/missing.ipynb' does not exist"),
    ({"overrides": "optim.epochs=3"}, "expected a mapping"),
    ({"slurm": {"partition": "gpu", "walltime": 3}}, "unknown slurm key"),
])
def test_bad_grid_files_fail_before_anything_is_written(tmp_path, changes, message):
    grid = write_grid(tmp_path / "bad.yaml", tmp_path / "results", **changes)
    with pytest.raises(GridError, match=message):
        run_grid(grid)
    assert not (tmp_path / "results").exists()


def test_grid_errors_name_the_file_and_the_cli_reports_them(tmp_path, capsys):
    with pytest.raises(GridError, match="does not exist"):
        load_grid(tmp_path / "missing.yaml")
    (tmp_path / "broken.yaml").write_text("axes: [unclosed\n")
    with pytest.raises(GridError, match="not valid YAML"):
        load_grid(tmp_path / "broken.yaml")
    grid = write_grid(tmp_path / "g.yaml", tmp_path / "results")
    with pytest.raises(GridError, match="matches none of the 2 experiments"):
        run_grid(grid, only="no-such-run")
    assert main(["run", str(tmp_path / "broken.yaml")]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


def test_default_grid_expands_to_the_documented_experiments():
    grid = load_grid(REPO / "configs/grids/default.yaml")
    names = [e.name for e in grid.experiments]
    assert len(names) == len(set(names)) == 3 * 6 * 5  # settings x methods x seeds
    assert all(e.run_dir.parent == grid.results_dir / "runs" for e in grid.experiments)
    # overrides come out in grid order (seed, noise, method) and read back as the values written
    nal = next(e for e in grid.experiments if e.cfg.method.name == "nal")
    keys = [o.split("=")[0] for o in nal.overrides]
    assert keys.index("run.seed") < keys.index("noise.mode") < keys.index("method.name")
    # lambda comes from configs/fmnist/cpu.yaml, and it is the one the paper's selection protocol chooses from the
    # committed records of the lambda grid (noisy validation accuracy, never the test set)
    from nalkit.results import load_runs, select_lambda

    sweep = {e.name for e in load_grid(REPO / "configs/grids/lambda.yaml").experiments}
    records = load_runs(REPO / "results" / "runs", complete_only=True).runs
    assert not any("lam" in o for o in nal.overrides)
    assert nal.cfg.method.nal.lam == select_lambda(records[records.run.isin(sweep)]).chosen
    # every experiment is a committed run record: `make book` retrains nothing
    committed = {p.name for p in (REPO / "results" / "runs").iterdir()}
    assert set(names) <= committed, sorted(set(names) - committed)[:3]
    # seeds vary slowest: the first 18 experiments are seed 0
    assert {e.cfg.run.seed for e in grid.experiments[:18]} == {0}
