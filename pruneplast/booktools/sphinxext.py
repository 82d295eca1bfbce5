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

* A banner on every page of a book built at a profile other than ``paper`` (the quick book's two
  seeds and short runs give other numbers and weaker verdicts than the paper-scale book), set
  through the theme's ``announcement`` from ``$PRUNEPLAST_BOOK_PROFILE`` (set by
  ``pruneplast book``).

The browser tests (``tests/book/test_browser.py``) fail on any console error, so these matter.
``_config.yml`` loads this module with ``sphinx: extra_extensions``.
"""

from __future__ import annotations

import re
from pathlib import Path
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


PROFILE_ENV = "PRUNEPLAST_BOOK_PROFILE"


def profile_banner(profile: str) -> str:
    """The announcement of a non-paper build ('' for the paper profile or an unknown build)."""
    if not profile or profile == "paper":
        return ""
    return (
        f"This is the <strong>{profile}</strong> build of the book: fewer replicate seeds and shorter "
        "runs than the studies, to check that every chapter runs. Its numbers and verdicts are not "
        "the paper-scale results (<code>make book</code> builds those)."
    )


def announce_profile(app, config) -> None:
    import os

    text = profile_banner(os.environ.get(PROFILE_ENV, ""))
    if text:
        opts = dict(config.html_theme_options or {})
        opts["announcement"] = text
        config.html_theme_options = opts


def repository_url(root: Path | None = None) -> str:
    """``[tool.pruneplast] repository`` of the project's pyproject.toml ('' when unset)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: no reader of pyproject.toml, so no buttons
        return ""

    from ..results import project_root

    path = Path(root or project_root()) / "pyproject.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return ""
    url = str(data.get("tool", {}).get("pruneplast", {}).get("repository", "") or "").strip()
    return url if url.startswith("https://") else ""


def repository_options(url: str, options: dict | None = None) -> dict:
    """The theme options that turn on the repository, issue and Binder launch buttons for ``url``."""
    opts = dict(options or {})
    if not url:
        return opts
    opts.update(
        repository_url=url,
        use_repository_button=True,
        use_issues_button=True,
        repository_branch="main",
        path_to_docs="",
        launch_buttons={
            **dict(opts.get("launch_buttons") or {}),
            "binderhub_url": "https://mybinder.org",
            "notebook_interface": "jupyterlab",
        },
    )
    return opts


def add_repository(app, config) -> None:
    config.html_theme_options = repository_options(repository_url(), config.html_theme_options)


def profile_meta(app, pagename, templatename, context, doctree) -> None:
    """``<meta name="pruneplast-profile" content="...">`` on every page (the browser tests read it)."""
    import os

    profile = os.environ.get(PROFILE_ENV, "")
    if profile:
        context["metatags"] = context.get("metatags", "") + f'<meta name="pruneplast-profile" content="{profile}">\n'


STATIC = Path(__file__).resolve().parent / "static"
#: Nodes whose text is code, maths or a command line, printed as typed (no minus signs there).
_VERBATIM = ("literal", "literal_block", "math", "math_block", "raw", "comment", "doctest_block")
#: Raw HTML of a notebook output: its text between tags (not inside <script> or <style>).
_HTML_TEXT = re.compile(r"(<(script|style)\b.*?</\2>)|>([^<]+)<", re.S | re.I)


def _typeset_html(html: str) -> str:
    from ..typeset import typeset

    def one(m: re.Match[str]) -> str:
        if m.group(1):
            return m.group(1)
        return ">" + typeset(m.group(3)) + "<"

    return _HTML_TEXT.sub(one, html)


def typeset_numbers(app, doctree, docname) -> None:
    """Every number a page prints, typeset by :func:`pruneplast.typeset.typeset`: glued values
    (``{glue:text}`x:.1f```), prose, table cells, captions and the HTML tables of notebook outputs
    read with a minus sign (U+2212) and never as -0.0; a count of one takes the singular
    (:func:`pruneplast.typeset.agree`). Code, code spans and maths keep their text."""
    from docutils import nodes

    from ..typeset import agree, typeset

    def verbatim(node) -> bool:
        p = node.parent
        while p is not None:
            if p.tagname in _VERBATIM or "highlight" in " ".join(p.get("classes", [])):
                return True
            p = p.parent
        return False

    for node in list(doctree.findall(nodes.Text)):
        text = str(node)
        fixed = agree(typeset(text))
        if fixed != text and not verbatim(node):
            node.parent.replace(node, nodes.Text(fixed))
    # a glued count of one makes the noun after it singular ("{glue:text}`n_seeds` replicate seeds")
    for node in list(doctree.findall(nodes.inline)):
        if "pasted-text" not in node.get("classes", []) or node.astext().strip() != "1":
            continue
        nxt = node.next_node(descend=False, siblings=True)
        if isinstance(nxt, nodes.Text):
            fixed = agree("1" + str(nxt))[1:]
            if fixed != str(nxt):
                nxt.parent.replace(nxt, nodes.Text(fixed))
    for node in list(doctree.findall(nodes.raw)):
        if node.get("format") == "html" and "<table" in node.astext():
            html = node.astext()
            fixed = _typeset_html(html)
            if fixed != html:
                node.children = [nodes.Text(fixed)]


#: The caption of the toc part whose pages are appendices (numbered A, B, ... on their own).
APPENDIX_CAPTION = "Appendix"


def appendix_pages(srcdir) -> list[str]:
    """The appendix pages of ``_toc.yml`` in ``srcdir``, in order (docnames without suffix)."""
    import yaml

    toc = Path(srcdir) / "_toc.yml"
    if not toc.exists():
        return []
    data = yaml.safe_load(toc.read_text(encoding="utf-8")) or {}
    for part in data.get("parts", []) or []:
        if part.get("caption") == APPENDIX_CAPTION:
            return [c["file"] for c in part.get("chapters", []) or [] if isinstance(c, dict) and "file" in c]
    return []


def appendix_letter(index: int) -> str:
    return chr(ord("A") + index) if index < 26 else f"A{index}"


def appendix_numbers(app, env) -> list[str]:
    """Figures and tables of the appendices numbered per appendix ("Table A.1", "Figure B.2")
    instead of one counter shared by every unnumbered page. Runs after Sphinx has assigned its
    numbers (``env-get-updated``, late priority) and rewrites those of the appendix pages."""
    changed = []
    for i, doc in enumerate(appendix_pages(app.srcdir)):
        letter = appendix_letter(i)
        for ids in env.toc_fignumbers.get(doc, {}).values():
            for k, (fid, _) in enumerate(sorted(ids.items(), key=lambda kv: kv[1]), 1):
                if ids[fid] != (letter, k):
                    ids[fid] = (letter, k)
                    changed.append(doc)
    return sorted(set(changed))


def add_static(app, config) -> None:
    """The book's own stylesheet (compact, wrapping tables), served from the package."""
    config.html_static_path = [*list(config.html_static_path or []), str(STATIC)]


def setup(app):
    app.connect("config-inited", announce_profile)
    app.connect("config-inited", add_static)
    app.connect("config-inited", add_repository)
    app.connect("doctree-resolved", typeset_numbers)
    app.connect("env-get-updated", appendix_numbers, priority=900)
    app.add_css_file("pruneplast.css")
    app.connect("html-page-context", profile_meta)
    app.connect("html-page-context", default_mode)
    # late priority: after the extensions that add per-page scripts (myst-nb's widget bundle)
    app.connect("html-page-context", dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
