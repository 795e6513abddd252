"""nalkit.results.horizon and the horizon chapter's sentences, on synthetic records with known answers."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nalkit.records import RunRecord
from nalkit.results import (at_epoch, curves, detector_series, histogram_overlap, horizon_summary, long_variant,
                            mean_interval, peak_and_last, stage_table, with_variant)
from nalkit.results.horizon import (LAMBDA_SCHEDULES, PAPER_SETTING, SCHEDULE_PAIRS, PhiCounts, phi_cells, phi_counts,
                                    ranked_means, schedule_differences, seeds_per_cell, stage_cells, stage_counts)

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
    stages = pd.DataFrame({"run": "a", "variant": "NAL", "noise": "sym 40 %", "epoch": [5, 20, 40],
                           "auroc": [0.52, 0.8, 0.6], "median_clean": 0.99, "set_aside": [0.0, 0.1, 0.0],
                           "clean_set_aside": 0.0})
    cells = stage_cells(stages, ["sym 40 %"], ["NAL"])
    text = nalbook.horizon_stage_verdict(cells)
    assert "of 1 (schedule, setting) cells, 1 separate at some snapshot (stage 2" in text
    assert "final stage appears nowhere" in text and "1 start alike" in text and "not evidence" in text
    assert "0 of the cells end with at least half" in text
    # lambda 0.5 has no snapshots at all: the answer does not say the final stage fails there
    assert "λ 0.5** (NAL (λ 0.5) and NAL (λ 0.5), authors' schedule): no τ snapshots yet" in text
    assert "a λ without snapshots cannot say whether it fails there" in text
    cells = stage_cells(stages.assign(auroc=[0.52, 0.8, 0.95], set_aside=[0.0, 0.1, 0.6]), ["sym 40 %"], ["NAL"])
    text = nalbook.horizon_stage_verdict(cells)
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

    stages = pd.DataFrame({"run": "a", "variant": "NAL", "noise": "asym 40 %", "epoch": [5, 20, 200],
                           "auroc": [0.74, 0.7, 0.61], "set_aside": 0.0, "clean_set_aside": 0.0, "median_clean": 1.0,
                           "median_mislabeled": 1.0})
    line = nalbook.horizon_stage_lines(stage_cells(stages, ["asym 40 %"], ["NAL"]))[0]
    assert "AUROC 0.74 at epoch 5 (its best snapshot), 0.61 at epoch 200" in line


# ----------------------------------------------------------------------------------------------
# NAL at both lambdas under both schedules: every number from nalkit.results.horizon, every cell present
# ----------------------------------------------------------------------------------------------
def fake_stages():
    """tau stages of the four lambda/schedule cells at sym 40 %: NAL (2 seeds) separates at epoch 20 and falls
    back; the authors' schedule at lambda 2 (2 seeds) separates and stays there; the paper's setting (1 seed)
    reaches the final stage; NAL (lambda 0.5) has no records."""
    rows = []
    for variant, runs, auroc, median in (
            ("NAL", {"a": 0.0, "b": 0.02}, [0.5, 0.8, 0.6], [0.7, 0.8, 0.99]),
            ("NAL, authors' schedule", {"c": 0.0, "d": 0.02}, [0.5, 0.7, 0.85], [0.7, 0.9, 0.99]),
            (PAPER_SETTING, {"e": 0.0}, [0.5, 0.8, 0.95], [0.7, 0.95, 0.98])):
        for run, shift in runs.items():
            for e, a, m, aside in zip((5, 20, 200), auroc, median, (0.0, 0.2, 0.6 + shift)):
                rows.append({"run": run, "variant": variant, "noise": "sym 40 %", "seed": ord(run), "epoch": e,
                             "auroc": a + shift, "median_clean": m, "median_mislabeled": 0.5, "set_aside": aside,
                             "clean_set_aside": 0.01})
    return pd.DataFrame(rows)


def test_stage_cells_are_means_over_seeds_with_every_cell_present():
    cells = stage_cells(fake_stages(), ["sym 40 %", "sym 80 %"], LAMBDA_SCHEDULES).set_index(["noise", "variant"])
    assert len(cells) == 8 and list(LAMBDA_SCHEDULES) == ["NAL", "NAL, authors' schedule", "NAL (λ 0.5)",
                                                           PAPER_SETTING]
    nal = cells.loc[("sym 40 %", "NAL")]
    assert nal.seeds == 2 and nal.first_epoch == 5 and nal.first_auroc == pytest.approx(0.51)
    assert nal.best_epoch == 20 and nal.best_auroc == pytest.approx(0.81) and nal.last_auroc == pytest.approx(0.61)
    assert nal.last_set_aside == pytest.approx(0.61) and nal.last_clean_set_aside == pytest.approx(0.01)
    assert nal.apart and not nal.final and nal.alike  # 0.81 >= STAGE_APART; the last AUROC is below STAGE_FINAL
    authors = cells.loc[("sym 40 %", "NAL, authors' schedule")]
    assert authors.apart and not authors.final  # 0.86 < STAGE_FINAL at the last snapshot
    paper = cells.loc[("sym 40 %", PAPER_SETTING)]
    assert paper.seeds == 1 and paper.final and paper.stages.evidence == 2
    missing = cells.loc[("sym 40 %", "NAL (λ 0.5)")]
    assert missing.seeds == 0 and pd.isna(missing.best_auroc) and missing.stages is None
    assert cells.loc[("sym 80 %", "NAL")].seeds == 0
    assert str(cells.first_epoch.dtype) == "Int64"  # epochs stay integers beside a missing cell


def test_stage_counts_per_lambda_follow_the_rulebook():
    cells = stage_cells(fake_stages(), ["sym 40 %", "sym 80 %"], LAMBDA_SCHEDULES)
    book = stage_counts(cells, SCHEDULE_PAIRS[2.0])
    assert (book.cells, book.missing, book.seeds) == (2, 2, (2, 2))
    assert (book.apart, book.final, book.alike, book.set_aside) == (2, 0, 2, 2)
    assert book.verdict == "partly" and book.final_cells == ()
    paper = stage_counts(cells, SCHEDULE_PAIRS[0.5])
    assert (paper.cells, paper.missing, paper.seeds, paper.final) == (1, 3, (1, 1), 1)
    assert paper.verdict == "reproduced" and paper.final_cells == (("sym 40 %", PAPER_SETTING),)
    none = stage_counts(cells, ["NAL (λ 0.5)"])
    assert none.cells == 0 and none.seeds == (0, 0) and none.verdict == "not tested here"


def test_stage_sentences_say_where_the_final_stage_appears_and_the_seeds():
    import nalbook

    cells = stage_cells(fake_stages(), ["sym 40 %"], LAMBDA_SCHEDULES)
    text = nalbook.horizon_stage_verdict(cells)
    assert f"the final stage appears only at λ 0.5 ({PAPER_SETTING} at sym 40 %)" in text
    assert "λ 0.5 has 1 seed per cell so far, a reading that more seeds may change" in text
    assert "**λ 2** (NAL and NAL, authors' schedule; 2 seeds per cell): of 2 (schedule, setting) cells, 2 separate" \
        in text
    assert "1 seed per cell so far; 1 of 2 cells not recorded yet): of 1 (schedule, setting) cells" in text
    assert "by C5's rule over these settings: reproduced" in text
    line = nalbook.horizon_stage_lines(cells)[0]
    assert line.startswith("**sym 40 %:**\n  - *NAL* (2 seeds): AUROC 0.51 at epoch 5, 0.81 at epoch 20")
    assert "  - *NAL (λ 0.5)* (no records yet)." in line
    assert f"  - *{PAPER_SETTING}* (the paper's setting; 1 seed so far): AUROC 0.50" in line
    assert "there 61.0 % of the mislabeled and 1.0 % of the clean samples have τ < 0.5" in line
    # the final stage nowhere, both lambdas recorded: it fails at the paper's lambda as at the book's
    stages = fake_stages()
    cells = stage_cells(stages.assign(auroc=stages.auroc.clip(upper=0.85)), ["sym 40 %"], LAMBDA_SCHEDULES)
    assert "it fails at the paper's λ as it does at the book's" in nalbook.horizon_stage_verdict(cells)


def fake_phi():
    """phi per epoch: NAL at sym 40 % with two seeds, the gap resolved and >= PHI_GAP in epochs 1-3, closed at 4;
    the paper's setting with one seed (no interval); every other cell missing."""
    two = pd.DataFrame({"noise": "sym 40 %", "variant": "NAL", "run": np.repeat(["a", "b"], 4),
                        "epoch": [1, 2, 3, 4] * 2, "phi_clean": [0.7, 0.8, 0.99, 1.0] * 2,
                        "phi_mislabeled": [0.1, 0.3, 0.6, 0.999, 0.12, 0.32, 0.62, 0.998]})
    one = pd.DataFrame({"noise": "sym 40 %", "variant": PAPER_SETTING, "run": "c", "epoch": [1, 2, 3, 4],
                        "phi_clean": [0.5, 0.6, 0.9, 0.95], "phi_mislabeled": [0.05, 0.1, 0.5, 0.7]})
    return pd.concat([two, one], ignore_index=True)


