"""Loss functions: the NAL loss and the baselines' losses (CE, GCE, SCE, ELR).

All functions take raw logits and compute in float32 or wider even under bf16/fp16 autocast,
because the NAL mixture ``tau * p + (1 - tau) * q`` loses its meaning once ``p`` is rounded.
"""

from __future__ import annotations


import torch
import torch.nn.functional as F

Tensor = torch.Tensor

_REDUCTIONS = ("mean", "sum", "none")


def _as_float(x: Tensor) -> Tensor:
    """Upcast half-precision tensors; keep float32/float64 (float64 for the gradient checks)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _reduce(per_sample: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    if reduction == "none":
        return per_sample
    raise ValueError(f"reduction={reduction!r} is not one of {_REDUCTIONS}")


def target_distribution(targets: Tensor, num_classes: int, dtype: torch.dtype) -> Tensor:
    """Turn class indices (N,) or a distribution (N, C) into a float (N, C) distribution."""
    if targets.dtype in (torch.int64, torch.int32, torch.int16, torch.uint8):
        if targets.ndim != 1:
            raise ValueError(f"integer targets must have shape (N,), got {tuple(targets.shape)}")
        if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= num_classes):
            raise ValueError(
                f"targets must lie in [0, {num_classes}); got values in "
                f"[{int(targets.min())}, {int(targets.max())}]"
            )
        return F.one_hot(targets.long(), num_classes).to(dtype)
    if targets.ndim != 2 or targets.shape[1] != num_classes:
        raise ValueError(
            f"float targets must have shape (N, {num_classes}), got {tuple(targets.shape)}"
        )
    return _as_float(targets).to(dtype)


def nal_log_mix(logits: Tensor, attention_logits: Tensor, q: Tensor) -> Tensor:
    """``log(tau * p + (1 - tau) * q)`` computed in log space, shape (N, C).

    ``logaddexp(log tau + log p, log(1 - tau) + log q)`` is exact and finite for tau -> 0 or 1,
    p_k -> 0 and q_k = 0 (log 0 = -inf is absorbed by logaddexp), where the authors' code clamps
    tau, p and the mixture instead.
    """
    log_p = F.log_softmax(logits, dim=1)
    log_tau = F.logsigmoid(attention_logits).unsqueeze(1)
    log_one_minus_tau = F.logsigmoid(-attention_logits).unsqueeze(1)
    log_q = torch.log(q)  # -inf where q == 0; handled by logaddexp
    return torch.logaddexp(log_tau + log_p, log_one_minus_tau + log_q)


def nal_loss(
    logits: Tensor,
    attention_logits: Tensor,
    targets: Tensor,
    lam: float,
    beta: float = 0.0,
    reduction: str = "mean",
) -> Tensor:
    r"""The Noise Attention Learning loss (Lu, Bo, He 2022), per sample:

    ``l = -sum_k q_k log(tau p_k + (1 - tau) q_k) + lam * (-log tau) [+ beta * RCE]``

    .. math::

        \ell = -\sum_{k=1}^{C} q_k \log\bigl(\tau p_k + (1 - \tau)\, q_k\bigr) - \lambda \log \tau,
        \qquad p = \mathrm{softmax}(z), \quad \tau = \sigma(s).

    Args:
        logits: class logits ``z``, shape (N, C).
        attention_logits: attention-branch logits ``s``, shape (N,) or (N, 1); ``tau = sigmoid(s)``.
        targets: class indices (N,) int64, or target distributions ``q`` (N, C) float.
        lam: weight ``lambda >= 0`` of the ``-log tau`` term.
        beta: weight of the authors' optional reverse-CE term ``-sum_k mix_k log q_k`` (their
            "RNAL", with q clamped to [1e-4, 1]); 0 gives exactly the paper's loss.
        reduction: "mean" (default), "sum" or "none" (per-sample, shape (N,)).

    Returns:
        The loss in nats, a scalar (shape (N,) with ``reduction="none"``), in float32 (float64 for float64
        inputs) also under bf16/fp16 autocast.
    """
    if lam < 0:
        raise ValueError(f"lam must be >= 0, got {lam}")
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (N, C), got {tuple(logits.shape)}")
    z = _as_float(logits)
    s = _as_float(attention_logits).reshape(-1).to(z.dtype)
    if s.shape[0] != z.shape[0]:
        raise ValueError(
            f"attention_logits has {s.shape[0]} entries for a batch of {z.shape[0]} logits"
        )
    q = target_distribution(targets, z.shape[1], z.dtype)
    log_mix = nal_log_mix(z, s, q)
    # q_k log mix_k with q_k = 0 is 0 (not nan): where() keeps the gradient clean as well.
    ce_term = -torch.where(q > 0, q * log_mix, torch.zeros_like(log_mix)).sum(dim=1)
    per_sample = ce_term - lam * F.logsigmoid(s)
    if beta:
        log_q = torch.log(q.clamp(min=1e-4, max=1.0))
        per_sample = per_sample - beta * (log_mix.exp() * log_q).sum(dim=1)
    return _reduce(per_sample, reduction)


def nal_phi(p_y: Tensor, tau: Tensor) -> Tensor:
    """Theorem 1's per-sample gradient scale ``phi = p_y / (p_y - 1 + 1/tau)``, in (0, 1)."""
    return p_y / (p_y - 1.0 + 1.0 / tau)


