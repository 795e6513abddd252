"""Compact run records: what arrays.npz keeps (float16, logits, small integers) is faithful to what the book reads,
on synthetic arrays and on the committed records, and the tracked tree stays inside its size budget."""

import io
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from nalkit.metrics import auroc
from nalkit.plotting import logit, tau_limits
from nalkit.records import (ARRAYS_FORMAT, RecordError, RunRecord, compact_record, decode_arrays, encode_arrays,
                            npz_bytes, read_metrics, verify_record)
from nalkit.results import load_arrays

REPO = Path(__file__).resolve().parents[1]
#: the last commit whose records were written in the original float32/int64 form (before the compaction)
BEFORE_COMPACTION = "8b950d3"
#: The tracked tree's budget. The device tool that runs the GPU evidence refuses a working tree over 64 MiB
#: (67.1 MB), and the data and the notebook-runtime wheels (about 6 MB) must fit there too. Full Fashion-MNIST is
#: 30.9 MB, but every run here reads only the fixed 3,000-image training subset and the 5,000-image noisy
#: validation set (both drawn with data.subset_seed 0, whatever the run's seed) and the 10,000 test images: the
#: training file with every other image zeroed (same indices, same labels, so the same draws) compresses to 3.7 MB
#: (measured with 8,000 kept images, gzip -9), 8.1 MB with the test set. 67.1 - 8.1 - 6 leaves 53 MB: the budget.
#: Issue 18 asked for 40 MB; the fair-comparison, control and K-fold grids (about 300 runs at about 85 KB) took it
#: to 51.4 MB. The protocol issue made records that scale (arrays format 3, nalkit.records): the test labels stored
#: once (results/labels), K-fold runs keeping only what confident learning reads, and the per-sample losses of the
#: snapshot epochs before the last dropped (no chapter read them; their AUROC per epoch is in metrics.csv): 51.5 ->
#: 42.6 MB for the same 456 records, no kept value changed. What the next tiers cost, measured on their first runs
#: (Intel Xeon, 2 cores): a 200-epoch baseline record without snapshots is 105-110 KB (metrics.csv 45 KB, notebook
#: 25-29 KB, arrays 32-33 KB); a 200-epoch NAL record with 7 snapshots of tau/phi/pred/q about 150 KB. The long
#: tier's 72 protocol runs: about 9.3 MB, to about 52 MB. The regime tier (issue 29: about 180 runs of 40-200
#: epochs, some on 12,000 and 60,000 images, whose arrays format 3 caps at run.record_samples) is about 9 MB more at
#: these sizes: it fits only with leaner records (no snapshots where its chapter does not read them, a small
#: run.record_samples) or with the GPU evidence run without the notebook wheels (--no-notebook, 6 MB freed).
#: Record format 4 (nalkit.records) stores the per-epoch metrics gzip-compressed (metrics.csv.gz, the same CSV
#: bytes). Measured in memory on the 492 committed records' metrics.csv (gzip -9): 8.15 -> 2.86 MB, so the tracked
#: tree goes from 47.96 to 42.67 MB once `nalkit compact results/runs` migrates them; a 200-epoch record's metrics
#: 47.4 -> 15.4 KB (median of 81), the whole record 125 -> 94 KB (median; the largest, 250 KB, holds snapshots).
#: Migrated with the long tier complete and 20 regime runs in: 550 records, 53.6 -> 48.4 MB. The regime tier's
#: 40-epoch records (no snapshots, 1,000 samples' arrays) measure 55 KB (arrays 19, notebook 25, metrics 3.4; mean
#: of 13), its 200-epoch ones about 70 KB: its 154 remaining runs are about 9.0 MB, to about 57.4 MB. That is past
#: 53 MB. A session raised the budget to 59 MB for them; a review held it at 53 MB (the records-size budget is the
#: project's, not the tier's). Notebooks without papermill's per-cell timings and indentation (nalkit.records,
#: NOTEBOOK_RUN_METADATA): 666 records 55.3 -> 52.8 MB (notebooks 18.7 -> 16.2 MB). The tier's 38 remaining runs
#: (about 3.1 MB) need leaner records first: the long tier's arrays (117 records, 14.5 MB) hold the most.
#: Arrays format 4 stores the training labels once too (results/labels: 48 files for 621 records' given and clean
#: labels, 1.75 MB inline) and keeps phi for the last epoch only (the early snapshots, 2.5 MB, were read by no chapter:
#: an instrumented book build logged every array it read; phi's means per epoch are in the metrics): 666 records
#: 52.85 -> 49.02 MB, every kept value equal as loaded (checked record by record against the previous commit).
TREE_BUDGET_MB = 53.0


