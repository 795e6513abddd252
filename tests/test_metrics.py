"""nalkit.metrics: AUROC against scikit-learn, the ROC curve, confusion matrices, masked means."""

from __future__ import annotations

import numpy as np
import pytest

from nalkit.metrics import auroc, average_precision, confusion, masked_mean, roc_curve


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("levels", [None, 5, 2])
def test_auroc_matches_sklearn(seed: int, levels: int | None) -> None:
    """Continuous scores, and scores on a few levels (many ties, which count 1/2 in both)."""
    roc_auc_score = pytest.importorskip("sklearn.metrics").roc_auc_score
    rng = np.random.default_rng(seed)
    positive = rng.random(300) < 0.3
    scores = rng.normal(size=300) + 0.8 * positive  # informative but overlapping
    if levels is not None:
        scores = np.round(scores * levels / 4) * 4 / levels
        assert len(np.unique(scores)) < 40  # really tied
    assert auroc(scores, positive) == pytest.approx(roc_auc_score(positive, scores), abs=1e-12)


def test_auroc_known_values() -> None:
    assert auroc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0
    assert auroc(np.array([0.9, 0.8, 0.2, 0.1]), np.array([0, 0, 1, 1])) == 0.0
    assert auroc(np.full(6, 0.5), np.array([0, 1, 0, 1, 0, 1])) == 0.5  # all tied: chance
    # one positive above one of two negatives and tied with the other: (1 + 1/2) / 2
    assert auroc(np.array([0.3, 0.5, 0.5]), np.array([False, False, True])) == 0.75


def test_auroc_undefined_cases_are_nan() -> None:
    scores = np.array([0.1, 0.4, 0.7])
    assert np.isnan(auroc(scores, np.array([True, True, True])))  # no negatives
    assert np.isnan(auroc(scores, np.array([False, False, False])))  # no positives
    assert np.isnan(auroc(np.array([], dtype=float), np.array([], dtype=bool)))
    positive = np.array([False, True, True])
    for bad in (np.nan, np.inf, -np.inf):
        assert np.isnan(auroc(np.array([0.1, bad, 0.7]), positive))


def test_roc_curve_endpoints_monotone_and_area() -> None:
    rng = np.random.default_rng(0)
    positive = rng.random(200) < 0.4
    scores = rng.normal(size=200) + positive  # distinct scores (continuous)
    fpr, tpr = roc_curve(scores, positive)
    assert fpr.shape == tpr.shape == (201,)  # one point per threshold, plus the origin
    assert (fpr[0], tpr[0]) == (0.0, 0.0)
    assert fpr[-1] == pytest.approx(1.0) and tpr[-1] == pytest.approx(1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    # each step moves exactly one of the two rates (one sample passes the threshold)
    assert np.all((np.diff(fpr) > 0) != (np.diff(tpr) > 0))
    # without ties the area under the plotted curve is the AUROC
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    assert area == pytest.approx(auroc(scores, positive), abs=1e-12)


def test_roc_curve_highest_score_first() -> None:
    fpr, tpr = roc_curve(np.array([0.9, 0.1, 0.5]), np.array([True, False, False]))
    # 0.9 (positive) passes first, then 0.5, then 0.1 (negatives)
    np.testing.assert_allclose(tpr, [0, 1, 1, 1])
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 1])


def test_confusion_counts_and_rows() -> None:
    true = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    pred = np.array([0, 1, 0, 1, 1, 0, 2, 2, 1])
    counts = confusion(true, pred, 4, normalize=False)
    expected = np.array([[2, 1, 0, 0], [0, 2, 0, 0], [1, 1, 2, 0], [0, 0, 0, 0]], dtype=float)
    np.testing.assert_array_equal(counts, expected)
    assert counts.sum() == len(true)
    m = confusion(true, pred, 4)
    np.testing.assert_allclose(m.sum(axis=1), [1, 1, 1, 0])  # class 3 never occurs: a zero row, not NaN
    np.testing.assert_allclose(m[2], [0.25, 0.25, 0.5, 0])
    np.testing.assert_allclose(np.diag(m)[:3], [2 / 3, 1, 0.5])


def test_confusion_ignores_unknown_labels() -> None:
    # -1 marks an unknown label (e.g. Clothing1M training images without a clean label)
    m = confusion(np.array([0, -1, 1, 1]), np.array([0, 1, -1, 0]), 2, normalize=False)
    np.testing.assert_array_equal(m, [[1, 0], [1, 0]])


def test_masked_mean() -> None:
    values = np.array([1.0, 2.0, 3.0, 10.0])
    assert masked_mean(values, np.array([True, False, True, False])) == 2.0
    assert masked_mean(values, np.ones(4, dtype=bool)) == 4.0
    assert np.isnan(masked_mean(values, np.zeros(4, dtype=bool)))
    assert np.isnan(masked_mean(np.array([]), np.array([], dtype=bool)))


def test_roc_curve_merges_ties_so_its_area_is_the_auroc():
    from nalkit.metrics import auroc, roc_curve

    rng = np.random.default_rng(3)
    scores = np.round(rng.random(400), 1)  # many ties
    positive = rng.random(400) < 0.3
    fpr, tpr = roc_curve(scores, positive)
    assert len(fpr) == len(np.unique(scores)) + 1 and fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1
    assert np.trapezoid(tpr, fpr) == pytest.approx(auroc(scores, positive))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("levels", [None, 3])
def test_average_precision_matches_sklearn(seed: int, levels: int | None) -> None:
    """Average precision against scikit-learn's, continuous and tied scores; chance is the positive fraction."""
    average_precision_score = pytest.importorskip("sklearn.metrics").average_precision_score
    rng = np.random.default_rng(seed)
    positive = rng.random(400) < 0.25
    scores = rng.normal(size=400) + positive
    if levels is not None:
        scores = np.round(scores * levels) / levels
    assert average_precision(scores, positive) == pytest.approx(average_precision_score(positive, scores), abs=1e-12)
    assert average_precision(np.zeros(400), positive) == pytest.approx(positive.mean())
    assert np.isnan(average_precision(scores, np.zeros(400, bool)))
