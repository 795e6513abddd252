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
