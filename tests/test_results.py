"""The analysis the chapters use (nalkit.results): summaries, paired differences, ranks, selection, snapshots."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nalkit.results import (
    load_runs,
    load_snapshots,
    nal_variant,
    noise_label,
    paired_difference,
    rank_table,
    select,
    select_lambda,
    summarize,
    t_quantile_975,
)


def frame(rows):
    return pd.DataFrame(rows, columns=["method", "noise", "seed", "lam", "last_test_acc", "last_val_acc_noisy"])


def test_summarize_is_tidy_with_sample_std():
    f = frame([("ce", "sym", 0, 0.5, 0.70, 0.5), ("ce", "sym", 1, 0.5, 0.72, 0.5), ("nal", "sym", 0, 0.5, 0.80, 0.6)])
    s = summarize(f, by=["method"], values=["last_test_acc"])
    assert list(s.columns) == ["method", "last_test_acc_mean", "last_test_acc_std", "n"]
    ce = s.set_index("method").loc["ce"]
    assert ce.last_test_acc_mean == pytest.approx(0.71) and ce.last_test_acc_std == pytest.approx(np.std([0.7, 0.72], ddof=1))
    assert ce.n == 2 and np.isnan(s.set_index("method").loc["nal"].last_test_acc_std)


def test_paired_difference_pairs_seeds_and_gives_a_t_interval():
    rng = np.random.default_rng(0)
    base = rng.normal(0.7, 0.05, size=5)  # seeds differ a lot; the paired difference does not
    rows = [("ce", "s", i, 0, b, 0) for i, b in enumerate(base)] + \
           [("nal", "s", i, 0, b + 0.03 + 0.001 * i, 0) for i, b in enumerate(base)]
    d = paired_difference(frame(rows), "last_test_acc", "nal", "ce")
    diffs = 0.03 + 0.001 * np.arange(5)
    assert d.n == 5 and d.mean == pytest.approx(diffs.mean())
    half = 2.776 * diffs.std(ddof=1) / np.sqrt(5)
    assert (d.low, d.high) == (pytest.approx(diffs.mean() - half), pytest.approx(diffs.mean() + half))
    assert not d.within_noise and d.sentence() == "+3.2 points (95 % CI +3.0 to +3.4, 5 paired seeds)"
    noisy = [("ce", "s", i, 0, 0.7, 0) for i in range(3)] + [("nal", "s", i, 0, 0.7 + e, 0) for i, e in
                                                             enumerate([0.02, -0.03, 0.01])]
    assert paired_difference(frame(noisy), "last_test_acc", "nal", "ce").within_noise
    # only complete pairs count
    half_missing = frame([("ce", "s", 0, 0, 0.7, 0), ("nal", "s", 0, 0, 0.8, 0), ("nal", "s", 1, 0, 0.9, 0)])
    one = paired_difference(half_missing, "last_test_acc", "nal", "ce")
    assert one.n == 1 and "one pair" in one.sentence()
    assert paired_difference(half_missing, "last_test_acc", "nal", "gce").sentence() == "no paired runs"
    with pytest.raises(ValueError, match="several runs share"):
        paired_difference(pd.concat([frame(rows), frame(rows)]), "last_test_acc", "nal", "ce")


def test_t_quantiles():
    assert t_quantile_975(2) == 4.303 and t_quantile_975(100) == 1.96 and np.isnan(t_quantile_975(0))


def test_rank_table():
    f = frame([("ce", "a", 0, 0, 0.5, 0), ("nal", "a", 0, 0, 0.6, 0), ("ce", "b", 0, 0, 0.9, 0),
               ("nal", "b", 0, 0, 0.8, 0)])
    r = rank_table(f)
    assert r.loc["a", "nal"] == 1 and r.loc["a", "ce"] == 2 and r.loc["b", "ce"] == 1


def test_selection_uses_validation_only_and_reports_the_margin():
    rows = []
    for noise in ("sym", "asym"):
        for seed in range(3):
            for lam, val in ((0.5, 0.60), (10, 0.55), (50, 0.40)):
                rows.append(("nal", noise, seed, lam, 0.9 - val, val + 0.001 * seed))  # test disagrees on purpose
    sel = select_lambda(frame(rows))
    assert sel.chosen == 0.5 and sel.runner_up == 10
    assert sel.table.loc[0.5, "n"] == 6 and {"sym", "asym"} <= set(sel.table.columns)
    assert sel.margin.n == 6 and sel.margin.mean == pytest.approx(0.05)
    with pytest.raises(ValueError, match="never chooses"):
        select(frame(rows), "lam", "last_test_acc")
    with pytest.raises(ValueError, match="no run has"):
        select(frame(rows).assign(last_val_acc_noisy=np.nan), "lam")


def test_selection_breaks_a_tie_towards_the_smaller_value_whatever_the_row_order():
    rows = [("gce", noise, seed, q, 0.5, val) for noise in ("sym", "asym") for seed in range(3)
            for q, val in ((0.9, 0.512), (0.3, 0.40), (0.7, 0.512))]
    for order in (rows, rows[::-1]):
        sel = select(frame(order), "lam")
        assert (sel.chosen, sel.runner_up) == (0.7, 0.9) and sel.margin.mean == pytest.approx(0.0)


def test_nal_variant_names_the_ablation():
    base = {"method": "nal", "estimate_targets": True, "attention": True, "alpha": 0.9, "update_when": "batch",
            "update_period": 1}
    assert nal_variant(base) == "full NAL"
    assert nal_variant({**base, "estimate_targets": False}) == "no target estimation"
    assert nal_variant({**base, "attention": False}) == "τ = 1"
    assert nal_variant({**base, "alpha": 0.99}) == "α 0.99"
    assert nal_variant({**base, "update_period": 10}) == "q updated every 10th epoch"
    assert nal_variant({**base, "update_when": "epoch"}) == "q updated once per epoch"
    assert nal_variant({"method": "ce"}) == "CE"


def test_noise_labels_read_as_the_literature_writes_them():
    assert noise_label("sym", 0.4) == "sym 40 %" and noise_label("asym", 0.4) == "asym 40 %"
    assert noise_label("idn", 0.2) == "IDN 20 %" and noise_label("none", 0.0) == "clean"


def test_one_vocabulary_names_a_run_alike_in_every_chapter():
    """long_variant is nal_variant's departures behind the method's name: no departure has two names."""
    from nalkit.results import long_variant

    base = {"method": "nal", "lam": 2.0, "estimate_targets": True, "attention": True, "alpha": 0.9,
            "update_when": "batch", "update_period": 1, "es": 20}
    rows = [base, {**base, "attention": False}, {**base, "attention_mode": "global"}, {**base, "alpha": 0.7},
            {**base, "update_period": 10, "es": 60}, {**base, "update_period": 10},
            {**base, "lam": 0.5, "update_period": 10, "es": 60, "attention_mode": "class"}]
    names = [long_variant(r) for r in rows]
    assert names == ["NAL", "NAL, τ = 1", "NAL, one learned τ", "NAL, α 0.7", "NAL, authors' schedule",
                     "NAL, q updated every 10th epoch from epoch 20",
                     "NAL (λ 0.5), authors' schedule, one learned τ per class"]
    for row, name in zip(rows, names):
        within = nal_variant(row)
        assert name.split(", ", 1)[-1] == within if within != "full NAL" else name.startswith("NAL")
    assert long_variant({"method": "sce", "sce_alpha": 0.05}) == "SCE (α 0.05)" == nal_variant(
        {"method": "sce", "sce_alpha": 0.05})
    assert long_variant({"method": "sce", "sce_alpha": 0.1}) == "SCE"


@pytest.mark.usefixtures("fashion_mnist")
def test_load_snapshots_of_a_committed_run():
    results = Path(__file__).resolve().parents[1] / "results"
    runs = load_runs(results / "runs", complete_only=True).runs
    # the default grid's runs (3,000 images, every sample recorded at epochs 5, 20 and 40): other grids' records keep
    # fewer samples or snapshots, and their names may sort first
    default = {e["name"] for e in json.loads((results / "grids" / "default.json").read_text())["experiments"]}
    nal = runs[(runs.method == "nal") & (runs.noise == "sym 40 %") & runs.run.isin(default)].run_dir[:2]
    snaps = load_snapshots(nal, "tau")
    assert set(snaps.epoch) == {5, 20, 40, -1} and set(snaps.run) == {p.rsplit("/", 1)[-1] for p in nal}
    assert len(snaps) == 4 * 2 * 3000 and snaps.value.between(0, 1).all()
    assert 0.3 < snaps.is_noisy.mean() < 0.4  # sym 40 % flips about 36 % of 10-class labels
    assert set(load_snapshots(nal, "tau", epochs=[20]).epoch) == {20}


# -- comparisons that can decide (nalkit.results.comparison) ------------------------------------------------------
def _tuning_runs():
    """GCE with q 0.3 best on the noisy validation set in every setting, SCE with alpha 0.05; NAL with the lambda
    grid's 8 values of which only 4 are its budget (lambda 50 would win but is not a candidate)."""
    rows = []
    for seed in range(5):
        for noise in ("sym 40 %", "sym 80 %"):
            for q in (0.3, 0.5, 0.7, 0.9):
                rows.append({"method": "gce", "gce_q": q, "noise": noise, "seed": seed,
                             "last_val_acc_noisy": 0.5 - 0.1 * q + 0.001 * seed})
            for a in (0.01, 0.05, 0.1, 0.5):
                rows.append({"method": "sce", "sce_alpha": a, "noise": noise, "seed": seed,
                             "last_val_acc_noisy": 0.5 - abs(a - 0.05)})
            for lam in (0.01, 0.5, 2, 5, 10, 50):
                rows.append({"method": "nal", "lam": float(lam), "noise": noise, "seed": seed, "estimate_targets": True,
                             "attention": True, "alpha": 0.9, "update_period": 1,
                             "last_val_acc_noisy": 0.9 if lam == 50 else 0.5 - abs(lam - 2) / 100})
    return pd.DataFrame(rows)


