"""Backbones and the two-headed NAL model.

A backbone maps images (B, in_channels, H, W) to a pooled feature vector ``h`` of shape (B, d) and carries
its ``feature_dim`` d. :class:`AttentionModel` reads ``h`` with a class head ``z = Linear(d, C)(h)`` and an
attention branch ``s = Linear(d, 1)(h)``, one logit per sample (``tau = sigmoid(s)``). Nothing is detached:
the backbone gets gradient through both heads.

Use :func:`build_model` with a name from :data:`MODELS`, or :func:`with_attention` with your own backbone.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .registry import Registry

__all__ = [
    "AttentionModel",
    "BasicBlock",
    "CifarResNet",
    "MODELS",
    "SmallCNN",
    "build_model",
    "cifar_resnet18",
    "cifar_resnet34",
    "inception_resnet_v2",
    "narrow_resnet",
    "resnet50",
    "small_cnn",
    "vgg19_bn",
    "vgg_mlp_head",
    "with_attention",
]


class AttentionModel(nn.Module):
    """A backbone with a class head and an attention branch on the same features.

    ``forward(x)`` returns ``(logits, attention_logits)`` with shapes (B, C) and (B,). Apply ``sigmoid`` to
    the attention logits to get tau in (0, 1); the loss does that, so the model returns logits.
    """

    def __init__(
        self,
        backbone: nn.Module,
        feature_dim: int,
        num_classes: int,
        attention_head: Optional[nn.Module] = None,
        classifier_head: Optional[nn.Module] = None,
    ) -> None:
        super().__init__()
        if int(feature_dim) < 1 or int(num_classes) < 1:
            raise ValueError(
                f"feature_dim and num_classes must be >= 1, got {feature_dim!r} and {num_classes!r}"
            )
        self.backbone = backbone
        self.feature_dim = int(feature_dim)
        self.num_classes = int(num_classes)
        if classifier_head is None:
            classifier_head = nn.Linear(feature_dim, num_classes)
        self.classifier = classifier_head
        self.attention = attention_head if attention_head is not None else nn.Linear(feature_dim, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features h, shape (B, feature_dim)."""
        return self.backbone(x)

    def heads(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both heads on features ``h`` (B, d): ``(logits (B, C), attention_logits (B,))``."""
        logits = self.classifier(h)
        s = self.attention(h)
        if s.numel() != h.shape[0]:
            raise ValueError(
                f"attention head must give one logit per sample; got shape {tuple(s.shape)} "
                f"for a batch of {h.shape[0]}"
            )
        return logits, s.reshape(h.shape[0])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits (B, C), attention_logits (B,))`` for images ``x``."""
        return self.heads(self.backbone(x))


def with_attention(
    backbone: nn.Module,
    feature_dim: int,
    num_classes: int,
    attention_head: Optional[nn.Module] = None,
    *,
    classifier_head: Optional[nn.Module] = None,
) -> AttentionModel:
    """Wrap ``backbone`` (images -> (B, feature_dim)) with a class head and an attention branch.

    Default heads are ``Linear(feature_dim, num_classes)`` and ``Linear(feature_dim, 1)``; pass modules to
    replace them (e.g. the VGG MLPs, :func:`vgg_mlp_head`).
    """
    return AttentionModel(backbone, feature_dim, num_classes, attention_head, classifier_head)


# --------------------------------------------------------------------------------------------------
# CIFAR-style ResNets (kuangliu / the NAL authors' resnet.py, with BasicBlock)


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus (projection) shortcut, then ReLU."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet with the CIFAR stem (3x3 conv, stride 1, no max-pool) returning pooled features.

    Stages of widths ``width * (1, 2, 4, 8)`` at strides (1, 2, 2, 2); global average pooling (equal to the
    authors' ``avg_pool2d(out, 4)`` at 32x32 input, and also valid for 28x28). ``feature_dim = 8 * width``.
    """

    def __init__(self, num_blocks: Sequence[int], in_channels: int = 3, width: int = 64) -> None:
        super().__init__()
        if len(num_blocks) != 4:
            raise ValueError(f"num_blocks must list 4 stages, got {list(num_blocks)}")
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        planes = width
        stages = []
        for i, n in enumerate(num_blocks):
            out = width * 2**i
            strides = [1 if i == 0 else 2] + [1] * (n - 1)
            blocks = []
            for s in strides:
                blocks.append(BasicBlock(planes, out, s))
                planes = out
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.feature_dim = planes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)


def cifar_resnet18(in_channels: int = 3) -> CifarResNet:
    """CIFAR ResNet-18 (BasicBlock 2-2-2-2, width 64), feature_dim 512."""
    return CifarResNet((2, 2, 2, 2), in_channels, 64)


def cifar_resnet34(in_channels: int = 3) -> CifarResNet:
    """CIFAR ResNet-34 (BasicBlock 3-4-6-3, width 64), feature_dim 512 -- the authors' CIFAR model."""
    return CifarResNet((3, 4, 6, 3), in_channels, 64)


def narrow_resnet(in_channels: int = 3, width: int = 16) -> CifarResNet:
    """CIFAR ResNet-18 layout with a small width, for CPU runs; feature_dim ``8 * width``."""
    return CifarResNet((2, 2, 2, 2), in_channels, width)


# --------------------------------------------------------------------------------------------------
# small CNN for Fashion-MNIST on CPU


def _conv_bn_relu(cin: int, cout: int, norm: str = "batch") -> list[nn.Module]:
    layer = nn.BatchNorm2d(cout) if norm == "batch" else nn.GroupNorm(min(8, cout), cout)
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), layer, nn.ReLU(inplace=True)]