def nal_phi_logit(logits: Tensor, attention_logits: Tensor, targets: Tensor) -> Tensor:
    r"""The logit of the per-sample gradient factor ``phi`` of the NAL loss for any target ``q``, shape (N,).

    With ``w_k = tau p_k / (tau p_k + (1 - tau) q_k)`` and ``Q = sum_k q_k``, the gradient of the NAL loss
    (eq. 6 of the appendix) is ``dl/dz_j = p_j sum_k q_k w_k - q_j w_j``, and

    .. math:: \phi = \frac{1}{Q}\sum_k q_k w_k,

    the ``q``-weighted mean of ``w``. For a one-hot ``q`` it is Theorem 1's ``p_y / (p_y - 1 + 1/tau)``
    (:func:`nal_phi`), the factor that scales the cross-entropy gradient ``p - e_y``; for any ``q`` whose
    ``w_k`` are equal it scales ``p - q``. Returned as its logit, ``log phi - log(1 - phi)``, computed in log
    space, so that ``phi`` within 1e-9 of 1 (late in training) or of 0 keeps its resolution.

    Args:
        logits: class logits (N, C).
        attention_logits: ``s`` (N,) or (N, 1), ``tau = sigmoid(s)``.
        targets: class indices (N,) or targets ``q`` (N, C) (the authors' clamped q need not sum to 1).
    """
    z = _as_float(logits.detach())
    s = _as_float(attention_logits.detach()).reshape(-1, 1).to(z.dtype)
    q = target_distribution(targets, z.shape[1], z.dtype)
    log_p = F.log_softmax(z, dim=1)
    log_q = torch.log(q)  # -inf where q_k = 0: those classes carry no weight
    log_tp = F.logsigmoid(s) + log_p  # log(tau p_k)
    log_rest = F.logsigmoid(-s) + log_q  # log((1 - tau) q_k)
    log_mix = torch.logaddexp(log_tp, log_rest)
    log_phi = torch.logsumexp(log_q + log_tp - log_mix, dim=1)
    log_one_minus = torch.logsumexp(log_q + log_rest - log_mix, dim=1)
    return log_phi - log_one_minus  # the normaliser Q cancels


def nal_optimal_tau(p_y: Tensor | float, lam: float) -> Tensor:
    """The tau minimising the one-hot NAL loss for fixed ``p_y``: ``min(1, lam / ((1+lam)(1-p_y)))``.

    From ``d l / d tau = (1 - p_y) / (tau p_y + 1 - tau) - lam / tau`` (zero where the loss is minimal).
    """
    p = torch.as_tensor(p_y, dtype=torch.float64)
    with torch.no_grad():
        denom = (1.0 + lam) * (1.0 - p)
        return torch.where(denom > 0, (lam / denom.clamp(min=1e-300)).clamp(max=1.0), torch.ones_like(p))


def ce_loss(logits: Tensor, targets: Tensor, reduction: str = "mean") -> Tensor:
    """Cross-entropy ``-log p_y`` (class indices) or ``-sum_k t_k log p_k`` (distributions)."""
    z = _as_float(logits)
    log_p = F.log_softmax(z, dim=1)
    t = target_distribution(targets, z.shape[1], z.dtype)
    return _reduce(-(t * log_p).sum(dim=1), reduction)


def gce_loss(logits: Tensor, targets: Tensor, q: float = 0.7, reduction: str = "mean") -> Tensor:
    """Generalised cross-entropy (Zhang & Sabuncu 2018): ``(1 - p_y^q) / q``."""
    if not 0 < q <= 1:
        raise ValueError(f"GCE exponent q must be in (0, 1], got {q}")
    z = _as_float(logits)
    log_p_y = F.log_softmax(z, dim=1).gather(1, targets.long().view(-1, 1)).squeeze(1)
    return _reduce((1.0 - torch.exp(q * log_p_y)) / q, reduction)


def sce_loss(
    logits: Tensor, targets: Tensor, alpha: float, beta: float, reduction: str = "mean"
) -> Tensor:
    """Symmetric cross-entropy (Wang et al. 2019): ``alpha * CE + beta * RCE``.

    ``RCE = -sum_k p_k log y_k`` with ``log 0`` clamped at ``log 1e-4``; p clamped to [1e-7, 1]
    as in the reference code.
    """
    z = _as_float(logits)
    ce = F.cross_entropy(z, targets.long(), reduction="none")
    p = F.softmax(z, dim=1).clamp(min=1e-7, max=1.0)
    y = F.one_hot(targets.long(), z.shape[1]).to(z.dtype).clamp(min=1e-4, max=1.0)
    rce = -(p * torch.log(y)).sum(dim=1)
    return _reduce(alpha * ce + beta * rce, reduction)


def elr_loss(
    logits: Tensor, targets: Tensor, ensemble_targets: Tensor, lam: float, reduction: str = "mean"
) -> Tensor:
    """Early-learning regularisation (Liu et al. 2020): ``CE + lam * log(1 - <t, p>)``.

    ``p`` is the softmax clamped to [1e-4, 1 - 1e-4] (as the reference code) and ``t`` the
    temporal ensemble of the (renormalised, detached) predictions, shape (N, C).
    """
    z = _as_float(logits)
    ce = F.cross_entropy(z, targets.long(), reduction="none")
    p = F.softmax(z, dim=1).clamp(min=1e-4, max=1.0 - 1e-4)
    inner = (ensemble_targets.to(z.dtype) * p).sum(dim=1)
    reg = torch.log((1.0 - inner).clamp(min=1e-12))
    return _reduce(ce + lam * reg, reduction)