def test_every_method_is_selected_by_the_same_rule_on_seeds_it_is_told():
    from nalkit.results import select_methods

    sel = select_methods(_tuning_runs())
    assert sel["gce"].chosen == 0.3 and sel["sce"].chosen == 0.05
    assert sel["nal"].chosen == 2.0 and set(sel["nal"].table.index) == {0.5, 2.0, 5.0, 10.0}  # 4 candidates, not 50
    assert sel["gce"].margin.n == 6  # paired over (setting, seed) of seeds 0-2 only
    assert "elr" not in sel  # no candidates in the frame


def test_early_stopping_reports_test_accuracy_at_the_best_noisy_validation_epoch():
    from nalkit.results import early_stopping

    epochs = pd.DataFrame({"run": ["a"] * 4 + ["b"] * 2, "method": "ce", "noise": "sym 40 %", "seed": [0] * 4 + [1] * 2,
                           "epoch": [5, 10, 15, 20, 5, 10],
                           "val_acc_noisy": [0.4, 0.5, 0.5, 0.3, np.nan, np.nan],
                           "test_acc": [0.70, 0.80, 0.79, 0.60, 0.7, 0.7]})
    es = early_stopping(epochs)
    assert list(es.run) == ["a"]  # run b never evaluated the validation set
    assert es.epoch[0] == 10 and es.value[0] == 0.80  # the earliest of the tied best epochs


