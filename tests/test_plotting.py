"""The shared figure helpers: one colour per method everywhere, tau on a logit axis, legible sizes."""

import matplotlib
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from nalkit import plotting  # noqa: E402
from nalkit.methods import METHODS  # noqa: E402


def test_every_method_has_one_distinct_colour_blind_safe_colour():
    import itertools

    colours = plotting.method_colors()
    assert set(colours) == set(METHODS.names())
    assert colours["nal"] == "#0072B2" and colours["ce"] == "#D55E00"
    # every pair of methods far apart for normal vision and under each simulated colour-vision deficiency (the
    # pairs the book used to draw alike, CE/ELR as vermillion/orange and NAL/SELC as blue/sky blue, are 33 and 26
    # apart for normal vision)
    for vision, least in ((None, 50), ("protanopia", 15), ("deuteranopia", 15), ("tritanopia", 15)):
        for (m1, c1), (m2, c2) in itertools.combinations(colours.items(), 2):
            assert plotting.color_distance(c1, c2, vision) >= least, (m1, m2, vision)
    # the same name, the same colour: in every call, whatever else a figure draws, in any case of the name
    assert plotting.method_colors() == plotting.method_colors(), "the mapping is fixed"
    extra = plotting.method_colors(["extra"])["extra"]
    assert plotting.method_colors(["other", "extra"])["extra"] == extra
    for m, c in colours.items():
        assert plotting.line_style(m) == plotting.line_style(m.upper()) == {"color": c, "ls": "-"}
    assert plotting.method_order(["nal", "zzz", "ce"]) == ["ce", "nal", "zzz"]


def test_colour_distance_is_cielab():
    assert plotting.color_distance("#000000", "#FFFFFF") == pytest.approx(100, abs=0.1)
    assert plotting.color_distance("#0072B2", "#0072B2", "deuteranopia") == 0
    # red and green, far apart for normal vision, close for a deuteranope
    assert plotting.color_distance("#FF0000", "#00FF00") > 4 * plotting.color_distance("#FF0000", "#00FF00",
                                                                                        "deuteranopia")


def _variant_names():
    import sys
    from pathlib import Path

    from nalkit.results.horizon import LONG_VARIANTS, PROTOCOL_VARIANTS
    from nalkit.results.names import ATTENTION_CONTROLS

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book"))
    import nalbook

    return list(dict.fromkeys([*LONG_VARIANTS, *PROTOCOL_VARIANTS, *ATTENTION_CONTROLS.values(),
                               *nalbook.CONTROL_VARIANTS])), nalbook


def test_every_named_variant_has_one_style_everywhere():
    """Each variant the chapters draw (the long tier's, the protocol's, the attention controls) has its own entry
    of the palette, one (colour, line style) no other name has, the same in every call and under both names a
    variant goes by; NAL's variants stay in NAL's hue at lightnesses a reader tells apart."""
    names, nalbook = _variant_names()
    known = set(plotting.VARIANT_STYLES) | set(plotting.VARIANT_ALIASES) | set(plotting.METHOD_COLORS)
    assert [n for n in names if n not in known and n.lower() not in known] == [], "a variant without its own style"
    aliased = [plotting.VARIANT_ALIASES.get(n, n) for n in names]
    canonical = {n.lower() if n.lower() in plotting.METHOD_COLORS else n for n in aliased}
    styles = {n: tuple(plotting.line_style(n).values()) for n in canonical}
    assert len(set(styles.values())) == len(styles), "two variants drawn alike"
    assert all(plotting.line_style(n) == plotting.line_style(n) for n in names)
    assert plotting.line_style("full NAL") == plotting.line_style("NAL") == plotting.line_style("nal")
    assert plotting.line_style("τ = 1") == plotting.line_style("NAL, τ = 1")
    shades = (plotting.NAL_DARK, plotting.NAL_BLUE, plotting.NAL_LIGHT)
    for name, (colour, _) in plotting.VARIANT_STYLES.items():
        if "NAL" in name or "τ" in name:
            assert colour in shades, name
    for a, b in ((plotting.NAL_DARK, plotting.NAL_BLUE), (plotting.NAL_BLUE, plotting.NAL_LIGHT)):
        assert plotting.color_distance(a, b) >= 20 and abs(plotting._lab(a)[0] - plotting._lab(b)[0]) >= 20
    # the chapters' dictionaries read the palette
    assert all(c == plotting.line_style(v)["color"] for v, c in nalbook.VARIANT_COLORS.items())
    assert all(c == plotting.line_style(v)["color"] for v, c in nalbook.CONTROL_COLORS.items())
    # an unknown variant of NAL: NAL's blue, a fixed style
    assert plotting.line_style("NAL, something new")["color"] == plotting.NAL_BLUE
    assert plotting.line_style("NAL, something new") == plotting.line_style("NAL, something new")