def synthetic(n=400, c=10, seed=0, snapshots=(5, 20)):
    rng = np.random.default_rng(seed)
    clean = rng.integers(0, c, n)
    noisy = np.where(rng.random(n) < 0.4, rng.integers(0, c, n), clean)
    arrays = {"train_index": np.arange(n), "noisy_labels": noisy, "clean_labels": clean,
              "test_labels": rng.integers(0, c, 3 * n)}
    for e in snapshots:
        arrays.update({f"pred_e{e}": np.where(rng.random(n) < 0.7, noisy, rng.integers(0, c, n)),
                       f"loss_e{e}": (0.061 + 1e-4 * rng.random(n)).astype(np.float32),
                       f"tau_e{e}": (1 - 10.0 ** -rng.uniform(1, 7.5, n)).astype(np.float32),
                       f"q_argmax_e{e}": noisy})
    last = max(snapshots)
    arrays.update({f"final_{k}": arrays[f"{k}_e{last}"] for k in ("pred", "loss", "tau", "q_argmax")})
    arrays["final_test_pred"] = arrays["test_labels"].copy()
    arrays["final_test_pred"][:7] = (arrays["final_test_pred"][:7] + 1) % c
    return arrays


def test_encoding_keeps_integers_exact_and_reals_to_float16_resolution():
    a = synthetic()
    stored = encode_arrays(a)
    assert int(stored["format"]) == ARRAYS_FORMAT
    assert stored["noisy_labels"].dtype == np.int8 and "train_index" not in stored  # 0..N-1: only N is kept
    assert all(v.dtype != np.float32 and v.dtype != np.int64 for k, v in stored.items() if k != "train_index__arange")
    assert "tau_logit_e5" in stored and "tau_e5" not in stored  # tau kept as its logit
    assert not any(k.startswith("final_pred") or k.startswith("final_tau") for k in stored)  # = the last snapshot
    back = decode_arrays(stored)
    assert set(a) <= set(back)
    for k, v in a.items():
        if v.dtype.kind == "i":
            np.testing.assert_array_equal(back[k], v, err_msg=k)
            assert back[k].dtype == np.int64
    # tau near 1 keeps 1 - tau to within 0.4 % where |logit| < 16 (float16 spacing 2^-7 there); the float32
    # reference is itself coarser than that below 1 - tau = 1e-6, so the check stops there
    gap, gap_back = 1 - a["tau_e5"].astype(np.float64), 1 - back["tau_e5"]
    fine = gap > 1e-6
    np.testing.assert_allclose(gap_back[fine], gap[fine], rtol=4e-3)
    # the crowded losses (a collapsed run) keep their order: stored relative to their minimum
    np.testing.assert_allclose(back["loss_e5"], a["loss_e5"], rtol=0, atol=1e-7)
    noisy = a["noisy_labels"] != a["clean_labels"]
    assert abs(auroc(back["loss_e5"], noisy) - auroc(a["loss_e5"], noisy)) < 1e-3


