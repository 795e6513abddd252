"""What the book computes from the run records, one module per question it asks.

* ``nalkit.results.load`` -- read run records into tidy frames (:func:`load_runs`, :func:`load_arrays`,
  :func:`load_snapshots`) and describe a run's settings (:func:`describe_method`);
* ``nalkit.results.names`` -- the one vocabulary of run names every chapter, table and figure uses
  (:func:`long_variant`, and :func:`nal_variant` for NAL's parts at one lambda);
* ``nalkit.results.stats`` -- summaries, paired differences with t-intervals, ranks, and the selection of a
  hyperparameter on the noisy validation set (:func:`select`);
* ``nalkit.results.criteria`` -- the rulebook: every threshold and verdict rule, declared once with its reason
  (``RULES``, :func:`rulebook`), and the verdict functions every question uses;
* ``nalkit.results.claims`` -- the claims table: each claim of the paper the book tests, its deciding numbers and a
  verdict computed from the records;
* ``nalkit.results.comparison`` -- every method tuned by the same rule, CE with early stopping, and how many
  seeds a difference needs;
* ``nalkit.results.detection`` -- tau beside the mislabel detectors the field uses, confident learning
  (cleanlab) on K-fold out-of-sample probabilities included;
* ``nalkit.results.mechanism`` -- how well snapshots of tau and the loss separate mislabeled samples;
* ``nalkit.results.horizon`` -- the long-training tier: curves over epochs with seed bands, per-epoch
  separation series, the snapshot epochs, and the 40-epoch verdicts re-read at the end of training;
* ``nalkit.results.regime`` -- does the regime matter? the claims re-decided per regime of the regime tier;
* ``nalkit.results.reporting`` -- which number of a run the paper's protocol reports.

Every name is importable from ``nalkit.results`` itself, as the chapters do::

    from nalkit.results import load_runs, paired_difference
"""

from .claims import Claim, claims_frame, claims_table, stages_present
from .criteria import (ONE_SEED, RULES, STANDINGS, UNDECIDED, VERDICTS, Rule, Stages, count_verdict,
                       directional_verdict, rulebook, side, standing, tau_stages, verdict_from_sides)
from .comparison import (AUTHORS_VALUES, EARLY_STOPPED, NAL_CANDIDATES, PAPER_LAMBDA, TUNED, early_stopping, rank_change,
                         ranking, seeds_needed, select_methods, untuned_runs, variant_differences, with_early_stopping)
from .detection import (confident_learning, detector_table, out_of_sample, rescored_forgetting, tau_rank,
                        with_rescored_forgetting)
from .horizon import (LONG_VARIANTS, at_epoch, curves, detector_series, histogram_overlap, horizon_summary, long_variant,
                      memorisation_gap, mislabeled_fraction, peak_and_last, phi_scaling, snapshot_epochs, stage_table,
                      with_variant)
from .load import (CONFIG_COLUMNS, METHOD_SETTINGS, Runs, config_value, describe_method, load_arrays, load_run,
                   hardware_name, load_runs, load_snapshots, noise_label, run_dirs, with_tau_mean)
from .mechanism import snapshot_separation
from .names import ATTENTION_CONTROLS, departures, nal_variant
from .regime import (REGIMES, held_in_every_regime, long_noise_comparison, memorisation_pace, regime_epochs,
                     regime_matrix, regime_runs, regime_stability, regime_variant)
from .reporting import (BASELINE_NOTE, REPORTING_RULES, Reported, at_best_epoch, last_epoch, max_over_epochs,
                        report)
from .stats import (Difference, Selection, epoch_time_by_hardware, mean_interval, paired_difference, rank_table, select,
                    select_lambda, summarize, t_quantile_975)

__all__ = [
    "at_best_epoch", "at_epoch", "ATTENTION_CONTROLS", "departures", "AUTHORS_VALUES", "BASELINE_NOTE", "Claim", "claims_frame",
    "claims_table", "confident_learning", "CONFIG_COLUMNS", "config_value", "count_verdict", "curves",
    "describe_method", "detector_series", "detector_table", "Difference", "directional_verdict", "EARLY_STOPPED",
    "early_stopping", "epoch_time_by_hardware", "hardware_name", "histogram_overlap", "horizon_summary", "last_epoch", "load_arrays", "load_run", "load_runs",
    "load_snapshots", "long_variant", "LONG_VARIANTS", "max_over_epochs", "mean_interval", "memorisation_gap",
    "METHOD_SETTINGS", "mislabeled_fraction", "NAL_CANDIDATES", "nal_variant", "noise_label", "out_of_sample",
    "paired_difference", "peak_and_last", "rank_table", "ranking", "report", "Reported", "REPORTING_RULES",
    "run_dirs", "Runs", "seeds_needed", "select", "select_lambda", "select_methods", "Selection", "snapshot_epochs",
    "snapshot_separation", "stage_table", "stages_present", "summarize", "t_quantile_975", "TUNED", "VERDICTS",
    "with_early_stopping", "with_tau_mean", "with_variant", "RULES", "Rule", "rulebook", "side", "standing", "Stages",
    "tau_stages", "UNDECIDED", "ONE_SEED", "STANDINGS", "verdict_from_sides", "phi_scaling", "rescored_forgetting", "tau_rank",
    "with_rescored_forgetting", "PAPER_LAMBDA", "rank_change", "untuned_runs",
    "REGIMES", "held_in_every_regime", "regime_matrix", "regime_runs", "regime_stability", "regime_variant",
    "long_noise_comparison", "memorisation_pace", "regime_epochs", "variant_differences",
]
