"""The benchmark scripts in benchmarks/: each --quick run writes well-formed rows, and no GPU number is faked.

The scripts run in this process (their ``main(argv)``), one torch thread, output to a tmp CSV. The numbers of
a quick run mean nothing; what is checked is the record: columns, types, ratios where a target is set.
"""

from __future__ import annotations

import csv
import importlib
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
benchlib = importlib.import_module("benchlib")


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def run(name: str, tmp_path: Path, *extra: str) -> list[dict]:
    out = tmp_path / f"{name}.csv"
    module = importlib.import_module(name)
    assert module.main(["--quick", "--threads", "1", "--out", str(out), *extra]) == 0
    with out.open(newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == benchlib.COLUMNS
        rows = list(reader)
    assert rows, f"{name} wrote no rows"
    for r in rows:
        assert r["benchmark"] == name
        assert r["quantity"] and r["unit"] and r["device"] and r["torch"] and r["date"]
        assert r["command"].startswith("python benchmarks/")
        for key in ("value", "ratio"):
            if r[key]:
                float(r[key])  # a number, or empty
        if r["target"]:
            op, bound = r["target"].split()
            assert op in ("<=", ">=") and float(bound) > 0
    return rows


def measured_ratios(rows: list[dict]) -> list[float]:
    return [float(r["ratio"]) for r in rows if r["target"] and r["ratio"]]


def test_nal_overhead_quick(tmp_path):
    rows = run("nal_overhead", tmp_path)
    ratios = measured_ratios(rows)
    assert len(ratios) == 2  # step time and (counted) memory, each against its target
    assert all(0.2 < r < 5 for r in ratios)
    memory = [r for r in rows if r["quantity"].startswith("memory (counted)") and r["ratio"]]
    assert float(memory[0]["ratio"]) > 1.0  # NAL's target store is counted


def test_trainer_vs_loop_quick(tmp_path, fashion_mnist):
    rows = run("trainer_vs_loop", tmp_path)
    assert len(measured_ratios(rows)) == 1
    assert all(float(r["value"]) > 0 for r in rows if r["unit"] == "img/s")


def test_augment_quick(tmp_path):
    rows = run("augment", tmp_path)
    assert len(measured_ratios(rows)) == 2  # num_workers 0 and 2


def test_grid_walltime_quick(tmp_path):
    rows = run("grid_walltime", tmp_path, "--sources", str(tmp_path / "no-runs-here"))
    from nalkit.grid import load_grid

    expected = len(load_grid(Path(__file__).resolve().parents[1] / "configs" / "grids" / "default.yaml").experiments)
    assert rows[0]["quantity"].startswith("runs in the grid") and float(rows[0]["value"]) == expected == 90
    assert float(rows[1]["value"]) == 0


def test_gpu_epoch_without_gpu_writes_not_measured_and_keeps_gpu_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rows = run("gpu_epoch", tmp_path)
    unmeasured = [r for r in rows if r["device"] == "cuda"]
    assert unmeasured and all(r["value"] == "" and r["ratio"] == "" for r in unmeasured)
    assert all(r["note"].startswith("not yet measured (no GPU)") for r in unmeasured)
    flops = [r for r in rows if r["quantity"].startswith("forward FLOPs")]
    assert 1.0 < float(flops[0]["value"]) < 5.0  # ResNet-34 at 32x32: about 1.2 GMAC = 2.3 GFLOP

    # a measured GPU row already in the file survives a later run on a machine without a GPU
    out = tmp_path / "gpu_epoch.csv"
    rows = list(csv.DictReader(out.open()))
    measured = dict(rows[0], quantity="epoch time, batch 128, NAL (bf16, channels_last)", value="9.5", ratio="",
                    device="cuda", device_name="NVIDIA H100 80GB HBM3")
    with out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=benchlib.COLUMNS)
        w.writeheader()
        w.writerows([measured])
    rows = run("gpu_epoch", tmp_path)
    assert any(r["value"] == "9.5" and r["device_name"] == "NVIDIA H100 80GB HBM3" for r in rows)
    assert not any(r["note"].startswith("not yet measured") for r in rows)


def test_recipes_without_gpu_writes_not_measured_rows_naming_the_precision(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rows = run("recipes", tmp_path)
    recipes = sorted(p.stem for p in (ROOT / "configs" / "paper").glob("*.yaml"))
    assert len(rows) == 3 * len(recipes)
    assert all(r["value"] == "" and r["note"] == "not yet measured (no GPU)" and r["device"] == "cuda" for r in rows)
    assert all(", fp32)" in r["quantity"] for r in rows)  # every paper recipe runs fp32 (run.amp: false)
    assert {r["quantity"].split(" ")[0] for r in rows} == set(recipes)
    # measured GPU rows already in the file survive a later run without a GPU
    out = tmp_path / "recipes.csv"
    measured = dict(rows[0], value="12.5", device_name="NVIDIA H100 80GB HBM3")
    with out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=benchlib.COLUMNS)
        w.writeheader()
        w.writerows([measured])
    rows = run("recipes", tmp_path)
    assert rows == [measured]


@pytest.mark.slow
def test_recipes_forced_on_the_cpu_runs_a_recipe_through_the_trainer(tmp_path):
    rows = run("recipes", tmp_path, "--device", "cpu", "--force", "--recipes", "cifar10-sym40")
    assert [r["unit"] for r in rows] == ["s", "ms", "GiB"]
    assert float(rows[0]["value"]) > 0 and float(rows[1]["value"]) > 0 and rows[2]["value"] == ""
    assert rows[0]["quantity"].startswith("cifar10-sym40 (cifar_resnet34, batch 2, fp32): runs")


def test_meets():
    assert benchlib.meets("1.01", "<= 1.03") == "yes"
    assert benchlib.meets("0.95", ">= 0.97") == "no"
    assert benchlib.meets("", "<= 2") == ""
