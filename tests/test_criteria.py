"""The rulebook (nalkit.results.criteria): every rule declared once, the verdict words, and the functions that
decide with them, on synthetic numbers with known answers."""

import numpy as np
import pandas as pd
import pytest

from nalkit.results import Difference
from nalkit.results import criteria as c

pytestmark = pytest.mark.timeout(60)


def diff(low, high, n=5):
    return Difference("a", "b", n, (low + high) / 2, 0.01, low, high)


def test_every_rule_is_declared_once_with_a_reason_and_its_constant_is_its_value():
    names = [r.name for r in c.RULES]
    assert len(names) == len(set(names))
    for r in c.RULES:
        assert r.question and r.rule and r.reason and r.used_by, r.name
        assert getattr(c, r.name) == r.value, r.name
    table = c.rulebook()
    assert list(table.rule) == names and set(table["fixed after seeing the records"]) <= {"yes", "no"}
    with pytest.raises(KeyError, match="no rule 'NOPE'; the rules are CONFIDENCE"):
        c.rule("NOPE")


def test_an_interval_that_covers_the_boundary_is_undecided_never_a_verdict():
    assert c.side(diff(0.01, 0.05)) == c.HOLDS and c.side(diff(-0.05, -0.01)) == c.FAILS
    assert c.side(diff(-0.01, 0.05)) == c.OPEN and c.side(diff(0.01, 0.05, n=1)) == c.OPEN
    assert c.side(diff(0.01, 0.05), boundary=0.02) == c.OPEN
    assert c.verdict_from_sides([c.OPEN, c.OPEN]) == c.UNDECIDED
    assert c.verdict_from_sides([c.OPEN, c.FAILS]) == c.NOT_REPRODUCED
    assert c.verdict_from_sides([c.HOLDS, c.FAILS]) == c.PARTLY
    assert c.verdict_from_sides([c.HOLDS, c.HOLDS]) == c.REPRODUCED
    assert c.verdict_from_sides([]) == c.NOT_TESTED


def test_matching_is_an_equivalence_not_a_failure_to_separate():
    assert c.standing(diff(-0.004, 0.004)) == "matches"
    assert c.standing(diff(-0.03, 0.03)) == "undecided"
    assert c.standing(diff(0.001, 0.004)) == "ahead" and c.standing(diff(-0.03, -0.02)) == "behind"
    assert c.standing(diff(0.0, 0.0, n=1)) == "one seed"


def stage_frame(aurocs, median_clean=0.99, epochs=(5, 20, 200)):
    return pd.DataFrame([{"run": f"r{s}", "epoch": e, "auroc": a, "median_clean": median_clean}
                         for s in range(3) for e, a in zip(epochs, aurocs)])


def test_one_definition_of_the_three_stages_and_stage_one_is_not_evidence():
    full = c.tau_stages(stage_frame((0.5, 0.8, 0.95)))
    assert (full.alike, full.apart, full.final, full.evidence) == (True, True, True, 2)
    assert full.best_epoch == 200 and "stage 3 yes" in full.words()
    only_first = c.tau_stages(stage_frame((0.5, 0.55, 0.6)))
    assert only_first.alike and only_first.evidence == 0
    assert c.stages_verdict([only_first]) == c.NOT_REPRODUCED
    apart = c.tau_stages(stage_frame((0.5, 0.9, 0.6)))
    assert c.stages_verdict([apart]) == c.PARTLY and apart.best_epoch == 20
    assert c.stages_verdict([full, full]) == c.REPRODUCED and c.stages_verdict([full, apart]) == c.PARTLY
    low_clean = c.tau_stages(stage_frame((0.5, 0.8, 0.95), median_clean=0.5))
    assert not low_clean.final
    assert c.tau_stages(stage_frame(()).iloc[:0]) is None and c.stages_verdict([None]) == c.NOT_TESTED


def test_cost_is_decided_on_the_paired_ratio_against_the_benchmarks_target():
    assert c.cost_verdict(1.0, 1.01) == c.REPRODUCED
    assert c.cost_verdict(c.COST_SAME + 0.01, 1.0) == c.PARTLY
    assert c.cost_verdict(1.2, 1.2) == c.NOT_REPRODUCED
    assert c.cost_verdict(float("nan")) == c.NOT_TESTED


def test_the_benchmark_checks_the_rulebooks_cost_targets():
    from pathlib import Path

    source = (Path(__file__).resolve().parents[1] / "benchmarks" / "nal_overhead.py").read_text()
    assert "COST_SAME" in source and "MEMORY_SAME" in source and '"<= 1.03"' not in source


def test_the_separation_words_follow_their_rules():
    assert c.separation_word(0.55) == "barely separates them"
    assert c.separation_word(c.SEPARATE_PARTLY) == "separates them partly"
    assert c.separation_word(c.SEPARATE_CLEARLY) == "separates them clearly"
    assert c.separation_word(np.nan) == "cannot be judged"
