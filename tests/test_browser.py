"""Every built page, opened in headless Chromium as a reader would (Selenium + Debian's chromium-driver).

A page fails on: an image that did not load or has no size, text that still shows a MyST role or ``{glue``, a
Python warning or traceback in an output area, a table wider than the text column, a code block or printed output
that runs past the column's edge, or a JavaScript error.
Skipped, with the reason, where Chromium or its driver is not installed (`make test` installs both on Debian).
"""

import re
import shutil

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(1800)]

ROLE = re.compile(r"\{glue|\{(?:numref|ref|cite|eq|doc|math|glue:\w+)\}`|\{[a-z-]+\}`[^`]*`")
PY_NOISE = re.compile(r"Traceback \(most recent call last\)|\b\w*Warning: |\bwarnings\.warn\(")

CHECK_JS = r"""
const article = document.querySelector("article.bd-article") || document.querySelector("main") || document.body;
const column = article.getBoundingClientRect();
const images = Array.from(document.querySelectorAll("article img")).map(img => ({
  src: img.getAttribute("src"), ok: img.complete && img.naturalWidth > 0 && img.naturalHeight > 0}));
const wide = Array.from(article.querySelectorAll("table")).filter(t => t.offsetParent !== null).map(t => {
  const r = t.getBoundingClientRect();
  return {caption: (t.caption ? t.caption.innerText : t.innerText).slice(0, 60), right: r.right, left: r.left};
}).filter(t => t.right > column.right + 2 || t.left < column.left - 2);
const outputs = Array.from(document.querySelectorAll(".cell_output, .output")).map(o => o.innerText);
const clipped = Array.from(article.querySelectorAll("pre")).filter(p => p.offsetParent !== null
  && (p.scrollWidth > p.clientWidth + 2 || p.getBoundingClientRect().right > column.right + 2))
  .map(p => p.innerText.slice(0, 60));
return {images, wide, outputs, clipped, text: article.innerText, column: column.width};
"""


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.skip("headless Chromium or chromedriver not installed (Debian: apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed: pip install -e '.[dev]'")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000",
                "--allow-file-access-from-files"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def open_page(browser, page) -> None:
    """Load ``page`` and wait until its document (or, for a redirect such as the root index.html, its target's) is
    complete: a script run while a redirect replaces the document finds no body."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(page.as_uri())
    WebDriverWait(browser, 30, ignored_exceptions=(WebDriverException,)).until(lambda d: d.execute_script(
        "return document.readyState === 'complete' && document.body !== null"
        " && !document.querySelector('meta[http-equiv=\"Refresh\" i]');"))


def test_every_page_reads_cleanly_in_a_browser(built_book, browser):
    pages = sorted(p for p in built_book.rglob("*.html") if p.parent.name not in ("_sources", "_static")
                   and p.name not in ("genindex.html", "search.html"))
    assert len(pages) > 10
    problems = []
    for page in pages:
        open_page(browser, page)
        found = browser.execute_script(CHECK_JS)
        rel = page.relative_to(built_book).as_posix()
        problems += [f"{rel}: image not loaded {i['src']}" for i in found["images"] if not i["ok"]]
        problems += [f"{rel}: table wider than the {found['column']:.0f}px column: {t['caption']!r}"
                     for t in found["wide"]]
        problems += [f"{rel}: code or output runs past the column's edge: {c!r}" for c in found["clipped"]]
        for m in ROLE.finditer(found["text"]):
            problems.append(f"{rel}: unrendered markup {found['text'][max(0, m.start() - 30):m.end() + 30]!r}")
        for out in found["outputs"]:
            if PY_NOISE.search(out):
                problems.append(f"{rel}: warning or traceback in an output: {out[:160]!r}")
        errors = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
        problems += [f"{rel}: JavaScript error: {e.get('message', '')[:200]}" for e in errors]
    assert not problems, f"{len(problems)} problems in {len(pages)} pages:\n" + "\n".join(problems[:40])


def test_the_experiments_index_sorts_and_filters(built_book, browser):
    open_page(browser, built_book / "book" / "experiments.html")
    rows = lambda: browser.execute_script(  # noqa: E731
        "return Array.from(document.querySelectorAll('#runs-index tbody tr')).filter(r => r.style.display !== 'none')"
        ".map(r => Array.from(r.cells).map(c => c.innerText));")
    all_rows = rows()
    assert len(all_rows) >= 54
    box = browser.find_element("css selector", "input.nalkit-filter")
    box.send_keys("nal asym")
    shown = rows()
    # every word must match a cell's text: "sym" of one cell and "la" of another never make "asym"
    assert 0 < len(shown) < len(all_rows) and all("asym" in r[1] and r[2].startswith("NAL") for r in shown)
    box.clear()
    box.send_keys(" ")  # clearing fires no input event in every driver: type a blank to show all again
    header = browser.find_elements("css selector", "#runs-index thead th")[4]  # test acc
    header.click()
    acc = [float(r[4]) for r in rows() if r[4] != "–"]
    assert acc == sorted(acc)
    header.click()
    acc = [float(r[4]) for r in rows() if r[4] != "–"]
    assert acc == sorted(acc, reverse=True)
    assert not [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
