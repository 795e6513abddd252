"""Record format 4: the per-epoch metrics stored gzip-compressed (metrics.csv.gz), the same bytes for the same rows,
read by one reader (nalkit.records.read_metrics) in records of every format, and older records migrated by
``nalkit compact`` without a value changing."""

import gzip
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nalkit.records import (
    LABELS_DIR,
    METRICS_FILE,
    PLAIN_METRICS_FILE,
    RECORD_FORMAT,
    RecordError,
    RunRecord,
    compact_record,
    encode_arrays,
    gzip_bytes,
    metrics_path,
    npz_bytes,
    read_metrics,
    verify_record,
)
from nalkit.results import load_run, load_runs

REPO = Path(__file__).resolve().parents[1]
ROWS = [{"epoch": 1, "test_acc": 0.5, "seconds": 1.25, "forget_auroc": 0.40625},
        {"epoch": 2, "test_acc": 0.625, "seconds": 1.0, "forget_auroc": 0.4375, "tau_auroc": 0.8125}]
#: what the writer has always written for ROWS (a column first seen later is empty before it)
CSV = b"epoch,test_acc,seconds,forget_auroc,tau_auroc\n1,0.5,1.25,0.40625,\n2,0.625,1.0,0.4375,0.8125\n"


def _record(path: Path, status_format: int | None, plain: bool = False) -> Path:
    """A complete synthetic record; ``plain``: its metrics as a record before format 4 holds them."""
    rec = RunRecord(path)
    rec.write_config("method:\n  name: ce\n")
    if plain:
        rec._write(PLAIN_METRICS_FILE, CSV)
    else:
        rec.write_metrics(ROWS)
    labels = np.asarray([0, 1, 2, 1])
    rec._write("arrays.npz", npz_bytes(encode_arrays({"train_index": np.arange(4), "noisy_labels": labels,
                                                      "clean_labels": labels, "final_pred": labels})))
    extra = {} if status_format is None else {"record_format": status_format}
    rec.write_status(state="complete", epoch=2, **extra)
    return path


def _files(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in run.iterdir()}


def test_the_metrics_are_written_as_deterministic_gzip_of_the_csv(tmp_path):
    a, b = RunRecord(tmp_path / "a"), RunRecord(tmp_path / "b")
    a.write_metrics(ROWS)
    b.write_metrics(ROWS)
    data = (a.dir / METRICS_FILE).read_bytes()
    assert data == (b.dir / METRICS_FILE).read_bytes()  # two writes, identical bytes
    assert a.manifest()[METRICS_FILE] == b.manifest()[METRICS_FILE]
    # gzip; no file name (FLG 0) and no time (MTIME 0) in the header, so the bytes depend on the rows only
    assert data[:3] == b"\x1f\x8b\x08" and data[3] == 0 and data[4:8] == bytes(4)
    assert gzip.decompress(data) == CSV
    assert not (a.dir / PLAIN_METRICS_FILE).exists() and PLAIN_METRICS_FILE not in a.manifest()
    # rewritten with the same rows (every epoch rewrites the file): the checksum stays
    a.write_metrics(ROWS)
    assert (a.dir / METRICS_FILE).read_bytes() == data
    # what the book and README promise: pandas reads the file directly, to the reader's frame
    pd.testing.assert_frame_equal(pd.read_csv(a.dir / METRICS_FILE), read_metrics(a.dir))
    assert list(read_metrics(a.dir).columns) == ["epoch", "test_acc", "seconds", "forget_auroc", "tau_auroc"]
    RunRecord(tmp_path / "empty").write_metrics([])  # before the first epoch: no rows, no columns
    assert read_metrics(tmp_path / "empty").empty


