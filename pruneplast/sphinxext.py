"""A small Sphinx extension for the book: pages that run without JavaScript errors.

* Every script once per page. With Jupyter Book 1.x on Sphinx 7, some extensions' inline scripts
  reach a page twice (e.g. sphinx-thebe's ``const THEBE_JS_URL = ...``, which then fails in the
  browser with "Identifier has already been declared", and myst-nb's widget bundle). Repeated
  entries of a page's ``script_files`` (same source, attributes and body) are dropped, keeping
  the first.
* A colour mode by default. The theme's ``default_mode`` context value is empty unless set
  (``html_context``), and its script
  then logs "Got invalid theme mode" on a reader's first visit; the book starts in light mode
  (the figures have white backgrounds), and the theme's switch still offers dark and auto.

The browser tests (``tests/test_browser.py``) fail on any console error, so these matter.
``_config.yml`` loads this module with ``sphinx: extra_extensions``.
"""

from __future__ import annotations

from typing import Any


def _key(js: Any) -> tuple:
    filename = getattr(js, "filename", js) or ""  # an inline script appears as None and as ''
    attributes = getattr(js, "attributes", {}) or {}
    return (filename, tuple(sorted((str(k), str(v)) for k, v in attributes.items())))


def dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        k = _key(js)
        if k in seen:
            continue
        seen.add(k)
        kept.append(js)
    context["script_files"] = kept


def default_mode(app, pagename, templatename, context, doctree) -> None:
    if not context.get("default_mode"):  # the theme's templates read it from the page context
        context["default_mode"] = "light"


def setup(app):
    app.connect("html-page-context", default_mode)
    # late priority: after the extensions that add per-page scripts (myst-nb's widget bundle)
    app.connect("html-page-context", dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
