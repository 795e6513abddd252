"""One trainer for NAL and every baseline: config -> data + noise -> model -> epochs -> run record.

The phases, each a function (the shape of torchvision's reference ``train.py``):

* :func:`build` -- data and noise (:func:`nalkit.data.prepare_data`), model, method, optimiser, loaders
  (:func:`nalkit.data.make_loader`): a :class:`Run`;
* :func:`train_one_epoch` -- one pass over the training set: per-sample predictions, tau and losses;
* :func:`evaluate` -- accuracy on the test set and the other evaluation splits;
* :func:`train` -- the epoch loop: resume from the newest checkpoint, train, evaluate, record, checkpoint.

:meth:`Run.state_dict` / :meth:`Run.load_state_dict` are the one place where a run's state is saved and
restored, so a resumed run continues exactly (same metrics, bit for bit on the CPU).

Per epoch the trainer records (columns of the record's ``metrics.csv.gz``, :func:`nalkit.records.read_metrics`):

``epoch, lr, loss`` — the mean training loss;
``train_acc_noisy`` — predictions of the training pass against the (noisy) training labels;
``clean_acc`` / ``mislabeled_acc`` — against the *clean* labels, on the clean and on the mislabeled
subset; ``memorized`` — mislabeled samples predicted as their *noisy* label (memorisation);
``tau_clean`` / ``tau_mislabeled`` / ``tau_auroc`` — mean attention weight per subset and the AUROC of
``1 - tau`` for detecting mislabeled samples (NAL only); ``loss_auroc`` — the same for the per-sample
loss (the small-loss criterion); ``corrected_acc`` / ``corrected_acc_mislabeled`` — argmax of the
targets q against the clean labels; ``val_acc_noisy`` — accuracy on the noisy validation split against its
noisy labels (the paper's tuning protocol) and ``val_acc_clean`` against its clean labels;
``test_acc`` (and ``<name>_acc`` for extra test sets, e.g. ``clean_val_acc`` for Clothing1M's clean
validation split); for datasets that report it (mini-WebVision) also top-5 accuracy, ``test_top5`` and
``<name>_top5``; ``seconds``, ``eval_seconds``. With ``data.drop_last`` the samples of the dropped batch
are left out of that epoch's training-set quantities.

Training-set quantities come from the training forward passes themselves (model in train mode,
augmented inputs), as in the authors' code; they cost nothing extra.
"""

from __future__ import annotations

import contextlib
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import datasets as ds
from . import distributed
from ._io import now_iso
from ._progress import progress_bar
from .checkpoint import load_latest_checkpoint, save_checkpoint
from .config import Config, ConfigError
from .data import Prepared, make_loader, prepare_data, set_loader_epoch
from .detectors import DetectorState, detector_metrics, margins
from .distributed import Dist
from .loader import DeviceLoader
from .methods import Method, build_method, check_ready
from .metrics import auroc, masked_mean
from .models import build_model
from .records import LABELS_DIR, RECORD_FORMAT, RunRecord, read_status, record_sample

