"""Records that scale (arrays formats 3 and 4): a run's record does not grow with its training set, the labels are
stored once outside the records, K-fold runs keep what confident learning reads, and format-2 and 3 records still
read the same way."""

import subprocess
from pathlib import Path

import numpy as np
import pytest

from nalkit.config import Config, ConfigError
from nalkit.detectors import DetectorState, forgetting_score
from nalkit.records import (
    ARRAYS_FORMAT,
    LABELS_DIR,
    RECORD_FORMAT,
    RecordError,
    RunRecord,
    compact_record,
    decode_arrays,
    encode_arrays,
    npz_bytes,
    record_sample,
    share_labels,
)
from nalkit.results import load_arrays, load_runs
from nalkit.train import train

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(120)


def labels(n, flip=0.4, c=10, seed=0):
    rng = np.random.default_rng(seed)
    clean = rng.integers(0, c, n)
    noisy = np.where(rng.random(n) < flip, (clean + rng.integers(1, c, n)) % c, clean)
    return noisy, clean


def test_the_record_sample_is_stratified_seeded_and_the_whole_set_when_small():
    noisy, clean = labels(60_000)
    keep = record_sample(noisy, clean, 5000, seed=3)
    assert len(keep) == 5000 and len(np.unique(keep)) == 5000 and np.all(np.diff(keep) > 0)
    # each (class, clean/mislabeled) stratum keeps its share of the whole, to within one sample
    for c in range(10):
        for flipped in (False, True):
            stratum = (clean == c) & ((noisy != clean) == flipped)
            assert abs(stratum[keep].sum() - 5000 * stratum.mean()) <= 1, (c, flipped)
    np.testing.assert_array_equal(keep, record_sample(noisy, clean, 5000, seed=3))  # same labels + seed: same
    assert not np.array_equal(keep, record_sample(noisy, clean, 5000, seed=4))
    np.testing.assert_array_equal(record_sample(noisy[:3000], clean[:3000], 5000, seed=3), np.arange(3000))
    assert len(record_sample(noisy, clean, 0, seed=3)) == 0
    # clean labels unknown (real-noise datasets): stratified by the given label only
    unknown = record_sample(noisy, None, 1000, seed=0)
    assert len(unknown) == 1000 and np.bincount(noisy[unknown], minlength=10).min() >= 90


def test_record_samples_is_validated_and_not_part_of_the_run_name():
    base = Config.load(REPO / "configs/fmnist/cpu.yaml")
    assert base.run.record_samples == 5000
    assert base.run_name() == Config.load(REPO / "configs/fmnist/cpu.yaml", ["run.record_samples=100"]).run_name()
    with pytest.raises(ConfigError, match="run.record_samples=-1"):
        Config.load(REPO / "configs/fmnist/cpu.yaml", ["run.record_samples=-1"]).validate()


