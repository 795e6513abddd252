"""Two processes with DistributedDataParallel (gloo, CPU) give the single-process result."""

import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from nalkit.records import read_metrics
from nalkit.results import load_arrays
from nalkit.train import train

pytestmark = [pytest.mark.usefixtures("fashion_mnist"), pytest.mark.slow]


def _config(tmp_path, method):
    cfg = {
        "data": {"name": "fashion_mnist", "train_subset": 240, "test_subset": 200, "augment": True},
        "noise": {"mode": "sym", "rate": 0.4, "seed": 3},
        # GroupNorm: per-sample normalisation, so sharding a batch over processes changes nothing
        # (BatchNorm would need SyncBatchNorm, which PyTorch supports on CUDA only)
        "model": {"name": "small_cnn", "width": 8, "norm": "group"},
        "method": {"name": method, "nal": {"es": 2, "update_period": 1}},
        "optim": {"epochs": 3, "batch_size": 32, "lr": 0.05, "restart_period": 3},
        "run": {"seed": 1, "progress": False, "threads": 1},
    }
    path = tmp_path / f"{method}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize("method", ["nal", "ce"])
def test_two_gloo_processes_match_one(tmp_path, method):
    path = _config(tmp_path, method)
    single = train(path, run_dir=tmp_path / "single")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "nalkit.cli", "train", str(path), "--run-dir", str(tmp_path / "ddp"), "--quiet"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    a = read_metrics(single).drop(columns=["seconds", "eval_seconds"])
    b = read_metrics(tmp_path / "ddp").drop(columns=["seconds", "eval_seconds"])
    assert list(a.columns) == list(b.columns)
    # continuous quantities agree to float tolerance (gloo sums gradients in another order) ...
    for col in ["lr", "loss", "tau_clean", "tau_mislabeled"]:
        np.testing.assert_allclose(a[col], b[col], rtol=2e-3, atol=1e-4, err_msg=col)
    # ... and an argmax may flip for a sample sitting on a decision boundary: allow 2 of 240 samples
    for col in [c for c in a.columns if c.endswith("_acc") or c in ("memorized", "train_acc_noisy")]:
        np.testing.assert_allclose(a[col], b[col], atol=0.025, err_msg=col)
    x, y = load_arrays(single), load_arrays(tmp_path / "ddp")
    np.testing.assert_allclose(x["final_loss"], y["final_loss"], rtol=1e-2, atol=5e-3)
    if method == "nal":
        np.testing.assert_allclose(x["final_tau"], y["final_tau"], rtol=1e-2, atol=5e-3)
        assert (x["final_q_argmax"] == y["final_q_argmax"]).mean() > 0.99
    # training-pass argmaxes of a barely trained width-8 network sit on near-ties: loss differences of 1e-3
    # flipped 8 of 240 predictions (seed 1, NAL; 5 seeds x 2 methods measured 0.967-1.0 agreement)
    assert (x["final_pred"] == y["final_pred"]).mean() > 0.95
