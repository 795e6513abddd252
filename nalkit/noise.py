"""Synthetic label noise, with the DivideMix conventions the NAL authors use.

Noise is *data*: :func:`save_noise` writes the noisy labels to a content-addressed ``.npz`` file with a
checksum, and :func:`load_or_create_noise` reuses that file on every later run, so a result never depends
on re-running a random generator under a different NumPy. The noise seed is its own number, separate from
the training seed, and no function here touches NumPy's or PyTorch's global random state.

Generator, version 1 (``NOISE_GENERATOR_VERSION``), with ``rng = np.random.default_rng(seed)``:

1. ``perm = rng.permutation(N)``; the chosen indices are ``perm[:int(rate * N)]`` (one global shuffle,
   exactly ``int(rate * N)`` indices, as in DivideMix).
2. Per mode, for the chosen indices in that order:

   - ``"sym"``: ``rng.integers(0, C, size=k)`` -- uniform over all C classes, the true class included,
     so the actual flip rate is about ``rate * (1 - 1/C)``. With ``exclude_true_class=True`` (co-teaching
     convention) ``clean + rng.integers(1, C, size=k)`` modulo C -- uniform over the other C - 1 classes.
   - ``"asym"``: the dataset's class map (:data:`ASYM_MAPS`); unmapped classes keep their label.
   - ``"pair"``: ``c -> (c + 1) mod C``.

``"transition"`` skips step 1: every sample ``i`` draws its noisy label from row ``clean[i]`` of the
given matrix, by inverse-CDF sampling of ``u = rng.random(N)``. ``"none"`` returns the labels unchanged.

``"idn"`` (instance-dependent noise) also skips step 1. It is the part-dependent generator of Xia et al.,
"Part-dependent Label Noise: Towards Instance-dependent Label Noise" (NeurIPS 2020), the one SELC, CORES
and most later papers use for "IDN-20/40 %" on CIFAR. It needs the images, an (N, d) ``features`` array
(one flattened image per row), and draws, in this order:

1. ``q``: N per-sample flip rates from the normal ``N(rate, IDN_STD**2)`` truncated to [0, 1]
   (rejection sampling: draw ``rng.normal(rate, IDN_STD, size=missing)`` and keep the draws in [0, 1],
   until N are kept, in draw order);
2. ``u = rng.random(N)``;
3. for every class ``c = 0 .. C-1`` in order (absent classes too), a projection
   ``W_c = rng.standard_normal((d, C))``.

Sample ``i`` of clean class ``y`` gets the row ``p_i``: the logits ``z = features[i] @ W_y`` (float64), the
true class's logit set to ``-inf``, ``p_i = q_i * softmax(z)`` spread over the C - 1 other classes and
``p_i[y] = 1 - q_i``; its noisy label is the inverse CDF of ``p_i`` at ``u_i``. So *whether* a sample
flips depends only on its ``q_i`` (drawn independently of the image: the flip probability is ``q_i``
whatever the image), and the image decides *where* a flipped label goes. The mean flip rate is the
truncated normal's mean, :func:`idn_expected_rate` (0.2055 at rate 0.2, 0.4000 at 0.4), not exactly the
nominal rate. The scale of the features sets the softmax's temperature: Xia et al.'s code projects the raw
pixel values (uint8 cast to float, 0..255, no mean/std normalisation), where the logits spread over
thousands and the softmax is in effect an argmax; the same Fashion-MNIST images scaled to [0, 1] give logits
of standard deviation ~12, the top class 0.92 of the flip mass on average, and 10-11 % of the flipped labels
another class. The features are used as given, and their digest (:func:`features_digest`) is part of the
noise key, so a noise file is only reused for the same images in the same scaling.

The modes are the :data:`MODES` registry: step 2 of ``"sym"``, ``"asym"`` and ``"pair"`` is the
:data:`Corruption` function registered under that name, so a new mode of the same kind (corrupt a shuffled
``int(rate * N)`` indices) is one registered function; ``"none"``, ``"transition"`` and ``"idn"`` are
registered without one and handled by :func:`inject_noise` itself.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._io import atomic_write_bytes
from .registry import Registry, UnknownNameError

__all__ = [
    "ASYM_MAPS",
    "IDN_STD",
    "MODES",
    "NOISE_GENERATOR_VERSION",
    "Corruption",
    "NoiseFileError",
    "NoisyLabels",
    "asym_map",
    "features_digest",
    "idn_expected_rate",
    "inject_noise",
    "labels_digest",
    "load_noise",
    "load_or_create_noise",
    "noise_key",
    "save_noise",
    "transition_digest",
]

#: The version of the generator (the algorithm in the module docstring), bumped whenever it changes. It is
#: part of every key, so files made by an older generator are never mistaken for the new one's.
NOISE_GENERATOR_VERSION = 1

#: A corruption, step 2 of the generator. ``corrupt(src, num_classes, rng, dataset, exclude_true_class)``
#: maps ``src``, the (k,) int64 clean labels of the chosen indices in shuffle order, to their (k,) noisy
#: labels, drawing randomness only from ``rng`` (right after the shuffle of step 1). It may raise
#: ``ValueError`` for settings it cannot serve (e.g. ``"asym"`` without a dataset map).
Corruption = Callable[[np.ndarray, int, np.random.Generator, str | None, bool], np.ndarray]

#: The noise modes ``"none"``, ``"sym"``, ``"asym"``, ``"pair"``, ``"transition"`` and ``"idn"``, in this
#: order. ``name in MODES`` and iteration give the names; ``MODES.get(name)`` is the mode's
#: :data:`Corruption`, or ``None`` for ``"none"``, ``"transition"`` and ``"idn"``, which choose no indices by
#: shuffle (see the module docstring) and which :func:`inject_noise` handles itself.
MODES: Registry[Corruption | None] = Registry("noise mode")

#: Standard deviation of the per-sample flip rates of mode ``"idn"`` (Xia et al.'s ``norm_std``, 0.1 in their
#: code and in every paper that reports IDN-20/40 %).
IDN_STD = 0.1

# rows of the (N, d) features projected at a time by mode "idn": bounds the float64 copy (4096 x 3072 x 8 B
# = 100 MB for CIFAR) whatever N is
_IDN_CHUNK = 4096

_NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "fashion_mnist": 10}


def _cifar100_block_map() -> dict[int, int]:
    # Next class inside blocks of five consecutive *indices* (not the semantic superclasses).
    return {i: 5 * (i // 5) + ((i % 5) + 1) % 5 for i in range(100)}


#: Asymmetric (class-dependent) noise maps, ``{dataset: {clean class: noisy class}}``.
#: Classes absent from a map keep their label.
ASYM_MAPS: Mapping[str, Mapping[int, int]] = types.MappingProxyType(
    {
        # truck -> automobile, bird -> airplane, deer -> horse, cat <-> dog
        "cifar10": types.MappingProxyType({9: 1, 2: 0, 4: 7, 3: 5, 5: 3}),
        "cifar100": types.MappingProxyType(_cifar100_block_map()),
        # T-shirt/top <-> Shirt, Pullover <-> Coat, Sandal -> Sneaker
        "fashion_mnist": types.MappingProxyType({0: 6, 6: 0, 2: 4, 4: 2, 5: 7}),
    }
)

_DATASET_NAME = re.compile(r"^[A-Za-z0-9_.]+$")
_KEY_DATASET_FOR_NONE = "custom"


class NoiseFileError(ValueError):
    """A noise file is unreadable, corrupt, or does not match what the caller expected."""


@dataclass(frozen=True, eq=False)
class NoisyLabels:
    """Noisy labels together with the clean labels and how they were made.

    Attributes:
        labels: (N,) int64 noisy labels.
        clean_labels: (N,) int64 copy of the clean labels given to :func:`inject_noise`.
        num_classes: C.
        mode: one of :data:`MODES`.
        nominal_rate: the requested rate (fraction of indices chosen). For ``"none"`` 0; for
            ``"transition"`` the expected flip rate ``mean_i (1 - T[clean_i, clean_i])``; for ``"idn"``
            the centre of the truncated normal of the per-sample flip rates (their mean is
            :func:`idn_expected_rate` of it).
        seed: the noise seed.
        dataset: dataset name, or ``None`` for custom labels.
        exclude_true_class: ``"sym"`` only: noisy class drawn among the other C - 1 classes.
        chosen: (k,) int64 indices chosen by the shuffle, ``k = int(rate * N)`` (all N for
            ``"transition"`` and ``"idn"``). A chosen label may keep its class (sym, asym on an unmapped
            class, and every sample of transition and idn).
        given_transition: the (C, C) matrix given for ``"transition"`` mode, else ``None``.
            Not to be confused with :attr:`transition`, the empirical matrix of the result.
        generator_version: :data:`NOISE_GENERATOR_VERSION` of the generator that made the labels.
        features_digest: ``"idn"`` only: :func:`features_digest` of the features the labels were made
            from, else ``None``.
    """

    labels: np.ndarray
    clean_labels: np.ndarray
    num_classes: int
    mode: str
    nominal_rate: float
    seed: int
    dataset: str | None = None
    exclude_true_class: bool = False
    chosen: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    given_transition: np.ndarray | None = None
    generator_version: int = NOISE_GENERATOR_VERSION
    features_digest: str | None = None

    @property
    def num_labels(self) -> int:
        """N, the number of labels."""
        return int(self.labels.shape[0])

    @property
    def is_noisy(self) -> np.ndarray:
        """(N,) bool mask, True where the noisy label differs from the clean one."""
        return self.labels != self.clean_labels

    @property
    def actual_rate(self) -> float:
        """Fraction of labels that differ from the clean label."""
        return float(self.is_noisy.mean()) if self.num_labels else 0.0

    @property
    def transition(self) -> np.ndarray:
        """The empirical transition matrix, (C, C) float64; row = clean class, column = noisy class.

        Rows of classes present in the clean labels sum to 1; rows of absent classes are 0.
        """
        c = self.num_classes
        counts = np.bincount(self.clean_labels * c + self.labels, minlength=c * c).reshape(c, c)
        counts = counts.astype(np.float64)
        totals = counts.sum(axis=1, keepdims=True)
        return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)

    @property
    def transition_digest(self) -> str | None:
        """Short sha256 of :attr:`given_transition`, or ``None``."""
        return None if self.given_transition is None else transition_digest(self.given_transition)

    @property
    def key(self) -> str:
        """Content address of this noise; the file name stem used by :func:`save_noise`."""
        return noise_key(
            self.dataset,
            self.mode,
            None if self.mode == "transition" else self.nominal_rate,
            self.seed,
            self.num_labels,
            self.exclude_true_class,
            self.transition_digest,
            labels_digest=labels_digest(self.clean_labels),
            features_digest=self.features_digest,
        )

    def metadata(self) -> dict[str, Any]:
        """JSON-serialisable description (everything but the arrays), as stored in noise files."""
        meta = {
            "key": self.key,
            "dataset": self.dataset,
            "mode": self.mode,
            "nominal_rate": self.nominal_rate,
            "actual_rate": self.actual_rate,
            "seed": self.seed,
            "num_labels": self.num_labels,
            "num_classes": self.num_classes,
            "exclude_true_class": self.exclude_true_class,
            "transition_digest": self.transition_digest,
            "generator_version": self.generator_version,
        }
        if self.features_digest is not None:  # idn only: the files of the other modes stay as they were
            meta["features_digest"] = self.features_digest
        return meta

    def __repr__(self) -> str:
        return (
            f"NoisyLabels(key={self.key!r}, nominal_rate={self.nominal_rate:.4f}, "
            f"actual_rate={self.actual_rate:.4f}, num_classes={self.num_classes})"
        )


# --------------------------------------------------------------------------------------------------
# validation helpers


def _check_mode(mode: Any) -> str:
    if not isinstance(mode, str) or mode not in MODES:
        raise UnknownNameError(MODES.unknown(mode))  # a ValueError naming the modes and the closest one
    return mode


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        # ValueError, not TypeError: every bad argument of this module is one ValueError for callers to catch
        raise ValueError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")  # noqa: TRY004
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def _check_rate(rate: Any) -> float:
    if isinstance(rate, (bool, np.bool_)) or not isinstance(rate, (int, float, np.integer, np.floating)):
        raise ValueError(f"rate must be a number in [0, 1], got {rate!r}")  # noqa: TRY004 (as in _check_int)
    rate = float(rate)
    if not (0.0 <= rate <= 1.0):  # also rejects NaN
        raise ValueError(f"rate must be in [0, 1], got {rate!r}")
    return rate


def _check_idn_rate(rate: Any) -> float:
    r = _check_rate(rate)
    if not 0.0 < r < 1.0:
        raise ValueError(
            f"mode 'idn' needs a rate strictly between 0 and 1 (the centre of the per-sample flip rates), "
            f"got {rate!r}"
        )
    if abs(r - round(r, 4)) > 1e-12:
        raise ValueError(
            f"rate {rate!r} has more than 4 decimals; noise keys record 4 decimals, so round the rate"
        )
    return r


def _check_dataset(dataset: Any) -> str | None:
    if dataset is None:
        return None
    if not isinstance(dataset, str) or not _DATASET_NAME.match(dataset):
        raise ValueError(
            f"dataset must be None or a name made of letters, digits, '_' and '.', got {dataset!r}"
        )
    return dataset


def _check_label_argument(labels: Any, num_classes: int) -> np.ndarray:
    """Labels given to this module, as a fresh int64 (N,) copy; ``ValueError`` unless they are a non-empty
    1-D integer array in ``[0, num_classes)``.

    Stricter than the dataset readers' check of labels read from files (``nalkit.datasets._common.
    _check_file_labels``, which casts and raises ``DatasetNotFoundError``): here a float or empty label
    array is a caller's mistake, not a corrupt file.
    """
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError("labels is empty; expected at least one label")
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {arr.dtype}")
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi >= num_classes:
        bad = lo if lo < 0 else hi
        raise ValueError(f"label {bad} is outside [0, {num_classes}) (num_classes={num_classes})")
    return arr.astype(np.int64, copy=True)


def _check_transition(transition: Any, num_classes: int) -> np.ndarray:
    if transition is None:
        raise ValueError("mode 'transition' needs a (C, C) row-stochastic matrix: pass transition=...")
    t = np.array(transition, dtype=np.float64)
    if t.shape != (num_classes, num_classes):
        raise ValueError(
            f"transition matrix has shape {t.shape}; expected ({num_classes}, {num_classes})"
        )
    if not np.all(np.isfinite(t)):
        raise ValueError("transition matrix contains NaN or infinite entries")
    if (t < 0).any():
        i, j = np.argwhere(t < 0)[0]
        raise ValueError(f"transition matrix has a negative entry T[{i}, {j}] = {float(t[i, j])!r}")
    sums = t.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > 1e-6)
    if bad.size:
        raise ValueError(
            f"transition matrix row {bad[0]} sums to {float(sums[bad[0]])!r}; "
            "every row must sum to 1 (within 1e-6)"
        )
    return t


def labels_digest(labels: np.ndarray) -> str:
    """Short (8 hex digits) sha256 of integer labels, as int64 little-endian bytes."""
    a = np.ascontiguousarray(np.asarray(labels, dtype="<i8"))
    return hashlib.sha256(a.tobytes()).hexdigest()[:8]


def transition_digest(transition: np.ndarray) -> str:
    """Short (12 hex digits) sha256 of a transition matrix, as float64 little-endian bytes."""
    t = np.ascontiguousarray(np.asarray(transition, dtype="<f8"))
    h = hashlib.sha256(repr(t.shape).encode() + t.tobytes())
    return h.hexdigest()[:12]


def _check_features(features: Any, num_labels: int, mode: str) -> np.ndarray:
    """``features`` as a 2-D real array of ``num_labels`` rows (not copied when it already is one)."""
    if features is None:
        raise ValueError(
            f"mode {mode!r} needs the images: pass features=..., an (N, d) float array with one flattened "
            f"training image per row, N = {num_labels} (the number of labels)"
        )
    f = np.asarray(features)
    if f.ndim != 2 or f.shape[0] != num_labels or f.shape[1] < 1:
        raise ValueError(
            f"features has shape {f.shape}; expected (N, d) = ({num_labels}, d >= 1), one flattened image "
            "per label (flatten with features.reshape(N, -1))"
        )
    if f.dtype == np.bool_ or not (np.issubdtype(f.dtype, np.floating) or np.issubdtype(f.dtype, np.integer)):
        raise ValueError(f"features must be real numbers (float or integer), got dtype {f.dtype}")
    if np.issubdtype(f.dtype, np.floating):
        for lo in range(0, num_labels, _IDN_CHUNK):  # chunked: no (N, d) bool temporary
            if not np.isfinite(f[lo:lo + _IDN_CHUNK]).all():
                raise ValueError("features contain NaN or infinite values")
    return f


def features_digest(features: Any) -> str:
    """Short (12 hex digits) sha256 of an (N, d) feature array: its dtype, shape and bytes.

    The bytes are hashed as stored (little-endian), so the same images as uint8, float32 or float64 -- or
    scaled differently -- get different digests, as they would get different ``"idn"`` labels. About 0.2 s
    for 60,000 x 784 float32 (188 MB).
    """
    f = np.asarray(features)
    f = f.astype(f.dtype.newbyteorder("<"), copy=False)
    h = hashlib.sha256(f"{f.dtype.str}{f.shape}".encode())
    if f.ndim == 0 or f.size == 0:
        h.update(np.ascontiguousarray(f).tobytes())
    else:
        rows = max(1, (16 << 20) // (f.nbytes // f.shape[0]))
        for lo in range(0, f.shape[0], rows):  # ~16 MB at a time: never a copy of the whole array
            h.update(np.ascontiguousarray(f[lo:lo + rows]).tobytes())
    return h.hexdigest()[:12]


def idn_expected_rate(rate: float, std: float = IDN_STD) -> float:
    """Mean of the normal ``N(rate, std**2)`` truncated to [0, 1]: the expected flip rate of mode ``"idn"``.

    The truncation at 0 pulls the mean up at small rates: 0.2055 at rate 0.2, 0.1083 at 0.1, but 0.4000 at
    0.4 (four standard deviations from either end).
    """
    rate = _check_rate(rate)
    a, b = (0.0 - rate) / std, (1.0 - rate) / std

    def pdf(x: float) -> float:
        return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)

    def cdf(x: float) -> float:
        return 0.5 * math.erfc(-x / math.sqrt(2.0))

    return rate + std * (pdf(a) - pdf(b)) / (cdf(b) - cdf(a))


# --------------------------------------------------------------------------------------------------
# maps and keys


def asym_map(dataset: str, num_classes: int | None = None) -> np.ndarray:
    """The asymmetric-noise map of ``dataset`` as a (C,) int64 array, identity where a class is unmapped.

    Args:
        dataset: one of ``ASYM_MAPS`` (``"cifar10"``, ``"cifar100"``, ``"fashion_mnist"``).
        num_classes: C; if given it must equal the dataset's number of classes.
    """
    if dataset not in ASYM_MAPS:
        raise ValueError(
            f"no asymmetric noise map for dataset {dataset!r}; maps exist for {sorted(ASYM_MAPS)}. "
            "Use mode 'transition' with your own matrix for other datasets."
        )
    expected = _NUM_CLASSES[dataset]
    if num_classes is not None and num_classes != expected:
        raise ValueError(
            f"dataset {dataset!r} has {expected} classes but num_classes={num_classes!r}"
        )
    out = np.arange(expected, dtype=np.int64)
    for src, dst in ASYM_MAPS[dataset].items():
        out[src] = dst
    return out


def noise_key(
    dataset: str | None,
    mode: str,
    rate: float | None,
    seed: int,
    num_labels: int,
    exclude_true_class: bool = False,
    transition_digest: str | None = None,
    *,
    labels_digest: str | None = None,
    features_digest: str | None = None,
) -> str:
    """Content address of a noise draw, e.g. ``"fashion_mnist-sym-0.4000-seed0-n60000-g1"``.

    The rate is written with 4 decimals (so 0.45 and 0.5 never collide); a rate that needs more decimals
    is refused rather than silently rounded onto another rate's key. ``exclude_true_class`` adds ``-xt``;
    mode ``"transition"`` writes ``T<digest>`` instead of a rate; mode ``"none"`` always writes rate 0.
    ``dataset=None`` is written ``custom``. ``labels_digest`` (:func:`labels_digest` of the clean labels)
    adds ``-L<digest>`` before the generator version: :attr:`NoisyLabels.key` and the file names always
    include it, so two training subsets of the same size and dataset never share a noise file. Mode
    ``"idn"`` needs ``features_digest`` (:func:`features_digest` of its features), written ``-F<digest>``
    after the labels' digest: its labels depend on the images, not only on the labels.
    """
    mode = _check_mode(mode)
    dataset = _check_dataset(dataset)
    seed = _check_int("seed", seed, 0)
    num_labels = _check_int("num_labels", num_labels, 1)
    ds = dataset if dataset is not None else _KEY_DATASET_FOR_NONE
    if mode == "transition":
        if not transition_digest or not re.fullmatch(r"[0-9a-f]+", transition_digest):
            raise ValueError(
                f"mode 'transition' needs the matrix's transition_digest (hex), got {transition_digest!r}"
            )
        middle = f"T{transition_digest}"
    elif mode == "none":
        middle = "0.0000"
    else:
        r = _check_rate(rate)
        if abs(r - round(r, 4)) > 1e-12:
            raise ValueError(
                f"rate {r!r} has more than 4 decimals; noise keys record 4 decimals, so round the rate"
            )
        middle = f"{r:.4f}"
    flag = "-xt" if (exclude_true_class and mode == "sym") else ""
    lab = ""
    if labels_digest is not None:
        if not re.fullmatch(r"[0-9a-f]+", labels_digest):
            raise ValueError(f"labels_digest must be hex, got {labels_digest!r}")
        lab = f"-L{labels_digest}"
    if mode == "idn":
        if not features_digest or not re.fullmatch(r"[0-9a-f]+", features_digest):
            raise ValueError(
                f"mode 'idn' needs the features' features_digest (hex), got {features_digest!r}"
            )
        lab += f"-F{features_digest}"
    elif features_digest is not None:
        raise ValueError(f"features_digest is for mode 'idn' only, got mode {mode!r}")
    return f"{ds}-{mode}-{middle}{flag}-seed{seed}-n{num_labels}{lab}-g{NOISE_GENERATOR_VERSION}"


# --------------------------------------------------------------------------------------------------
# the modes (registration order is the order of MODES)


MODES.add("none", None)


@MODES.register("sym")
def _sym(src: np.ndarray, num_classes: int, rng: np.random.Generator, dataset: str | None,
         exclude_true_class: bool) -> np.ndarray:
    """Uniform over all C classes (the true class included), or over the C - 1 others."""
    k = src.shape[0]
    if exclude_true_class:
        if num_classes < 2:
            raise ValueError("exclude_true_class needs num_classes >= 2")
        return (src + rng.integers(1, num_classes, size=k)) % num_classes
    return rng.integers(0, num_classes, size=k)


@MODES.register("asym")
def _asym(src: np.ndarray, num_classes: int, rng: np.random.Generator, dataset: str | None,
          exclude_true_class: bool) -> np.ndarray:
    """The dataset's class map (:data:`ASYM_MAPS`); draws nothing from ``rng``."""
    if dataset is None or dataset not in ASYM_MAPS:
        raise ValueError(
            f"mode 'asym' needs a dataset with a noise map, got dataset={dataset!r}; maps exist "
            f"for {sorted(ASYM_MAPS)} (for others use mode 'transition')"
        )
    return asym_map(dataset, num_classes)[src]


