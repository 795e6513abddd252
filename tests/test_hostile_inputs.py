"""Hostile inputs: every bad config, file, dataset or grid gives one clear error and writes nothing.

Each case goes through the command line (``nalkit.cli.main([...])`` in this process; a sample also
through a real ``python -m nalkit.cli``) or the Python API, and must: exit non-zero, print one
``nalkit: error:`` message naming the bad value or file, print no traceback, and leave the results
directory absent (or unchanged, where the test put a file there itself).
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

import faultlib as fl
from nalkit.cli import main
from nalkit.config import Config, ConfigError

pytestmark = pytest.mark.usefixtures("fashion_mnist")


# --------------------------------------------------------------------------------------------
# fabricated Fashion-MNIST idx directories
# --------------------------------------------------------------------------------------------
def idx_bytes(arr: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def make_fmnist(root: Path, fault: str | None = None) -> Path:
    """A 20/10-image Fashion-MNIST idx copy under ``root/fashion-mnist`` with one ``fault``."""
    d = root / "fashion-mnist"
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 20), ("t10k", 10)):
        size = 32 if fault == "size" and prefix == "train" else 28
        images = rng.integers(0, 256, (n, size, size))
        labels = np.arange(n) % 10
        if fault == "label" and prefix == "train":
            labels[3] = 12
        if fault == "count" and prefix == "t10k":
            labels = labels[:-2]
        img, lab = idx_bytes(images, 2051), idx_bytes(labels, 2049)
        if fault == "magic" and prefix == "train":
            lab = idx_bytes(labels, 2051)  # an images header on the labels file
        if fault == "truncated" and prefix == "t10k":
            img = img[: len(img) - 100]
        (d / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(img))
        (d / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(lab))
    return d


# --------------------------------------------------------------------------------------------
# the cases: (argv with {cfg} {res} {tmp} placeholders, regex the message must contain, options)
# --------------------------------------------------------------------------------------------
T = ["train", "{cfg}", "--results-dir", "{res}", "--quiet"]


def tr(*overrides: str) -> list[str]:
    return [*T[:2], *overrides, *T[2:]]


NOISE = ["noise", "make", "--dataset", "fashion_mnist", "--out", "{res}/noise", "--train-subset", "300"]
CASES = {
    # config files
    "config missing": (["train", "{tmp}/missing.yaml", "--results-dir", "{res}"], r"missing.yaml' does not exist"),
    "config not YAML": (["train", "{tmp}/broken.yaml", "--results-dir", "{res}"], "broken.yaml' is not valid YAML"),
    "config a list": (["train", "{tmp}/list.yaml", "--results-dir", "{res}"], "expected a mapping of sections, got list"),
    "unknown section": (["train", "{tmp}/section.yaml", "--results-dir", "{res}"], "unknown section 'optimizer'.*'optim'"),
    "section not a mapping": (["train", "{tmp}/scalar.yaml", "--results-dir", "{res}"], "section 'data' must be a mapping"),
    # overrides: types and keys
    "unknown key": (tr("method.lamda=1"), "unknown key 'method.lamda' .*did you mean 'method.nal.lam'"),
    "override without =": (tr("methodlam"), "'methodlam' must look like section.key=value"),
    "override without section": (tr("lam=0.5"), "key 'lam' must be section.key"),
    "int expected": (tr("optim.epochs=ten"), "optim.epochs must be an integer, got 'ten'"),
    "bool expected": (tr("data.augment=maybe"), "data.augment must be true or false, got 'maybe'"),
    "list expected": (tr("run.snapshot_epochs=3"), "run.snapshot_epochs must be a list, got 3"),
    # ranges and cross-field rules
    "rate > 1": (tr("noise.rate=1.5"), r"noise.rate=1.5 is outside \[0, 1\]"),
    "negative lr": (tr("optim.lr=-1"), "lr=-1.0"),
    "zero epochs": (tr("optim.epochs=0"), "optim.epochs=0 must be >= 1"),
    "es beyond epochs": (tr("method.nal.es=99"), "method.nal.es=99 is beyond the 4 training epochs"),
    "negative lam": (tr("method.nal.lam=-1"), "method.nal.lam=-1.0 must be >= 0"),
    "zero width": (tr("model.width=0"), "model.width=0 must be >= 1"),
    "unknown dataset": (tr("data.name=mnist"), "data.name='mnist' is not one of"),
    "unknown model": (tr("model.name=resnet9000"), "model.name='resnet9000' is not one of"),
    "synthetic noise on real noise": (tr("data.name=animal10n"), "'animal10n' already has real label noise"),
    "snapshot outside": (tr("run.snapshot_epochs=[9]"), r"run.snapshot_epochs \[9\] lie outside 1..4"),
    "empty train subset": (tr("data.train_subset=0"), "data.train_subset=0 must be a positive number"),
    "transition without matrix": (tr("noise.mode=transition"), "noise.mode=transition needs noise.transition"),
    "transition of the wrong size": (tr("noise.mode=transition", "noise.transition=[[1,0],[0,1]]"),
                                     r"transition matrix has shape \(2, 2\); expected \(10, 10\)"),
    "test subset too large": (tr("data.test_subset=99999"), "data.test_subset=99999 exceeds the 10000 test images"),
    "train subset too large": (tr("data.train_subset=100000"), "train_subset=100000 must be between 1 and"),
    # fabricated datasets (data.root points at them; the system copy is hidden)
    "idx bad magic": (tr("data.root={tmp}/magic"), "train-labels-idx1-ubyte.gz: idx magic number 2051, expected 2049",
                      {"data": "magic"}),
    "idx label 12": (tr("data.root={tmp}/label"), r"labels must lie in 0..9, found 0..12", {"data": "label"}),
    "idx count mismatch": (tr("data.root={tmp}/count"), "10 images in t10k-images-idx3-ubyte.gz but 8 labels",
                           {"data": "count"}),
    "idx wrong image size": (tr("data.root={tmp}/size"), r"images are \(32, 32\), Fashion-MNIST is 28x28",
                             {"data": "size"}),
    "idx truncated": (tr("data.root={tmp}/truncated"), "t10k-images-idx3-ubyte.gz: header says shape",
                      {"data": "truncated"}),
    "dataset missing": (tr("data.root={tmp}/nodata"), "Fashion-MNIST not found", {"data": None}),
    "noise file of another dataset": (T, "is noise for dataset 'cifar10', not 'fashion_mnist'", {"foreign_noise": True}),
    # nalkit noise
    "noise rate 2": ([*NOISE, "--mode", "sym", "--rate", "2"], r"rate must be in \[0, 1\], got 2.0"),
    "noise unknown dataset": (["noise", "make", "--dataset", "mnist", "--mode", "sym", "--rate", "0.4",
                               "--out", "{res}/noise"], "unknown dataset 'mnist'"),
    "noise transition missing": ([*NOISE, "--mode", "transition", "--rate", "0"], "needs a \\(C, C\\) row-stochastic"),
    "noise transition not stochastic": ([*NOISE, "--mode", "transition", "--rate", "0", "--transition",
                                         "{tmp}/t.csv"], r"row 0 sums to 0.5"),
    "noise inspect missing": (["noise", "inspect", "{tmp}/none.npz"], "none.npz' does not exist"),
    "noise inspect garbage": (["noise", "inspect", "{tmp}/garbage.npz"], "garbage.npz' is unreadable or corrupt"),
    "noise subset too large": ([*NOISE[:-1], "70000", "--mode", "sym", "--rate", "0.4"], "train_subset=70000"),
    # nalkit run
    "grid missing": (["run", "{tmp}/nogrid.yaml"], "nogrid.yaml' does not exist"),
    "grid empty axis": (["run", "{tmp}/grid-empty.yaml"], "axis 'method' must be a non-empty list"),
    "grid no configs": (["run", "{tmp}/grid-noconfigs.yaml"], "'configs' must be a non-empty list"),
    "grid unknown key": (["run", "{tmp}/grid-unknown.yaml"], "unknown key.*'axis'"),
    "grid bad experiment": (["run", "{tmp}/grid-bad.yaml"], r"experiment .*noise.rate=2.0 is outside"),
    "grid only matches none": (["run", "{tmp}/grid.yaml", "--only", "zzz"], "--only 'zzz' matches none"),
    "grid slurm without slurm": (["run", "{tmp}/grid.yaml", "--executor", "slurm"], "executor 'slurm' needs",
                                 {"no_slurm": True}),
    "status of a missing dir": (["status", "{res}"], "does not exist"),
}


@pytest.fixture
def hostile(tmp_path, monkeypatch):
    """Files the cases refer to, the tiny config, and the (not yet existing) results directory."""
    import torchvision

    from nalkit import datasets

    tmp = tmp_path
    cfg = fl.write_yaml(tmp / "tiny.yaml", fl.tiny_dict())
    (tmp / "broken.yaml").write_text("data: {name: [unclosed\n")
    (tmp / "list.yaml").write_text("- data\n- noise\n")
    (tmp / "section.yaml").write_text("optimizer: {lr: 0.1}\n")
    (tmp / "scalar.yaml").write_text("data: 5\n")
    (tmp / "t.csv").write_text("\n".join(",".join(["0.05"] * 10) for _ in range(10)))
    (tmp / "garbage.npz").write_bytes(b"PK\x03\x04 not really a zip file")
    grid = {"name": "h", "results_dir": str(tmp / "results"), "notebook": None, "configs": [str(cfg)],
            "axes": {"method": [{"method.name": "ce"}]}}
    for name, change in {"grid": {}, "grid-empty": {"axes": {"method": []}}, "grid-noconfigs": {"configs": []},
                         "grid-unknown": {"axis": {}}, "grid-bad": {"axes": {"noise": [{"noise.rate": 2}]}}}.items():
        (tmp / f"{name}.yaml").write_text(yaml.safe_dump({**grid, **change}))
    # the system copy of Fashion-MNIST must not rescue a broken or missing data.root (nor a download)
    monkeypatch.setattr(datasets, "SYSTEM_DATA_DIRS", ())
    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", _no_download)
    return tmp, cfg, tmp / "results"


def _no_download(*a, **kw):
    raise RuntimeError("no network in the tests")


def _format(argv: list[str], tmp: Path, cfg: Path, res: Path) -> list[str]:
    return [a.format(tmp=tmp, cfg=cfg, res=res) for a in argv]


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gives_one_clear_error_and_writes_nothing(hostile, capsys, monkeypatch, case):
    import re

    from nalkit import datasets

    tmp, cfg, res = hostile
    argv, message, *opts = CASES[case]
    opts = opts[0] if opts else {}
    if "data" in opts:
        if opts["data"] is not None:
            make_fmnist(tmp / opts["data"], opts["data"])
    else:
        monkeypatch.setattr(datasets, "SYSTEM_DATA_DIRS", (Path("/usr/share/datasets"),))  # the real data
        cfg = fl.write_yaml(cfg, fl.tiny_dict(**{"data.root": str(fl.REPO / "data")}))
    if opts.get("foreign_noise"):
        _plant_foreign_noise(cfg, res)
    if opts.get("no_slurm"):  # a machine without Slurm's commands, also where make test-slurm installed them
        monkeypatch.setenv("PATH", str(tmp / "no-bin"))
    before = _tree(res) if res.exists() else None
    capsys.readouterr()
    rc = main(_format(argv, tmp, cfg, res))
    err = capsys.readouterr().err
    fl.bad_input()
    assert rc != 0
    assert err.startswith("nalkit: error: ") and "Traceback" not in err, err
    assert re.search(message, err), f"{message!r} not in {err!r}"
    if before is None:
        assert not res.exists(), f"{case}: wrote {sorted(_tree(res))}"
    else:
        assert _tree(res) == before


def _plant_foreign_noise(cfg: Path, res: Path) -> None:
    """Put a cifar10 noise file where this run's noise file would be."""
    from nalkit import datasets as ds
    from nalkit.noise import inject_noise, load_or_create_noise, save_noise

    c = Config.load(cfg).validate()
    labels = ds.load_dataset("fashion_mnist", c.data.root, train_subset=300).train.labels
    mine = load_or_create_noise(res / "noise", labels, 10, "sym", 0.4, 3, "fashion_mnist")
    path = res / "noise" / f"{mine.key}.npz"
    other = save_noise(inject_noise(labels, 10, "sym", 0.4, 3, "cifar10"), res / "noise" / "other")
    shutil.move(other, path)
    shutil.rmtree(res / "noise" / "other")