class SmallCNN(nn.Module):
    """(conv-BN-ReLU x2, max-pool) at widths ``width`` then ``2 * width``, global average pool.

    ``feature_dim = 2 * width``. Sized for 28x28 Fashion-MNIST on a CPU: the default ``width=16``
    (features 32) trains at roughly 2,000 images/s at batch 128 on 2 CPU cores; ``width=32`` costs about
    4x the compute and ran at a third of that speed.

    With ``channels_last=True`` (default) the conv weights are stored channels-last, which makes oneDNN
    run every convolution and pooling in NHWC: about 1.4x faster training on CPU, same numbers up to
    float rounding. Inputs need no conversion.
    """

    def __init__(
        self,
        in_channels: int = 1,
        width: int = 16,
        channels_last: bool = True,
        hidden: int | None = None,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        if norm not in ("batch", "group"):
            raise ValueError(f"norm={norm!r} is not 'batch' or 'group'")
        w = width
        layers: list[nn.Module] = [
            *_conv_bn_relu(in_channels, w, norm),
            *_conv_bn_relu(w, w, norm),
            nn.MaxPool2d(2),
            *_conv_bn_relu(w, 2 * w, norm),
            *_conv_bn_relu(2 * w, 2 * w, norm),
            nn.MaxPool2d(2),
        ]
        if hidden:
            # a 4x4 spatial grid into a fully-connected layer: cheap in FLOPs but many parameters, which
            # is what lets a CPU-sized model memorise noisy labels (the regime the paper studies)
            layers += [nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(2 * w * 16, hidden), nn.ReLU(inplace=True)]
            self.feature_dim = hidden
        else:
            layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
            self.feature_dim = 2 * w
        self.body = nn.Sequential(*layers)
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def small_cnn(
    in_channels: int = 1, width: int = 16, channels_last: bool = True, hidden: int | None = None,
    norm: str = "batch",
) -> SmallCNN:
    """Compact 4-conv CNN (see :class:`SmallCNN`); feature_dim ``2 * width``, or ``hidden`` with an FC layer."""
    return SmallCNN(in_channels, width, channels_last, hidden, norm)


# --------------------------------------------------------------------------------------------------
# torchvision / timm backbones


def _replace_first_conv(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    return nn.Conv2d(
        in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        bias=conv.bias is not None,
    )


def resnet50(in_channels: int = 3, pretrained: bool = False) -> nn.Module:
    """torchvision ResNet-50 with ``fc`` replaced by Identity; feature_dim 2048.

    ``pretrained=True`` loads torchvision's ImageNet weights (IMAGENET1K_V1) from the torch hub cache or
    the internet; the authors train Clothing1M from scratch, so the default is ``False``.
    """
    from ._io import require_torchvision

    torchvision = require_torchvision("resnet50")
    if pretrained and in_channels != 3:
        raise ValueError(
            f"pretrained ResNet-50 weights expect 3 input channels, got in_channels={in_channels}"
        )
    if not pretrained:
        net = torchvision.models.resnet50(weights=None)
    else:
        weights = torchvision.models.ResNet50_Weights.IMAGENET1K_V1
        try:
            net = torchvision.models.resnet50(weights=weights)
        except Exception as e:  # URLError, hash mismatch, ...: the cause is in the chained exception
            raise RuntimeError(
                f"could not load ImageNet weights for resnet50 ({type(e).__name__}: {e}). Offline, put "
                f"{weights.url.rsplit('/', 1)[-1]} into {torch.hub.get_dir()}/checkpoints/ "
                "(set $TORCH_HOME to move it), or use pretrained=False"
            ) from e
    if in_channels != 3:
        net.conv1 = _replace_first_conv(net.conv1, in_channels)
    net.fc = nn.Identity()
    net.feature_dim = 2048
    return net


class _VGGFeatures(nn.Module):
    def __init__(self, features: nn.Module, avgpool: nn.Module) -> None:
        super().__init__()
        self.features = features
        self.avgpool = avgpool
        self.feature_dim = 512 * 7 * 7

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.avgpool(self.features(x)), 1)


def vgg19_bn(in_channels: int = 3) -> nn.Module:
    """torchvision VGG-19-BN convolutional part + adaptive 7x7 average pool, flattened; feature_dim 25088.

    Same layers and initialisation as ``torchvision.models.vgg19_bn(weights=None).features``, built without
    torchvision's 1000-class classifier (120M parameters we would initialise and throw away). Its heads
    are MLPs (:func:`vgg_mlp_head`), not single linear layers; :func:`build_model` adds them.
    """
    from torchvision.models.vgg import cfgs, make_layers

    features = make_layers(cfgs["E"], batch_norm=True)
    if in_channels != 3:
        features[0] = _replace_first_conv(features[0], in_channels)
    for m in features.modules():  # torchvision VGG's initialisation
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return _VGGFeatures(features, nn.AdaptiveAvgPool2d((7, 7)))


def vgg_mlp_head(
    in_features: int = 25088,
    out_features: int = 1,
    hidden: int = 4096,
    dropout: float = 0.5,
    init_std: float = 0.01,
) -> nn.Sequential:
    """VGG's classifier shape: Linear-ReLU-Dropout-Linear-ReLU-Dropout-Linear, weights N(0, init_std), bias 0.

    With ``out_features = C`` it is torchvision's VGG classifier; with ``out_features = 1`` it is the NAL
    attention branch for VGG-19-BN (25088 -> 4096 -> 4096 -> 1).
    """
    head = nn.Sequential(
        nn.Linear(in_features, hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(hidden, hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(hidden, out_features),
    )
    for m in head.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, init_std)
            nn.init.zeros_(m.bias)
    return head


_TIMM_HINT = 'inception_resnet_v2 needs timm: pip install "nalkit[models]" (or pip install timm)'


def inception_resnet_v2(in_channels: int = 3) -> nn.Module:
    """timm's InceptionResNetV2 without its classifier (``num_classes=0``); feature_dim 1536."""
    try:
        import timm
    except ImportError as e:
        raise ImportError(_TIMM_HINT) from e
    net = timm.create_model("inception_resnet_v2", pretrained=False, num_classes=0, in_chans=in_channels)
    net.feature_dim = int(net.num_features)
    return net


# --------------------------------------------------------------------------------------------------
# registry


def _linear_heads(backbone_fn: Callable[..., nn.Module]) -> Callable[..., AttentionModel]:
    def build(num_classes: int, in_channels: int = 3, **kwargs) -> AttentionModel:
        backbone = backbone_fn(in_channels=in_channels, **kwargs)
        return with_attention(backbone, backbone.feature_dim, num_classes)

    build.__doc__ = f"{backbone_fn.__name__} backbone with linear class and attention heads."
    return build


def _build_vgg19_bn(num_classes: int, in_channels: int = 3, dropout: float = 0.5) -> AttentionModel:
    backbone = vgg19_bn(in_channels=in_channels)
    d = backbone.feature_dim
    return with_attention(
        backbone,
        d,
        num_classes,
        attention_head=vgg_mlp_head(d, 1, dropout=dropout),
        classifier_head=vgg_mlp_head(d, num_classes, dropout=dropout),
    )


#: The registered models, each name mapped to ``builder(num_classes, in_channels=3, **kwargs) -> AttentionModel``.
MODELS: Registry[Callable[..., AttentionModel]] = Registry("model")
MODELS.add("small_cnn", _linear_heads(small_cnn))
MODELS.add("narrow_resnet", _linear_heads(narrow_resnet))
MODELS.add("cifar_resnet18", _linear_heads(cifar_resnet18))
MODELS.add("cifar_resnet34", _linear_heads(cifar_resnet34))
MODELS.add("resnet50", _linear_heads(resnet50))
MODELS.add("vgg19_bn", _build_vgg19_bn)
MODELS.add("inception_resnet_v2", _linear_heads(inception_resnet_v2))


def build_model(name: str, num_classes: int, in_channels: int = 3, **kwargs) -> AttentionModel:
    """Build the registered model ``name`` with both heads.

    Args:
        name: a name in :data:`MODELS`.
        num_classes: C, the class head's output size.
        in_channels: image channels (1 for Fashion-MNIST).
        **kwargs: passed to the backbone (``width`` for ``narrow_resnet``/``small_cnn``, ``pretrained``
            for ``resnet50``, ``dropout`` for ``vgg19_bn``).
    """
    return MODELS.get(name)(num_classes, in_channels=in_channels, **kwargs)
