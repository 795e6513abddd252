"""Typed experiment configuration: YAML file + ``key=value`` overrides -> validated :class:`Config`.

A config has six sections (data, noise, model, method, optim, run). Every field is typed; values
from YAML or the command line are checked against those types, unknown keys are rejected with a
suggestion, and :meth:`Config.validate` checks ranges and cross-field rules. The resolved config
is written beside every run, and its hash names the run.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the key, the value and what is expected."""


DATASETS = ("fashion_mnist", "cifar10", "cifar100", "animal10n", "clothing1m", "webvision")
NOISE_MODES = ("none", "sym", "asym", "pair", "transition")
ASYM_DATASETS = ("cifar10", "cifar100", "fashion_mnist")
METHODS = ("ce", "gce", "sce", "elr", "selc", "nal")
MODELS = (
    "small_cnn", "narrow_resnet", "cifar_resnet18", "cifar_resnet34",
    "resnet50", "vgg19_bn", "inception_resnet_v2",
)
SCHEDULES = ("cosine_restarts", "multistep", "constant")


@dataclass
class DataConfig:
    name: str = "fashion_mnist"
    root: str = "data"
    train_subset: int | None = None  # class-stratified subset of the training set (CPU regime)
    subset_seed: int = 0
    test_subset: int | None = None  # class-stratified subset of the test set (smoke tests only)
    augment: bool = True  # random crop (with padding) + horizontal flip
    crop_padding: int = 4
    flip: bool = True
    val_fraction: float = 0.0  # noisy validation split held out of the *noisy* training set
    batches_per_epoch: int | None = None  # Clothing1M: class-balanced mini-batches per epoch
    num_workers: int = 4  # DataLoader workers for image-file datasets


@dataclass
class NoiseConfig:
    mode: str = "sym"
    rate: float = 0.4
    seed: int = 0  # noise seed, separate from the training seed
    exclude_true_class: bool = False  # co-teaching convention for "sym" (default: DivideMix's)
    transition: list[list[float]] | None = None  # C x C row-stochastic matrix for mode "transition"


@dataclass
class ModelConfig:
    name: str = "small_cnn"
    width: int | None = None  # base width for small_cnn / narrow_resnet
    hidden: int | None = None  # small_cnn: fully-connected feature layer of this size (None: global pool)
    norm: str = "batch"  # small_cnn: "batch" or "group" (batch-independent, e.g. for exact multi-process checks)


@dataclass
class MethodConfig:
    name: str = "nal"
    # NAL (spec sections 2-3)
    lam: float = 0.5
    beta: float = 0.0  # authors' reverse-CE term ("RNAL"); 0 = the paper's loss
    alpha: float = 0.9
    es: int = 60  # first epoch of target estimation (1-indexed)
    update_period: int = 10  # update q only in epochs with epoch % period == 0
    update_when: str = "batch"  # "batch" (every mini-batch of such epochs) or "epoch" (once, at its end)
    # baselines (spec section 8)
    gce_q: float = 0.7
    sce_alpha: float = 0.1
    sce_beta: float = 1.0
    elr_beta: float = 0.7
    elr_lam: float = 3.0
    selc_start: int = 40
    selc_alpha: float = 0.9


@dataclass
class OptimConfig:
    epochs: int = 500
    batch_size: int = 64
    lr: float = 0.02
    lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 1e-3
    schedule: str = "cosine_restarts"
    restart_period: int = 10  # epochs per cosine cycle
    milestones: list[int] = field(default_factory=lambda: [50, 75])
    gamma: float = 0.2


