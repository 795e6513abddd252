"""The run record: one directory per run, everything a chapter needs, checksummed.

Layout of ``<results>/<run name>/`` as :func:`nalkit.train.train` writes it through :class:`RunRecord`::

    config.yaml        the resolved configuration (its hash is in status.json and ends the run's name)
    environment.json   nalkit/python/torch/numpy versions, git commit, host, platform, CPU model and vector
                       ISA, threads, device (written at every (re)start)
    status.json        state ("running" or "complete"), epochs done, seconds, noise rates, start and end time,
                       final and best test accuracy, the record's format (``record_format``, see below)
    metrics.csv.gz     one row per epoch (columns: see nalkit.train), floats to 7 significant digits: a CSV file,
                       gzip-compressed (a third of its size) and deterministic (no file name and no time in the
                       gzip header), so the same rows give the same bytes and checksum. :func:`read_metrics` reads
                       it, and so does pandas directly: ``pd.read_csv("metrics.csv.gz")``
    arrays.npz         written once, at the end: train_index, noisy_labels, clean_labels (-1 = unknown),
                       the per-sample arrays of the last epoch (final_*) and of every snapshot epoch E
                       (*_eE): pred, tau, q_argmax (and, in records before format 3, loss; in records
                       before format 4, phi: both are kept for the last epoch only); the mislabel detectors'
                       accumulators at the end (final_aum, final_mean_loss, final_wrong, final_forgets, final_never_learned);
                       the test predictions (final_test_pred). Stored compactly (:func:`encode_arrays`):
                       labels and predictions in the smallest integer type that holds them, real values as
                       float16, tau and phi (which crowd against 1) as the float16 of their logit;
                       :func:`decode_arrays` restores the names and values a reader expects
                       (nalkit.results.load_arrays calls it).
                       Format 3 (records that scale): the per-training-sample arrays are kept for at most
                       ``run.record_samples`` samples, a seeded sample stratified by class and by clean /
                       mislabeled (:func:`record_sample`; ``sample_index`` says which, ``n_train`` how many
                       there are); every statistic over the training set is computed over all of them and
                       is in the metrics. The test labels, the same for every run on a dataset, are stored
                       once, in ``<results>/labels/`` (:func:`write_shared_labels`), and the record holds
                       their relative path and sha256. Format 4 stores the training labels (given and clean)
                       so too (:func:`share_labels`): runs on the same noise draw and sample share the file.
                       Format 2 records (every array for every sample, the labels inside) and format 3
                       records (the training labels inside) read the same way.
    manifest.json      sha256 of every file above; updated before each file is replaced (see _write)
    ckpt-*.pt(.sha256) full-state checkpoints (nalkit.checkpoint; removed once the run is complete)

Readers (:func:`read_metrics`, :mod:`nalkit.results`) verify the manifest, so a truncated metrics file is never
read.

Record formats (``record_format`` in status.json; records without it are format 2): 3 -- arrays.npz of format 3
(above) and forgetting events that score a never-learned sample as the most forgettable; 4
(``RECORD_FORMAT``) -- the metrics stored as ``metrics.csv.gz``. Records before format 4 hold the same CSV
uncompressed as ``metrics.csv``; every reader here takes either. ``nalkit compact`` (:func:`compact_record`)
brings a complete record to the current layout without changing a value: it compresses ``metrics.csv`` and
raises a format-3 record to 4. A format-2 record keeps its number (its metrics compressed all the same), because
the number also says how its forgetting columns were scored (``nalkit.results`` renames and rescores them).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import platform
import subprocess
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._io import (
    atomic_write_bytes,
    atomic_write_text,
    now_iso,
    sha256_bytes,
    sha256_file,
)

if TYPE_CHECKING:  # pandas is imported where the metrics are read, not by the trainer's import of this module
    import pandas as pd


class RecordError(ValueError):
    """A run record file is missing, truncated or altered; the message names the file."""


#: The record's format, written to status.json as ``record_format`` (see the module docstring).
RECORD_FORMAT = 4
#: The file of the per-epoch metrics from format 4 on, a gzip-compressed CSV.
METRICS_FILE = "metrics.csv.gz"
#: The same CSV uncompressed, as records before format 4 hold it.
PLAIN_METRICS_FILE = "metrics.csv"
#: The files a complete record holds (beside its manifest and, from the runner, its executed notebook).
RECORD_FILES = ("config.yaml", "environment.json", "status.json", METRICS_FILE, "arrays.npz")


class RunRecord:
    """Writer for one run directory."""

    def __init__(self, run_dir: str | Path) -> None:
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.manifest_path = self.dir / "manifest.json"

    # Every write goes through here. The manifest is updated *before* the file: a process killed in
    # between leaves the old file under a new checksum (detected, and rewritten by the resumed run),
    # and a status.json that says "complete" is always already listed in the manifest -- written
    # file-first, a kill in between left a complete run whose record never verified again.
    def _write(self, name: str, data: bytes) -> None:
        manifest = self.manifest()
        manifest[name] = sha256_bytes(data)
        atomic_write_text(self.manifest_path, json.dumps(manifest, indent=1, sort_keys=True))
        atomic_write_bytes(self.dir / name, data)

    # The reverse order: a kill in between leaves a file the manifest no longer lists, which no reader opens.
    def _remove(self, name: str) -> None:
        manifest = self.manifest()
        if name in manifest:
            del manifest[name]
            atomic_write_text(self.manifest_path, json.dumps(manifest, indent=1, sort_keys=True))
        (self.dir / name).unlink(missing_ok=True)

    def manifest(self) -> dict[str, str]:
        if not self.manifest_path.is_file():
            return {}
        try:
            return json.loads(self.manifest_path.read_text())
        except json.JSONDecodeError:
            raise RecordError(f"{self.manifest_path} is not valid JSON (corrupted)") from None

    def write_config(self, yaml_text: str) -> None:
        self._write("config.yaml", yaml_text.encode())

    def write_environment(self, device: Any) -> None:
        self._write("environment.json", json.dumps(environment(device), indent=1).encode())

    def write_status(self, **status: Any) -> None:
        status.setdefault("updated", now_iso())
        self._write("status.json", json.dumps(status, indent=1, default=_jsonable).encode())

    def status(self) -> dict[str, Any]:
        return read_status(self.dir)

    def write_metrics(self, rows: list[dict[str, Any]]) -> None:
        buf = io.StringIO()
        if rows:
            cols = list(rows[0].keys())
            for r in rows[1:]:
                cols += [k for k in r if k not in cols]
            w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
            w.writeheader()
            w.writerows({k: _short(v) for k, v in r.items()} for r in rows)
        self._write(METRICS_FILE, gzip_bytes(buf.getvalue().encode()))
        # a run begun before format 4 and resumed by this nalkit: its plain metrics.csv is out of date
        self._remove(PLAIN_METRICS_FILE)

    def write_arrays(self, arrays: dict[str, np.ndarray], labels_dir: str | Path | None = None) -> None:
        """Write the per-sample arrays, encoded by :func:`encode_arrays`, without the losses and phi of the snapshot
        epochs before the last (:func:`without_early_snapshots`); with ``labels_dir``, the test and training labels
        are stored there once (:func:`share_labels`, format 4) and the record refers to them."""
        stored = without_early_snapshots(encode_arrays(arrays))
        if labels_dir is not None:
            stored = share_labels(stored, self.dir, labels_dir)
        self._write("arrays.npz", npz_bytes(stored))

    def verify(self) -> None:
        """Raise :class:`RecordError` if any file disagrees with the manifest."""
        verify_record(self.dir)


# --------------------------------------------------------------------------------------------
# arrays.npz, compact (format 2)
# --------------------------------------------------------------------------------------------
#: The format of arrays.npz, its ``format`` array. 2 holds every training sample and the labels itself, 3 a
#: sample of the training set and the test labels outside (in ``<results>/labels/``), 4 the training labels
#: outside too. This reader reads them all.
ARRAYS_FORMAT = 4
# Values in (0, 1) that crowd against 1 (tau is 1 - 1e-6 for many samples late in training) are stored as the
# float16 of their logit, which keeps 1 - tau (and tau near 0) to within 0.4 % while the logit is below 16 in
# magnitude (down to 1 - tau = 1e-7) and 0.8 % beyond; float16 of tau itself rounds every tau above 0.9995 to 1.
UNIT_INTERVAL = ("tau", "phi")
OFFSET = "__offset"  # suffix of the float64 value that a float16 array is stored relative to
SPAN = "__span"  # suffix of [min, max] (float64) of a real array stored as float16 distances to the nearer end
DELTA = "__minus__"  # <name>__minus__<reference>: an integer array stored as its difference to another
ARANGE = "__arange"  # train_index__arange = N: the training indices are 0 .. N-1
SHARED = "__shared"  # test_labels__shared = [relative path, sha256]: the array is stored once, outside the record
#: the labels each kind of prediction is stored relative to
_REFERENCE = {"pred": "noisy_labels", "q_argmax": "noisy_labels", "test_pred": "test_labels"}


def _base(key: str) -> str:
    """``tau_e20`` -> ``tau``; ``final_tau`` -> ``tau``; ``tau_logit_e20`` -> ``tau_logit``."""
    key = key.removeprefix("final_")
    head, sep, tail = key.rpartition("_e")
    return head if sep and tail.isdigit() else key


def _logit_key(key: str) -> str:
    head, sep, tail = key.rpartition("_e")
    return f"{head}_logit_e{tail}" if sep and tail.isdigit() else f"{key}_logit"


def smallest_int(values: np.ndarray) -> np.ndarray:
    """``values`` in the smallest of int8/int16/int32/int64 that holds every one of them exactly."""
    values = np.asarray(values)
    lo, hi = (int(values.min()), int(values.max())) if values.size else (0, 0)
    for dtype in (np.int8, np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return values.astype(dtype)
    return values.astype(np.int64)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore"):  # p = 0 or 1 (saturated float32) -> -inf / +inf, decoded back exactly
        return np.log(p) - np.log1p(-p)


def encode_arrays(arrays: dict[str, np.ndarray],
                  shared: dict[str, tuple[str, str]] | None = None) -> dict[str, np.ndarray]:
    """The compact form of a run's per-sample arrays (what ``arrays.npz`` holds).

    ``shared`` names arrays stored once outside the record (:func:`write_shared_labels`), as name -> (path
    relative to the run directory, sha256): they are used as the reference of the arrays stored as a difference
    to them, then replaced by ``<name>__shared``.

    * integer arrays (labels, predictions, indices, counts) -> the smallest integer type that holds them;
    * ``tau``/``phi`` arrays (values in (0, 1)) -> their logit (an array given as ``<name>_logit`` already
      is one), stored as float16 of ``logit - median(logit)`` with the median beside it as
      ``<name>_logit__offset``;
    * other real arrays (losses, margins) -> float16 of the distance to the nearer end of their range (``x -
      min`` in the lower half, ``-(max - x)`` in the upper), with ``[min, max]`` beside it as ``<name>__span``
      (records written before this keep ``x - min`` with ``<name>__offset``, and read the same way as ever);
    * float32 instead where the spread exceeds float16's range;
    * ``final_<name>`` equal to the snapshot of the last epoch is stored once (``final_epoch`` says which);
    * predictions and argmax targets as their difference to the given labels (``<name>__minus__noisy_labels``;
      test predictions to ``test_labels``), and ``train_index`` = 0 .. N-1 as ``train_index__arange``.

    Already-encoded input comes back unchanged, so rewriting a record twice changes nothing.
    """
    if "format" in arrays:
        return dict(arrays)
    out: dict[str, np.ndarray] = {"format": np.asarray(ARRAYS_FORMAT, np.int8)}
    for key, value in arrays.items():
        value = np.asarray(value)
        if value.dtype.kind in "iub":
            out[key] = value if value.dtype == bool else smallest_int(value)
        elif value.dtype.kind == "f":
            unit = _base(key) in UNIT_INTERVAL or _base(key).removesuffix("_logit") in UNIT_INTERVAL
            if _base(key) in UNIT_INTERVAL:
                key, value = _logit_key(key), _logit(value)
            # float16 of the distance to a reference value: values that crowd together (every loss near 0.061
            # in a collapsed run, every tau near 0.4 early on) keep their order and their histogram; plain
            # float16 moved such a run's loss AUROC by 0.007. Losses are stored relative to their minimum (small
            # losses keep their resolution), logits relative to their median (both tails keep theirs).
            finite = value[np.isfinite(value)]
            if unit:
                low = float(np.median(finite)) if finite.size else 0.0
                shifted = value.astype(np.float64) - low
            else:
                # Other reals (losses, margins) as float16 of their distance to the nearer end of their range,
                # negative when it is the top: losses that crowd against a bound (GCE's 1/q for the samples it
                # gives up on) keep their order as the small ones do; relative to the minimum alone, float16
                # merged GCE's losses near 1.111 and moved a loss AUROC by 0.013.
                low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
                x = value.astype(np.float64)
                with np.errstate(invalid="ignore"):
                    shifted = np.where(x - low <= high - x, x - low, -(high - x))
            big = finite.size and float(np.abs(shifted[np.isfinite(shifted)]).max()) > float(np.finfo(np.float16).max)
            out[key] = value.astype(np.float32) if big else shifted.astype(np.float16)
            if not big:
                if unit:
                    out[f"{key}{OFFSET}"] = np.asarray(low, np.float64)
                else:
                    out[f"{key}{SPAN}"] = np.asarray([low, high], np.float64)
        else:
            out[key] = value
    epochs = [int(k.rpartition("_e")[2]) for k in out if k.rpartition("_e")[2].isdigit()]
    if epochs:
        last = max(epochs)
        for key in [k for k in out if k.startswith("final_") and not k.endswith((OFFSET, SPAN))]:
            snap = f"{key.removeprefix('final_')}_e{last}"
            if _same(out, key, snap) and _same(out, key + OFFSET, snap + OFFSET) and _same(out, key + SPAN, snap + SPAN):
                del out[key]
                out.pop(key + OFFSET, None)
                out.pop(key + SPAN, None)
        out["final_epoch"] = np.asarray(last, np.int16)
    # predictions mostly equal the given labels: stored as the difference to them, they compress to little
    for key in list(out):
        ref = _REFERENCE.get(_base(key))
        if ref in out and out[key].dtype.kind == "i" and out[key].shape == out[ref].shape:
            out[f"{key}{DELTA}{ref}"] = smallest_int(out.pop(key).astype(np.int64) - out[ref])
    for name in ("train_index", "sample_index"):
        index = out.get(name)
        if index is not None and np.array_equal(index, np.arange(len(index))):
            out[name + ARANGE] = np.asarray(len(out.pop(name)), np.int64)
    for name, (rel, digest) in (shared or {}).items():
        out.pop(name, None)
        out[name + SHARED] = np.asarray([rel, digest])
    return out


def _same(arrays: dict[str, np.ndarray], a: str, b: str) -> bool:
    """Both keys absent, or both present with the same dtype and values (NaN equal to NaN)."""
    if a not in arrays or b not in arrays:
        return a not in arrays and b not in arrays
    x, y = arrays[a], arrays[b]
    return x.dtype == y.dtype and np.array_equal(x, y, equal_nan=x.dtype.kind == "f")


def decode_arrays(stored: dict[str, np.ndarray],
                  shared: Callable[[str, str], np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """What a reader of ``arrays.npz`` sees, for a record of any format.

    Integers come back as int64; float16 as float32; ``<name>_logit`` arrays are kept and ``<name>`` (tau,
    phi) is added as their sigmoid in float64 (float32 would round tau = 1 - 1e-8 to 1); ``final_<name>``
    stored once as the last snapshot is restored. ``shared(relative path, sha256)`` returns an array stored
    outside the record (the labels of formats 3 and 4: :func:`read_shared_labels`); without it such an array is
    left out (and so are the arrays stored as a difference to it).
    """
    out: dict[str, np.ndarray] = {}
    fmt = int(np.asarray(stored["format"])) if "format" in stored else 1
    if fmt > ARRAYS_FORMAT:
        raise RecordError(f"arrays.npz is of format {fmt}; this nalkit reads formats up to {ARRAYS_FORMAT} "
                          f"(written by a newer version? upgrade nalkit)")
    unknown = [k for k in stored if "__" in k and not (k.endswith((OFFSET, SPAN, ARANGE, SHARED)) or DELTA in k)]
    if unknown:  # a key of an encoding this reader does not know: refuse rather than misread it
        raise RecordError(f"arrays.npz holds {', '.join(sorted(unknown)[:3])}: an encoding this nalkit does not know "
                          f"(written by another version?)")
    for key, value in stored.items():
        if key.endswith(SHARED):
            if shared is not None:
                rel, digest = (str(v) for v in np.asarray(value))
                out[key.removesuffix(SHARED)] = shared(rel, digest)
            continue
        if key in ("format", "final_epoch") or key.endswith((OFFSET, SPAN)) or DELTA in key:
            continue
        if key.endswith(ARANGE):
            out[key.removesuffix(ARANGE)] = np.arange(int(value), dtype=np.int64)
            continue
        value = np.asarray(value)
        if value.dtype.kind in "iu":
            value = value.astype(np.int64)
        elif value.dtype == np.float16 and f"{key}{SPAN}" in stored:
            low, high = (float(v) for v in np.asarray(stored[f"{key}{SPAN}"]))
            z = value.astype(np.float64)
            value = np.where(np.signbit(z), high + z, low + z).astype(np.float32)
        elif value.dtype == np.float16:
            low = stored.get(f"{key}{OFFSET}")
            value = value.astype(np.float32) if low is None else \
                (value.astype(np.float64) + float(np.asarray(low))).astype(np.float32)
        out[key] = value
        head, sep, tail = key.rpartition("_logit")
        if sep and head.removeprefix("final_") in UNIT_INTERVAL and (not tail or tail.removeprefix("_e").isdigit()):
            with np.errstate(over="ignore"):
                out[head + tail] = 1.0 / (1.0 + np.exp(-value.astype(np.float64)))
    for key, value in stored.items():
        if DELTA in key:
            name, ref = key.split(DELTA)
            if ref in out:
                out[name] = np.asarray(value).astype(np.int64) + out[ref]
    if "final_epoch" in stored:
        last = int(stored["final_epoch"])
        for key in list(out):
            head, sep, tail = key.rpartition("_e")
            if sep and tail == str(last) and f"final_{head}" not in out:
                out[f"final_{head}"] = out[key]
    return out


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """``arrays`` as the bytes of a compressed ``.npz`` file."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