Tensor = torch.Tensor


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or inf; the last good checkpoint is kept."""


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) in one place."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else the CPU; a named CUDA device must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"run.device={name!r} but CUDA is not available here; use run.device=cpu or auto")
    return dev


def lr_at(cfg: Config, epoch: int) -> float:
    """Learning rate of 1-indexed ``epoch``; constant within an epoch, as the authors step per epoch."""
    o = cfg.optim
    if o.schedule == "cosine_restarts":
        t = (epoch - 1) % o.restart_period
        return o.lr_min + (o.lr - o.lr_min) * (1 + math.cos(math.pi * t / o.restart_period)) / 2
    if o.schedule == "multistep":
        return o.lr * o.gamma ** sum(epoch - 1 >= m for m in o.milestones)
    return o.lr


def _autocast(device: torch.device, amp: bool):
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def predict(model: torch.nn.Module, loader: Any, device: torch.device, amp: bool, k: int = 1,
            proba: bool = False) -> np.ndarray:
    """Predictions of ``model`` over ``loader`` (in loader order).

    ``k == 1``: the argmax, shape (N,), int64. ``k > 1``: the ``k`` highest-scoring classes, best first, (N, k).
    ``proba``: the softmax probabilities instead, (N, C) float32.
    """
    model.eval()
    preds = []
    for x, _, _ in loader:
        x = x.to(device, non_blocking=True)
        with _autocast(device, amp):
            logits, _ = model(x)
        if proba:
            preds.append(torch.softmax(logits.float(), dim=1))
        else:
            preds.append(logits.argmax(1) if k == 1 else logits.topk(min(k, logits.shape[1]), dim=1).indices)
    if not preds:
        return np.zeros((0,) if k == 1 else (0, k), np.int64)
    out = torch.cat(preds).cpu().numpy()
    return out.astype(np.float32) if proba else out.astype(np.int64)


# --------------------------------------------------------------------------------------------
# the run: everything built, and its state
# --------------------------------------------------------------------------------------------
@dataclass
class History:
    """What a run has recorded so far; part of its checkpointed state."""

    epoch: int = 0  # last completed epoch
    elapsed: float = 0.0  # seconds spent in epochs (training and evaluation)
    rows: list[dict[str, Any]] = field(default_factory=list)  # the rows of metrics.csv.gz
    snapshots: dict[str, np.ndarray] = field(default_factory=dict)  # per-sample arrays of snapshot epochs
    last: dict[str, np.ndarray] = field(default_factory=dict)  # per-sample arrays of the last epoch
    detectors: DetectorState | None = None  # the mislabel detectors' running sums (nalkit.detectors)
    heldout: dict[str, Any] = field(default_factory=dict)  # data.cv_folds: best held-out acc, its epoch and probs


@dataclass
class Run:
    """One training run, built: what :func:`train_one_epoch` and :func:`evaluate` work on."""

    cfg: Config
    run_dir: Path
    device: torch.device
    dist: Dist
    data: Prepared
    model: torch.nn.Module  # the bare model (evaluation, state)
    step_model: torch.nn.Module  # what the training step calls: the model, DDP- or compile-wrapped
    method: Method
    optimizer: torch.optim.Optimizer
    loader: Any  # training batches (x, y, index)
    eval_loaders: dict[str, Any]  # main process only
    eval_labels: dict[str, np.ndarray]
    history: History = field(default_factory=History)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: model, optimiser, method, loader, RNGs, history."""
        h = self.history
        rng = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
               "cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None}
        return {
            "epoch": h.epoch, "elapsed": h.elapsed, "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(), "method": self.method.state_dict(),
            "loader": self.loader.state_dict() if isinstance(self.loader, DeviceLoader) else None,
            "rng": rng, "rows": h.rows, "snapshots": h.snapshots, "last": h.last, "config_hash": self.cfg.digest(),
            "detectors": h.detectors.state_dict() if h.detectors is not None else None, "heldout": h.heldout,
        }

    def load_state_dict(self, state: dict[str, Any], source: str | Path = "checkpoint") -> None:
        """Restore :meth:`state_dict`'s output; refuse the state of another config."""
        if state.get("config_hash") not in (None, self.cfg.digest()):
            raise ConfigError(f"{source} is a checkpoint of another config (hash {state['config_hash']}, this one "
                              f"{self.cfg.digest()}); choose another run directory")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.method.load_state_dict(state["method"])
        if isinstance(self.loader, DeviceLoader):
            self.loader.load_state_dict(state["loader"])
        torch.set_rng_state(state["rng"]["torch"].cpu())
        np.random.set_state(state["rng"]["numpy"])
        random.setstate(state["rng"]["python"])
        if self.device.type == "cuda" and state["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(state["rng"]["cuda"].cpu(), self.device)
        self.history = History(state["epoch"], state["elapsed"], state["rows"], state["snapshots"], state["last"])
        self.history.heldout = state.get("heldout") or {}
        if state.get("detectors") is not None:
            self.history.detectors = DetectorState(len(self.data.noisy))
            self.history.detectors.load_state_dict(state["detectors"])


def build(cfg: Config, run_dir: Path, noise_dir: Path | None, dist: Dist | None = None) -> Run:
    """Data and noise, model, method, optimiser and loaders of a validated config (nothing is written)."""
    dist = dist or Dist()
    device = distributed.local_device(dist, resolve_device(cfg.run.device))
    if cfg.run.threads:
        torch.set_num_threads(cfg.run.threads)
    check_ready(cfg.method)  # e.g. NAL's schedule control without its tau list: refused before the noise is written
    prep = prepare_data(cfg, noise_dir)  # raises DatasetNotFoundError before anything is written
    bundle = prep.bundle
    set_seed(cfg.run.seed)  # the model's initialisation draws from here
    m = cfg.model
    kwargs = {k: v for k, v in (("width", m.width), ("hidden", m.hidden)) if v is not None}
    if m.norm != "batch":
        kwargs["norm"] = m.norm
    model = build_model(m.name, bundle.num_classes, in_channels=bundle.in_channels, **kwargs).to(device)
    if cfg.run.channels_last and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    method = build_method(cfg.method, prep.noisy, bundle.num_classes, device)
    step_model = distributed.wrap_model(model, dist, device, method.uses_attention)
    if cfg.run.compile:
        step_model = torch.compile(step_model)
    own = method.parameters()
    if own and dist.world > 1:
        raise ConfigError(f"method.{cfg.method.name} learns parameters of its own (attention_mode="
                          f"{cfg.method.nal.attention_mode!r}), which are not synchronised across processes; "
                          "run it in one process")
    # the method's own parameters (NAL's attention controls) train with the model's, as one more group
    groups = [{"params": list(model.parameters())}] + ([{"params": own}] if own else [])
    optimizer = torch.optim.SGD(groups, lr=cfg.optim.lr, momentum=cfg.optim.momentum,
                                weight_decay=cfg.optim.weight_decay)
    loader = make_loader(bundle, prep.train, True, cfg, device, (dist.rank, dist.world))
    splits: dict[str, Any] = {"test": bundle.test}
    if prep.val is not None:
        splits["val"] = prep.val
    if bundle.val is not None and not isinstance(prep.train, ds.ArraySplit):
        splits["clean_val"] = bundle.val
    if prep.heldout is not None:
        splits["heldout"] = prep.heldout
    splits.update(bundle.extra_test)
    eval_loaders = ({k: make_loader(bundle, v, False, cfg, device, name=k) for k, v in splits.items()}
                    if dist.main else {})
    eval_labels = {k: np.asarray(v.labels) for k, v in splits.items()}
    if prep.val is not None and prep.val.clean_labels is not None:
        eval_labels["val_clean"] = np.asarray(prep.val.clean_labels)
    return Run(cfg, Path(run_dir), device, dist, prep, model, step_model, method, optimizer, loader,
               eval_loaders, eval_labels)


# --------------------------------------------------------------------------------------------
# the phases
# --------------------------------------------------------------------------------------------
@dataclass
class EpochResult:
    """One training pass: per-sample arrays in dataset-index order (N,) and the epoch's summary."""

    pred: np.ndarray  # argmax of the training forward pass, int64
    tau: np.ndarray  # attention weight sigmoid(s) in float32 (the metrics' tau); NaN without attention
    tau_logit: np.ndarray  # attention logit s (what the record keeps: float32 rounds tau = 1 - 1e-8 to 1)
    loss: np.ndarray  # per-sample loss
    margin: np.ndarray  # given label's logit minus the largest other logit (AUM's margin)
    phi_logit: np.ndarray  # logit of the loss's gradient factor phi (nalkit.losses.nal_phi_logit); NaN without
    mean_loss: float
    lr: float
    seconds: float


def train_one_epoch(run: Run, epoch: int) -> EpochResult:
    """Train ``epoch`` (1-indexed); raise :class:`NonFiniteLossError` if the loss became NaN/inf."""
    cfg, device, dd, method = run.cfg, run.device, run.dist, run.method
    t0 = time.perf_counter()
    lr = lr_at(cfg, epoch)
    for g in run.optimizer.param_groups:
        g["lr"] = lr
    set_loader_epoch(run.loader, cfg, epoch)
    run.step_model.train()
    n = len(run.data.noisy)
    # per-sample records: one process fills NaN/-1 for unseen samples; several fill -inf/-1 and combine
    # with a max-reduction (every sample is seen by exactly one rank per epoch)
    empty = float("nan") if dd.world == 1 else float("-inf")
    pred = torch.full((n,), -1, dtype=torch.long, device=device)
    tau = torch.full((n,), empty, dtype=torch.float32, device=device)
    tau_logit = torch.full((n,), empty, dtype=torch.float32, device=device)
    sample_loss = torch.full((n,), empty, dtype=torch.float32, device=device)
    margin = torch.full((n,), empty, dtype=torch.float32, device=device)
    phi_logit = torch.full((n,), empty, dtype=torch.float32, device=device)
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    count = torch.zeros((), device=device, dtype=torch.float64)
    finite = torch.ones((), device=device, dtype=torch.bool)
    attention = method.uses_attention
    for x, y, idx in run.loader:
        x, y, idx = (t.to(device, non_blocking=True) for t in (x, y, idx))
        with _autocast(device, cfg.run.amp):
            logits, att = run.step_model(x)
        per = method.batch_loss(logits, att if attention else None, y, idx, epoch)
        if dd.world == 1:
            loss = per.mean()
        else:  # DDP averages gradients over ranks: scale so the result is the mean over the global batch
            loss = per.sum() * dd.world / distributed.global_batch_size(len(y), dd, device)
            method.sync_batch(idx, dd)
        finite &= torch.isfinite(loss)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        with torch.no_grad():
            pred[idx] = logits.argmax(1)
            sample_loss[idx] = per.detach().float()
            margin[idx] = margins(logits, y)
            if attention:
                s = method.attention_logits(att, y, idx, epoch).detach().float().reshape(-1)
                tau_logit[idx] = s
                tau[idx] = torch.sigmoid(s)
            factor = method.gradient_factor_logit(logits, att if attention else None, y, idx, epoch)
            if factor is not None:
                phi_logit[idx] = factor.float()
            loss_sum += per.detach().double().sum() if dd.world > 1 else loss.detach().double() * len(y)
        count += len(y)
    finite = distributed.combine_epoch(dd, [pred, tau, tau_logit, sample_loss, margin, phi_logit], [loss_sum, count],
                                       finite)
    method.end_epoch(epoch, dd)
    if not bool(finite):
        raise NonFiniteLossError(
            f"{run.run_dir.name}: the training loss became NaN/inf in epoch {epoch} (lr {lr:.4g}); "
            f"stopped without saving this epoch. "
            + (f"The last good checkpoint (epoch {epoch - 1}) is kept in {run.run_dir}; " if epoch > 1 else "")
            + "lower optim.lr or check the data."
        )
    arrays = [t.cpu().numpy() for t in (pred, tau, tau_logit, sample_loss, margin, phi_logit)]
    return EpochResult(*arrays, float(loss_sum) / max(float(count), 1.0), lr, time.perf_counter() - t0)


def evaluate(run: Run, epoch: int) -> tuple[dict[str, float], np.ndarray | None]:
    """Accuracies on the evaluation splits (NaN in epochs between ``run.eval_every``), test predictions.

    Top-1 accuracy of split ``name`` is ``<name>_acc`` (``test_acc``, ``val_acc_noisy`` for the noisy
    validation split); where the dataset reports it (``bundle.top5``), top-5 accuracy is ``<name>_top5`` too.
    """
    cfg = run.cfg
    due = epoch % cfg.run.eval_every == 0 or epoch == cfg.optim.epochs
    top5 = run.data.bundle.top5
    accs: dict[str, float] = {}
    test_pred = None
    for name, loader in run.eval_loaders.items():
        key = {"test": "test_acc", "val": "val_acc_noisy"}.get(name, f"{name}_acc")
        labels = run.eval_labels[name]
        if top5:
            best = predict(run.model, loader, run.device, cfg.run.amp, k=5) if due else None
            p = best[:, 0] if due else None
            accs[f"{name}_top5"] = float(np.mean((best == labels[:, None]).any(axis=1))) if due else float("nan")
        elif name == "heldout":  # the held-out fold: its probabilities are kept at its best epoch
            probs = predict(run.model, loader, run.device, cfg.run.amp, proba=True) if due else None
            p = probs.argmax(1) if due else None
        else:
            p = predict(run.model, loader, run.device, cfg.run.amp) if due else None
        accs[key] = float(np.mean(p == labels)) if due else float("nan")
        if name == "heldout" and due and accs[key] > run.history.heldout.get("acc", -1.0):
            run.history.heldout = {"acc": accs[key], "epoch": epoch, "probs": probs}
        if name == "val" and "val_clean" in run.eval_labels:
            accs["val_acc_clean"] = float(np.mean(p == run.eval_labels["val_clean"])) if due else float("nan")
        if name == "test":
            test_pred = p
    return accs, test_pred


def training_metrics(prep: Prepared, method: Method, pred: np.ndarray, tau: np.ndarray,
                     loss: np.ndarray, phi: np.ndarray | None = None,
                     detectors: DetectorState | None = None) -> dict[str, float]:
    """Training-set quantities of one epoch against the noisy and (where known) the clean labels.

    ``phi`` (the gradient factor, NaN where not defined) adds ``phi_clean``/``phi_mislabeled``; ``detectors``
    (the running state, already updated with this epoch) adds every detector's ``<name>_auroc``/``<name>_ap``.
    """
    noisy, clean = prep.noisy, prep.clean
    # samples of a dropped last batch (data.drop_last) have no prediction this epoch (pred = -1): left out
    seen = pred >= 0
    out: dict[str, float] = {"train_acc_noisy": masked_mean(pred == noisy, seen)}
    nan = float("nan")
    if clean is not None and (clean >= 0).any():
        labelled = clean >= 0
        known = labelled & seen
        mis = known & (clean != noisy)
        ok = known & (clean == noisy)
        out["clean_acc"] = masked_mean(pred == clean, ok)
        out["mislabeled_acc"] = masked_mean(pred == clean, mis)
        out["memorized"] = masked_mean(pred == noisy, mis)
        has_tau = method.uses_attention
        out["tau_clean"] = masked_mean(tau, ok) if has_tau else nan
        out["tau_mislabeled"] = masked_mean(tau, mis) if has_tau else nan
        out["tau_auroc"] = auroc(1.0 - tau[known], mis[known]) if has_tau else nan
        out["loss_auroc"] = auroc(loss[known], mis[known])
        out["tau_mean"] = masked_mean(tau, known) if has_tau else nan
        has_phi = phi is not None and bool(np.isfinite(phi[known]).all())
        out["phi_clean"] = masked_mean(phi, ok) if has_phi else nan
        out["phi_mislabeled"] = masked_mean(phi, mis) if has_phi else nan
        if detectors is not None:
            out.update(detector_metrics(detectors.scores(tau if has_tau else None, loss), mis, known))
        corrected = method.corrected_labels()
        if corrected is not None:  # the targets exist for every sample, seen this epoch or not
            out["corrected_acc"] = masked_mean(corrected == clean, labelled)
            out["corrected_acc_mislabeled"] = masked_mean(corrected == clean, labelled & (clean != noisy))
        else:
            out["corrected_acc"] = out["corrected_acc_mislabeled"] = nan
    elif method.uses_attention:
        out["tau_mean"] = masked_mean(tau, seen)
    return out


def _record_epoch(run: Run, epoch: int, result: EpochResult, started: float) -> dict[str, Any]:
    """Evaluate, then add the epoch's row and per-sample arrays to the run's history (main process)."""
    h = run.history
    if h.detectors is None:
        h.detectors = DetectorState(len(result.pred))
    h.detectors.update(result.pred, result.loss, result.margin, run.data.noisy)
    phi = 1.0 / (1.0 + np.exp(-result.phi_logit.astype(np.float64)))
    row: dict[str, Any] = {"epoch": epoch, "lr": result.lr, "loss": result.mean_loss}
    row.update(training_metrics(run.data, run.method, result.pred, result.tau, result.loss, phi, h.detectors))
    t1 = time.perf_counter()
    accs, test_pred = evaluate(run, epoch)
    row.update(accs)
    row["seconds"] = result.seconds
    row["eval_seconds"] = time.perf_counter() - t1
    h.rows.append(row)
    # the margins enter only the detectors' running sums (final_aum): stored per sample they would add a fifth
    h.last = {"pred": result.pred, "loss": result.loss, "tau_logit": result.tau_logit, "phi_logit": result.phi_logit}
    if test_pred is not None:
        h.last["test_pred"] = test_pred
    corrected = run.method.corrected_labels()
    if corrected is not None:
        h.last["q_argmax"] = corrected
    if epoch in run.cfg.run.snapshot_epochs:
        h.snapshots.update({f"{k}_e{epoch}": v for k, v in h.last.items() if k != "test_pred"})
    h.epoch = epoch
    h.elapsed += time.perf_counter() - started
    return row


def _heldout_arrays(run: Run) -> dict[str, np.ndarray]:
    """data.cv_folds: the held-out fold's positions, labels and its probabilities at the best held-out epoch."""
    prep, best = run.data, run.history.heldout
    if prep.heldout is None or not best:
        return {}
    clean = prep.heldout.clean_labels
    return {"heldout_index": prep.heldout_index, "heldout_noisy": np.asarray(prep.heldout.labels),
            "heldout_clean": np.asarray(clean) if clean is not None else np.full(len(prep.heldout_index), -1),
            "heldout_probs": best["probs"], "heldout_epoch": np.asarray(best["epoch"])}


def record_arrays(run: Run) -> dict[str, np.ndarray]:
    """What ``arrays.npz`` keeps of a finished run (before encoding).

    The per-training-sample arrays (labels, the last epoch's and the snapshots' arrays, the detectors'
    accumulators) for the samples :func:`nalkit.records.record_sample` picks (at most ``run.record_samples``;
    ``sample_index`` says which, ``n_train`` of how many), the test predictions and labels; a K-fold run
    (``data.cv_folds``) keeps only what confident learning reads: its held-out fold's arrays.
    """
    h, prep, cfg = run.history, run.data, run.cfg
    n = len(prep.noisy)
    if prep.heldout is not None:
        return {"n_train": np.asarray(n), **_heldout_arrays(run)}
    clean = prep.clean if prep.clean is not None else np.full(n, -1, np.int64)
    per_sample = {"train_index": prep.train_index, "noisy_labels": prep.noisy, "clean_labels": clean,
                  **{f"final_{k}": v for k, v in h.last.items() if k != "test_pred"}, **h.snapshots,
                  **(h.detectors.final_arrays() if h.detectors is not None else {})}
    keep = record_sample(prep.noisy, prep.clean, cfg.run.record_samples, cfg.noise.seed)
    out = {k: np.asarray(v)[keep] for k, v in per_sample.items()}
    out.update(sample_index=keep, n_train=np.asarray(n), test_labels=run.eval_labels["test"])
    if "test_pred" in h.last:
        out["final_test_pred"] = h.last["test_pred"]
    return out


def _finish(run: Run, record: RunRecord, common: dict[str, Any], labels_dir: Path) -> None:
    """Write the final arrays and the complete status; remove the checkpoints."""
    h = run.history
    record.write_arrays(record_arrays(run), labels_dir=labels_dir)
    record.write_metrics(h.rows)
    tests = [r["test_acc"] for r in h.rows if not math.isnan(r.get("test_acc", float("nan")))]
    record.write_status(state="complete", epoch=run.cfg.optim.epochs, seconds=h.elapsed, finished=now_iso(),
                        final_test_acc=h.rows[-1].get("test_acc"), best_test_acc=max(tests) if tests else None,
                        record_format=RECORD_FORMAT, **common)
    for path in run.run_dir.glob("ckpt-*"):
        path.unlink(missing_ok=True)


def _load_config(config: Config | str | Path | dict, overrides) -> Config:
    if isinstance(config, Config):
        return config.apply_overrides(list(overrides)).validate()
    if isinstance(config, dict):
        return Config.from_dict(config).apply_overrides(list(overrides)).validate()
    return Config.load(config, list(overrides)).validate()


def train(
    config: Config | str | Path | dict,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    results_dir: str | Path = "runs",
    run_dir: str | Path | None = None,
    noise_dir: str | Path | None = None,
    stop_after_epoch: int | None = None,
    progress: bool | None = None,
) -> Path:
    """Train one run described by ``config`` and return its run-record directory.

    Args:
        config: a :class:`Config`, a YAML path, or a dict of sections.
        overrides: ``section.key=value`` strings applied on top.
        results_dir: parent of the run directory (default ``runs/``); the directory name is
            :meth:`Config.run_name` (dataset, noise, method, seeds, config hash).
        run_dir: explicit run directory instead.
        noise_dir: where content-addressed noise files live (default ``<results_dir>/noise``); the test labels,
            the same for every run on a dataset, are stored once in ``<results_dir>/labels``.
        stop_after_epoch: stop (as if killed) after this epoch; the run stays resumable.
        progress: show a progress bar (default: ``config.run.progress``).

    A run directory with a checkpoint is resumed; a complete one is returned untouched.
    """
    cfg = _load_config(config, overrides)
    dd = distributed.init(use_cuda=torch.cuda.is_available() and cfg.run.device != "cpu")
    run_dir = Path(run_dir) if run_dir is not None else Path(results_dir) / cfg.run_name()
    status = read_status(run_dir)
    if status.get("config_hash") not in (None, cfg.digest()):
        raise ConfigError(f"{run_dir} holds a run of another config (hash {status['config_hash']}, this one "
                          f"{cfg.digest()}); choose another run directory")
    if status.get("state") == "complete":
        for path in run_dir.glob("ckpt-*"):  # a kill after the final status may have left them
            path.unlink(missing_ok=True)
        return run_dir
    run = build(cfg, run_dir, Path(noise_dir) if noise_dir is not None else Path(results_dir) / "noise", dd)
    loaded = load_latest_checkpoint(run_dir, map_location=run.device) if run_dir.is_dir() else None
    if loaded is not None:
        run.load_state_dict(*loaded)
    dd.barrier()  # nobody writes before every rank has read the checkpoint
    record = RunRecord(run_dir) if dd.main else None
    common = dict(config_hash=cfg.digest(), run_name=run_dir.name, started=status.get("started") or now_iso(),
                  epochs=cfg.optim.epochs, noise=run.data.noise_info, n_train=len(run.data.noisy), world_size=dd.world)
    if run.data.sampling:
        common["sampling"] = run.data.sampling
    if record is not None:
        record.write_config(cfg.to_yaml())
        record.write_environment(run.device)
        record.write_status(state="running", epoch=run.history.epoch, seconds=run.history.elapsed, **common)
    first = run.history.epoch + 1
    show = (cfg.run.progress if progress is None else progress) and dd.main
    bar = progress_bar(range(first, cfg.optim.epochs + 1), total=cfg.optim.epochs, initial=first - 1,
                       desc=run_dir.name[:40], disable=not show, file=sys.stderr, mininterval=2.0, dynamic_ncols=True)
    for epoch in bar:
        started = time.perf_counter()
        result = train_one_epoch(run, epoch)
        if record is not None:
            row = _record_epoch(run, epoch, result, started)
            save_checkpoint(run_dir, epoch, run.state_dict())
            record.write_metrics(run.history.rows)
            record.write_status(state="running", epoch=epoch, seconds=run.history.elapsed, **common)
            bar.set_postfix(loss=f"{row['loss']:.3f}", test=f"{row.get('test_acc', float('nan')):.3f}", refresh=False)
        dd.barrier()  # the other ranks wait for the main process's evaluation and writes
        if stop_after_epoch is not None and stop_after_epoch <= epoch < cfg.optim.epochs:
            bar.close()
            return run_dir
    bar.close()
    if record is not None:
        _finish(run, record, common, Path(results_dir) / LABELS_DIR)
    dd.finish()
    return run_dir
