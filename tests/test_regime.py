"""Does the regime matter? (nalkit.results.regime): the regime tier's runs found by their configs, every claim
decided per regime by the rulebook, "not reached" where CE has not memorised, and which regime turns a verdict."""

import numpy as np
import pandas as pd
import pytest

from nalkit.results.regime import (
    NOT_REACHED,
    REGIMES,
    held_in_every_regime,
    regime_matrix,
    regime_runs,
    regime_stability,
    regime_variant,
)

pytestmark = pytest.mark.timeout(60)
BASE_ROW = {"dataset": "fashion_mnist", "model": "small_cnn", "augment": False, "train_subset": 3000, "epochs": 40,
            "noise_mode": "sym", "noise_rate": 0.4, "noisy_val_size": 5000, "cv_folds": np.nan, "state": "complete", "actual_noise_rate": 0.36,
            "record_format": 3}
VARIANT_CONFIG = {"CE": {"method": "ce"}, "SCE (α 0.05)": {"method": "sce", "sce_alpha": 0.05},
                  "NAL": {"method": "nal", "lam": 2.0, "attention_mode": "sample", "attention": True},
                  "NAL, one learned τ": {"method": "nal", "lam": 2.0, "attention_mode": "global", "attention": True},
                  "NAL, τ = 1": {"method": "nal", "lam": 2.0, "attention_mode": "sample", "attention": False}}


def tier(changes=None, nal_minus_ce=0.1, ce_memorised=0.99, seeds=3, tag="base"):
    rows = []
    for variant, cfg in VARIANT_CONFIG.items():
        for seed in range(seeds):
            wobble = 0.003 * (seed - 1) * (variant == "NAL")
            acc = 0.7 + (nal_minus_ce if variant.startswith("NAL") else 0.0) + wobble
            rows.append({**BASE_ROW, **(changes or {}), **cfg, "seed": seed, "run": f"{tag}-{variant}-{seed}",
                         "last_test_acc": acc, "last_memorized": ce_memorised if variant == "CE" else 0.1 + wobble,
                         "last_corrected_acc": 0.8 + wobble if variant == "NAL" else np.nan})
    return pd.DataFrame(rows)


def test_the_variants_and_regimes_are_found_by_their_configs():
    assert regime_variant({"method": "sce", "sce_alpha": 0.1}) is None            # not the tuned alpha
    assert regime_variant({"method": "nal", "lam": 0.5}) is None                  # not the selected lambda
    assert regime_variant({"method": "nal", "lam": 2.0, "update_period": 10}) is None   # the authors' schedule
    assert regime_variant({"method": "nal", "lam": 2.0, "attention_mode": "class"}) is None
    assert regime_variant({"method": "nal", "lam": 2.0, "update_when": "epoch"}) is None
    runs = pd.concat([tier(), tier({"noise_mode": "idn", "noise_rate": 0.4}, tag="idn"),
                      tier({"train_subset": 12000}, tag="12k"), tier({"augment": True}, tag="aug")])
    labelled = regime_runs(runs)
    # the base runs are the reference of the noise, data-size and model axes; augmentation without 200 epochs is
    # no regime of the tier
    counts = labelled.groupby(["axis", "regime"]).size()
    assert counts[("noise type", "class-conditional sym 40 %")] == 15 and counts[("noise type", "IDN 40 %")] == 15
    assert counts[("data size", "12,000 images")] == 15 and counts[("model", "small CNN")] == 15
    assert "crop + flip, 200 epochs" not in set(labelled.regime)
    assert len({r.axis for r in REGIMES}) == 5


