"""The book's formatting helpers (book/nalbook.py): numbers rounded as the tables print them, numbered tables."""

import sys

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
    env = {"device": "cpu", "cpu_model": "Intel(R) Xeon(R) Processor", "cpu_capability": "AVX512", "torch_threads": 1}
    assert nalbook.hardware(env) == "cpu (Intel(R) Xeon(R) Processor, AVX512, 1 torch thread)"
    assert nalbook.hardware({"device": "cpu", "device_name": "x86_64", "torch_threads": 2}) == "cpu (x86_64, 2 torch threads)"


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


def test_method_cell_names_nal_runs_by_lambda_and_ablation():
    assert nalbook.method_cell("nal", 2.0, "full NAL") == "NAL λ=2"
    assert nalbook.method_cell("nal", 0.5, "no attention (τ = 1)") == "NAL λ=0.5, τ = 1"
    assert nalbook.method_cell("nal", 2.0, "α = 0.7") == "NAL λ=2, α=0.7"
    assert nalbook.method_cell("ce", float("nan"), "") == "CE"
    assert (nalbook.method_cell("nal", 2.0, "q updated in epochs divisible by 10 from epoch 60")
            == "NAL λ=2, q every 10th epoch from 60")
    assert nalbook.method_cell("nal", 2.0, "one learned τ per class") == "NAL λ=2, τ per class"
    assert " " in nalbook.method_cell("nal", 2.0, "some long variant name that must wrap")


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


def test_three_stages_sentence_names_the_settings_whose_separation_grew():
    text = nalbook.three_stages_sentence({("sym 40 %", 0.5): (0.52, 0.75, 0.9486), ("sym 80 %", 2.0): (0.52, 0.56, 0.9999)})
    assert "at sym 40 % at λ = 0.5 (0.52 → 0.75);" in text and "sym 80 % at λ = 2 (" not in text
    assert "between 0.949 and 0.9999 in every panel" in text
    assert "at no setting;" in nalbook.three_stages_sentence({("asym 40 %", 2.0): (0.73, 0.69, 0.9999)})
