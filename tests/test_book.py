"""The book builds offline from the committed records, with warnings as errors, and every chapter renders."""

import re

import pytest

from conftest import ROOT

pytestmark = [pytest.mark.book, pytest.mark.timeout(1800)]  # the first test builds the book

# page -> minimum number of figures (<img>) it must contain
PAGES = {
    "book/intro.html": 0,
    "book/method.html": 2,
    "book/noise.html": 2,
    "book/results.html": 2,
    "book/mechanism.html": 4,
    "book/cost.html": 0,
    "book/paper_scale.html": 0,
    "book/experiments.html": 0,
    "book/explore.html": 2,
    "book/bibliography.html": 0,
}


@pytest.mark.parametrize("page", sorted(PAGES))
def test_page_renders_with_its_figures(built_book, page):
    path = built_book / page
    assert path.is_file(), f"{page} was not built"
    html = path.read_text(encoding="utf-8")
    assert html.count("<img") >= PAGES[page], f"{page}: fewer than {PAGES[page]} figures"
    for bad in ("Traceback", "Error"):
        assert bad not in html, f"{page} contains {bad!r}"


def test_every_executed_experiment_notebook_is_a_page_reached_from_the_index(built_book):
    notebooks = sorted(ROOT.glob("results/runs/*/experiment.ipynb"))
    index = (built_book / "book" / "experiments.html").read_text(encoding="utf-8")
    for nb in notebooks:
        page = built_book / nb.relative_to(ROOT).with_suffix(".html")
        assert page.is_file(), f"{page} was not built"
        assert f"../results/runs/{nb.parent.name}/experiment.html" in index, nb.parent.name
    page = (built_book / "book" / "intro.html").read_text(encoding="utf-8")
    nav = re.search(r'<nav class="[^"]*\bbd-docs-nav\b[^"]*".*?</nav>', page, flags=re.S)
    assert nav and "experiments.html" in nav.group(0), "no sidebar found"
    assert "results/runs/" not in nav.group(0), "the sidebar lists run pages; only the index should"


def test_tables_are_numbered_as_tables_and_figures_as_figures(built_book):
    html = (built_book / "book" / "results.html").read_text(encoding="utf-8")
    assert re.search(r"Table \d+", html) and re.search(r"Fig\. \d+", html)
    captions = re.findall(r'<span class="caption-number">(\w+)\.? \d+', html)
    assert "Table" in captions and "Fig" in captions


def test_no_network_assets(built_book):
    for page in PAGES:
        html = (built_book / page).read_text(encoding="utf-8")
        for attr in ('src="http', "src='http", 'href="http://', "googletagmanager", "cdn.jsdelivr"):
            assert attr not in html, f"{page} loads a network asset ({attr})"
    assert (built_book / "_static" / "mathjax" / "tex-chtml.js").is_file()


def test_paper_numbers_are_labelled(built_book):
    html = (built_book / "book" / "cost.html").read_text(encoding="utf-8")
    assert "73.58" in html and "The paper’s numbers" in html.replace("'", "’")


def test_api_reference_pages(built_book):
    """The API chapter: nal_loss with its signature, shapes and return; every config key in the tables."""
    from nalkit.config import describe_fields

    losses = (built_book / "book" / "api" / "losses.html").read_text()
    assert 'id="nalkit.losses.nal_loss"' in losses
    for text in ("attention_logits", "shape (N, C)", "sigmoid(s)", "Returns", "reduction", "The loss in nats"):
        assert text in losses, text
    # the config page lists every key but the baselines' options, which are on the methods page
    keys = [d.key for d in describe_fields()]
    baselines = [k for k in keys if k.startswith("method.") and not k.startswith(("method.nal.", "method.name"))]
    config = (built_book / "book" / "api" / "config.html").read_text()
    assert [k for k in keys if k not in baselines and f">{k}<" not in config] == []
    methods = (built_book / "book" / "api" / "methods.html").read_text()
    assert [k for k in baselines if f">{k}<" not in methods] == []