def test_seeds_needed_from_the_observed_spread():
    from nalkit.results import Difference, seeds_needed

    assert seeds_needed(Difference("a", "b", 3, 0.01, 0.02, -0.04, 0.06)) == 18  # 2.110 * 0.02 / sqrt(18) < 0.01
    assert seeds_needed(Difference("a", "b", 5, 0.05, 0.01, 0.04, 0.06)) == 3
    assert seeds_needed(Difference("a", "b", 1, 0.05, float("nan"), float("nan"), float("nan"))) is None
    assert seeds_needed(Difference("a", "b", 5, 0.0, 0.01, -0.01, 0.01)) is None


def test_ce_with_early_stopping_is_one_more_method_paired_on_the_seed():
    from nalkit.results import EARLY_STOPPED, paired_difference, with_early_stopping

    runs = pd.DataFrame({"run": ["c0", "c1", "n0", "n1"], "method": ["ce", "ce", "nal", "nal"], "noise": "sym 40 %",
                         "seed": [0, 1, 0, 1], "last_test_acc": [0.6, 0.62, 0.8, 0.81]})
    epochs = pd.DataFrame({"run": ["c0"] * 3 + ["c1"] * 3, "method": "ce", "noise": "sym 40 %",
                           "seed": [0] * 3 + [1] * 3, "epoch": [5, 10, 15] * 2,
                           "val_acc_noisy": [0.5, 0.6, 0.4, 0.55, 0.5, 0.45],
                           "test_acc": [0.75, 0.79, 0.6, 0.78, 0.7, 0.62]})
    out = with_early_stopping(runs, epochs)
    es = out[out.method == EARLY_STOPPED].set_index("seed")
    assert list(es.last_test_acc) == [0.79, 0.78] and list(es.stop_epoch) == [10, 5]
    assert len(out) == 6 and (out[out.method == "ce"].last_test_acc == [0.6, 0.62]).all()  # CE itself unchanged
    d = paired_difference(out, "last_test_acc", "nal", EARLY_STOPPED)
    assert d.n == 2 and abs(d.mean - (0.8 - 0.79 + 0.81 - 0.78) / 2) < 1e-12
    assert with_early_stopping(runs, epochs.drop(columns="val_acc_noisy").assign(val_acc_noisy=np.nan)).equals(runs)


