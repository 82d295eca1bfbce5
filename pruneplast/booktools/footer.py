"""A Sphinx extension: the version, commit and build date in every page's footer.

A reader who prints, saves or cites a page can tell which build of the book it came from:
``pruneplast 0.1.0 · commit 6b25d88 · built 2026-12-06``. The version is the package's
(:data:`pruneplast.__version__`); the commit is the short hash of the checkout the book was built
from (``+ local changes`` when the work tree differs from it; ``no git checkout`` for a source
archive); the date is the build's, in UTC, or ``$SOURCE_DATE_EPOCH``'s when that is set
(reproducible builds). The line is added to the theme's ``extra_footer`` (``_config.yml``'s
``html: extra_footer`` stays in front of it).

``_config.yml`` loads this module with ``sphinx: extra_extensions``.
"""

from __future__ import annotations

import datetime as _dt
import html
import os
import subprocess
from pathlib import Path


def commit(root: Path | None = None) -> str:
    """The checkout's short commit hash, ``+ local changes`` when tracked files differ from it;
    ``"no git checkout"`` when ``root`` is not in a git work tree (or git is missing)."""
    from ..results import project_root

    cwd = Path(root or project_root())
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return "no git checkout"
    if head.returncode != 0 or not head.stdout.strip():
        return "no git checkout"
    short = head.stdout.strip()
    try:
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return short
    return f"{short} + local changes" if dirty.returncode == 0 and dirty.stdout.strip() else short


def build_date(environ: dict | None = None) -> str:
    """Today in UTC (``YYYY-MM-DD``), or the date of ``$SOURCE_DATE_EPOCH`` when it is set."""
    env = os.environ if environ is None else environ
    epoch = str(env.get("SOURCE_DATE_EPOCH", "") or "").strip()
    if epoch:
        try:
            when = _dt.datetime.fromtimestamp(int(epoch), tz=_dt.timezone.utc)
        except (ValueError, OverflowError, OSError) as exc:
            raise ValueError(f"SOURCE_DATE_EPOCH must be a whole number of seconds since 1970; got {epoch!r}") from exc
    else:
        when = _dt.datetime.now(tz=_dt.timezone.utc)
    return when.strftime("%Y-%m-%d")


def version() -> str:
    from .. import __version__

    return __version__


def footer_text(version: str, commit: str, date: str) -> str:
    """The footer line (plain text)."""
    return f"pruneplast {version} · commit {commit} · built {date}"


def footer_html(version: str, commit: str, date: str) -> str:
    """The footer line as the theme shows it: one paragraph, classed so tests and print CSS find it."""
    return f'<p class="pruneplast-build-info">{html.escape(footer_text(version, commit, date))}</p>'


def add_footer(app, config) -> None:
    line = footer_html(version(), commit(), build_date())
    opts = dict(config.html_theme_options or {})
    extra = str(opts.get("extra_footer", "") or "")
    opts["extra_footer"] = f"{extra}\n{line}" if extra else line
    config.html_theme_options = opts


def setup(app):
    app.connect("config-inited", add_footer)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
