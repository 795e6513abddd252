"""Fault injection: kill -9 anywhere, corrupt any file, NaN losses, broken grids -- nothing lost.

Every training run is the tiny config of tests/faultlib.py (300 images, width-8 CNN, 4 epochs, one
thread). The uninterrupted reference is trained once per session; every faulted run must end with
exactly its metrics (minus timings) and arrays, or stop with an error that names the bad file.
Counters feed the one-line report printed at the end of the session (tests/conftest.py).
"""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path

import pytest
import torch
import yaml

import faultlib as fl
from nalkit.config import Config
from nalkit.records import RecordError
from nalkit.results import load_arrays, load_runs

pytestmark = pytest.mark.usefixtures("fashion_mnist")


# --------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def tiny_yaml(tmp_path_factory) -> Path:
    return fl.write_yaml(tmp_path_factory.mktemp("cfg") / "tiny.yaml", fl.tiny_dict())


@pytest.fixture(scope="session")
def reference(zygote, tiny_yaml, tmp_path_factory):
    """(run dir, seconds, os.replace destinations in order) of the uninterrupted run."""
    tmp = tmp_path_factory.mktemp("reference")
    trace = tmp / "trace.txt"
    out = zygote.run(train_argv(tiny_yaml, tmp / "results"), env={fl.TRACE_ENV: str(trace)})
    assert out.returncode == 0, out.log
    run = fl.run_dir_of(tmp / "results")
    assert not fl.differences(run, run)
    return run, out.seconds, trace.read_text().split()


def train_argv(cfg: Path, results: Path, *overrides: str) -> list[str]:
    return ["train", str(cfg), *overrides, "--results-dir", str(results), "--quiet"]


def finish_and_compare(zygote, cfg: Path, results: Path, ref: Path, what: str) -> None:
    """Rerun the same command to completion; the run must equal the reference."""
    out = zygote.run(train_argv(cfg, results))
    assert out.returncode == 0, out.log
    assert "Traceback" not in out.log, out.log
    diff = fl.differences(fl.run_dir_of(results), ref)
    fl.compared(not diff, f"{what}: {diff}")
    assert not diff, f"{what}: {diff}"


def kill_chain(zygote, cfg: Path, results: Path, ref: Path, steps: list[dict]) -> None:
    """Kill one run at each write phase of ``steps`` in turn (each rerun resumes), then finish it."""
    for i, step in enumerate(steps):
        out = zygote.run(train_argv(cfg, results), env={fl.KILL_ENV: json.dumps(step)})
        assert out.killed, f"kill point {i} {step} was never reached (exit {out.returncode}):\n{out.log}"
        fl.fault()
    finish_and_compare(zygote, cfg, results, ref, f"kill chain {steps}")


# --------------------------------------------------------------------------------------------
# 1. kill anywhere
# --------------------------------------------------------------------------------------------
NOISE = "seed3-n300"  # part of the content-addressed noise file name
CHAINS = {
    # before = temporary file written, not renamed; after = renamed, the next file not written yet.
    # RunRecord writes the manifest entry first, then the file; checkpoints the .pt, then the .sha256.
    "A": [
        {"match": NOISE, "nth": 1, "when": "before"},  # noise file not yet in place
        {"match": "config.yaml", "nth": 1, "when": "before"},  # manifest updated, file not
        {"match": "ckpt-00001.pt", "nth": 1, "when": "after"},  # the first checkpoint has no checksum yet
        {"match": "ckpt-00001.pt.sha256", "nth": 1, "when": "after"},  # checkpoint done, metrics not
        {"match": "metrics.csv.gz", "nth": 1, "when": "before", "requires": "ckpt-00002.pt.sha256"},
        {"match": "manifest.json", "nth": 2, "when": "after", "requires": "ckpt-00003.pt.sha256"},
        {"match": "arrays.npz", "nth": 1, "when": "before"},  # the final arrays
        {"match": "status.json", "nth": 1, "when": "before", "requires": "arrays.npz"},  # "complete" listed, not written
        {"match": "status.json", "nth": 2, "when": "after", "requires": "arrays.npz"},  # complete, before cleanup
    ],
    "B": [
        {"match": "environment.json", "nth": 1, "when": "before"},
        {"match": "status.json", "nth": 1, "when": "after"},
        {"match": "ckpt-00002.pt", "nth": 1, "when": "before"},
        {"match": "ckpt-00003.pt.sha256", "nth": 1, "when": "before"},  # three checkpoints, newest unchecked
        {"match": "manifest.json", "nth": 1, "when": "before", "requires": "ckpt-00004.pt.sha256"},
        {"match": "metrics.csv.gz", "nth": 1, "when": "after", "requires": "arrays.npz"},
        {"match": "manifest.json", "nth": 1, "when": "before"},
    ],
}