def test_ranking_resolves_what_the_seeds_can_and_says_how_many_the_rest_need():
    from nalkit.results import ranking

    rows = []
    for seed in range(5):
        wobble = 0.01 * (seed - 2)
        rows += [{"method": "nal", "noise": "sym 40 %", "seed": seed, "last_test_acc": 0.80 + wobble},
                 {"method": "ce", "noise": "sym 40 %", "seed": seed, "last_test_acc": 0.60},
                 # SCE 0.5 points below NAL with a spread of 2 points: unresolved at 5 seeds
                 {"method": "sce", "noise": "sym 40 %", "seed": seed, "last_test_acc": 0.795 - wobble}]
    r = ranking(pd.DataFrame(rows)).set_index("method")
    assert list(r["rank"].sort_values().index) == ["nal", "sce", "ce"]
    assert r.loc["ce", "resolved"] and pd.isna(r.loc["ce", "seeds_needed"])
    assert not r.loc["sce", "resolved"] and r.loc["sce", "seeds_needed"] > 5
    assert pd.isna(r.loc["nal", "diff"]) and r.loc["sce", "n"] == 5


@pytest.mark.timeout(300)
def test_the_default_grid_runs_the_values_the_tuning_grids_choose():
    """configs/grids/default.yaml runs every method at the value select_methods chooses from the committed tuning
    records, with the noisy validation set and 5 seeds (checked once the tuning grid is complete)."""
    from nalkit.grid import expand_grid
    from nalkit.results import CONFIG_COLUMNS, NAL_CANDIDATES, TUNED, config_value, load_runs, select_methods

    root = Path(__file__).resolve().parents[1]
    manifest = root / "results" / "grids" / "tuning.json"
    if not manifest.is_file():
        pytest.skip("the tuning grid has not run")
    names = [e["name"] for e in json.loads(manifest.read_text())["experiments"]]
    runs = load_runs(root / "results" / "runs", complete_only=True).runs
    tuning = runs[runs.run.isin(names)]
    if len(tuning) < len(names):
        pytest.skip(f"the tuning grid holds {len(tuning)} of its {len(names)} runs")
    lam = json.loads((root / "results" / "grids" / "lambda.json").read_text())["experiments"]
    sweep = runs[runs.run.isin([e["name"] for e in lam]) & runs.lam.isin(NAL_CANDIDATES)]
    chosen = select_methods(pd.concat([tuning, sweep]))
    assert set(chosen) == set(TUNED)
    experiments = expand_grid(root / "configs" / "grids" / "default.yaml")
    for method, column in TUNED.items():
        used = {config_value(e.cfg, CONFIG_COLUMNS[column]) for e in experiments if e.cfg.method.name == method}
        assert used == {chosen[method].chosen}, (method, used, chosen[method].chosen)
    assert {e.cfg.data.noisy_val_size for e in experiments} == {5000}
    assert {e.cfg.run.seed for e in experiments} == {0, 1, 2, 3, 4}


def test_with_tau_mean_fills_older_records_from_the_clean_and_mislabeled_means():
    from nalkit.results import with_tau_mean

    epochs = pd.DataFrame({"run": ["old", "old", "new", "ce"], "tau_clean": [0.9, 0.8, 0.9, np.nan],
                           "tau_mislabeled": [0.5, 0.4, 0.5, np.nan], "tau_mean": [np.nan, np.nan, 0.77, np.nan]})
    runs = pd.DataFrame({"run": ["old", "new", "ce"], "actual_noise_rate": [0.25, 0.5, 0.3]})
    out = with_tau_mean(epochs, runs)
    assert out.tau_mean.iloc[:3].tolist() == pytest.approx([0.8, 0.7, 0.77])  # a written tau_mean is kept
    assert np.isnan(out.tau_mean.iloc[3])
    assert with_tau_mean(epochs.drop(columns="tau_mean"), runs).tau_mean.iloc[2] == pytest.approx(0.7)