@dataclass
class Compacted:
    """What :func:`compact_record` did to one run directory (sizes in bytes)."""

    run_dir: Path
    arrays_before: int
    arrays_after: int
    notebook_before: int
    notebook_after: int
    metrics_before: int = 0
    metrics_after: int = 0

    @property
    def before(self) -> int:
        return self.arrays_before + self.notebook_before + self.metrics_before

    @property
    def after(self) -> int:
        return self.arrays_after + self.notebook_after + self.metrics_after


def compact_record(run_dir: str | Path, labels_dir: str | Path | None = None) -> Compacted:
    """Rewrite a complete run record in the compact form of the current format: ``arrays.npz`` by
    :func:`encode_arrays` and :func:`share_labels`, ``metrics.csv`` as ``metrics.csv.gz`` (:func:`gzip_bytes`
    of exactly its bytes; the manifest updated for both), and the images of its executed notebook as palette PNGs
    (:func:`nalkit._images.compact_png`).

    No kept value changes: a format-2 or 3 record's arrays become format 4 by moving its labels to ``labels_dir``
    (default: ``<results>/labels`` for a record in ``<results>/runs/``), the per-sample losses and phi of its
    snapshot epochs before the last are dropped (:func:`without_early_snapshots`), and a K-fold run
    (``data.cv_folds``) keeps only what confident learning reads (``HELDOUT_KEYS``). The metrics read back as the same frame
    (:func:`read_metrics`); a format-3 record's ``record_format`` in status.json becomes ``RECORD_FORMAT``,
    the rest of status.json byte for byte as it was. A format-2 record keeps its number, which also says how its
    forgetting columns were scored (see the module docstring). Idempotent: a record already compact is left byte
    for byte as it is. The record is verified first, so a damaged one raises :class:`RecordError` and is not
    touched.
    """
    run_dir = Path(run_dir)
    if read_status(run_dir).get("state") != "complete":
        raise RecordError(f"{run_dir} is not a complete run record; only complete runs are compacted")
    verify_record(run_dir)
    metrics_before, metrics_after = _compress_metrics(run_dir)
    path = run_dir / "arrays.npz"
    before = path.stat().st_size
    with np.load(path) as z:
        stored = {k: z[k] for k in z.files}
    new = encode_arrays(stored)  # a record of the original float32/int64 form: encoded
    if "heldout_probs" in new:
        new = heldout_only(new)
    new = without_early_snapshots(new)
    new = share_labels(new, run_dir, Path(labels_dir) if labels_dir is not None else default_labels_dir(run_dir))
    if new.keys() != stored.keys() or any(not np.array_equal(new[k], stored[k]) for k in new):
        RunRecord(run_dir)._write("arrays.npz", npz_bytes(new))
    nb = run_dir / "experiment.ipynb"
    nb_before = nb.stat().st_size if nb.is_file() else 0
    if nb.is_file():
        text = nb.read_text(encoding="utf-8")
        new_text = _compact_notebook(text)
        if new_text != text:
            atomic_write_text(nb, new_text)
    return Compacted(run_dir, before, path.stat().st_size, nb_before, nb.stat().st_size if nb.is_file() else 0,
                     metrics_before, metrics_after)