def _committed_format_3(dest: Path) -> Path:
    """A committed record of format 3 (or, once the records are migrated, of format 4 taken back to 3) copied to
    ``dest/runs/<name>`` with the shared test labels beside it."""
    out = subprocess.run(["git", "ls-files", "results/runs/*/status.json"], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    for line in sorted(out.stdout.split()):
        status = json.loads((REPO / line).read_text())
        if status.get("state") == "complete" and status.get("record_format") in (3, 4):
            src = (REPO / line).parent
            break
    else:
        pytest.skip("no committed record of format 3 or 4 (not a git checkout with records)")
    run = dest / "runs" / src.name
    shutil.copytree(src, run)
    if (REPO / "results" / LABELS_DIR).is_dir():
        shutil.copytree(REPO / "results" / LABELS_DIR, dest / LABELS_DIR)
    if status["record_format"] == 4:  # migrated already: as it was before
        rec = RunRecord(run)
        rec._write(PLAIN_METRICS_FILE, gzip.decompress((run / METRICS_FILE).read_bytes()))
        rec._remove(METRICS_FILE)
        text = (run / "status.json").read_text().replace(f'"record_format": {RECORD_FORMAT}', '"record_format": 3')
        rec._write("status.json", text.encode())
    return run


@pytest.mark.timeout(120)
def test_a_format_3_record_reads_as_before_and_compacts_to_format_4_with_no_value_changed(tmp_path):
    run = _committed_format_3(tmp_path / "results")
    plain = (run / PLAIN_METRICS_FILE).read_bytes()
    assert metrics_path(run).name == PLAIN_METRICS_FILE
    # read as every earlier nalkit read it
    pd.testing.assert_frame_equal(read_metrics(run), pd.read_csv(run / PLAIN_METRICS_FILE))
    row, epochs = load_run(run)
    assert row["record_format"] == 3 and len(epochs) == json.loads((run / "status.json").read_text())["epoch"]
    status = (run / "status.json").read_text()

    done = compact_record(run)
    assert done.metrics_after < done.metrics_before / 2
    assert not (run / PLAIN_METRICS_FILE).exists()
    manifest = verify_record(run)  # every file, status.json included, matches the updated manifest
    assert METRICS_FILE in manifest and PLAIN_METRICS_FILE not in manifest
    assert gzip.decompress((run / METRICS_FILE).read_bytes()) == plain  # exactly the CSV bytes
    # status.json: the number raised, every other byte as it was
    assert (run / "status.json").read_text() == status.replace('"record_format": 3', f'"record_format": {RECORD_FORMAT}')
    row4, epochs4 = load_run(run)
    pd.testing.assert_frame_equal(epochs4, epochs)
    pd.testing.assert_series_equal(pd.Series(row4), pd.Series({**row, "record_format": RECORD_FORMAT}))
    # idempotent: a second compaction changes no byte
    files = _files(run)
    again = compact_record(run)
    assert again.metrics_before == again.metrics_after == done.metrics_after
    assert _files(run) == files


def test_a_format_2_record_is_compressed_and_keeps_its_number_and_its_reading(tmp_path):
    """A record without record_format (format 2) scored forgetting events before the never-learned rule: its
    number says so to the readers (forget_* renamed, rescored from the arrays), so compaction keeps it."""
    run = _record(tmp_path / "runs" / "old", None, plain=True)
    before = load_runs(run)
    assert "forget_uncorrected_auroc" in before.epochs and "forget_auroc" not in before.epochs
    status = (run / "status.json").read_bytes()
    compact_record(run)
    assert (run / "status.json").read_bytes() == status and not (run / PLAIN_METRICS_FILE).exists()
    verify_record(run)
    after = load_runs(run)
    pd.testing.assert_frame_equal(after.epochs, before.epochs)
    pd.testing.assert_frame_equal(after.runs, before.runs)
    assert list(after.runs.record_format) == [2]


def test_an_interrupted_compaction_reads_the_same_and_a_second_one_completes_it(tmp_path):
    run = _record(tmp_path / "runs" / "r", 3, plain=True)
    expected = read_metrics(run)
    rec = RunRecord(run)
    rec._write(METRICS_FILE, gzip_bytes(CSV))  # killed here: both files listed, the number not raised
    assert metrics_path(run).name == METRICS_FILE
    verify_record(run)
    pd.testing.assert_frame_equal(read_metrics(run), expected)
    compact_record(run)
    assert set(verify_record(run)) == {"config.yaml", METRICS_FILE, "arrays.npz", "status.json"}
    assert json.loads((run / "status.json").read_text())["record_format"] == RECORD_FORMAT
    pd.testing.assert_frame_equal(read_metrics(run), expected)


@pytest.mark.parametrize("damage, message", [
    (lambda good: b"epoch,test_acc\n1,0.5\n", "not readable gzip-compressed CSV"),  # plain text under the gz name
    (lambda good: good[: len(good) // 2], "not readable gzip-compressed CSV"),  # a truncated stream
    (lambda good: good[:-8] + bytes(8), "not readable gzip-compressed CSV"),  # CRC and length wrong
    (lambda good: gzip_bytes(b"epoch\n\xff\xfe\n"), "not readable gzip-compressed CSV"),  # not UTF-8
])
def test_a_corrupt_metrics_file_is_refused_naming_it(tmp_path, damage, message):
    """Damage the manifest agrees with (the file written so, then listed) is caught by reading it; damage it does
    not agree with, by the checksum. Either way the error names metrics.csv.gz, and load_runs(strict=False) lists
    the record as a problem."""
    run = _record(tmp_path / "runs" / "r", RECORD_FORMAT)
    good = (run / METRICS_FILE).read_bytes()
    RunRecord(run)._write(METRICS_FILE, damage(good))
    with pytest.raises(RecordError, match=rf"{METRICS_FILE} is {message}"):
        read_metrics(run)
    with pytest.raises(RecordError, match=METRICS_FILE):
        load_runs(tmp_path)
    problems = load_runs(tmp_path, strict=False).problems
    assert len(problems) == 1 and METRICS_FILE in problems[0]
    (run / METRICS_FILE).write_bytes(good)  # the good bytes under the damaged bytes' checksum
    with pytest.raises(RecordError, match=f"{METRICS_FILE} does not match its checksum"):
        read_metrics(run)
    (run / METRICS_FILE).unlink()
    with pytest.raises(RecordError, match=f"{METRICS_FILE} is missing"):
        read_metrics(run)


def test_an_old_plain_metrics_file_that_is_not_text_is_refused_naming_it(tmp_path):
    run = _record(tmp_path / "r", 3, plain=True)
    RunRecord(run)._write(PLAIN_METRICS_FILE, b"epoch\n\xff\xfe\n")
    with pytest.raises(RecordError, match=f"{PLAIN_METRICS_FILE} is not readable UTF-8 CSV"):
        read_metrics(run)


@pytest.mark.usefixtures("fashion_mnist")
@pytest.mark.timeout(120)
def test_a_run_begun_before_format_4_finishes_with_only_the_compressed_metrics(tmp_path):
    """A run stopped by an older nalkit (plain metrics.csv) and resumed by this one: the plain file is removed
    (from the manifest first) at the first write of the compressed one, and the record is format 4."""
    from nalkit.config import Config
    from nalkit.train import train

    cfg = Config.from_dict({
        "data": {"name": "fashion_mnist", "train_subset": 300, "test_subset": 200},
        "noise": {"mode": "sym", "rate": 0.4, "seed": 3},
        "model": {"name": "small_cnn", "width": 8},
        "method": {"name": "ce"},
        "optim": {"epochs": 4, "batch_size": 32, "lr": 0.05},
        "run": {"seed": 1, "progress": False, "snapshot_epochs": [], "threads": 1},
    })
    run = train(cfg, results_dir=tmp_path, stop_after_epoch=2)
    rec = RunRecord(run)  # as the older writer left it
    rec._write(PLAIN_METRICS_FILE, gzip.decompress((run / METRICS_FILE).read_bytes()))
    rec._remove(METRICS_FILE)
    assert metrics_path(run).name == PLAIN_METRICS_FILE and len(read_metrics(run)) == 2
    train(cfg, results_dir=tmp_path)
    assert not (run / PLAIN_METRICS_FILE).exists()
    assert PLAIN_METRICS_FILE not in verify_record(run)
    assert json.loads((run / "status.json").read_text())["record_format"] == RECORD_FORMAT
    assert list(read_metrics(run).epoch) == [1, 2, 3, 4]
