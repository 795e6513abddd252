"""tools/gpu_data.py: the zero-padded Fashion-MNIST the GPU machine carries gives every CPU-regime run exactly the
data the full copy gives (same training, validation and test images and labels), in a fraction of the bytes."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nalkit.config import Config
from nalkit.data import prepare_data
from nalkit.datasets import SYSTEM_DATA_DIRS

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("fashion_mnist")


def _full_root() -> str:
    for root in (REPO / "data", *SYSTEM_DATA_DIRS):
        if (Path(root) / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").is_file():
            return str(root)
    pytest.skip("Fashion-MNIST not found")


@pytest.mark.timeout(300)
def test_the_small_copy_gives_every_run_the_same_data(tmp_path, monkeypatch):
    full = _full_root()
    done = subprocess.run([sys.executable, "tools/gpu_data.py", "--src", full, "--out", str(tmp_path)], cwd=REPO,
                          capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr
    files = sorted((tmp_path / "fashion-mnist").glob("*.gz"))
    assert len(files) == 4 and sum(f.stat().st_size for f in files) < 9e6, [f.stat().st_size for f in files]
    # only the copy is visible: the loader must not fall back to a system-wide full copy
    monkeypatch.setattr("nalkit.datasets.SYSTEM_DATA_DIRS", ())
    for overrides in (["data.noisy_val_size=5000", "noise.seed=3"], ["noise.mode=asym", "data.cv_folds=5",
                                                                      "data.cv_fold=2"]):
        a = prepare_data(Config.load(REPO / "configs/fmnist/cpu.yaml", [f"data.root={full}", *overrides]), None)
        b = prepare_data(Config.load(REPO / "configs/fmnist/cpu.yaml", [f"data.root={tmp_path}", *overrides]), None)
        assert a.train.images.abs().sum() > 0
        for x, y in ((a.train, b.train), (a.bundle.test, b.bundle.test), *(((a.val, b.val),) if a.val else ())):
            assert np.array_equal(np.asarray(x.images), np.asarray(y.images))
            assert np.array_equal(np.asarray(x.labels), np.asarray(y.labels))
        assert np.array_equal(a.noisy, b.noisy) and np.array_equal(a.train_index, b.train_index)
    # an image the runs never read is zero in the copy
    from nalkit.datasets.fashion_mnist import read_idx

    small = read_idx(tmp_path / "fashion-mnist" / "train-images-idx3-ubyte.gz", 2051)
    assert (small.reshape(len(small), -1).max(axis=1) == 0).sum() == 60000 - 8000
