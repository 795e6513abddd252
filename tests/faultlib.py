"""Helpers of the fault-injection suite: a counter registry, tiny configs, and a way to SIGKILL a run.

Kills are injected in two ways:

* at a random time: the test sends SIGKILL to the training process after a seeded random delay;
* at a precise write phase: ``NALKIT_FAULT_KILL`` (read by :func:`install_kill_from_env` in the
  child) makes the process SIGKILL itself around the n-th ``os.replace`` whose destination name
  matches -- ``before`` (temporary file written, not renamed yet) or ``after`` (renamed, but its
  checksum file / the manifest not yet written). Every atomic write of nalkit ends in ``os.replace``.

Training processes are forked from a *zygote* that has imported torch and nalkit once (and run no
torch code, so forking is safe); each child runs ``nalkit.cli.main([...])`` exactly as
``python -m nalkit.cli`` would. This keeps a kill point at about two seconds on a loaded CPU
instead of eight. :func:`cli_subprocess` runs the real ``python -m nalkit.cli``-equivalent wrapper.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
TIMING = ["seconds", "eval_seconds"]
KILL_ENV = "NALKIT_FAULT_KILL"
TRACE_ENV = "NALKIT_FAULT_TRACE"  # append every os.replace destination to this file
MARK_ENV = "NALKIT_FAULT_MARK"  # append one line per nalkit.train.train call to this file


# --------------------------------------------------------------------------------------------
# the counters behind the one-line report (printed by conftest.pytest_terminal_summary)
# --------------------------------------------------------------------------------------------
COUNTS = {"bad_inputs": 0, "faults": 0, "compared": 0, "lost": 0}
LOST: list[str] = []


def bad_input(n: int = 1) -> None:
    COUNTS["bad_inputs"] += n


def fault(n: int = 1) -> None:
    COUNTS["faults"] += n


def compared(ok: bool, what: str) -> None:
    """One run compared with the uninterrupted reference (or checked never to use bad data)."""
    COUNTS["compared"] += 1
    if not ok:
        COUNTS["lost"] += 1
        LOST.append(what)


def summary_line() -> str:
    c = COUNTS
    return (f"fault suite: {c['bad_inputs']} bad inputs tried, {c['faults']} faults injected, "
            f"{c['compared']} runs compared, lost = {c['lost']}")


# --------------------------------------------------------------------------------------------
# tiny configs
# --------------------------------------------------------------------------------------------
def tiny_dict(**changes) -> dict:
    """tests/test_train.py's tiny() (300 train / 200 test images, width-8 CNN, 4 epochs), one thread."""
    d = {
        "data": {"name": "fashion_mnist", "train_subset": 300, "test_subset": 200, "augment": True},
        "noise": {"mode": "sym", "rate": 0.4, "seed": 3},
        "model": {"name": "small_cnn", "width": 8},
        "method": {"name": "nal", "nal": {"es": 2, "update_period": 1}, "selc": {"start": 2}},
        "optim": {"epochs": 4, "batch_size": 32, "lr": 0.05, "restart_period": 2},
        "run": {"seed": 1, "progress": False, "snapshot_epochs": [1, 4], "threads": 1, "device": "cpu"},
    }
    for key, value in changes.items():
        *path, name = key.split(".")
        node = d
        for part in path:
            node = node.setdefault(part, {})
        node[name] = value
    return d


