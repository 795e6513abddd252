"""What every benchmark script shares: side-by-side timing, the tidy CSV, the printed table.

Each benchmark measures *ratios*: the two things compared run alternately (A B, B A, A B, ...) in one
process, several repeats each, and the reported ratio is the median of the per-repeat ratios. A machine
that is busy with something else slows both sides of a pair alike, so the ratio survives contention
that makes the absolute numbers meaningless; the absolute medians are written too, for scale only.

CSV columns (one row per measured quantity, tidy)::

    benchmark, quantity, value, unit, ratio, target, device, device_name, threads, torch, date, command, note

``ratio`` is filled on the row that is compared against a baseline (the baseline is named in
``quantity`` / ``note``); ``target`` is the claim it is checked against, e.g. ``<= 1.03``. ``value`` is
left empty, never guessed, for something that was not measured (``note`` says why).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results" / "benchmarks"
COLUMNS = ("benchmark", "quantity", "value", "unit", "ratio", "target", "device", "device_name", "threads",
           "torch", "date", "command", "note")


# --------------------------------------------------------------------------------------------
# where the numbers go
# --------------------------------------------------------------------------------------------
def default_out(benchmark: str, quick: bool) -> Path:
    """``results/benchmarks/<benchmark>.csv``; quick (smoke-test) numbers go to a scratch file instead."""
    if quick:
        return Path(tempfile.gettempdir()) / "nalkit-bench" / f"{benchmark}-quick.csv"
    return RESULTS / f"{benchmark}.csv"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:  # the model name is far more telling than "x86_64"
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu} ({os.cpu_count()} logical CPUs)"


_COMMAND: list[str] = []


def command_line() -> str:
    """The command that reproduces this run, relative to the repository root."""
    if _COMMAND:
        return " ".join(shlex.quote(a) for a in _COMMAND)
    script = Path(sys.argv[0]).resolve()
    try:
        script = script.relative_to(ROOT)
    except ValueError:
        pass
    return " ".join(shlex.quote(a) for a in ["python", str(script), *sys.argv[1:]])


@dataclass
class Table:
    """Rows of one benchmark run on one device."""

    benchmark: str
    device: torch.device
    rows: list[dict] = field(default_factory=list)

    def add(self, quantity: str, value: float | None, unit: str, ratio: float | None = None,
            target: str = "", note: str = "", device: torch.device | None = None) -> None:
        dev = device or self.device
        self.rows.append({
            "benchmark": self.benchmark, "quantity": quantity,
            "value": "" if value is None else f"{value:.6g}", "unit": unit,
            "ratio": "" if ratio is None else f"{ratio:.4f}", "target": target,
            "device": dev.type if isinstance(dev, torch.device) else str(dev),
            "device_name": device_name(dev) if isinstance(dev, torch.device) else "",
            "threads": torch.get_num_threads(), "torch": torch.__version__,
            "date": _dt.datetime.now().astimezone().strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": command_line(), "note": note,
        })

    def print(self) -> None:
        """The ratio table, as the report shows it."""
        head = ("quantity", "value", "unit", "ratio", "target", "met")
        body = [(r["quantity"], r["value"] or "-", r["unit"], r["ratio"] or "", r["target"],
                 meets(r["ratio"], r["target"])) for r in self.rows]
        widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
        print(f"\n{self.benchmark} on {self.device.type} ({device_name(self.device)}), "
              f"{torch.get_num_threads()} threads, torch {torch.__version__}")
        for line in (head, *body):
            print("  " + "  ".join(str(x).ljust(w) for x, w in zip(line, widths)))
        notes = [(r["quantity"], r["note"]) for r in self.rows if r["note"]]
        for q, n in notes:
            print(f"  - {q}: {n}")

    def write(self, out: Path, append: bool = False) -> Path:
        """Write the rows to ``out``.

        Rows already in ``out`` for *other* benchmarks or *other* device types are kept (so a CPU run does
        not erase GPU measurements, and ``--append`` keeps earlier runs of this one as well).
        """
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        kept: list[dict] = []
        if out.is_file():
            with out.open(newline="") as f:
                for r in csv.DictReader(f):
                    same = r.get("benchmark") == self.benchmark and r.get("device") in {x["device"] for x in self.rows}
                    if append or not same:
                        kept.append({c: r.get(c, "") for c in COLUMNS})
        tmp = out.with_suffix(out.suffix + ".tmp")
        with tmp.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS)
            w.writeheader()
            w.writerows(kept + self.rows)
        tmp.replace(out)
        print(f"\nwrote {len(self.rows)} rows to {out}")
        return out


def meets(ratio: str, target: str) -> str:
    """'yes' / 'no' / '' for a ratio string against a target such as '<= 1.03' or '>= 0.97'."""
    if not ratio or not target:
        return ""
    try:
        op, bound = target.split()
        r, b = float(ratio), float(bound)
    except ValueError:
        return ""
    ok = r <= b if op == "<=" else r >= b if op == ">=" else None
    return "" if ok is None else ("yes" if ok else "no")


# --------------------------------------------------------------------------------------------
# side-by-side timing
# --------------------------------------------------------------------------------------------
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Paired:
    """Times of several candidates measured in alternation; ``times[name]`` has one entry per repeat."""

    times: dict[str, list[float]]

    def median(self, name: str) -> float:
        return statistics.median(self.times[name])

    def ratios(self, a: str, b: str) -> list[float]:
        """Per-repeat ratios a / b (each pair ran back to back)."""
        return [x / y for x, y in zip(self.times[a], self.times[b])]

    def ratio(self, a: str, b: str) -> float:
        return statistics.median(self.ratios(a, b))

    def spread(self, a: str, b: str) -> str:
        r = sorted(self.ratios(a, b))
        return f"median of {len(r)} paired repeats, range {r[0]:.3f}-{r[-1]:.3f}"


def alternate(candidates: dict[str, Callable[[], float | None]], repeats: int,
              device: torch.device | None = None) -> Paired:
    """Run every candidate once per repeat, rotating the order each repeat (ABC, BCA, CAB, ...).

    A candidate returns its own measured seconds (e.g. read from a trainer's record), or None to be
    timed here as a whole with ``perf_counter`` (and a device synchronisation on CUDA).
    """
    names = list(candidates)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            if device is not None:
                sync(device)
            t0 = time.perf_counter()
            got = candidates[name]()
            if device is not None:
                sync(device)
            times[name].append(time.perf_counter() - t0 if got is None else float(got))
    return Paired(times)


def parse_common(parser, benchmark: str):
    """Add --quick / --out / --append / --threads; return a function finishing the parsed args."""
    parser.add_argument("--quick", action="store_true", help="a few seconds' smoke test (numbers not for the record)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"CSV to write (default results/benchmarks/{benchmark}.csv; with --quick a scratch file "
                             f"under {tempfile.gettempdir()}/nalkit-bench/)")
    parser.add_argument("--append", action="store_true", help="keep earlier rows of this benchmark in --out")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")

    def finish(args, argv=None):
        """Fill defaults; ``argv`` (default ``sys.argv[1:]``) is recorded as the reproducing command."""
        _COMMAND[:] = ["python", f"benchmarks/{benchmark}.py", *(sys.argv[1:] if argv is None else argv)]
        if args.out is None:
            args.out = default_out(benchmark, args.quick)
        if args.threads:
            torch.set_num_threads(args.threads)
        return args

    return finish


def describe(seq: Sequence[float], scale: float = 1.0, fmt: str = ".3g") -> str:
    return ", ".join(f"{x * scale:{fmt}}" for x in seq)


# --------------------------------------------------------------------------------------------
# precision: every benchmark that trains names the one it ran in
# --------------------------------------------------------------------------------------------
PRECISIONS = ("bf16", "fp32")


def measured_cuda_rows(out, benchmark: str, quantity_prefix: str = "") -> list[dict]:
    """Measured (non-empty) CUDA rows of ``benchmark`` already in the CSV ``out`` (none if it is absent), so a
    run without a GPU keeps the GPU rows a lent machine wrote."""
    try:
        with open(out, newline="") as f:
            return [r for r in csv.DictReader(f)
                    if r.get("benchmark") == benchmark and r.get("device") == "cuda" and r.get("value")
                    and r.get("quantity", "").startswith(quantity_prefix)]
    except OSError:
        return []


def add_device(parser) -> None:
    """``--device`` and ``--force`` for the GPU benchmarks."""
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cuda, cuda:N, or cpu (with --force)")
    parser.add_argument("--force", action="store_true",
                        help="measure even on a CPU (checks the script; scratch output)")


def resolve_device(parser, name: str) -> torch.device:
    """``--device``: ``auto`` is CUDA where there is one, else the CPU; a CUDA device that is absent is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {name}: CUDA is not available here")
    return device


def add_precision(parser, default: str = "bf16") -> None:
    """``--precision bf16|fp32``: bf16 autocast or full fp32 on CUDA (the CPU always runs fp32)."""
    parser.add_argument("--precision", choices=PRECISIONS, default=default,
                        help=f"on CUDA: bf16 autocast or fp32 (default {default}); the paper recipes train in fp32 "
                             "(run.amp: false); the CPU always runs fp32")


def autocast(device: torch.device, precision: str):
    """The autocast context of ``precision`` on ``device`` (bf16 on CUDA only; nothing otherwise)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "bf16" and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def precision_label(device: torch.device, precision: str) -> str:
    """What actually ran: ``"bf16 autocast"`` or ``"fp32"`` (the CPU ignores bf16, as the trainer does)."""
    return "bf16 autocast" if precision == "bf16" and device.type == "cuda" else "fp32"


def train_step(model, method, opt, x, y, idx, autocast, epoch: int = 1) -> torch.Tensor:
    """One SGD step of ``method`` on ``model`` (the trainer's inner loop, without its bookkeeping).

    ``epoch`` (1-indexed) is what the method sees: at or after NAL's ``es`` its targets are updated.
    """
    with autocast:
        logits, att = model(x)
    per = method.batch_loss(logits, att if method.uses_attention else None, y, idx, epoch)
    loss = per.mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss
