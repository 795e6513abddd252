"""Read run records into tidy pandas frames: every chapter starts here.

>>> runs = load_runs("results/runs")
>>> runs.runs      # one row per run: config columns + status + last/best test accuracy
>>> runs.epochs    # one row per (run, epoch): config columns + every column of the run's metrics
>>> load_arrays(runs.runs.run_dir[0])   # per-sample arrays of one run

Every file read is checked against the run's manifest (checksums); a run whose record is damaged
raises :class:`nalkit.records.RecordError` naming the file, or is reported in ``runs.problems``
with ``strict=False``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from .names import nal_variant

from ..config import Config
from ..records import RecordError, decode_arrays, read_metrics, read_shared_labels, read_status, verify_record

CONFIG_COLUMNS = {
    "dataset": "data.name",
    "train_subset": "data.train_subset",
    "augment": "data.augment",
    "noise_mode": "noise.mode",
    "noise_rate": "noise.rate",
    "noise_seed": "noise.seed",
    "noisy_val_size": "data.noisy_val_size",
    "cv_folds": "data.cv_folds",
    "model": "model.name",
    "method": "method.name",
    "lam": "method.nal.lam",
    "alpha": "method.nal.alpha",
    "es": "method.nal.es",
    "update_period": "method.nal.update_period",
    "update_when": "method.nal.update_when",
    "estimate_targets": "method.nal.estimate_targets",
    "attention": "method.nal.attention",
    "attention_mode": "method.nal.attention_mode",
    "gce_q": "method.gce.q",
    "sce_alpha": "method.sce.alpha",
    "sce_beta": "method.sce.beta",
    "elr_beta": "method.elr.beta",
    "elr_lam": "method.elr.lam",
    "selc_start": "method.selc.start",
    "epochs": "optim.epochs",
    "batch_size": "optim.batch_size",
    "seed": "run.seed",
}


def config_value(cfg: Config, dotted: str) -> Any:
    """The value of ``section.key`` (or ``method.<method>.<key>``) of ``cfg``."""
    obj: Any = cfg
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass
class Runs:
    """What :func:`load_runs` returns: ``runs`` (one row per run), ``epochs`` (one row per run and epoch), and
    ``problems`` (the damaged records skipped with ``strict=False``)."""

    runs: pd.DataFrame
    epochs: pd.DataFrame
    problems: list[str] = field(default_factory=list)


def noise_label(mode: str, rate: float) -> str:
    """'sym 40 %' style label of a noise setting; instance-dependent noise reads 'IDN 40 %', as the literature
    writes it."""
    return "clean" if mode == "none" else f"{'IDN' if mode == 'idn' else mode} {round(100 * rate):d} %"


def run_dirs(path: str | Path) -> list[Path]:
    """Run directories (those with a status.json) at or below ``path``."""
    path = Path(path)
    if (path / "status.json").is_file():
        return [path]
    return sorted(p.parent for p in path.rglob("status.json"))


def hardware_name(env: dict) -> str:
    """What a run trained on, from its environment.json: ``cpu (AMD EPYC, AVX512, 1 torch thread)`` or ``cuda
    (NVIDIA H200, 1 torch thread)``. Timings compare only between runs with the same name."""
    name = env.get("cpu_model") if env.get("device") == "cpu" else env.get("device_name")
    name = name or env.get("device_name") or env.get("cpu_model") or "?"
    isa = f", {env['cpu_capability']}" if env.get("cpu_capability") and env.get("device") == "cpu" else ""
    threads = env.get("torch_threads", "?")
    return f"{env.get('device', '?')} ({name}{isa}, {threads} torch thread{'s' if threads != 1 else ''})"


def load_run(run_dir: str | Path) -> tuple[dict, pd.DataFrame]:
    """(summary row, per-epoch frame) of one run, verified against its manifest."""
    run_dir = Path(run_dir)
    env_path = run_dir / "environment.json"
    # every file read below is verified, environment.json included (its device/threads columns), and the
    # metrics by read_metrics (metrics.csv.gz, or metrics.csv before format 4)
    verify_record(run_dir, ("config.yaml", "status.json") + (("environment.json",) if env_path.is_file() else ()))
    # through Config: records written before the per-method config sections read the same way
    cfg = Config.from_dict(yaml.safe_load((run_dir / "config.yaml").read_text()), source=str(run_dir / "config.yaml"))
    status = read_status(run_dir)
    env = json.loads(env_path.read_text()) if env_path.is_file() else {}
    row: dict = {k: config_value(cfg, key) for k, key in CONFIG_COLUMNS.items()}
    row["noise"] = noise_label(row["noise_mode"], row["noise_rate"])
    row.update(run=run_dir.name, run_dir=str(run_dir), state=status.get("state"),
               epochs_done=status.get("epoch"), seconds=status.get("seconds"),
               actual_noise_rate=(status.get("noise") or {}).get("actual_rate"),
               device=env.get("device"), device_name=env.get("device_name"), threads=env.get("torch_threads"),
               hardware=hardware_name(env) if env else None)
    row["record_format"] = int(status.get("record_format", 2))
    epochs = read_metrics(run_dir)
    if row["record_format"] < 3:
        # written before forgetting events scored a never-learned sample as the most forgettable: that column
        # answers another question and keeps another name (nalkit.results.forgetting_last_epoch rescores)
        epochs = epochs.rename(columns={"forget_auroc": "forget_uncorrected_auroc", "forget_ap": "forget_uncorrected_ap"})
    if len(epochs):
        tests = epochs["test_acc"].dropna() if "test_acc" in epochs else pd.Series(dtype=float)
        row["last_test_acc"] = float(tests.iloc[-1]) if len(tests) else float("nan")
        row["best_test_acc"] = float(tests.max()) if len(tests) else float("nan")
        row["sec_per_epoch"] = float(epochs["seconds"].median())
        lastrow = epochs.iloc[-1]
        for col in ("memorized", "tau_auroc", "loss_auroc", "tau_clean", "tau_mislabeled", "corrected_acc",
                    "corrected_acc_mislabeled", "clean_acc", "mislabeled_acc", "train_acc_noisy", "val_acc_noisy",
                    "val_acc_clean"):
            if col in epochs:
                row[f"last_{col}"] = float(lastrow[col])
        for k, v in row.items():
            if k in CONFIG_COLUMNS or k in ("noise", "run"):
                epochs[k] = v
    return row, epochs


def load_runs(path: str | Path = "results/runs", *, strict: bool = True, complete_only: bool = False) -> Runs:
    """Load every run record at or below ``path``.

    Args:
        path: a results directory (every run directory below it) or one run directory.
        strict: raise on a damaged record (default); otherwise skip it and list it in ``problems``.
        complete_only: keep only runs whose status is ``complete``.
    """
    rows, frames, problems = [], [], []
    for d in run_dirs(path):
        try:
            row, ep = load_run(d)
        except (RecordError, OSError, KeyError, ValueError) as err:
            if strict:
                raise
            problems.append(f"{d}: {err}")
            continue
        if complete_only and row["state"] != "complete":
            continue
        rows.append(row)
        frames.append(ep)
    runs = pd.DataFrame(rows)
    epochs = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return Runs(runs=runs, epochs=epochs, problems=problems)


def load_arrays(run_dir: str | Path) -> dict[str, np.ndarray]:
    """Per-sample arrays of a complete run (labels, noise mask, tau/loss/pred snapshots, test predictions).

    Decoded by :func:`nalkit.records.decode_arrays`: labels and predictions int64, losses and margins float32,
    ``tau``/``phi`` float64 (with their stored logits as ``tau_logit``/``phi_logit``), for records of every
    format.

    Records of format 3 keep the per-training-sample arrays for a sample of the training set: ``sample_index``
    (positions in the training set) says which and ``n_train`` how many samples there are; older records keep
    every sample (``sample_index`` = 0 .. N-1 is added). A K-fold run keeps only its held-out fold's arrays.
    """
    run_dir = Path(run_dir)
    verify_record(run_dir, ("arrays.npz",))
    with np.load(run_dir / "arrays.npz") as z:
        out = decode_arrays({k: z[k] for k in z.files}, lambda rel, digest: read_shared_labels(run_dir, rel, digest))
    if "noisy_labels" in out:
        out.setdefault("sample_index", np.arange(len(out["noisy_labels"])))
        out.setdefault("n_train", np.asarray(len(out["noisy_labels"])))
        out["is_noisy"] = out["noisy_labels"] != out["clean_labels"]
    return out



def load_snapshots(run_dirs: Iterable[str | Path], key: str = "tau", epochs: Sequence[int] | None = None) -> pd.DataFrame:
    """Per-sample snapshot arrays of several runs as one tidy frame.

    Columns: ``run``, ``epoch`` (the snapshot epoch, or the last epoch for ``final``), ``sample``, ``value``
    (the ``key`` array: tau, loss, pred or q_argmax), ``is_noisy``. ``epochs`` limits the snapshot epochs;
    the final arrays (``final_<key>``) come as epoch ``-1`` when asked for with ``-1``.
    """
    frames = []
    for d in run_dirs:
        a = load_arrays(d)
        found = sorted(int(k.rsplit("_e", 1)[1]) for k in a if k.startswith(f"{key}_e"))
        for e in [*found, -1]:
            if epochs is not None and e not in epochs:
                continue
            arr = a.get(f"{key}_e{e}" if e >= 0 else f"final_{key}")
            if arr is None:
                continue
            frames.append(pd.DataFrame({"run": Path(d).name, "epoch": e, "sample": np.arange(len(arr)),
                                        "value": arr, "is_noisy": a["is_noisy"]}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["run", "epoch", "sample", "value", "is_noisy"])


#: each method's main hyperparameters, as (column of load_runs, symbol in the book) pairs
METHOD_SETTINGS = {"nal": (("lam", "λ"),), "gce": (("gce_q", "q"),), "sce": (("sce_alpha", "α"), ("sce_beta", "β")),
                   "elr": (("elr_lam", "λ"), ("elr_beta", "β")), "selc": (("selc_start", "turning point"),)}


def describe_method(row: Any) -> str:
    """The method of a run with its main settings: ``GCE (q = 0.7)``, ``NAL (λ = 2, τ = 1)``."""
    method = row["method"]
    settings = [f"{symbol} = {row[col]:g}" for col, symbol in METHOD_SETTINGS.get(method, ())
                if row.get(col) is not None and not pd.isna(row.get(col))]
    if method == "selc" and settings:
        settings = [f"turning point epoch {int(row['selc_start'])}"]
    if method == "nal" and nal_variant(row) != "full NAL":
        settings.append(nal_variant(row))
    return method.upper() + (f" ({', '.join(settings)})" if settings else "")


def with_tau_mean(epochs: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """``epochs`` with ``tau_mean`` (the mean tau over all training samples) in every row that has tau: records made
    before the trainer wrote that column get the mean of ``tau_clean`` and ``tau_mislabeled`` weighted by their
    run's actual noise rate (``runs``, matched on ``run``). Rows without tau (tau = 1, other methods) stay NaN."""
    if not len(epochs) or "tau_clean" not in epochs:
        return epochs
    rate = epochs.run.map(runs.drop_duplicates("run").set_index("run").actual_noise_rate.astype(float))
    weighted = (1 - rate) * epochs.tau_clean + rate * epochs.tau_mislabeled
    return epochs.assign(tau_mean=epochs.tau_mean.fillna(weighted) if "tau_mean" in epochs else weighted)


