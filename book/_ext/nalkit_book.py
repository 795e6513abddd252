"""Sphinx extension of the nalkit book: re-read the record-reading chapters when the records change.

Sphinx re-reads a page only when its source changed, and the execution cache keys on the code cells only, so
new run records under ``results/`` would otherwise leave the results chapter stale. The chapters listed in
``RECORD_PAGES`` execute in ``force`` mode (their notebook metadata); this extension marks them outdated
whenever a fingerprint of the records (paths, sizes, modification times) differs from the last build's.

Likewise the cache does not see changes to the code a chapter imports (``nalkit/`` and ``book/nalbook.py``):
when that code changes, the execution cache is dropped and every executed chapter is re-read.

The executed experiment notebooks (``results/runs/<run>/experiment.ipynb``) are pages of the book but not
entries of its table of contents: the experiments index links to each. They are marked orphan here, so
Sphinx builds them without listing them in the sidebar and without a "not in any toctree" warning.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

RECORD_PAGES = ("book/intro", "book/results", "book/mechanism", "book/cost", "book/experiments", "book/paper_scale",
                "book/explore")
CACHED_PAGES = ("book/method", "book/noise")
_SKIP_SUFFIXES = (".pt", ".lock")


def _fingerprint(srcdir: Path) -> str:
    results = Path(os.environ.get("NALKIT_RESULTS") or srcdir / "results")
    h = hashlib.sha256(str(results).encode())
    for root in (results, srcdir / "configs" / "paper"):
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.name.startswith("ckpt-") and path.suffix not in _SKIP_SUFFIXES:
                st = path.stat()
                h.update(f"{path.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _code_fingerprint(srcdir: Path) -> str:
    h = hashlib.sha256()
    for path in sorted([*(srcdir / "nalkit").rglob("*.py"), srcdir / "book" / "nalbook.py"]):
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()


def _outdated(app, env, added, changed, removed):
    srcdir = Path(app.srcdir)
    stale: set[str] = set()
    fp = _fingerprint(srcdir)
    if getattr(env, "nalkit_records_fingerprint", None) != fp:
        env.nalkit_records_fingerprint = fp
        stale.update(RECORD_PAGES)
    code = _code_fingerprint(srcdir)
    if getattr(env, "nalkit_code_fingerprint", None) != code:
        env.nalkit_code_fingerprint = code
        cache = app.config.nb_execution_cache_path or str(Path(app.outdir).parent / ".jupyter_cache")
        shutil.rmtree(cache, ignore_errors=True)
        stale.update(RECORD_PAGES + CACHED_PAGES)
    return sorted(d for d in stale if d in env.found_docs and d not in added and d not in changed)


def _orphan_run_pages(app, doctree):
    docname = app.env.docname
    if docname.startswith("results/") and docname.endswith("/experiment"):
        app.env.metadata[docname]["orphan"] = True


def setup(app):
    app.connect("env-get-outdated", _outdated)
    app.connect("doctree-read", _orphan_run_pages, priority=900)  # after Sphinx's metadata collector
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}