def test_curves_draw_each_group_in_its_palette_style():
    import pandas as pd

    plotting.use_style()
    groups = ["full NAL", "τ = 1", "one learned τ", "one learned τ per class"]
    epochs = pd.DataFrame([{"setting": "s", "variant": v, "seed": seed, "epoch": e, "test_acc": 0.5 + 0.01 * e}
                           for v in groups for seed in (0, 1) for e in range(1, 4)])
    fig = plotting.curves_grid(epochs, ["s"], [("test_acc", "test")], by="variant", label=str, order=groups)
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert list(lines) == groups
    for v, line in lines.items():
        style = plotting.line_style(v)
        assert matplotlib.colors.same_color(line.get_color(), style["color"]) and line.get_linestyle() == style["ls"]
    plt.close(fig)


def test_logit_axis_separates_the_mass_near_one():
    assert np.allclose(plotting.logit(np.array([0.5, 0.9])), [0.0, np.log(9)])
    assert np.isfinite(plotting.logit(np.array([0.0, 1.0]))).all()
    fig, ax = plt.subplots()
    tau = np.concatenate([np.full(90, 0.999), np.full(10, 0.9999)])
    noisy = np.zeros(100, bool)
    noisy[:5] = True
    plotting.tau_histogram(ax, tau, noisy, bins=40, limits=(1e-3, 1 - 1e-6))
    heights = [p for p in ax.patches]  # step histograms are patches
    assert len(heights) == 2
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert len(labels) >= 3 and any(float(x) >= 0.999 for x in labels)
    assert plotting.overlapping_labels(fig) == []  # as many labels as fit, none touching
    lo, hi = plotting.tau_limits(tau)  # the default axis spans where the data are
    assert 0.99 < lo < 0.999 < 0.9999 < hi < 1
    ax.legend()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["clean (95)", "mislabeled (5)"]
    # 0.999 and 0.9999 land in different bins of the logit axis
    x = plotting.logit(np.array([0.999, 0.9999]))
    edges = np.linspace(*plotting.logit(np.array([1e-3, 1 - 1e-6])), 41)
    assert np.digitize(x[0], edges) != np.digitize(x[1], edges)
    plt.close(fig)


def test_style_is_legible():
    plotting.use_style()
    assert plt.rcParams["font.size"] >= 9 and plt.rcParams["legend.fontsize"] >= 8
    # drawn at the book's width: 10 pt at 110 dpi is about 15 px against 16 px body text
    assert plotting.FONT_SIZE * plotting.DPI / 72 >= 0.8 * 16


def test_confusion_matrix_annotates_percent():
    fig, ax = plt.subplots()
    m = np.array([[0.9, 0.1], [0.25, 0.75]])
    plotting.confusion_matrix(ax, m, "t", ["a", "b"])
    assert sorted(t.get_text() for t in ax.texts) == ["10", "25", "75", "90"]
    assert all(t.get_fontsize() * plotting.DPI / 72 >= 0.8 * 16 for t in ax.texts)  # >= 80 % of body text
    plt.close(fig)


def test_grids_have_one_legend_outside_and_titles_on_top():
    import pandas as pd

    rows = []
    for setting in ("sym 40 %", "asym 40 %"):
        for method in ("ce", "nal"):
            for seed in (0, 1):
                for epoch in range(1, 6):
                    rows.append({"setting": setting, "method": method, "seed": seed, "epoch": epoch,
                                 "test_acc": 0.5 + 0.01 * epoch + 0.01 * seed, "memorized": 0.1 * epoch})
    epochs = pd.DataFrame(rows)
    fig = plotting.curves_grid(epochs, ["sym 40 %", "asym 40 %"], [("test_acc", "test"), ("memorized", "memorised")])
    axes = fig.axes
    assert len(axes) == 4 and [a.get_title() for a in axes] == ["test, %", "memorised, %", "", ""]
    assert len(fig.legends) == 1 and [t.get_text() for t in fig.legends[0].get_texts()] == ["CE", "NAL"]
    assert all(a.get_legend() is None for a in axes), "no legend on top of the data"
    plt.close(fig)
    runs = pd.DataFrame({"setting": ["s"] * 4, "lam": [0.1, 0.1, 1.0, 1.0], "last_test_acc": [0.5, 0.6, 0.7, 0.8]})
    fig = plotting.sweep_grid(runs, "lam", [("last_test_acc", "test")], ["s"], reference={("s", "last_test_acc"): 0.6})
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and len(fig.legends) == 1
    assert {t.get_text() for t in fig.legends[0].get_texts()} == {"NAL, mean ± std over seeds", "CE"}
    plt.close(fig)
    tau = np.array([0.9, 0.99, 0.999])
    fig = plotting.tau_grid({("a", "epoch 5"): (tau, np.array([True, False, False]))}, ["a"], ["epoch 5", "epoch 40"])
    assert fig.axes[1].axison is False and fig.axes[0].get_title() == "epoch 5"
    plt.close(fig)