@pytest.mark.slow
def test_a_sampled_record_keeps_its_sample_and_the_statistics_stay_over_every_sample(tmp_path):
    """600 training images, 200 kept: every per-sample array has the sample's length, sample_index says which, the
    test labels live once in <results>/labels, and the metrics' AUROC is over all 600 (it differs from the
    sample's)."""
    over = ["optim.epochs=3", "method.nal.es=2", "data.train_subset=600", "run.snapshot_epochs=[2,3]",
            "run.eval_every=3", "run.record_samples=200"]
    run = train(REPO / "configs/fmnist/cpu.yaml", over, results_dir=tmp_path, progress=False)
    a = load_arrays(run)
    assert int(a["n_train"]) == 600 and len(a["sample_index"]) == 200
    for key in ("noisy_labels", "clean_labels", "train_index", "final_tau", "tau_e2", "final_loss", "final_aum",
                "final_never_learned", "pred_e2"):
        assert len(a[key]) == 200, key
    assert len(a["test_labels"]) == len(a["final_test_pred"]) == 10_000
    for prefix in ("test", "noisy", "clean"):
        assert len(list((tmp_path / LABELS_DIR).glob(f"{prefix}-*.npy"))) == 1, prefix
    with np.load(run / "arrays.npz") as z:
        assert not {"test_labels", "noisy_labels", "clean_labels"} & set(z.files)
        assert int(z["format"]) == ARRAYS_FORMAT
    # the same noise draw with every sample kept: the sample is a subset of it, value for value
    full = train(REPO / "configs/fmnist/cpu.yaml", over[:-1] + ["run.record_samples=5000"],
                 results_dir=tmp_path / "full", progress=False)
    b = load_arrays(full)
    np.testing.assert_array_equal(b["noisy_labels"][a["sample_index"]], a["noisy_labels"])
    np.testing.assert_array_equal(b["final_pred"][a["sample_index"]], a["final_pred"])
    runs = load_runs(tmp_path, complete_only=True)
    assert set(runs.runs.record_format) == {RECORD_FORMAT}
    assert "forget_auroc" in runs.epochs  # the corrected forgetting score, under its own name


def _record(tmp_path: Path, arrays: dict, status_format: int | None = None, name: str = "r") -> Path:
    run = tmp_path / "results" / "runs" / name
    rec = RunRecord(run)
    rec.write_config("method:\n  name: ce\n")
    rec.write_metrics([{"epoch": 1, "test_acc": 0.5, "seconds": 1.0, "forget_auroc": 0.41}])
    rec._write("arrays.npz", npz_bytes(arrays))
    extra = {} if status_format is None else {"record_format": status_format}
    rec.write_status(state="complete", epoch=1, **extra)
    return run


def _format2(n=300, seed=0, heldout=False):
    noisy, clean = labels(n, seed=seed)
    test = np.random.default_rng(1).integers(0, 10, 1000)
    a = {"train_index": np.arange(n), "noisy_labels": noisy, "clean_labels": clean, "test_labels": test,
         "final_pred": noisy, "final_loss": np.linspace(0, 1, n).astype(np.float32), "final_test_pred": test}
    if heldout:
        a.update(heldout_index=np.arange(60), heldout_noisy=noisy[:60], heldout_clean=clean[:60],
                 heldout_probs=np.full((60, 10), 0.1, np.float32), heldout_epoch=np.asarray(5))
    stored = encode_arrays(a)
    stored["format"] = np.asarray(2, np.int8)
    return a, stored


@pytest.mark.parametrize("old_format", [2, 3])
def test_compacting_an_older_record_moves_its_labels_out_and_changes_no_value(tmp_path, old_format):
    _, stored = _format2()
    if old_format == 3:  # the test labels already outside, the training labels inside
        inside = {k: stored.pop(k) for k in ("noisy_labels", "clean_labels")}
        stored = {**share_labels(stored, tmp_path / "results" / "runs" / "r", tmp_path / "results" / LABELS_DIR),
                  **inside, "format": np.asarray(3, np.int8)}
    run = _record(tmp_path, stored)
    before = load_arrays(run)
    assert {"noisy_labels", "clean_labels", "test_labels", "final_pred", "final_test_pred"} <= set(before)
    compact_record(run)
    with np.load(run / "arrays.npz") as z:
        assert int(z["format"]) == ARRAYS_FORMAT
        assert not {"test_labels", "noisy_labels", "clean_labels"} & set(z.files)
        assert "final_pred__minus__noisy_labels" in z.files  # still a difference to the labels now outside
    after = load_arrays(run)
    assert after.keys() == before.keys()
    for k, v in before.items():
        np.testing.assert_array_equal(after[k], v, err_msg=k)
    # a second run with the same labels shares the files: one each of the test, given and clean labels
    compact_record(_record(tmp_path, stored, name="r2"))
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "results" / LABELS_DIR).iterdir()) == \
        ["clean", "noisy", "test"]
    # compacting again changes no byte
    first = (run / "arrays.npz").read_bytes()
    compact_record(run)
    assert (run / "arrays.npz").read_bytes() == first
    # the shared file altered: the reader refuses, naming it
    path = next((tmp_path / "results" / LABELS_DIR).glob("test-*.npy"))
    bad = np.load(path)
    bad[0] = (bad[0] + 1) % 10
    np.save(path, bad)
    with pytest.raises(RecordError, match="does not match the sha256"):
        load_arrays(run)
    path.unlink()
    with pytest.raises(RecordError, match="keeps its test labels in"):
        load_arrays(run)