ARGPARSE = {
    "rate not a number": (["noise", "make", "--dataset", "fashion_mnist", "--mode", "sym", "--rate", "abc"],
                          "invalid float value: 'abc'"),
    "unknown noise mode": (["noise", "make", "--dataset", "fashion_mnist", "--mode", "bogus", "--rate", "0.1"],
                           "invalid choice: 'bogus'"),
    "unknown executor": (["run", "g.yaml", "--executor", "mpi"], "invalid choice: 'mpi'"),
}


@pytest.mark.parametrize("case", list(ARGPARSE))
def test_malformed_command_lines_are_usage_errors(capsys, case):
    argv, message = ARGPARSE[case]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    fl.bad_input()
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and "Traceback" not in err


@pytest.mark.parametrize("raw, message", [
    ({"optim": {"epochs": "ten"}}, "optim.epochs must be an integer"),
    ({"optim": [1]}, "section 'optim' must be a mapping"),
    ({"method": {"name": "nal", "nal": {"alpha": 1.0}}}, r"method.nal.alpha=1.0 must be in \[0, 1\)"),
    ({"noise": {"mode": "asym"}, "data": {"name": "animal10n"}}, "noise.mode=asym has no class map"),
    ("not a mapping", "expected a mapping of sections"),
])
def test_bad_configs_through_the_python_api(tmp_path, raw, message):
    from nalkit.train import train

    fl.bad_input()
    with pytest.raises(ConfigError, match=message):
        train(raw if isinstance(raw, dict) else Config.from_dict(raw), results_dir=tmp_path / "res")
    assert not (tmp_path / "res").exists()