# -- labels that must not collide ---------------------------------------------------------------------------------
def _old_tau_ticks(ax, limits):
    """The tick choice tau_histogram made before it checked the drawn labels: up to 7 labels, rotated 45 degrees."""
    lo, hi = plotting.logit(np.array(limits))
    ticks = []
    for t in (t for t in plotting._LOGIT_TICKS if limits[0] <= t <= limits[1]):
        if not ticks or plotting.logit(np.array(t)) - plotting.logit(np.array(ticks[-1])) >= (hi - lo) / 7:
            ticks.append(t)
    ax.set_xticks(plotting.logit(np.array(ticks)), [np.format_float_positional(t, trim="-") for t in ticks],
                  rotation=45)
    ax.set_xlim(lo, hi)


@pytest.mark.timeout(60)
def test_overlapping_labels_finds_colliding_tick_labels_and_only_those():
    plotting.use_style()
    fig, axes = plt.subplots(1, 3, figsize=(plotting.FIG_WIDTH, 2.5))
    axes[0].set_xticks(range(10), ["0.999999"] * 10)  # ten long labels in a third of the width
    axes[1].set_xticks([0, 9], ["0", "9"])
    found = plotting.overlapping_labels(fig)
    assert found and all("'0.999999' (axes 0)" in f for f in found), found
    assert not any("axes 1" in f or "axes 2" in f for f in found)
    plt.close(fig)
    # labels matplotlib does not draw do not count: hidden ones, and ticks outside the view
    fig, ax = plt.subplots(figsize=(plotting.FIG_WIDTH, 2.5))
    ax.set_xticks(range(10), ["0.999999"] * 10)
    ax.tick_params(labelbottom=False)
    ax.set_yticks([0, 0.5, 1, 50, 51], ["0", "0.5", "1", "50", "51"])
    ax.set_ylim(0, 1)
    assert plotting.overlapping_labels(fig) == []
    plt.close(fig)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("limits", [(0.3, 1 - 1e-6), (0.22, 1 - 2.0**-24), (0.9, 1 - 1e-6), (0.25, 0.99)])
def test_tau_axis_labels_never_collide_at_the_book_width(limits):
    """The mechanism chapter's tau grids (3 columns at the book's width) at the ranges whose labels used to collide:
    the old choice of ticks is caught by the checker, the drawn figure has no two labels touching."""
    plotting.use_style()
    fig, axes = plt.subplots(2, 3, figsize=(plotting.FIG_WIDTH, 5.3), sharex=True, sharey=True)
    _old_tau_ticks(axes[1, 0], limits)
    if limits[0] < 0.5 and limits[1] > 0.9999:  # the wide ranges: the old labels collided
        assert plotting.overlapping_labels(fig)
    plt.close(fig)
    rng = np.random.default_rng(0)
    lo, hi = plotting.logit(np.array(limits))
    tau = 1 / (1 + np.exp(-rng.uniform(lo, hi + 1.0, 3000)))  # some beyond the axis: an overflow bin
    noisy = rng.random(3000) < 0.4
    cells = {(r, c): (tau, noisy) for r in ("λ = 0.5", "λ = 2") for c in ("epoch 5", "epoch 20", "epoch 40")}
    fig = plotting.tau_grid(cells, ["λ = 0.5", "λ = 2"], ["epoch 5", "epoch 20", "epoch 40"], limits=limits)
    assert plotting.overlapping_labels(fig) == []
    labels = [t.get_text() for t in fig.axes[3].get_xticklabels()]
    assert len(labels) >= 3, labels
    if limits[1] < 1 - plotting.TAU_EPS:  # samples above the axis exist: the overflow bin is labelled
        assert labels[-1] == f"> {np.format_float_positional(limits[1], trim='-')}", labels
    else:  # nothing lies above 1 - TAU_EPS (float32's tau = 1.0): no overflow bin
        assert not any(t.startswith(">") for t in labels)
    plt.close(fig)