@pytest.mark.parametrize("chain", sorted(CHAINS))
def test_kills_at_write_phases_resume_to_the_uninterrupted_result(zygote, tiny_yaml, reference, tmp_path, chain):
    kill_chain(zygote, tiny_yaml, tmp_path / "results", reference[0], CHAINS[chain])


def _random_kills(zygote, cfg, base: Path, ref: Path, seconds: float, n_kills: int, seed: int) -> int:
    """Kill runs after seeded random delays until ``n_kills`` kills landed; compare every finished chain."""
    rng = random.Random(seed)
    kills = chain = 0
    while kills < n_kills:
        results = base / f"chain{chain}"
        while kills < n_kills:
            out = zygote.run(train_argv(cfg, results), kill_after=rng.uniform(0.02, 1.1) * seconds)
            if not out.killed:
                assert out.returncode == 0, out.log
                break  # the run finished before the kill: compare it below
            kills += 1
            fl.fault()
        finish_and_compare(zygote, cfg, results, ref, f"random-kill chain {chain} (seed {seed})")
        chain += 1
    return kills


def test_kills_at_random_times_resume_to_the_uninterrupted_result(zygote, tiny_yaml, reference, tmp_path):
    assert _random_kills(zygote, tiny_yaml, tmp_path, reference[0], reference[1], n_kills=6, seed=2024) == 6


@pytest.mark.slow
def test_many_kills_at_random_times(zygote, tiny_yaml, reference, tmp_path):
    _random_kills(zygote, tiny_yaml, tmp_path, reference[0], reference[1], n_kills=30, seed=7)


@pytest.mark.slow
@pytest.mark.parametrize("when", ["before", "after"])
def test_a_kill_at_every_write_resumes(zygote, tiny_yaml, reference, tmp_path, when):
    """Each os.replace of an uninterrupted run, in turn, is the kill point of a fresh run."""
    ref, _, trace = reference
    for i, name in enumerate(trace):
        results = tmp_path / f"k{i}"
        out = zygote.run(train_argv(tiny_yaml, results),
                         env={fl.KILL_ENV: json.dumps({"match": "", "nth": i + 1, "when": when})})
        assert out.killed, f"write {i} ({name}) not reached:\n{out.log}"
        fl.fault()
        finish_and_compare(zygote, tiny_yaml, results, ref, f"kill {when} write {i} ({name})")


def test_a_child_killed_holding_the_progress_bar_lock_does_not_block_the_next(zygote, tiny_yaml, reference,
                                                                               tmp_path):
    """Regression (issue 9): a child SIGKILLed inside a progress-bar write left tqdm's lock held for every
    later child of the zygote, which then hung before printing anything."""
    holding = tmp_path / "holding"
    hold_locks = (
        "import pathlib, time, tqdm\n"
        "from nalkit._progress import progress_bar\n"
        "bar = progress_bar(range(1), disable=True)  # made as the trainer makes its bar\n"
        "type(bar).get_lock().acquire()\n"
        "tqdm.tqdm.get_lock().acquire()  # and tqdm's default lock, which any other bar would take\n"
        f"pathlib.Path({str(holding)!r}).write_text('held')\n"
        "time.sleep(600)\n"
    )
    out = zygote.run(python=hold_locks, kill_after=3.0, timeout=60)
    assert out.killed and holding.read_text() == "held", out.log
    fl.fault()
    results = tmp_path / "results"
    out = zygote.run(train_argv(tiny_yaml, results), timeout=120)  # raises ChildHung with a stack dump on a hang
    assert out.returncode == 0, out.log
    diff = fl.differences(fl.run_dir_of(results), reference[0])
    fl.compared(not diff, f"run after a child killed holding the bar's lock: {diff}")
    assert not diff


