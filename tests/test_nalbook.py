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
    chosen = select_lambda(sweep).chosen
    assert f"chooses λ = {chosen:g};" in f["selection"]
    at = sweep[sweep.lam == chosen].groupby("setting").last_tau_auroc.mean()
    for s in nalbook.settings_of(sweep):
        assert f"{at[s]:.2f} ({s})" in f["tau"]