def _compress_metrics(run_dir: Path) -> tuple[int, int]:
    """A verified complete record's ``metrics.csv`` stored as ``metrics.csv.gz`` and its format raised (format 3 to
    4); (size before, size after) in bytes.

    In this order, so that a kill anywhere leaves a record that verifies and reads the same, and that a second
    call completes: the compressed file is added (the manifest lists both), status.json raised, the plain file
    removed (the manifest first)."""
    record = RunRecord(run_dir)
    plain, packed = run_dir / PLAIN_METRICS_FILE, run_dir / METRICS_FILE
    if PLAIN_METRICS_FILE in record.manifest():
        before = plain.stat().st_size
        record._write(METRICS_FILE, gzip_bytes(plain.read_bytes()))
    else:
        before = packed.stat().st_size if packed.is_file() else 0
    status = read_status(run_dir)
    if status.get("record_format") == 3:
        # json.loads keeps the key order and float repr round-trips: only the number changes
        status["record_format"] = RECORD_FORMAT
        record._write("status.json", json.dumps(status, indent=1, default=_jsonable).encode())
    record._remove(PLAIN_METRICS_FILE)
    return before, packed.stat().st_size if packed.is_file() else 0


# --------------------------------------------------------------------------------------------
# format 3: a sample of the training set, the test labels once
# --------------------------------------------------------------------------------------------
#: The only arrays a K-fold run keeps, what confident learning reads (nalkit.results.detection).
HELDOUT_KEYS = ("heldout_index", "heldout_noisy", "heldout_clean", "heldout_probs", "heldout_epoch")
LABELS_DIR = "labels"


