"""Small, dependency-free metrics used by the trainer and the chapters."""

from __future__ import annotations

import numpy as np


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for detecting ``positive`` (Mann-Whitney U, ties = 1/2).

    Returns NaN when one class is empty or a score is not finite.
    """
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0 or not np.all(np.isfinite(scores)):
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def roc_curve(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate) at every distinct threshold, highest score first, from (0, 0).

    Tied scores form one point, so the trapezoidal area under the curve equals :func:`auroc` (ties = 1/2).
    """
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    order = np.argsort(-scores, kind="mergesort")
    s, pos = scores[order], positive[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1] if len(s) else np.zeros(0, np.int64)
    tpr = np.concatenate([[0.0], np.cumsum(pos)[last] / max(pos.sum(), 1)])
    fpr = np.concatenate([[0.0], np.cumsum(~pos)[last] / max((~pos).sum(), 1)])
    return fpr, tpr


def confusion(true: np.ndarray, pred: np.ndarray, num_classes: int, normalize: bool = True) -> np.ndarray:
    """C x C matrix, rows = ``true`` class, columns = ``pred``; rows sum to 1 when ``normalize``."""
    true = np.asarray(true, dtype=np.int64)
    pred = np.asarray(pred, dtype=np.int64)
    keep = (true >= 0) & (pred >= 0)
    m = np.bincount(true[keep] * num_classes + pred[keep], minlength=num_classes**2)
    m = m.reshape(num_classes, num_classes).astype(np.float64)
    if normalize:
        rows = m.sum(axis=1, keepdims=True)
        m = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    return m


def masked_mean(values: np.ndarray, mask: np.ndarray) -> float:
    """Mean of ``values`` where the boolean ``mask`` (same shape) is True; NaN for an empty mask."""
    mask = np.asarray(mask, dtype=bool)
    return float(np.mean(values[mask])) if mask.any() else float("nan")


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
    """Average precision of ``scores`` for detecting ``positive``: sum over positives of precision at its
    threshold, tied scores taken as one threshold (as scikit-learn's ``average_precision_score``).

    Its chance level is the positive fraction. Returns NaN when there is no positive or a score is not finite.
    """
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    n_pos = int(positive.sum())
    if n_pos == 0 or not np.all(np.isfinite(scores)):
        return float("nan")
    order = np.argsort(-scores, kind="mergesort")
    s, pos = scores[order], positive[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # the last index of every tie group
    tp = np.cumsum(pos)[last]
    precision = tp / (last + 1)
    recall_gain = np.diff(np.r_[0, tp]) / n_pos
    return float(np.sum(precision * recall_gain))
