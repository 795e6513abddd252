"""Mislabel detectors over training: the scores the field uses to find mislabeled samples, per epoch.

Every detector turns what a training pass already computes (no extra forward pass) into one score per
sample, higher = more suspect:

=================  =====================================================================================
``tau``            ``1 - tau``, NAL's attention weight (the paper's appendix F reading)
``loss``           the per-sample training loss of this epoch (the small-loss criterion)
``meanloss``       the per-sample loss averaged over the epochs so far
``aum``            minus the area under the margin (Pleiss et al. 2020): the margin between the given
                   label's logit and the largest other logit, averaged over the epochs so far
``wrong``          the number of epochs so far in which the prediction missed the given label
``forget``         forgetting events (Toneva et al. 2019): epochs whose prediction missed the given label
                   after the previous epoch had hit it; a sample never fitted (never predicted as its
                   given label) counts as the most forgettable, as Toneva et al. count it (infinitely
                   many events): it scores ``epochs + 1``, above any possible count
=================  =====================================================================================

:class:`DetectorState` keeps the running sums (part of a run's checkpointed state, so a resumed run
continues them exactly); :func:`detector_metrics` scores them with the AUROC and the average precision
against the known mislabeled set. Confident learning (cleanlab) needs out-of-sample probabilities from
cross-validated runs instead: see ``configs/grids/kfold.yaml`` and :mod:`nalkit.results`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .metrics import auroc, average_precision

#: detector name -> what the book calls it
DETECTORS = {
    "tau": "1 − τ",
    "loss": "loss",
    "meanloss": "mean loss",
    "aum": "AUM",
    "wrong": "wrong events",
    "forget": "forgetting events",
}


def margins(logits: Any, labels: Any) -> Any:
    """``z_y - max_{k != y} z_k`` per sample (a torch tensor (B,)) for logits (B, C) and given labels (B,)."""
    z = logits.detach().float()
    given = z.gather(1, labels.view(-1, 1)).squeeze(1)
    others = z.scatter(1, labels.view(-1, 1), float("-inf"))
    return given - others.max(dim=1).values


@dataclass
class DetectorState:
    """Per-sample running sums of the training passes so far, for ``n`` training samples."""

    n: int
    epochs: np.ndarray = field(init=False)  # passes in which the sample was seen
    loss_sum: np.ndarray = field(init=False)
    margin_sum: np.ndarray = field(init=False)
    wrong: np.ndarray = field(init=False)
    forgets: np.ndarray = field(init=False)
    last_hit: np.ndarray = field(init=False)  # the last seen pass predicted the given label

    def __post_init__(self) -> None:
        self.epochs = np.zeros(self.n, np.int32)
        self.loss_sum = np.zeros(self.n, np.float64)
        self.margin_sum = np.zeros(self.n, np.float64)
        self.wrong = np.zeros(self.n, np.int32)
        self.forgets = np.zeros(self.n, np.int32)
        self.last_hit = np.zeros(self.n, bool)

    def update(self, pred: np.ndarray, loss: np.ndarray, margin: np.ndarray, labels: np.ndarray) -> None:
        """Add one training pass (samples with ``pred < 0`` were not seen in it and are left alone)."""
        seen = pred >= 0
        hit = pred == labels
        self.epochs += seen
        self.loss_sum[seen] += loss[seen]
        self.margin_sum[seen] += margin[seen]
        self.wrong += seen & ~hit
        self.forgets += seen & ~hit & self.last_hit
        self.last_hit = np.where(seen, hit, self.last_hit)

    def mean_loss(self) -> np.ndarray:
        return self.loss_sum / np.maximum(self.epochs, 1)

    def aum(self) -> np.ndarray:
        """The area under the margin: the mean margin over the passes so far (low = suspect)."""
        return self.margin_sum / np.maximum(self.epochs, 1)

    def never_learned(self) -> np.ndarray:
        """Samples seen at least once and never predicted as their given label."""
        return (self.epochs > 0) & (self.wrong == self.epochs)

    def forgetting(self) -> np.ndarray:
        """The forgetting score of Toneva et al.: the events so far, and for a sample never learned more than any
        sample can have (it is the most forgettable)."""
        return forgetting_score(self.forgets, self.never_learned(), int(self.epochs.max(initial=0)))

    def scores(self, tau: np.ndarray | None, loss: np.ndarray) -> dict[str, np.ndarray]:
        """Every detector's score (higher = more suspect); ``tau`` None for a method without attention."""
        out = {"loss": loss, "meanloss": self.mean_loss(), "aum": -self.aum(),
               "wrong": self.wrong.astype(np.float64), "forget": self.forgetting()}
        if tau is not None:
            out = {"tau": 1.0 - tau, **out}
        return out

    def final_arrays(self) -> dict[str, np.ndarray]:
        """What ``arrays.npz`` keeps of the state at the end of training."""
        return {"final_aum": self.aum(), "final_mean_loss": self.mean_loss(), "final_wrong": self.wrong,
                "final_forgets": self.forgets, "final_never_learned": self.never_learned()}

    def state_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k).copy() for k in ("epochs", "loss_sum", "margin_sum", "wrong", "forgets",
                                                     "last_hit")}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, np.asarray(v).copy())


def forgetting_score(forgets: np.ndarray, never_learned: np.ndarray, epochs: int) -> np.ndarray:
    """Toneva et al.'s forgetting score from the counts: ``forgets`` events, ``epochs + 1`` for a sample never learned
    (more than any learned sample can have). Records written before this rule (arrays format 2) scored such a
    sample 0; :func:`nalkit.results.with_rescored_forgetting` rescores them from their final arrays."""
    return np.where(np.asarray(never_learned, bool), float(epochs + 1), np.asarray(forgets, np.float64))


def detector_metrics(scores: dict[str, np.ndarray], mislabeled: np.ndarray, known: np.ndarray) -> dict[str, float]:
    """``<detector>_auroc`` and ``<detector>_ap`` of every score for finding ``mislabeled`` among ``known``.

    The average precision's chance level is the mislabeled fraction; the AUROC's is 0.5. NaN where a score
    is not finite for every known sample (e.g. tau of a method without attention).
    """
    out: dict[str, float] = {}
    for name, score in scores.items():
        s, y = score[known], mislabeled[known]
        out[f"{name}_auroc"] = auroc(s, y)
        out[f"{name}_ap"] = average_precision(s, y)
    return out
