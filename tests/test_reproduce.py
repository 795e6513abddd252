"""A committed run record is reproducible: retraining it from its own config.yaml gives its numbers.

Bit for bit where the record was made on the same kernels (same CPU model, vector ISA and torch: the record's
environment.json says which); elsewhere float summation orders differ and the runs drift apart chaotically,
so the check is that every metric stays within a tolerance far below any difference the book reports.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from nalkit.config import Config
from nalkit.records import METRIC_DIGITS, cpu_model, read_metrics
from nalkit.train import train

REPO = Path(__file__).resolve().parents[1]
TIMING = ["seconds", "eval_seconds"]
EPOCHS = 21  # past the start of target estimation (epoch 20) and four test evaluations


def committed_nal_run() -> Path:
    """The default grid's NAL run at sym 40 %, seed 0 (estimation from epoch 20, tau snapshots at 5 and 20)."""
    from nalkit.grid import load_grid

    exp = next(e for e in load_grid(REPO / "configs" / "grids" / "default.yaml").experiments
               if e.cfg.method.name == "nal" and e.cfg.noise.mode == "sym" and e.cfg.noise.rate == 0.4
               and e.cfg.run.seed == 0)
    return REPO / "results" / "runs" / exp.name

pytestmark = [pytest.mark.usefixtures("fashion_mnist"), pytest.mark.slow, pytest.mark.timeout(900)]


def same_kernels(env: dict) -> bool:
    return (env.get("cpu_model") == cpu_model() and env.get("cpu_capability") == torch.backends.cpu.get_cpu_capability()
            and env.get("torch") == torch.__version__)


def test_a_committed_nal_run_retrains_to_its_record(tmp_path):
    RUN = committed_nal_run()
    assert (RUN / "status.json").is_file(), f"{RUN.name} is not committed"
    cfg = Config.from_dict(yaml.safe_load((RUN / "config.yaml").read_text()))
    assert cfg.run_name() == RUN.name
    # the noise is regenerated from its seed, not read from results/noise: that is pinned too
    out = train(cfg, run_dir=tmp_path / "run", noise_dir=tmp_path / "noise", stop_after_epoch=EPOCHS)
    committed = read_metrics(RUN).drop(columns=TIMING).head(EPOCHS)  # metrics.csv or, compacted, metrics.csv.gz
    again = read_metrics(out).drop(columns=TIMING)
    # records made before the detector columns, or with 17 digits, are compared on their columns, at 7 digits
    assert set(committed.columns) <= set(again.columns), set(committed.columns) - set(again.columns)
    again = again[committed.columns]
    committed = committed.map(lambda v: float(f"{v:.{METRIC_DIGITS}g}") if isinstance(v, float) else v)
    if same_kernels(json.loads((RUN / "environment.json").read_text())):
        assert again.equals(committed), again.compare(committed)
        return
    # another CPU: the same run up to float drift (measured: test accuracy within 0.005 after 21 epochs)
    np.testing.assert_allclose(again.loss, committed.loss, rtol=0.02)
    for col in [c for c in committed.columns if c.endswith("acc") or c in ("memorized", "tau_clean")]:
        np.testing.assert_allclose(again[col], committed[col], atol=0.03, err_msg=col)
