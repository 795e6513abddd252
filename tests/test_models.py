"""Models: shapes of both heads, gradient through both heads into the backbone, the registry."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nalkit.models import (
    MODELS,
    AttentionModel,
    build_model,
    cifar_resnet18,
    cifar_resnet34,
    narrow_resnet,
    resnet50,
    small_cnn,
    vgg19_bn,
    with_attention,
)

# (name, in_channels, image size, kwargs, expected feature dim)
LIGHT = [
    ("small_cnn", 1, 28, {}, 32),
    ("small_cnn", 3, 32, {"width": 8}, 16),
    ("narrow_resnet", 1, 28, {"width": 8}, 64),
    ("narrow_resnet", 3, 32, {}, 128),
    ("cifar_resnet18", 3, 32, {}, 512),
    ("cifar_resnet34", 1, 16, {}, 512),
]


def _backbone_params(model: AttentionModel) -> list[nn.Parameter]:
    return [p for p in model.backbone.parameters() if p.requires_grad]


def _check_model(model: AttentionModel, in_channels: int, size: int, num_classes: int, batch: int = 2):
    torch.manual_seed(0)
    x = torch.randn(batch, in_channels, size, size)
    model.train()
    logits, att = model(x)
    assert logits.shape == (batch, num_classes)
    assert att.shape == (batch,)

    # the attention branch alone sends gradient into the backbone: nothing is detached
    model.zero_grad(set_to_none=True)
    att.sum().backward(retain_graph=True)
    grads = [p.grad for p in _backbone_params(model)]
    assert all(g is not None for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    assert all(p.grad is None for p in model.classifier.parameters())

    # and so does the class head
    model.zero_grad(set_to_none=True)
    logits.logsumexp(1).sum().backward()
    assert sum(float(p.grad.abs().sum()) for p in _backbone_params(model) if p.grad is not None) > 0
    assert all(p.grad is None for p in model.attention.parameters())

    with torch.no_grad():
        assert model.features(x).shape == (batch, model.feature_dim)


@pytest.mark.parametrize("name,in_channels,size,kwargs,dim", LIGHT)
def test_light_models(name, in_channels, size, kwargs, dim):
    model = build_model(name, 7, in_channels=in_channels, **kwargs)
    assert isinstance(model, AttentionModel)
    if dim is not None:
        assert model.feature_dim == dim
    assert model.feature_dim == model.backbone.feature_dim
    _check_model(model, in_channels, size, 7)


def test_batch_of_one_gives_shape_1():
    model = build_model("small_cnn", 10, in_channels=1).eval()
    logits, att = model(torch.randn(1, 1, 28, 28))
    assert logits.shape == (1, 10) and att.shape == (1,)


def test_cifar_resnets_are_the_authors_layout():
    r34 = cifar_resnet34()
    assert [len(s) for s in (r34.layer1, r34.layer2, r34.layer3, r34.layer4)] == [3, 4, 6, 3]
    assert r34.conv1.kernel_size == (3, 3) and r34.conv1.stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in r34.modules())
    # kuangliu's CIFAR ResNet34 / ResNet18 have 21,282,122 / 11,173,962 parameters with a 512 -> 10 head
    assert sum(p.numel() for p in r34.parameters()) + 5130 == 21_282_122
    r18 = cifar_resnet18(in_channels=1)
    assert [len(s) for s in (r18.layer1, r18.layer2, r18.layer3, r18.layer4)] == [2, 2, 2, 2]
    assert r18.conv1.in_channels == 1
    assert sum(p.numel() for p in cifar_resnet18().parameters()) + 5130 == 11_173_962
    assert narrow_resnet(3, width=16).feature_dim == 128


def test_small_cnn_feature_dim_is_exposed():
    for width in (8, 32):
        net = small_cnn(1, width=width)
        assert net.feature_dim == 2 * width
        assert net(torch.randn(2, 1, 28, 28)).shape == (2, net.feature_dim)


def test_small_cnn_channels_last_is_only_a_layout():
    torch.manual_seed(0)
    fast = build_model("small_cnn", 10, in_channels=1)
    torch.manual_seed(0)
    plain = build_model("small_cnn", 10, in_channels=1, channels_last=False)
    x = torch.randn(4, 1, 28, 28)
    for a, b in zip(fast(x), plain(x)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    plain.load_state_dict(fast.state_dict())  # checkpoints move between the two layouts


def test_resnet50():
    model = build_model("resnet50", 14, in_channels=3)
    assert model.feature_dim == 2048
    assert isinstance(model.backbone.fc, nn.Identity)
    _check_model(model, 3, 32, 14)  # 32x32 reaches layer4 at 1x1: enough to check shapes and gradients
    assert resnet50(in_channels=1).conv1.in_channels == 1


def test_resnet50_pretrained_offline_error(monkeypatch, tmp_path):
    from torchvision.models import WeightsEnum

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    # no download is attempted: fetching the weights fails as it would offline with an empty cache
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(WeightsEnum, "get_state_dict", offline)
    with pytest.raises(RuntimeError, match="resnet50.*pretrained=False"):
        resnet50(pretrained=True)
    with pytest.raises(ValueError, match="in_channels=1"):
        resnet50(in_channels=1, pretrained=True)


def test_vgg19_bn_heads():
    torch.manual_seed(0)
    model = build_model("vgg19_bn", 10, in_channels=3)
    assert model.feature_dim == 25088
    assert model.backbone(torch.randn(1, 3, 64, 64)).shape == (1, 25088)  # 64x64 ANIMAL-10N input
    att_linears = [m for m in model.attention.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in att_linears] == [(25088, 4096), (4096, 4096), (4096, 1)]
    for m in att_linears:
        assert float(m.weight.detach().std()) == pytest.approx(0.01, rel=0.05)
        assert float(m.weight.detach().mean()) == pytest.approx(0.0, abs=1e-3)
        assert torch.count_nonzero(m.bias) == 0
    cls_linears = [m for m in model.classifier.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in cls_linears] == [(25088, 4096), (4096, 4096), (4096, 10)]
    _check_model(model, 3, 64, 10)
    assert vgg19_bn(in_channels=1).features[0].in_channels == 1


def test_inception_resnet_v2():
    pytest.importorskip("timm")
    model = build_model("inception_resnet_v2", 50)
    assert model.feature_dim == 1536
    model.eval()
    with torch.no_grad():
        logits, att = model(torch.randn(1, 3, 96, 96))
    assert logits.shape == (1, 50) and att.shape == (1,)


def test_inception_resnet_v2_without_timm(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_timm(name, *args, **kwargs):
        if name == "timm" or name.startswith("timm."):
            raise ImportError("No module named 'timm'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_timm)
    with pytest.raises(ImportError, match=r"pip install.*nalkit\[models\]"):
        build_model("inception_resnet_v2", 50)


def test_with_attention_custom_backbone_and_head():
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(12, 5))
    head = nn.Sequential(nn.Linear(5, 3), nn.Tanh(), nn.Linear(3, 1))
    model = with_attention(backbone, 5, 4, attention_head=head)
    assert model.attention is head
    logits, att = model(torch.randn(6, 3, 2, 2))
    assert logits.shape == (6, 4) and att.shape == (6,)
    bad = with_attention(backbone, 5, 4, attention_head=nn.Linear(5, 2))
    with pytest.raises(ValueError, match="one logit per sample"):
        bad(torch.randn(6, 3, 2, 2))


def test_registry():
    assert set(MODELS) == {
        "cifar_resnet18",
        "cifar_resnet34",
        "narrow_resnet",
        "small_cnn",
        "resnet50",
        "vgg19_bn",
        "inception_resnet_v2",
    }
    with pytest.raises(ValueError, match="unknown model 'resnet1000'; choose one of small_cnn.*cifar_resnet18"):
        build_model("resnet1000", 10)
