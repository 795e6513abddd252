"""Figures of run records, in one style: the book's chapters, the experiment notebook and ``explore.ipynb``.

One colour per method and one line style per named variant, fixed across every figure (:func:`method_colors`,
:func:`line_style`: Okabe-Ito colours, safe for the common colour-vision deficiencies), text sizes readable at the
book's width (:func:`use_style`), legends outside the data, tick labels that never collide
(:func:`thin_tick_labels`, checked by :func:`overlapping_labels`), and the attention weight tau on a logit axis
so that a mass of samples at tau ~ 1 shows as such (:func:`tau_histogram`).

matplotlib is imported here and only here; the training code never imports this module.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ._images import compact_png

#: The palette of Okabe & Ito (2008), "Color Universal Design", distinguishable under protanopia, deuteranopia
#: and tritanopia.
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")

#: Base font size (points) of every figure. Figures are drawn 7 inches wide at 110 dpi, the book's text
#: column at 100 % zoom, so 10 pt renders at about 15 px: 90 % of the book's 16 px body text.
FONT_SIZE = 10
FIG_WIDTH = 7.0
DPI = 110

# --------------------------------------------------------------------------------------------
# one colour per method, one style per variant
# --------------------------------------------------------------------------------------------
#: The colour of every method of the registry, the same in every figure. NAL blue and CE vermillion go to the pair
#: every chapter contrasts. The other four are the Okabe-Ito colours furthest from those two and from each other: of the
#: six left, orange lies next to vermillion and sky blue next to NAL blue (CIELAB distance about 30, the pairs
#: CE/ELR and NAL/SELC used to share), so they are left out, and Okabe-Ito's yellow is darkened (#F0E442 to
#: #DDCC00) so that a thin line shows on white. Every pair is at least 50 CIELAB units apart for normal vision and
#: 15 under simulated protanopia, deuteranopia and tritanopia (:func:`color_distance`; tested).
METHOD_COLORS = {"ce": "#D55E00", "gce": "#DDCC00", "sce": "#CC79A7", "elr": "#000000", "selc": "#009E73",
                 "nal": "#0072B2"}
# methods registered after these: the Okabe-Ito colours no method uses, then grey (by name, so a name keeps its
# colour whatever else a figure draws)
_SPARE = ("#E69F00", "#56B4E9", "#7F7F7F")
#: NAL's hue at three lightnesses (CIELAB lightness 19, 46 and 70). NAL's variants share NAL's blue and differ in
#: lightness and line style, since there are more variants than colours a reader tells apart.
NAL_DARK, NAL_BLUE, NAL_LIGHT = "#002D62", "#0072B2", "#56B4E9"

#: ``(colour, line style)`` of every named variant (``nalkit.results.nal_variant``, ``LONG_VARIANTS``,
#: ``PROTOCOL_VARIANTS``, ``ATTENTION_CONTROLS``). The lightness says where tau comes from: learned per sample
#: (NAL blue), learned once for many samples (dark), fixed (light). The line style tells the variants of one
#: lightness apart; dotted is always the paper's protocol (lambda 0.5, the authors' target schedule), dash-dot
#: lambda 0.5 with the book's schedule. A baseline at another hyper-parameter is its method's colour, dashed.
VARIANT_STYLES: dict[str, tuple[str, str]] = {
    "NAL": (NAL_BLUE, "-"),
    "NAL, authors' schedule": (NAL_BLUE, "--"),
    "NAL (λ 0.5)": (NAL_BLUE, "-."),
    "NAL (λ 0.5), authors' schedule": (NAL_BLUE, ":"),
    "one learned τ": (NAL_DARK, "-"),
    "one learned τ per class": (NAL_DARK, "--"),
    "NAL (λ 0.5), authors' schedule, one learned τ": (NAL_DARK, ":"),
    "NAL, τ = 1": (NAL_LIGHT, "-"),
    "τ = full NAL's mean per epoch": (NAL_LIGHT, "--"),
    "NAL (λ 0.5), authors' schedule, τ = 1": (NAL_LIGHT, ":"),
    "SCE (α 0.05)": (METHOD_COLORS["sce"], "--"),
    "ce + early stop": (METHOD_COLORS["ce"], "--"),
}
#: Names two chapters give one variant, drawn alike.
VARIANT_ALIASES = {"full NAL": "NAL", "τ = 1": "NAL, τ = 1"}
_LINE_STYLES = ("-", "--", "-.", ":")


def method_colors(methods: Iterable[str] | None = None) -> dict[str, str]:
    """``{method: colour}`` for every registered method (and any extra names given), the same in every figure and
    every call (:data:`METHOD_COLORS`; a method without one gets a spare colour chosen by its name)."""
    from .methods import METHODS

    names = list(METHODS.names()) + [m for m in (methods or ()) if m not in METHODS]
    return {name: METHOD_COLORS.get(name) or _SPARE[zlib.crc32(name.encode()) % len(_SPARE)] for name in names}


def line_style(name: str) -> dict[str, str]:
    """``{"color": ..., "ls": ...}`` of a method (``nal``, ``CE``; any case) or a named variant
    (:data:`VARIANT_STYLES`, :data:`VARIANT_ALIASES`), for ``ax.plot(..., **line_style(name))``.

    Methods are solid lines in their :data:`METHOD_COLORS` colour. A name nobody registered gets, by its name, a
    line style in NAL's blue if it starts with "NAL" (a new variant of NAL), else in grey."""
    name = VARIANT_ALIASES.get(name, name)
    if name in VARIANT_STYLES:
        colour, ls = VARIANT_STYLES[name]
    elif name.lower() in METHOD_COLORS or name.lower() in _registered():
        colour, ls = method_colors([name.lower()])[name.lower()], "-"
    else:
        colour = NAL_BLUE if name.startswith("NAL") else "#7F7F7F"
        ls = _LINE_STYLES[zlib.crc32(name.encode()) % len(_LINE_STYLES)]
    return {"color": colour, "ls": ls}


