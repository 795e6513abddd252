"""Typed config: YAML + overrides, the resolved config, and one clear error per invalid value."""

import pytest
import yaml

from nalkit.config import Config, ConfigError


def test_yaml_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("method: {name: nal, nal: {lam: 10, es: 10}}\noptim: {epochs: 20}\n")
    cfg = Config.load(p, ["method.nal.lam=0.5", "noise.rate=0.8", "run.snapshot_epochs=[1,5]"]).validate()
    assert cfg.method.nal.lam == 0.5 and isinstance(cfg.method.nal.lam, float) and cfg.method.nal.es == 10
    assert cfg.noise.rate == 0.8 and cfg.optim.epochs == 20 and cfg.run.snapshot_epochs == [1, 5]
    again = Config.from_dict(yaml.safe_load(cfg.to_yaml()))
    assert again == cfg and again.digest() == cfg.digest()


def test_digest_ignores_device_but_not_results():
    a, b = Config(), Config()
    b.run.device = "cuda"
    b.run.progress = False
    assert a.digest() == b.digest()
    b.method.nal.lam = 5.0
    assert a.digest() != b.digest()
    assert a.run_name() != b.run_name()


def _valid(**sections):
    cfg = Config.from_dict(sections)
    cfg.optim.epochs = 10
    cfg.method.nal.es = 5
    cfg.method.selc.start = 5
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
        (["method.nal.es=11"], "method.nal.es=11 is beyond the 10 training epochs"),
        (["method.es=11"], "method.nal.es=11 is beyond the 10 training epochs"),  # the legacy flat key
        (["method.nal.lam=-0.5"], "method.nal.lam=-0.5 must be >= 0"),
        (["method.nal.alpha=1.0"], r"method.nal.alpha=1.0 must be in \[0, 1\)"),
        (["method.nal.alpha=-0.1"], r"method.nal.alpha=-0.1"),
        (["method.elr.beta=1.5"], r"method.elr.beta=1.5 must be in \[0, 1\)"),
        (["method.gce.q=0"], r"method.gce.q=0.0 must be in \(0, 1\]"),
        (["method.nal.attention=false", "method.nal.estimate_targets=false"], "use method.name=ce"),
        (["data.noisy_val_size=100"], "set data.train_subset too"),
        (["data.noisy_val_size=0"], "data.noisy_val_size=0 must be a positive number"),
        (["optim.epochs=0"], "optim.epochs=0"),
        (["optim.lr=-1"], "optim.lr"),
        (["optim.batch_size=0"], "batch_size"),
        (["data.val_fraction=1.0"], "val_fraction"),
        (["noise.mode=transition"], "needs noise.transition"),
        (["run.snapshot_epochs=[0, 50]"], "snapshot_epochs"),
        (["noise.mode=sym", "data.name=clothing1m"], "already has real label noise"),
        (["method.name=selc", "method.selc.start=20"], "method.selc.start=20 is beyond"),
        (["method.nal.update_when=step"], "method.nal.update_when='step' is not one of batch, epoch"),
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
        ({"method": {"lamda": 0.5}}, "unknown key 'method.lamda' \\(did you mean 'method.nal.lam'\\?\\)"),
        ({"method": {"nal": {"lamda": 0.5}}}, "unknown key 'method.nal.lamda' \\(did you mean 'method.nal.lam'\\?\\)"),
        ({"method": {"nall": {"lam": 0.5}}}, "unknown method section 'method.nall' \\(did you mean 'method.nal'\\?\\)"),
        ({"metod": {"lam": 0.5}}, "unknown section 'metod' \\(did you mean 'method'\\?\\)"),
        ({"method": {"nal": {"lam": "big"}}}, "method.nal.lam must be a number, got 'big'"),
        ({"method": {"lam": "big"}}, "method.nal.lam must be a number, got 'big'"),
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


# --------------------------------------------------------------------------------------------------
# the per-method sections and the migration from flat method keys

LEGACY = """
method:
  name: nal
  lam: 10
  alpha: 0.9
  es: 20
  update_period: 1
  gce_q: 0.7
  sce_alpha: 0.1
  elr_beta: 0.7
  elr_lam: 3.0
  selc_start: 20
optim: {epochs: 40}
"""
SECTIONS = """
method:
  name: nal
  nal: {lam: 10, alpha: 0.9, es: 20, update_period: 1}
  gce: {q: 0.7}
  sce: {alpha: 0.1}
  elr: {beta: 0.7, lam: 3.0}
  selc: {start: 20}
optim: {epochs: 40}
"""


def test_flat_method_keys_map_to_their_sections_and_keep_the_run_name():
    old, new = Config.from_dict(yaml.safe_load(LEGACY)), Config.from_dict(yaml.safe_load(SECTIONS))
    assert old == new and old.validate().run_name() == new.validate().run_name()
    assert new.method.nal.lam == 10.0 and new.method.selc.start == 20 and new.method.options is new.method.nal
    flat = Config().apply_overrides(["method.lam=3", "method.elr_beta=0.9", "method.selc_start=7"])
    nested = Config().apply_overrides(["method.nal.lam=3", "method.elr.beta=0.9", "method.selc.start=7"])
    assert flat == nested and flat.digest() == nested.digest()
    # a new option at its default leaves names alone; set, it names another run
    ablated = Config().apply_overrides(["method.nal.estimate_targets=false"])
    assert ablated.digest() != Config().digest()


def test_a_resolved_config_round_trips_through_yaml_in_the_section_format():
    cfg = Config.from_dict(yaml.safe_load(LEGACY))
    text = cfg.to_yaml()
    assert "selc_start" not in text and "nal:" in text
    assert Config.from_dict(yaml.safe_load(text)) == cfg


def test_every_committed_run_record_keeps_its_name_under_the_new_config():
    """Migration check: each committed config.yaml (flat method keys) hashes to its run's recorded name."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "results"
    records = sorted(root.glob("runs/*/status.json"))
    assert len(records) >= 54, "the committed records are missing"
    for status in records:
        run = status.parent
        cfg = Config.from_dict(yaml.safe_load((run / "config.yaml").read_text())).validate()
        recorded = yaml.safe_load(status.read_text())["config_hash"]
        assert cfg.digest() == recorded and cfg.run_name() == run.name, run.name


def test_paper_configs_are_valid():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "configs"
    files = sorted(root.glob("**/*.yaml"))
    files = [f for f in files if "grids" not in f.parts]
    assert files, "configs/ holds no recipes"
    for f in files:
        Config.load(f).validate()
