import os
from pathlib import Path

import pytest

FMNIST_DIRS = [Path("data/fashion-mnist"), Path("/usr/share/datasets/fashion-mnist")]


@pytest.fixture(scope="session")
def fashion_mnist():
    """Real Fashion-MNIST must be present for training tests (CI installs it; see README)."""
    if not any((d / "t10k-labels-idx1-ubyte.gz").is_file() for d in FMNIST_DIRS):
        pytest.skip("Fashion-MNIST not found: run `make data`")


def pytest_configure(config):
    os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def zygote(tmp_path_factory, fashion_mnist):
    """A preloaded interpreter that forks one training process per call (see tests/faultlib.py)."""
    import faultlib

    z = faultlib.Zygote(tmp_path_factory.mktemp("zygote"))
    yield z
    z.close()


def pytest_terminal_summary(terminalreporter):
    """One line from the fault-injection suite's counters (tests/faultlib.py), when it ran."""
    import sys

    faultlib = sys.modules.get("faultlib")
    if faultlib is None or not any(faultlib.COUNTS.values()):
        return
    terminalreporter.write_line(faultlib.summary_line())
    for what in faultlib.LOST:
        terminalreporter.write_line(f"  lost: {what}")