def _registered() -> tuple[str, ...]:
    from .methods import METHODS

    return tuple(METHODS.names())


# Machado, Oliveira & Fernandes (2009), severity 1: the colour a dichromat sees, as a matrix on linear RGB
_DICHROMAT = {
    "protanopia": ((0.152286, 1.052583, -0.204868), (0.114503, 0.786281, 0.099216), (-0.003882, -0.048116, 1.051998)),
    "deuteranopia": ((0.367322, 0.860646, -0.227968), (0.280085, 0.672501, 0.047413), (-0.011820, 0.042940, 0.968881)),
    "tritanopia": ((1.255528, -0.076749, -0.178779), (-0.078411, 0.930809, 0.147602), (0.004733, 0.691367, 0.303900)),
}


def _lab(colour: str, vision: str | None = None) -> np.ndarray:
    """CIELAB (D65) of a ``#rrggbb`` colour, as seen with normal vision or simulated ``vision``."""
    c = np.array([int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    rgb = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    if vision is not None:
        rgb = np.clip(np.array(_DICHROMAT[vision]) @ rgb, 0, 1)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ rgb
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def color_distance(a: str, b: str, vision: str | None = None) -> float:
    """The CIELAB distance (Delta E 1976) between two ``#rrggbb`` colours: about 2.3 is just noticeable side by
    side, lines in a figure want tens. ``vision``: None (normal), "protanopia", "deuteranopia" or "tritanopia",
    simulated with the matrices of Machado et al. (2009) at full severity."""
    return float(np.linalg.norm(_lab(a, vision) - _lab(b, vision)))


def method_label(name: str) -> str:
    """The name a figure or table shows for a method: ``nal`` -> ``NAL``."""
    return name.upper()


def method_order(methods: Iterable[str]) -> list[str]:
    """``methods`` in registry order (CE first, NAL last), unknown names after them."""
    from .methods import METHODS

    known = list(METHODS.names())
    return sorted(set(methods), key=lambda m: (known.index(m) if m in known else len(known), m))


def use_style() -> None:
    """The book's figure style: legible sizes at the book's width, light grids, no top/right spines."""
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "figure.dpi": DPI, "savefig.dpi": DPI, "figure.figsize": (FIG_WIDTH, 3.6), "font.size": FONT_SIZE,
        "axes.titlesize": FONT_SIZE, "axes.labelsize": FONT_SIZE, "xtick.labelsize": FONT_SIZE - 1,
        "ytick.labelsize": FONT_SIZE - 1, "legend.fontsize": FONT_SIZE - 1, "figure.titlesize": FONT_SIZE + 1,
        "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
        "legend.frameon": False, "figure.constrained_layout.use": True,
    })


def legend_outside(fig: Any, axes: Any, ncol: int | None = None, title: str | None = None) -> None:
    """One legend for the whole figure, below the axes, built from the first axes that has handles."""
    for ax in np.atleast_1d(axes).ravel():
        handles, labels = ax.get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="outside lower center", ncol=ncol or min(len(labels), 6),
                       title=title)
            return


# --------------------------------------------------------------------------------------------
# labels that must not collide
# --------------------------------------------------------------------------------------------
def _all_axes(fig: Any) -> list[Any]:
    """Every axes of ``fig``, insets (child axes) included."""
    out: list[Any] = []

    def walk(ax: Any) -> None:
        if all(ax is not a for a in out):
            out.append(ax)
            for child in getattr(ax, "child_axes", ()):
                walk(child)

    for ax in fig.axes:
        walk(ax)
    return out


