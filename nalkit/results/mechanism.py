"""The mechanism chapter's questions: how well per-sample snapshots (tau, loss) separate mislabeled samples."""

from __future__ import annotations

import numpy as np
import pandas as pd

def snapshot_separation(snaps: pd.DataFrame) -> pd.DataFrame:
    """How well a snapshot score separates mislabeled samples, per run and epoch of a :func:`load_snapshots` frame.

    Columns: ``run``, ``epoch``, ``auroc`` (AUROC of ``1 - value`` for finding the mislabeled samples: for tau, low
    means suspect), ``median_clean``, ``median_mislabeled``.
    """
    from ..metrics import auroc

    rows = []
    for (run, epoch), g in snaps.groupby(["run", "epoch"], sort=True):
        noisy = g.is_noisy.to_numpy(bool)
        value = g.value.to_numpy(float)
        rows.append({"run": run, "epoch": epoch, "auroc": auroc(1.0 - value, noisy),
                     "median_clean": float(np.median(value[~noisy])) if (~noisy).any() else float("nan"),
                     "median_mislabeled": float(np.median(value[noisy])) if noisy.any() else float("nan")})
    return pd.DataFrame(rows, columns=["run", "epoch", "auroc", "median_clean", "median_mislabeled"])
