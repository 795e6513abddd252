"""NAL's attention controls (method.nal.attention_mode): one learned tau for all samples, one per given class,
and full NAL's mean tau per epoch. Each keeps what it says and drops the per-sample part."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from nalkit.cli import main
from nalkit.config import ConfigError
from nalkit.experiment import is_complete
from nalkit.grid import load_grid
from nalkit.records import read_metrics
from nalkit.results import load_arrays, load_runs
from nalkit.results.load import tau_schedule_override
from nalkit.runner import run_grid
from nalkit.train import train

from test_train import TIMING, tiny

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("fashion_mnist")


def test_a_global_tau_is_one_learned_value_and_resumes_exactly(tmp_path):
    cfg = tiny("nal", **{"method.nal.attention_mode": "global"})
    full = train(cfg, results_dir=tmp_path / "a")
    a = load_arrays(full)
    batches = -(-300 // 32)  # the scalar is updated after every batch: at most one value per batch
    for e in (1, 4):
        assert len(np.unique(a[f"tau_logit_e{e}"])) <= batches
    assert np.median(a["tau_logit_e1"]) != np.median(a["tau_logit_e4"])  # it is learned
    train(cfg, results_dir=tmp_path / "b", stop_after_epoch=2)
    resumed = train(cfg, results_dir=tmp_path / "b")
    pd.testing.assert_frame_equal(*(read_metrics(r).drop(columns=TIMING) for r in (full, resumed)))


def test_a_per_class_tau_is_shared_within_each_given_class(tmp_path):
    a = load_arrays(train(tiny("nal", **{"method.nal.attention_mode": "class"}), results_dir=tmp_path))
    s = pd.Series(a["tau_logit_e4"]).groupby(a["noisy_labels"])
    # a class's tau moves after every batch: at most one value per batch within a class, ten classes apart
    assert (s.nunique() <= -(-300 // 32)).all() and s.median().nunique() == 10
    assert len(np.unique(a["tau_logit_e4"])) > 10


def test_the_schedule_control_takes_full_nals_mean_tau_per_epoch(tmp_path, capsys):
    schedule = {"method.nal.attention_mode": "schedule"}
    # the trainer reads no other run's record: without the tau list it refuses before writing anything
    with pytest.raises(ConfigError, match="attention_mode=schedule needs method.nal.tau_schedule"):
        train(tiny("nal", **schedule), results_dir=tmp_path)
    assert not list(tmp_path.iterdir())
    cfg = tiny("nal", **schedule)
    with pytest.raises(ConfigError, match="attention_mode=sample.*missing: run it first"):
        tau_schedule_override(cfg, tmp_path / cfg.run_name())
    config = tmp_path / "schedule.yaml"
    config.write_text(cfg.to_yaml())
    assert main(["train", str(config), "--results-dir", str(tmp_path / "runs"), "--quiet"]) == 2
    assert "missing: run it first" in capsys.readouterr().err and not (tmp_path / "runs").exists()

    full = train(tiny("nal"), results_dir=tmp_path / "runs")
    # `nalkit train` reads full NAL's mean tau per epoch before training and writes it into the run's config
    assert main(["train", str(config), "--results-dir", str(tmp_path / "runs"), "--quiet"]) == 0
    run = tmp_path / "runs" / cfg.run_name()  # the run name is the one without the list
    mean = read_metrics(full).tau_mean.to_numpy()
    written = yaml.safe_load((run / "config.yaml").read_text())["method"]["nal"]["tau_schedule"]
    np.testing.assert_array_equal(written, mean)
    a = load_arrays(run)
    for e in (1, 4):
        assert np.ptp(a[f"tau_e{e}"]) == 0
        assert a[f"tau_e{e}"][0] == pytest.approx(mean[e - 1], rel=1e-3)
    assert load_runs(tmp_path / "runs").runs.set_index("run").attention_mode[run.name] == "schedule"


def test_the_tau_list_is_checked_and_does_not_name_the_run():
    cfg = tiny("nal", **{"method.nal.attention_mode": "schedule"})
    named = cfg.run_name()
    cfg.apply_overrides(["method.nal.tau_schedule=[0.5, 0.6, 0.7, 0.8]"]).validate()
    assert cfg.run_name() == named and cfg.method.nal.tau_schedule == [0.5, 0.6, 0.7, 0.8]
    for value, message in [("[0.5, 0.6]", "has 2 values, one per epoch of optim.epochs=4"),
                           ("[0.5, 0.6, 1.0, 0.8]", r"holds \[1.0\]: every tau must lie in \(0, 1\)")]:
        with pytest.raises(ConfigError, match=message):
            tiny("nal", **{"method.nal.attention_mode": "schedule", "method.nal.tau_schedule": value}).validate()
    with pytest.raises(ConfigError, match="tau_schedule is the tau of method.nal.attention_mode=schedule"):
        tiny("nal", **{"method.nal.tau_schedule": "[0.5, 0.6, 0.7, 0.8]"}).validate()


def _grid(path, results, control_first=True, twin=True, **overrides):
    """Full NAL and its schedule control as one grid (trained without notebooks), the control listed first."""
    controls = [{"method.nal.attention_mode": "schedule"}] + ([{}] if twin else [])
    grid = {"name": "controls", "results_dir": str(results), "notebook": None,
            "configs": [str(REPO / "configs/fmnist/cpu.yaml")],
            "overrides": {"data.train_subset": 300, "data.test_subset": 200, "model.width": 8, "optim.epochs": 3,
                          "optim.batch_size": 32, "optim.restart_period": 3, "method.name": "nal",
                          "method.nal.es": 2, "run.snapshot_epochs": [3], "run.threads": 1, **overrides},
            "axes": {"control": controls if control_first else controls[::-1]}}
    path.write_text(yaml.safe_dump(grid, sort_keys=False))
    return path


def test_the_runner_trains_full_nal_before_its_schedule_control(tmp_path):
    lonely = _grid(tmp_path / "lonely.yaml", tmp_path / "results", twin=False)
    with pytest.raises(ConfigError, match="experiment .*-nal-.*attention_mode=sample.*missing: run it first"):
        run_grid(lonely)
    assert not (tmp_path / "results").exists(), "nothing is written before the check"

    grid = _grid(tmp_path / "g.yaml", tmp_path / "results")
    control, full = load_grid(grid).experiments
    assert control.cfg.method.nal.attention_mode == "schedule" and control.cfg.method.nal.tau_schedule is None
    summary = run_grid(grid)
    assert summary.ok and list(summary.table.state) == ["done", "done"]
    written = yaml.safe_load((control.run_dir / "config.yaml").read_text())["method"]["nal"]["tau_schedule"]
    np.testing.assert_array_equal(written, read_metrics(full.run_dir).tau_mean)
    assert json.loads((control.run_dir / "status.json").read_text())["config_hash"] == control.cfg.digest()
    # the manifest keeps the grid's overrides (the list is the record's, not the grid's); a rerun skips both
    manifest = json.loads((tmp_path / "results" / "grids" / "controls.json").read_text())
    assert not any("tau_schedule" in o for e in manifest["experiments"] for o in e["overrides"])
    assert list(run_grid(grid).table.state) == ["skipped", "skipped"]
    # with full NAL complete, a grid of the control alone reads its tau from the record
    (control.run_dir / "status.json").unlink()
    assert list(run_grid(lonely).table.state) == ["done"]


def test_a_schedule_control_fails_when_its_full_nal_fails(tmp_path):
    grid = _grid(tmp_path / "g.yaml", tmp_path / "results", **{"data.name": "cifar10",
                                                              "data.root": str(tmp_path / "no-data")})
    control, full = load_grid(grid).experiments
    summary = run_grid(grid)
    assert dict(zip(summary.table.experiment, summary.table.state)) == {control.name: "failed", full.name: "failed"}
    failure = json.loads((control.run_dir / "failure.json").read_text())
    assert failure["type"] == "ConfigError" and "full NAL is failed" in failure["error"]
    assert not (control.run_dir / "status.json").exists(), "the control never started"


def test_the_committed_schedule_controls_keep_their_run_names():
    """Their config.yaml predates method.nal.tau_schedule; the grid still names them, and the runner skips them."""
    grid = load_grid(REPO / "configs/grids/controls.yaml", results_dir=REPO / "results")
    controls = [e for e in grid.experiments if e.cfg.method.nal.attention_mode == "schedule"]
    if not all((e.run_dir / "status.json").is_file() for e in controls):
        pytest.skip("the controls grid's records are not in results/runs")
    assert len(controls) == 15
    for e in controls:
        assert is_complete(e.run_dir, e.cfg.digest(), notebook=True), e.name
        assert "tau_schedule" not in yaml.safe_load((e.run_dir / "config.yaml").read_text())["method"]["nal"]
    assert len(load_runs(controls[0].run_dir).runs) == 1


@pytest.mark.parametrize("overrides, message", [
    ({"method.nal.attention_mode": "every"}, "attention_mode='every' is not one of sample, global, class, schedule"),
    ({"method.nal.attention_mode": "global", "method.nal.attention": "false"}, "needs method.nal.attention=true"),
])
def test_bad_control_settings_are_refused_by_name(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        train(tiny("nal", **overrides), results_dir=tmp_path)
    assert not list(tmp_path.iterdir())
