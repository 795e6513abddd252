"""The per-sample target store ``q`` (NAL's target estimation), shared by NAL, SELC and ELR.

``q`` is an (N, C) float tensor indexed by the *dataset index* of each training sample. It starts
as the one-hot noisy label (clamped, as the authors do) and is updated by a temporal ensemble
``q <- alpha * q + (1 - alpha) * softmax(z).detach()``.

*When* the update runs differs between the authors' scripts; :class:`UpdateSchedule` expresses
all three conventions:

=========================================  ===========  ===========
convention                                 ``when``     ``period``
=========================================  ===========  ===========
authors' CIFAR / Clothing1M / WebVision    ``batch``    10  (epochs with ``epoch % 10 == 0``)
every epoch (once, at the epoch's end)     ``epoch``    1
every batch of every epoch (SELC, ANIMAL)  ``batch``    1
=========================================  ===========  ===========
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from .distributed import Dist

Tensor = torch.Tensor

UPDATE_WHEN = ("batch", "epoch")


@dataclass(frozen=True)
class UpdateSchedule:
    """Which epochs update the targets, and at which granularity.

    Epochs are 1-indexed, as in the authors' code and the paper's figures.
    """

    start_epoch: int  # ``es``: first epoch that updates
    period: int = 1  # update only in epochs with ``epoch % period == 0``
    when: str = "batch"  # "batch": every mini-batch of such epochs; "epoch": once at its end

    def __post_init__(self) -> None:
        if self.period < 1:
            raise ValueError(f"target update period must be >= 1 epoch, got {self.period}")
        if self.when not in UPDATE_WHEN:
            raise ValueError(f"target update 'when'={self.when!r} is not one of {UPDATE_WHEN}")

    def active(self, epoch: int) -> bool:
        return epoch >= self.start_epoch and epoch % self.period == 0

    def per_batch(self, epoch: int) -> bool:
        return self.when == "batch" and self.active(epoch)

    def at_epoch_end(self, epoch: int) -> bool:
        return self.when == "epoch" and self.active(epoch)


class TargetStore:
    """Per-sample soft targets ``q`` of shape (N, C), on the training device.

    Args:
        labels: noisy labels (N,) of the training set, indexed by dataset index.
        num_classes: C.
        alpha: ensemble momentum in [0, 1); 0.9 in the paper.
        clamp_min: lower clamp applied after every update (authors: 1e-4; no renormalisation).
            ``None`` leaves q untouched (ELR renormalises its input instead).
        init: "onehot" (NAL, SELC) or "zeros" (ELR's reference code).
    """

    def __init__(
        self,
        labels: np.ndarray | Tensor,
        num_classes: int,
        alpha: float,
        clamp_min: float | None = 1e-4,
        init: str = "onehot",
        device: torch.device | str = "cpu",
    ) -> None:
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"alpha must be in [0, 1), got {alpha}")
        y = torch.as_tensor(np.asarray(labels), dtype=torch.long, device=device)
        self.alpha = float(alpha)
        self.clamp_min = clamp_min
        if init == "onehot":
            q = torch.nn.functional.one_hot(y, num_classes).float()
            if clamp_min is not None:
                q = q.clamp(min=clamp_min, max=1.0)
        elif init == "zeros":
            q = torch.zeros(len(y), num_classes, device=device)
        else:
            raise ValueError(f"init={init!r} is not 'onehot' or 'zeros'")
        self.q = q
        # accumulates the epoch's predictions for the once-per-epoch convention
        self._epoch_probs: Tensor | None = None

    def __len__(self) -> int:
        return self.q.shape[0]

    def get(self, index: Tensor) -> Tensor:
        """The targets of the samples ``index`` (B,) int64 dataset indices: shape (B, C)."""
        return self.q[index]

    @torch.no_grad()
    def update(self, index: Tensor, probs: Tensor) -> None:
        """``q[index] <- alpha q[index] + (1 - alpha) probs`` (probs detached), then clamp.

        Args:
            index: dataset indices of the batch, shape (B,), int64.
            probs: the batch's predicted class probabilities (softmax of the logits), shape (B, C).
        """
        new = self.alpha * self.q[index] + (1.0 - self.alpha) * probs.detach().float()
        if self.clamp_min is not None:
            new = new.clamp(min=self.clamp_min, max=1.0)
        self.q[index] = new

    @torch.no_grad()
    def remember(self, index: Tensor, probs: Tensor) -> None:
        """Keep this batch's predictions for an update at the end of the epoch."""
        if self._epoch_probs is None:
            self._epoch_probs = torch.zeros_like(self.q)
        self._epoch_probs[index] = probs.detach().float()

    @torch.no_grad()
    def update_from_epoch(self) -> None:
        """Apply the once-per-epoch update with the predictions remembered during the epoch."""
        if self._epoch_probs is None:
            return
        seen = self._epoch_probs.sum(dim=1) > 0
        index = torch.nonzero(seen).squeeze(1)
        self.update(index, self._epoch_probs[index])
        self._epoch_probs = None

    @torch.no_grad()
    def sync_rows(self, index: Tensor, dist: Dist) -> None:
        """Several processes: take the rows every rank updated for its share of this batch (``index``)."""
        from .distributed import gather_rows

        gi, gq = gather_rows(index, self.q[index], dist)
        self.q[gi] = gq

    @torch.no_grad()
    def sync_remembered(self, dist: Dist) -> None:
        """Several processes: combine the predictions each rank remembered this epoch before the update."""
        from .distributed import gather_rows

        if self._epoch_probs is None:
            return
        seen = torch.nonzero(self._epoch_probs.sum(1) > 0).squeeze(1)
        gi, gp = gather_rows(seen, self._epoch_probs[seen], dist)
        self._epoch_probs[gi] = gp

    def corrected_labels(self) -> np.ndarray:
        """argmax of q (appendix D's "corrected labels"), int64 (N,)."""
        return self.q.argmax(dim=1).cpu().numpy().astype(np.int64)

    def state_dict(self) -> dict:
        return {"q": self.q.detach().cpu().clone(), "alpha": self.alpha}

    def load_state_dict(self, state: dict) -> None:
        q = state["q"]
        if tuple(q.shape) != tuple(self.q.shape):
            raise ValueError(
                f"checkpointed target store has shape {tuple(q.shape)}, "
                f"this run expects {tuple(self.q.shape)}"
            )
        self.q = q.to(self.q.device)
        self.alpha = float(state["alpha"])
