"""The shared figure helpers: one colour per method everywhere, tau on a logit axis, legible sizes."""

import matplotlib
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from nalkit import plotting  # noqa: E402
from nalkit.methods import METHODS  # noqa: E402


def test_every_method_has_one_distinct_colour_blind_safe_colour():
    colours = plotting.method_colors()
    assert set(colours) == set(METHODS.names())
    assert len(set(colours.values())) == len(colours), "two methods share a colour"
    assert set(colours.values()) <= set(plotting.OKABE_ITO)
    assert colours["nal"] == "#0072B2" and colours["ce"] == "#D55E00"
    assert plotting.method_colors(["extra"])["extra"] in plotting.OKABE_ITO
    assert plotting.method_colors() == plotting.method_colors(), "the mapping is fixed"
    assert plotting.method_order(["nal", "zzz", "ce"]) == ["ce", "nal", "zzz"]


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
    assert [t.get_text() for t in ax.texts] == ["6.5 %"]
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
