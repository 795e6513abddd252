"""Typed experiment configuration: YAML file + ``key=value`` overrides -> validated :class:`Config`.

A config has six sections (data, noise, model, method, optim, run). Every field is typed; values
from YAML or the command line are checked against those types, unknown keys are rejected with a
suggestion, and :meth:`Config.validate` checks ranges and cross-field rules. The resolved config
is written beside every run, and its hash names the run.

The ``method`` section holds the method's ``name`` and one options section per registered method
(:data:`nalkit.methods.METHODS`): ``method.nal.lam``, ``method.elr.beta``, ``method.selc.start``...
Configs and run records written before these sections existed used flat keys (``method.lam``,
``method.elr_beta``, ``method.selc_start``); they are still read, each mapped to its section
(:data:`LEGACY_METHOD_KEYS`), and a config hashes to the same run name in either spelling.
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


SCHEDULES = ("cosine_restarts", "multistep", "constant")
NORMALIZATIONS = ("dataset", "imagenet")
BALANCED_SAMPLING = ("fixed_subset", "every_epoch")

#: Flat ``method.*`` keys of configs written before the per-method sections, and where each now lives.
LEGACY_METHOD_KEYS = {
    "lam": "nal.lam", "beta": "nal.beta", "alpha": "nal.alpha", "es": "nal.es",
    "update_period": "nal.update_period", "update_when": "nal.update_when",
    "gce_q": "gce.q", "sce_alpha": "sce.alpha", "sce_beta": "sce.beta",
    "elr_beta": "elr.beta", "elr_lam": "elr.lam", "selc_start": "selc.start", "selc_alpha": "selc.alpha",
}
_FLAT_NAME = {new: old for old, new in LEGACY_METHOD_KEYS.items()}


@dataclass
class DataConfig:
    name: str = "fashion_mnist"  # a registered dataset (nalkit.datasets.DATASETS)
    root: str = "data"  # directory searched for the dataset (each in its usual sub-folder)
    train_subset: int | None = None  # class-stratified subset of the training set (CPU regime)
    subset_seed: int = 0  # seed of the train_subset, test_subset and noisy_val_size draws
    test_subset: int | None = None  # class-stratified subset of the test set (smoke tests only)
    augment: bool = True  # random crop (with padding) + horizontal flip
    crop_padding: int = 4  # in-memory datasets: 0 = no crop, flips only (the authors' ANIMAL-10N script)
    flip: bool = True  # random horizontal flip (with data.augment)
    val_fraction: float = 0.0  # noisy validation split held out of the *noisy* training set
    # Noisy validation set of this many images drawn (class-stratified, data.subset_seed) from the training
    # images *outside* data.train_subset, their labels corrupted by the same noise process (noise.mode,
    # noise.rate, noise.seed): the paper's tuning protocol without shrinking the training subset.
    noisy_val_size: int | None = None
    # Clothing1M: train on batches_per_epoch x optim.batch_size images per epoch, class-balanced by noisy label.
    # How they are drawn is data.balanced_sampling.
    batches_per_epoch: int | None = None
    # "fixed_subset": one class-balanced subset of that many images, drawn once (seeded by run.seed) before
    # training and reshuffled every epoch; targets q exist for it only (the authors' dataloader_clothing1m.py).
    # "every_epoch": fresh class-balanced batches from the whole training set every epoch (appendix B.3 read
    # literally: "for each epoch, we sample 2000 mini-batches").
    balanced_sampling: str = "fixed_subset"
    # Per-channel normalisation: "dataset" (the dataset's own constants, nalkit.datasets) or "imagenet"
    # (0.485/0.456/0.406, 0.229/0.224/0.225; the authors' ANIMAL-10N script).
    normalization: str = "dataset"
    drop_last: bool = False  # drop the last, partial training batch of every epoch (authors' ANIMAL-10N loader)
    # K-fold cross-validation of the training set (confident learning needs out-of-sample probabilities): with
    # cv_folds = K the training set (after train_subset) is cut into K folds (seeded by noise.seed), the run trains
    # on all but fold cv_fold, evaluates that fold against its noisy labels (heldout_acc) and keeps its predicted
    # probabilities from the evaluation epoch where that accuracy is highest (early stopping on the noisy labels)
    cv_folds: int | None = None  # K of K-fold cross-validation (None: train on the whole training set)
    cv_fold: int = 0  # the held-out fold, 0 .. cv_folds - 1
    num_workers: int = 4  # DataLoader workers for image-file datasets


@dataclass
class NoiseConfig:
    # a registered noise mode (nalkit.noise.MODES): none, sym, asym, pair, transition, or idn (instance-dependent,
    # Xia et al. 2020: a per-sample flip rate, and the image decides the noisy class)
    mode: str = "sym"
    # fraction in [0, 1] of training labels chosen for corruption (exactly int(rate * N)); for idn in (0, 1), the
    # centre of the per-sample flip rates (normal, std 0.1, truncated to [0, 1])
    rate: float = 0.4
    seed: int = 0  # noise seed, separate from the training seed
    exclude_true_class: bool = False  # co-teaching convention for "sym" (default: DivideMix's)
    transition: list[list[float]] | None = None  # C x C row-stochastic matrix for mode "transition"


@dataclass
class ModelConfig:
    name: str = "small_cnn"  # a registered model (nalkit.models.MODELS)
    width: int | None = None  # base width for small_cnn / narrow_resnet
    hidden: int | None = None  # small_cnn: fully-connected feature layer of this size (None: global pool)
    norm: str = "batch"  # small_cnn: "batch" or "group" (batch-independent, e.g. for exact multi-process checks)


class MethodConfig:
    """The ``method`` section: ``name`` and one options section per registered method.

    ``cfg.method.nal`` is NAL's :class:`nalkit.methods.NALOptions`, ``cfg.method.options`` the options of the
    method that ``name`` selects. Construct with sections as mappings or options objects, e.g.
    ``MethodConfig("nal", nal={"lam": 10, "es": 20})``.
    """

    def __init__(self, name: str = "nal", **sections: Any) -> None:
        from .methods import METHODS

        self.name = name
        self._options: dict[str, Any] = {n: METHODS.get(n).Options() for n in METHODS}
        for section, values in sections.items():
            if section in LEGACY_METHOD_KEYS:  # MethodConfig(name="nal", lam=0.5): the flat spelling
                self.set(section, values)
                continue
            if section not in self._options:
                raise ConfigError(f"unknown method section {section!r}{_suggest(section, list(self._options))}")
            if isinstance(values, dict):
                self.set_section(section, values)
            else:
                self._options[section] = values

    def __getattr__(self, name: str) -> Any:
        options = self.__dict__.get("_options", {})
        if name in options:
            return options[name]
        raise AttributeError(f"method config has no section or field {name!r}")

    @property
    def options(self) -> Any:
        """The options section of the selected method."""
        return self._options[self.name]

    def sections(self) -> dict[str, Any]:
        return dict(self._options)

    def set_section(self, section: str, values: dict[str, Any], *, source: str = "config") -> None:
        """Set the fields of the options section ``section`` from a mapping (``nal: {lam: 10}``)."""
        if section not in self._options:
            raise ConfigError(f"{source}: unknown method section 'method.{section}'"
                              f"{_suggest(section, list(self._options), prefix='method.')}")
        for key, value in values.items():
            self.set(f"{section}.{key}", value, source=source)

    def set(self, key: str, value: Any, *, source: str = "config") -> None:
        """Set ``name``, ``<method>.<field>`` or a legacy flat key (:data:`LEGACY_METHOD_KEYS`)."""
        key = LEGACY_METHOD_KEYS.get(key, key)
        if key == "name":
            self.name = _coerce(value, str, "method.name", source)
            return
        section, _, field_name = key.partition(".")
        if not field_name:
            raise ConfigError(f"{source}: unknown key 'method.{key}'{_suggest_method_key(key, self._options)}")
        if section not in self._options:
            raise ConfigError(f"{source}: unknown method section 'method.{section}' in 'method.{key}'"
                              f"{_suggest(section, list(self._options), prefix='method.')}")
        opts = self._options[section]
        names = [f.name for f in dataclasses.fields(opts)]
        if field_name not in names:
            raise ConfigError(f"{source}: unknown key 'method.{key}'"
                              f"{_suggest(field_name, names, prefix=f'method.{section}.')}")
        hint = typing.get_type_hints(type(opts))[field_name]
        setattr(opts, field_name, _coerce(value, hint, f"method.{key}", source))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **{n: dataclasses.asdict(o) for n, o in self._options.items()}}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MethodConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"MethodConfig(name={self.name!r}, {self.name}={self.options!r})"


@dataclass
class OptimConfig:
    epochs: int = 500  # training epochs (epochs are 1-indexed everywhere)
    batch_size: int = 64  # training images per mini-batch
    lr: float = 0.02  # SGD learning rate at the start of training (and of every cosine cycle)
    lr_min: float = 0.001  # cosine_restarts: the learning rate the cosine decays towards
    momentum: float = 0.9  # SGD momentum
    weight_decay: float = 1e-3  # SGD weight decay (L2 penalty coefficient)
    # "cosine_restarts", "multistep" or "constant"; the learning rate is constant within an epoch
    schedule: str = "cosine_restarts"
    restart_period: int = 10  # epochs per cosine cycle
    # multistep: the learning rate is multiplied by gamma after each of these epochs
    milestones: list[int] = field(default_factory=lambda: [50, 75])
    gamma: float = 0.2  # multistep: factor applied at each milestone


@dataclass
class RunConfig:
    seed: int = 0  # training seed (model init, shuffling, augmentation)
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", ...
    amp: bool = True  # bf16 autocast on CUDA (ignored on the CPU); the paper recipes set false (fp32)
    channels_last: bool = True  # channels-last memory format on CUDA
    compile: bool = False  # torch.compile the training step's model
    eval_every: int = 1  # test evaluation every k epochs (always at the last)
    # epochs whose per-sample tau, loss, prediction and argmax q are kept in arrays.npz
    snapshot_epochs: list[int] = field(default_factory=list)
    # per-training-sample arrays (snapshots, final epoch, detectors) are kept for at most this many samples: a
    # seeded sample stratified by class and clean/mislabeled (nalkit.records.record_sample), the whole training
    # set when smaller; 0 keeps none. Statistics over the training set are computed over all samples either way
    # (metrics.csv.gz). It shapes the record, not the training: not part of the config digest.
    record_samples: int = 5000
    eval_batch_size: int = 1024  # images per evaluation batch
    threads: int | None = None  # torch CPU threads; None keeps torch's default
    progress: bool = True  # show a progress bar on stderr


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
        """A config from a mapping of sections (as in a YAML file or a run record's ``config.yaml``)."""
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
                if section == "method" and isinstance(value, dict):  # method: {nal: {lam: 10}}
                    cfg.method.set_section(key, value, source=source)
                else:
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
        """Apply ``section.key=value`` strings (values read as YAML: ``0.5``, ``true``, ``[1, 5]``)."""
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"override {item!r} must look like section.key=value (e.g. method.nal.lam=0.5)")
            key, text = item.split("=", 1)
            try:
                value = yaml.safe_load(text) if text.strip() else None
            except yaml.YAMLError:
                value = text
            self.set(key.strip(), value, source="override")
        return self

    def set(self, dotted: str, value: Any, *, source: str = "config") -> None:
        """Set one field: ``section.key``, or ``method.<method>.<key>`` in the method section."""
        section, _, key = dotted.partition(".")
        if not key:
            raise ConfigError(f"{source}: key {dotted!r} must be section.key, e.g. method.nal.lam")
        if section not in _SECTIONS:
            raise ConfigError(f"{source}: unknown section {section!r}{_suggest(section, _SECTIONS)}")
        if section == "method":
            self.method.set(key, value, source=source)
            return
        obj = getattr(self, section)
        names = [f.name for f in dataclasses.fields(obj)]
        if key not in names:
            raise ConfigError(f"{source}: unknown key {dotted!r}{_suggest(key, names, prefix=section + '.')}")
        hint = typing.get_type_hints(type(obj))[key]
        setattr(obj, key, _coerce(value, hint, f"{section}.{key}", source))

    # -- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {name: (getattr(self, name).to_dict() if name == "method" else dataclasses.asdict(getattr(self, name)))
                for name in _SECTIONS}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def digest(self) -> str:
        """Hash of everything that affects the result (not the device/progress/threads knobs).

        Only values that differ from the defaults enter the hash, so adding a new field (with a default
        that keeps the old behaviour) never renames existing runs: defaults are never changed. The method
        section is hashed in its flat pre-section spelling (:data:`LEGACY_METHOD_KEYS`), so runs recorded
        before the per-method sections keep their names. ``method.nal.tau_schedule`` is left out: it is read from
        another run's record (full NAL's, for the schedule control), not chosen, and records written before the
        field existed name the same runs.
        """
        d = _non_default(_hash_view(self), _hash_view(Config()))
        for k in ("device", "progress", "threads", "compile", "record_samples"):
            d.get("run", {}).pop(k, None)
        d.get("method", {}).pop("nal.tau_schedule", None)
        d.get("data", {}).pop("num_workers", None)
        d.get("data", {}).pop("root", None)
        d = {k: v for k, v in d.items() if v}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]

    def run_name(self) -> str:
        """``<dataset>-<mode><rate>-<method>-s<seed>-n<noise seed>-<digest>``: the run directory's name."""
        rate = f"{self.noise.rate:g}" if self.noise.mode != "none" else "0"
        return (
            f"{self.data.name}-{self.noise.mode}{rate}-{self.method.name}-"
            f"s{self.run.seed}-n{self.noise.seed}-{self.digest()}"
        )

    # -- validation ---------------------------------------------------------------------------
    def validate(self) -> Config:
        """Check names, ranges and cross-field rules; raise :class:`ConfigError` with one clear line."""
        from .datasets import DATASETS
        from .methods import METHODS
        from .models import MODELS
        from .noise import ASYM_MAPS, MODES

        d, n, m, o, r = self.data, self.noise, self.method, self.optim, self.run
        _choice("data.name", d.name, DATASETS)
        _choice("noise.mode", n.mode, MODES)
        _choice("model.name", self.model.name, MODELS)
        _choice("method.name", m.name, METHODS)
        _choice("model.norm", self.model.norm, ("batch", "group"))
        if self.model.norm != "batch" and self.model.name != "small_cnn":
            raise ConfigError(f"model.norm={self.model.norm!r} applies to small_cnn only")
        _choice("optim.schedule", o.schedule, SCHEDULES)
        if not 0.0 <= n.rate <= 1.0:
            raise ConfigError(f"noise.rate={n.rate} is outside [0, 1]; write 0.4 for 40 % noise")
        if n.mode == "asym" and d.name not in ASYM_MAPS:
            raise ConfigError(
                f"noise.mode=asym has no class map for data.name={d.name!r}; maps exist for "
                f"{', '.join(ASYM_MAPS)} (use mode=transition with noise.transition for others)"
            )
        if n.mode == "idn" and not 0.0 < n.rate < 1.0:
            raise ConfigError(
                f"noise.rate={n.rate} is outside (0, 1), which noise.mode=idn needs (the centre of the per-sample "
                "flip rates, truncated to [0, 1]); write 0.2 or 0.4 for IDN-20 % / 40 %"
            )
        if n.mode == "transition" and n.transition is None:
            raise ConfigError("noise.mode=transition needs noise.transition, a C x C row-stochastic matrix")
        if n.mode != "none" and _real_noise(d.name):
            raise ConfigError(
                f"data.name={d.name!r} already has real label noise; set noise.mode=none "
                f"(got noise.mode={n.mode!r})"
            )
        if o.epochs < 1:
            raise ConfigError(f"optim.epochs={o.epochs} must be >= 1")
        for name, opts in m.sections().items():
            try:
                opts.check(f"method.{name}", self, active=name == m.name)
            except ValueError as err:
                raise ConfigError(str(err)) from None
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
        for key in ("train_subset", "test_subset", "noisy_val_size"):
            v = getattr(d, key)
            if v is not None and v < 1:
                raise ConfigError(f"data.{key}={v} must be a positive number of images")
        _choice("data.normalization", d.normalization, NORMALIZATIONS)
        _choice("data.balanced_sampling", d.balanced_sampling, BALANCED_SAMPLING)
        if d.batches_per_epoch is not None and d.batches_per_epoch < 1:
            raise ConfigError(f"data.batches_per_epoch={d.batches_per_epoch} must be a positive number of batches")
        if d.batches_per_epoch is None and d.balanced_sampling != "fixed_subset":
            raise ConfigError(f"data.balanced_sampling={d.balanced_sampling!r} applies only with "
                              f"data.batches_per_epoch; set both or neither")
        if d.noisy_val_size is not None:
            if d.train_subset is None:
                raise ConfigError("data.noisy_val_size draws its images from outside data.train_subset; "
                                  "set data.train_subset too (or use data.val_fraction)")
            if d.val_fraction > 0:
                raise ConfigError("data.noisy_val_size and data.val_fraction both make a noisy validation "
                                  "split; set only one")
        if d.cv_folds is not None:
            if d.cv_folds < 2 or not 0 <= d.cv_fold < d.cv_folds:
                raise ConfigError(f"data.cv_folds={d.cv_folds} and data.cv_fold={d.cv_fold}: need cv_folds >= 2 and "
                                  f"0 <= cv_fold < cv_folds")
            if d.val_fraction > 0 or d.batches_per_epoch is not None:
                raise ConfigError("data.cv_folds cuts the whole training set into folds; it does not combine with "
                                  "data.val_fraction or data.batches_per_epoch")
        elif d.cv_fold != 0:
            raise ConfigError(f"data.cv_fold={d.cv_fold} needs data.cv_folds (the number of folds)")
        if r.eval_every < 1:
            raise ConfigError(f"run.eval_every={r.eval_every} must be >= 1")
        if r.record_samples < 0:
            raise ConfigError(f"run.record_samples={r.record_samples}: must be >= 0 (0 keeps no per-sample arrays)")
        bad = [e for e in r.snapshot_epochs if not 1 <= e <= o.epochs]
        if bad:
            raise ConfigError(f"run.snapshot_epochs {bad} lie outside 1..{o.epochs}")
        for key in ("width", "hidden"):
            v = getattr(self.model, key)
            if v is not None and v < 1:
                raise ConfigError(f"model.{key}={v} must be >= 1")
        if self.model.hidden is not None and self.model.name != "small_cnn":
            raise ConfigError(f"model.hidden applies to small_cnn only, not model.name={self.model.name!r}")
        return self