def _assert_overflow_text_clear_of_bars(fig, ax):
    """No bar of ``ax`` reaches into the overflow shares written in its corner."""
    from matplotlib.patches import StepPatch
    from matplotlib.transforms import Bbox

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = [t for t in ax.texts if t.get_text().startswith(("clean", "mislabeled"))]
    assert texts
    box = Bbox.union([t.get_window_extent(renderer) for t in texts])
    for patch in ax.patches:
        if isinstance(patch, StepPatch):
            data = patch.get_data()
            for v, a, b in zip(data.values, data.edges[:-1], data.edges[1:]):
                (xa, y), (xb, _) = ax.transData.transform([[a, v], [b, v]])
                if xb > box.x0 and xa < box.x1:
                    assert y < box.y0, f"a bar of height {v:.3f} reaches into the overflow text"


@pytest.mark.timeout(60)
def test_tau_histogram_counts_what_lies_above_the_axis_in_a_labelled_overflow_bin():
    plotting.use_style()
    rng = np.random.default_rng(1)
    tau = 1 - 10 ** rng.uniform(-5.5, -3, 1000)
    tau[:65] = 1 - 1e-7  # 6.5 % above 0.999999
    noisy = np.zeros(1000, bool)
    noisy[::2] = True
    fig, ax = plt.subplots(figsize=(3, 2.5))
    plotting.tau_histogram(ax, tau, noisy, limits=(0.99, 1 - 1e-6))
    assert ax.get_xticklabels()[-1].get_text() == "> 0.999999"
    # the share of each group above the axis, saying which group it counts (32 of 500 clean, 33 of 500 mislabeled)
    assert [t.get_text() for t in ax.texts] == ["clean 6.4 %", "mislabeled 6.6 %"]
    assert [t.get_color() for t in ax.texts] == [plotting.TAU_CLEAN, plotting.TAU_MISLABELED]
    _assert_overflow_text_clear_of_bars(fig, ax)
    # the histogram inside the axis holds the rest: no silent pile-up in its last bin
    from matplotlib.patches import StepPatch

    steps = [p for p in ax.patches if isinstance(p, StepPatch)]
    inside = [p for p in steps if len(p.get_data().values) > 1]
    over = [p for p in steps if len(p.get_data().values) == 1]
    assert len(inside) == 2 and len(over) == 2
    for group, p_in, p_over in zip((~noisy, noisy), inside, over):
        share = float(np.mean(tau[group] > 1 - 1e-6))
        assert np.isclose(p_over.get_data().values[0], share)
        assert np.isclose(p_in.get_data().values.sum(), 1 - share)
    assert ax.get_xlim()[1] > plotting.logit(np.array(1 - 1e-6))
    plt.close(fig)
    # no sample above the axis: no overflow bin unless asked for
    fig, ax = plt.subplots(figsize=(3, 2.5))
    plotting.tau_histogram(ax, np.full(10, 0.5), np.zeros(10, bool), limits=(0.1, 0.9))
    assert not ax.texts and not any(t.get_text().startswith(">") for t in ax.get_xticklabels())
    plt.close(fig)


@pytest.mark.timeout(60)
def test_tau_histogram_insets_samples_that_fall_within_a_few_bins():
    plotting.use_style()
    rng = np.random.default_rng(2)
    tau = rng.uniform(0.34, 0.43, 2000)
    noisy = rng.random(2000) < 0.8
    fig, ax = plt.subplots(figsize=(3, 2.5))
    plotting.tau_histogram(ax, tau, noisy, limits=(0.2, 1 - 1e-6))
    assert len(ax.child_axes) == 1
    inset = ax.child_axes[0]
    ends = [float(t.get_text()) for t in inset.get_xticklabels()]
    assert len(ends) == 2 and 0.33 < ends[0] < 0.35 and 0.42 < ends[1] < 0.44  # the range of the samples
    assert plotting.overlapping_labels(fig) == []
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(3, 2.5))  # spread over the axis: no inset
    plotting.tau_histogram(ax, 1 / (1 + np.exp(-rng.uniform(-1, 12, 2000))), noisy, limits=(0.2, 1 - 1e-6))
    assert ax.child_axes == []
    plt.close(fig)