@pytest.mark.timeout(60)
def test_the_untuned_comparison_runs_nal_at_the_papers_lambda_and_ranks_it_once():
    from nalkit.results import PAPER_LAMBDA, rank_change, untuned_runs

    rows = []
    for s in ("sym 40 %", "asym 40 %"):
        for seed in range(3):
            rows += [{"method": "ce", "noise": s, "seed": seed, "last_test_acc": 0.70},
                     {"method": "gce", "noise": s, "seed": seed, "gce_q": 0.7, "last_test_acc": 0.80},
                     {"method": "gce", "noise": s, "seed": seed, "gce_q": 0.9, "last_test_acc": 0.60}]
    tuning = pd.DataFrame(rows)
    sweep = pd.DataFrame([{"method": "nal", "noise": s, "seed": seed, "lam": lam, "attention": True,
                           "estimate_targets": True, "alpha": 0.9, "last_test_acc": acc}
                          for s in ("sym 40 %", "asym 40 %") for seed in range(3)
                          for lam, acc in ((PAPER_LAMBDA, 0.75), (2.0, 0.9))])
    untuned = untuned_runs(tuning, sweep)
    assert set(untuned[untuned.method == "nal"].lam) == {PAPER_LAMBDA}          # not the lambda tuning chose
    assert set(untuned[untuned.method == "gce"].gce_q) == {0.7}
    tuned = pd.concat([tuning[tuning.gce_q.fillna(0.9) == 0.9], sweep[sweep.lam == 2.0]])
    change = rank_change(untuned, tuned)
    assert list(change.before) == [2, 2] and list(change.after) == [1, 1] and set(change.of_before) == {3}


@pytest.mark.timeout(60)
def test_nal_standing_and_underfitting_decide_by_the_rulebook():
    from nalkit.results import ranking
    from nalkit.results.comparison import nal_standing
    from nalkit.results.mechanism import underfitting

    rows = []
    for s, (gap, spread) in {"a": (0.0, 0.001), "b": (-0.05, 0.001), "c": (0.05, 0.001), "d": (0.0, 0.05)}.items():
        for seed in range(5):
            w = spread * (seed - 2)
            rows += [{"method": "nal", "noise": s, "seed": seed, "last_test_acc": 0.8 + gap + w},
                     {"method": "sce", "noise": s, "seed": seed, "last_test_acc": 0.8 - w}]
    st = nal_standing(ranking(pd.DataFrame(rows))).set_index("noise")
    assert list(st.status) == ["open", "behind", "first", "open"]
    assert st.level.to_dict() == {"a": True, "b": False, "c": False, "d": False}   # a tight tie is level, a wide one not
    low, best = underfitting(pd.DataFrame({"lam": [0.01, 2.0, 50.0], "last_clean_acc": [0.3, 0.95, 0.9]}))
    assert list(low.index) == [0.01] and best == (2.0, 0.95)


def _ranked(gaps, seeds=5):
    """Runs of nal, sce and ce per setting: NAL − SCE of ``gaps[setting] = (mean, spread)``, CE far below."""
    rows = []
    for s, (gap, spread) in gaps.items():
        for seed in range(seeds):
            w = spread * (seed - 2)
            rows += [{"method": "nal", "noise": s, "seed": seed, "last_test_acc": 0.8 + gap + w},
                     {"method": "sce", "noise": s, "seed": seed, "last_test_acc": 0.8 - w},
                     {"method": "ce", "noise": s, "seed": seed, "last_test_acc": 0.6}]
    return pd.DataFrame(rows)


