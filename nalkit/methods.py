"""NAL and the baselines behind one interface, so that the trainer treats all alike.

A :class:`Method` turns one mini-batch's model outputs into per-sample losses and owns whatever
per-sample state the method needs (the target store). The trainer calls, per batch,
``method.batch_loss(logits, attention_logits, labels, index, epoch)`` and, per epoch,
``method.end_epoch(epoch)``; the state travels in checkpoints through ``state_dict``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from .losses import ce_loss, elr_loss, gce_loss, nal_loss, sce_loss
from .targets import TargetStore, UpdateSchedule

Tensor = torch.Tensor


class Method:
    """Base class: a loss with optional per-sample state."""

    name: ClassVar[str] = "method"
    uses_attention: ClassVar[bool] = False
    store: TargetStore | None = None

    def batch_loss(
        self, logits: Tensor, attention_logits: Tensor | None, labels: Tensor, index: Tensor, epoch: int
    ) -> Tensor:
        """Per-sample losses, shape (B,). ``epoch`` is 1-indexed."""
        raise NotImplementedError

    def end_epoch(self, epoch: int) -> None:
        """Hook at the end of every training epoch."""

    def corrected_labels(self) -> np.ndarray | None:
        """argmax of the method's targets, or None for methods without targets."""
        return None if self.store is None else self.store.corrected_labels()

    def state_dict(self) -> dict:
        return {} if self.store is None else {"store": self.store.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if self.store is not None:
            self.store.load_state_dict(state["store"])


class CE(Method):
    name = "ce"

    def batch_loss(self, logits, attention_logits, labels, index, epoch):
        return ce_loss(logits, labels, reduction="none")


@dataclass
class GCE(Method):
    q: float = 0.7
    name = "gce"

    def batch_loss(self, logits, attention_logits, labels, index, epoch):
        return gce_loss(logits, labels, q=self.q, reduction="none")


@dataclass
class SCE(Method):
    alpha: float = 0.1
    beta: float = 1.0
    name = "sce"

    def batch_loss(self, logits, attention_logits, labels, index, epoch):
        return sce_loss(logits, labels, self.alpha, self.beta, reduction="none")


class ELR(Method):
    """ELR: temporal ensemble of renormalised, clamped predictions, updated every batch."""

    name = "elr"

    def __init__(self, labels: np.ndarray, num_classes: int, beta: float, lam: float, device) -> None:
        self.lam = lam
        self.store = TargetStore(labels, num_classes, alpha=beta, clamp_min=None, init="zeros", device=device)

    def batch_loss(self, logits, attention_logits, labels, index, epoch):
        with torch.no_grad():
            p = F.softmax(logits.float(), dim=1).clamp(1e-4, 1.0 - 1e-4)
            self.store.update(index, p / p.sum(dim=1, keepdim=True))
        return elr_loss(logits, labels, self.store.get(index), self.lam, reduction="none")


class SELC(Method):
    """SELC: CE until the turning point, then ``-sum t log p`` with ``t`` updated every batch."""

    name = "selc"

    def __init__(self, labels: np.ndarray, num_classes: int, start_epoch: int, alpha: float, device) -> None:
        self.schedule = UpdateSchedule(start_epoch=start_epoch, period=1, when="batch")
        self.store = TargetStore(labels, num_classes, alpha=alpha, clamp_min=None, init="onehot", device=device)

    def batch_loss(self, logits, attention_logits, labels, index, epoch):
        if not self.schedule.active(epoch):
            return ce_loss(logits, labels, reduction="none")
        self.store.update(index, F.softmax(logits.float(), dim=1))
        return ce_loss(logits, self.store.get(index), reduction="none")


class NAL(Method):
    """Noise Attention Learning: the NAL loss with target estimation (spec sections 2-3)."""

    name = "nal"
    uses_attention = True

    def __init__(
        self,
        labels: np.ndarray,
        num_classes: int,
        lam: float,
        alpha: float,
        schedule: UpdateSchedule,
        beta: float = 0.0,
        device="cpu",
    ) -> None:
        self.lam, self.beta, self.schedule = lam, beta, schedule
        self.store = TargetStore(labels, num_classes, alpha=alpha, clamp_min=1e-4, init="onehot", device=device)

    def batch_loss(self, logits, attention_logits, labels, index, epoch):
        if attention_logits is None:
            raise ValueError("NAL needs a model with an attention branch (see nalkit.models.with_attention)")
        probs = F.softmax(logits.detach().float(), dim=1)
        # the targets are updated from this batch's forward pass *before* its loss (authors' order)
        if self.schedule.per_batch(epoch):
            self.store.update(index, probs)
        elif self.schedule.at_epoch_end(epoch):
            self.store.remember(index, probs)
        return nal_loss(logits, attention_logits, self.store.get(index), self.lam, self.beta, reduction="none")

    def end_epoch(self, epoch: int) -> None:
        if self.schedule.at_epoch_end(epoch):
            self.store.update_from_epoch()


METHODS = ("ce", "gce", "sce", "elr", "selc", "nal")


def build_method(cfg, labels: np.ndarray, num_classes: int, device) -> Method:
    """Build the method named by ``cfg.name`` from a :class:`nalkit.config.MethodConfig`."""
    name = cfg.name
    if name == "ce":
        return CE()
    if name == "gce":
        return GCE(q=cfg.gce_q)
    if name == "sce":
        return SCE(alpha=cfg.sce_alpha, beta=cfg.sce_beta)
    if name == "elr":
        return ELR(labels, num_classes, beta=cfg.elr_beta, lam=cfg.elr_lam, device=device)
    if name == "selc":
        return SELC(labels, num_classes, start_epoch=cfg.selc_start, alpha=cfg.selc_alpha, device=device)
    if name == "nal":
        schedule = UpdateSchedule(start_epoch=cfg.es, period=cfg.update_period, when=cfg.update_when)
        return NAL(labels, num_classes, cfg.lam, cfg.alpha, schedule, beta=cfg.beta, device=device)
    raise ValueError(f"unknown method {name!r}; choose one of {METHODS}")