def test_phi_cells_and_counts_leave_one_seed_undecided():
    cells = phi_cells(fake_phi(), ["sym 40 %", "sym 80 %"], LAMBDA_SCHEDULES).set_index(["noise", "variant"])
    assert len(cells) == 8
    nal = cells.loc[("sym 40 %", "NAL")]
    assert nal.seeds == 2 and nal.scaled == [1, 2, 3] and not nal.last_scaled and nal.lowest_epoch == 1
    paper = cells.loc[("sym 40 %", PAPER_SETTING)]
    assert paper.seeds == 1 and paper.scaled == [] and paper.last_mislabeled == pytest.approx(0.7)
    assert cells.loc[("sym 80 %", "NAL")].seeds == 0
    flat = cells.reset_index()
    assert phi_counts(flat, ["NAL"]) == PhiCounts(cells=1, missing=1, seeds=(2, 2), decided=1, anywhere=1,
                                                  at_last=0)
    assert phi_counts(flat, [PAPER_SETTING]) == PhiCounts(cells=1, missing=1, seeds=(1, 1), decided=0, anywhere=0,
                                                          at_last=0)


def test_phi_sentences_say_what_one_seed_cannot_tell():
    import nalbook

    cells = phi_cells(fake_phi(), ["sym 40 %", "sym 80 %"], LAMBDA_SCHEDULES)
    text = nalbook.horizon_phi_verdict(cells)
    assert "- *NAL*: scaled down in some epoch in 1 and in the last epoch in 0 of 1 settings (2 seeds each); " \
           "1 not recorded yet." in text
    assert f"- *{PAPER_SETTING}* (the paper's setting): no setting it can judge yet (1 seed per setting so far)" in text
    assert "- *NAL (λ 0.5)*: no φ records yet." in text
    lines = nalbook.horizon_phi_lines(cells)
    assert "in 3 of 4 epochs (first 1, last 3)" in lines[0]
    assert "(the paper's setting; 1 seed so far): one seed has no interval over seeds, so C7's rule cannot tell" \
        in lines[0]
    assert lines[1] == "**sym 80 %:** no records of these variants yet."


