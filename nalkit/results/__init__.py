"""What the book computes from the run records, one module per question it asks.

* ``nalkit.results.load`` -- read run records into tidy frames (:func:`load_runs`, :func:`load_arrays`,
  :func:`load_snapshots`) and name what a run is (:func:`nal_variant`, :func:`describe_method`);
* ``nalkit.results.stats`` -- summaries, paired differences with t-intervals, ranks, and the selection of a
  hyperparameter on the noisy validation set (:func:`select`);
* ``nalkit.results.claims`` -- the claims table: each claim of the paper the book tests, its deciding numbers and a
  verdict computed from the records;
* ``nalkit.results.comparison`` -- every method tuned by the same rule, CE with early stopping, and how many
  seeds a difference needs;
* ``nalkit.results.detection`` -- tau beside the mislabel detectors the field uses, confident learning
  (cleanlab) on K-fold out-of-sample probabilities included;
* ``nalkit.results.mechanism`` -- how well snapshots of tau and the loss separate mislabeled samples;
* ``nalkit.results.horizon`` -- the long-training tier: curves over epochs with seed bands, per-epoch
  separation series, the snapshot epochs, and the 40-epoch verdicts re-read at the end of training;
* ``nalkit.results.reporting`` -- which number of a run the paper's protocol reports.

Every name is importable from ``nalkit.results`` itself, as the chapters do::

    from nalkit.results import load_runs, paired_difference
"""

from .claims import VERDICTS, Claim, claims_frame, claims_table, count_verdict, directional_verdict, stages_present
from .comparison import (AUTHORS_VALUES, EARLY_STOPPED, NAL_CANDIDATES, TUNED, early_stopping, ranking, seeds_needed,
                         select_methods, with_early_stopping)
from .detection import confident_learning, detector_table, out_of_sample
from .horizon import (LONG_VARIANTS, at_epoch, curves, detector_series, histogram_overlap, horizon_summary, long_variant,
                      memorisation_gap, mislabeled_fraction, peak_and_last, snapshot_epochs, stage_table, with_variant)
from .load import (ATTENTION_CONTROLS, CONFIG_COLUMNS, METHOD_SETTINGS, Runs, config_value, describe_method, load_arrays, load_run,
                   load_runs, load_snapshots, nal_variant, noise_label, run_dirs)
from .mechanism import snapshot_separation
from .reporting import (BASELINE_NOTE, REPORTING_RULES, Reported, at_best_epoch, last_epoch, max_over_epochs,
                        report)
from .stats import (Difference, Selection, mean_interval, paired_difference, rank_table, select, select_lambda, summarize,
                    t_quantile_975)

__all__ = [
    "VERDICTS", "Claim", "claims_frame", "claims_table", "count_verdict", "directional_verdict", "stages_present",
    "ATTENTION_CONTROLS", "NAL_CANDIDATES", "confident_learning", "detector_table", "out_of_sample", "TUNED", "early_stopping", "seeds_needed", "select_methods",
    "AUTHORS_VALUES", "EARLY_STOPPED", "ranking", "with_early_stopping",
    "BASELINE_NOTE", "CONFIG_COLUMNS", "LONG_VARIANTS", "METHOD_SETTINGS", "REPORTING_RULES", "Difference",
    "Reported", "Runs", "Selection", "at_best_epoch", "at_epoch", "config_value", "curves", "describe_method",
    "detector_series", "histogram_overlap", "horizon_summary", "last_epoch", "load_arrays", "load_run", "load_runs", "load_snapshots",
    "long_variant", "max_over_epochs", "mean_interval", "memorisation_gap", "mislabeled_fraction", "nal_variant", "noise_label",
    "paired_difference", "peak_and_last", "rank_table", "report", "run_dirs", "select", "select_lambda",
    "snapshot_epochs", "snapshot_separation", "stage_table", "summarize", "t_quantile_975", "with_variant",
]