def test_each_claim_is_decided_per_regime_and_the_turning_regime_is_named():
    runs = pd.concat([tier(), tier({"noise_mode": "idn", "noise_rate": 0.4}, nal_minus_ce=-0.1, tag="idn"),
                      tier({"train_subset": 12000}, ce_memorised=0.4, tag="12k")])
    matrix = regime_matrix(runs, pd.DataFrame())
    cell = matrix.set_index(["axis", "regime", "key"]).word
    assert cell[("noise type", "class-conditional sym 40 %", "C1")] == "holds"
    assert cell[("noise type", "IDN 40 %", "C1")] == "fails"
    assert cell[("data size", "12,000 images", "C3")] == NOT_REACHED       # CE memorised 40 %: not most
    assert cell[("data size", "12,000 images", "C1")] == "holds"
    assert cell[("noise type", "IDN 40 %", "C5 stage 2")] == "no records"   # no per-epoch tau here
    assert cell[("noise type", "IDN 40 %", "C5 stage 3")] == "no records"   # nor a record's arrays
    stability = regime_stability(matrix)
    c1 = stability[(stability.key == "C1") & (stability.axis == "noise type")].iloc[0]
    assert c1.turned == ["IDN 40 %"] and c1.stable is False
    c3 = stability[(stability.key == "C3") & (stability.axis == "data size")].iloc[0]
    assert c3.unreached == ["12,000 images"] and c3.stable is None          # not reached is neither
    assert held_in_every_regime(stability, "C1").startswith("turned by IDN 40 % (noise type: holds → fails)")
    assert held_in_every_regime(stability, "C6") == "held in every regime that decides it (2): holds, as in the CPU regime"
    assert held_in_every_regime(stability, "C9") == "not tested in another regime"


def test_an_undecided_regime_neither_keeps_nor_turns_a_verdict():
    """The rulebook: an interval that covers the boundary is never a verdict. A regime with one seed or an interval
    across 0 is listed as undecided there, not as turning the reference's verdict; where the reference itself is
    undecided, no regime turns it, and what the regimes decide is reported beside."""
    one_seed = tier({"noise_mode": "idn", "noise_rate": 0.4}, seeds=1, tag="idn40")
    wide = tier({"noise_mode": "idn", "noise_rate": 0.2}, nal_minus_ce=0.0, tag="idn20")
    wide.loc[wide.run.str.startswith("idn20-NAL-"), "last_test_acc"] += [0.05, -0.05, 0.0]  # NAL − CE: 0 ± 0.05
    matrix = regime_matrix(pd.concat([tier(), one_seed, wide]), pd.DataFrame())
    cell = matrix.set_index(["axis", "regime", "key"]).word
    assert cell[("noise type", "IDN 40 %", "C1")] == "undecided" and cell[("noise type", "IDN 20 %", "C1")] == "undecided"
    stability = regime_stability(matrix)
    c1 = stability[(stability.key == "C1") & (stability.axis == "noise type")].iloc[0]
    assert c1.turned == [] and c1.tested == [] and c1.open == ["IDN 20 %", "IDN 40 %"] and c1.stable is None
    assert held_in_every_regime(stability, "C1") == ("not decided in another regime; undecided in IDN 20 % (noise type), "
                                                     "IDN 40 % (noise type)")
    # the reference undecided (C8: NAL level with one learned tau), a regime that decides: reported, not a turn
    base = tier()
    glob_ = base.run.str.startswith("base-NAL, one learned τ-")
    base.loc[glob_, "last_test_acc"] = base[base.run.str.startswith("base-NAL-")].last_test_acc.values
    ahead = tier({"noise_mode": "idn", "noise_rate": 0.2}, tag="idn20")
    ahead.loc[ahead.run.str.startswith("idn20-NAL, one learned τ-"), "last_test_acc"] -= 0.05
    stability = regime_stability(regime_matrix(pd.concat([base, ahead]), pd.DataFrame()))
    c8 = stability[(stability.key == "C8") & (stability.axis == "noise type")].iloc[0]
    assert c8.reference_word == "undecided" and c8.tested == ["IDN 20 %"] and c8.turned == [] and c8.stable is None
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book"))
    import nalbook

    matrix = regime_matrix(pd.concat([base, ahead]), pd.DataFrame())
    line = next(t for t in nalbook.regime_lines(regime_stability(matrix), matrix) if t.startswith("**C8"))
    assert "undecided in the reference regime of *noise type*, *data size* and *model*, so no regime there can turn it" in line
    assert "decided in IDN 20 % (noise type): holds" in line
    # the intro says the same: an undecided reference cannot be turned, and what the regime decides is beside it
    text = nalbook.regime_sentence(regime_stability(matrix))
    assert "C8 is undecided in the CPU regime itself, so no regime can turn it (C8 holds at IDN 20 %)" in text


