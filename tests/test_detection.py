"""Mislabel detectors: K-fold out-of-sample probabilities (data.cv_folds), confident learning through cleanlab,
and the best/last table of the per-epoch detector series."""

import shutil

import numpy as np
import pandas as pd
import pytest

from nalkit.config import ConfigError
from nalkit.results import confident_learning, detector_table, load_runs, out_of_sample
from nalkit.train import train

from test_train import tiny

pytestmark = pytest.mark.usefixtures("fashion_mnist")


@pytest.mark.timeout(300)
def test_k_fold_runs_give_every_training_sample_one_out_of_sample_prediction(tmp_path):
    runs_dir = tmp_path / "runs"
    for k in range(3):
        train(tiny("ce", **{"data.cv_folds": 3, "data.cv_fold": k, "run.eval_every": 2}), results_dir=runs_dir)
    runs = load_runs(runs_dir).runs
    oos = out_of_sample(runs)
    assert list(oos) == [("sym 40 %", 1)]
    got = oos[("sym 40 %", 1)]
    assert got["probs"].shape == (300, 10) and got["folds"] == 3
    np.testing.assert_allclose(got["probs"].sum(1), 1.0, atol=1e-6)
    assert all(e in (2, 4) for e in got["epochs"])  # the best of the evaluated epochs
    # the noisy labels are those the full training set got: the folds cut the same noisy set
    full = train(tiny("ce"), results_dir=tmp_path / "full")
    from nalkit.results import load_arrays

    np.testing.assert_array_equal(load_arrays(full)["noisy_labels"], got["noisy"])
    pytest.importorskip("cleanlab")
    cl = confident_learning(got["probs"], got["noisy"], got["noisy"] != got["clean"])
    assert 0 <= cl["auroc"] <= 1 and 0 <= cl["precision"] <= 1 and 0 < cl["flagged"] < 1
    # a missing fold: no assembled prediction, rather than a partial one
    shutil.rmtree(runs.run_dir[runs.run_dir.str.contains(runs.run.iloc[0])].iloc[0])
    assert out_of_sample(load_runs(runs_dir).runs) == {}


def test_confident_learning_finds_planted_label_errors():
    pytest.importorskip("cleanlab")
    rng = np.random.default_rng(0)
    clean = rng.integers(0, 5, 1000)
    noisy = clean.copy()
    noisy[:200] = (clean[:200] + 1) % 5
    probs = np.full((1000, 5), 0.05)
    probs[np.arange(1000), clean] = 0.8  # a good model predicts the true class
    cl = confident_learning(probs, noisy, noisy != clean)
    assert cl["auroc"] == 1.0 and cl["recall"] > 0.9 and cl["precision"] > 0.9


@pytest.mark.parametrize("overrides, message", [
    ({"data.cv_folds": 1}, "need cv_folds >= 2"),
    ({"data.cv_folds": 5, "data.cv_fold": 5}, "0 <= cv_fold < cv_folds"),
    ({"data.cv_fold": 2}, "needs data.cv_folds"),
    ({"data.cv_folds": 5, "data.val_fraction": 0.1}, "does not combine with data.val_fraction"),
])
def test_bad_fold_settings_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        tiny("ce", **overrides).validate()


def test_detector_table_reads_best_and_last():
    epochs = pd.DataFrame({"run": ["a"] * 3 + ["b"] * 3, "variant": "NAL", "noise": "sym 40 %", "epoch": [1, 2, 3] * 2,
                           "tau_auroc": [0.5, 0.8, 0.6, 0.5, 0.7, 0.7], "tau_ap": [0.3, 0.6, 0.4, 0.3, 0.5, 0.5],
                           "loss_auroc": 0.9, "loss_ap": 0.8, "aum_auroc": np.nan, "aum_ap": np.nan})
    t = detector_table(epochs).set_index("detector")
    assert set(t.index) == {"tau", "loss"}  # AUM has no values here
    assert t.loc["tau", "best_auroc"] == pytest.approx(0.75) and t.loc["tau", "last_auroc"] == pytest.approx(0.65)
    assert t.loc["tau", "best_epoch"] == 2 and t.loc["tau", "n"] == 2 and t.loc["tau", "best_ap"] == pytest.approx(0.55)


