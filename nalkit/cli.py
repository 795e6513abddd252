"""The ``nalkit`` command line.

    nalkit train CONFIG.yaml [section.key=value ...] [--results-dir runs]
    nalkit noise make --dataset fashion_mnist --mode sym --rate 0.4 --seed 0 [--out results/noise]
    nalkit noise inspect FILE.npz
    nalkit info
    nalkit run GRID.yaml            (see nalkit.runner)
    nalkit status RESULTS_DIR
    nalkit compact RESULTS_DIR      (rewrite complete run records in the compact form)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

#: Errors a user can fix (one line on stderr, exit status 2); anything else is a bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, FloatingPointError)


def _is_user_error(err: BaseException) -> bool:
    if isinstance(err, USER_ERRORS):
        return True
    # unusable checkpoints: the message names them and says what to do (imported lazily: torch)
    ckpt = sys.modules.get("nalkit.checkpoint")
    return ckpt is not None and isinstance(err, ckpt.CheckpointError)


def _cmd_train(args: argparse.Namespace) -> int:
    from .config import Config
    from .train import train

    cfg = Config.load(args.config, args.overrides).validate()
    run_dir = Path(args.run_dir) if args.run_dir is not None else Path(args.results_dir) / cfg.run_name()
    if cfg.method.name == "nal" and cfg.method.nal.attention_mode == "schedule":
        # NAL's schedule control: full NAL's mean tau per epoch, read from its record beside this run before training
        from .results.load import tau_schedule_override

        cfg.apply_overrides(tau_schedule_override(cfg, run_dir))
    run_dir = train(cfg, results_dir=args.results_dir, run_dir=run_dir, progress=not args.quiet)
    from .records import read_status

    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # under torchrun only rank 0 reports
    st = read_status(run_dir)
    print(f"run record: {run_dir}")
    print(f"state: {st.get('state')}  epochs: {st.get('epoch')}  final test acc: {st.get('final_test_acc')}  "
          f"best test acc: {st.get('best_test_acc')}  seconds: {st.get('seconds', 0):.1f}")
    return 0


def _cmd_noise(args: argparse.Namespace) -> int:
    import numpy as np

    from . import datasets as ds
    from .noise import load_noise, load_or_create_noise

    if args.noise_cmd == "inspect":
        nz = load_noise(args.file)
        _print_noise(nz)
        return 0
    bundle = ds.load_dataset(args.dataset, args.root, train_subset=args.train_subset)
    transition = np.loadtxt(args.transition, delimiter=",") if args.transition else None
    kwargs = {"transition": transition} if transition is not None else {}
    if args.mode == "idn":  # instance-dependent noise projects the images (as training does: nalkit.data)
        from .data import idn_features

        kwargs["features"] = idn_features(bundle.train, args.dataset)
    nz = load_or_create_noise(Path(args.out), np.asarray(bundle.train.labels), bundle.num_classes, args.mode,
                              args.rate, args.seed, args.dataset, **kwargs)
    _print_noise(nz)
    return 0


def _print_noise(nz) -> None:
    import numpy as np

    print(f"key: {getattr(nz, 'key', '?')}")
    print(f"dataset: {nz.dataset}  mode: {nz.mode}  seed: {nz.seed}  samples: {len(nz.labels)}")
    print(f"nominal rate: {nz.nominal_rate:.4f}  actual rate (labels changed): {nz.actual_rate:.4f}")
    with np.printoptions(precision=2, suppress=True, linewidth=160):
        print("transition (rows: clean class, columns: noisy label):")
        print(nz.transition)


def _cmd_info(args: argparse.Namespace) -> int:
    import torch

    from . import __version__
    from . import datasets as ds

    print(f"nalkit {__version__}  torch {torch.__version__}  threads {torch.get_num_threads()}")
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            print(f"cuda:{i}  {torch.cuda.get_device_name(i)}")
    else:
        print("device: cpu (no CUDA device visible)")
    print(f"datasets under {args.root!r}:")
    for name in ds.DATASETS:
        where = ds.find_dataset(name, args.root)
        print(f"  {name:14s} {'found at ' + str(where) if where else 'not found'}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from .runner import run_grid

    slurm = {"partition": args.partition, "time_min": args.time_min, "gpus": args.gpus, "cpus": args.cpus,
             "mem_gb": args.mem_gb, "array_parallelism": args.array_parallelism}
    summary = run_grid(args.grid, results_dir=args.results_dir, executor=args.executor, workers=args.workers,
                       overrides=args.overrides, only=args.only, slurm=slurm, wait=not args.no_wait,
                       notebooks=not args.no_notebook)
    return 0 if summary.ok else 1


def _cmd_status(args: argparse.Namespace) -> int:
    from .runner import print_status

    print_status(args.results_dir)
    return 0


def _cmd_compact(args: argparse.Namespace) -> int:
    from .records import compact_record
    from .results import run_dirs

    dirs = run_dirs(args.path)
    if not dirs:
        raise FileNotFoundError(f"no run records (directories with a status.json) at or below {args.path}")
    before = after = skipped = 0
    for d in dirs:
        try:
            done = compact_record(d)
        except ValueError as err:  # RecordError: incomplete or damaged; say so and go on
            print(f"skipped: {err}", file=sys.stderr)
            skipped += 1
            continue
        before, after = before + done.before, after + done.after
    print(f"{len(dirs) - skipped} run records: arrays, metrics and notebooks {before / 1e6:.2f} MB -> "
          f"{after / 1e6:.2f} MB" + (f"; {skipped} skipped" if skipped else ""))
    return 1 if skipped else 0


def build_parser() -> argparse.ArgumentParser:
    """The ``nalkit`` argument parser: one sub-command per ``_cmd_*`` function, each stored as ``args.func``."""
    from .executors import EXECUTORS
    from .noise import MODES

    p = argparse.ArgumentParser(prog="nalkit", description="Noise Attention Learning: train, inject noise, run grids.")
    sub = p.add_subparsers(dest="cmd", required=True)

    t = sub.add_parser("train", help="train one run from a YAML config")
    t.add_argument("config", help="YAML config (see configs/)")
    t.add_argument("overrides", nargs="*", help="section.key=value overrides, e.g. method.nal.lam=0.5")
    t.add_argument("--results-dir", default="runs", help="parent directory of the run record (default: runs)")
    t.add_argument("--run-dir", default=None, help="explicit run directory")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=_cmd_train)

    n = sub.add_parser("noise", help="make or inspect label-noise files")
    nsub = n.add_subparsers(dest="noise_cmd", required=True)
    mk = nsub.add_parser("make", help="inject noise into a dataset's training labels and save it")
    mk.add_argument("--dataset", required=True)
    mk.add_argument("--mode", required=True, choices=list(MODES))
    mk.add_argument("--rate", type=float, required=True)
    mk.add_argument("--seed", type=int, default=0)
    mk.add_argument("--transition", default=None, help="CSV file with a C x C row-stochastic matrix")
    mk.add_argument("--root", default="data")
    mk.add_argument("--train-subset", type=int, default=None)
    mk.add_argument("--out", default="runs/noise")
    ins = nsub.add_parser("inspect", help="print a noise file's rates and transition matrix")
    ins.add_argument("file")
    n.set_defaults(func=_cmd_noise)

    i = sub.add_parser("info", help="device and datasets found")
    i.add_argument("--root", default="data")
    i.set_defaults(func=_cmd_info)

    r = sub.add_parser("run", help="run an experiment grid (papermill executes the notebook once per experiment)")
    r.add_argument("grid", help="grid YAML (format: nalkit.runner; examples in configs/grids/)")
    r.add_argument("overrides", nargs="*", help="section.key=value overrides applied to every experiment")
    r.add_argument("--results-dir", default=None, help="default: the grid's results_dir")
    r.add_argument("--executor", default="inline", choices=list(EXECUTORS),
                   help="inline: sequential here; local: --workers processes (one GPU each if any); "
                        "slurm: submitit job array; submitit_local/debug: submitit's local executors (testing)")
    r.add_argument("--workers", type=int, default=1, help="parallel workers of the local executor")
    r.add_argument("--only", default=None, help="substring: run only experiments whose name contains it")
    r.add_argument("--no-notebook", action="store_true",
                   help="train without executing the notebook; rerun without this flag to execute the notebooks "
                        "of the complete runs (they then only read the records)")
    cl = r.add_argument_group("slurm (also read from the grid's slurm: section; flags win)")
    cl.add_argument("--partition", default=None)
    cl.add_argument("--time-min", type=int, default=None, help="time limit per job, minutes")
    cl.add_argument("--gpus", type=int, default=None, help="GPUs per job")
    cl.add_argument("--cpus", type=int, default=None, help="CPUs per job")
    cl.add_argument("--mem-gb", type=int, default=None, help="memory per job, GB")
    cl.add_argument("--array-parallelism", type=int, default=None, help="array tasks running at once")
    cl.add_argument("--no-wait", action="store_true", help="submit and return; follow with `nalkit status`")
    r.set_defaults(func=_cmd_run)

    s = sub.add_parser("status", help="queued/running/done/failed/interrupted per experiment of a results directory")
    s.add_argument("results_dir")
    s.set_defaults(func=_cmd_status)

    c = sub.add_parser("compact", help="rewrite complete run records in the compact form (float16 arrays, "
                                       "gzip-compressed metrics, palette PNGs); idempotent")
    c.add_argument("path", help="a results directory or one run directory")
    c.set_defaults(func=_cmd_compact)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the ``nalkit`` command line on ``argv`` (default ``sys.argv[1:]``) and return the exit status.

    Errors a user can fix (:data:`USER_ERRORS`) print one line and return 2; any other exception propagates.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except Exception as err:  # noqa: BLE001 -- re-raised below unless a user can fix it
        if not _is_user_error(err):
            raise
        print(f"nalkit: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nalkit: interrupted; rerun the same command to resume from the last checkpoint", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