@pytest.mark.timeout(60)
def test_losses_crowding_against_a_bound_keep_their_order():
    """GCE's loss (1 - p^q)/q crowds against 1/q for the samples it gives up on: stored as float16 of x - min it
    merged them and moved a loss AUROC by 0.013; stored as the distance to the nearer end they keep their order."""
    from nalkit.metrics import auroc

    rng = np.random.default_rng(0)
    noisy = rng.random(3000) < 0.36
    u, half = rng.random(3000), rng.random(3000) < 0.5
    # p_y of the given label: tiny for the mislabeled samples and for half of the clean ones (both in the crowd)
    p = np.where(noisy, 1e-3 * u ** 2, np.where(half, 3e-3 * u ** 2, 1 - u ** 3))
    loss = ((1 - p ** 0.9) / 0.9).astype(np.float32)
    back = decode_arrays(encode_arrays({"loss_e40": loss}))["loss_e40"]
    assert abs(auroc(back, noisy) - auroc(loss, noisy)) < 1e-5  # x - min in float16: 2.8e-4
    top = loss > np.median(loss)
    assert np.max(np.abs(back[top] - loss[top]) / np.maximum(loss.max() - loss[top], 1e-30)) < 1e-3  # relative to the bound


def test_encoding_is_idempotent_and_spares_unusual_values():
    a = synthetic()
    # nan/inf survive; values farther than float16's range from both ends of the range stay float32
    a["loss_e5"][:4] = [np.nan, np.inf, 1e6, 5e5]
    a["final_pred"] = a["final_pred"].copy()
    a["final_pred"][0] = -1  # an unseen sample (data.drop_last)
    stored = encode_arrays(a)
    assert stored["loss_e5"].dtype == np.float32
    assert "final_pred__minus__noisy_labels" in stored  # differs from the last snapshot: kept
    assert encode_arrays(stored) == stored
    back = decode_arrays(stored)
    assert np.isnan(back["loss_e5"][0]) and np.isposinf(back["loss_e5"][1]) and back["loss_e5"][2] == 1e6
    # a single far value is the top of the range, stored exactly as its distance 0 from it
    b = synthetic()
    b["loss_e5"][:1] = [1e6]
    assert encode_arrays(b)["loss_e5"].dtype == np.float16 and decode_arrays(encode_arrays(b))["loss_e5"][0] == 1e6
    assert back["final_pred"][0] == -1
    with pytest.raises(RecordError, match="an encoding this nalkit does not know"):
        decode_arrays({**stored, "loss_e5__scale": np.asarray(2.0)})
    saturated = {"final_tau": np.array([1.0, 0.0, 0.5], np.float32), "noisy_labels": np.zeros(3, np.int64)}
    np.testing.assert_array_equal(decode_arrays(encode_arrays(saturated))["final_tau"], [1.0, 0.0, 0.5])


def _old_record(tmp_path: Path) -> Path:
    """A complete run record in the original format (float32/int64 arrays, an RGBA PNG in its notebook)."""
    import base64

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = tmp_path / "run"
    rec = RunRecord(run)
    rec.write_config("method:\n  name: nal\n")
    rec.write_metrics([{"epoch": 1, "test_acc": 0.5, "seconds": 1.0}])
    rec._write("arrays.npz", npz_bytes(synthetic()))
    rec.write_status(state="complete", epoch=1)
    fig, ax = plt.subplots(figsize=(7, 3.4), dpi=110)
    ax.plot(np.arange(40), np.random.default_rng(0).random(40).cumsum())
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    run_metadata = {"papermill": {"duration": 1.5, "status": "completed"}, "execution": {"iopub.status.busy": "x"}}
    nb = {"cells": [{"cell_type": "code", "metadata": {"tags": ["parameters"], **run_metadata},
                     "outputs": [{"data": {"image/png": base64.b64encode(buf.getvalue()).decode()},
                                  "output_type": "display_data"}]}]}
    (run / "experiment.ipynb").write_text(json.dumps(nb, indent=1))
    return run


