"""The book's formatting helpers (book/nalbook/): numbers rounded as the tables print them, numbered tables."""

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "book"))
nalbook = pytest.importorskip("nalbook")


def test_percent_and_mean_std_formats():
    assert nalbook.pct(0.84316) == "84.3 %" and nalbook.pct(float("nan")) == "n/a"
    assert nalbook.pm([0.8, 0.82, 0.81]) == "81.0 ± 1.0"
    assert nalbook.pm([0.5]) == "50.0" and nalbook.pm([]) == "–"
    assert nalbook.pm(pd.Series([0.71, 0.73, np.nan]), scale=1, digits=2) == "0.72 ± 0.01"


def test_table_md_is_a_numbered_myst_table_with_escaped_cells():
    frame = pd.DataFrame({"CE": ["69.9 ± 0.8", None], "NAL": ["a|b", "x\ny"]}, index=["sym 40 %", "sym 80 %"])
    text = nalbook.table_md(frame.rename_axis("noise"), "Accuracy of `nalkit` runs (%).", "tab-x")
    lines = text.splitlines()
    # a colon fence: the caption may hold backticks, which a backtick fence's info string may not
    assert lines[0] == ":::{table} Accuracy of `nalkit` runs (%)." and lines[1] == ":name: tab-x"
    assert lines[-1] == ":::"
    assert "| noise | CE | NAL |" in lines and "| sym 80 % | – | x y |" in lines and "a\\|b" in text


def test_hardware_names_cpu_isa_and_threads():
    from nalkit.results import hardware_name

    env = {"device": "cpu", "cpu_model": "Intel(R) Xeon(R) Processor", "cpu_capability": "AVX512", "torch_threads": 1}
    assert hardware_name(env) == "cpu (Intel(R) Xeon(R) Processor, AVX512, 1 torch thread)"
    assert hardware_name({"device": "cpu", "device_name": "x86_64", "torch_threads": 2}) == "cpu (x86_64, 2 torch threads)"


def test_bullets():
    assert nalbook.bullets(["a", "b"]) == "- a\n- b"


def test_join_and():
    assert nalbook.join_and([]) == "" and nalbook.join_and(["a"]) == "a"
    assert nalbook.join_and(["a", "b"]) == "a and b" and nalbook.join_and(["a", "b", "c"]) == "a, b and c"


def test_findings_follow_the_committed_records():
    """Each verdict sentence states what the records hold: the ranks, the selected lambda, the tau AUROCs."""
    from nalkit.results import select_lambda

    f = nalbook.findings()
    default, _ = nalbook.grid_runs("default")
    sweep, _ = nalbook.grid_runs("lambda")
    if not len(default) or not len(sweep):
        pytest.skip("the committed default and lambda grids are needed")
    for s in nalbook.settings_of(default):
        means = default[default.setting == s].groupby("method").last_test_acc.mean().sort_values(ascending=False)
        rank = list(means.index).index("nal") + 1
        assert f"at {s} NAL ranks {rank} of {len(means)} with {100 * means['nal']:.1f} %" in f["ranking"]
    sel = select_lambda(sweep)
    chosen = sel.chosen
    assert f"chooses λ = {chosen:g}, ahead of the runner-up λ = {sel.runner_up:g} by +" in f["selection"]
    at = sweep[sweep.lam == chosen].groupby("setting").last_tau_auroc.mean()
    for s in nalbook.settings_of(sweep):
        assert f"{at[s]:.2f} ({s})" in f["tau"]


def test_method_cell_names_nal_runs_by_lambda_and_the_vocabularys_variant():
    assert nalbook.method_cell("nal", 2.0, "full NAL") == "NAL λ=2"
    assert nalbook.method_cell("nal", 0.5, "τ = 1") == "NAL λ=0.5, τ = 1"
    assert nalbook.method_cell("nal", 2.0, "α 0.7") == "NAL λ=2, α 0.7"
    assert nalbook.method_cell("ce", float("nan"), "CE") == "CE"
    assert nalbook.method_cell("nal", 0.5, "authors' schedule, one learned τ") == "NAL λ=0.5, authors' schedule, one learned τ"


