import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = Path(sys.executable).with_name("jupyter-book")
# what the book is built from (a copy: the working tree's _build is left alone)
BOOK_SOURCES = ["_config.yml", "_toc.yml", "book", "nalkit", "configs", "results", "pyproject.toml"]

FMNIST_DIRS = [Path("data/fashion-mnist"), Path("/usr/share/datasets/fashion-mnist")]


@pytest.fixture(scope="session")
def fashion_mnist():
    """Real Fashion-MNIST must be present for training tests (CI installs it; see README)."""
    if not any((d / "t10k-labels-idx1-ubyte.gz").is_file() for d in FMNIST_DIRS):
        pytest.skip("Fashion-MNIST not found: run `make data`")


def pytest_configure(config):
    os.environ.setdefault("MPLBACKEND", "Agg")
    if hasattr(config, "workerinput"):
        # `make test` runs one pytest-xdist worker per core: one torch thread each, and in every process a test
        # starts, since small models run many times slower when threaded processes share the cores
        os.environ["OMP_NUM_THREADS"] = "1"
        import torch

        torch.set_num_threads(1)


@pytest.fixture(scope="session")
def zygote(tmp_path_factory, fashion_mnist):
    """A preloaded interpreter that forks one training process per call (see tests/faultlib.py)."""
    import faultlib

    z = faultlib.Zygote(tmp_path_factory.mktemp("zygote"))
    yield z
    z.close()


def pytest_sessionfinish(session):
    """Under pytest-xdist, a worker hands its fault-suite counters to the controller (see below)."""
    faultlib = sys.modules.get("faultlib")
    if faultlib is not None and hasattr(session.config, "workeroutput"):
        session.config.workeroutput["faultlib"] = {"counts": dict(faultlib.COUNTS), "lost": list(faultlib.LOST)}


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: on the controller, as each worker ends
def pytest_testnodedown(node, error):
    out = getattr(node, "workeroutput", {}).get("faultlib")
    if out:
        import faultlib

        for key, n in out["counts"].items():
            faultlib.COUNTS[key] += n
        faultlib.LOST.extend(out["lost"])


def pytest_terminal_summary(terminalreporter):
    """One line from the fault-injection suite's counters (tests/faultlib.py), when it ran (in this process or,
    under pytest-xdist, in the workers)."""
    faultlib = sys.modules.get("faultlib")
    if faultlib is None or not any(faultlib.COUNTS.values()):
        return
    terminalreporter.write_line(faultlib.summary_line())
    for what in faultlib.LOST:
        terminalreporter.write_line(f"  lost: {what}")


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    """The book built offline from the committed records, warnings as errors, into a temporary copy: its html dir.

    The results chapters only read records (no training) and the executed experiment notebooks are rendered from
    their stored outputs, so this is one `jupyter-book build`; the book and browser tests share it.
    """
    if not JUPYTER_BOOK.is_file():
        pytest.skip(f"{JUPYTER_BOOK} not installed: run `make setup`")
    # one build per test session, also under pytest-xdist: the workers share the parent of their base temp
    # directories, the first one to take the lock builds, the others wait for it and read its result
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    src, failed = shared / "book", shared / "book-failed.txt"
    with FileLock(str(shared / "book.lock")):
        if failed.is_file():
            pytest.fail(failed.read_text())
        if not (src / ".built").is_file():
            shutil.rmtree(src, ignore_errors=True)
            src.mkdir()
            error = _build_book(src)
            if error:
                failed.write_text(error)
                pytest.fail(error)
            (src / ".built").touch()
    return src / "_build" / "html"


def _build_book(src: Path) -> str:
    """Copy the book's sources into ``src`` and build it there; the error message, or '' on success."""
    for name in BOOK_SOURCES:
        p = ROOT / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("ckpt-*", "*.lock", "__pycache__"))
        elif p.is_file():
            shutil.copy2(p, src / name)
    if (ROOT / "data").is_dir():
        (src / "data").symlink_to(ROOT / "data")  # the noise chapter reads the Fashion-MNIST labels
    env = {k: v for k, v in os.environ.items() if k != "NALKIT_RESULTS"}
    env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")])
    proc = subprocess.run([str(JUPYTER_BOOK), "build", str(src), "-W", "-n", "--keep-going"],
                          check=False, capture_output=True, text=True, env=env, timeout=1500)
    return "" if proc.returncode == 0 else f"book build failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