def schedule_epochs():
    """fake_epochs with CE's curves relabelled as NAL under the authors' schedule (so authors' - book's is known:
    at epoch 20 CE's test accuracy is 0.7 - 0.01 * seed, NAL's 0.82); lambda 0.5 has no records."""
    runs, epochs = fake_epochs()
    for f in (runs, epochs):
        ce = f.method == "ce"
        f["es"] = np.where(ce, 60, np.nan)
        f.loc[ce, "update_period"] = 10
        f.loc[ce, "method"] = "nal"
    return with_variant(runs), with_variant(epochs)


def test_schedule_differences_pair_the_schedules_at_each_lambda():
    runs, epochs = schedule_epochs()
    assert set(runs.variant) == {"NAL", "NAL, authors' schedule"}
    summary = horizon_summary(runs, epochs)
    d = schedule_differences(summary, epochs, ["sym 40 %"]).set_index("lam")
    assert list(d.index) == [2.0, 0.5]
    book = d.loc[2.0]
    assert book.seeds_book == book.seeds_authors == 3
    assert book.test_book == pytest.approx(0.82) and book.test_authors == pytest.approx(0.69)
    assert book["diff"].n == 3 and book["diff"].mean == pytest.approx(-0.13) and book["diff"].high < 0
    assert book.corrected_book == pytest.approx(0.9)
    paper = d.loc[0.5]
    assert paper.seeds_book == paper.seeds_authors == 0 and paper["diff"].n == 0 and np.isnan(paper.test_book)