def test_nal_rank_names_the_rival_and_what_each_side_of_the_rulebooks_interval_holds():
    from nalkit.results import ranking
    from nalkit.results.comparison import nal_rank

    order = ranking(_ranked({"a": (0.05, 0.001), "b": (-0.05, 0.001), "c": (0.001, 0.02)}))
    r = nal_rank(order, ["c", "b", "a", "absent"]).set_index("noise")
    assert list(r.index) == ["c", "b", "a"]                           # the order asked for, absent settings left out
    assert r.loc["a", "rank"] == 1 and r.loc["a", "of"] == 3 and r.loc["a", "rival"] == "sce"   # the runner-up
    assert r.loc["b", "rank"] == 2 and r.loc["b", "rival"] == "sce"                              # the best
    assert r.loc["a", "mean"] == pytest.approx(0.85) and r.loc["a", "ce"].mean == pytest.approx(0.25)
    assert r.loc["a", "above"] == ["sce", "ce"] and r.loc["a", "below"] == [] and r.loc["a", "unresolved"] == []
    assert r.loc["b", "above"] == ["ce"] and r.loc["b", "below"] == ["sce"]
    (method, need), = r.loc["c", "unresolved"]                         # a 0.1-point gap in a 2-point spread
    assert method == "sce" and need > 5 and r.loc["c", "above"] == ["ce"]
    assert not len(nal_rank(order[order.method != "nal"])) and not len(nal_rank(order.iloc[:0]))


def _sweep_and_ablations(alone_gain, seeds=3):
    """The lambda sweep (full NAL at lambda 0.5 and 2) and the ablations at lambda 2: per setting, tau's AUROC
    without target estimation is full NAL's + ``alone_gain[setting] = (mean, spread)``."""
    sweep, abl = [], []
    for i, (s, (gain, spread)) in enumerate(alone_gain.items()):
        for seed in range(seeds):
            base = 0.6 + 0.01 * i + 0.02 * seed            # seeds differ a lot; the paired difference does not
            for lam, tau in ((0.5, base + 0.1), (2.0, base)):
                sweep.append({"run": f"{s}-{lam}-{seed}", "setting": s, "seed": seed, "lam": lam,
                              "variant": "full NAL", "last_tau_auroc": tau, "last_loss_auroc": 0.8 + 0.01 * i,
                              "last_test_acc": 0.8, "last_memorized": 0.1})
            abl.append({"run": f"{s}-alone-{seed}", "setting": s, "seed": seed, "lam": 2.0,
                        "variant": "no target estimation", "last_tau_auroc": base + gain + spread * (seed - 1),
                        "last_loss_auroc": 0.8, "last_test_acc": 0.75, "last_memorized": 0.2})
    return pd.DataFrame(sweep), pd.DataFrame(abl)


def test_tau_sorts_better_without_target_estimation_only_where_the_paired_interval_says_so():
    from nalkit.results.mechanism import tau_at_lambda

    sweep, abl = _sweep_and_ablations({"a": (0.10, 0.001), "b": (0.10, 0.2), "c": (0.03, 0.001), "d": (-0.1, 0.001)})
    t = tau_at_lambda(sweep, abl, 2.0, ["d", "c", "b", "a"])
    assert t.tau["a"] == pytest.approx(0.62) and t.loss["b"] == pytest.approx(0.81)
    assert t.mean_tau == pytest.approx(np.mean([0.62 + 0.01 * i for i in range(4)]))
    assert t.best_lam == 0.5 and t.best_tau == pytest.approx(t.mean_tau + 0.1)
    assert t.alone["a"] == pytest.approx(0.72) and t.gain["a"].mean == pytest.approx(0.10)
    # a gain of 0.10 within a spread of 0.2 is undecided; a gain of 0.03 with a tight interval counts (the former
    # "+ 0.05" margin said the opposite of both)
    assert t.better == ["c", "a"]
    none = tau_at_lambda(sweep, abl.iloc[:0], 2.0)
    assert none.better == [] and not len(none.alone) and none.gain == {}


