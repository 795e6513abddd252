"""Is tau a good mislabel detector? The detectors the field uses, scored on the same records.

* :func:`detector_table` -- per run group and detector, the best (over epochs) and the last-epoch AUROC and average
  precision of the per-epoch detector columns the trainer records (nalkit.detectors: 1 - tau, the loss, the
  running mean loss, AUM, wrong events, forgetting events);
* :func:`with_rescored_forgetting` -- records written before forgetting events counted a never-learned sample as
  the most forgettable (Toneva et al.) rescored at their last epoch from their final arrays;
* :func:`tau_rank` -- where 1 - tau ranks among the detectors, per group, at their best, at the last epoch and by
  average precision;
* :func:`out_of_sample` -- the held-out probabilities of K-fold cross-validated runs (``data.cv_folds``),
  assembled into one out-of-sample prediction per training sample;
* :func:`confident_learning` -- cleanlab's confident learning on them (``cleanlab.filter.find_label_issues`` and
  ``cleanlab.rank.get_label_quality_scores``; the optional extra ``nalkit[detect]``), scored like the others, and
  :func:`confident_learning_summary` its mean per noise setting;
* :func:`tau_against_loss` -- whether 1 - tau detects better than cross-entropy's loss at the last epoch (a paired
  interval, the rulebook's CONFIDENCE).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..detectors import DETECTORS, forgetting_score
from ..metrics import auroc, average_precision
from .load import load_arrays


def rescored_forgetting(runs: pd.DataFrame) -> pd.DataFrame:
    """The forgetting score of Toneva et al. (a sample never learned is the most forgettable) at the last epoch of
    every run in ``runs`` written before the trainer scored it so (``record_format`` < 3), from its final arrays
    (``final_forgets``, ``final_wrong``: never learned = wrong in every epoch). Columns ``run, epoch,
    forget_auroc, forget_ap``; runs without those arrays (or with a sampled record) are left out."""
    rows = []
    old = runs[runs.record_format < 3] if "record_format" in runs else runs
    for r in old.itertuples():
        if r.state != "complete":
            continue
        a = load_arrays(r.run_dir)
        if "final_forgets" not in a or "final_wrong" not in a or "noisy_labels" not in a:
            continue
        epochs = int(r.epochs_done)
        known = a["clean_labels"] >= 0
        score = forgetting_score(a["final_forgets"], a["final_wrong"] == epochs, epochs)
        mis = a["is_noisy"]
        rows.append({"run": r.run, "epoch": epochs, "forget_auroc": auroc(score[known], mis[known]),
                     "forget_ap": average_precision(score[known], mis[known])})
    return pd.DataFrame(rows, columns=["run", "epoch", "forget_auroc", "forget_ap"])


def with_rescored_forgetting(epochs: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """``epochs`` with ``forget_auroc``/``forget_ap`` of the older records (:func:`rescored_forgetting`) filled in at
    their last epoch only: the counts of earlier epochs are not kept, so those stay NaN and the detector's "best"
    over epochs is its last-epoch value for such a run."""
    fix = rescored_forgetting(runs[runs.run.isin(set(epochs.run))]) if len(epochs) else pd.DataFrame()
    if not len(fix):
        return epochs
    out = epochs.copy()
    for col in ("forget_auroc", "forget_ap"):
        if col not in out:
            out[col] = np.nan
    key = out.set_index(["run", "epoch"]).index
    values = fix.set_index(["run", "epoch"])
    hit = key.isin(values.index)
    for col in ("forget_auroc", "forget_ap"):
        out.loc[hit, col] = values.loc[key[hit], col].to_numpy()
    return out


def tau_rank(table: pd.DataFrame, by: Sequence[str] = ("noise", "variant")) -> pd.DataFrame:
    """Where 1 - tau ranks among the detectors of :func:`detector_table`, per ``by`` group: ``of`` (how many
    detectors), ``best_rank`` / ``last_rank`` / ``ap_rank`` (by best AUROC, last-epoch AUROC, last-epoch average
    precision; 1 = best), tau's own values and the best detector of each ordering with its value."""
    rows = []
    if not len(table):
        return pd.DataFrame(rows)
    for key, d in table.groupby(list(by), sort=False):
        d = d.set_index("detector")
        if "tau" not in d.index:
            continue
        row = {**dict(zip(by, key if isinstance(key, tuple) else (key,))), "of": len(d),
               "tau_best_epoch": int(d.best_epoch["tau"])}
        for name, col in (("best", "best_auroc"), ("last", "last_auroc"), ("ap", "last_ap")):
            order = d[col].sort_values(ascending=False)
            row.update({f"{name}_rank": list(order.index).index("tau") + 1, f"tau_{name}": float(order["tau"]),
                        f"{name}_top": str(order.index[0]), f"{name}_top_value": float(order.iloc[0])})
        rows.append(row)
    return pd.DataFrame(rows)