def test_runs_index_html_rows_sorted_linked_and_dashes(tmp_path):
    (tmp_path / "r-nal").mkdir()
    (tmp_path / "r-nal" / "experiment.ipynb").write_text("{}")
    nan = float("nan")
    runs = pd.DataFrame({
        "run": ["r-nal", "r-ce", "r-ce0"], "setting": ["sym 40 %", "sym 40 %", "asym 40 %"],
        "method": ["nal", "ce", "ce"], "lam": [2.0, nan, nan], "variant": ["full NAL", "", ""], "seed": [0, 1, 0],
        "last_test_acc": [0.841, 0.70, 0.74], "best_test_acc": [0.85, 0.82, 0.77], "last_memorized": [0.09, 0.68, 0.7],
        "last_tau_auroc": [0.654, nan, nan], "sec_per_epoch": [1.234, 1.0, 1.0]})
    text = nalbook.runs_index_html(runs, {"r-nal": ["ablations", "lambda"]}, runs_dir=tmp_path)
    rows = text.split("<tr>")[2:]  # after the header row
    assert len(rows) == 3 and "3 of 3 runs shown" in text
    # by setting (the book's order), then method (CE first), then lambda and seed
    assert ["sym\u00a040" in rows[0] and ">CE<" in rows[0], ">NAL λ=2<" in rows[1], "asym\u00a040" in rows[2]] == [True] * 3
    assert "<td>ablations, lambda</td>" in rows[1] and "<td>84.1</td>" in rows[1] and "<td>0.65</td>" in rows[1]
    assert 'href="../results/runs/r-nal/experiment.html"' in rows[1] and "<td>1.23</td>" in rows[1]
    assert "<td>–</td><td>sym" in rows[0] and rows[0].endswith("<td>–</td></tr>")  # no grid, no notebook


def test_grid_membership_reads_every_manifest(tmp_path):
    (tmp_path / "grids").mkdir()
    (tmp_path / "grids" / "b.json").write_text('{"experiments": [{"name": "x"}, {"name": "y"}]}')
    (tmp_path / "grids" / "a.json").write_text('{"experiments": [{"name": "x"}]}')
    assert nalbook.grid_membership(tmp_path) == {"x": ["a", "b"], "y": ["b"]}


def test_three_stages_sentence_uses_the_rulebooks_stage_rules():
    from nalkit.results import tau_stages

    def cell(aurocs, clean=0.99):
        return tau_stages(pd.DataFrame({"run": "r", "epoch": [5, 20, 40], "auroc": aurocs, "median_clean": clean}))

    text = nalbook.three_stages_sentence({("sym 40 %", 0.5): (cell([0.52, 0.75, 0.7]), 0.9486),
                                          ("sym 80 %", 2.0): (cell([0.52, 0.56, 0.6]), 0.9999)})
    # a growth of 0.1 (0.52 -> 0.62) is not separation; AUROC >= 0.75 at some snapshot is
    assert "at sym 40 % at λ = 0.5 (0.75 at epoch 20)," in text and "sym 80 % at λ = 2 (" not in text
    assert "final stage (AUROC ≥ 0.9 with the clean samples near 1) at none" in text
    assert "between 0.949 and 0.9999 in every panel" in text
    assert "at no setting and λ" in nalbook.three_stages_sentence({("asym 40 %", 2.0): (cell([0.52, 0.62, 0.6]), 0.99)})