_SECTIONS = [f.name for f in dataclasses.fields(Config)]


def _real_noise(dataset: str) -> bool:
    from .datasets import DATASETS

    return DATASETS.get(dataset).real_noise


def _hash_view(cfg: Config) -> dict[str, Any]:
    """``cfg.to_dict()`` with the method section flattened to its pre-section keys (what names runs)."""
    d = cfg.to_dict()
    method = d["method"]
    flat: dict[str, Any] = {"name": method.pop("name")}
    for section, options in method.items():
        for key, value in options.items():
            dotted = f"{section}.{key}"
            flat[_FLAT_NAME.get(dotted, dotted)] = value
    d["method"] = flat
    return d


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


def _suggest_method_key(key: str, options: dict[str, Any]) -> str:
    """Suggest ``method.<section>.<field>`` for a flat key (a typo of a legacy key or of a field name)."""
    targets = {"name": "name", **LEGACY_METHOD_KEYS}
    for section, opts in options.items():
        for f in dataclasses.fields(opts):
            targets.setdefault(f.name, f"{section}.{f.name}")
            targets[f"{section}.{f.name}"] = f"{section}.{f.name}"
    close = difflib.get_close_matches(key, list(targets), n=1)
    if close:
        return f" (did you mean 'method.{targets[close[0]]}'?)"
    return " (method keys are method.name and method.<method>.<option>, e.g. method.nal.lam)"