def test_a_k_fold_record_keeps_only_what_confident_learning_reads(tmp_path):
    a, stored = _format2(heldout=True)
    run = _record(tmp_path, stored)
    compact_record(run)
    back = load_arrays(run)
    assert set(back) == {"heldout_index", "heldout_noisy", "heldout_clean", "heldout_probs", "heldout_epoch", "n_train"}
    assert int(back["n_train"]) == 300
    np.testing.assert_array_equal(back["heldout_noisy"], a["heldout_noisy"])


def test_a_reader_refuses_a_newer_format():
    _, stored = _format2()
    stored["format"] = np.asarray(ARRAYS_FORMAT + 1, np.int8)
    with pytest.raises(RecordError, match="upgrade nalkit"):
        decode_arrays(stored)


def test_old_records_forgetting_column_is_renamed_new_records_keep_it(tmp_path):
    _, stored = _format2()
    old = load_runs(_record(tmp_path / "old", stored))
    assert "forget_uncorrected_auroc" in old.epochs and "forget_auroc" not in old.epochs
    new = load_runs(_record(tmp_path / "new", stored, status_format=3))
    assert "forget_auroc" in new.epochs


def test_forgetting_counts_a_never_learned_sample_as_the_most_forgettable():
    """Toneva et al.: a sample never classified as its label counts as forgotten infinitely often. Three samples:
    learned once and kept (0 events), learned and forgotten twice (2), never learned (most forgettable)."""
    labels_ = np.zeros(3, np.int64)
    state = DetectorState(3)
    for pred in ([0, 0, 1], [0, 1, 1], [0, 0, 1], [0, 1, 1], [0, 0, 1]):
        state.update(np.asarray(pred), np.zeros(3), np.zeros(3), labels_)
    np.testing.assert_array_equal(state.forgets, [0, 2, 0])
    np.testing.assert_array_equal(state.never_learned(), [False, False, True])
    score = state.scores(None, np.zeros(3))["forget"]
    assert score[2] > score[1] > score[0]
    np.testing.assert_array_equal(forgetting_score([0, 2, 0], [False, False, True], 5), [0, 2, 6])


def test_the_committed_records_are_of_the_current_format_and_their_label_files_are_all_used():
    """Every committed arrays.npz of the current format, its labels outside it; one test-label file for all;
    every committed label file referred to by a record and every reference committed."""
    out = subprocess.run(["git", "ls-files", "results/runs/*/arrays.npz", "results/labels"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    files = out.stdout.split()
    if not files:
        pytest.skip("not a git checkout with records")
    shared = {f for f in files if f.startswith("results/labels/")}
    assert len([f for f in shared if Path(f).name.startswith("test-")]) == 1, sorted(shared)
    used = set()
    for f in files:
        if f.endswith("arrays.npz"):
            with np.load(REPO / f) as z:
                assert int(z["format"]) == ARRAYS_FORMAT, f
                assert not {"test_labels", "noisy_labels", "clean_labels"} & set(z.files), f
                for key in z.files:
                    if key.endswith("__shared"):
                        used.add((Path(f).parent / str(z[key][0])).resolve().relative_to(REPO).as_posix())
    assert used == shared, (sorted(used - shared)[:3], sorted(shared - used)[:3])