def needs_tau_schedule(cfg: Config) -> bool:
    """Whether ``cfg`` is a run of NAL's ``attention_mode: schedule`` control whose tau list
    (``method.nal.tau_schedule``) is still to be read from full NAL's record."""
    nal = cfg.method.nal
    return (cfg.method.name == "nal" and nal.attention and nal.attention_mode == "schedule"
            and nal.tau_schedule is None)


def schedule_twin(cfg: Config) -> Config:
    """Full NAL for a run of the schedule control: the same config with ``method.nal.attention_mode: sample`` (the
    attention branch) and no tau list; its run name is where :func:`matched_tau_schedule` looks."""
    twin = Config.from_dict(yaml.safe_load(cfg.to_yaml()))
    return twin.apply_overrides(["method.nal.attention_mode=sample", "method.nal.tau_schedule=null"])


def matched_tau_schedule(cfg: Config, run_dir: str | Path) -> tuple[str, list[float]]:
    """The mean tau per epoch of full NAL for a run of NAL's ``attention_mode: schedule`` control.

    Full NAL is :func:`schedule_twin` (the same config with ``method.nal.attention_mode: sample``); its record is
    looked up beside ``run_dir`` by its run name and must be complete. The mean is over all training samples: the
    record's ``tau_mean`` column, or for records made before it the mean of ``tau_clean`` and ``tau_mislabeled``
    weighted by the actual noise rate. Returns (the full run's name, [tau of epoch 1, ..., tau of the last]).

    Raises:
        ConfigError: the full run is missing, incomplete, damaged, or has another number of epochs.
    """
    from ..config import ConfigError

    name = schedule_twin(cfg).run_name()
    path = Path(run_dir).parent / name
    hint = (f"attention_mode=schedule takes tau from full NAL, the same config with method.nal.attention_mode=sample "
            f"({path}); ")
    try:
        status = read_status(path)
        if status.get("state") != "complete":
            raise ConfigError(hint + "that run is " + ("missing" if not status else f"{status.get('state')}") +
                              ": run it first (e.g. the ablation or default grid)")
        row, epochs = load_run(path)
    except RecordError as err:
        raise ConfigError(hint + f"its record is damaged: {err}") from None
    if len(epochs) != cfg.optim.epochs:
        raise ConfigError(hint + f"it has {len(epochs)} epochs, this run {cfg.optim.epochs}")
    tau = with_tau_mean(epochs.assign(run=name), pd.DataFrame([{"run": name, **row}])).tau_mean.to_numpy(np.float64)
    if not np.all((tau > 0) & (tau < 1)):
        raise ConfigError(hint + "its tau_mean is not in (0, 1) in every epoch")
    return name, [float(t) for t in tau]


def tau_schedule_override(cfg: Config, run_dir: str | Path) -> list[str]:
    """What the code that launches a run (``nalkit run``, ``nalkit train``) adds to its overrides before it trains:
    ``[]`` for a run that needs no tau list (:func:`needs_tau_schedule`), else the one override
    ``method.nal.tau_schedule=[...]`` holding full NAL's mean tau per epoch (:func:`matched_tau_schedule`, read
    beside ``run_dir``), written so that it reads back as the same floats. The trainer itself reads no other record.

    Raises:
        ConfigError: full NAL's record is missing, incomplete, damaged or of another length.
    """
    if not needs_tau_schedule(cfg):
        return []
    _, tau = matched_tau_schedule(cfg, run_dir)
    return ["method.nal.tau_schedule=" + json.dumps(tau)]