def test_kill_of_the_real_command_line(tiny_yaml, reference, tmp_path):
    """`python -m nalkit.cli train` (a fresh interpreter), killed between a checkpoint and its checksum."""
    results = tmp_path / "results"
    args = train_argv(tiny_yaml, results)
    kill = {"match": "ckpt-00002.pt", "nth": 1, "when": "after"}
    out = fl.cli_subprocess(args, env={fl.KILL_ENV: json.dumps(kill)})
    assert out.returncode == -9, out.stderr
    fl.fault()
    again = fl.cli_subprocess(args)
    assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr
    assert "ckpt-00002.pt (no checksum file" in again.stderr and "resuming from" in again.stderr
    diff = fl.differences(fl.run_dir_of(results), reference[0])
    fl.compared(not diff, f"real CLI kill: {diff}")
    assert not diff


def test_a_kill_during_the_final_cleanup_leaves_no_checkpoints(zygote, tiny_yaml, tmp_path):
    results = tmp_path / "results"
    kill = {"match": "status.json", "nth": 1, "when": "after", "requires": "arrays.npz"}
    assert zygote.run(train_argv(tiny_yaml, results), env={fl.KILL_ENV: json.dumps(kill)}).killed
    assert zygote.run(train_argv(tiny_yaml, results)).returncode == 0
    assert not list(fl.run_dir_of(results).glob("ckpt-*"))


# --------------------------------------------------------------------------------------------
# 2. corruption
# --------------------------------------------------------------------------------------------
def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def bitflip(path: Path, seed: int = 0) -> None:
    data = bytearray(path.read_bytes())
    i = random.Random(seed).randrange(len(data))
    data[i] ^= 0x10
    path.write_bytes(bytes(data))


def stopped_after_epoch_3(zygote, cfg: Path, results: Path) -> Path:
    """A run killed right after its epoch-3 checkpoint (checkpoints 2 and 3 on disk)."""
    kill = {"match": "metrics.csv.gz", "nth": 1, "when": "before", "requires": "ckpt-00003.pt.sha256"}
    assert zygote.run(train_argv(cfg, results), env={fl.KILL_ENV: json.dumps(kill)}).killed
    run = fl.run_dir_of(results)
    assert sorted(p.name for p in run.glob("ckpt-*.pt")) == ["ckpt-00002.pt", "ckpt-00003.pt"]
    return run


@pytest.mark.parametrize("damage", ["truncate", "bitflip", "checksum"])
def test_damaged_checkpoint_falls_back_to_the_previous_one(zygote, tiny_yaml, reference, tmp_path, damage):
    results = tmp_path / "results"
    run = stopped_after_epoch_3(zygote, tiny_yaml, results)
    ckpt = run / "ckpt-00003.pt"
    {"truncate": truncate, "bitflip": bitflip,
     "checksum": lambda p: p.with_name(p.name + ".sha256").write_text("0" * 64 + "\n")}[damage](ckpt)
    fl.fault()
    out = zygote.run(train_argv(tiny_yaml, results))
    assert out.returncode == 0, out.log
    assert f"skipped unusable checkpoint(s): {ckpt} (checksum mismatch" in out.log
    assert f"resuming from {run / 'ckpt-00002.pt'}" in out.log
    diff = fl.differences(run, reference[0])
    fl.compared(not diff, f"damaged checkpoint ({damage}): {diff}")
    assert not diff


def test_every_checkpoint_damaged_stops_with_a_clear_error(zygote, tiny_yaml, tmp_path):
    results = tmp_path / "results"
    run = stopped_after_epoch_3(zygote, tiny_yaml, results)
    bitflip(run / "ckpt-00003.pt")
    truncate(run / "ckpt-00002.pt")
    fl.fault(2)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    out = zygote.run(train_argv(tiny_yaml, results))
    assert out.returncode == 2 and "Traceback" not in out.log, out.log
    assert "every checkpoint of this run is unusable" in out.log
    assert "ckpt-00003.pt" in out.log and "ckpt-00002.pt" in out.log
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before, "nothing was overwritten"
    fl.compared(True, "all checkpoints damaged")