def _drawn_tick_labels(ax: Any, axes: str = "xy") -> list[tuple[str, float, Any]]:
    """``(axis name, tick location, label)`` of the tick labels matplotlib draws on ``ax`` (visible, not empty,
    their tick inside the view): valid after ``fig.canvas.draw()``."""
    out = []
    for name in axes:
        axis = getattr(ax, f"{name}axis")
        lo, hi = sorted(axis.get_view_interval())
        tol = 1e-9 * max(1.0, abs(hi - lo))
        for locs, get in ((axis.get_majorticklocs(), axis.get_major_ticks),
                          (axis.get_minorticklocs(), axis.get_minor_ticks)):
            for tick, loc in zip(get(len(locs)), locs):
                if not lo - tol <= loc <= hi + tol:
                    continue
                for label in (tick.label1, tick.label2):
                    if label.get_visible() and label.get_text().strip():
                        out.append((name, float(loc), label))
    return out


def _overlap(a: Any, b: Any, pad: float = 0.0) -> bool:
    """Whether two display-space boxes, each grown by ``pad`` pixels on every side, share an area."""
    return (min(a.x1, b.x1) - max(a.x0, b.x0) > -2 * pad) and (min(a.y1, b.y1) - max(a.y0, b.y0) > -2 * pad)


def overlapping_labels(fig: Any, pad: float = 0.0) -> list[str]:
    """The tick labels of ``fig`` that collide, as drawn: one line per pair whose text boxes overlap.

    Draws the figure (``fig.canvas.draw()``, so the layout is final) and compares the window extents of every
    drawn tick label (x and y, major and minor, of every axes and inset) with every other one, across axes too;
    ``pad`` (pixels) counts boxes closer than ``2 * pad`` as colliding. Rotated labels are compared by their
    upright bounding boxes. An empty list means no two labels touch.
    """
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    drawn = [(i, name, label, label.get_window_extent(renderer))
             for i, ax in enumerate(_all_axes(fig)) for name, _, label in _drawn_tick_labels(ax)]
    found = []
    for k, (i, n, a, box_a) in enumerate(drawn):
        for j, m, b, box_b in drawn[k + 1:]:
            if _overlap(box_a, box_b, pad):
                found.append(f"{n}-tick label {a.get_text()!r} (axes {i}) overlaps {m}-tick label {b.get_text()!r} "
                             f"(axes {j})")
    return found


def thin_tick_labels(fig: Any, pad: float = 4.0, rounds: int = 4, prefer: Any = None) -> None:
    """Drop x tick labels of ``fig`` that would overlap at its drawn size: the rightmost label stays (the
    overflow bin of a tau axis), then, right to left, first the labels ``prefer(text)`` is true for (round
    values), then the others, each only if it has room (``pad`` pixels from every label kept).

    Axes that share their x axis share their ticks, so a grid is thinned once per shared axis."""
    for _ in range(rounds):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        changed, done = False, []
        for ax in _all_axes(fig):
            if any(ax.xaxis.major is t for t in done):
                continue
            labels = sorted((loc, label.get_text(), label.get_window_extent(renderer))
                            for name, loc, label in _drawn_tick_labels(ax, "x"))
            if len(labels) < 2:
                continue
            done.append(ax.xaxis.major)
            kept = [labels[-1]]
            rest = labels[-2::-1]
            first = [i for i in rest if prefer is not None and prefer(i[1])]
            for item in first + [i for i in rest if all(i is not f for f in first)]:
                if not any(_overlap(item[2], k[2], pad) for k in kept):
                    kept.append(item)
            if len(kept) < len(labels):
                kept.sort(key=lambda k: k[0])
                ax.set_xticks([k[0] for k in kept], [k[1] for k in kept])
                changed = True
        if not changed:
            return


# --------------------------------------------------------------------------------------------
# tau
# --------------------------------------------------------------------------------------------
TAU_CLEAN, TAU_MISLABELED = "#0072B2", "#D55E00"
_LOGIT_TICKS = (1e-4, 1e-3, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.97, 0.99, 0.997, 0.999, 0.9997, 0.9999, 0.99999,
                0.999999, 0.9999999)
# Tau is drawn within TAU_EPS of 0 and 1, float32's resolution next to 1 (2^-24 = 6e-8), the resolution of the
# records made before tau was kept as its logit (there tau = 1.0 exactly stands for tau >= 1 - 6e-8).
TAU_EPS = 2.0**-24
#: The highest tau a histogram of :func:`tau_grid` resolves. Above it NAL's gradient factor phi is within 1e-6
#: of cross-entropy's for any sample with p_y > 0.1 (nothing left to see), so those samples are counted in one
#: labelled overflow bin instead.
TAU_CAP = 1 - 1e-6
# an overflow bin is drawn once at least this share of a panel's samples lies above the axis; fewer are counted
# in the last bin, where they cannot be seen anyway
_OVERFLOW_MIN = 0.001
# a panel whose central 98 % of samples fall within fewer bins than this also gets an inset over their range
_INSET_BINS = 4