def test_every_run_of_the_regime_grids_lands_in_a_regime_of_the_chapter():
    """The grid files and the chapter's regime definitions agree: each regime grid's experiment of the five variants
    is in a regime; the IDN grids' other methods and controls (every method and control of the default grid, NAL with
    the authors' schedule) are shown beside the matrix, not in it."""
    from pathlib import Path

    from nalkit.grid import load_grid
    from nalkit.results.load import CONFIG_COLUMNS, config_value

    repo = Path(__file__).resolve().parents[1]
    outside = []
    for grid in sorted((repo / "configs" / "grids").glob("regime*.yaml")):
        for e in load_grid(grid).experiments:
            row = {k: config_value(e.cfg, v) for k, v in CONFIG_COLUMNS.items()}
            if regime_variant(row) is None or not any(r.selects(row) for r in REGIMES):
                outside.append((grid.stem, row["method"], row["attention_mode"], row["update_period"]))
    assert outside and {g for g, *_ in outside} == {"regime-noise", "regime-noise-long"}, outside
    beyond = {(m, a if m == "nal" else None, p if m == "nal" else None) for _, m, a, p in outside}
    assert beyond == {("gce", None, None), ("elr", None, None), ("selc", None, None), ("nal", "class", 1),
                      ("nal", "schedule", 1), ("nal", "sample", 10)}, beyond


def test_the_claims_table_and_the_intro_say_which_verdicts_depend_on_the_regime():
    import sys
    from pathlib import Path

    from nalkit.results import claims_table

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book"))
    import nalbook

    runs = pd.concat([tier(), tier({"noise_mode": "idn", "noise_rate": 0.4}, nal_minus_ce=-0.1, tag="idn")])
    stability = regime_stability(regime_matrix(runs, pd.DataFrame()))
    claims = {c.key: c for c in claims_table({}, stages=pd.DataFrame(), regimes=stability)}
    assert claims["C1"].regimes == "turned by IDN 40 % (noise type: holds → fails)"
    assert claims["C6"].regimes == "held in every regime that decides it (1): holds, as in the CPU regime"
    assert claims["C9"].regimes == "" and claims["C1"].row()["in other regimes"] == claims["C1"].regimes
    text = nalbook.regime_sentence(stability)
    assert text.startswith("Across the regimes tested so far") and "the verdicts of C1 and C2 depend on the regime" in text
    only_base = regime_stability(regime_matrix(tier(), pd.DataFrame()))
    assert "not known yet" in nalbook.regime_sentence(only_base)


def _tau_record(path, clean_logit: float, seed: int):
    """A complete record whose clean samples (the last 300 of 400) end at τ = sigmoid(``clean_logit``)."""
    from nalkit.records import RunRecord

    rng = np.random.default_rng(seed)
    clean = rng.integers(0, 10, 400)
    noisy = clean.copy()
    noisy[:100] = (clean[:100] + 1) % 10
    logit = np.concatenate([rng.normal(-2.0, 0.3, 100), rng.normal(clean_logit, 0.3, 300)])
    rec = RunRecord(path)
    rec.write_arrays({"noisy_labels": noisy, "clean_labels": clean, "train_index": np.arange(400),
                      "final_tau_logit": logit.astype(np.float32)})
    rec.write_status(state="complete")
    return str(path)


def test_tau_stage_3_is_decided_per_regime_from_the_last_epoch(tmp_path):
    """C5's third stage in a regime: each NAL run's weaker margin of (last AUROC − STAGE_FINAL, clean median τ −
    STAGE_FINAL_CLEAN_MEDIAN), over the seeds; the claims table names each part of C5 with its own sentence."""
    from nalkit.results.criteria import STAGE_FINAL

    base, idn = tier(), tier({"noise_mode": "idn", "noise_rate": 0.4}, tag="idn")
    for frame, auroc, logit, tag in ((base, 0.97, 4.0, "base"), (idn, 0.97, 0.5, "idn")):   # τ 0.98 vs 0.62
        nal = frame.run.str.startswith(f"{tag}-NAL-")
        frame.loc[nal, "last_tau_auroc"] = auroc + 0.005 * np.arange(nal.sum())
        frame.loc[nal, "run_dir"] = [_tau_record(tmp_path / f"{tag}{s}", logit, s) for s in range(nal.sum())]
    matrix = regime_matrix(pd.concat([base, idn]), pd.DataFrame())
    row = matrix.set_index(["axis", "regime", "key"])
    ref, other = row.loc[("noise type", "class-conditional sym 40 %", "C5 stage 3")], row.loc[("noise type", "IDN 40 %", "C5 stage 3")]
    assert ref.word == "holds" and ref["mean"] == pytest.approx(0.975 - STAGE_FINAL, abs=0.01)   # the AUROC is weaker
    assert other.word == "fails" and other["mean"] < -0.2 and "clean median τ 0.62" in other.note
    stability = regime_stability(matrix)
    assert held_in_every_regime(stability, "C5") == (
        "Stage 2: not tested in another regime. Stage 3: turned by IDN 40 % (noise type: holds → fails).")