@pytest.mark.timeout(60)
def test_underfit_sentence_names_the_lambdas_that_fit_few_clean_samples():
    runs = pd.DataFrame({"lam": [0.01, 0.01, 0.1, 2.0, 2.0, 50.0],
                         "last_clean_acc": [0.38, 0.40, 0.85, 0.95, 0.97, 0.3]})
    text = nalbook.underfit_sentence(runs)
    assert text.startswith(" At λ = 0.01 and 50 the network fits only 30–39 % of its correctly labelled")
    assert "(λ = 2: 96.0 %; under 0.8 times that counts as underfitting)" in text and "0.1" not in text
    assert nalbook.underfit_sentence(runs[runs.lam.isin([0.1, 2.0])]) == ""  # nobody underfits
    assert nalbook.underfit_sentence(pd.DataFrame({"lam": [1.0]})) == ""  # no clean-sample accuracy recorded


def _bench(rows):
    cols = ["benchmark", "quantity", "value", "unit", "ratio", "target", "device", "device_name", "threads", "torch",
            "date", "command", "note"]
    return pd.DataFrame([dict(zip(cols, r)) for r in rows], columns=cols)


@pytest.mark.timeout(60)
def test_nal_cost_answers_first_and_tells_the_two_timings_apart():
    nan = float("nan")
    overhead = _bench([
        ("nal_overhead", "step time, CE", 72.0, "ms", nan, nan, "cpu", "x", 1, "2", "d", "c", "5 steps"),
        ("nal_overhead", "step time, NAL (targets updated every batch) / CE", 74.0, "ms", 0.9995, "<= 1.03", "cpu",
         "x", 1, "2", "d", "c", "median of 45 paired repeats"),
        ("nal_overhead", "memory (counted), NAL / CE", 25.6, "MiB", 1.0049, "<= 1.02", "cpu", "x", 1, "2", "d", "c",
         nan)])
    runs = pd.DataFrame({"method": ["ce"] * 3 + ["nal"] * 3 + ["nal"] * 4, "hardware": ["amd"] * 6 + ["intel"] * 4,
                         "sec_per_epoch": [1.2, 1.25, 1.3, 1.30, 1.33, 1.4, 2.0, 2.0, 2.0, 2.0]})
    table, text = nalbook.nal_cost(overhead, runs)  # NAL's runs on a machine without CE runs are left out
    assert list(table["NAL / CE"]) == ["1.00", "1.00"] and list(table.met) == ["yes", "yes"]
    assert text.startswith("**NAL costs what cross-entropy costs:** a NAL training step takes 1.00× CE's and it "
                           "holds 1.00× CE's memory")
    assert f"a different ratio, {1.33 / 1.25:.2f}× CE" in text and "from 1.20 to 1.30 s per epoch" in text
    assert "NAL's 3 runs by those of CE's 3 on the same CPU" in text
    assert "the median of the paired ratios: 1.00" in text
    slow = overhead.assign(ratio=overhead.ratio.where(overhead.ratio.isna(), 1.2))
    assert nalbook.nal_cost(slow, runs)[1].startswith("**NAL against cross-entropy:**")  # a target missed: no claim
    assert "no results yet" in nalbook.nal_cost(overhead.iloc[:0], runs)[1]


