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

For the API reference it puts the book's own source tree first on ``sys.path`` (autodoc documents the ``nalkit``
beside ``_toc.yml``, not whichever copy is installed) and adds the directive ``nalkit-config``: a table of the
configuration keys of one section, from :func:`nalkit.config.describe_fields`. Docstrings name objects of other
modules without their module (``:class:`Config``` in :mod:`nalkit.train`), which Sphinx looks up in the current
module only; :func:`_resolve_unqualified` links such a name to the one documented object it can mean.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import re
import shutil
import sys
from pathlib import Path

import yaml
from docutils import nodes
from sphinx.util.docutils import SphinxDirective

RECORD_PAGES = ("book/intro", "book/results", "book/mechanism", "book/horizon", "book/attention", "book/regime", "book/cost",
                "book/experiments", "book/paper_scale", "book/explore")
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


_MARKUP = re.compile(r"``(.+?)``|(?<![\w*])\*([^*\s][^*]*?)\*(?![\w*])")


def _text(text: str) -> list[nodes.Node]:
    """Plain text with ``code`` as literals and *words* emphasised (the source comments use the docstrings' markup)."""
    out: list[nodes.Node] = []
    last = 0
    for m in _MARKUP.finditer(text):
        if m.start() > last:
            out.append(nodes.Text(text[last:m.start()]))
        code, emphasis = m.groups()
        out.append(nodes.literal(code, code) if code is not None else nodes.emphasis(emphasis, emphasis))
        last = m.end()
    if last < len(text):
        out.append(nodes.Text(text[last:]))
    return out


def _entry(*children: nodes.Node) -> nodes.entry:
    entry = nodes.entry()
    entry += nodes.paragraph("", "", *children)
    return entry


class ConfigFields(SphinxDirective):
    """``nalkit-config SECTION``: key, type, default (as written in YAML) and comment of every key of SECTION."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        import nalkit.config
        import nalkit.methods

        for module in (nalkit.config, nalkit.methods):  # the comments live there: re-read the page on a change
            self.env.note_dependency(inspect.getsourcefile(module))
        try:
            docs = nalkit.config.describe_fields(self.arguments[0])
        except ValueError as err:
            raise self.error(str(err)) from None
        table = nodes.table(classes=["nalkit-config"])
        group = nodes.tgroup(cols=4)
        table += group
        for width in (24, 14, 12, 50):
            group += nodes.colspec(colwidth=width)
        head = nodes.thead()
        row = nodes.row()
        for title in ("key", "type", "default", "meaning"):
            row += _entry(nodes.Text(title))
        head += row
        group += head
        body = nodes.tbody()
        for doc in docs:
            default = yaml.safe_dump(doc.default, default_flow_style=True).strip().removesuffix("...").strip()
            row = nodes.row()
            row += _entry(nodes.literal(doc.key, doc.key))
            row += _entry(nodes.literal(doc.type, doc.type))
            row += _entry(nodes.literal(default, default))
            row += _entry(*_text(doc.doc))
            body += row
        group += body
        return [table]


def _resolve_unqualified(app, env, node, contnode):
    """``missing-reference``: link ``Name`` to the documented ``package.module.Name`` when exactly one matches."""
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "").lstrip(".~")
    domain = env.get_domain("py")
    matches = [name for name in domain.objects if name.endswith("." + target)]
    if not target or len(matches) != 1:
        return None  # unknown or ambiguous: nitpicky mode reports it
    from sphinx.util.nodes import make_refnode

    entry = domain.objects[matches[0]]
    return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, matches[0])


def _unique_scripts(app, pagename, templatename, context, doctree):
    """Drop repeated script entries: the inline configurations of sphinx-thebe (``const THEBE_JS_URL = ...``) and
    sphinx-togglebutton are registered twice (filename None and ''), and the second ``const`` is a JavaScript error
    ("already declared") on every page."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        # an inline script is registered once with filename None and once with '' (same body): one key for both
        key = (getattr(js, "filename", None) or "", tuple(sorted((k, str(v)) for k, v in getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", _unique_scripts)
    root = str(Path(app.srcdir).resolve())
    if root not in sys.path:
        sys.path.insert(0, root)
    app.add_directive("nalkit-config", ConfigFields)
    app.connect("missing-reference", _resolve_unqualified)
    app.connect("env-get-outdated", _outdated)
    app.connect("doctree-read", _orphan_run_pages, priority=900)  # after Sphinx's metadata collector
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}
