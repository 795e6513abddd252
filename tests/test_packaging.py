"""What a user of ``pip install`` gets: the sdist and wheel build, their metadata passes ``twine check``, the wheel
installs into a fresh venv without extras and runs the README example there; the loss imports light."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from readmelib import REPO, check_output, readme_example

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = None

# What `python -m build` needs of the checkout: the sdist is made from these, the wheel from the sdist.
SDIST_SOURCES = ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in", "CHANGELOG.md", "CITATION.cff", "nalkit")
# The heavy optional imports: the loss (and the modules of the README example) must not pull them.
HEAVY = ("pandas", "matplotlib")
LIGHT_MODULES = ("nalkit.losses", "nalkit.models", "nalkit.targets", "nalkit.noise")


def _pyproject() -> dict:
    if tomllib is None:
        pytest.skip("tomllib needs Python 3.11")
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _heavy_imports(python: str | Path, module: str, cwd: Path, env: dict[str, str]) -> list[str]:
    code = f"import sys, {module}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    proc = subprocess.run([str(python), "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


@pytest.mark.parametrize("module", LIGHT_MODULES)
def test_import_pulls_neither_pandas_nor_matplotlib(module, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    assert _heavy_imports(sys.executable, module, tmp_path, env) == []


def test_versions_agree():
    import nalkit

    version = _pyproject()["project"]["version"]
    assert nalkit.__version__ == version
    assert str(yaml.safe_load((REPO / "CITATION.cff").read_text())["version"]) == version
    releases = re.findall(r"^## \[(\d[^\]]*)\]", (REPO / "CHANGELOG.md").read_text(), flags=re.M)
    assert releases and releases[0] == version, f"CHANGELOG.md's newest release {releases[:1]} is not {version}"


def test_license_and_citation():
    project = _pyproject()["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert (REPO / "LICENSE").read_text().startswith("MIT License\n")
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["license"] == "MIT"
    paper = cff["references"][0]
    assert paper["title"].startswith("Noise Attention Learning")
    assert [a["family-names"] for a in paper["authors"]] == ["Lu", "Bo", "He"]
    assert paper["year"] == 2022 and paper["volume"] == 35


def _run(cmd: list, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    started = time.perf_counter()
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    took = time.perf_counter() - started
    assert proc.returncode == 0, f"{cmd} failed after {took:.0f} s:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    print(f"[{took:5.1f} s] {' '.join(str(c) for c in cmd)}")
    return proc.stdout


@pytest.mark.slow
@pytest.mark.wheel
# the fresh venv installs torch 2.13.0 (and nalkit's other dependencies) from the package index: ~2 minutes
# from a warm cache, longer from a cold one
@pytest.mark.timeout(1800)
def test_wheel_in_fresh_venv_runs_readme_example(tmp_path):
    src, dist, user = tmp_path / "src", tmp_path / "dist", tmp_path / "user"
    for d in (src, dist, user):
        d.mkdir()
    for name in SDIST_SOURCES:  # a clean copy: no build/ or egg-info left in the checkout
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / name)

    # sdist, then the wheel built from the sdist (so a file missing from the sdist breaks the wheel)
    _run([sys.executable, "-m", "build", "--outdir", dist, src], cwd=src)
    wheels, sdists = sorted(dist.glob("nalkit-*.whl")), sorted(dist.glob("nalkit-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(dist.iterdir())
    wheel = wheels[0]
    print(f"wheel {wheel.name}: {wheel.stat().st_size} bytes; sdist {sdists[0].name}: {sdists[0].stat().st_size} bytes")
    _run([sys.executable, "-m", "twine", "check", "--strict", wheel, sdists[0]], cwd=dist)

    # a fresh venv (no system site-packages), the wheel without extras; nothing of the checkout on the path
    venv = tmp_path / "venv"
    try:
        _install_and_run(venv, wheel, user)
    finally:  # torch makes the venv several GB; pytest keeps the last three temporary directories
        shutil.rmtree(venv, ignore_errors=True)


#: the torch of the user the wheel test plays: not the 2.14.1 of constraints.txt, the oldest release nalkit claims
#: (pyproject.toml: torch>=2.13); a CPU build of it is on this machine's disk
USER_TORCH = "2.13.0"


def _install_and_run(venv: Path, wheel: Path, user: Path) -> None:
    _run([sys.executable, "-m", "venv", venv], cwd=user)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(OMP_NUM_THREADS="1", PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    # the user's torch first: the oldest release nalkit supports, not the one the book pins (constraints.txt);
    # installing the wheel must keep it
    _run([python, "-m", "pip", "install", "--quiet", f"torch=={USER_TORCH}"], cwd=user, env=env, timeout=1500)
    _run([python, "-m", "pip", "install", "--quiet", wheel], cwd=user, env=env, timeout=1500)
    installed = _run([python, "-m", "pip", "list", "--format=freeze"], cwd=user, env=env)
    versions = dict(line.split("==", 1) for line in installed.split() if "==" in line)
    names = {n.lower() for n in versions} | {line.split(" @ ")[0].lower() for line in installed.split() if " @ " in line}
    assert {"nalkit", "torch"} <= names
    assert versions["torch"].split("+")[0] == USER_TORCH, f"installing nalkit replaced torch {USER_TORCH}: {installed}"
    print(f"the wheel installed beside torch {versions['torch']}: kept")
    assert not names & {"torchvision", "matplotlib", "jupyter-book", "papermill", "timm", "submitit", "cleanlab"}, \
        "an extra was installed"

    where = _run([python, "-c", "import nalkit; print(nalkit.__file__, nalkit.__version__)"], cwd=user, env=env)
    assert where.startswith(str(venv)), f"nalkit imported from outside the fresh venv: {where}"
    for module in LIGHT_MODULES:
        assert _heavy_imports(python, module, user, env) == [], module
    _run([venv / "bin" / "nalkit", "--help"], cwd=user, env=env)

    script = user / "readme_example.py"
    script.write_text(readme_example())
    out = _run([python, script], cwd=user, env=env, timeout=300)
    print("README example in the fresh venv:\n" + textwrap.indent(out.rstrip(), "  "))
    check_output(out)
