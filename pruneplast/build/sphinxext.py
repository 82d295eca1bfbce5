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

The browser tests (``tests/test_browser.py``) fail on any console error, so these matter.
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
#: A number that rounds to zero printed with a minus sign ("-0.0"), as Python formats -0.01.
NEGATIVE_ZERO = re.compile(r"(?<![\d.])-(0(?:\.0+)?)(?![\d])")


def positive_zero(app, doctree, docname) -> None:
    """Glued numbers (``{glue:text}`x:.1f```) that round to zero print as 0.0, never -0.0."""
    from docutils import nodes

    for node in list(doctree.findall(nodes.inline)):
        if "pasted-text" not in node.get("classes", []):
            continue
        text = node.astext()
        fixed = NEGATIVE_ZERO.sub(r"\1", text)
        if fixed != text:
            node.children = [nodes.Text(fixed)]


def add_static(app, config) -> None:
    """The book's own stylesheet (compact, wrapping tables), served from the package."""
    config.html_static_path = [*list(config.html_static_path or []), str(STATIC)]


def setup(app):
    app.connect("config-inited", announce_profile)
    app.connect("config-inited", add_static)
    app.connect("config-inited", add_repository)
    app.connect("doctree-resolved", positive_zero)
    app.add_css_file("pruneplast.css")
    app.connect("html-page-context", profile_meta)
    app.connect("html-page-context", default_mode)
    # late priority: after the extensions that add per-page scripts (myst-nb's widget bundle)
    app.connect("html-page-context", dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
