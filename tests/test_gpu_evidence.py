"""tools/gpu_evidence.py, rehearsed on the CPU at toy sizes, so that a lent GPU is never its first run: every stage
runs in order within its budget, the CUDA tests pass on the CPU device, and the archives come back verified and
within the device tool's limits (at most 4, at most 16 MiB each)."""

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.usefixtures("fashion_mnist"), pytest.mark.slow]


@pytest.mark.timeout(900)
def test_the_evidence_script_runs_every_stage_and_returns_verified_archives(tmp_path):
    out = tmp_path / "out"
    extra = ["data.train_subset=300", "data.noisy_val_size=300", "data.test_subset=500"]
    # one run of the long grid: its NAL at sym 40 %, seed 0 (the grid has several NAL variants; --only is a
    # substring of the run name, so the full name of the first, the book's NAL, is passed)
    from nalkit.grid import load_grid

    rehearsal = ["optim.epochs=2", "run.snapshot_epochs=[1,2]", "method.nal.es=1", "method.selc.start=1", *extra]
    only_long = next(e.name for e in load_grid(REPO / "configs/grids/long.yaml", rehearsal).experiments
                     if "sym0.4-nal-s0" in e.name)
    cmd = [sys.executable, "tools/gpu_evidence.py", "--out", str(out), "--work", str(tmp_path / "work"),
           "--results-dir", str(tmp_path / "results"), "--rehearse", "--total", "800",
           "--only-long", only_long, "--only-fair", "fashion_mnist-sym0.4-gce-s0", *extra]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=880, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    stages = {s["stage"]: s for s in report["stages"]}
    assert list(stages) == ["preflight", "cuda-tests", "probe", "long", "bench", "fair"]
    assert all(s["wall_s"] <= s["budget_s"] + 5 for s in stages.values()), stages
    assert stages["cuda-tests"]["status"] == "pytest exit 0", (tmp_path / "work" / "logs" / "cuda-tests.log").read_text()[-2000:]
    archives = sorted(out.glob("*.tar.gz"))
    assert [a.name for a in archives] == ["1-logs.tar.gz", "2-long.tar.gz", "3-bench.tar.gz", "4-fair.tar.gz"]
    assert not list(out.glob("*.partial"))
    members = {}
    for a in archives:
        assert a.stat().st_size <= 16 * 2**20
        with tarfile.open(a) as tar:
            members[a.name] = tar.getnames()
    assert {"logs/stages.json", "logs/preflight.json", "logs/probe.json", "logs/cuda-tests.xml"} <= set(members["1-logs.tar.gz"])
    # the long grid's runs come back as complete records with their executed notebooks
    statuses = [m for m in members["2-long.tar.gz"] if m.endswith("status.json")]
    assert statuses and any(m.endswith("experiment.ipynb") for m in members["2-long.tar.gz"])
    with tarfile.open(out / "2-long.tar.gz") as tar:
        assert all(json.load(tar.extractfile(m))["state"] == "complete" for m in statuses)
    assert {"gpu_epoch.csv", "recipes.csv"} <= set(members["3-bench.tar.gz"])
    assert any(m.endswith("status.json") for m in members["4-fair.tar.gz"])
    assert json.loads((tmp_path / "work" / "logs" / "probe.json").read_text())["chosen"] in (1, 2)