def test_schedule_lines_say_the_seeds_and_a_missing_pair():
    import nalbook

    runs, epochs = schedule_epochs()
    lines = nalbook.horizon_schedule_lines(schedule_differences(horizon_summary(runs, epochs), epochs, ["sym 40 %"]))
    assert "  - *λ 2* (3 seeds each): the authors' schedule ends at 69.0 % test accuracy, the book's at 82.0 % " \
           "(authors' − book's: -13.0 points (95 % CI" in lines[0]
    assert "  - *λ 0.5* (the authors' schedule is the paper's setting; no records yet): not both schedules " \
           "recorded yet." in lines[0]


def test_ranked_means_and_seeds_per_cell():
    import nalbook

    runs, epochs = fake_epochs()
    runs, epochs = with_variant(runs), with_variant(epochs)
    ranked = pd.concat([ranked_means(epochs, e) for e in (5, 20)], ignore_index=True)
    assert list(ranked.variant) == ["NAL", "CE", "NAL", "CE"] and list(ranked.n) == [3] * 4
    assert ranked["mean"].tolist() == pytest.approx([0.805, 0.8, 0.82, 0.69])
    assert nalbook.rank_lines(ranked, ["sym 40 %"]) == ["**sym 40 %:** NAL 80.5 > CE 80.0 (epoch 5)",
                                                        "**sym 40 %:** NAL 82.0 > CE 69.0 (epoch 20)"]
    assert not len(ranked_means(epochs, 99))
    seeds = seeds_per_cell(runs, ["sym 40 %", "sym 80 %"], ["NAL", "NAL (λ 0.5)"])
    assert seeds.seeds.tolist() == [3, 0, 0, 0]
    assert nalbook.legend_label("NAL", seeds) == "NAL (3 seeds)"
    assert nalbook.legend_label("NAL (λ 0.5)", seeds) == "NAL (λ 0.5) (no records yet)"


@pytest.mark.timeout(600)
def test_stage_and_phi_figures_share_one_axis_and_mark_missing_cells(tmp_path):
    import matplotlib.pyplot as plt
    import nalbook

    from nalkit import plotting

    runs = pd.DataFrame([{"run": name, "run_dir": str(_record(tmp_path / name, gap=gap)), "variant": variant,
                          "noise": noise, "seed": 0}
                         for name, gap, variant, noise in (("a", 6.0, "NAL", "sym 40 %"),
                                                           ("b", 2.0, PAPER_SETTING, "sym 40 %"),
                                                           ("c", 1.0, "NAL", "sym 80 %"))])
    cells = stage_cells(stage_table(runs), ["sym 40 %", "sym 80 %", "asym 40 %"], LAMBDA_SCHEDULES)
    figs = nalbook.stage_figures(runs, ["sym 40 %", "sym 80 %", "asym 40 %"], cells, height=1.6)
    assert len(figs) == 3
    first, second = (np.array(f.axes[:8]).reshape(2, 4) for f in figs[:2])
    assert first[0, 0].get_xlim() == second[0, 0].get_xlim()  # one tau axis for every figure
    titles = [ax.get_title() for ax in first[0]]
    assert titles[0] == "NAL\n(1 seed)" and titles[2] == "NAL (λ 0.5)\n(no records yet)"
    assert titles[3] == "NAL (λ 0.5),\nauthors' schedule\n(1 seed)"
    notes = [t.get_text() for ax in first.ravel() for t in ax.texts]
    assert notes.count("no τ snapshots yet") == 2  # the two empty columns, once each
    assert "no τ snapshots of the long tier at asym 40 % yet" in [t.get_text() for t in figs[2].axes[0].texts]
    for f in figs[:2]:
        assert plotting.overlapping_labels(f) == []
    epochs = fake_phi()
    phi = phi_cells(epochs, ["sym 40 %", "sym 80 %"], LAMBDA_SCHEDULES)
    fig = nalbook.phi_figure(epochs, ["sym 40 %", "sym 80 %"], phi, {"sym 40 %": "sym 40 %", "sym 80 %": "sym 80 %"})
    axes = np.array(fig.axes[:8]).reshape(2, 4)
    assert [t.get_text() for t in axes[1, 0].texts] == ["no φ records yet"]
    assert axes[0, 0].get_title() == "NAL\n(2 seeds)" and plotting.overlapping_labels(fig) == []
    plt.close("all")