def test_memorisation_pace_per_regime_counts_each_reference_once():
    """CE's memorised share at its last epoch and the first epoch past MEMORISING, per regime; the CPU regime is
    the reference of several axes but one set of runs, so it appears once."""
    from nalkit.results.regime import memorisation_pace, regime_epochs

    base, big = tier(), tier({"train_subset": 12000}, tag="12k")
    rows = []
    for frame, slope in ((base, 0.024), (big, 0.01)):  # memorised share = slope * epoch: past 0.5 at 21, never
        for run in frame[frame.run.str.contains("-CE-")].run:
            rows += [{"run": run, "epoch": e, "memorized": slope * e + 0.001 * int(run[-1])} for e in range(1, 41)]
    epochs = pd.DataFrame(rows)
    e = regime_epochs(pd.concat([base, big]), epochs)
    assert set(zip(e.axis, e.regime)) == {("noise type", "class-conditional sym 40 %"), ("data size", "12,000 images")}
    pace = memorisation_pace(pd.concat([base, big]), epochs).set_index("regime")
    ref, other = pace.loc["class-conditional sym 40 %"], pace.loc["12,000 images"]
    assert ref.reference and not other.reference and ref.n == other.n == 3 and ref.horizon == 40
    assert ref["last"] == pytest.approx(0.96 + 0.001) and ref.reached == 3 and ref["first"] == 21
    assert other["last"] == pytest.approx(0.4 + 0.001) and other.reached == 0 and np.isnan(other["first"])
    assert other.low < other["last"] < other.high
    # two seeds far apart: the t-interval reaches past 0 and 1, the share's is cut to [0, 1]
    two = tier({"train_subset": 12000}, seeds=2, tag="12k")
    wide = pd.DataFrame([{"run": run, "epoch": 40, "memorized": 0.05 + 0.9 * (int(run[-1]) % 2)}
                         for run in two[two.run.str.contains("-CE-")].run])
    cut = memorisation_pace(pd.concat([base, two]), pd.concat([epochs[~epochs.run.isin(set(wide.run))], wide]))
    cut = cut.set_index("regime").loc["12,000 images"]
    assert cut.n == 2 and cut.low == 0.0 and cut.high == 1.0 and cut["last"] == pytest.approx(0.5)
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book"))
    import nalbook

    lines = nalbook.memorisation_lines(memorisation_pace(pd.concat([base, big]), epochs))
    assert lines[0].startswith("**CPU regime, 40 epochs (reference):** CE memorised 96 %") and "epoch 21" in lines[0]
    assert lines[1].startswith("**12,000 images (data size):** CE memorised 40 % [") and "never passed 50 %" in lines[1]


def test_the_long_noise_comparison_reads_every_variant_against_nal_in_both_noise_types():
    """configs/grids/regime-noise-long.yaml's variants over 200 epochs against NAL, at sym 40 % (the long tier) and
    IDN 40 %: 40-epoch runs, τ = 1 and an ELR at another λ stay out; a variant whose side moves is named."""
    import sys
    from pathlib import Path

    from nalkit.results.regime import long_noise_comparison, long_noise_runs

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book"))
    import nalbook

    extra = {"NAL, authors' schedule": {"method": "nal", "lam": 2.0, "attention_mode": "sample", "attention": True,
                                        "update_period": 10, "es": 60},
             "ELR": {"method": "elr", "elr_lam": 3.0}, "ELR (λ 1)": {"method": "elr", "elr_lam": 1.0}}
    frames = []
    for changes, tag, elr in (({"epochs": 200, "noise": "sym 40 %"}, "sym", -0.05),
                              ({"epochs": 200, "noise_mode": "idn", "noise": "IDN 40 %"}, "idn", 0.05)):
        t = tier(changes, tag=tag)
        more = [{**t.iloc[0].to_dict(), **{k: np.nan for k in ("lam", "attention_mode", "attention", "sce_alpha")},
                 **cfg, "seed": seed, "run": f"{tag}-{name}-{seed}",
                 "last_test_acc": 0.8 + (elr if name.startswith("ELR") else -0.02) + 0.002 * seed}
                for name, cfg in extra.items() for seed in range(3)]
        frames += [t, pd.DataFrame(more)]
    runs = pd.concat(frames + [tier(tag="short")], ignore_index=True)
    picked = long_noise_runs(runs)
    assert set(picked.variant) == {"CE", "NAL", "NAL, authors' schedule", "NAL, one learned τ", "SCE (α 0.05)", "ELR"}
    assert not picked.run.str.startswith("short").any() and not picked.run.str.contains("λ 1").any()
    diffs = long_noise_comparison(runs)
    assert list(dict.fromkeys(diffs.noise)) == ["sym 40 %", "IDN 40 %"]
    elr = diffs[diffs.variant == "ELR"].set_index("noise").side
    assert elr["sym 40 %"] == "fails" and elr["IDN 40 %"] == "holds"       # NAL is at 0.8 ± 0.003
    table, lines = nalbook.long_noise_table(diffs)
    assert ":name: tab-regime-idn-long" in table
    assert lines[-1].startswith("From sym 40 % to IDN 40 %: *ELR* (below NAL → above NAL)")


