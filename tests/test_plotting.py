"""The shared figure helpers: one colour per method everywhere, tau on a logit axis, legible sizes."""

import matplotlib

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
    assert 3 <= len(labels) <= 8 and any(float(x) >= 0.999 for x in labels)
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
