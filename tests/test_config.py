"""Typed config: YAML + overrides, the resolved config, and one clear error per invalid value."""

import pytest
import yaml

from nalkit.config import Config, ConfigError


def test_yaml_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("method: {name: nal, lam: 10, es: 10}\noptim: {epochs: 20}\n")
    cfg = Config.load(p, ["method.lam=0.5", "noise.rate=0.8", "run.snapshot_epochs=[1,5]"]).validate()
    assert cfg.method.lam == 0.5 and isinstance(cfg.method.lam, float)
    assert cfg.noise.rate == 0.8 and cfg.optim.epochs == 20 and cfg.run.snapshot_epochs == [1, 5]
    again = Config.from_dict(yaml.safe_load(cfg.to_yaml()))
    assert again == cfg and again.digest() == cfg.digest()


def test_digest_ignores_device_but_not_results():
    a, b = Config(), Config()
    b.run.device = "cuda"
    b.run.progress = False
    assert a.digest() == b.digest()
    b.method.lam = 5.0
    assert a.digest() != b.digest()
    assert a.run_name() != b.run_name()


def _valid(**sections):
    cfg = Config.from_dict(sections)
    cfg.optim.epochs = 10
    cfg.method.es = 5
    cfg.method.selc_start = 5
    return cfg


@pytest.mark.parametrize(
    "overrides, match",
    [
        (["noise.rate=1.5"], r"noise.rate=1.5 is outside \[0, 1\]"),
        (["noise.rate=-0.1"], r"outside \[0, 1\]"),
        (["data.name=cifar1000"], "data.name='cifar1000' is not one of"),
        (["model.name=resnet1000"], "model.name='resnet1000'"),
        (["method.name=coteach"], "method.name='coteach'"),
        (["noise.mode=burst"], "noise.mode='burst'"),
        (["noise.mode=asym", "data.name=animal10n"], "no class map"),
        (["method.es=11"], "method.es=11 is beyond the 10 training epochs"),
        (["method.lam=-0.5"], "method.lam=-0.5 must be >= 0"),
        (["method.alpha=1.0"], r"method.alpha=1.0 must be in \[0, 1\)"),
        (["method.alpha=-0.1"], r"method.alpha=-0.1"),
        (["optim.epochs=0"], "optim.epochs=0"),
        (["optim.lr=-1"], "optim.lr"),
        (["optim.batch_size=0"], "batch_size"),
        (["data.val_fraction=1.0"], "val_fraction"),
        (["noise.mode=transition"], "needs noise.transition"),
        (["run.snapshot_epochs=[0, 50]"], "snapshot_epochs"),
        (["noise.mode=sym", "data.name=clothing1m"], "already has real label noise"),
        (["method.name=selc", "method.selc_start=20"], "selc_start"),
        (["method.update_when=step"], "update_when"),
        (["optim.schedule=linear"], "optim.schedule"),
    ],
)
def test_invalid_values_fail_with_one_clear_line(overrides, match):
    cfg = _valid()
    with pytest.raises(ConfigError, match=match) as err:
        cfg.apply_overrides(overrides).validate()
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "raw, match",
    [
        ({"method": {"lamda": 0.5}}, "unknown key 'method.lamda' \\(did you mean 'method.lam'\\?\\)"),
        ({"metod": {"lam": 0.5}}, "unknown section 'metod' \\(did you mean 'method'\\?\\)"),
        ({"method": {"lam": "big"}}, "method.lam must be a number, got 'big'"),
        ({"optim": {"epochs": 2.5}}, "optim.epochs must be an integer"),
        ({"data": {"augment": "yes"}}, "data.augment must be true or false"),
        ({"run": {"snapshot_epochs": 5}}, "run.snapshot_epochs must be a list"),
        ({"method": [1, 2]}, "section 'method' must be a mapping"),
        ({"optim": {"epochs": True}}, "optim.epochs must be an integer"),
    ],
)
def test_type_errors(raw, match):
    with pytest.raises(ConfigError, match=match):
        Config.from_dict(raw)


def test_bad_files_and_overrides(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        Config.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("method: {lam: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        Config.load(bad)
    with pytest.raises(ConfigError, match="section.key=value"):
        Config().apply_overrides(["lam0.5"])
    with pytest.raises(ConfigError, match="must be section.key"):
        Config().apply_overrides(["lam=0.5"])


def test_paper_configs_are_valid():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "configs"
    files = sorted(root.glob("**/*.yaml"))
    files = [f for f in files if "grids" not in f.parts]
    assert files, "configs/ holds no recipes"
    for f in files:
        Config.load(f).validate()