def test_the_intro_names_each_undecided_claim_once_with_what_other_regimes_decide():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book"))
    import nalbook

    stability = pd.DataFrame([
        {"key": "C1", "claim": "c1", "axis": "noise type", "reference_word": "holds", "tested": ["IDN 20 %"],
         "tested_words": ["holds"], "turned": [], "open": [], "unreached": [], "stable": True},
        {"key": "C8", "claim": "c8", "axis": "noise type", "reference_word": "undecided",
         "tested": ["IDN 20 %", "IDN 40 %"], "tested_words": ["fails", "holds"], "turned": [], "open": [],
         "unreached": [], "stable": None},
        {"key": "C8", "claim": "c8", "axis": "model", "reference_word": "undecided", "tested": ["narrow ResNet-18"],
         "tested_words": ["fails"], "turned": [], "open": [], "unreached": [], "stable": None}])
    text = nalbook.regime_sentence(stability)
    assert text.endswith("C8 is undecided in the CPU regime itself, so no regime can turn it (C8 fails at IDN 20 % and "
                         "narrow ResNet-18 and holds at IDN 40 %).")


def test_the_intro_names_the_axis_of_a_regime_label_two_axes_share():
    """IDN 40 % over 40 epochs and over 200 epochs are two regimes with one label: the intro names each with its axis,
    and a label that one axis alone has stays bare."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book"))
    import nalbook

    def row(axis, tested, words):
        return {"key": "C5 stage 2", "claim": "c5", "axis": axis, "reference_word": "undecided", "tested": tested,
                "tested_words": words, "turned": [], "open": [], "unreached": [], "stable": None}

    held = {"key": "C1", "claim": "c1", "axis": "noise type", "reference_word": "holds", "tested": ["IDN 20 %"],
            "tested_words": ["holds"], "turned": [], "open": [], "unreached": [], "stable": True}
    stability = pd.DataFrame([held, row("noise type", ["IDN 20 %", "IDN 40 %"], ["fails", "fails"]),
                              row("noise type, 200 epochs", ["IDN 40 %"], ["holds"])])
    text = nalbook.regime_sentence(stability)
    assert ("(C5 stage 2 fails at IDN 20 % and IDN 40 % (noise type) and holds at IDN 40 % (noise type, 200 epochs))"
            in text), text


def test_a_turned_claim_names_the_regimes_that_keep_its_verdict():
    """C2 turned at IDN 20 % and kept at IDN 40 % over 200 epochs: the sentence names both, each with its axis."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book"))
    import nalbook

    stability = pd.DataFrame([
        {"key": "C2", "claim": "c2", "axis": "noise type", "reference_word": "matches", "tested": ["IDN 20 %"],
         "tested_words": ["behind"], "turned": ["IDN 20 %"], "open": [], "unreached": [], "stable": False},
        {"key": "C2", "claim": "c2", "axis": "noise type, 200 epochs", "reference_word": "ahead",
         "tested": ["IDN 40 %"], "tested_words": ["ahead"], "turned": [], "open": [], "unreached": [], "stable": True}])
    no_ranks = pd.DataFrame(columns=["axis", "regime", "reference", "key", "seeds", "seeds_most", "note"])
    (line,) = nalbook.regime_lines(stability, no_ranks)
    assert line == ("**C2, c2:** turned by IDN 20 % (noise type: matches → behind); the same verdict as in the reference "
                    "in IDN 40 % (noise type, 200 epochs)."), line