@pytest.mark.timeout(60)
def test_tau_grids_given_one_range_compare():
    plotting.use_style()
    a = (np.array([0.4, 0.5, 0.6]), np.array([True, False, False]))
    b = (np.array([0.999, 0.9999, 0.99999]), np.array([True, False, False]))
    limits = plotting.tau_limits(a[0], b[0], cap=plotting.TAU_CAP)
    figs = [plotting.tau_grid({("r", "epoch 5"): cell}, ["r"], ["epoch 5"], limits=limits) for cell in (a, b)]
    assert figs[0].axes[0].get_xlim() == figs[1].axes[0].get_xlim()
    assert limits[1] <= plotting.TAU_CAP
    for fig in figs:
        plt.close(fig)


@pytest.mark.timeout(120)
def test_chapter_grids_have_no_colliding_labels_and_legends_off_the_data():
    import pandas as pd

    plotting.use_style()
    runs = pd.DataFrame({"setting": ["sym 40 % (36 % flipped)"] * 8 + ["asym 40 % (20 % flipped)"] * 8,
                         "lam": [0.01, 0.05, 0.1, 0.5, 2, 5, 10, 50] * 2,
                         "last_test_acc": np.linspace(0.3, 0.8, 16), "last_clean_acc": np.linspace(0.3, 0.95, 16)})
    fig = plotting.sweep_grid(runs, "lam", [("last_test_acc", "test acc\n(last) %"),
                                            ("last_clean_acc", "clean samples\nfitted %")],
                              ["sym 40 % (36 % flipped)", "asym 40 % (20 % flipped)"], height=1.5)
    assert plotting.overlapping_labels(fig) == []
    plt.close(fig)
    # a single-axes figure with its legend below (the method chapter's phi figure): the legend covers no data
    fig, ax = plt.subplots(figsize=(6, 3.9))
    for t in (0.1, 0.3, 0.5, 0.7, 0.9, 0.99):
        ax.plot([0, 1], [0, t], label=f"τ = {t}")
    plotting.legend_outside(fig, ax)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend, box = fig.legends[0].get_window_extent(renderer), ax.get_window_extent(renderer)
    assert legend.y1 <= box.y0, "the legend overlaps the axes"
    assert plotting.overlapping_labels(fig) == []
    plt.close(fig)


@pytest.mark.timeout(180)
def test_horizon_tau_grids_share_one_axis_and_no_label_collides():
    """The horizon chapter's grids: seven snapshot rows, two schedules, 1.05 inches a row, one tau range for the
    three settings; no two tick labels touch (neighbouring panels included), and every overflow share names its
    group and stays clear of the bars."""
    plotting.use_style()
    rng = np.random.default_rng(3)
    grids = []
    for centre in (1.0, 6.0, 11.0):  # three settings whose tau sit at different places
        cells = {}
        for e in (5, 20, 40, 60, 100, 150, 200):
            for col in ("book's schedule", "authors' schedule"):
                x = rng.normal(centre + e / 40, 1.5, 2000)
                cells[(f"epoch {e}", col)] = (1 / (1 + np.exp(-x)), rng.random(2000) < 0.4)
        grids.append(cells)
    taus = [tau for cells in grids for tau, _ in cells.values()]
    limits = plotting.tau_limits(*taus, cap=plotting.TAU_CAP)
    xlims, written = [], 0
    for cells in grids:
        rows = sorted({r for r, _ in cells}, key=lambda r: int(r.split()[1]))
        fig = plotting.tau_grid(cells, rows, ["book's schedule", "authors' schedule"], height=1.05, limits=limits,
                                overflow=True)
        assert plotting.overlapping_labels(fig, pad=1.0) == []
        xlims.append(fig.axes[0].get_xlim())
        for ax in fig.axes:
            texts = [t.get_text() for t in ax.texts]
            assert all(t.startswith(("clean ", "mislabeled ")) for t in texts), texts
            if texts:
                written += 1
                _assert_overflow_text_clear_of_bars(fig, ax)
        plt.close(fig)
    assert xlims[0] == xlims[1] == xlims[2]
    assert written >= 10, "the grids have overflow shares to check"