def default_labels_dir(run_dir: str | Path) -> Path:
    """Where the shared test labels of a record live: ``<results>/labels`` for ``<results>/runs/<run>`` (the
    runner's layout), else ``labels`` beside the run directory."""
    run_dir = Path(run_dir)
    return (run_dir.parent.parent if run_dir.parent.name == "runs" else run_dir.parent) / LABELS_DIR


def labels_digest(labels: np.ndarray) -> str:
    """sha256 of labels as little-endian int64 (whatever integer type they are stored in)."""
    return sha256_bytes(np.ascontiguousarray(np.asarray(labels), dtype="<i8").tobytes())


def write_shared_labels(labels_dir: str | Path, name: str, labels: np.ndarray) -> tuple[Path, str]:
    """Store ``labels`` once as ``<labels_dir>/<name>-<sha256[:16]>.npy`` (content-addressed: every run on the same
    test set shares the file) and return (path, sha256). An existing file with the right content is kept."""
    labels = np.asarray(labels)
    digest = labels_digest(labels)
    path = Path(labels_dir) / f"{name}-{digest[:16]}.npy"
    try:
        ok = path.is_file() and labels_digest(np.load(path, allow_pickle=False)) == digest
    except (OSError, ValueError):
        ok = False
    if not ok:
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.save(buf, smallest_int(labels), allow_pickle=False)
        atomic_write_bytes(path, buf.getvalue())
    return path, digest