@pytest.mark.timeout(60)
def test_compact_record_rewrites_an_old_record_once_and_it_still_verifies(tmp_path):
    run = _old_record(tmp_path)
    before = load_arrays(run)
    done = compact_record(run)
    assert done.arrays_after < 0.6 * done.arrays_before and done.notebook_after < done.notebook_before / 2
    verify_record(run)
    cell = json.loads((run / "experiment.ipynb").read_text())["cells"][0]
    assert cell["metadata"] == {"tags": ["parameters"]}  # papermill's timings go, the tags stay
    after = load_arrays(run)
    # every array stays but the losses of the snapshots before the last (format 3 keeps the final loss only)
    assert set(before) - set(after) == {"loss_e5"} and "loss_e20" in after
    np.testing.assert_array_equal(after["final_pred"], before["final_pred"])
    files = {p.name: p.read_bytes() for p in run.iterdir()}
    again = compact_record(run)  # idempotent: nothing rewritten
    assert again.before == again.after == done.after
    assert {p.name: p.read_bytes() for p in run.iterdir()} == files


def test_compact_record_refuses_damaged_or_incomplete_records_and_touches_nothing(tmp_path):
    run = _old_record(tmp_path)
    with open(run / "arrays.npz", "ab") as f:
        f.write(b"x")
    damaged = (run / "arrays.npz").read_bytes()
    with pytest.raises(RecordError, match="arrays.npz"):
        compact_record(run)
    assert (run / "arrays.npz").read_bytes() == damaged
    RunRecord(run).write_status(state="running", epoch=1)
    with pytest.raises(RecordError, match="not a complete run"):
        compact_record(run)


def test_cli_compact_reports_sizes_and_says_what_it_skipped(tmp_path, capsys):
    from nalkit.cli import main

    run = _old_record(tmp_path)
    assert main(["compact", str(tmp_path)]) == 0
    assert "1 run records" in capsys.readouterr().out
    RunRecord(run).write_status(state="running", epoch=1)
    assert main(["compact", str(tmp_path)]) == 1
    assert "skipped" in capsys.readouterr().err
    assert main(["compact", str(tmp_path / "nothing")]) == 2


# --------------------------------------------------------------------------------------------
# the committed records
# --------------------------------------------------------------------------------------------
def committed_runs() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "results/runs/*/arrays.npz"], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    return sorted((REPO / line).parent for line in out.stdout.split())


def test_committed_arrays_give_the_auroc_that_training_computed_in_float32():
    """The metrics hold, per epoch, the AUROC of 1 - tau and of the loss computed by the trainer from float32
    values. The compact arrays of every snapshot epoch give the same AUROC of 1 - tau to within 1e-3 (the book
    prints two decimals of the tau AUROCs it reads from the arrays) and of the loss to within 5e-3: every loss
    AUROC the book prints comes from the metrics, and float16 merges some of the losses that crowd on SCE's 0-9
    scale (a long-tier SCE run at asym 40 % moved by 0.0035)."""
    runs = committed_runs()
    assert len(runs) >= 100, "the committed records are missing"
    worst = {"tau": 0.0, "loss": 0.0}
    checked = 0
    for run in runs:
        a = load_arrays(run)
        if "noisy_labels" not in a or len(a["sample_index"]) < int(a["n_train"]):
            continue  # a K-fold run keeps no training arrays; a sampled record's AUROC is over its sample
        metrics = read_metrics(run).set_index("epoch")
        known = a["clean_labels"] >= 0
        noisy = a["is_noisy"][known]
        for key in [k for k in a if k.startswith(("tau_e", "loss_e"))]:
            name, epoch = key.split("_e")
            score = (1 - a[key] if name == "tau" else a[key])[known]
            if not np.isfinite(score).all():
                continue
            diff = abs(auroc(score, noisy) - metrics.loc[int(epoch), f"{name}_auroc"])
            worst[name] = max(worst[name], diff)
            checked += 1
    assert checked > 500
    assert worst["tau"] < 1e-3 and worst["loss"] < 5e-3, worst