def detector_table(epochs: pd.DataFrame, by: Sequence[str] = ("variant", "noise"),
                   detectors: Sequence[str] = tuple(DETECTORS)) -> pd.DataFrame:
    """Per ``by`` group and detector: ``best_auroc`` (each run's highest AUROC over the epochs, mean over runs),
    ``best_epoch`` (median of the epochs where it is reached), ``last_auroc``, ``best_ap``, ``last_ap``, and ``n``.

    A detector enters only where its column exists and is finite (1 - tau only for runs with attention).
    """
    rows = []
    for key, g in epochs.groupby(list(by), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        for name in detectors:
            a, p = f"{name}_auroc", f"{name}_ap"
            if a not in g or g[a].isna().all():
                continue
            per = []
            for _, r in g.dropna(subset=[a]).groupby("run"):
                r = r.sort_values("epoch")
                i = int(np.argmax(r[a].to_numpy()))
                per.append((float(r[a].iloc[i]), int(r.epoch.iloc[i]), float(r[a].iloc[-1]), float(r[p].max()),
                            float(r[p].iloc[-1])))
            x = np.array(per)
            rows.append({**dict(zip(by, key)), "detector": name, "best_auroc": x[:, 0].mean(),
                         "best_epoch": float(np.median(x[:, 1])), "last_auroc": x[:, 2].mean(),
                         "best_ap": x[:, 3].mean(), "last_ap": x[:, 4].mean(), "n": len(per)})
    return pd.DataFrame(rows, columns=[*by, "detector", "best_auroc", "best_epoch", "last_auroc", "best_ap",
                                       "last_ap", "n"])


def out_of_sample(runs: pd.DataFrame) -> dict[tuple[str, int], dict[str, Any]]:
    """The out-of-sample predicted probabilities of K-fold runs, per (noise setting, seed).

    ``runs`` holds the fold runs (``data.cv_folds``; columns ``run_dir``, ``noise``, ``seed``). Returns
    ``{(noise, seed): {"probs": (N, C), "noisy": (N,), "clean": (N,), "folds": K, "epochs": [best epoch per
    fold]}}`` for each group whose folds cover every training sample exactly once; incomplete groups are left out.
    """
    out = {}
    for (noise, seed), g in runs.groupby(["noise", "seed"], sort=True):
        parts = [load_arrays(d) for d in g.run_dir]
        parts = [a for a in parts if "heldout_probs" in a]
        if not parts:
            continue
        index = np.concatenate([a["heldout_index"] for a in parts])
        n = int(parts[0]["n_train"]) + len(parts[0]["heldout_index"])
        if len(index) != n or len(np.unique(index)) != n:
            continue  # a fold is missing (or a run of another split)
        c = parts[0]["heldout_probs"].shape[1]
        probs, noisy, clean = np.zeros((n, c)), np.zeros(n, np.int64), np.zeros(n, np.int64)
        for a in parts:
            i = a["heldout_index"]
            probs[i], noisy[i], clean[i] = a["heldout_probs"], a["heldout_noisy"], a["heldout_clean"]
        probs /= probs.sum(axis=1, keepdims=True)  # float16 storage leaves rows a few 1e-4 off 1
        out[(noise, int(seed))] = {"probs": probs, "noisy": noisy, "clean": clean, "folds": len(parts),
                                   "epochs": sorted(int(a["heldout_epoch"]) for a in parts)}
    return out


def confident_learning(probs: np.ndarray, noisy: np.ndarray, mislabeled: np.ndarray) -> dict[str, float]:
    """cleanlab's confident learning on out-of-sample ``probs`` (N, C) for the given labels ``noisy``, scored
    against the known ``mislabeled`` mask.

    Returns ``auroc`` and ``ap`` of ``1 - get_label_quality_scores`` (self-confidence; higher = more suspect), and
    for ``find_label_issues`` (its default, prune by noise rate) the share ``flagged`` and its ``precision`` and
    ``recall``.
    """
    try:
        from cleanlab.filter import find_label_issues
        from cleanlab.rank import get_label_quality_scores
    except ImportError as err:  # pragma: no cover - the optional extra
        raise ImportError("confident learning needs cleanlab: pip install 'nalkit[detect]' (or pip install "
                          "cleanlab)") from err
    mislabeled = np.asarray(mislabeled, bool)
    score = 1.0 - get_label_quality_scores(noisy, probs)
    flagged = find_label_issues(labels=noisy, pred_probs=probs)
    hits = int((flagged & mislabeled).sum())
    return {"auroc": auroc(score, mislabeled), "ap": average_precision(score, mislabeled),
            "flagged": float(flagged.mean()), "precision": hits / max(int(flagged.sum()), 1),
            "recall": hits / max(int(mislabeled.sum()), 1)}


def confident_learning_summary(scores: Mapping[tuple[str, int], Mapping[str, float]]) -> pd.DataFrame:
    """Confident learning per noise setting, from ``{(setting, seed): confident_learning(...)}``: the number of seeds
    (``n``) and the mean over them of its ``auroc`` and ``ap``; one row per setting, indexed by it, in the order the
    settings first appear."""
    rows = {}
    for (setting, _), v in scores.items():
        rows.setdefault(setting, []).append((v["auroc"], v["ap"]))
    return pd.DataFrame([{"noise": s, "n": len(v), "auroc": float(np.mean([a for a, _ in v])),
                          "ap": float(np.mean([p for _, p in v]))} for s, v in rows.items()],
                        columns=["noise", "n", "auroc", "ap"]).set_index("noise")


def tau_against_loss(runs: pd.DataFrame, settings: Sequence[str] | None = None) -> pd.DataFrame:
    """Is 1 - tau a better mislabel detector than cross-entropy's per-sample loss (the small-loss criterion) at the
    last epoch? Per setting with NAL and CE runs (``runs``: ``method``, ``noise``, ``seed``, ``last_tau_auroc``,
    ``last_loss_auroc``): NAL's AUROC of 1 - tau (``tau``: the mean; ``tau_low``, ``tau_high``: its lowest and
    highest run), CE's loss AUROC (``ce_loss``), the method whose loss detects best (``best``, by mean AUROC over
    every method) with its mean (``best_loss``), the paired difference NAL's tau − CE's loss over seeds (``diff``,
    the seed fixes the noisy labels both detect) and its ``side`` by the rulebook's CONFIDENCE
    (:func:`nalkit.results.criteria.side`: ``holds``, tau detects better; ``fails``, worse; ``undecided``);
    indexed by setting, in the order of ``settings`` (default: as they first appear)."""
    from .criteria import side
    from .stats import paired_difference

    columns = ["noise", "tau", "tau_low", "tau_high", "ce_loss", "best", "best_loss", "diff", "side"]
    rows = []
    have = settings if settings is not None else list(dict.fromkeys(runs.noise)) if len(runs) else []
    for s in have:
        d = runs[runs.noise == s]
        nal, ce = d[d.method == "nal"], d[d.method == "ce"]
        if not len(nal) or not len(ce):
            continue
        loss = d.groupby("method").last_loss_auroc.mean()
        best = str(loss.idxmax())
        pair = pd.concat([nal.assign(_score=nal.last_tau_auroc), ce.assign(_score=ce.last_loss_auroc)])
        diff = paired_difference(pair, "_score", "nal", "ce")
        rows.append({"noise": s, "tau": nal.last_tau_auroc.mean(), "tau_low": nal.last_tau_auroc.min(),
                     "tau_high": nal.last_tau_auroc.max(), "ce_loss": ce.last_loss_auroc.mean(), "best": best,
                     "best_loss": d[d.method == best].last_loss_auroc.mean(), "diff": diff, "side": side(diff)})
    return pd.DataFrame(rows, columns=columns).set_index("noise")
