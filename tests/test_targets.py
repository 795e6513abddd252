"""Target estimation (spec section 3): the three update conventions, the order, checkpointing."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nalkit.config import MethodConfig
from nalkit.methods import METHODS, build_method
from nalkit.targets import TargetStore, UpdateSchedule


def test_store_starts_as_clamped_one_hot_and_updates_with_momentum():
    store = TargetStore(np.array([0, 2]), 3, alpha=0.9)
    torch.testing.assert_close(store.q, torch.tensor([[1.0, 1e-4, 1e-4], [1e-4, 1e-4, 1.0]]))
    p = torch.tensor([[0.2, 0.5, 0.3]])
    store.update(torch.tensor([1]), p)
    expected = (0.9 * torch.tensor([1e-4, 1e-4, 1.0]) + 0.1 * p[0]).clamp(1e-4, 1)
    torch.testing.assert_close(store.q[1], expected)
    torch.testing.assert_close(store.q[0], torch.tensor([1.0, 1e-4, 1e-4]))  # untouched
    assert store.corrected_labels().tolist() == [0, 2]


def test_authors_cifar_schedule_updates_only_in_epochs_divisible_by_period():
    s = UpdateSchedule(start_epoch=60, period=10, when="batch")
    active = [e for e in range(1, 101) if s.per_batch(e)]
    assert active == [60, 70, 80, 90, 100]
    assert not any(s.at_epoch_end(e) for e in range(1, 101))


def test_every_epoch_and_every_batch_conventions():
    every_epoch = UpdateSchedule(start_epoch=3, period=1, when="epoch")
    assert [e for e in range(1, 7) if every_epoch.at_epoch_end(e)] == [3, 4, 5, 6]
    assert not any(every_epoch.per_batch(e) for e in range(1, 7))
    every_batch = UpdateSchedule(start_epoch=1, period=1, when="batch")
    assert all(every_batch.per_batch(e) for e in range(1, 7))
    with pytest.raises(ValueError, match="period"):
        UpdateSchedule(start_epoch=1, period=0)
    with pytest.raises(ValueError, match="when"):
        UpdateSchedule(start_epoch=1, when="step")


def _nal(**kw):
    cfg = MethodConfig(name="nal", nal={"lam": 0.5, "alpha": 0.9, **kw})
    return build_method(cfg, np.array([0, 1, 2, 0]), 3, "cpu")


def test_nal_updates_targets_from_the_batch_before_the_loss():
    m = _nal(es=1, update_period=1, update_when="batch")
    logits = torch.tensor([[0.0, 3.0, 0.0], [2.0, 0.0, 0.0]])
    att = torch.zeros(2)
    idx = torch.tensor([0, 1])
    y = torch.tensor([0, 1])
    loss = m.batch_loss(logits, att, y, idx, epoch=1)
    p = F.softmax(logits, 1)
    q0 = (0.9 * F.one_hot(y, 3).float().clamp(1e-4, 1) + 0.1 * p).clamp(1e-4, 1)
    torch.testing.assert_close(m.store.q[:2], q0)
    from nalkit.losses import nal_loss

    torch.testing.assert_close(loss, nal_loss(logits, att, q0, 0.5, reduction="none"))


def test_nal_epoch_end_convention_waits_for_the_epoch():
    m = _nal(es=1, update_period=1, update_when="epoch")
    before = m.store.q.clone()
    m.batch_loss(torch.randn(4, 3), torch.zeros(4), torch.tensor([0, 1, 2, 0]), torch.arange(4), epoch=1)
    torch.testing.assert_close(m.store.q, before)
    m.end_epoch(1)
    assert not torch.allclose(m.store.q, before)


def test_nal_before_es_keeps_targets():
    m = _nal(es=5, update_period=1)
    before = m.store.q.clone()
    m.batch_loss(torch.randn(4, 3), torch.zeros(4), torch.tensor([0, 1, 2, 0]), torch.arange(4), epoch=4)
    torch.testing.assert_close(m.store.q, before)


def test_selc_is_ce_until_turning_point_then_ensembles():
    cfg = MethodConfig(name="selc", selc={"start": 3, "alpha": 0.9})
    m = build_method(cfg, np.array([0, 1]), 2, "cpu")
    z, y, idx = torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([0, 1]), torch.arange(2)
    torch.testing.assert_close(m.batch_loss(z, None, y, idx, epoch=2), F.cross_entropy(z, y, reduction="none"))
    out = m.batch_loss(z, None, y, idx, epoch=3)
    t = 0.9 * F.one_hot(y, 2).float() + 0.1 * F.softmax(z, 1)
    torch.testing.assert_close(out, -(t * F.log_softmax(z, 1)).sum(1))


def test_elr_targets_are_renormalised_clamped_predictions():
    cfg = MethodConfig(name="elr", elr={"beta": 0.7, "lam": 3.0})
    m = build_method(cfg, np.array([0, 1]), 2, "cpu")
    z = torch.tensor([[20.0, -20.0], [0.0, 0.0]])
    m.batch_loss(z, None, torch.tensor([0, 1]), torch.arange(2), epoch=1)
    p = F.softmax(z, 1).clamp(1e-4, 1 - 1e-4)
    torch.testing.assert_close(m.store.q, 0.3 * p / p.sum(1, keepdim=True))


@pytest.mark.parametrize("name", METHODS)
def test_every_method_has_one_interface_and_round_trips_state(name):
    cfg = MethodConfig(name=name, nal={"es": 1, "update_period": 1}, selc={"start": 1})
    m = build_method(cfg, np.array([0, 1, 2, 1]), 3, "cpu")
    z = torch.randn(4, 3, requires_grad=True)
    per = m.batch_loss(z, torch.zeros(4, requires_grad=True), torch.tensor([0, 1, 2, 1]), torch.arange(4), 1)
    assert per.shape == (4,) and torch.isfinite(per).all()
    per.mean().backward()
    m.end_epoch(1)
    state = m.state_dict()
    m2 = build_method(cfg, np.array([0, 1, 2, 1]), 3, "cpu")
    m2.load_state_dict(state)
    if m.store is not None:
        torch.testing.assert_close(m2.store.q, m.store.q)


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown method 'mixup'; choose one of ce, gce"):
        build_method(MethodConfig(name="mixup"), np.array([0]), 2, "cpu")


def test_legacy_flat_method_keyword_arguments_still_build():
    old = MethodConfig(name="nal", lam=0.5, es=1, update_period=1, selc_start=3)
    assert old == MethodConfig(name="nal", nal={"lam": 0.5, "es": 1, "update_period": 1}, selc={"start": 3})


def test_nal_ablations():
    """estimate_targets=False keeps q the noisy one-hot; attention=False is cross-entropy on q."""
    y = np.array([0, 1, 2, 0])
    z, att, idx = torch.randn(4, 3), torch.randn(4), torch.arange(4)
    frozen = build_method(MethodConfig(name="nal", nal={"es": 1, "update_period": 1, "estimate_targets": False}),
                          y, 3, "cpu")
    before = frozen.store.q.clone()
    from nalkit.losses import nal_loss

    torch.testing.assert_close(frozen.batch_loss(z, att, torch.as_tensor(y), idx, epoch=3),
                               nal_loss(z, att, before, 0.5, reduction="none"))
    torch.testing.assert_close(frozen.store.q, before)
    assert frozen.uses_attention
    ce_on_q = build_method(MethodConfig(name="nal", nal={"es": 1, "update_period": 1, "attention": False}), y, 3, "cpu")
    assert not ce_on_q.uses_attention
    out = ce_on_q.batch_loss(z, None, torch.as_tensor(y), idx, epoch=1)
    q = ce_on_q.store.q
    assert not torch.allclose(q, before)  # the targets moved before the loss, as in full NAL
    torch.testing.assert_close(out, -(q * F.log_softmax(z, 1)).sum(1))


def test_a_new_method_is_one_class_and_one_registration(tmp_path):
    """The registry is the only list of method names: config, validation, builder and trainer read it."""
    from dataclasses import dataclass

    from nalkit.config import Config, ConfigError
    from nalkit.losses import ce_loss
    from nalkit.methods import METHODS, Method

    @dataclass
    class ScaledOptions:
        scale: float = 0.5

        def check(self, prefix, cfg, active):
            if self.scale <= 0:
                raise ValueError(f"{prefix}.scale={self.scale} must be > 0")

    class Scaled(Method):
        Options = ScaledOptions

        def __init__(self, opts, labels, num_classes, device):
            self.scale = opts.scale

        def batch_loss(self, logits, attention_logits, labels, index, epoch):
            return self.scale * ce_loss(logits, labels, reduction="none")

    METHODS.add("scaled", Scaled)
    try:
        cfg = Config().apply_overrides(["method.name=scaled", "method.scaled.scale=0.25"]).validate()
        assert cfg.method.options.scale == 0.25 and cfg.run_name().split("-")[2] == "scaled"
        with pytest.raises(ConfigError, match="method.scaled.scale=-1.0 must be > 0"):
            Config().apply_overrides(["method.name=scaled", "method.scaled.scale=-1"]).validate()
        m = build_method(cfg.method, np.array([0, 1]), 2, "cpu")
        z = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
        torch.testing.assert_close(m.batch_loss(z, None, torch.tensor([0, 1]), torch.arange(2), 1),
                                   0.25 * F.cross_entropy(z, torch.tensor([0, 1]), reduction="none"))
    finally:
        METHODS.remove("scaled")
    with pytest.raises(ConfigError, match="method.name='scaled' is not one of"):
        Config().apply_overrides(["method.name=scaled"]).validate()