def logit(p: np.ndarray, eps: float = TAU_EPS) -> np.ndarray:
    """``log(p / (1 - p))``, with ``p`` clipped to ``[eps, 1 - eps]`` (float32 tau reaches 1.0 exactly)."""
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    return np.log(p) - np.log1p(-p)


def _expit(v: float) -> float:
    return float(1.0 / (1.0 + np.exp(-v)))


def tau_limits(*taus: np.ndarray, pad: float = 0.4, cap: float | None = None) -> tuple[float, float]:
    """The tau range the data occupy, on the logit scale: the 0.1 % and 99.9 % quantiles of all ``taus``, padded
    by ``pad`` logit units (so a histogram spends its bins where the samples are), within (``TAU_EPS``, ``cap``);
    ``cap`` defaults to 1 - ``TAU_EPS``, :func:`tau_grid` uses :data:`TAU_CAP`.

    Give it every tau of a family of figures at once, and pass the result to each figure, for one shared axis.
    """
    top = 1 - TAU_EPS if cap is None else min(cap, 1 - TAU_EPS)
    x = np.concatenate([logit(np.asarray(t)) for t in taus if len(t)]) if any(len(t) for t in taus) else np.zeros(0)
    if not len(x):
        return 1e-3, top
    lo, hi = np.quantile(x, [0.001, 0.999])
    lo, hi = lo - pad, max(hi + pad, lo + 2 * pad)
    lo = min(lo, float(logit(np.array(top))) - 2 * pad)  # every sample above the cap: still a range below it
    return max(_expit(lo), TAU_EPS), min(_expit(hi), top)


def overflow_share(tau: np.ndarray, limits: tuple[float, float]) -> float:
    """The share of ``tau`` above the axis ``limits`` (compared on the logit scale, as drawn)."""
    x = logit(np.asarray(tau))
    return float(np.mean(x > float(logit(np.array(limits[1]))) + 1e-9)) if len(x) else 0.0


def _tau_text(t: float) -> str:
    return np.format_float_positional(t, trim="-")


def _round_tau(text: str) -> bool:
    """Tick labels a tau axis keeps first: 0.5 and the decades 0.9, 0.99, 0.999, ..."""
    return text == "0.5" or (text.startswith("0.") and set(text[2:]) == {"9"})


def tau_histogram(ax: Any, tau: np.ndarray, is_noisy: np.ndarray, bins: int = 40,
                  limits: tuple[float, float] | None = None, overflow: bool | None = None, inset: bool = True,
                  thin: bool = True) -> float:
    """Step histograms of tau for clean and mislabeled samples on a logit axis (fraction of each group).

    On a linear axis every tau above 0.99 falls into one bin; on the logit axis 0.9, 0.99, 0.999 and
    0.9999 are equally far apart, so "tau ~ 1 for everybody" and "clean samples move towards 1" look
    different. ``limits`` (default: :func:`tau_limits` of the data, capped at :data:`TAU_CAP`) bound the axis.

    Samples above the axis go to an **overflow bin** right of it, behind a dotted line, with the tick label
    ``> limit`` and the share of each group there written in the panel's upper right corner in the group's colour
    ("clean 12.3 %", "mislabeled 0.4 %"; ``overflow``: True, False, or by default when at least 0.1 % of the
    samples are there; without it they count in the last bin, as samples below the axis count in the first). When the central 98 % of the samples fall within fewer than four bins, an inset
    shows them on a linear tau axis over their own range, its ticks at the range's ends (``inset``). ``thin``
    drops tick labels that would overlap at the figure's size (:func:`thin_tick_labels`; :func:`tau_grid`
    thins once for all its panels). Returns the highest bar drawn (a fraction of its group).
    """
    limits = limits or tau_limits(tau, cap=TAU_CAP)
    lo, hi = (float(v) for v in logit(np.array(limits)))
    width = (hi - lo) / bins
    edges = np.linspace(lo, hi, bins + 1)
    tau, is_noisy = np.asarray(tau), np.asarray(is_noisy, dtype=bool)
    share = overflow_share(tau, limits)
    if overflow is None:
        overflow = share >= _OVERFLOW_MIN
    slot = (hi + width, hi + 3 * width)  # the overflow bin: two bins wide, one bin right of the axis
    top = over_top = 0.0
    over_text = []
    for mask, label, colour in ((~is_noisy, "clean", TAU_CLEAN), (is_noisy, "mislabeled", TAU_MISLABELED)):
        x = logit(tau[mask])
        if not len(x):
            continue
        if overflow:
            over_text.append((label, float(np.mean(x > hi + 1e-9)), colour))
        above = x > hi + 1e-9
        counts, _ = np.histogram(np.clip(x[~above] if overflow else x, lo, hi), bins=edges)
        heights = counts / len(x)
        ax.stairs(heights, edges, lw=1.6, color=colour, label=f"{label} ({len(x):,})")
        top = max(top, float(heights.max()))
        if overflow:
            ax.stairs([above.mean()], slot, lw=1.6, color=colour)
            over_top = max(over_top, float(above.mean()))
    ticks = [t for t in _LOGIT_TICKS if limits[0] <= t <= limits[1] + 1e-12]
    locs, names = [float(v) for v in logit(np.array(ticks))], [_tau_text(t) for t in ticks]
    if overflow:
        ax.axvline(hi, color="grey", ls=":", lw=1)
        ax.axvspan(*slot, color="0.93", lw=0, zorder=0)
        # which group the overflow bin counts, said in words: the two groups' bars share the bin (nothing when it
        # is empty)
        for k, (group, group_share, colour) in enumerate(over_text if share > 0 else ()):
            ax.annotate(f"{group} {_share_text(group_share)}", xy=(1, 1), xycoords="axes fraction", xytext=(-2, -1 - k * 1.15 * (FONT_SIZE - 2)),
                        textcoords="offset points", ha="right", va="top", fontsize=FONT_SIZE - 2, color=colour,
                        gid=_OVERFLOW_GID, bbox={"facecolor": "white", "alpha": 0.85, "lw": 0, "pad": 0.3})
        locs.append(float(np.mean(slot)))
        names.append(f"> {_tau_text(limits[1])}")
    ax.set_xticks(locs, names)
    ax.set_xlim(lo, slot[1] + 0.5 * width if overflow else hi)
    ax.set_xlabel("τ (logit scale)")
    ax.set_ylabel("fraction of group")
    if inset:
        _tau_inset(ax, tau, is_noisy, width)
    if thin:
        thin_tick_labels(ax.figure, prefer=_round_tau)
        room = _room_for_overflow_text(ax.figure, [ax])
        if room > ax.get_ylim()[1]:
            ax.set_ylim(0, room)
    return max(top, over_top)