def read_shared_labels(run_dir: str | Path, rel: str, digest: str) -> np.ndarray:
    """The labels a record of format 3 or 4 stores outside itself: ``run_dir / rel``, checked against ``digest``; where
    the record was moved without them, ``<results>/labels`` (:func:`default_labels_dir`) is tried too."""
    run_dir = Path(run_dir)
    candidates = [run_dir / rel, default_labels_dir(run_dir) / Path(rel).name]
    for path in candidates:
        if path.is_file():
            try:
                labels = np.load(path, allow_pickle=False).astype(np.int64)
            except (OSError, ValueError) as err:
                raise RecordError(f"{path} (the test labels {run_dir.name} refers to) is unreadable: {err}") from None
            if labels_digest(labels) != digest:
                raise RecordError(f"{path} does not match the sha256 {digest[:16]}... that {run_dir}/arrays.npz "
                                  f"records for it: altered or replaced")
            return labels
    raise RecordError(f"{run_dir}/arrays.npz keeps its test labels in {candidates[0]}, which is missing (copy the "
                      f"results directory's {LABELS_DIR}/ folder with its runs)")


#: The label arrays a record of format 4 stores once, outside itself, with the prefix of their file names in
#: ``<results>/labels/`` (format 3 stores only the test labels so).
SHARED_LABELS = {"test_labels": "test", "noisy_labels": "noisy", "clean_labels": "clean"}