@pytest.mark.parametrize("name, damage, message", [
    ("status.json", truncate, "status.json is not valid JSON"),
    ("manifest.json", truncate, "manifest.json is not valid JSON"),
    (NOISE, truncate, "is unreadable or corrupt"),
    (NOISE, bitflip, "noise file"),
])
def test_damaged_record_or_noise_file_stops_the_resume_naming_the_file(zygote, tiny_yaml, tmp_path, name,
                                                                      damage, message):
    results = tmp_path / "results"
    run = stopped_after_epoch_3(zygote, tiny_yaml, results)
    path = run / name if name != NOISE else next((results / "noise").glob(f"*{NOISE}*.npz"))
    damage(path)
    fl.fault()
    out = zygote.run(train_argv(tiny_yaml, results))
    assert out.returncode == 2 and "Traceback" not in out.log, out.log
    assert message in out.log and path.name in out.log, out.log
    assert sorted(p.name for p in run.glob("ckpt-*.pt")) == ["ckpt-00002.pt", "ckpt-00003.pt"]
    fl.compared(True, f"damaged {name}")


@pytest.mark.parametrize("name", ["metrics.csv.gz", "config.yaml", "environment.json"])
def test_damaged_record_files_of_a_running_run_are_rewritten_not_used(zygote, tiny_yaml, reference, tmp_path, name):
    results = tmp_path / "results"
    run = stopped_after_epoch_3(zygote, tiny_yaml, results)
    bitflip(run / name, seed=3)
    fl.fault()
    finish_and_compare(zygote, tiny_yaml, results, reference[0], f"damaged {name} of a running run")


@pytest.mark.parametrize("name", ["metrics.csv.gz", "arrays.npz", "status.json", "manifest.json", "config.yaml",
                                  "environment.json"])
@pytest.mark.parametrize("damage", ["truncate", "bitflip"])
def test_damaged_complete_record_is_never_read(reference, tmp_path, name, damage):
    run = tmp_path / "results" / reference[0].name
    shutil.copytree(reference[0], run)
    (truncate if damage == "truncate" else bitflip)(run / name)
    fl.fault()
    with pytest.raises(RecordError) as err:  # (bit flip of manifest.json: in environment.json's checksum)
        load_runs(tmp_path / "results")
        load_arrays(run)  # arrays.npz is read on demand
    assert name in str(err.value)
    fl.compared(True, f"load_runs on damaged {name}")


def test_a_complete_status_that_no_longer_matches_its_checksum_is_not_trusted(reference, tiny_yaml, tmp_path):
    """A flipped bit that keeps status.json valid JSON ("epoch": 4 -> 5) is caught by the trainer too."""
    from nalkit.train import train

    run = tmp_path / "results" / reference[0].name
    shutil.copytree(reference[0], run)
    text = (run / "status.json").read_text()
    assert '"epoch": 4' in text
    (run / "status.json").write_text(text.replace('"epoch": 4', '"epoch": 5'))
    fl.fault()
    with pytest.raises(RecordError, match="status.json does not match its checksum"):
        train(tiny_yaml, results_dir=tmp_path / "results")
    with pytest.raises(RecordError, match="status.json"):
        load_runs(tmp_path / "results")
    fl.compared(True, "valid-JSON bit flip in status.json")


def test_a_checkpoint_of_another_config_is_never_resumed(tmp_path):
    from nalkit.config import ConfigError
    from nalkit.train import train

    cfg = Config.from_dict(fl.tiny_dict())
    run = train(cfg, run_dir=tmp_path / "r", stop_after_epoch=1)
    (run / "status.json").unlink()  # e.g. lost while copying the directory
    other = Config.from_dict(fl.tiny_dict(**{"method.nal.lam": 3.0}))
    with pytest.raises(ConfigError, match="another config"):
        train(other, run_dir=run)


