"""One vocabulary of run names: what the book, the claims table and the figures call a method or a variant.

A run's name is its method's (``CE``, ``SCE (α 0.05)`` for SCE at an alpha other than its authors' 0.1) or, for
NAL, ``NAL`` with its lambda when that is not the selected 2 (``NAL (λ 0.5)``) followed by every departure from
full NAL, each phrased by :data:`DEPARTURES` and in its order: ``NAL (λ 0.5), authors' schedule, one learned τ``.

* :func:`long_variant` -- the whole name (the long, regime and claims tiers, and every figure legend);
* :func:`nal_variant` -- the same departures without the ``NAL (λ ...)`` prefix, ``full NAL`` when there is none
  (the chapters that compare NAL's parts at one lambda: the ablations and the attention controls); other methods
  get their whole name.

Both read the config columns of :func:`nalkit.results.load_runs` and share :func:`departures`, so no departure
has two names.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

#: NAL's attention controls (``method.nal.attention_mode``) as every chapter names them
ATTENTION_CONTROLS = {"global": "one learned τ", "class": "one learned τ per class",
                      "schedule": "τ = full NAL's mean per epoch"}
#: every other departure from full NAL, by name (the order runs follow in a name)
DEPARTURES = {
    "authors": "authors' schedule",  # q updated in every batch of the epochs divisible by 10, from epoch 60
    "epoch": "q updated once per epoch",
    "targets": "no target estimation",
    "attention": "τ = 1",
}
#: what the authors' target schedule is: ``(update_period, es)`` of their CIFAR code (loss.py, train_cifar.py)
AUTHORS_SCHEDULE = (10, 60)
#: the lambda the book selected (configs/grids/lambda.yaml); a NAL run at another lambda carries it in its name
SELECTED_LAMBDA = 2.0
#: NAL's and SCE's default alphas: a run at another one carries it in its name
NAL_ALPHA, SCE_ALPHA = 0.9, 0.1
#: a full NAL run, as :func:`nal_variant` names it
FULL = "full NAL"


def _value(row: Any, key: str) -> Any:
    value = row.get(key)
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else value


def departures(row: Any) -> list[str]:
    """The departures of a NAL run from full NAL at its lambda, in the vocabulary's order (empty for full NAL)."""
    parts = []
    period, es = _value(row, "update_period"), _value(row, "es")
    if _value(row, "update_when") == "epoch":
        parts.append(DEPARTURES["epoch"])
    elif period is not None and int(period) > 1:
        if (int(period), None if es is None else int(es)) == AUTHORS_SCHEDULE:
            parts.append(DEPARTURES["authors"])
        else:
            parts.append(f"q updated every {int(period)}th epoch" + (f" from epoch {int(es)}" if es is not None else ""))
    if _value(row, "estimate_targets") in (False, 0):
        parts.append(DEPARTURES["targets"])
    alpha = _value(row, "alpha")
    if alpha is not None and float(alpha) != NAL_ALPHA:
        parts.append(f"α {float(alpha):g}")
    if _value(row, "attention") in (False, 0):
        parts.append(DEPARTURES["attention"])
    elif _value(row, "attention_mode") in ATTENTION_CONTROLS:
        parts.append(ATTENTION_CONTROLS[row.get("attention_mode")])
    return parts


def method_name(row: Any) -> str:
    """A run's method as the book names it: ``CE``, ``SCE (α 0.05)`` (an alpha other than SCE's authors' 0.1),
    ``NAL`` or ``NAL (λ 0.5)`` (a lambda other than the selected one)."""
    method = row["method"]
    if method == "sce":
        alpha = _value(row, "sce_alpha")
        return "SCE" if alpha is None or float(alpha) == SCE_ALPHA else f"SCE (α {float(alpha):g})"
    if method != "nal":
        return str(method).upper()
    lam = _value(row, "lam")
    return "NAL" if lam is None or float(lam) == SELECTED_LAMBDA else f"NAL (λ {float(lam):g})"


def long_variant(row: Any) -> str:
    """A run's whole name (a row of :func:`nalkit.results.load_runs`'s ``runs``): ``CE``, ``NAL``, ``NAL,
    authors' schedule``, ``NAL, τ = 1``, ``SCE (α 0.05)``, ``NAL (λ 0.5), authors' schedule, one learned τ``."""
    name = method_name(row)
    return ", ".join([name, *departures(row)]) if row["method"] == "nal" else name


def nal_variant(row: Any) -> str:
    """Which part of NAL a run keeps, at its lambda: ``full NAL``, ``τ = 1``, ``no target estimation``,
    ``α 0.7``, ``one learned τ``, ... (:func:`long_variant` without the ``NAL`` prefix); other methods get their
    whole name (``CE``)."""
    if row["method"] != "nal":
        return long_variant(row)
    return ", ".join(departures(row)) or FULL