@pytest.mark.timeout(120)
def test_confusion_grid_is_legible_and_has_every_column():
    plotting.use_style()
    rng = np.random.default_rng(4)
    rows, columns = ["sym 40 %", "sym 80 %", "asym 40 %"], ["noisy labels", "NAL corrected", "SELC corrected"]
    cells = {}
    for r in rows:
        for c in columns:
            m = rng.dirichlet(np.ones(10) * 0.3, size=10) * 0.4 + np.eye(10) * 0.6
            cells[(r, c)] = m / m.sum(1, keepdims=True)
    names = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"]
    fig = plotting.confusion_grid(cells, rows, columns, names, min_share=0.05)
    assert fig.get_size_inches()[0] <= plotting.FIG_WIDTH
    assert [a.get_title() for a in fig.axes[:3]] == columns
    assert plotting.overlapping_labels(fig) == []
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax, (r, c) in zip(fig.axes, [(r, c) for r in rows for c in columns]):
        m = cells[(r, c)]
        want = sum(1 for i in range(10) for j in range(10) if m[i, j] >= 0.05 or (i == j and m[i, j] >= 0.005))
        assert len(ax.texts) == want
        boxes = [t.get_window_extent(renderer) for t in ax.texts]
        assert all(b.height >= 11 for b in boxes), "cell numbers at least 11 px tall at the book's dpi"
        cell = ax.transData.transform([[0, 0], [1, 0]])
        assert all(b.width <= cell[1, 0] - cell[0, 0] for b in boxes), "a number wider than its cell"
    plt.close(fig)


@pytest.mark.timeout(120)
def test_sweep_marks_the_selected_and_the_papers_value():
    import pandas as pd

    plotting.use_style()
    runs = pd.DataFrame({"setting": ["a"] * 8 + ["b"] * 8, "lam": [0.01, 0.05, 0.1, 0.5, 2, 5, 10, 50] * 2,
                         "last_test_acc": np.linspace(0.3, 0.8, 16), "last_clean_acc": np.linspace(0.3, 0.95, 16)})
    marks = [(2.0, "selected λ = 2", "-"), (0.5, "paper's λ = 0.5", "-.")]
    fig = plotting.sweep_grid(runs, "lam", [("last_test_acc", "test"), ("last_clean_acc", "clean")], ["a", "b"],
                              reference={("a", "last_test_acc"): 0.6}, marks=marks)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "selected λ = 2" in labels and "paper's λ = 0.5" in labels
    for ax in fig.axes:  # in every panel, a vertical line at each value
        vertical = {line.get_xdata()[0] for line in ax.get_lines() if line.get_xdata()[0] == line.get_xdata()[-1]}
        assert {2.0, 0.5} <= vertical
    assert plotting.overlapping_labels(fig) == []
    assert fig.get_size_inches()[0] <= plotting.FIG_WIDTH
    plt.close(fig)


@pytest.mark.timeout(120)
def test_gap_grid_draws_clean_and_mislabeled_in_one_panel_on_one_range():
    import pandas as pd

    plotting.use_style()
    rows = []
    for noise, low in (("sym 40 %", 0.1), ("asym 40 %", 0.6)):
        for variant in ("NAL", "NAL, authors' schedule"):
            for seed in (0, 1):
                for e in range(1, 21):
                    rows.append({"noise": noise, "variant": variant, "seed": seed, "epoch": e,
                                 "phi_clean": min(1.0, 0.5 + e / 20), "phi_mislabeled": min(1.0, low + e / 40)})
    epochs = pd.DataFrame(rows)
    fig = plotting.gap_grid(epochs, ["sym 40 %", "asym 40 %"], ["NAL", "NAL, authors' schedule"],
                            ("phi_clean", "phi_mislabeled"), titles={"NAL": "book's schedule"}, ylabel="φ, %")
    assert len(fig.axes) == 4 and fig.axes[0].get_title() == "book's schedule"
    assert fig.axes[1].get_title() == "NAL, authors' schedule"
    assert len({ax.get_ylim() for ax in fig.axes}) == 1, "one y range"
    for ax in fig.axes:
        colours = [line.get_color() for line in ax.get_lines()]
        assert colours == [plotting.TAU_CLEAN, plotting.TAU_MISLABELED]
        assert any(c.get_label().startswith("gap") for c in ax.collections)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["clean samples", "mislabeled samples", "gap (clean − mislabeled)"]
    assert plotting.overlapping_labels(fig) == []
    plt.close(fig)