def _original(run: Path) -> dict | None:
    rel = (run / "arrays.npz").relative_to(REPO).as_posix()
    out = subprocess.run(["git", "show", f"{BEFORE_COMPACTION}:{rel}"], cwd=REPO, capture_output=True, timeout=60)
    if out.returncode != 0:
        return None
    with np.load(io.BytesIO(out.stdout)) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.timeout(240)
def test_committed_arrays_match_the_originals_the_figures_and_aurocs_were_made_from():
    """Against the float32/int64 arrays of the commit before the compaction (git history): integers identical;
    AUROCs within 5e-4; in the tau histograms the book draws (logit axis, 40 bins over the range the samples
    occupy) no sample moves by more than 3 % of a bin's width; medians of tau within 1e-6. (Counting samples that
    change bins would mislead: float32 tau near 1 takes few distinct values, and a block of equal values that lies
    within 0.002 logit units of a bin edge changes bins as a whole.)"""
    probe = subprocess.run(["git", "cat-file", "-e", f"{BEFORE_COMPACTION}^{{commit}}"], cwd=REPO, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"commit {BEFORE_COMPACTION} is not in this clone's history (a shallow clone)")
    worst_auc, worst_moved, worst_median, compared = 0.0, 0.0, 0.0, 0
    for run in committed_runs():
        old = _original(run)
        if old is None or "format" in old:  # a run recorded after the compaction
            continue
        new = load_arrays(run)
        noisy = old["noisy_labels"] != old["clean_labels"]
        for key, value in old.items():
            if key not in new:  # format 3 keeps no per-sample loss of the snapshots before the last
                assert key.startswith("loss_e"), f"{run.name}: {key} is missing"
                continue
            if value.dtype.kind == "i":
                np.testing.assert_array_equal(new[key], value, err_msg=f"{run.name} {key}")
                continue
            if not np.isfinite(value).all():
                continue
            if key.startswith(("tau", "final_tau")):
                worst_auc = max(worst_auc, abs(auroc(1 - new[key], noisy) - auroc(1 - value, noisy)))
                lo, hi = tau_limits(value)
                width = (float(logit(hi)) - float(logit(lo))) / 40
                shift = np.abs(logit(new[key]) - logit(value.astype(np.float64))).max()
                worst_moved = max(worst_moved, shift / width)
                worst_median = max(worst_median, abs(np.median(new[key]) - np.median(value.astype(np.float64))))
            else:
                worst_auc = max(worst_auc, abs(auroc(new[key], noisy) - auroc(value, noisy)))
            compared += 1
    if compared == 0:
        pytest.skip("no committed run has an original from before the compaction")
    print(f"compared {compared} arrays: AUROC within {worst_auc:.1e}, largest shift {worst_moved:.3f} bin widths, "
          f"medians within {worst_median:.1e}")
    assert worst_auc < 5e-4 and worst_moved <= 0.03 and worst_median < 1e-6, (worst_auc, worst_moved, worst_median)


def test_the_tracked_tree_stays_inside_its_budget():
    out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, timeout=60)
    if out.returncode != 0:
        pytest.skip("not a git checkout")
    files = [REPO / f for f in out.stdout.decode().split("\0") if f and (REPO / f).is_file()]
    total = sum(p.stat().st_size for p in files) / 1e6
    runs = [p for p in files if p.parts[-3:-2] and p.parent.parent.name == "runs"]
    per_run = sum(p.stat().st_size for p in runs) / max(len({p.parent for p in runs}), 1) / 1e3
    assert total <= TREE_BUDGET_MB, (f"the tracked tree is {total:.1f} MB, over its {TREE_BUDGET_MB:.0f} MB budget "
                                     f"({per_run:.0f} KB per run record on average): compact the records "
                                     f"(nalkit compact results/runs) or keep fewer snapshot epochs")