@pytest.mark.timeout(60)
def test_unmeasured_rows_become_one_sentence_and_leave_the_tables():
    nan = float("nan")
    recipes = _bench([("recipes", f"{r} (resnet, batch 64): {q}", nan, "s", nan, nan, "cuda", "", 1, "2", "d", "c",
                       "not yet measured (no GPU)")
                      for r in ("cifar10-sym40", "clothing1m") for q in ("step time", "peak memory")])
    gpu = _bench([("gpu_epoch", "FLOPs per image", 2.3, "GFLOP", nan, nan, "cpu", "x", 1, "2", "d", "c", "counted"),
                  ("gpu_epoch", "epoch time, batch 64, NAL", nan, "s", nan, "<= 2", "cuda", "", 1, "2", "d", "c",
                   "not yet measured (no GPU); ratio = epoch / FLOP floor")])
    text = nalbook.unmeasured_sentence([("gpu_epoch.csv", gpu), ("recipes.csv", recipes)])
    assert text.startswith("**Not measured** (5 rows of the files above")
    assert "in `gpu_epoch`, “epoch time, batch 64, NAL” (note: “not yet measured (no GPU)”)" in text
    assert ("in `recipes`, step time and peak memory of each of 2 configurations (cifar10-sym40, clothing1m) "
            "(note: “not yet measured (no GPU)”)") in text
    assert nalbook.benchmark_table("recipes.csv", recipes, 0) == ""  # nothing measured: no table
    shown = nalbook.benchmark_table("gpu_epoch.csv", gpu, 1)
    assert "FLOPs per image" in shown and "epoch time" not in shown and "not measured" not in shown
    assert nalbook.unmeasured_sentence([("gpu_epoch.csv", gpu.iloc[:1])]) == ""


@pytest.mark.timeout(300)
def test_when_attention_acts_follows_the_committed_records():
    sweep, epochs = nalbook.grid_runs("lambda")
    long_runs, _ = nalbook.grid_runs("long")
    if not len(sweep) or not (sweep.lam == 2).any():
        pytest.skip("the committed lambda grid is needed")
    at, ep = sweep[sweep.lam == 2], epochs[epochs.lam == 2]
    text = nalbook.when_attention_acts(at, ep, long_runs[long_runs.lam == 2] if len(long_runs) else long_runs,
                                       ["sym 40 %"])
    last = int(ep.epoch.max())
    assert f"At the last epoch ({last})" in text and "[](attention.md)" in text
    assert f"{at[at.setting == 'sym 40 %'].last_tau_mislabeled.mean():.4f} at sym 40 %" in text
    m = ep[ep.setting == "sym 40 %"].groupby("epoch")[["tau_clean", "tau_mislabeled"]].mean()
    first = int(m.index[m.max(axis=1) >= 0.9].min())
    assert f"up to epoch {first - 1}" in text  # the mean tau of both groups stays below 0.9 until then
    assert nalbook.when_attention_acts(at, ep.iloc[:0], long_runs, ["sym 40 %"]) == ""


@pytest.mark.timeout(60)
def test_every_page_that_reads_the_records_is_rebuilt_when_they_change():
    """A chapter that reads run records must be in the book extension's RECORD_PAGES, or an incremental build
    (`make book` after new runs) keeps its old numbers."""
    import importlib.util

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("nalkit_book", root / "book" / "_ext" / "nalkit_book.py")
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
    readers = re.compile(r"grid_runs|all_runs|load_runs|claim_grids|results/runs|read_benchmarks")
    pages = [p for p in [*root.glob("book/*.md"), *root.glob("book/*.ipynb")] if readers.search(p.read_text())]
    assert len(pages) >= 6
    missing = [p.stem for p in pages if f"book/{p.stem}" not in ext.RECORD_PAGES]
    assert not missing, f"pages that read the records but are not rebuilt when they change: {missing}"


def test_the_summary_says_where_nal_is_ahead_of_or_behind_the_best_other_method():
    rows = []
    for s, ahead in (("sym 40 %", 0.03), ("sym 80 %", -0.04), ("asym 40 %", 0.0)):
        for seed in range(5):
            wobble = 0.002 * (seed - 2)
            rows += [{"method": "ce", "noise": s, "seed": seed, "last_test_acc": 0.6, "actual_noise_rate": 0.36},
                     {"method": "sce", "noise": s, "seed": seed, "last_test_acc": 0.8 + wobble,
                      "actual_noise_rate": 0.36},
                     {"method": "gce", "noise": s, "seed": seed, "last_test_acc": 0.7, "actual_noise_rate": 0.36},
                     {"method": "nal", "noise": s, "seed": seed, "last_test_acc": 0.8 + ahead + (seed % 2) * 0.004,
                      "actual_noise_rate": 0.36, "last_corrected_acc": np.nan}]
    sentences = nalbook.summary_sentences({"default": (pd.DataFrame(rows), pd.DataFrame())}, pd.DataFrame())
    assert sentences[1] == ("Against the best of the other robust methods in each setting (not tuned), after 40 epochs "
                            "(5 seeds) NAL is "
                            "ahead beyond the seed spread in 1 of 3 settings (SCE at sym 40 %), level (within ±1 point) "
                            "in 1 (SCE at asym 40 %) and behind in 1 (SCE at sym 80 %).")
    # no long tier: the first sentence is the 40-epoch one alone, with its horizon and seeds
    assert sentences[0].startswith("After 40 epochs (5 seeds) NAL ends 23.2 points of test accuracy above cross-entropy")