def test_noise_file_for_another_dataset_through_the_api(tmp_path):
    from nalkit.noise import NoiseFileError, inject_noise, load_noise, save_noise

    path = save_noise(inject_noise(np.arange(50) % 10, 10, "sym", 0.4, 0, "cifar10"), tmp_path)
    fl.bad_input()
    with pytest.raises(NoiseFileError, match=f"{path.name}.*noise for dataset 'cifar10', not 'fashion_mnist'"):
        load_noise(path, expect_dataset="fashion_mnist")


def test_scientific_notation_overrides_are_numbers():
    cfg = Config().apply_overrides(["optim.lr=1e-3", "method.nal.lam=5e1"])
    assert cfg.optim.lr == 1e-3 and cfg.method.nal.lam == 50.0


SUBPROCESS_CASES = ["config not YAML", "unknown key", "idx bad magic", "noise inspect garbage", "grid bad experiment"]


def test_the_real_command_line_prints_no_traceback(hostile):
    """A sample through a fresh ``python -m nalkit.cli``: exit 2, one message, no traceback, nothing written.

    Fabricated data lies in ``data.root`` itself, which is searched before the system copy.
    """
    tmp, cfg, res = hostile
    make_fmnist(tmp / "magic", "magic")
    for case in SUBPROCESS_CASES:
        argv, message, *_ = CASES[case]
        out = fl.cli_subprocess(_format(argv, tmp, cfg, res), timeout=120)
        fl.bad_input()
        assert out.returncode == 2, (case, out.stderr)
        assert "Traceback" not in out.stderr and out.stderr.count("nalkit: error:") == 1, (case, out.stderr)
        assert not res.exists(), case