def test_the_ablations_say_where_the_robustness_comes_from():
    from nalkit.results.mechanism import ablation_answer, ablation_runs

    rows = []
    for s, (no_tau, no_q) in {"a": (-0.05, 0.0), "b": (0.0, -0.05)}.items():
        for seed in range(3):
            w = 0.002 * (seed - 1)
            for variant, acc, mem in (("full NAL", 0.8, 0.1), ("τ = 1", 0.8 + no_tau + w, 0.3),
                                      ("no target estimation", 0.8 + no_q - w, 0.2)):
                rows.append({"run": f"{s}-{variant}-{seed}", "setting": s, "seed": seed, "lam": 2.0, "variant": variant,
                             "last_test_acc": acc, "last_memorized": mem + 0.01 * seed, "last_tau_auroc": 0.65})
    runs = pd.DataFrame(rows)
    sweep, abl = runs[runs.variant == "full NAL"], runs[runs.variant != "full NAL"]
    assert len(ablation_runs(pd.concat([sweep, sweep.assign(lam=0.5, run=sweep.run + "x")]), abl)) == len(runs)
    answer = ablation_answer(sweep, abl, ["a", "b"])
    assert answer.costs == {"τ = 1": ["a"], "no target estimation": ["b"]}
    assert answer.gains == {"τ = 1": [], "no target estimation": []} and answer.source == "attention"
    assert answer.effects["τ = 1"]["a"].mean == pytest.approx(-0.05) and answer.lam == 2.0
    assert answer.memorised[("a", "τ = 1")] == pytest.approx(0.31) and answer.tau_auroc[("b", "full NAL")] == 0.65
    only_q = ablation_answer(sweep, abl[(abl.variant != "τ = 1") | (abl.setting == "b")], ["a", "b"])
    assert only_q.source == "targets" and only_q.costs["τ = 1"] == []
    assert ablation_answer(sweep, abl[abl.variant == "τ = 1"]) is None     # an ablation without records


def test_snapshots_of_a_sweep_cell_give_the_separation_per_epoch_and_the_stages(monkeypatch):
    from nalkit.results import load
    from nalkit.results.mechanism import stage_overview, sweep_snapshots

    noisy = np.arange(100) < 40
    rows = []
    for run, shift in (("r0", 0.0), ("r1", 0.02)):
        for epoch, gap in ((5, 0.0), (20, 0.5), (40, 1.0)):
            # clean tau 0.85 + shift; mislabeled samples lower by ``gap / 2`` for all but 5 of them
            value = np.where(noisy & (np.arange(100) >= 5), 0.85 + shift - gap * 0.5, 0.85 + shift)
            rows.append(pd.DataFrame({"run": run, "epoch": epoch, "sample": np.arange(100), "value": value,
                                      "is_noisy": noisy}))
    snaps = pd.concat(rows, ignore_index=True)
    monkeypatch.setattr(load, "load_snapshots", lambda dirs, key="tau", epochs=None: snaps)
    sweep = pd.DataFrame({"setting": "s", "lam": 2.0, "run_dir": ["r0", "r1"]})
    cell = sweep_snapshots(sweep, "s", 2.0)
    assert list(cell.separation.index) == [5, 20, 40] and len(cell.snapshots) == 600
    assert cell.separation.auroc_mean.iloc[0] == pytest.approx(0.5) and cell.separation.auroc_std.iloc[0] == 0
    assert cell.separation.auroc_mean.iloc[-1] == pytest.approx(1 - 0.5 * 5 / 40)    # 5 mislabeled tie the clean
    assert cell.last_median_mislabeled == pytest.approx(0.36)                          # mean of 0.35 and 0.37
    # apart (AUROC >= 0.75), not final: the clean samples' median tau (0.86) is below 0.9
    assert cell.stages.apart and not cell.stages.final and cell.stages.best_epoch == 20
    empty = sweep_snapshots(sweep, "other", 2.0)
    assert empty.stages is None and not len(empty.snapshots) and np.isnan(empty.last_median_mislabeled)
    from nalkit.results import tau_stages

    final = tau_stages(pd.DataFrame({"run": "r", "epoch": [5, 40], "auroc": [0.5, 0.95], "median_clean": 0.99}))
    o = stage_overview({("s", 2.0): (cell.stages, 0.36), ("t", 0.5): (final, 0.9)})
    assert [(s, lam) for s, lam, _ in o.apart] == [("s", 2.0), ("t", 0.5)] and o.final == [("t", 0.5)]
    assert (o.lowest, o.highest) == (0.36, 0.9)