_OVERFLOW_GID = "tau-overflow-share"


def _share_text(share: float) -> str:
    return "0 %" if share == 0 else "< 0.1 %" if share < 0.001 else f"{100 * share:.1f} %"


def _room_for_overflow_text(fig: Any, axes: Iterable[Any]) -> float:
    """The lowest y limit (from 0) at which no histogram bar of ``axes`` reaches into the overflow shares written
    in its upper right corner (0 when nothing is written): the text sits a fixed number of points below the top,
    so the bars under it must end below that share of the axes' height."""
    from matplotlib.patches import StepPatch
    from matplotlib.transforms import Bbox

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    need = 0.0
    for ax in axes:
        texts = [t for t in ax.texts if t.get_gid() == _OVERFLOW_GID]
        if not texts:
            continue
        box = Bbox.union([t.get_window_extent(renderer) for t in texts])
        x0, x1 = sorted(ax.transData.inverted().transform([[box.x0, box.y0], [box.x1, box.y0]])[:, 0])
        below = float(ax.transAxes.inverted().transform((box.x0, box.y0))[1]) - 0.03
        for patch in ax.patches:
            if isinstance(patch, StepPatch):
                values, edges = patch.get_data().values, patch.get_data().edges
                under = (edges[1:] > x0) & (edges[:-1] < x1)
                if under.any() and below > 0:
                    need = max(need, float(np.max(values[under])) / below)
    return need


def _tau_inset(ax: Any, tau: np.ndarray, is_noisy: np.ndarray, width: float) -> Any:
    """An inset with ``tau`` on a linear axis over its own range, when its central 98 % span < _INSET_BINS bins
    of the main axis (``width`` logit units each); None otherwise."""
    x = logit(tau)
    q1, q99 = np.quantile(x, [0.01, 0.99]) if len(x) else (0.0, np.inf)
    if q99 - q1 >= _INSET_BINS * width:
        return None
    a, b = (float(v) for v in np.quantile(tau, [0.005, 0.995]))
    if b <= a:
        a, b = a - 1e-6, b + 1e-6
    left, right = ax.get_xlim()
    centre = (float(np.median(x)) - left) / (right - left)
    # below the overflow shares when they are written in the upper right corner
    bottom = 0.22 if centre < 0.5 and any(t.get_gid() == _OVERFLOW_GID for t in ax.texts) else 0.38
    inset = ax.inset_axes([0.5, bottom, 0.45, 0.5] if centre < 0.5 else [0.08, 0.38, 0.45, 0.5])
    edges = np.linspace(a, b, 21)
    for mask, colour in ((~is_noisy, TAU_CLEAN), (is_noisy, TAU_MISLABELED)):
        if mask.any():
            counts, _ = np.histogram(np.clip(tau[mask], a, b), bins=edges)
            inset.stairs(counts / mask.sum(), edges, lw=1.2, color=colour)
    digits = max(2, int(np.ceil(-np.log10(b - a))) + 1)
    span = b - a
    inset.set_xlim(a - 0.3 * span, b + 0.3 * span)  # room for the end labels inside the inset
    inset.set_xticks([a, b], [f"{a:.{digits}f}", f"{b:.{digits}f}"])
    inset.set_yticks([])
    inset.tick_params(labelsize=FONT_SIZE - 3, length=2, pad=1)
    inset.set_title("linear τ", fontsize=FONT_SIZE - 3, pad=2)
    inset.grid(False)
    for spine in inset.spines.values():
        spine.set_visible(True)
        spine.set_linewidth(0.6)
    return inset