@pytest.mark.timeout(60)
def test_older_records_forgetting_is_rescored_as_toneva_et_al_count_it(tmp_path):
    """A record written before the rule (record_format 2): 3 learned clean samples that never forgot, 1 clean sample
    forgotten twice, 4 mislabeled samples never learned. The old count ranks the mislabeled least suspect (AUROC
    below chance); rescored at the last epoch from the final arrays they are the most suspect (AUROC 1)."""
    from nalkit.records import RunRecord, encode_arrays, npz_bytes
    from nalkit.results import load_runs, rescored_forgetting, tau_rank, with_rescored_forgetting

    clean = np.zeros(8, np.int64)
    noisy = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    arrays = {"train_index": np.arange(8), "noisy_labels": noisy, "clean_labels": clean,
              "final_forgets": np.array([0, 0, 0, 2, 0, 0, 0, 0]), "final_wrong": np.array([1, 1, 1, 3, 5, 5, 5, 5])}
    stored = encode_arrays(arrays)
    stored["format"] = np.asarray(2, np.int8)
    run = tmp_path / "runs" / "old"
    rec = RunRecord(run)
    rec.write_config("method:\n  name: nal\n")
    rec.write_metrics([{"epoch": e, "test_acc": 0.5, "seconds": 1.0, "forget_auroc": 0.1, "forget_ap": 0.4}
                       for e in range(1, 6)])
    rec._write("arrays.npz", npz_bytes(stored))
    rec.write_status(state="complete", epoch=5)
    loaded = load_runs(tmp_path / "runs")
    fixed = rescored_forgetting(loaded.runs)
    assert list(fixed.epoch) == [5] and fixed.forget_auroc.iloc[0] == 1.0 and fixed.forget_ap.iloc[0] == 1.0
    epochs = with_rescored_forgetting(loaded.epochs, loaded.runs)
    assert epochs.forget_auroc.isna().sum() == 4 and epochs.forget_auroc.iloc[-1] == 1.0
    assert "forget_uncorrected_auroc" in epochs  # the old column keeps its own name
    # tau's rank among the detectors, computed once
    table = pd.DataFrame({"noise": "sym 40 %", "variant": "NAL", "detector": ["tau", "loss", "forget"],
                          "best_auroc": [0.7, 0.8, 0.95], "best_epoch": [30, 9, 200], "last_auroc": [0.6, 0.66, 0.95],
                          "best_ap": 0.5, "last_ap": [0.45, 0.3, 0.9], "n": 3})
    r = tau_rank(table).iloc[0]
    assert (r.best_rank, r.last_rank, r.ap_rank, r.of) == (3, 3, 2, 3) and r.best_top == "forget"


def test_confident_learning_is_averaged_over_the_seeds_of_each_setting():
    from nalkit.results.detection import confident_learning_summary

    cl = {("sym 80 %", 0): {"auroc": 0.9, "ap": 0.8, "flagged": 0.5}, ("sym 40 %", 0): {"auroc": 0.7, "ap": 0.6},
          ("sym 80 %", 1): {"auroc": 0.8, "ap": 0.7, "flagged": 0.4}}
    s = confident_learning_summary(cl)
    assert list(s.index) == ["sym 80 %", "sym 40 %"] and list(s.n) == [2, 1]
    assert s.loc["sym 80 %", "auroc"] == pytest.approx(0.85) and s.loc["sym 80 %", "ap"] == pytest.approx(0.75)
    assert s.loc["sym 40 %", "auroc"] == 0.7 and not len(confident_learning_summary({}))


def test_tau_against_the_small_loss_criterion_is_decided_by_the_paired_interval():
    from nalkit.results.detection import tau_against_loss

    rows = []
    for s, (gap, spread) in {"a": (0.1, 0.001), "b": (-0.1, 0.001), "c": (0.01, 0.05)}.items():
        for seed in range(4):
            w = spread * (seed - 1.5)
            rows += [{"method": "nal", "noise": s, "seed": seed, "last_tau_auroc": 0.7 + gap + w,
                      "last_loss_auroc": 0.6},
                     {"method": "ce", "noise": s, "seed": seed, "last_tau_auroc": np.nan, "last_loss_auroc": 0.7 - w},
                     {"method": "sce", "noise": s, "seed": seed, "last_tau_auroc": np.nan, "last_loss_auroc": 0.75}]
    t = tau_against_loss(pd.DataFrame(rows), ["c", "b", "a", "absent"])
    assert list(t.index) == ["c", "b", "a"] and list(t.side) == ["undecided", "fails", "holds"]
    assert t.loc["a", "tau"] == pytest.approx(0.8) and t.loc["a", "ce_loss"] == pytest.approx(0.7)
    assert t.loc["a", "tau_high"] - t.loc["a", "tau_low"] == pytest.approx(0.003)
    assert (t.loc["b", "best"], t.loc["b", "best_loss"]) == ("sce", 0.75) and t.loc["b", "diff"].n == 4
    assert not len(tau_against_loss(pd.DataFrame(rows)[lambda d: d.method != "ce"]))