@pytest.mark.timeout(60)
def test_tuning_effects_pair_the_chosen_value_with_the_authors_one_per_setting():
    from nalkit.results import Selection
    from nalkit.results.comparison import tuning_effects

    def chose(value):
        return Selection("p", pd.DataFrame(), value, None, None)

    rows = []
    for s in ("sym 40 %", "asym 40 %"):
        for seed in range(3):
            w = 0.001 * seed
            rows += [{"method": "gce", "noise": s, "seed": seed, "gce_q": 0.7, "last_test_acc": 0.70 + w},
                     {"method": "gce", "noise": s, "seed": seed, "gce_q": 0.9, "last_test_acc": 0.75 + 2 * w},
                     {"method": "elr", "noise": s, "seed": seed, "elr_lam": 3.0, "last_test_acc": 0.8}]
    runs = pd.DataFrame(rows)
    untuned, tuned = runs[runs.gce_q.fillna(0.7) == 0.7], runs[runs.gce_q.fillna(0.9) == 0.9]
    t = tuning_effects(untuned, tuned[tuned.seed < 2], {"gce": chose(0.9), "elr": chose(3.0)},
                       ["asym 40 %", "sym 40 %", "sym 80 %"]).set_index("method")
    assert list(t.index) == ["gce", "elr"]                              # the order of AUTHORS_VALUES; SCE not tuned
    assert t.loc["elr", "kept"] and t.loc["elr", "change"] == {} and not t.loc["gce", "kept"]
    assert (t.loc["gce", "authors"], t.loc["gce", "chosen"]) == (0.7, 0.9)
    change = t.loc["gce", "change"]
    assert list(change) == ["asym 40 %", "sym 40 %"] and change["sym 40 %"].n == 2     # only the seeds both ran
    assert change["sym 40 %"].mean == pytest.approx(0.0505)
    assert tuning_effects(untuned, tuned.iloc[:0], {"gce": chose(0.9)}).change.iloc[0] == {}   # nothing to pair


def test_a_sweep_setting_names_its_best_lambdas_and_the_runs_that_collapsed_to_chance():
    from nalkit.results.mechanism import COLLAPSED, sweep_setting

    rows = [{"setting": s, "lam": lam, "seed": seed, "last_test_acc": acc, "last_tau_auroc": tau,
             "last_memorized": mem}
            for s in ("a", "b") for seed in range(3)
            for lam, acc, tau, mem in ((0.5, 0.80, 0.70, 0.05), (2.0, 0.84, 0.65, 0.09),
                                       (50.0, 0.10 if seed else 0.60, 0.50, 0.02))]
    runs = pd.DataFrame(rows)
    w = sweep_setting(runs, "a")
    assert list(w.means.index) == [0.5, 2.0, 50.0] and (w.best_acc, w.best_tau) == (2.0, 0.5)
    assert (w.memorised_low, w.memorised_high) == (pytest.approx(0.02), pytest.approx(0.09))
    assert w.collapsed == {50.0: (2, 3)} and COLLAPSED == 0.11          # two of three runs at chance (10 %)
    assert sweep_setting(runs.assign(last_test_acc=0.5), "b").collapsed == {}


def test_the_selection_agrees_with_clean_labels_by_rank_and_unmoved_targets_are_named():
    from nalkit.results.mechanism import UNMOVED, ablation_means, rank_agreement, unmoved_targets

    rows = []
    for s in ("sym", "asym"):
        for seed in range(3):
            for lam, val, clean in ((0.5, 0.60, 0.80), (2.0, 0.62, 0.79), (10.0, 0.50, 0.70)):
                rows.append({"method": "nal", "noise": s, "seed": seed, "lam": lam, "last_val_acc_noisy": val,
                             "last_val_acc_clean": clean})
    runs = pd.DataFrame(rows)
    sel = select_lambda(runs)
    # noisy ranks 2, 1, 3 against clean ranks 1, 2, 3: a rank correlation of 0.5
    assert sel.chosen == 2.0 and rank_agreement(runs, sel) == pytest.approx(0.5)
    abl = pd.DataFrame([{"setting": s, "variant": v, "seed": seed, "last_corrected_acc": acc + 0.001 * seed,
                         "last_memorized": 0.1, "last_tau_auroc": 0.6}
                        for s, shift in (("sym", 0.0), ("asym", 0.1)) for seed in range(3)
                        for v, acc in (("full NAL", 0.9), ("no target estimation", 0.64 + shift),
                                       ("α 0.99", 0.64 + shift + UNMOVED / 2), ("α 0.7", 0.88),
                                       ("once", 0.64 + shift + (2 * UNMOVED if s == "asym" else 0)))])
    assert unmoved_targets(abl, ["α 0.7", "α 0.99", "once", "absent"]) == ["α 0.99"]   # 'once' moved at asym
    assert unmoved_targets(abl[abl.variant != "no target estimation"], ["α 0.99"]) == []
    means = ablation_means(abl)
    assert means.loc[("asym", "no target estimation"), "last_corrected_acc"] == pytest.approx(0.741)
    assert list(ablation_means(abl.drop(columns="last_corrected_acc")).columns) == ["last_memorized", "last_tau_auroc"]