def test_the_ranking_verdict_separates_level_from_undecided():
    from nalkit.results import ranking

    rows = []
    for s, (gap, spread) in {"sym 40 %": (0.0, 0.001), "sym 80 %": (0.0, 0.03), "asym 40 %": (0.05, 0.001)}.items():
        for seed in range(5):
            wobble = spread * (seed - 2)
            rows += [{"method": "nal", "noise": s, "seed": seed, "last_test_acc": 0.8 + gap + wobble},
                     {"method": "sce", "noise": s, "seed": seed, "last_test_acc": 0.8 - wobble},
                     {"method": "ce", "noise": s, "seed": seed, "last_test_acc": 0.6}]
    text = nalbook.ranking_verdict(ranking(pd.DataFrame(rows)), ["sym 40 %", "sym 80 %", "asym 40 %"])
    assert text.startswith("**Ranking:** NAL is resolved above every other method at asym 40 %; not separable from "
                           "the best of the others at sym 40 % and sym 80 % with 5 seeds, and level with it within "
                           "±1 point (95 % interval) at sym 40 % (NAL − SCE +0.0 points, 95 % CI")
    assert "sym 80 % (SCE" not in text


def test_span_names_consecutive_seeds_as_a_range():
    assert nalbook._span([0, 1, 2, 3, 4]) == "0–4" and nalbook._span([3, 4]) == "3 and 4"
    assert nalbook._span([0, 2, 5]) == "0, 2 and 5"


def test_the_ranking_lines_name_what_is_resolved_by_the_rulebooks_side():
    from nalkit.results import ranking

    rows = []
    for s, (gap, spread) in {"sym 40 %": (0.05, 0.001), "sym 80 %": (-0.05, 0.001), "asym 40 %": (0.001, 0.02)}.items():
        for seed in range(5):
            w = spread * (seed - 2)
            rows += [{"method": "nal", "noise": s, "seed": seed, "last_test_acc": 0.8 + gap + w},
                     {"method": "sce", "noise": s, "seed": seed, "last_test_acc": 0.8 - w},
                     {"method": "ce", "noise": s, "seed": seed, "last_test_acc": 0.6}]
    text = nalbook.ranking_lines(ranking(pd.DataFrame(rows)), ["sym 40 %", "sym 80 %", "asym 40 %"],
                                 {"sym 40 %": "sym 40 % (36 % flipped)"})
    lines = text.splitlines()
    assert lines[0].startswith("- **sym 40 % (36 % flipped)** (last epoch, best first): NAL 85.0, SCE 80.0, CE 60.0. "
                               "NAL − SCE (the runner-up): +5.0 points")
    assert lines[0].endswith("NAL is resolved above SCE and CE.")
    assert lines[1].endswith("NAL is resolved above CE and below SCE.") and "NAL − SCE (the best)" in lines[1]
    assert "NAL is resolved above CE. Unresolved, with the seeds the observed mean and spread would need" in lines[2]
    assert lines[2].endswith("excludes 0: SCE (≥ 1,000).")       # a 0.1-point gap in a 4-point spread