def share_labels(stored: dict[str, np.ndarray], run_dir: str | Path, labels_dir: str | Path) -> dict[str, np.ndarray]:
    """An encoded record (:func:`encode_arrays`) with its inline label arrays (``SHARED_LABELS``: the test labels,
    the given and the clean training labels) moved to ``labels_dir`` (format 4). Runs on the same noise draw and
    record sample hold the same training labels, so they share one file as every run shares the test labels'.
    Every other stored array is kept byte for byte: the predictions stay a difference to the same labels."""
    out = dict(stored)
    for name, prefix in SHARED_LABELS.items():
        if name in out:
            path, digest = write_shared_labels(labels_dir, prefix, out.pop(name))
            out[name + SHARED] = np.asarray([Path(os.path.relpath(path, run_dir)).as_posix(), digest])
    out["format"] = np.asarray(ARRAYS_FORMAT, np.int8)
    return out


#: The per-sample arrays a record keeps for its last epoch only, not for the snapshot epochs before it, since no
#: chapter reads them there and their means or AUROC per epoch are in the metrics (over every sample).
LAST_EPOCH_ONLY = ("loss", "phi")


def without_early_snapshots(stored: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """An encoded record without the arrays of ``LAST_EPOCH_ONLY`` at its snapshot epochs before the last
    (``loss_eE``, ``phi_logit_eE``). Their epoch curves are in the metrics: the loss's AUROC and AP, phi's mean over
    the clean and the mislabeled samples (``phi_clean``, ``phi_mislabeled``). The early losses were the largest
    arrays of the records (7.6 of 22 MB, dropped from format 3 on); the early phi snapshots 2.3 of 26 MB (dropped
    since the training labels left the records, without a change of format: a reader finds fewer snapshots).
    The last epoch's arrays (``final_loss``, ``final_phi``, stored as the last snapshot when equal to it) stay."""
    last = int(stored["final_epoch"]) if "final_epoch" in stored else None
    keep = {}
    for key, value in stored.items():
        head, sep, tail = key.split("__")[0].rpartition("_e")
        if head.removesuffix("_logit") in LAST_EPOCH_ONLY and sep and tail.isdigit() and int(tail) != last:
            continue
        keep[key] = value
    return keep


def heldout_only(stored: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Of a K-fold run's encoded arrays, what confident learning reads (``HELDOUT_KEYS``, their encodings)
    and ``n_train``, the number of samples the run trained on."""
    if "n_train" in stored:
        n = int(stored["n_train"])
    elif "train_index" + ARANGE in stored:
        n = int(stored["train_index" + ARANGE])
    else:
        n = len(stored["train_index"])
    out = {k: v for k, v in stored.items() if k == "format" or k.split("__")[0] in HELDOUT_KEYS}
    out["n_train"] = np.asarray(n, np.int64)
    return out


def record_sample(noisy: np.ndarray, clean: np.ndarray | None, size: int, seed: int) -> np.ndarray:
    """Positions (sorted) of at most ``size`` training samples whose per-sample arrays a record keeps.

    Stratified by class (the clean label where known, else the given one) and by clean / mislabeled, with each
    stratum's share of the whole (largest remainders), drawn with ``seed``: runs with the same labels and seed
    (every method of one noise draw) keep the same samples, so per-sample comparisons between them hold. The
    whole set when it has at most ``size`` samples.
    """
    noisy = np.asarray(noisy)
    n = len(noisy)
    if size >= n:
        return np.arange(n)
    if size <= 0:
        return np.zeros(0, np.int64)
    known = clean is not None and bool((np.asarray(clean) >= 0).any())
    cls = np.where(np.asarray(clean) >= 0, clean, noisy) if known else noisy
    flipped = (np.asarray(clean) >= 0) & (np.asarray(clean) != noisy) if known else np.zeros(n, bool)
    strata = cls.astype(np.int64) * 2 + flipped
    keys, inverse, counts = np.unique(strata, return_inverse=True, return_counts=True)
    quota = counts * size / n
    take = np.floor(quota).astype(np.int64)
    rest = size - int(take.sum())
    take[np.argsort(-(quota - take), kind="stable")[:rest]] += 1
    rng = np.random.default_rng(np.random.SeedSequence([20221207, seed]))
    chosen = [rng.choice(np.flatnonzero(inverse == s), size=int(take[s]), replace=False) for s in range(len(keys))]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


#: the per-cell metadata that papermill and the kernel write on every execution, timings and status; nothing reads them
NOTEBOOK_RUN_METADATA = ("papermill", "execution")


def _compact_notebook(text: str) -> str:
    """The notebook JSON ``text`` with every ``image/png`` output re-encoded as a palette PNG, each cell's
    ``NOTEBOOK_RUN_METADATA`` dropped (its tags and every other key kept) and the JSON written without
    indentation; ``text`` itself when that changes nothing."""
    import base64

    from ._images import compact_png

    nb = json.loads(text)
    for cell in nb.get("cells", []):
        for key in NOTEBOOK_RUN_METADATA:
            cell.get("metadata", {}).pop(key, None)
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                raw = data["image/png"]
                png = base64.b64decode("".join(raw) if isinstance(raw, list) else raw)
                small = compact_png(png)
                if small != png:
                    data["image/png"] = base64.b64encode(small).decode("ascii")
    new = json.dumps(nb, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n"
    return new if new != text else text


def read_status(run_dir: str | Path) -> dict[str, Any]:
    """The run's status.json, or {} when the run has not started; corrupt JSON is an error."""
    p = Path(run_dir) / "status.json"
    if not p.is_file():
        return {}
    data = p.read_bytes()
    try:
        status = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RecordError(f"{p} is not valid JSON (truncated or corrupted); delete the run directory to rerun") from None
    if not isinstance(status, dict):
        raise RecordError(f"{p} holds {type(status).__name__}, not a status mapping (corrupted); "
                          f"delete the run directory to rerun")
    if status.get("state") == "complete":
        # a complete status is listed in the manifest before it is written (RunRecord._write), so a
        # mismatch is damage: never trust, skip or report such a run as complete
        try:
            listed = json.loads((p.parent / "manifest.json").read_text()).get("status.json")
        except (OSError, ValueError, AttributeError):
            listed = None
        if listed is not None and sha256_bytes(data) != listed:
            raise RecordError(f"{p} does not match its checksum in {p.parent / 'manifest.json'}: truncated or "
                              f"altered; delete the run directory to rerun")
    return status


def gzip_bytes(data: bytes) -> bytes:
    """``data`` gzip-compressed (level 9) with neither a file name nor a time in the header: the same data give the
    same bytes (with the same zlib), so a rewritten record keeps its checksums."""
    return gzip.compress(data, compresslevel=9, mtime=0)


def metrics_path(run_dir: str | Path) -> Path:
    """The per-epoch metrics file of a record: ``metrics.csv.gz``, or ``metrics.csv`` in a record written before
    format 4. Chosen by the manifest (the compressed file where it lists both: a compaction interrupted), by the
    files present where there is no manifest."""
    run_dir = Path(run_dir)
    try:
        listed = json.loads((run_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        listed = {}
    if not isinstance(listed, dict):
        listed = {}
    for name in (METRICS_FILE, PLAIN_METRICS_FILE):
        if name in listed:
            return run_dir / name
    plain = run_dir / PLAIN_METRICS_FILE
    return plain if plain.is_file() and not (run_dir / METRICS_FILE).is_file() else run_dir / METRICS_FILE


def read_metrics(run_dir: str | Path, *, verify: bool = True) -> pd.DataFrame:
    """The per-epoch metrics of a run as a pandas DataFrame, one row per epoch (columns: see :mod:`nalkit.train`),
    exactly as the trainer wrote them; empty (no columns) before the first epoch is recorded.

    Reads ``metrics.csv.gz`` (format 4) or the plain ``metrics.csv`` of older records (:func:`metrics_path`),
    checked against the manifest first unless ``verify`` is false. Columns are those of the file:
    :func:`nalkit.results.load_run` is where the columns of older records are renamed for what they mean.

    Raises:
        RecordError: the file is missing, not listed, does not match its checksum, or is not readable gzip/UTF-8
            text; the message names the file.
    """
    import pandas as pd

    path = metrics_path(run_dir)
    if verify:
        verify_record(run_dir, (path.name,))
    elif not path.is_file():
        raise RecordError(f"{path} is missing: {Path(run_dir)} holds no per-epoch metrics (not a run record, or "
                          f"one that has recorded no epoch yet)")
    data = path.read_bytes()
    try:
        text = (gzip.decompress(data) if path.name == METRICS_FILE else data).decode("utf-8")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as err:
        kind = "gzip-compressed CSV" if path.name == METRICS_FILE else "UTF-8 CSV"
        raise RecordError(f"{path} is not readable {kind} ({type(err).__name__}: {err}): truncated or corrupted; "
                          f"delete the run directory to rerun, or restore the file from git") from None
    return pd.read_csv(io.StringIO(text)) if text.strip() else pd.DataFrame()


def verify_record(run_dir: str | Path, names: tuple[str, ...] | None = None) -> dict[str, str]:
    """Check files of a run record against its ``manifest.json`` and return the manifest (name -> sha256).

    Args:
        run_dir: the run directory.
        names: the files to check (default: every file the manifest lists).

    Raises:
        RecordError: no or unreadable manifest, a file missing, unlisted, or not matching its checksum.
    """
    run_dir = Path(run_dir)
    mpath = run_dir / "manifest.json"
    if not mpath.is_file():
        raise RecordError(f"{run_dir} has no manifest.json: not a nalkit run record (or written before it finished)")
    try:
        manifest = json.loads(mpath.read_text())
    except json.JSONDecodeError:
        raise RecordError(f"{mpath} is not valid JSON (corrupted)") from None
    for name in names or tuple(manifest):
        path = run_dir / name
        if name not in manifest:
            raise RecordError(f"{path} is not listed in {mpath}")
        if not path.is_file():
            raise RecordError(f"{path} is missing (listed in {mpath})")
        if sha256_file(path) != manifest[name]:
            raise RecordError(f"{path} does not match its checksum in {mpath}: truncated or altered")
    return manifest


# Significant digits of a float in the metrics CSV. An accuracy over 10,000 images has at most 5, an AUROC's third
# decimal is the last the book prints; 17 digits (Python's repr) tripled the file for nothing.
METRIC_DIGITS = 7


def _short(value: Any) -> Any:
    """A float written with :data:`METRIC_DIGITS` significant digits (the CSV's text), anything else as it is."""
    if isinstance(value, (float, np.floating)):
        text = f"{float(value):.{METRIC_DIGITS}g}"
        # "0" or "1" would read back as an integer column: a float keeps its point
        return text if any(c in text for c in ".enai") else text + ".0"
    return value


def _jsonable(x: Any) -> Any:
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, Path):
        return str(x)
    return str(x)


def git_commit() -> str | None:
    """The git commit of the nalkit source tree, or ``None`` outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields in ``/proc/cpuinfo`` (empty where there is none)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    break  # the first processor only
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def cpu_model() -> str:
    """The processor's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


def cpu_id() -> str | None:
    """The processor's family, model and stepping numbers (``/proc/cpuinfo``, x86), e.g. ``"family 26 model 2
    stepping 1"``: a virtual machine may show only ``AMD EPYC`` as its model name, and two such machines can differ
    in speed by 2x; None where the numbers are not known."""
    fields = _cpuinfo()
    parts = [f"{name} {fields[key]}" for key, name in (("cpu family", "family"), ("model", "model"),
                                                        ("stepping", "stepping")) if fields.get(key)]
    return " ".join(parts) if parts else None


def environment(device: Any) -> dict[str, Any]:
    """Describe where a run ran: hardware, library versions, commit (airbench-style); ``device`` a torch.device."""
    import torch

    from . import __version__

    try:
        import torchvision
    except ImportError:  # optional (nalkit[vision])
        torchvision = None

    env: dict[str, Any] = {
        "nalkit": __version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__ if torchvision is not None else None,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "device_name": platform.processor() or platform.machine(),
        # float results are bit-identical only on the same kernels: the CPU model and the vector ISA torch picked
        "cpu_model": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_id": cpu_id(),
    }
    if device.type == "cuda":
        env["device_name"] = torch.cuda.get_device_name(device)
        env["cuda"] = torch.version.cuda
        env["cudnn"] = torch.backends.cudnn.version()
    return env
