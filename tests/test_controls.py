"""NAL's attention controls (method.nal.attention_mode): one learned tau for all samples, one per given class,
and full NAL's mean tau per epoch. Each keeps what it says and drops the per-sample part."""

import json

import numpy as np
import pandas as pd
import pytest

from nalkit.config import ConfigError
from nalkit.results import load_arrays
from nalkit.train import train

from test_train import TIMING, tiny

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
    pd.testing.assert_frame_equal(*(pd.read_csv(r / "metrics.csv").drop(columns=TIMING) for r in (full, resumed)))


def test_a_per_class_tau_is_shared_within_each_given_class(tmp_path):
    a = load_arrays(train(tiny("nal", **{"method.nal.attention_mode": "class"}), results_dir=tmp_path))
    s = pd.Series(a["tau_logit_e4"]).groupby(a["noisy_labels"])
    # a class's tau moves after every batch: at most one value per batch within a class, ten classes apart
    assert (s.nunique() <= -(-300 // 32)).all() and s.median().nunique() == 10
    assert len(np.unique(a["tau_logit_e4"])) > 10


def test_the_schedule_control_takes_full_nals_mean_tau_per_epoch(tmp_path):
    with pytest.raises(ConfigError, match="attention_mode=sample.*missing: run it first"):
        train(tiny("nal", **{"method.nal.attention_mode": "schedule"}), results_dir=tmp_path)
    full = train(tiny("nal"), results_dir=tmp_path)
    run = train(tiny("nal", **{"method.nal.attention_mode": "schedule"}), results_dir=tmp_path)
    mean = pd.read_csv(full / "metrics.csv").tau_mean.to_numpy()
    a = load_arrays(run)
    for e in (1, 4):
        assert np.ptp(a[f"tau_e{e}"]) == 0
        assert a[f"tau_e{e}"][0] == pytest.approx(mean[e - 1], rel=1e-3)
    status = json.loads((run / "status.json").read_text())
    assert status["tau_schedule"]["source"] == full.name and len(status["tau_schedule"]["tau"]) == 4


@pytest.mark.parametrize("overrides, message", [
    ({"method.nal.attention_mode": "every"}, "attention_mode='every' is not one of sample, global, class, schedule"),
    ({"method.nal.attention_mode": "global", "method.nal.attention": "false"}, "needs method.nal.attention=true"),
])
def test_bad_control_settings_are_refused_by_name(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        train(tiny("nal", **overrides), results_dir=tmp_path)
    assert not list(tmp_path.iterdir())