@MODES.register("pair")
def _pair(src: np.ndarray, num_classes: int, rng: np.random.Generator, dataset: str | None,
          exclude_true_class: bool) -> np.ndarray:
    """``c -> (c + 1) mod C``; draws nothing from ``rng``."""
    return (src + 1) % num_classes


MODES.add("transition", None)
MODES.add("idn", None)


def _truncated_normal(rng: np.random.Generator, mean: float, std: float, n: int) -> np.ndarray:
    """``n`` draws of ``N(mean, std**2)`` truncated to [0, 1], by rejection (step 1 of mode ``"idn"``).

    Exact, and cheap for every rate in (0, 1): at least 30 % of the draws land in [0, 1] when std is 0.1.
    """
    out = np.empty(n, dtype=np.float64)
    filled = 0
    while filled < n:
        draw = rng.normal(mean, std, size=n - filled)
        kept = draw[(draw >= 0.0) & (draw <= 1.0)]
        out[filled:filled + kept.size] = kept
        filled += kept.size
    return out


def _idn(clean: np.ndarray, num_classes: int, rate: float, rng: np.random.Generator,
         features: np.ndarray) -> np.ndarray:
    """Xia et al.'s part-dependent noise (module docstring): the (N,) noisy labels."""
    n, d = features.shape
    q = _truncated_normal(rng, rate, IDN_STD, n)
    u = rng.random(n)
    noisy = clean.copy()
    for c in range(num_classes):
        w = rng.standard_normal((d, num_classes))  # drawn for absent classes too: the stream stays the same
        rows = np.flatnonzero(clean == c)
        for lo in range(0, rows.size, _IDN_CHUNK):
            idx = rows[lo:lo + _IDN_CHUNK]
            z = features[idx].astype(np.float64) @ w  # (k, C)
            z[:, c] = -np.inf
            z -= z.max(axis=1, keepdims=True)
            p = np.exp(z)
            p *= (q[idx] / p.sum(axis=1))[:, None]
            p[:, c] = 1.0 - q[idx]
            cdf = np.cumsum(p, axis=1)
            cdf[:, -1] = 1.0  # u < 1 never falls past the last class, whatever the rounding
            noisy[idx] = (cdf <= u[idx, None]).sum(axis=1)
    return noisy