def _choice(key: str, value: str, options: Any) -> None:
    options = tuple(options)
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


# --------------------------------------------------------------------------------------------
# documentation of the fields (the book's API reference renders these tables)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FieldDoc:
    """One configuration key, as the API reference lists it.

    Attributes:
        key: the dotted key of YAML files and ``key=value`` overrides, e.g. ``optim.lr`` or ``method.nal.lam``.
        type: the field's annotation as written, e.g. ``int | None``.
        default: the default value.
        doc: the comment beside the field in the source (several comment lines joined), or ``""``.
    """

    key: str
    type: str
    default: Any
    doc: str


def _field_comments(cls: type) -> dict[str, str]:
    """``{field name: comment}``: the ``#`` comment on a field's line, after the comment lines right above it."""
    import ast
    import inspect
    import io
    import textwrap
    import tokenize

    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):  # no source (a frozen application): the tables go without comments
        return {}
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    lines = source.splitlines()
    out = {}
    for node in ast.parse(source).body[0].body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            above, line = [], node.lineno - 1
            while line >= 1 and lines[line - 1].lstrip().startswith("#"):
                above.insert(0, comments.get(line, ""))
                line -= 1
            block, trailing = " ".join(p for p in above if p), comments.get(node.lineno, "")
            joint = " " if block.endswith((".", ":", ";")) else "; "
            out[node.target.id] = joint.join(p for p in (block, trailing) if p)
    return out