@dataclass
class RunConfig:
    seed: int = 0  # training seed (model init, shuffling, augmentation)
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", ...
    amp: bool = True  # bf16 autocast on CUDA (ignored on the CPU)
    channels_last: bool = True  # on CUDA
    compile: bool = False
    eval_every: int = 1  # test evaluation every k epochs (always at the last)
    snapshot_epochs: list[int] = field(default_factory=list)  # per-sample tau/loss/q snapshots
    eval_batch_size: int = 1024
    threads: int | None = None  # torch CPU threads; None keeps torch's default
    progress: bool = True


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None, *, source: str = "config") -> Config:
        raw = raw or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: expected a mapping of sections, got {type(raw).__name__}")
        cfg = cls()
        for section, values in raw.items():
            if section not in _SECTIONS:
                raise ConfigError(f"{source}: unknown section {section!r}{_suggest(section, _SECTIONS)}")
            if values is None:
                continue
            if not isinstance(values, dict):
                raise ConfigError(
                    f"{source}: section {section!r} must be a mapping, got {type(values).__name__}"
                )
            for key, value in values.items():
                cfg.set(f"{section}.{key}", value, source=source)
        return cfg

    @classmethod
    def load(cls, path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
        """Read a YAML config (``None`` = defaults) and apply ``section.key=value`` overrides."""
        raw: dict = {}
        if path is not None:
            p = Path(path)
            if not p.is_file():
                raise ConfigError(f"config file {str(p)!r} does not exist")
            try:
                raw = yaml.safe_load(p.read_text()) or {}
            except yaml.YAMLError as err:
                raise ConfigError(f"config file {str(p)!r} is not valid YAML: {err}") from None
        cfg = cls.from_dict(raw, source=str(path) if path else "config")
        cfg.apply_overrides(overrides)
        return cfg

    def apply_overrides(self, overrides: list[str] | tuple[str, ...]) -> Config:
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"override {item!r} must look like section.key=value (e.g. method.lam=0.5)")
            key, text = item.split("=", 1)
            try:
                value = yaml.safe_load(text) if text.strip() else None
            except yaml.YAMLError:
                value = text
            self.set(key.strip(), value, source="override")
        return self

    def set(self, dotted: str, value: Any, *, source: str = "config") -> None:
        parts = dotted.split(".")
        if len(parts) != 2:
            raise ConfigError(f"{source}: key {dotted!r} must be section.key, e.g. method.lam")
        section, key = parts
        if section not in _SECTIONS:
            raise ConfigError(f"{source}: unknown section {section!r}{_suggest(section, _SECTIONS)}")
        obj = getattr(self, section)
        names = [f.name for f in dataclasses.fields(obj)]
        if key not in names:
            raise ConfigError(f"{source}: unknown key {dotted!r}{_suggest(key, names, prefix=section + '.')}")
        hint = typing.get_type_hints(type(obj))[key]
        setattr(obj, key, _coerce(value, hint, f"{section}.{key}", source))

    # -- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def digest(self) -> str:
        """Hash of everything that affects the result (not the device/progress/threads knobs)."""
        # Only values that differ from the defaults enter the hash, so adding a new field (with a
        # default that keeps the old behaviour) never renames existing runs. Defaults are never changed.
        d = _non_default(self.to_dict(), Config().to_dict())
        for k in ("device", "progress", "threads", "compile"):
            d.get("run", {}).pop(k, None)
        d.get("data", {}).pop("num_workers", None)
        d.get("data", {}).pop("root", None)
        d = {k: v for k, v in d.items() if v}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]

    def run_name(self) -> str:
        rate = f"{self.noise.rate:g}" if self.noise.mode != "none" else "0"
        return (
            f"{self.data.name}-{self.noise.mode}{rate}-{self.method.name}-"
            f"s{self.run.seed}-n{self.noise.seed}-{self.digest()}"
        )

    # -- validation ---------------------------------------------------------------------------
    def validate(self) -> Config:
        """Check ranges and cross-field rules; raise :class:`ConfigError` with one clear line."""
        d, n, m, o, r = self.data, self.noise, self.method, self.optim, self.run
        _choice("data.name", d.name, DATASETS)
        _choice("noise.mode", n.mode, NOISE_MODES)
        _choice("model.name", self.model.name, MODELS)
        _choice("method.name", m.name, METHODS)
        _choice("model.norm", self.model.norm, ("batch", "group"))
        if self.model.norm != "batch" and self.model.name != "small_cnn":
            raise ConfigError(f"model.norm={self.model.norm!r} applies to small_cnn only")
        _choice("optim.schedule", o.schedule, SCHEDULES)
        _choice("method.update_when", m.update_when, ("batch", "epoch"))
        if not 0.0 <= n.rate <= 1.0:
            raise ConfigError(f"noise.rate={n.rate} is outside [0, 1]; write 0.4 for 40 % noise")
        if n.mode == "asym" and d.name not in ASYM_DATASETS:
            raise ConfigError(
                f"noise.mode=asym has no class map for data.name={d.name!r}; maps exist for "
                f"{', '.join(ASYM_DATASETS)} (use mode=transition with noise.transition for others)"
            )
        if n.mode == "transition" and n.transition is None:
            raise ConfigError("noise.mode=transition needs noise.transition, a C x C row-stochastic matrix")
        if n.mode != "none" and d.name in ("animal10n", "clothing1m", "webvision"):
            raise ConfigError(
                f"data.name={d.name!r} already has real label noise; set noise.mode=none "
                f"(got noise.mode={n.mode!r})"
            )
        if m.lam < 0:
            raise ConfigError(f"method.lam={m.lam} must be >= 0 (the paper searches 0.01 ... 50)")
        if m.beta < 0:
            raise ConfigError(f"method.beta={m.beta} must be >= 0")
        for key in ("alpha", "selc_alpha", "elr_beta"):
            v = getattr(m, key)
            if not 0.0 <= v < 1.0:
                raise ConfigError(f"method.{key}={v} must be in [0, 1) (the paper uses 0.9)")
        if not 0 < m.gce_q <= 1:
            raise ConfigError(f"method.gce_q={m.gce_q} must be in (0, 1]")
        if o.epochs < 1:
            raise ConfigError(f"optim.epochs={o.epochs} must be >= 1")
        if m.name == "nal" and not 1 <= m.es <= o.epochs:
            raise ConfigError(
                f"method.es={m.es} is beyond the {o.epochs} training epochs; target estimation would "
                f"never start (set method.es <= optim.epochs)"
            )
        if m.name == "selc" and not 1 <= m.selc_start <= o.epochs:
            raise ConfigError(f"method.selc_start={m.selc_start} must be within 1..optim.epochs={o.epochs}")
        if m.update_period < 1:
            raise ConfigError(f"method.update_period={m.update_period} must be >= 1")
        if o.batch_size < 1:
            raise ConfigError(f"optim.batch_size={o.batch_size} must be >= 1")
        if o.lr <= 0 or o.lr_min < 0 or o.lr_min > o.lr:
            raise ConfigError(f"need 0 <= optim.lr_min <= optim.lr and lr > 0; got lr={o.lr}, lr_min={o.lr_min}")
        if o.weight_decay < 0 or not 0 <= o.momentum < 1:
            raise ConfigError(f"optim.weight_decay={o.weight_decay} must be >= 0 and momentum={o.momentum} in [0, 1)")
        if o.restart_period < 1:
            raise ConfigError(f"optim.restart_period={o.restart_period} must be >= 1")
        if not 0.0 <= d.val_fraction < 1.0:
            raise ConfigError(f"data.val_fraction={d.val_fraction} must be in [0, 1)")
        if d.train_subset is not None and d.train_subset < 1:
            raise ConfigError(f"data.train_subset={d.train_subset} must be a positive number of images")
        if r.eval_every < 1:
            raise ConfigError(f"run.eval_every={r.eval_every} must be >= 1")
        bad = [e for e in r.snapshot_epochs if not 1 <= e <= o.epochs]
        if bad:
            raise ConfigError(f"run.snapshot_epochs {bad} lie outside 1..{o.epochs}")
        if d.test_subset is not None and d.test_subset < 1:
            raise ConfigError(f"data.test_subset={d.test_subset} must be a positive number of images")
        for key in ("width", "hidden"):
            v = getattr(self.model, key)
            if v is not None and v < 1:
                raise ConfigError(f"model.{key}={v} must be >= 1")
        if self.model.hidden is not None and self.model.name != "small_cnn":
            raise ConfigError(f"model.hidden applies to small_cnn only, not model.name={self.model.name!r}")
        return self