# --------------------------------------------------------------------------------------------------
# the generator


def inject_noise(
    labels: Any,
    num_classes: int,
    mode: str,
    rate: float | None,
    seed: int,
    dataset: str | None = None,
    *,
    transition: np.ndarray | None = None,
    exclude_true_class: bool = False,
    features: Any = None,
) -> NoisyLabels:
    """Corrupt ``labels`` with synthetic noise (algorithm: module docstring).

    Args:
        labels: (N,) integer clean labels in ``[0, num_classes)``; array, list or CPU tensor. Not modified.
        num_classes: C.
        mode: ``"none"``, ``"sym"``, ``"asym"``, ``"pair"``, ``"transition"`` or ``"idn"``.
        rate: fraction in [0, 1] of indices chosen for corruption; ``int(rate * N)`` indices exactly.
            For ``"idn"``, in (0, 1): the centre of the truncated normal of the per-sample flip rates.
            Ignored by ``"none"`` (nominal rate 0) and ``"transition"`` (every sample draws from its row
            of the matrix, so the matrix alone sets the rate; the nominal rate is the expected flip
            rate), where it may be ``None`` -- configs carry a rate whatever the mode.
        seed: non-negative noise seed, used only for ``np.random.default_rng(seed)``.
        dataset: dataset name; selects the map for ``"asym"`` (``"cifar10"``, ``"cifar100"``,
            ``"fashion_mnist"``) and is recorded in the key for every mode.
        transition: (C, C) row-stochastic matrix for mode ``"transition"`` (row = clean class).
        exclude_true_class: ``"sym"`` only: draw the noisy class among the C - 1 other classes.
        features: ``"idn"`` only, and required there: (N, d) real array, row ``i`` the flattened image of
            label ``i`` (array or CPU tensor; not modified). Used as given -- no scaling -- and projected
            in float64, 4096 rows at a time: about 1 s for 60,000 x 784 (Fashion-MNIST, one busy core).

    Returns:
        :class:`NoisyLabels`.
    """
    mode = _check_mode(mode)
    num_classes = _check_int("num_classes", num_classes, 1)
    seed = _check_int("seed", seed, 0)
    dataset = _check_dataset(dataset)
    clean = _check_label_argument(labels, num_classes)
    n = clean.shape[0]
    if exclude_true_class and mode != "sym":
        raise ValueError(f"exclude_true_class applies to mode 'sym' only, got mode {mode!r}")
    if transition is not None and mode != "transition":
        raise ValueError(f"a transition matrix was given but mode is {mode!r}; use mode 'transition'")
    if features is not None and mode != "idn":
        raise ValueError(f"features were given but mode is {mode!r}; only mode 'idn' reads them")
    feats = _check_features(features, n, mode) if mode == "idn" else None

    noisy = clean.copy()
    given_t = None
    rng = np.random.default_rng(seed)
    corrupt = MODES.get(mode)

    if mode in ("none", "transition") and rate is not None:
        _check_rate(rate)  # ignored, but a rate of 7 is still a mistake worth reporting

    if mode == "none":
        nominal, chosen = 0.0, np.zeros(0, dtype=np.int64)
    elif mode == "transition":
        given_t = _check_transition(transition, num_classes)
        # Renormalise so the last CDF entry is exactly 1: u < 1 then never falls past the last class.
        cdf = np.cumsum(given_t / given_t.sum(axis=1, keepdims=True), axis=1)
        cdf[:, -1] = 1.0
        u = rng.random(n)
        for c in np.unique(clean):
            m = clean == c
            noisy[m] = np.searchsorted(cdf[c], u[m], side="right")
        nominal = float(np.mean(1.0 - np.diag(given_t)[clean]))
        chosen = np.arange(n, dtype=np.int64)
    elif mode == "idn":
        assert feats is not None
        nominal = _check_idn_rate(rate)
        if num_classes < 2:
            raise ValueError("mode 'idn' flips to another class: it needs num_classes >= 2")
        noisy = _idn(clean, num_classes, nominal, rng, feats)
        chosen = np.arange(n, dtype=np.int64)
    else:
        assert corrupt is not None  # every other mode is a registered Corruption
        nominal = _check_rate(rate)
        if abs(nominal - round(nominal, 4)) > 1e-12:
            raise ValueError(
                f"rate {rate!r} has more than 4 decimals; noise keys record 4 decimals, so round the rate"
            )
        k = int(nominal * n)  # DivideMix: exactly int(r * N) indices
        chosen = rng.permutation(n)[:k].astype(np.int64)
        noisy[chosen] = corrupt(clean[chosen], num_classes, rng, dataset, exclude_true_class)

    return NoisyLabels(
        labels=noisy,
        clean_labels=clean,
        num_classes=num_classes,
        mode=mode,
        nominal_rate=nominal,
        seed=seed,
        dataset=dataset,
        exclude_true_class=bool(exclude_true_class),
        chosen=chosen,
        given_transition=given_t,
        features_digest=None if feats is None else features_digest(feats),
    )


