"""The trainer on real Fashion-MNIST (small subsets): records, resume == uninterrupted, errors."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nalkit.config import Config, ConfigError
from nalkit.records import RecordError, read_metrics
from nalkit.results import load_arrays, load_runs
from nalkit.train import lr_at, train

pytestmark = pytest.mark.usefixtures("fashion_mnist")

TIMING = ["seconds", "eval_seconds"]


def tiny(method="nal", **extra) -> Config:
    cfg = Config.from_dict({
        "data": {"name": "fashion_mnist", "train_subset": 300, "test_subset": 200, "augment": True},
        "noise": {"mode": "sym", "rate": 0.4, "seed": 3},
        "model": {"name": "small_cnn", "width": 8},
        "method": {"name": method, "nal": {"es": 2, "update_period": 1}, "selc": {"start": 2}},
        "optim": {"epochs": 4, "batch_size": 32, "lr": 0.05, "restart_period": 2},
        "run": {"seed": 1, "progress": False, "snapshot_epochs": [1, 4], "threads": 2},
    })
    return cfg.apply_overrides([f"{k}={v}" for k, v in extra.items()])


def _metrics(run_dir):
    return read_metrics(run_dir).drop(columns=TIMING)


@pytest.mark.parametrize("method", ["nal", "ce", "elr", "selc"])
def test_resume_gives_the_uninterrupted_result(tmp_path, method):
    full = train(tiny(method), results_dir=tmp_path / "a")
    part = train(tiny(method), results_dir=tmp_path / "b", stop_after_epoch=2)
    assert json.loads((part / "status.json").read_text())["state"] == "running"
    assert sorted(p.name for p in part.glob("ckpt-*.pt")) == ["ckpt-00001.pt", "ckpt-00002.pt"]
    resumed = train(tiny(method), results_dir=tmp_path / "b")
    assert resumed == part
    pd.testing.assert_frame_equal(_metrics(full), _metrics(resumed))
    a, b = load_arrays(full), load_arrays(resumed)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert not list(resumed.glob("ckpt-*")), "checkpoints are removed once a run is complete"


def test_run_record_contents(tmp_path):
    run = train(tiny("nal"), results_dir=tmp_path)
    runs = load_runs(tmp_path)
    assert len(runs.runs) == 1 and runs.runs.state[0] == "complete"
    ep = runs.epochs
    assert list(ep.epoch) == [1, 2, 3, 4]
    for col in ["lr", "loss", "train_acc_noisy", "clean_acc", "mislabeled_acc", "memorized", "tau_clean",
                "tau_mislabeled", "tau_auroc", "loss_auroc", "corrected_acc", "test_acc", "seconds"]:
        assert col in ep and ep[col].notna().all(), col
    assert ((ep.tau_clean > 0) & (ep.tau_clean < 1)).all()
    # lr follows cosine annealing with restarts every 2 epochs
    np.testing.assert_allclose(ep.lr, [lr_at(tiny(), e) for e in range(1, 5)])
    assert ep.lr[0] == ep.lr[2] == 0.05
    arr = load_arrays(run)
    assert arr["noisy_labels"].shape == (300,) and arr["final_tau"].shape == (300,)
    assert {"tau_e1", "tau_e4", "pred_e4", "q_argmax_e4", "final_loss", "final_test_pred"} <= set(arr)
    assert "loss_e1" not in arr  # the loss of the snapshots before the last is not kept (the metrics have its AUROC)
    # the actual noise rate is recorded: sym 40 % over all 10 classes flips about 36 %
    status = json.loads((run / "status.json").read_text())
    assert 0.3 < status["noise"]["actual_rate"] < 0.42
    assert arr["is_noisy"].mean() == pytest.approx(status["noise"]["actual_rate"])
    env = json.loads((run / "environment.json").read_text())
    assert env["torch"] and env["device"] == "cpu"
    # which processor: its model name, the vector ISA torch picked and, on x86 Linux, its family and model numbers
    assert env["cpu_model"] and env["cpu_capability"]
    if Path("/proc/cpuinfo").is_file() and "cpu family" in Path("/proc/cpuinfo").read_text():
        assert env["cpu_id"].startswith("family ") and " model " in env["cpu_id"]
    # a rerun of a complete run does nothing
    mtime = (run / "metrics.csv.gz").stat().st_mtime_ns
    assert train(tiny("nal"), results_dir=tmp_path) == run
    assert (run / "metrics.csv.gz").stat().st_mtime_ns == mtime


def test_damaged_record_is_detected(tmp_path):
    run = train(tiny("ce"), results_dir=tmp_path)
    with open(run / "metrics.csv.gz", "ab") as f:
        f.write(b"99,0.1\n")
    with pytest.raises(RecordError, match="metrics.csv.gz does not match its checksum"):
        load_runs(tmp_path)
    assert len(load_runs(tmp_path, strict=False).problems) == 1


def test_noisy_validation_split(tmp_path):
    run = train(tiny("ce", **{"data.val_fraction": 0.2}), results_dir=tmp_path)
    ep = read_metrics(run)
    assert ep.val_acc_noisy.notna().all()
    assert load_arrays(run)["noisy_labels"].shape == (240,)


def test_other_run_in_the_same_directory_is_refused(tmp_path):
    run = train(tiny("ce"), run_dir=tmp_path / "r")
    with pytest.raises(ConfigError, match="another config"):
        train(tiny("ce", **{"method.nal.lam": 3.0}), run_dir=run)


def test_missing_dataset_writes_nothing(tmp_path, monkeypatch):
    from nalkit import datasets

    monkeypatch.setattr(datasets, "SYSTEM_DATA_DIRS", (), raising=False)
    cfg = tiny("ce", **{"data.root": str(tmp_path / "nodata")})

    def offline(*args, **kwargs):  # the loader's torchvision fallback fails as it would without network
        raise RuntimeError("no network in the tests")

    import torchvision

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", offline)
    with pytest.raises(FileNotFoundError, match="Fashion-MNIST not found"):
        train(cfg, results_dir=tmp_path / "results")
    assert not (tmp_path / "results").exists()


def test_detectors_margins_and_phi_are_recorded_from_the_training_pass(tmp_path):
    """Every epoch's row carries each mislabel detector's AUROC and AP; NAL's rows carry the mean gradient factor
    phi of clean and mislabeled samples; the snapshots hold per-sample margins, the last one phi, the final arrays the
    detectors' running sums, consistent with the per-epoch predictions and losses."""
    nal = train(tiny("nal"), results_dir=tmp_path / "nal")
    ce = train(tiny("ce"), results_dir=tmp_path / "ce")
    ep_nal, ep_ce = (read_metrics(r) for r in (nal, ce))
    for name in ("tau", "loss", "meanloss", "aum", "wrong", "forget"):
        for ep in (ep_nal,) if name == "tau" else (ep_nal, ep_ce):
            assert ep[f"{name}_auroc"].between(0, 1).all() and ep[f"{name}_ap"].between(0, 1).all(), name
    assert ep_ce.tau_auroc.isna().all() and ep_ce.phi_clean.isna().all()
    assert ep_nal.phi_clean.between(0, 1).all() and ep_nal.phi_mislabeled.between(0, 1).all()
    # in the first epoch the running mean loss is the loss itself
    assert ep_nal.meanloss_auroc[0] == pytest.approx(ep_nal.loss_auroc[0])
    a = load_arrays(nal)
    assert {"phi_logit_e4", "final_phi", "final_aum", "final_mean_loss", "final_wrong", "final_forgets"} <= set(a)
    assert "phi_e1" not in a and "tau_e1" in a  # phi, like the loss, at the last epoch only (LAST_EPOCH_ONLY)
    assert ((a["phi_e4"] > 0) & (a["phi_e4"] < 1)).all()
    assert (a["final_wrong"] <= 4).all() and (a["final_forgets"] <= a["final_wrong"]).all()
    assert a["final_wrong"].max() > 0
    # a sample predicted as its given label in every epoch has a positive margin every time: a positive AUM;
    # one never predicted so, a negative one
    assert (a["final_aum"][a["final_wrong"] == 0] > 0).all() and (a["final_aum"][a["final_wrong"] == 4] < 0).all()
