"""Figures of run records, in one style: the book's chapters, the experiment notebook and ``explore.ipynb``.

One colour per method, fixed across every figure (:func:`method_colors`: the Okabe-Ito palette, safe for the
common colour-vision deficiencies, assigned in the order of the method registry), text sizes readable at the
book's width (:func:`use_style`), legends outside the data, and the attention weight tau on a logit axis so
that a mass of samples at tau ~ 1 shows as such (:func:`tau_histogram`).

matplotlib is imported here and only here; the training code never imports this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

#: The palette of Okabe & Ito (2008), "Color Universal Design", distinguishable under protanopia, deuteranopia
#: and tritanopia.
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
#: NAL blue, CE vermillion: the pair every chapter contrasts gets the two most distinct colours.
_FIXED = {"nal": "#0072B2", "ce": "#D55E00"}

#: Base font size (points) of every figure. Figures are drawn 7 inches wide at 110 dpi, the book's text
#: column at 100 % zoom, so 10 pt renders at about 15 px: 90 % of the book's 16 px body text.
FONT_SIZE = 10
FIG_WIDTH = 7.0
DPI = 110


def method_colors(methods: Iterable[str] | None = None) -> dict[str, str]:
    """``{method: colour}`` for every registered method (and any extra names given), the same in every figure."""
    from .methods import METHODS

    names = list(METHODS.names()) + [m for m in (methods or ()) if m not in METHODS]
    free = [c for c in OKABE_ITO if c not in _FIXED.values()]
    out, i = {}, 0
    for name in names:
        if name in _FIXED:
            out[name] = _FIXED[name]
        else:
            out[name] = free[i % len(free)]
            i += 1
    return out


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
# tau
# --------------------------------------------------------------------------------------------
TAU_CLEAN, TAU_MISLABELED = "#0072B2", "#D55E00"
_LOGIT_TICKS = (1e-4, 1e-3, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.97, 0.99, 0.997, 0.999, 0.9997, 0.9999, 0.99999,
                0.999999, 0.9999999)
# Tau is drawn within TAU_EPS of 0 and 1, float32's resolution next to 1 (2^-24 = 6e-8), the resolution of the
# records made before tau was kept as its logit (there tau = 1.0 exactly stands for tau >= 1 - 6e-8).
TAU_EPS = 2.0**-24


def logit(p: np.ndarray, eps: float = TAU_EPS) -> np.ndarray:
    """``log(p / (1 - p))``, with ``p`` clipped to ``[eps, 1 - eps]`` (float32 tau reaches 1.0 exactly)."""
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    return np.log(p) - np.log1p(-p)


def tau_limits(*taus: np.ndarray, pad: float = 0.4) -> tuple[float, float]:
    """The tau range the data occupy, on the logit scale: the 0.1 % and 99.9 % quantiles of all ``taus``, padded
    by ``pad`` logit units (so a histogram spends its bins where the samples are), within
    (``TAU_EPS``, 1 - ``TAU_EPS``)."""
    x = np.concatenate([logit(np.asarray(t)) for t in taus if len(t)]) if taus else np.zeros(0)
    if not len(x):
        return 1e-3, 1 - TAU_EPS
    lo, hi = np.quantile(x, [0.001, 0.999])
    lo, hi = lo - pad, max(hi + pad, lo + 2 * pad)
    expit = lambda v: float(1.0 / (1.0 + np.exp(-v)))  # noqa: E731
    return max(expit(lo), TAU_EPS), min(expit(hi), 1 - TAU_EPS)


def tau_histogram(ax: Any, tau: np.ndarray, is_noisy: np.ndarray, bins: int = 40,
                  limits: tuple[float, float] | None = None) -> None:
    """Step histograms of tau for clean and mislabeled samples on a logit axis (fraction of each group).

    On a linear axis every tau above 0.99 falls into one bin; on the logit axis 0.9, 0.99, 0.999 and
    0.9999 are equally far apart, so "tau ~ 1 for everybody" and "clean samples move towards 1" look
    different. ``limits`` (default: :func:`tau_limits` of the data) bound the axis; values outside them are
    drawn in the outermost bins.
    """
    limits = limits or tau_limits(tau)
    lo, hi = logit(np.array(limits))
    edges = np.linspace(lo, hi, bins + 1)
    tau, is_noisy = np.asarray(tau), np.asarray(is_noisy, dtype=bool)
    for mask, label, colour in ((~is_noisy, "clean", TAU_CLEAN), (is_noisy, "mislabeled", TAU_MISLABELED)):
        x = np.clip(logit(tau[mask]), lo, hi)
        if not len(x):
            continue
        weights = np.full(len(x), 1.0 / len(x))
        ax.hist(x, bins=edges, weights=weights, histtype="step", lw=1.6, color=colour,
                label=f"{label} ({len(x):,})")
    ticks: list[float] = []
    for t in (t for t in _LOGIT_TICKS if limits[0] <= t <= limits[1]):
        # at most ~7 labels across the axis: they must not collide at the book's width
        if not ticks or logit(np.array(t)) - logit(np.array(ticks[-1])) >= (hi - lo) / 7:
            ticks.append(t)
    ax.set_xticks(logit(np.array(ticks)))
    ax.set_xticklabels([np.format_float_positional(t, trim="-") for t in ticks], rotation=45)
    ax.set_xlim(lo, hi)
    ax.set_xlabel("τ (logit scale)")
    ax.set_ylabel("fraction of group")


# --------------------------------------------------------------------------------------------
# curves and matrices
# --------------------------------------------------------------------------------------------
def mean_band(ax: Any, frame: Any, x: str, y: str, colour: str, label: str, scale: float = 100.0) -> None:
    """Mean of ``y`` over the runs in ``frame`` against ``x``, with a band from their minimum to maximum."""
    stats = frame.groupby(x)[y].agg(["mean", "min", "max"]).dropna()
    if not len(stats):
        return
    ax.plot(stats.index, scale * stats["mean"], color=colour, label=label, lw=1.6)
    if len(frame.groupby(x)[y].count()) and frame.groupby(x)[y].count().max() > 1:
        ax.fill_between(stats.index, scale * stats["min"], scale * stats["max"], color=colour, alpha=0.15, lw=0)


def confusion_matrix(ax: Any, m: np.ndarray, title: str, class_names: Sequence[str] | None = None,
                     xlabel: str = "label", annotate: bool = True, fontsize: float | None = None) -> None:
    """A row-normalised confusion matrix (rows: clean class) with its cells annotated in percent (``fontsize``:
    of the cell numbers; smaller where several matrices share a row, so that two-digit cells stay apart)."""
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
                if m[i, j] >= 0.005:
                    ax.text(j, i, f"{100 * m[i, j]:.0f}", ha="center", va="center", fontsize=fontsize or FONT_SIZE - 1,
                            color="white" if m[i, j] > 0.5 else "black")


# --------------------------------------------------------------------------------------------
# the chapters' figures: grids of panels with shared legends
# --------------------------------------------------------------------------------------------
def curves_grid(epochs: Any, rows: Sequence[str], panels: Sequence[tuple[str, str]], row_column: str = "setting",
                by: str = "method", x: str = "epoch", label: Any = method_label, colors: dict[str, str] | None = None,
                height: float = 2.3) -> Any:
    """Rows of panels of per-epoch curves: one row per ``row_column`` value, one panel per ``(metric, title)``.

    Each line is the mean over the runs of one ``by`` group, with a band from their minimum to maximum; values
    in % (metrics are fractions). Panel titles head the top row only, row labels stand left of the rows, and
    one legend sits below the grid.
    """
    import matplotlib.pyplot as plt

    groups = method_order(epochs[by].unique()) if by == "method" else sorted(epochs[by].unique(), key=str)
    colors = colors or method_colors(groups)
    fig, axes = plt.subplots(len(rows), len(panels), figsize=(FIG_WIDTH, height * len(rows) + 0.6), squeeze=False,
                             sharex=True)
    for r, row in enumerate(rows):
        e = epochs[epochs[row_column] == row]
        for c, (metric, title) in enumerate(panels):
            ax = axes[r, c]
            for g in groups:
                d = e[e[by] == g]
                if metric in d and d[metric].notna().any():
                    mean_band(ax, d, x, metric, colors.get(g, "grey"), label(g))
            if r == 0:
                ax.set_title(f"{title}, %")
            if r == len(rows) - 1:
                ax.set_xlabel(x)
            if c == 0:
                ax.set_ylabel(str(row))
    legend_outside(fig, axes)
    return fig


def sweep_grid(runs: Any, x: str, metrics: Sequence[tuple[str, str]], columns: Sequence[str],
               column: str = "setting", reference: dict[tuple[str, str], float] | None = None,
               reference_label: str = "CE", height: float = 1.75, log: bool = True) -> Any:
    """A hyper-parameter sweep: one row per ``(metric, label)``, one column per ``column`` value (a setting);
    each panel shows the mean ± std over seeds of the metric (in %) against ``x``.

    ``reference[(column value, metric)]`` draws a horizontal line (e.g. CE's level) labelled ``reference_label``.
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
                ax.errorbar(s.index, 100 * s["mean"], yerr=100 * s["std"].fillna(0), color=_FIXED["nal"], marker="o",
                            ms=3.5, lw=1.4, capsize=2, label="NAL, mean ± std over seeds")
            ref = (reference or {}).get((col, metric))
            if ref is not None and np.isfinite(ref):
                ax.axhline(100 * ref, color=_FIXED["ce"], ls="--", lw=1.2, label=reference_label)
            if log:
                ax.set_xscale("log")
            if r == 0:
                ax.set_title(col)
            if r == len(metrics) - 1:
                ax.set_xlabel(x)
            if c == 0:
                ax.set_ylabel(label)
    legend_outside(fig, axes)
    return fig


def tau_grid(cells: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]], rows: Sequence[str],
             columns: Sequence[str], height: float = 2.2) -> Any:
    """A grid of :func:`tau_histogram` panels: ``cells[(row, column)] = (tau, is_noisy)``; missing cells blank."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), len(columns), figsize=(FIG_WIDTH, height * len(rows) + 0.9), squeeze=False,
                             sharex=True, sharey=True)
    limits = tau_limits(*(tau for tau, _ in cells.values()))
    for r, row in enumerate(rows):
        for c, col in enumerate(columns):
            ax = axes[r, c]
            if (row, col) not in cells:
                ax.axis("off")
                continue
            tau_histogram(ax, *cells[(row, col)], limits=limits)
            if r == 0:
                ax.set_title(col)
            if c == 0:  # with many rows the row's name alone: the caption says the y axis is a fraction
                ax.set_ylabel(f"{row}\nfraction of group" if len(rows) <= 3 else str(row))
            else:
                ax.set_ylabel("")
            if r < len(rows) - 1:
                ax.set_xlabel("")
    handles = [plt.Line2D([], [], color=TAU_CLEAN, lw=1.6), plt.Line2D([], [], color=TAU_MISLABELED, lw=1.6)]
    fig.legend(handles, ["clean samples", "mislabeled samples"], loc="outside lower center", ncol=2)
    return fig


def compact_png(png: bytes, colors: int = 32) -> bytes:
    """``png`` re-encoded with a palette of at most ``colors`` colours (a line plot needs few): about a quarter
    of the bytes of matplotlib's RGBA PNG at the same size, for the executed notebooks committed with every run.
    A PNG that is already a palette image comes back unchanged."""
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(png))
    if image.mode == "P":
        return png
    quantized = image.convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    out = io.BytesIO()
    quantized.save(out, format="PNG", optimize=True)
    return out.getvalue() if len(out.getvalue()) < len(png) else png


def figure_png(fig: Any, colors: int = 32) -> bytes:
    """The PNG of matplotlib figure ``fig`` at the book's dpi, palette-compressed (:func:`compact_png`)."""
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