# --------------------------------------------------------------------------------------------
# curves and matrices
# --------------------------------------------------------------------------------------------
def mean_band(ax: Any, frame: Any, x: str, y: str, colour: str, label: str, scale: float = 100.0,
              ls: str = "-") -> None:
    """Mean of ``y`` over the runs in ``frame`` against ``x`` (line style ``ls``), with a band from their minimum to
    maximum."""
    stats = frame.groupby(x)[y].agg(["mean", "min", "max"]).dropna()
    if not len(stats):
        return
    ax.plot(stats.index, scale * stats["mean"], color=colour, label=label, lw=1.6, ls=ls)
    if len(frame.groupby(x)[y].count()) and frame.groupby(x)[y].count().max() > 1:
        ax.fill_between(stats.index, scale * stats["min"], scale * stats["max"], color=colour, alpha=0.15, lw=0)


def confusion_matrix(ax: Any, m: np.ndarray, title: str, class_names: Sequence[str] | None = None,
                     xlabel: str = "label", annotate: bool = True, fontsize: float | None = None,
                     min_share: float = 0.005) -> None:
    """A row-normalised confusion matrix (rows: clean class) with its cells annotated in percent (``fontsize``:
    of the cell numbers; smaller where several matrices share a row, so that two-digit cells stay apart): every
    cell of at least ``min_share`` and every diagonal cell of at least 0.5 %."""
    ax.imshow(m, cmap="Blues", vmin=0, vmax=1)
    c = m.shape[0]
    ax.set_xticks(range(c))
    ax.set_yticks(range(c))
    names = list(class_names) if class_names is not None else [str(i) for i in range(c)]
    ax.set_xticklabels(names, rotation=90)
    ax.set_yticklabels(names)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("clean label")
    ax.set_title(title)
    ax.grid(False)
    if annotate and c <= 10:
        for i in range(c):
            for j in range(c):
                if m[i, j] >= min_share or (i == j and m[i, j] >= 0.005):
                    ax.text(j, i, f"{100 * m[i, j]:.0f}", ha="center", va="center", fontsize=fontsize or FONT_SIZE - 1,
                            color="white" if m[i, j] > 0.5 else "black")


# --------------------------------------------------------------------------------------------
# the chapters' figures: grids of panels with shared legends
# --------------------------------------------------------------------------------------------
def curves_grid(epochs: Any, rows: Sequence[str], panels: Sequence[tuple[str, str]], row_column: str = "setting",
                by: str = "method", x: str = "epoch", label: Any = method_label, colors: dict[str, str] | None = None,
                height: float = 2.3, ncol: int | None = None, order: Sequence[str] | None = None) -> Any:
    """Rows of panels of per-epoch curves: one row per ``row_column`` value, one panel per ``(metric, title)``.

    Each line is the mean over the runs of one ``by`` group (a method or a named variant, drawn in its
    :func:`line_style` unless ``colors`` gives its colour), with a band from their minimum to maximum; values in %
    (metrics are fractions). Groups are drawn in registry order for methods, else in ``order`` (then by name).
    Panel titles head the top row only, row labels stand left of the rows, and one legend sits below the grid
    (``ncol`` columns; by default one row of up to six).
    """
    import matplotlib.pyplot as plt

    present = list(epochs[by].unique())
    if by == "method":
        groups = method_order(present)
    else:
        rank = {g: i for i, g in enumerate(order or ())}
        groups = sorted(present, key=lambda g: (rank.get(g, len(rank)), str(g)))
    styles = {g: line_style(str(g)) for g in groups}
    for g, colour in (colors or {}).items():
        if g in styles:
            styles[g] = {"color": colour, "ls": styles[g]["ls"]}
    fig, axes = plt.subplots(len(rows), len(panels), figsize=(FIG_WIDTH, height * len(rows) + 0.6), squeeze=False,
                             sharex=True)
    for r, row in enumerate(rows):
        e = epochs[epochs[row_column] == row]
        for c, (metric, title) in enumerate(panels):
            ax = axes[r, c]
            for g in groups:
                d = e[e[by] == g]
                if metric in d and d[metric].notna().any():
                    mean_band(ax, d, x, metric, styles[g]["color"], label(g), ls=styles[g]["ls"])
            if r == 0:
                ax.set_title(f"{title}, %")
            if r == len(rows) - 1:
                ax.set_xlabel(x)
            if c == 0:
                ax.set_ylabel(str(row))
    legend_outside(fig, axes, ncol=ncol)
    return fig


