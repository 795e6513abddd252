"""nalkit.results.horizon and the horizon chapter's sentences, on synthetic records with known answers."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nalkit.records import RunRecord
from nalkit.results import (at_epoch, curves, detector_series, histogram_overlap, horizon_summary, long_variant,
                            mean_interval, peak_and_last, stage_table, with_variant)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book"))


def fake_epochs(n_epochs=20, seeds=(0, 1, 2)):
    """CE memorises (training accuracy -> 1, test accuracy peaks at epoch 5 then falls by 0.1 + 0.01 * seed);
    NAL fits the clean fraction 0.64 and its test accuracy keeps rising."""
    rows, runs = [], []
    for seed in seeds:
        for method in ("ce", "nal"):
            run = f"{method}-s{seed}"
            runs.append({"run": run, "method": method, "noise": "sym 40 %", "seed": seed, "actual_noise_rate": 0.36,
                         "attention": True, "update_period": 1})
            for e in range(1, n_epochs + 1):
                if method == "ce":
                    fit, mem = min(1.0, 0.5 + 0.05 * e), min(1.0, 0.05 * e)
                    test = 0.8 - (0.1 + 0.01 * seed) * (e > 5) if e % 5 == 0 else np.nan
                else:
                    fit, mem = 0.64, 0.05
                    test = 0.8 + 0.001 * e if e % 5 == 0 else np.nan
                rows.append({"run": run, "method": method, "noise": "sym 40 %", "seed": seed, "epoch": e,
                             "attention": True, "update_period": 1, "train_acc_noisy": fit, "memorized": mem,
                             "test_acc": test, "tau_auroc": 0.5 + 0.01 * e if method == "nal" else np.nan,
                             "loss_auroc": 0.9, "corrected_acc": 0.9 if method == "nal" else np.nan,
                             "corrected_acc_mislabeled": 0.7 if method == "nal" else np.nan})
    return pd.DataFrame(runs), pd.DataFrame(rows)


def test_long_variant_names_the_five_variants():
    base = {"method": "nal", "attention": True, "update_period": 1}
    assert long_variant({"method": "ce"}) == "CE" and long_variant({"method": "sce"}) == "SCE"
    assert long_variant(base) == "NAL"
    assert long_variant({**base, "update_period": 10, "es": 60}) == "NAL, authors' schedule"
    assert long_variant({**base, "attention": False}) == "NAL, τ = 1"


def test_curves_peaks_and_values_at_an_epoch():
    runs, epochs = fake_epochs()
    epochs = with_variant(epochs)
    c = curves(epochs, "test_acc")
    assert set(c.epoch) == {5, 10, 15, 20}  # NaN epochs (not evaluated) are left out
    ce10 = c[(c.variant == "CE") & (c.epoch == 10)].iloc[0]
    assert ce10["n"] == 3 and ce10["mean"] == pytest.approx(0.69) and ce10["std"] == pytest.approx(0.01)
    p = peak_and_last(epochs).set_index("run")
    assert p.loc["ce-s2", "best"] == pytest.approx(0.8) and p.loc["ce-s2", "best_epoch"] == 5
    assert p.loc["ce-s2", "drop"] == pytest.approx(0.12) and p.loc["nal-s0", "drop"] == 0
    late = at_epoch(epochs, 20, ["test_acc"])
    assert len(late) == 6 and list(late.columns[-1:]) == ["test_acc"]
    assert len(at_epoch(epochs, 99)) == 0


def test_horizon_summary_answers_appendix_e_on_known_records():
    runs, epochs = fake_epochs()
    s = horizon_summary(runs, epochs).set_index("variant")
    assert s.loc["CE", "fit_last"] == 1.0 and s.loc["CE", "memorized_last"] == 1.0
    assert s.loc["NAL", "fit_last"] == pytest.approx(s.loc["NAL", "clean_fraction"], abs=0.01)
    drop = s.loc["CE", "test_drop"]
    assert drop.n == 3 and drop.mean == pytest.approx(0.11) and drop.low > 0  # falls beyond the seed spread
    assert s.loc["NAL", "test_drop"].mean == 0
    assert s.loc["NAL", "tau_auroc_max_epoch"] == 20 and s.loc["NAL", "last_epoch"] == 20
    assert np.isnan(s.loc["CE", "tau_auroc_last"])


def test_mean_interval_is_a_one_sample_t_interval():
    d = mean_interval([0.1, 0.12, 0.11])
    assert d.mean == pytest.approx(0.11) and d.low == pytest.approx(0.11 - 4.303 * 0.01 / np.sqrt(3), abs=1e-4)
    assert mean_interval([0.2]).n == 1 and np.isnan(mean_interval([0.2]).low)
    assert mean_interval([]).n == 0


def test_detector_series_reads_the_detector_columns_a_run_has():
    _, epochs = fake_epochs()
    s = detector_series(with_variant(epochs), ("tau", "loss", "aum"))
    assert set(s.detector) == {"tau", "loss"}  # no aum column: left out
    nal_tau = s[(s.variant == "NAL") & (s.detector == "tau")]
    assert nal_tau.set_index("epoch")["mean"][10] == pytest.approx(0.6)
    assert not len(s[(s.variant == "CE") & (s.detector == "tau")])  # CE has no tau


def _record(path: Path, gap: float, epochs=(5, 20)) -> Path:
    """A complete record whose mislabeled samples (the first 100 of 400) sit ``gap`` logit units below the clean."""
    rng = np.random.default_rng(0)
    clean = rng.integers(0, 10, 400)
    noisy = clean.copy()
    noisy[:100] = (clean[:100] + 1) % 10
    arrays = {"noisy_labels": noisy, "clean_labels": clean, "train_index": np.arange(400)}
    for i, e in enumerate(epochs):
        s = rng.normal(3.0, 0.3, 400)
        s[:100] -= gap * i  # alike at the first snapshot, apart later
        arrays[f"tau_logit_e{e}"] = s.astype(np.float32)
    rec = RunRecord(path)
    rec.write_arrays(arrays)
    rec.write_status(state="complete")
    return path


def test_stage_table_measures_separation_and_the_samples_set_aside(tmp_path):
    runs = pd.DataFrame([{"run": "a", "run_dir": str(_record(tmp_path / "a", gap=6.0)), "variant": "NAL",
                          "noise": "sym 40 %", "seed": 0}])
    t = stage_table(runs).set_index("epoch")
    assert t.loc[5, "auroc"] == pytest.approx(0.5, abs=0.1) and t.loc[5, "set_aside"] == 0
    assert t.loc[20, "auroc"] > 0.99 and t.loc[20, "set_aside"] == 1.0 and t.loc[20, "clean_set_aside"] == 0
    assert t.loc[5, "overlap"] > 0.7 and t.loc[20, "overlap"] == 0
    assert t.loc[20, "median_clean"] > 0.9 > 0.5 > t.loc[20, "median_mislabeled"]


def test_histogram_overlap():
    x = np.random.default_rng(1).normal(size=2000)
    assert histogram_overlap(x, x) == pytest.approx(1.0)
    assert histogram_overlap(x, x + 100) == 0.0
    assert np.isnan(histogram_overlap(x, []))


def test_the_chapter_sentences_follow_the_records():
    import nalbook

    runs, epochs = fake_epochs()
    summary = horizon_summary(runs, epochs)
    lines = nalbook.horizon_fit_lines(summary, ["sym 40 %"])
    assert "CE fits 100.0 %" in lines[0] and "NAL fits 64.0 %" in lines[0] and "3 seeds" in lines[0]
    verdict = nalbook.horizon_fit_verdict(summary, ["sym 40 %"])
    assert "its test accuracy ends below its peak beyond the seed spread in every setting" in verdict
    # one seed has no interval: no fall is claimed
    one = horizon_summary(*fake_epochs(seeds=(0,)))
    assert "beyond the seed spread in no setting" in nalbook.horizon_fit_verdict(one, ["sym 40 %"])
    stages = pd.DataFrame({"variant": "NAL", "noise": "sym 40 %", "epoch": [5, 20, 40], "auroc": [0.52, 0.8, 0.6],
                           "median_clean": 0.99, "set_aside": [0.0, 0.1, 0.0]})
    text = nalbook.horizon_stage_verdict(stages)
    assert "of 1 (schedule, setting) cells, 1 separate at some snapshot (stage 2" in text
    assert "final stage appears nowhere" in text and "1 start alike" in text and "not evidence" in text
    assert "0 of the cells end with at least half" in text
    text = nalbook.horizon_stage_verdict(stages.assign(auroc=[0.52, 0.8, 0.95], set_aside=[0.0, 0.1, 0.6]))
    assert "and 1 reach the appendix's final stage" in text and "1 of the cells end" in text


def test_control_table_says_which_variant_stays_within_the_seed_spread():
    import nalbook

    rows = []
    for seed in range(3):
        for variant, acc in (("full NAL", 0.84), ("τ = 1", 0.80), ("one learned τ", 0.84),
                             ("one learned τ per class", 0.82)):
            rows.append({"setting": "sym 40 %", "variant": variant, "seed": seed,
                         "last_memorized": 0.1 + 0.02 * (variant != "full NAL") + 0.001 * seed,
                         "last_test_acc": acc + 0.001 * seed * (variant == "full NAL")})
    table, lines = nalbook.control_table(pd.DataFrame(rows), ["sym 40 %"])
    assert len(table) == 4 and table.loc[("sym 40 %", "full NAL"), "test acc − full NAL"] == "–"
    assert table.loc[("sym 40 %", "one learned τ per class"), "memorised − full NAL"].startswith("+2.0 points")
    assert "or above it: one learned τ (-0.1); below it: τ = 1 (-4.1) and one " \
           "learned τ per class (-2.1)" in lines[0]
    # the answer, by C8's rule: against the control the rule names (one learned tau), whichever control is best
    assert lines[-1].startswith("**The per-sample part of τ** (full NAL − one learned τ, the control "
                                "claim C8 names")
    assert "sym 40 %: +0.1 points of test accuracy" in lines[-1] and "-2.0 points memorised" in lines[-1]
    assert "in 0 of 1 settings; the records do not separate the two at sym 40 %." in lines[-1]


def test_phi_lines_and_detector_summary_follow_the_series():
    import nalbook

    # two seeds: the gap is resolved and >= PHI_GAP in epochs 1-3, negligible at 4 (the rule C7 uses)
    epochs = pd.DataFrame({"noise": "sym 40 %", "variant": "NAL", "run": np.repeat(["a", "b"], 4),
                           "epoch": [1, 2, 3, 4] * 2, "phi_clean": [0.7, 0.8, 0.99, 1.0] * 2,
                           "phi_mislabeled": [0.1, 0.3, 0.6, 0.999, 0.12, 0.32, 0.62, 0.998]})
    line = nalbook.phi_lines(epochs, ["sym 40 %"])[0]
    assert "by at least 0.05 (95 % interval over seeds above 0) in 3 of 4 epochs (first 1, last 3)" in line
    assert "lowest in epoch 1 (0.11, clean samples 0.70)" in line
    table = pd.DataFrame({"noise": "sym 40 %", "variant": "NAL", "detector": ["tau", "loss", "aum"],
                          "best_auroc": [0.7, 0.95, 0.99], "best_epoch": [30, 9, 40], "last_auroc": [0.6, 0.66, 0.98],
                          "best_ap": 0.5, "last_ap": [0.45, 0.3, 0.9], "n": 3})
    cl = {("sym 40 %", 0): {"auroc": 0.9, "ap": 0.8}, ("sym 40 %", 1): {"auroc": 0.8, "ap": 0.7}}
    shown, lines = nalbook.detector_summary(table, cl, ["sym 40 %"])
    assert len(shown) == 4 and "confident learning (CE, 5-fold, n = 2)" in shown.index.get_level_values(1)
    assert "1 − τ ranks 3 of 3 (AUROC 0.70, reached around epoch 30; best: AUM, 0.99)" in lines[0]
    assert "and 2 by average precision (0.45; best: AUM, 0.90)" in lines[0]
    assert "confident learning reaches AUROC 0.85, average precision 0.75." in lines[0]


def test_flipped_names_each_setting_with_its_actual_rate():
    import nalbook

    runs = pd.DataFrame({"noise": ["asym 40 %", "asym 40 %", "sym 40 %"], "actual_noise_rate": [0.20, 0.22, 0.36]})
    assert nalbook.flipped(runs) == {"asym 40 %": "asym 40 % (21 % flipped)", "sym 40 %": "sym 40 % (36 % flipped)"}
    assert nalbook.flipped(runs.iloc[:0]) == {}


def test_stage_lines_name_the_best_snapshot_once():
    import nalbook

    stages = pd.DataFrame({"variant": "NAL", "noise": "asym 40 %", "epoch": [5, 20, 200], "auroc": [0.74, 0.7, 0.61],
                           "set_aside": 0.0, "clean_set_aside": 0.0, "median_clean": 1.0, "median_mislabeled": 1.0})
    line = nalbook.horizon_stage_lines(stages, ["asym 40 %"])[0]
    assert "AUROC 0.74 at epoch 5 (its best snapshot), 0.61 at epoch 200" in line