def _section_docs(prefix: str, obj: Any) -> list[FieldDoc]:
    comments = _field_comments(type(obj))
    # with postponed annotations (this module, nalkit.methods) f.type is the annotation as written
    return [FieldDoc(f"{prefix}.{f.name}", f.type if isinstance(f.type, str) else str(f.type), getattr(obj, f.name),
                     comments.get(f.name, ""))
            for f in dataclasses.fields(obj)]


def describe_fields(section: str | None = None) -> list[FieldDoc]:
    """Every configuration key with its type, default and the comment beside its field in the source.

    Args:
        section: ``"data"``, ``"noise"``, ``"model"``, ``"method"`` (``method.name`` only), ``"optim"``,
            ``"run"``, or ``"method.<method>"`` for one method's options (``"method.nal"``); ``None``: all of
            them, in the order of a config file.

    Returns:
        One :class:`FieldDoc` per key, in the order of the dataclass fields.

    Raises:
        ConfigError: unknown section.
    """
    cfg = Config()
    method_sections = [f"method.{name}" for name in cfg.method.sections()]
    known = [*_SECTIONS, *method_sections]
    if section is not None and section not in known:
        raise ConfigError(f"unknown config section {section!r}{_suggest(section, known)}")
    docs: list[FieldDoc] = []
    for name in _SECTIONS:
        if name == "method":
            if section in (None, "method"):
                docs.append(FieldDoc("method.name", "str", cfg.method.name,
                                     "the method to train: a registered method (nalkit.methods.METHODS)"))
            for method, opts in cfg.method.sections().items():
                if section in (None, f"method.{method}"):
                    docs.extend(_section_docs(f"method.{method}", opts))
        elif section in (None, name):
            docs.extend(_section_docs(name, getattr(cfg, name)))
    return docs
