"""NAL and the baselines behind one interface, so that the trainer treats all alike.

A :class:`Method` turns one mini-batch's model outputs into per-sample losses and owns whatever
per-sample state the method needs (the target store), including its checkpoint state and its
synchronisation across processes. The trainer calls, per batch,
``method.batch_loss(logits, attention_logits, labels, index, epoch)`` and then ``method.sync_batch(index,
dist)``, and per epoch ``method.end_epoch(epoch, dist)``; the state travels in checkpoints through
``state_dict``.

Each method is one class registered in :data:`METHODS` with its options dataclass (``Options``): the
config's ``method.<name>`` section (``method.nal.lam``, ``method.elr.beta``, ...). Adding a method is one
loss in :mod:`nalkit.losses` plus one class here::

    @dataclass
    class MyOptions:
        strength: float = 1.0

    @METHODS.register("mine")
    class Mine(Method):
        Options = MyOptions

        def __init__(self, opts: MyOptions, labels, num_classes, device):
            self.strength = opts.strength

        def batch_loss(self, logits, attention_logits, labels, index, epoch):
            return my_loss(logits, labels, self.strength, reduction="none")

after which ``method.name=mine method.mine.strength=2`` works in every config, grid and command line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from .config import ConfigError
from .losses import ce_loss, elr_loss, gce_loss, nal_loss, nal_phi_logit, sce_loss
from .registry import Registry
from .targets import UPDATE_WHEN, TargetStore, UpdateSchedule

if TYPE_CHECKING:
    from .config import Config
    from .distributed import Dist

Tensor = torch.Tensor


@dataclass
class NoOptions:
    """A method without options."""

    def check(self, prefix: str, cfg: Config, active: bool) -> None:
        """Raise ``ValueError`` naming ``<prefix>.<field>`` for a bad value (``active``: the selected method)."""


class Method:
    """Base class: a loss with optional per-sample state (the target store ``store``)."""

    Options: ClassVar[type] = NoOptions
    name: ClassVar[str] = "method"
    store: TargetStore | None = None

    @property
    def uses_attention(self) -> bool:
        """Whether the loss reads the attention branch (the trainer records tau only then)."""
        return False

    def batch_loss(
        self, logits: Tensor, attention_logits: Tensor | None, labels: Tensor, index: Tensor, epoch: int
    ) -> Tensor:
        """Per-sample losses, shape (B,). ``epoch`` is 1-indexed; ``index`` are dataset indices (B,)."""
        raise NotImplementedError

    def attention_logits(self, attention_logits: Tensor | None, labels: Tensor, index: Tensor,
                         epoch: int) -> Tensor | None:
        """The attention logits ``s`` (B,) the loss uses for this batch (tau = sigmoid(s)): the model's
        attention branch, unless the method replaces it (NAL's attention controls)."""
        return attention_logits

    def parameters(self) -> list[torch.nn.Parameter]:
        """Learned parameters the method owns besides the model's (the optimiser trains them with the model's)."""
        return []

    def gradient_factor_logit(self, logits: Tensor, attention_logits: Tensor | None, labels: Tensor,
                              index: Tensor, epoch: int) -> Tensor | None:
        """The logit of the per-sample factor that scales this batch's loss gradient (B,), or None where the
        method has none (the trainer records it: NAL's ``phi``, :func:`nalkit.losses.nal_phi_logit`)."""
        return None

    def sync_batch(self, index: Tensor, dist: Dist) -> None:
        """After a batch under several processes: every rank takes the rows the others updated."""
        if self.store is not None and dist.world > 1:
            self.store.sync_rows(index, dist)

    def end_epoch(self, epoch: int, dist: Dist | None = None) -> None:
        """Hook at the end of every training epoch (after the last batch's :meth:`Method.sync_batch`)."""

    def corrected_labels(self) -> np.ndarray | None:
        """argmax of the method's targets, or None for methods without targets."""
        return None if self.store is None else self.store.corrected_labels()

    def state_dict(self) -> dict:
        return {} if self.store is None else {"store": self.store.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if self.store is not None:
            self.store.load_state_dict(state["store"])


#: The registered methods, in the order the book shows them.
METHODS: Registry[type[Method]] = Registry("method")


def _require(ok: bool, message: str) -> None:
    # a ValueError naming the key: Config.validate reports it as a ConfigError
    if not ok:
        raise ValueError(message)


def _momentum(prefix: str, key: str, value: float) -> None:
    _require(0.0 <= value < 1.0, f"{prefix}.{key}={value} must be in [0, 1) (the paper uses 0.9)")


def _start(prefix: str, key: str, value: int, cfg: Config) -> None:
    _require(1 <= value <= cfg.optim.epochs,
             f"{prefix}.{key}={value} is beyond the {cfg.optim.epochs} training epochs; it must lie in "
             f"1..optim.epochs (set {prefix}.{key} <= optim.epochs)")


# --------------------------------------------------------------------------------------------
# the baselines (spec section 8)
# --------------------------------------------------------------------------------------------
@METHODS.register("ce")
class CE(Method):
    """Cross-entropy on the noisy labels."""

    name = "ce"

    def __init__(self, opts: NoOptions | None = None, labels: Any = None, num_classes: int = 0,
                 device: Any = "cpu") -> None:
        pass

    def batch_loss(self, logits, attention_logits, labels, index, epoch):
        return ce_loss(logits, labels, reduction="none")


@dataclass
class GCEOptions:
    """``method.gce``: generalised cross-entropy (Zhang & Sabuncu 2018)."""

    q: float = 0.7  # the exponent: 1 -> MAE, -> 0: CE

    def check(self, prefix: str, cfg: Config, active: bool) -> None:
        _require(0 < self.q <= 1, f"{prefix}.q={self.q} must be in (0, 1]")


@METHODS.register("gce")
class GCE(Method):
    """Generalised cross-entropy on the noisy labels."""

    Options = GCEOptions
    name = "gce"

    def __init__(self, opts: GCEOptions, labels: Any = None, num_classes: int = 0, device: Any = "cpu") -> None:
        self.q = opts.q

    def batch_loss(self, logits, attention_logits, labels, index, epoch):
        return gce_loss(logits, labels, q=self.q, reduction="none")


@dataclass
class SCEOptions:
    """``method.sce``: symmetric cross-entropy (Wang et al. 2019), ``alpha CE + beta RCE``."""

    alpha: float = 0.1  # weight of CE (CIFAR-10: 0.1, CIFAR-100: 6.0)
    beta: float = 1.0  # weight of reverse CE (CIFAR-10: 1.0, CIFAR-100: 0.1)

    def check(self, prefix: str, cfg: Config, active: bool) -> None:
        for key in ("alpha", "beta"):
            _require(getattr(self, key) >= 0, f"{prefix}.{key}={getattr(self, key)} must be >= 0")


@METHODS.register("sce")
class SCE(Method):
    """Symmetric cross-entropy on the noisy labels."""

    Options = SCEOptions
    name = "sce"

    def __init__(self, opts: SCEOptions, labels: Any = None, num_classes: int = 0, device: Any = "cpu") -> None:
        self.alpha, self.beta = opts.alpha, opts.beta

    def batch_loss(self, logits, attention_logits, labels, index, epoch):
        return sce_loss(logits, labels, self.alpha, self.beta, reduction="none")


@dataclass
class ELROptions:
    """``method.elr``: early-learning regularisation (Liu et al. 2020)."""

    beta: float = 0.7  # momentum of the target ensemble (CIFAR-10 sym: 0.7; asym and CIFAR-100: 0.9)
    lam: float = 3.0  # weight of log(1 - <t, p>) (CIFAR-10 sym: 3; asym: 1; CIFAR-100: 7)

    def check(self, prefix: str, cfg: Config, active: bool) -> None:
        _momentum(prefix, "beta", self.beta)


@METHODS.register("elr")
class ELR(Method):
    """ELR: temporal ensemble of renormalised, clamped predictions, updated every batch."""

    Options = ELROptions
    name = "elr"

    def __init__(self, opts: ELROptions, labels: np.ndarray, num_classes: int, device: Any = "cpu") -> None:
        self.lam = opts.lam
        self.store = TargetStore(labels, num_classes, alpha=opts.beta, clamp_min=None, init="zeros", device=device)

    def batch_loss(self, logits, attention_logits, labels, index, epoch):
        with torch.no_grad():
            p = F.softmax(logits.float(), dim=1).clamp(1e-4, 1.0 - 1e-4)
            self.store.update(index, p / p.sum(dim=1, keepdim=True))
        return elr_loss(logits, labels, self.store.get(index), self.lam, reduction="none")


@dataclass
class SELCOptions:
    """``method.selc``: self-ensemble label correction (Lu & He 2022)."""

    # First epoch of label correction (1-indexed); CE before it. SELC's own ``es`` is the last CE epoch
    # (its loop runs ``epoch <= es`` with CE), so SELC's es = 40 is ``start: 41`` here.
    start: int = 40
    alpha: float = 0.9  # momentum of the target ensemble

    def check(self, prefix: str, cfg: Config, active: bool) -> None:
        _momentum(prefix, "alpha", self.alpha)
        if active:
            _start(prefix, "start", self.start, cfg)


@METHODS.register("selc")
class SELC(Method):
    """SELC: CE until the turning point, then ``-sum t log p`` with ``t`` updated every batch."""

    Options = SELCOptions
    name = "selc"

    def __init__(self, opts: SELCOptions, labels: np.ndarray, num_classes: int, device: Any = "cpu") -> None:
        self.schedule = UpdateSchedule(start_epoch=opts.start, period=1, when="batch")
        self.store = TargetStore(labels, num_classes, alpha=opts.alpha, clamp_min=None, init="onehot", device=device)

    def batch_loss(self, logits, attention_logits, labels, index, epoch):
        if not self.schedule.active(epoch):
            return ce_loss(logits, labels, reduction="none")
        self.store.update(index, F.softmax(logits.float(), dim=1))
        return ce_loss(logits, self.store.get(index), reduction="none")


# --------------------------------------------------------------------------------------------
# NAL (spec sections 2-3)
# --------------------------------------------------------------------------------------------
@dataclass
class NALOptions:
    """``method.nal``: Noise Attention Learning."""

    lam: float = 0.5  # weight of -log(tau): the price of ignoring a sample (paper: 0.5 C10, 10 C100, 50 real)
    beta: float = 0.0  # authors' reverse-CE term ("RNAL"); 0 = the paper's loss
    alpha: float = 0.9  # momentum of target estimation
    es: int = 60  # first epoch of target estimation (1-indexed)
    update_period: int = 10  # update q only in epochs with epoch % update_period == 0
    update_when: str = "batch"  # "batch" (every mini-batch of such epochs) or "epoch" (once, at its end)
    estimate_targets: bool = True  # ablation: False keeps q at the one-hot noisy label (tau alone); True: the paper
    attention: bool = True  # ablation: False fixes tau at 1 (cross-entropy on the estimated q); True: the paper
    # where tau comes from (the attention controls of the mechanism chapter):
    #   "sample"   the attention branch, one tau per sample (the paper);
    #   "global"   one learned tau shared by every sample (a parameter trained with the model, logit 0 at start);
    #   "class"    one learned tau per given (noisy) class;
    #   "schedule" fixed, the same for every sample: in epoch e the mean tau that full NAL (this config with
    #              attention_mode "sample") had in epoch e, given by method.nal.tau_schedule
    attention_mode: str = "sample"
    # attention_mode "schedule": tau of epoch 1, 2, ..., optim.epochs, each in (0, 1). `nalkit run` and `nalkit train`
    # read it from full NAL's record before training and write it into the run's config; it is what that record
    # says, not a choice, so it is not part of the config digest (the run name)
    tau_schedule: list[float] | None = None

    def check(self, prefix: str, cfg: Config, active: bool) -> None:
        _require(self.lam >= 0, f"{prefix}.lam={self.lam} must be >= 0 (the paper searches 0.01 ... 50)")
        _require(self.beta >= 0, f"{prefix}.beta={self.beta} must be >= 0")
        _momentum(prefix, "alpha", self.alpha)
        _require(self.update_period >= 1, f"{prefix}.update_period={self.update_period} must be >= 1")
        _require(self.update_when in UPDATE_WHEN,
                 f"{prefix}.update_when={self.update_when!r} is not one of {', '.join(UPDATE_WHEN)}")
        if active and self.estimate_targets:
            _start(prefix, "es", self.es, cfg)
        _require(self.attention_mode in ATTENTION_MODES,
                 f"{prefix}.attention_mode={self.attention_mode!r} is not one of {', '.join(ATTENTION_MODES)}")
        _require(self.attention or self.attention_mode == "sample",
                 f"{prefix}.attention=false fixes tau at 1; {prefix}.attention_mode={self.attention_mode!r} needs "
                 f"{prefix}.attention=true")
        _require(self.attention or self.estimate_targets,
                 f"{prefix}.attention=false with {prefix}.estimate_targets=false is plain cross-entropy; "
                 f"use method.name=ce")
        if self.tau_schedule is not None:
            _require(self.attention_mode == "schedule",
                     f"{prefix}.tau_schedule is the tau of {prefix}.attention_mode=schedule; this config has "
                     f"attention_mode={self.attention_mode!r}: remove tau_schedule")
            _require(len(self.tau_schedule) == cfg.optim.epochs,
                     f"{prefix}.tau_schedule has {len(self.tau_schedule)} values, one per epoch of "
                     f"optim.epochs={cfg.optim.epochs} expected (full NAL's run must have as many epochs)")
            bad = [t for t in self.tau_schedule if not 0.0 < t < 1.0]
            _require(not bad, f"{prefix}.tau_schedule holds {bad[:3]}: every tau must lie in (0, 1)")

    def ready(self) -> None:
        """Raise :class:`nalkit.config.ConfigError` when a value that the code launching the run supplies is
        missing: the schedule control's ``tau_schedule``, which the trainer does not read from another record."""
        if self.attention and self.attention_mode == "schedule" and self.tau_schedule is None:
            raise ConfigError(
                "method.nal.attention_mode=schedule needs method.nal.tau_schedule, full NAL's mean tau per epoch; "
                "the trainer reads no other run's record: `nalkit run` and `nalkit train` read it from full NAL's "
                "record (this config with method.nal.attention_mode=sample) before training, and code calling "
                "nalkit.train.train sets it first (nalkit.results.load.tau_schedule_override)")


#: where NAL's tau comes from (``method.nal.attention_mode``; see :class:`NALOptions`)
ATTENTION_MODES = ("sample", "global", "class", "schedule")


@METHODS.register("nal")
class NAL(Method):
    """Noise Attention Learning: the NAL loss with target estimation."""

    Options = NALOptions
    name = "nal"

    def __init__(self, opts: NALOptions, labels: np.ndarray, num_classes: int, device: Any = "cpu") -> None:
        self.opts = opts
        self.lam, self.beta = opts.lam, opts.beta
        self.attention, self.estimate = opts.attention, opts.estimate_targets
        self.mode = opts.attention_mode if opts.attention else "sample"
        self.schedule = UpdateSchedule(start_epoch=opts.es, period=opts.update_period, when=opts.update_when)
        self.store = TargetStore(labels, num_classes, alpha=opts.alpha, clamp_min=1e-4, init="onehot", device=device)
        # the controls' own tau: one logit (global) or one per class, trained with the model; logit 0 = tau 0.5
        size = {"global": 1, "class": num_classes}.get(self.mode, 0)
        self.tau_logit = torch.nn.Parameter(torch.zeros(size, device=device)) if size else None
        opts.ready()
        self.tau_by_epoch = list(opts.tau_schedule or [])  # the "schedule" control's tau (index 0 = epoch 1)

    @property
    def uses_attention(self) -> bool:
        return self.attention

    def parameters(self) -> list[torch.nn.Parameter]:
        return [self.tau_logit] if self.tau_logit is not None else []

    def attention_logits(self, attention_logits, labels, index, epoch):
        if self.mode == "sample":
            return attention_logits
        if self.mode == "global":
            return self.tau_logit.expand(len(labels))
        if self.mode == "class":
            return self.tau_logit[labels]
        tau = self.tau_by_epoch[min(epoch, len(self.tau_by_epoch)) - 1]
        return torch.full((len(labels),), float(np.log(tau) - np.log1p(-tau)), device=labels.device)

    def batch_loss(self, logits, attention_logits, labels, index, epoch):
        if self.attention and attention_logits is None:
            raise ValueError("NAL needs a model with an attention branch (see nalkit.models.with_attention)")
        if self.attention:
            attention_logits = self.attention_logits(attention_logits, labels, index, epoch)
        if self.estimate:
            probs = F.softmax(logits.detach().float(), dim=1)
            # the targets are updated from this batch's forward pass *before* its loss (authors' order)
            if self.schedule.per_batch(epoch):
                self.store.update(index, probs)
            elif self.schedule.at_epoch_end(epoch):
                self.store.remember(index, probs)
        q = self.store.get(index)
        if not self.attention:  # tau = 1: the mixture is p and -lam log tau vanishes
            return ce_loss(logits, q, reduction="none")
        return nal_loss(logits, attention_logits, q, self.lam, self.beta, reduction="none")

    def gradient_factor_logit(self, logits, attention_logits, labels, index, epoch):
        if not self.attention:
            return None
        with torch.no_grad():
            s = self.attention_logits(attention_logits, labels, index, epoch)
            return nal_phi_logit(logits, s, self.store.get(index))

    def state_dict(self) -> dict:
        state = super().state_dict()
        if self.tau_logit is not None:
            state["tau_logit"] = self.tau_logit.detach().clone()
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if self.tau_logit is not None:
            with torch.no_grad():
                self.tau_logit.copy_(state["tau_logit"])

    def end_epoch(self, epoch: int, dist: Dist | None = None) -> None:
        if self.estimate and self.schedule.at_epoch_end(epoch):
            if dist is not None and dist.world > 1:
                self.store.sync_remembered(dist)
            self.store.update_from_epoch()


def check_ready(cfg: Any) -> None:
    """Raise :class:`nalkit.config.ConfigError` when the method that ``cfg`` (the config's ``method`` section)
    selects lacks a value that the code launching the run supplies (its options' ``ready()``, where they have one):
    the trainer calls it before it touches the data."""
    ready = getattr(cfg.options, "ready", None)
    if ready is not None:
        ready()


def build_method(cfg: Any, labels: np.ndarray, num_classes: int, device: Any) -> Method:
    """Build the method named by ``cfg.name`` from a :class:`nalkit.config.MethodConfig`.

    Args:
        cfg: the config's ``method`` section (its ``name`` and the options section of that name).
        labels: the (noisy) training labels (N,), indexed by dataset index: they seed target stores.
        num_classes: C.
        device: where per-sample state lives (the training device).
    """
    cls = METHODS.get(cfg.name)
    return cls(getattr(cfg, cfg.name), labels, num_classes, device)