# --------------------------------------------------------------------------------------------------
# files


def _checksum(arrays: Mapping[str, np.ndarray], meta_json: str) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode())
        h.update(str(a.dtype.str).encode() + repr(a.shape).encode())
        h.update(a.tobytes())
    h.update(meta_json.encode())
    return h.hexdigest()


def _arrays(noisy: NoisyLabels) -> dict[str, np.ndarray]:
    t = noisy.given_transition
    return {
        "labels": np.asarray(noisy.labels, dtype="<i8"),
        "clean_labels": np.asarray(noisy.clean_labels, dtype="<i8"),
        "chosen": np.asarray(noisy.chosen, dtype="<i8"),
        "given_transition": np.zeros((0, 0), "<f8") if t is None else np.asarray(t, dtype="<f8"),
    }


def save_noise(noisy: NoisyLabels, directory: str | os.PathLike) -> Path:
    """Write ``noisy`` to ``<directory>/<noisy.key>.npz`` atomically; return the path.

    The file holds the noisy and clean labels, the chosen indices, the given transition matrix (if any),
    the metadata as a JSON string and a sha256 checksum over all of them. It is written with
    :func:`nalkit._io.atomic_write_bytes` (temporary file, fsync, rename; permissions ``0666 & ~umask``),
    so a reader never sees half a file. ``directory`` is created if absent.
    """
    path = Path(directory) / f"{noisy.key}.npz"
    arrays = _arrays(noisy)
    meta_json = json.dumps(noisy.metadata(), sort_keys=True)
    checksum = _checksum(arrays, meta_json)
    buf = io.BytesIO()  # a few MB at most (int64 labels), so build it in memory and write it in one go
    np.savez_compressed(buf, meta=np.array(meta_json), checksum=np.array(checksum), **arrays)
    atomic_write_bytes(path, buf.getvalue())
    return path