def confusion_grid(cells: dict[tuple[str, str], np.ndarray], rows: Sequence[str], columns: Sequence[str],
                   class_names: Sequence[str], min_share: float = 0.05, xlabels: Sequence[str] | None = None,
                   fontsize: float = FONT_SIZE - 2) -> Any:
    """A grid of :func:`confusion_matrix` panels, ``cells[(row, column)]`` (row-normalised; missing cells blank),
    three to a row at the book's width so that the cell numbers stay legible: column titles on top, each row's
    name beside its first panel, class names on the outer panels only. Cells are annotated (in %) where they
    hold at least ``min_share`` of their row, and on the diagonal; the colour shows the rest. ``xlabels``: the x
    axis label of each column (default "label")."""
    import matplotlib.pyplot as plt

    size = (FIG_WIDTH - 1.0) / len(columns)  # square panels, the class names left and below
    fig, axes = plt.subplots(len(rows), len(columns), figsize=(FIG_WIDTH, size * len(rows) + 1.2), squeeze=False,
                             sharex=True, sharey=True)
    for r, row in enumerate(rows):
        for c, col in enumerate(columns):
            ax = axes[r, c]
            if (row, col) not in cells:
                ax.axis("off")
                continue
            confusion_matrix(ax, cells[(row, col)], col if r == 0 else "", class_names,
                             xlabel=xlabels[c] if xlabels else "label",
                             fontsize=fontsize, min_share=min_share)
            ax.set_ylabel(f"{row}\nclean label" if c == 0 else "")
            ax.tick_params(labelleft=c == 0, labelbottom=r == len(rows) - 1)
            if r < len(rows) - 1:
                ax.set_xlabel("")
    return fig