# --------------------------------------------------------------------------------------------
# 4. numerical faults
# --------------------------------------------------------------------------------------------
def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(reference, tiny_yaml, tmp_path, monkeypatch):
    import nalkit.train as T

    real_build = T.build_method

    def build_nan_at_3(*a, **kw):
        method = real_build(*a, **kw)
        real_loss = method.batch_loss

        def batch_loss(logits, att, labels, index, epoch):
            per = real_loss(logits, att, labels, index, epoch)
            return per * float("nan") if epoch == 3 else per

        method.batch_loss = batch_loss
        return method

    monkeypatch.setattr(T, "build_method", build_nan_at_3)
    results = tmp_path / "results"
    with pytest.raises(T.NonFiniteLossError, match=r"NaN/inf in epoch 3 .*last good checkpoint \(epoch 2\)"):
        T.train(tiny_yaml, results_dir=results)
    fl.fault()
    run = fl.run_dir_of(results)
    assert json.loads((run / "status.json").read_text())["epoch"] == 2
    assert sorted(p.name for p in run.glob("ckpt-*.pt")) == ["ckpt-00001.pt", "ckpt-00002.pt"]
    monkeypatch.undo()
    T.train(tiny_yaml, results_dir=results)  # the cause is gone: resume from epoch 2
    diff = fl.differences(run, reference[0])
    fl.compared(not diff, f"resumed after NaN: {diff}")
    assert not diff


def test_exploding_lr_gives_a_clear_error_on_the_command_line(zygote, tiny_yaml, tmp_path):
    out = zygote.run(train_argv(tiny_yaml, tmp_path / "results", "optim.lr=1.0e+30"))
    fl.fault()
    assert out.returncode == 2 and "Traceback" not in out.log, out.log
    assert "the training loss became NaN/inf" in out.log and "lower optim.lr" in out.log


PAPER = sorted((fl.REPO / "configs" / "paper").glob("*.yaml"))


@pytest.mark.parametrize("path", PAPER, ids=[p.stem for p in PAPER])
def test_paper_lr_schedules_are_finite_and_non_negative(path):
    from nalkit.train import lr_at

    cfg = Config.load(path).validate()
    lrs = [lr_at(cfg, e) for e in range(1, cfg.optim.epochs + 1)]
    assert all(math.isfinite(x) and 0 <= x <= cfg.optim.lr for x in lrs), path.name
    assert lrs[0] == cfg.optim.lr


def test_bf16_autocast_nal_loss_on_extreme_logits_is_finite():
    from nalkit.losses import nal_loss

    torch.manual_seed(0)
    # far beyond any trained network's logits, still inside float32 (sums of 1e38-scale terms would not be)
    big = torch.tensor([0.0, 50.0, -50.0, 1e4, -1e4, 1e30, -1e30])
    logits = (big[torch.randint(0, 7, (64, 10))] + torch.randn(64, 10)).requires_grad_()
    att = big[torch.randint(0, 7, (64,))].clone().requires_grad_()
    q = torch.zeros(64, 10)
    q[torch.arange(64), torch.randint(0, 10, (64,))] = 1.0  # one-hot: q_k = 0 elsewhere
    q[::2] = torch.softmax(torch.randn(32, 10) * 30, dim=1)  # soft targets, some underflow to 0
    for targets in (q, q.argmax(1)):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = nal_loss(logits.to(torch.bfloat16), att.to(torch.bfloat16), targets, lam=0.5, beta=0.1)
        assert torch.isfinite(loss), loss
        logits.grad = att.grad = None
        loss.backward()
        assert torch.isfinite(logits.grad).all() and torch.isfinite(att.grad).all()
    fl.fault()


# --------------------------------------------------------------------------------------------
# 5. grid faults
# --------------------------------------------------------------------------------------------
def write_grid(path: Path, cfg: Path, results: Path, methods=("ce", "nal"), failing: bool = False) -> Path:
    entries = [{"method.name": m} for m in methods]
    if failing:
        entries.append({"method.name": "gce", "data.name": "cifar10", "data.root": str(path.parent / "no-data")})
    grid = {"name": "faults", "results_dir": str(results), "notebook": None, "configs": [str(cfg)],
            "axes": {"method": entries}}
    path.write_text(yaml.safe_dump(grid, sort_keys=False))
    return path


