"""The NAL loss against the appendix's closed forms, and each baseline against its formula."""

import math

import pytest
import torch
import torch.nn.functional as F

from nalkit.losses import (
    ce_loss,
    elr_loss,
    gce_loss,
    nal_loss,
    nal_optimal_tau,
    nal_phi,
    nal_phi_logit,
    sce_loss,
)



@pytest.fixture(autouse=True)
def float64_by_default():
    """The closed forms are checked in float64; restore the default so other test files are unaffected."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _naive_nal(z, s, q, lam, beta=0.0):
    """The loss written as in the paper, no log-space tricks (valid away from the edges)."""
    p = F.softmax(z, dim=1)
    tau = torch.sigmoid(s).unsqueeze(1)
    mix = tau * p + (1 - tau) * q
    loss = -(q * torch.log(mix)).sum(1) - lam * torch.log(tau.squeeze(1))
    if beta:
        loss = loss - beta * (mix * torch.log(q.clamp(1e-4, 1))).sum(1)
    return loss


@pytest.mark.parametrize("trial", range(20))
def test_value_matches_paper_formula(trial):
    g = torch.Generator().manual_seed(trial)
    n, c = 16, 7
    z = torch.randn(n, c, generator=g) * 3
    s = torch.randn(n, generator=g) * 2
    q = F.softmax(torch.randn(n, c, generator=g) * 2, dim=1)
    lam = float(torch.rand(1, generator=g) * 5)
    torch.testing.assert_close(nal_loss(z, s, q, lam, reduction="none"), _naive_nal(z, s, q, lam))
    torch.testing.assert_close(nal_loss(z, s, q, lam, beta=0.1, reduction="none"), _naive_nal(z, s, q, lam, 0.1))


@pytest.mark.parametrize("trial", range(25))
def test_gradient_one_hot_matches_theorem_1(trial):
    """dl/dz_j = phi (p_j - 1) for the labelled class, phi p_j otherwise; phi in (0, 1)."""
    g = torch.Generator().manual_seed(100 + trial)
    n, c = 32, 10
    z = (torch.randn(n, c, generator=g) * 4).requires_grad_()
    s = (torch.randn(n, generator=g) * 3).requires_grad_()
    y = torch.randint(0, c, (n,), generator=g)
    lam = float(torch.rand(1, generator=g) * 10)
    nal_loss(z, s, y, lam, reduction="sum").backward()
    p = F.softmax(z.detach(), dim=1)
    tau = torch.sigmoid(s.detach())
    p_y = p.gather(1, y[:, None]).squeeze(1)
    phi = nal_phi(p_y, tau)
    assert torch.all((phi > 0) & (phi < 1))
    expected = phi[:, None] * (p - F.one_hot(y, c))
    torch.testing.assert_close(z.grad, expected, rtol=1e-9, atol=1e-12)
    # d l / d tau = (1 - p_y)/(tau p_y + 1 - tau) - lam / tau, chained through the sigmoid
    dtau = (1 - p_y) / (tau * p_y + 1 - tau) - lam / tau
    torch.testing.assert_close(s.grad, dtau * tau * (1 - tau), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("trial", range(25))
def test_gradient_general_q_matches_eq_6(trial):
    g = torch.Generator().manual_seed(200 + trial)
    n, c = 24, 6
    z = (torch.randn(n, c, generator=g) * 3).requires_grad_()
    s = torch.randn(n, generator=g) * 2
    q = F.softmax(torch.randn(n, c, generator=g) * 3, dim=1)
    nal_loss(z, s, q, lam=0.7, reduction="sum").backward()
    p = F.softmax(z.detach(), dim=1)
    tau = torch.sigmoid(s)[:, None]
    w = tau * q * p / (tau * (p - q) + q)
    expected = -w + p * w.sum(1, keepdim=True)
    torch.testing.assert_close(z.grad, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("lam", [0.01, 0.5, 5.0, 50.0])
def test_optimal_tau_minimises_the_loss(lam):
    """tau* = min(1, lam / ((1 + lam)(1 - p_y))) is the minimiser over tau of the one-hot loss."""
    c = 5
    for p_y in [0.05, 0.2, 0.5, 0.8, 0.95]:
        # logits giving exactly p_y for class 0 and uniform rest
        rest = (1 - p_y) / (c - 1)
        z = torch.log(torch.tensor([[p_y] + [rest] * (c - 1)]))
        taus = torch.linspace(1e-4, 1 - 1e-9, 20001)
        s = torch.logit(taus)
        losses = nal_loss(z.expand(len(s), c), s, torch.zeros(len(s), dtype=torch.long), lam, reduction="none")
        best = taus[losses.argmin()]
        star = nal_optimal_tau(p_y, lam)
        assert abs(float(best) - float(star)) < 2e-3, (p_y, lam, float(best), float(star))
        # tau drops below 1 exactly when p_y < 1 / (1 + lam)
        assert (float(star) < 1) == (p_y < 1 / (1 + lam))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_finite_at_the_edges(dtype):
    c = 10
    z = torch.tensor([[80.0] + [-80.0] * (c - 1)] * 4, dtype=dtype, requires_grad=True)  # p_k -> 0
    s = torch.tensor([-60.0, 60.0, 0.0, 30.0], dtype=dtype, requires_grad=True)  # tau -> 0 and -> 1
    y = torch.tensor([3, 3, 0, 0])  # labelled class has p_y ~ 0 in two rows
    loss = nal_loss(z, s, y, lam=0.5, beta=0.1)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all() and torch.isfinite(s.grad).all()
    # tau -> 0 while the labelled class is hopeless: the class gradient vanishes (phi -> 0)
    assert z.grad[0].abs().max() < 1e-12


def test_finite_under_bf16_autocast():
    g = torch.Generator().manual_seed(0)
    z = (torch.randn(64, 10, generator=g, dtype=torch.float32) * 30).requires_grad_()
    s = (torch.randn(64, generator=g, dtype=torch.float32) * 30).requires_grad_()
    y = torch.randint(0, 10, (64,), generator=g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        zz, ss = z.to(torch.bfloat16), s.to(torch.bfloat16)
        loss = nal_loss(zz, ss, y, lam=10.0)
    assert loss.dtype == torch.float32
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all() and torch.isfinite(s.grad).all()
    ref = nal_loss(z.detach().to(torch.bfloat16).float(), s.detach().to(torch.bfloat16).float(), y, lam=10.0)
    torch.testing.assert_close(loss.detach(), ref, rtol=1e-5, atol=1e-5)


def test_class_index_and_one_hot_targets_agree():
    z, s = torch.randn(8, 4), torch.randn(8)
    y = torch.randint(0, 4, (8,))
    torch.testing.assert_close(nal_loss(z, s, y, 1.0), nal_loss(z, s, F.one_hot(y, 4).double(), 1.0))


def test_nal_rejects_bad_input():
    z, s = torch.randn(4, 3), torch.randn(4)
    with pytest.raises(ValueError, match="lam"):
        nal_loss(z, s, torch.zeros(4, dtype=torch.long), lam=-1)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        nal_loss(z, s, torch.tensor([0, 1, 2, 3]), lam=1)
    with pytest.raises(ValueError, match="attention_logits"):
        nal_loss(z, torch.randn(5), torch.zeros(4, dtype=torch.long), lam=1)
    with pytest.raises(ValueError, match="reduction"):
        nal_loss(z, s, torch.zeros(4, dtype=torch.long), lam=1, reduction="avg")


def test_nal_reduces_to_ce_when_tau_is_one():
    z, y = torch.randn(8, 5), torch.randint(0, 5, (8,))
    s = torch.full((8,), 40.0)  # tau = 1 - 4e-18
    torch.testing.assert_close(nal_loss(z, s, y, lam=0.0), F.cross_entropy(z, y))


# ---- baselines against their formulas -------------------------------------------------------
def _probs(z):
    return F.softmax(z, dim=1)


def test_ce():
    z, y = torch.randn(16, 6), torch.randint(0, 6, (16,))
    torch.testing.assert_close(ce_loss(z, y), -torch.log(_probs(z)[torch.arange(16), y]).mean())
    t = _probs(torch.randn(16, 6))
    torch.testing.assert_close(ce_loss(z, t), -(t * torch.log(_probs(z))).sum(1).mean())


def test_gce():
    z, y = torch.randn(16, 6), torch.randint(0, 6, (16,))
    p_y = _probs(z)[torch.arange(16), y]
    torch.testing.assert_close(gce_loss(z, y, q=0.7), ((1 - p_y**0.7) / 0.7).mean())
    # q -> 0 recovers CE
    torch.testing.assert_close(gce_loss(z, y, q=1e-6), F.cross_entropy(z, y), rtol=1e-4, atol=1e-4)


def test_sce():
    z, y = torch.randn(16, 6), torch.randint(0, 6, (16,))
    p = _probs(z).clamp(1e-7, 1)
    rce = -math.log(1e-4) * (1 - p[torch.arange(16), y])  # -sum_k p_k log y_k with log 0 = log 1e-4
    expected = 0.1 * F.cross_entropy(z, y, reduction="none") + 1.0 * rce
    torch.testing.assert_close(sce_loss(z, y, 0.1, 1.0), expected.mean())


def test_elr():
    z, y = torch.randn(16, 6), torch.randint(0, 6, (16,))
    t = _probs(torch.randn(16, 6))
    p = _probs(z).clamp(1e-4, 1 - 1e-4)
    expected = F.cross_entropy(z, y, reduction="none") + 3.0 * torch.log(1 - (t * p).sum(1))
    torch.testing.assert_close(elr_loss(z, y, t, lam=3.0), expected.mean())


def test_general_phi_is_theorem_1s_factor_and_scales_the_gradient_for_any_target():
    """nal_phi_logit: for a one-hot q it is Theorem 1's phi; for any q the NAL gradient is p * phi - q * w
    (w_k = tau p_k / mix_k, phi = sum_k q_k w_k / sum_k q_k), so phi is the factor on the p part of it."""
    torch.manual_seed(3)
    n, c = 64, 10
    z = torch.randn(n, c, requires_grad=True)
    s = torch.randn(n) * 3
    y = torch.randint(0, c, (n,))
    p = F.softmax(z.detach(), dim=1)
    phi_onehot = torch.sigmoid(nal_phi_logit(z, s, y))
    torch.testing.assert_close(phi_onehot, nal_phi(p.gather(1, y[:, None]).squeeze(1), torch.sigmoid(s)))
    q = F.softmax(torch.randn(n, c) * 2, dim=1)
    nal_loss(z, s, q, lam=2.0, reduction="sum").backward()
    tau = torch.sigmoid(s)[:, None]
    w = tau * p / (tau * p + (1 - tau) * q)
    phi = torch.sigmoid(nal_phi_logit(z, s, q))
    torch.testing.assert_close(phi, (q * w).sum(1))
    torch.testing.assert_close(z.grad, p * phi[:, None] - q * w, rtol=1e-9, atol=1e-12)
    # phi within 1e-12 of 1 (tau -> 1) and of 0 keeps its resolution as a logit
    extreme = nal_phi_logit(torch.tensor([[5.0, 0.0], [-30.0, 0.0]]), torch.tensor([40.0, -5.0]), torch.tensor([0, 0]))
    assert extreme[0] > 27 and extreme[1] < -30 and torch.isfinite(extreme).all()