def load_noise(
    path: str | os.PathLike,
    *,
    expect_dataset: str | None = None,
    expect_num_labels: int | None = None,
) -> NoisyLabels:
    """Read a file written by :func:`save_noise`, verifying its checksum.

    Args:
        path: the ``.npz`` file.
        expect_dataset: if given, the file must be noise for this dataset.
        expect_num_labels: if given, the file must hold this many labels.

    Raises:
        NoiseFileError: the file is missing, truncated, corrupt, fails its checksum, or belongs to another
            dataset / size than expected. The message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise NoiseFileError(f"noise file {str(path)!r} does not exist")
    try:
        # Our own handle: np.load(path) leaks its file when the zip turns out to be truncated.
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
            meta_json = str(z["meta"][()])
            stored = str(z["checksum"][()])
            arrays = {
                name: z[name] for name in ("labels", "clean_labels", "chosen", "given_transition")
            }
        meta = json.loads(meta_json)
    except Exception as e:  # zip, zlib, CRC, JSON or missing-member errors all mean "unreadable"
        raise NoiseFileError(
            f"noise file {str(path)!r} is unreadable or corrupt ({type(e).__name__}: {e}); "
            "delete it and it will be regenerated"
        ) from e
    if _checksum(arrays, meta_json) != stored:
        raise NoiseFileError(
            f"noise file {str(path)!r} fails its sha256 checksum (modified or corrupt); "
            "delete it and it will be regenerated"
        )
    if expect_dataset is not None and meta.get("dataset") != expect_dataset:
        raise NoiseFileError(
            f"noise file {str(path)!r} is noise for dataset {meta.get('dataset')!r}, "
            f"not {expect_dataset!r}"
        )
    if expect_num_labels is not None and meta.get("num_labels") != expect_num_labels:
        raise NoiseFileError(
            f"noise file {str(path)!r} holds {meta.get('num_labels')!r} labels, "
            f"expected {expect_num_labels!r}"
        )
    t = arrays["given_transition"]
    try:
        noisy = NoisyLabels(
            labels=arrays["labels"].astype(np.int64),
            clean_labels=arrays["clean_labels"].astype(np.int64),
            num_classes=int(meta["num_classes"]),
            mode=str(meta["mode"]),
            nominal_rate=float(meta["nominal_rate"]),
            seed=int(meta["seed"]),
            dataset=meta["dataset"],
            exclude_true_class=bool(meta["exclude_true_class"]),
            chosen=arrays["chosen"].astype(np.int64),
            given_transition=None if t.size == 0 else t.astype(np.float64),
            generator_version=int(meta["generator_version"]),
            features_digest=meta.get("features_digest"),  # absent from the files of the other modes
        )
        _check_mode(noisy.mode)
        _check_label_argument(noisy.labels, noisy.num_classes)
        _check_label_argument(noisy.clean_labels, noisy.num_classes)
    except (KeyError, TypeError, ValueError) as e:
        raise NoiseFileError(
            f"noise file {str(path)!r} passes its checksum but its contents are invalid "
            f"({type(e).__name__}: {e}); was it written by nalkit.noise.save_noise?"
        ) from e
    if noisy.labels.shape != noisy.clean_labels.shape or noisy.num_labels != meta["num_labels"]:
        raise NoiseFileError(f"noise file {str(path)!r} has inconsistent array shapes")
    return noisy


def load_or_create_noise(
    directory: str | os.PathLike,
    labels: Any,
    num_classes: int,
    mode: str,
    rate: float | None,
    seed: int,
    dataset: str | None = None,
    *,
    transition: np.ndarray | None = None,
    exclude_true_class: bool = False,
    features: Any = None,
) -> NoisyLabels:
    """Return the noise stored under ``directory`` for these arguments, creating and saving it if absent.

    Arguments as for :func:`inject_noise`. The file is ``<directory>/<key>.npz``; the key includes a digest
    of the clean labels (and for ``"idn"`` one of the features), so a file is only ever reused for the same
    labels (and images). A stored file is still checked against the given labels and settings, and a
    mismatch raises :class:`NoiseFileError`.
    """
    mode = _check_mode(mode)
    clean = _check_label_argument(labels, _check_int("num_classes", num_classes, 1))
    digest = f_digest = None
    if mode == "transition":
        digest = transition_digest(_check_transition(transition, num_classes))
    if mode == "idn":  # reads every byte of the features (~0.2 s for Fashion-MNIST): no cheaper key is safe
        f_digest = features_digest(_check_features(features, clean.shape[0], mode))
    elif features is not None:
        raise ValueError(f"features were given but mode is {mode!r}; only mode 'idn' reads them")
    key = noise_key(
        dataset,
        mode,
        None if mode in ("none", "transition") else rate,
        seed,
        clean.shape[0],
        exclude_true_class,
        digest,
        labels_digest=labels_digest(clean),
        features_digest=f_digest,
    )
    path = Path(directory) / f"{key}.npz"
    if not path.exists():
        noisy = inject_noise(
            clean,
            num_classes,
            mode,
            rate,
            seed,
            dataset,
            transition=transition,
            exclude_true_class=exclude_true_class,
            features=features,
        )
        save_noise(noisy, directory)
        return noisy
    noisy = load_noise(path, expect_dataset=dataset, expect_num_labels=clean.shape[0])
    if not np.array_equal(noisy.clean_labels, clean):
        raise NoiseFileError(
            f"noise file {str(path)!r} was made from different clean labels than the ones given "
            f"({int((noisy.clean_labels != clean).sum())} of {clean.shape[0]} differ); use another "
            "dataset name or noise directory for this data, or delete the file"
        )
    if noisy.features_digest != f_digest:
        raise NoiseFileError(
            f"noise file {str(path)!r} records features digest {noisy.features_digest!r}, not {f_digest!r}: "
            "it was made from other images; delete it and it will be regenerated"
        )
    if noisy.num_classes != num_classes or noisy.mode != mode or noisy.seed != seed:
        raise NoiseFileError(
            f"noise file {str(path)!r} records num_classes={noisy.num_classes}, mode={noisy.mode!r}, "
            f"seed={noisy.seed}, not num_classes={num_classes}, mode={mode!r}, seed={seed}"
        )
    rate_differs = not math.isclose(noisy.nominal_rate, float(rate or 0.0), abs_tol=1e-9)
    if mode not in ("none", "transition") and rate_differs:
        raise NoiseFileError(
            f"noise file {str(path)!r} records rate {noisy.nominal_rate!r}, not {rate!r}"
        )
    return noisy