def write_yaml(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# --------------------------------------------------------------------------------------------
# comparing a run with the reference
# --------------------------------------------------------------------------------------------
def run_dir_of(results: Path) -> Path:
    dirs = [p for p in results.iterdir() if p.is_dir() and p.name not in ("noise", "labels")]
    assert len(dirs) == 1, dirs
    return dirs[0]


def differences(run: Path, ref: Path) -> list[str]:
    """What differs between two complete runs: metrics (minus timings), arrays, state; [] if equal."""
    import numpy as np

    from nalkit.records import read_metrics
    from nalkit.results import load_arrays, load_runs

    out = []
    try:
        load_runs(run)  # the whole record verifies against its manifest
        a, b = load_arrays(run), load_arrays(ref)
    except Exception as err:  # noqa: BLE001 -- any failure to read is a difference
        return [f"unreadable: {type(err).__name__}: {err}"]
    if json.loads((run / "status.json").read_text()).get("state") != "complete":
        out.append("not complete")
    ma = read_metrics(run).drop(columns=TIMING)
    mb = read_metrics(ref).drop(columns=TIMING)
    if not ma.equals(mb):
        out.append("metrics differ")
    if a.keys() != b.keys():
        out.append(f"array names differ: {sorted(set(a) ^ set(b))}")
    out += [f"array {k} differs" for k in a if k in b and not np.array_equal(a[k], b[k])]
    return out


# --------------------------------------------------------------------------------------------
# kills: installed in the child process
# --------------------------------------------------------------------------------------------
def install_kill_from_env() -> None:
    """Patch ``os.replace`` per ``NALKIT_FAULT_KILL`` = ``{"match": s, "nth": n, "when": before|after}``.

    The n-th replace (counted in this process) whose destination name contains ``match`` -- and, with
    ``"requires": name``, only while that file exists beside the destination -- is the kill point.
    """
    spec = os.environ.get(KILL_ENV)
    trace = os.environ.get(TRACE_ENV)
    if not spec and not trace:
        return
    kill = json.loads(spec) if spec else None
    real = os.replace
    seen = {"n": 0}

    def replace(src, dst, *a, **kw):
        name = os.path.basename(os.fspath(dst))
        if trace:
            with open(trace, "a") as f:
                f.write(name + "\n")
        hit = False
        parent = os.path.dirname(os.fspath(dst))
        if kill and kill["match"] in name and (
                not kill.get("requires") or os.path.exists(os.path.join(parent, kill["requires"]))):
            seen["n"] += 1
            hit = seen["n"] == kill["nth"]
        if hit and kill["when"] == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        real(src, dst, *a, **kw)
        if hit and kill["when"] == "after":
            os.kill(os.getpid(), signal.SIGKILL)

    os.replace = replace


def install_marker_from_env() -> None:
    """Count executions: every ``nalkit.train.train`` call appends ``<pid> <run dir>`` to a file."""
    mark = os.environ.get(MARK_ENV)
    if not mark:
        return
    import nalkit.train

    real = nalkit.train.train

    def train(config, overrides=(), **kw):
        with open(mark, "a") as f:
            f.write(f"{os.getpid()} {Path(str(kw.get('run_dir'))).name}\n")
        return real(config, overrides, **kw)

    nalkit.train.train = train


def preload_datasets() -> None:
    """Zygote only: read the Fashion-MNIST idx files once; forked children reuse the parsed arrays.

    Only the (unchanged) file reading is shared; every child still builds its dataset, noise, model
    and run record itself. Keyed by path and mtime, so a test's own files are read for real.
    """
    import nalkit.datasets as ds
    import nalkit.datasets.fashion_mnist as fmnist  # the module whose loader calls read_idx

    real = fmnist.read_idx
    cache: dict = {}

    def read_idx(path, magic):
        key = (str(path), magic, os.stat(path).st_mtime_ns)
        if key not in cache:
            cache[key] = real(path, magic)
        return cache[key]

    fmnist.read_idx = read_idx
    try:
        ds.load_dataset("fashion_mnist", REPO / "data", download=False)
    except Exception:  # noqa: BLE001, S110 -- no data here: the tests that need it skip
        pass


def warm_up() -> None:
    """Zygote only: one tiny training run, so lazy imports and first-call costs are paid once.

    Safe to fork afterwards: the zygote runs with OMP_NUM_THREADS=1, so no OpenMP pool exists.
    """
    import tempfile

    import nalkit.cli

    with tempfile.TemporaryDirectory() as tmp:
        cfg = write_yaml(Path(tmp) / "warm.yaml", tiny_dict(**{"optim.epochs": 1, "method.nal.es": 1, "run.snapshot_epochs": [1]}))
        try:
            import contextlib
            import io

            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                nalkit.cli.main(["train", str(cfg), "--results-dir", tmp, "--quiet"])
        except Exception:  # noqa: BLE001, S110 -- no data: the tests that need it skip
            pass


# the `python -c` program that stands for `python -m nalkit.cli`, with the fault hooks installed
CLI_WRAPPER = (
    f"import sys; sys.path.insert(0, {str(TESTS)!r}); import faultlib; faultlib.install_kill_from_env(); "
    "faultlib.install_marker_from_env(); from nalkit.cli import main; sys.exit(main(sys.argv[1:]))"
)


def cli_popen(args: list[str], env: dict | None = None, **kw) -> subprocess.Popen:
    """Start ``nalkit ARGS`` (the real command line, in a fresh interpreter) with the fault hooks."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.Popen([sys.executable, "-c", CLI_WRAPPER, *args], cwd=REPO, env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def cli_subprocess(args: list[str], env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    p = cli_popen(args, env)
    out, err = p.communicate(timeout=timeout)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


# --------------------------------------------------------------------------------------------
# the zygote: fork a preloaded interpreter per training process
# --------------------------------------------------------------------------------------------
# Fork safety. A forked child inherits every lock of the zygote in the state it had at the fork, and
# any lock living in shared memory stays shared: a child SIGKILLed while holding one leaves it held for
# every later child. So the zygote (1) never lets tqdm create its multiprocessing semaphore or monitor
# thread (nalkit's own bars never do, see nalkit/_progress.py; this guards any other tqdm), and (2) is
# single-threaded at every fork, which it asserts: a thread could hold a lock that the child's copy
# would never see released.
_ZYGOTE = r"""
import faulthandler, json, os, signal, sys, threading, traceback
sys.path.insert(0, %r)
import tqdm.std
tqdm.std.TqdmDefaultWriteLock.mp_lock = None  # no lock in shared memory, whatever creates a bar
tqdm.std.tqdm.monitor_interval = 0  # no monitor thread
import torch, numpy, pandas  # noqa: F401 -- preload; no torch code runs before a fork
import nalkit.cli, nalkit.train, nalkit.datasets, nalkit.records, nalkit.checkpoint  # noqa: F401
import faultlib
faultlib.preload_datasets()
faultlib.warm_up()
print(json.dumps({"ready": os.getpid()}), flush=True)
for line in sys.stdin:
    req = json.loads(line)
    threads = faultlib.thread_counts()
    if threads != (1, 1):
        print(json.dumps({"error": f"zygote is not single-threaded before a fork: {threads} "
                                   f"(python threads, OS threads): {threading.enumerate()}"}), flush=True)
        continue
    pid = os.fork()
    if pid == 0:
        fd = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)  # the harness's stack dump
        os.chdir(req["cwd"])
        os.environ.update(req["env"])
        faultlib.install_kill_from_env()
        try:
            if req.get("python"):
                exec(req["python"], {"__name__": "__zygote_child__"})
                rc = 0
            else:
                rc = nalkit.cli.main(req["argv"])
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 1
        except BaseException:
            traceback.print_exc()
            rc = 99
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)
    print(json.dumps({"pid": pid}), flush=True)
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"status": status}), flush=True)
"""


def thread_counts() -> tuple[int, int]:
    """(Python threads, OS threads of this process); the OS count is the Python one where /proc is absent."""
    import threading

    try:
        native = len(os.listdir("/proc/self/task"))
    except OSError:
        native = threading.active_count()
    return threading.active_count(), native


class ChildHung(AssertionError):
    """A forked child outlived its time limit; the message holds its log and the stack dump."""


@dataclass
class Outcome:
    returncode: int  # -9 when killed
    log: str
    seconds: float

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL


class Zygote:
    """``run(argv, kill_after=..., env=...)`` forks a child that runs ``nalkit.cli.main(argv)``.

    Every child has a time limit (``timeout``, default :attr:`TIMEOUT` seconds): a child that outlives
    it gets SIGUSR1 (faulthandler writes every thread's stack to its log), then SIGKILL, and the call
    raises :class:`ChildHung` with the log. A hang is a failure with a stack dump, never a stuck suite.
    """

    TIMEOUT = 180.0

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([sys.executable, "-c", _ZYGOTE % str(TESTS)], cwd=REPO,
                                     env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._buf = b""
        assert "ready" in self._message(time.monotonic() + 300, "the zygote to start")
        self.n = 0

    def _message(self, deadline: float, what: str) -> dict:
        """The zygote's next JSON line, read without Python's buffering so a deadline can apply."""
        import select

        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError(f"no answer from the zygote while waiting for {what}")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError(f"the zygote exited (code {self.proc.wait()}) while waiting for {what}")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        msg = json.loads(line)
        if "error" in msg:
            raise AssertionError(msg["error"])
        return msg

    def run(self, argv: list[str] | None = None, *, kill_after: float | None = None, env: dict | None = None,
            python: str | None = None, timeout: float | None = None) -> Outcome:
        """Fork a child running ``nalkit ARGV`` (or the Python source ``python``) and wait for it."""
        self.n += 1
        log = self.workdir / f"child-{self.n}.log"
        req = {"argv": [str(a) for a in argv or []], "python": python, "env": env or {}, "log": str(log),
               "cwd": str(REPO)}
        t0 = time.perf_counter()
        deadline = time.monotonic() + (self.TIMEOUT if timeout is None else timeout)
        self.proc.stdin.write((json.dumps(req) + "\n").encode())
        self.proc.stdin.flush()
        pid = self._message(deadline, "the fork")["pid"]
        if kill_after is not None:
            time.sleep(kill_after)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            status = self._message(deadline, f"child {pid} ({argv or 'python'})")["status"]
        except TimeoutError:
            for sig, pause in ((signal.SIGUSR1, 2.0), (signal.SIGKILL, 0.0)):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    break
                time.sleep(pause)
            self._message(time.monotonic() + 30, f"child {pid} to be reaped")
            raise ChildHung(f"child {pid} ({argv or 'python'}) hung for {time.perf_counter() - t0:.0f} s; its log "
                            f"(stack dump at the end):\n{log.read_text(errors='replace')}") from None
        return Outcome(os.waitstatus_to_exitcode(status), log.read_text(), time.perf_counter() - t0)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