def gap_grid(epochs: Any, rows: Sequence[str], columns: Sequence[str], pair: tuple[str, str],
             row_column: str = "noise", column_column: str = "variant", titles: dict[str, str] | None = None,
             ylabel: str = "", height: float = 2.0, x: str = "epoch") -> Any:
    """The same quantity of the clean and of the mislabeled samples in one panel, the gap between them shaded:
    ``pair = (clean metric, mislabeled metric)`` (fractions, drawn in %), one row per ``row_column`` value, one
    column per ``column_column`` value (``titles`` renames them), one y range for all panels. Lines are means over
    the runs with a band from their minimum to maximum, in the clean / mislabeled colours of the tau histograms."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), len(columns), figsize=(FIG_WIDTH, height * len(rows) + 0.6), squeeze=False,
                             sharex=True, sharey=True)
    for r, row in enumerate(rows):
        for c, col in enumerate(columns):
            ax = axes[r, c]
            d = epochs[(epochs[row_column] == row) & (epochs[column_column] == col)]
            for metric, colour, label in ((pair[0], TAU_CLEAN, "clean samples"),
                                          (pair[1], TAU_MISLABELED, "mislabeled samples")):
                mean_band(ax, d, x, metric, colour, label)
            means = d.groupby(x)[list(pair)].mean().dropna()
            if len(means):
                ax.fill_between(means.index, 100 * means[pair[0]], 100 * means[pair[1]], color="0.85", lw=0,
                                zorder=0.5, label="gap (clean − mislabeled)")
            if r == 0:
                ax.set_title((titles or {}).get(col, str(col)))
            if r == len(rows) - 1:
                ax.set_xlabel(x)
            if c == 0:
                ax.set_ylabel(f"{row}\n{ylabel}" if ylabel else str(row))
    legend_outside(fig, axes)
    return fig


def sweep_grid(runs: Any, x: str, metrics: Sequence[tuple[str, str]], columns: Sequence[str],
               column: str = "setting", reference: dict[tuple[str, str], float] | None = None,
               reference_label: str = "CE", height: float = 1.75, log: bool = True,
               marks: Sequence[tuple[float, str, str]] = ()) -> Any:
    """A hyper-parameter sweep: one row per ``(metric, label)``, one column per ``column`` value (a setting);
    each panel shows the mean ± std over seeds of the metric (in %) against ``x``.

    ``reference[(column value, metric)]`` draws a horizontal line (e.g. CE's level) labelled ``reference_label``;
    each ``(x value, label, line style)`` of ``marks`` a dark vertical line through every panel (e.g. the selected
    value and the paper's), with its label in the legend.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(metrics), len(columns), figsize=(FIG_WIDTH, height * len(metrics) + 0.7),
                             squeeze=False, sharex=True, sharey="row")
    for c, col in enumerate(columns):
        d = runs[runs[column] == col]
        for r, (metric, label) in enumerate(metrics):
            ax = axes[r, c]
            s = d.groupby(x)[metric].agg(["mean", "std"]).dropna(subset=["mean"])
            if len(s):
                ax.errorbar(s.index, 100 * s["mean"], yerr=100 * s["std"].fillna(0), color=METHOD_COLORS["nal"],
                            marker="o", ms=3.5, lw=1.4, capsize=2, label="NAL, mean ± std over seeds")
            for value, text, ls in marks:
                ax.axvline(value, color="0.3", ls=ls, lw=1.1, zorder=1.5, label=text)
            ref = (reference or {}).get((col, metric))
            if ref is not None and np.isfinite(ref):
                ax.axhline(100 * ref, color=METHOD_COLORS["ce"], ls="--", lw=1.2, label=reference_label)
            if log:
                ax.set_xscale("log")
            if r == 0:
                ax.set_title(col)
            if r == len(metrics) - 1:
                ax.set_xlabel(x)
            if c == 0:
                ax.set_ylabel(label)
    legend_outside(fig, axes, ncol=2 if marks else None)
    return fig


def tau_grid(cells: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]], rows: Sequence[str],
             columns: Sequence[str], height: float = 2.2, limits: tuple[float, float] | None = None,
             overflow: bool | None = None) -> Any:
    """A grid of :func:`tau_histogram` panels: ``cells[(row, column)] = (tau, is_noisy)``; missing cells blank.

    Every panel has the same tau axis: ``limits`` (default: :func:`tau_limits` of all cells, capped at
    :data:`TAU_CAP`; pass one value to several grids to compare them) and, when any panel has at least 0.1 % of
    its samples above it (or ``overflow`` is True), an overflow bin in every panel. Insets (panels whose samples
    fall within a few bins) are drawn when the panels are at least 1.5 inches tall.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), len(columns), figsize=(FIG_WIDTH, height * len(rows) + 0.9), squeeze=False,
                             sharex=True, sharey=True)
    limits = limits or tau_limits(*(tau for tau, _ in cells.values()), cap=TAU_CAP)
    if overflow is None:
        overflow = any(overflow_share(tau, limits) >= _OVERFLOW_MIN for tau, _ in cells.values())
    top = 0.0
    for r, row in enumerate(rows):
        for c, col in enumerate(columns):
            ax = axes[r, c]
            if (row, col) not in cells:
                ax.axis("off")
                continue
            top = max(top, tau_histogram(ax, *cells[(row, col)], limits=limits, overflow=overflow,
                                         inset=height >= 1.5, thin=False))
            if r == 0:
                ax.set_title(col)
            if c == 0:  # with many rows the row's name alone: the caption says the y axis is a fraction
                ax.set_ylabel(f"{row}\nfraction of group" if len(rows) <= 3 else str(row))
            else:
                ax.set_ylabel("")
            if r < len(rows) - 1:
                ax.set_xlabel("")
    if top > 0:  # room above the highest bar, and under the overflow shares where they are written
        axes[0, 0].set_ylim(0, 1.1 * top)
    handles = [plt.Line2D([], [], color=TAU_CLEAN, lw=1.6), plt.Line2D([], [], color=TAU_MISLABELED, lw=1.6)]
    fig.legend(handles, ["clean samples", "mislabeled samples"], loc="outside lower center", ncol=2)
    thin_tick_labels(fig, prefer=_round_tau)
    room = _room_for_overflow_text(fig, axes.ravel())
    if room > axes[0, 0].get_ylim()[1]:
        axes[0, 0].set_ylim(0, room)
    return fig


def figure_png(fig: Any, colors: int = 32) -> bytes:
    """The PNG of matplotlib figure ``fig`` at the book's dpi, palette-compressed (``nalkit._images.compact_png``)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return compact_png(buf.getvalue(), colors)


def use_compact_figures(colors: int = 32) -> None:
    """In IPython (the experiment notebook), show every figure as a palette PNG (:func:`figure_png`)."""
    from IPython import get_ipython
    from matplotlib.figure import Figure

    shell = get_ipython()
    if shell is None:
        raise RuntimeError("use_compact_figures() needs an IPython kernel (a notebook)")
    shell.display_formatter.formatters["image/png"].for_type(Figure, lambda fig: figure_png(fig, colors))