def executions(mark: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in mark.read_text().splitlines() if mark.is_file() else []:
        name = line.split()[1]
        counts[name] = counts.get(name, 0) + 1
    return counts


def test_a_failing_experiment_is_recorded_and_a_rerun_runs_only_what_is_missing(tiny_yaml, reference, tmp_path,
                                                                                monkeypatch):
    from nalkit.grid import expand_grid
    from nalkit.runner import run_grid

    mark = tmp_path / "mark.txt"
    monkeypatch.setenv(fl.MARK_ENV, str(mark))
    import nalkit.train

    monkeypatch.setattr(nalkit.train, "train", nalkit.train.train)  # restored afterwards
    fl.install_marker_from_env()
    grid = write_grid(tmp_path / "g.yaml", tiny_yaml, tmp_path / "results", failing=True)
    ce, nal, bad = expand_grid(grid)
    fl.fault()
    summary = run_grid(grid)
    assert dict(zip(summary.table.experiment, summary.table.state)) == {ce.name: "done", nal.name: "done",
                                                                       bad.name: "failed"}
    failure = json.loads((bad.run_dir / "failure.json").read_text())
    assert "DatasetNotFoundError" in failure["error"] and "Traceback" in failure["traceback"]
    assert "prepare_data" in failure["traceback"]
    assert executions(mark) == {ce.name: 1, nal.name: 1, bad.name: 1}
    diff = fl.differences(nal.run_dir, reference[0])
    fl.compared(not diff, f"grid experiment beside a failing one: {diff}")
    assert not diff
    again = run_grid(grid)
    assert list(again.table.state) == ["skipped", "skipped", "failed"]
    assert executions(mark) == {ce.name: 1, nal.name: 1, bad.name: 2}, "only the missing experiment reran"


def test_a_runner_killed_mid_experiment_is_finished_by_a_rerun(tiny_yaml, reference, tmp_path):
    from nalkit.grid import expand_grid
    from nalkit.locks import read_lock

    mark = tmp_path / "mark.txt"
    grid = write_grid(tmp_path / "g.yaml", tiny_yaml, tmp_path / "results")
    ce, nal = expand_grid(grid)
    # the inline runner trains ce, then nal in the same process: die right after nal's 2nd checkpoint
    kill = {"match": "ckpt-00002.pt", "nth": 3, "when": "after"}  # ce's .pt and .pt.sha256, then nal's .pt
    out = fl.cli_subprocess(["run", str(grid)], env={fl.KILL_ENV: json.dumps(kill), fl.MARK_ENV: str(mark)})
    assert out.returncode == -9, out.stderr
    fl.fault()
    assert read_lock(nal.run_dir)["pid"], "the dead runner's lock is left behind"
    again = fl.cli_subprocess(["run", str(grid)], env={fl.MARK_ENV: str(mark)})
    assert again.returncode == 0, again.stderr
    assert executions(mark) == {ce.name: 1, nal.name: 2}, "the complete experiment is not run again"
    assert not (nal.run_dir / ".lock").exists()
    diff = fl.differences(nal.run_dir, reference[0])
    fl.compared(not diff, f"grid experiment after a killed runner: {diff}")
    assert not diff


def test_two_runners_on_one_results_directory_run_each_experiment_once(tiny_yaml, reference, tmp_path):
    from nalkit.grid import expand_grid
    from nalkit.runner import status_table

    mark = tmp_path / "mark.txt"
    grid = write_grid(tmp_path / "g.yaml", tiny_yaml, tmp_path / "results", methods=("ce", "nal", "gce", "sce"))
    exps = expand_grid(grid)
    procs = [fl.cli_popen(["run", str(grid)], env={fl.MARK_ENV: str(mark)}) for _ in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    fl.fault()
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err
    assert executions(mark) == {e.name: 1 for e in exps}, executions(mark)
    assert set(status_table(tmp_path / "results").state) == {"done"}
    nal = next(e for e in exps if e.cfg.method.name == "nal")
    diff = fl.differences(nal.run_dir, reference[0])
    fl.compared(not diff, f"two concurrent runners: {diff}")
    assert not diff
