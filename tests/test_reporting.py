"""The paper's reporting rules (nalkit.results.report and its three rules) on synthetic per-epoch records."""

import math

import numpy as np
import pandas as pd
import pytest

from nalkit.results import (
    BASELINE_NOTE,
    REPORTING_RULES,
    at_best_epoch,
    last_epoch,
    max_over_epochs,
    report,
)

NAN = float("nan")


def frame(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    return pd.DataFrame({"epoch": np.arange(1, n + 1), **columns})


def test_last_epoch_skips_epochs_without_evaluation():
    ep = frame(test_acc=[0.5, NAN, 0.7, NAN, 0.6])
    r = last_epoch(ep, "test_acc")
    assert (r.value, r.epoch, r.rule) == (0.6, 5, "last epoch")
    ep = frame(test_acc=[0.5, NAN, 0.7, NAN, NAN])  # eval_every: the last evaluated epoch
    assert last_epoch(ep).epoch == 3


def test_at_best_epoch_reads_the_test_accuracy_where_validation_peaks_earliest_on_ties():
    ep = frame(clean_val_acc=[0.60, 0.72, 0.70, 0.72, 0.65], test_acc=[0.61, 0.70, 0.74, 0.73, 0.66])
    r = at_best_epoch(ep, "test_acc", "clean_val_acc")
    # epoch 2 and 4 tie on validation: the authors keep a new best only when strictly higher, so epoch 2
    assert (r.value, r.epoch) == (0.70, 2)
    assert "clean_val_acc" in r.rule and "72.00 %" in r.rule
    assert r.value != ep.test_acc.max()  # not the test maximum (0.74 at epoch 3)


def test_max_over_epochs_is_labelled_and_earliest_on_ties():
    ep = frame(test_top5=[0.80, 0.90, 0.85, 0.90])
    r = max_over_epochs(ep, "test_top5", what="WebVision val top-5")
    assert (r.value, r.epoch, r.rule) == (0.90, 2, "maximum over epochs")
    assert r.label.startswith("WebVision val top-5 = 90.00 % (maximum over epochs: epoch 2")


def test_report_cifar_is_the_last_epoch():
    ep = frame(test_acc=[0.5, 0.9, 0.8])
    (r,) = report(ep, "cifar10")
    assert (r.value, r.epoch) == (0.8, 3) and "appendix B" in r.source and r.note == ""
    for name in ("cifar100", "fashion_mnist", "animal10n"):
        assert [x.epoch for x in report(ep, name)] == [3]


def test_report_clothing1m_is_test_at_best_clean_validation_then_last():
    ep = frame(clean_val_acc=[0.6, 0.8, 0.7], test_acc=[0.65, 0.78, 0.76])
    best, last = report(ep, "clothing1m")
    assert (best.value, best.epoch) == (0.78, 2) and "best clean_val_acc" in best.rule
    assert "train_clothing1m.py:243-266" in best.source
    assert (last.value, last.epoch, last.rule) == (0.76, 3, "last epoch")


def test_report_webvision_gives_each_metric_its_own_maximum_and_the_last_epoch():
    ep = frame(test_acc=[0.60, 0.70, 0.65], test_top5=[0.85, 0.84, 0.88],
               ilsvrc12_val_acc=[0.55, 0.58, 0.57], ilsvrc12_val_top5=[0.82, 0.80, 0.81])
    out = report(ep, "webvision")
    best = {r.what: (r.value, r.epoch) for r in out if r.rule == "maximum over epochs"}
    assert best == {"WebVision val top-1": (0.70, 2), "WebVision val top-5": (0.88, 3),
                    "ILSVRC12 val top-1": (0.58, 2), "ILSVRC12 val top-5": (0.82, 1)}  # four different epochs allowed
    assert all("train_webvision.py:248-255" in r.source for r in out if r.rule == "maximum over epochs")
    last = {r.what: r.value for r in out if r.rule == "last epoch"}
    assert last == {"WebVision val top-1": 0.65, "WebVision val top-5": 0.88, "ILSVRC12 val top-1": 0.57,
                    "ILSVRC12 val top-5": 0.81}
    # without the ILSVRC12 images only WebVision val is reported
    assert {r.what for r in report(ep[["epoch", "test_acc", "test_top5"]], "webvision")} == \
        {"WebVision val top-1", "WebVision val top-5"}


def test_baseline_numbers_say_they_ran_on_nals_schedule():
    ep = frame(test_acc=[0.5, 0.6], method=["elr", "elr"])
    (r,) = report(ep, "cifar10")
    assert r.note == BASELINE_NOTE and "NAL's schedule" in r.label
    (r,) = report(ep.assign(method="nal"), "cifar10")
    assert r.note == "" and "schedule" not in r.label
    (r,) = report(frame(test_acc=[0.5]), "cifar10", method="selc")
    assert r.note == BASELINE_NOTE


def test_report_errors_name_what_is_wrong():
    with pytest.raises(ValueError, match="no reporting rule for dataset 'mnist'"):
        report(frame(test_acc=[0.5]), "mnist")
    with pytest.raises(ValueError, match="recorded no 'clean_val_acc'"):
        report(frame(test_acc=[0.5]), "clothing1m")
    with pytest.raises(ValueError, match="never evaluated"):
        last_epoch(frame(test_acc=[NAN, NAN]))
    two = pd.concat([frame(test_acc=[0.5]).assign(run="a"), frame(test_acc=[0.6]).assign(run="b")])
    with pytest.raises(ValueError, match="one run, not of 2"):
        report(two, "cifar10")
    assert set(REPORTING_RULES) == {"cifar10", "cifar100", "fashion_mnist", "animal10n", "clothing1m", "webvision"}
    assert not math.isnan(last_epoch(frame(test_acc=[0.1])).value)