_SECTIONS = [f.name for f in dataclasses.fields(Config)]


def _non_default(values: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for section, fields in values.items():
        changed = {k: v for k, v in fields.items() if v != defaults[section][k]}
        if changed:
            out[section] = changed
    return out


def _suggest(word: str, options: list[str] | tuple[str, ...], prefix: str = "") -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    known = ", ".join(prefix + o for o in options)
    return f" (did you mean {prefix + close[0]!r}?)" if close else f" (known: {known})"


def _choice(key: str, value: str, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ConfigError(f"{key}={value!r} is not one of {', '.join(options)}{_suggest(str(value), options)}")


def _coerce(value: Any, hint: Any, key: str, source: str) -> Any:
    """Check ``value`` against the annotation ``hint``; int -> float is the only conversion."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key, source)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: {key} must be a list, got {value!r}")
        return [_coerce(v, args[0], f"{key}[{i}]", source) for i, v in enumerate(value)]
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{source}: {key} must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{source}: {key} must be an integer, got {value!r}")
    if hint is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            # YAML 1.1 reads "1e-3" (no dot) as a string; accept it as the number it spells
            try:
                number = float(value)
            except ValueError:
                pass
        if number is not None:
            if not math.isfinite(number):
                raise ConfigError(f"{source}: {key} must be a finite number, got {value!r}")
            return number
        raise ConfigError(f"{source}: {key} must be a number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{source}: {key} must be a string, got {value!r}")
    return value
