"""The book builds offline from the committed records, with warnings as errors, and every chapter renders.

The results chapters only read records (no training) and the executed experiment notebooks are rendered from
their stored outputs, so this is one `jupyter-book build` of a copy of the book's sources into a temporary
directory (the working tree's `_build` is left alone).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.book, pytest.mark.timeout(1500)]  # the build runs in the first test

ROOT = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = Path(sys.executable).with_name("jupyter-book")

# page -> minimum number of <img> tags (figures) it must contain
PAGES = {
    "book/intro.html": 0,
    "book/method.html": 2,
    "book/noise.html": 2,
    "book/results.html": 4,
    "book/cost.html": 0,
    "book/paper_scale.html": 0,
    "book/experiments.html": 0,
    "book/bibliography.html": 0,
}
SOURCES = ["_config.yml", "_toc.yml", "book", "nalkit", "configs", "results", "pyproject.toml"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    if not JUPYTER_BOOK.is_file():
        pytest.skip(f"{JUPYTER_BOOK} not installed: run `make setup`")
    src = tmp_path_factory.mktemp("book")
    for name in SOURCES:
        p = ROOT / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("ckpt-*", "*.lock", "__pycache__"))
        elif p.is_file():
            shutil.copy2(p, src / name)
    data = ROOT / "data"
    if data.is_dir():
        (src / "data").symlink_to(data)  # the noise chapter reads the Fashion-MNIST labels
    env = {k: v for k, v in os.environ.items() if k != "NALKIT_RESULTS"}
    env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")])
    proc = subprocess.run([str(JUPYTER_BOOK), "build", str(src), "-W", "-n", "--keep-going"],
                          capture_output=True, text=True, env=env, timeout=1200)
    assert proc.returncode == 0, f"book build failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    return src / "_build" / "html"


@pytest.mark.parametrize("page", sorted(PAGES))
def test_page_renders_with_its_figures(built, page):
    path = built / page
    assert path.is_file(), f"{page} was not built"
    html = path.read_text(encoding="utf-8")
    assert html.count("<img") >= PAGES[page], f"{page}: fewer than {PAGES[page]} figures"
    for bad in ("Traceback", "Error"):
        assert bad not in html, f"{page} contains {bad!r}"


def test_no_network_assets(built):
    for page in PAGES:
        html = (built / page).read_text(encoding="utf-8")
        for attr in ('src="http', "src='http", 'href="http://', "googletagmanager", "cdn.jsdelivr"):
            assert attr not in html, f"{page} loads a network asset ({attr})"
    assert (built / "_static" / "mathjax" / "tex-chtml.js").is_file()


def test_paper_numbers_are_labelled(built):
    for page in ("book/cost.html", "book/results.html"):
        html = (built / page).read_text(encoding="utf-8")
        assert "73.58" in html and "The paper’s numbers" in html.replace("'", "’"), page


def test_api_reference_pages(built):
    """The API chapter: nal_loss with its signature, shapes and return; every config key in the tables."""
    from nalkit.config import describe_fields

    losses = (built / "book" / "api" / "losses.html").read_text()
    assert 'id="nalkit.losses.nal_loss"' in losses
    for text in ("attention_logits", "shape (N, C)", "sigmoid(s)", "Returns", "reduction", "The loss in nats"):
        assert text in losses, text
    # the config page lists every key but the baselines' options, which are on the methods page
    keys = [d.key for d in describe_fields()]
    baselines = [k for k in keys if k.startswith("method.") and not k.startswith(("method.nal.", "method.name"))]
    config = (built / "book" / "api" / "config.html").read_text()
    assert [k for k in keys if k not in baselines and f">{k}<" not in config] == []
    methods = (built / "book" / "api" / "methods.html").read_text()
    assert [k for k in baselines if f">{k}<" not in methods] == []
