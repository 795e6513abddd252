"""`make publish` puts the built book on a gh-pages branch: run against a local bare repository.

Nothing heavy is built: a small stand-in for `_build/html` is published by the Makefile's own recipe, from a
scratch git repository (ghp-import writes the branch into the repository it runs in, so the checkout's own
branches are never touched), to a bare repository standing in for the GitHub remote.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GHP_IMPORT = Path(sys.executable).with_name("ghp-import")


def _git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, timeout=60).stdout


@pytest.fixture
def scratch(tmp_path):
    if not GHP_IMPORT.is_file():
        pytest.skip(f"{GHP_IMPORT} not installed: run `make setup` (ghp-import is in the book extra)")
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    env = {**os.environ, "GIT_AUTHOR_NAME": "nalkit test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
           "GIT_COMMITTER_NAME": "nalkit test", "GIT_COMMITTER_EMAIL": "test@example.invalid"}
    remote = tmp_path / "remote.git"
    _git("init", "-q", "--bare", str(remote), cwd=tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    _git("init", "-q", "-b", "main", cwd=work)
    (work / "README.md").write_text("scratch\n")
    _git("add", "README.md", cwd=work)
    subprocess.run(["git", "commit", "-q", "-m", "scratch"], cwd=work, env=env, check=True, timeout=60)
    html = work / "_build" / "html"
    (html / "book").mkdir(parents=True)
    (html / "index.html").write_text("<!doctype html><title>nalkit</title><a href='book/intro.html'>intro</a>\n")
    (html / "book" / "intro.html").write_text("<!doctype html><title>intro</title>\n")
    (html / "_static").mkdir()
    (html / "_static" / "nalbook.css").write_text("body {}\n")
    return work, remote, env


def _publish(work, remote, env):
    return subprocess.run(
        ["make", "--no-print-directory", "-f", str(REPO / "Makefile"), "publish",
         f"GHP_IMPORT={GHP_IMPORT}", f"PUBLISH_REMOTE={remote}"],
        cwd=work, env=env, capture_output=True, text=True, timeout=120)


def test_make_publish_pushes_gh_pages_with_index_html(scratch):
    work, remote, env = scratch
    proc = _publish(work, remote, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    listing = _git("ls-tree", "-r", "--name-only", "gh-pages", cwd=remote).split()
    print("gh-pages in the bare remote:\n  " + "\n  ".join(listing))
    assert set(listing) == {".nojekyll", "index.html", "book/intro.html", "_static/nalbook.css"}
    head = _git("rev-parse", "--short", "HEAD", cwd=work).strip()
    assert _git("log", "-1", "--format=%s", "gh-pages", cwd=remote).strip() == f"Publish the book built from {head}"

    # publishing again replaces the site (a page that is gone from the build is gone from the branch)
    (work / "_build" / "html" / "book" / "intro.html").unlink()
    assert _publish(work, remote, env).returncode == 0
    assert set(_git("ls-tree", "-r", "--name-only", "gh-pages", cwd=remote).split()) == {
        ".nojekyll", "index.html", "_static/nalbook.css"}
    assert _git("branch", "--list", "main", cwd=work).strip(), "the source branch must be untouched"


def test_make_publish_refuses_without_a_built_book(scratch):
    work, remote, env = scratch
    shutil.rmtree(work / "_build")
    proc = _publish(work, remote, env)
    assert proc.returncode != 0
    assert "make book-only" in proc.stderr
    assert _git("branch", "--list", "gh-pages", cwd=remote).strip() == ""
