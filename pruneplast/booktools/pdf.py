"""The whole book as one PDF (``make pdf``, ``pruneplast pdf``), printed by headless Chromium.

How. The staging folder of a built book (``<build>/source/<profile>``: the same executed
notebooks the HTML book was built from; nothing is executed again) is built once more by Jupyter
Book with Sphinx's single-page HTML builder, every chapter one after the other on one page with
the figures and tables numbered as in the HTML book; Debian's Chromium then prints that page
(``--headless --print-to-pdf``) after its scripts have run (MathJax typesets the equations). A
print stylesheet (``static/pruneplast-print.css``, loaded by every page of the book with
``media="print"``, so a reader printing one page gets the same layout) sets A4 pages numbered in
their footer, starts each chapter on a new page, keeps figures, tables and equations whole, fits
wide tables to the page, wraps long code lines, drops the navigation and replaces interactive
controls (the explorer's widgets) with a note saying where they work. The PDF is written
atomically to ``<build>/html/pruneplast.pdf``, beside the HTML book's front page, which links it.

Why Chromium and not LaTeX. Jupyter Book can also build a PDF through LaTeX, but that needs a TeX
distribution (TeX Live with XeLaTeX and its fonts, more than a gigabyte of Debian packages) that
this project does not otherwise use and that is not on the machines it is built on; Chromium is
already a prerequisite of the browser tests (``make browser``), works offline, and renders exactly
the HTML, CSS, figures and MathJax output that those tests check, so the PDF shows what the HTML
book shows: the same numbered figures and tables, the same typeset numbers, the same tables (which
are HTML tables in notebook outputs, and which LaTeX would drop or re-lay out).

``_config.yml`` also loads this module as a Sphinx extension (``sphinx: extra_extensions``): its
:func:`setup` adds the print stylesheet to every page.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

from ..results import atomic_write, file_mode, project_root
from . import sphinxext
from ._common import jupyter_book_command, log

#: Debian's Chromium, as the browser tests use it (``make browser`` installs it).
CHROMIUM = Path("/usr/bin/chromium")
#: Another Chromium binary (a path), instead of :data:`CHROMIUM`.
CHROMIUM_ENV = "PRUNEPLAST_CHROMIUM"
PDF_NAME = "pruneplast.pdf"
PRINT_CSS = "pruneplast-print.css"
STATIC = Path(__file__).resolve().parent / "static"
#: Milliseconds of page time Chromium gives the page's scripts (MathJax) before printing.
SCRIPT_BUDGET_MS = 120_000


def find_chromium() -> Path:
    """The Chromium to print with: ``$PRUNEPLAST_CHROMIUM`` or ``/usr/bin/chromium``; else a clear error."""
    env = os.environ.get(CHROMIUM_ENV, "").strip()
    path = Path(env) if env else CHROMIUM
    if not (path.is_file() and os.access(path, os.X_OK)):
        where = f"${CHROMIUM_ENV}={env}" if env else str(CHROMIUM)
        raise FileNotFoundError(
            f"the PDF is printed by headless Chromium, and there is none at {where}: install Debian's "
            f"chromium (`make browser`, as root) or set {CHROMIUM_ENV} to a Chromium binary"
        )
    return path


def built_book(profile: str, build_dir: Path, html_dir: Path | None = None) -> tuple[Path, Path]:
    """The staging folder and the HTML folder (default ``<build_dir>/html``) of the book built at
    ``profile`` in ``build_dir``, checked: a clear error naming the command that builds it when either
    is missing."""
    stage = Path(build_dir) / "source" / profile
    html = Path(html_dir) if html_dir else Path(build_dir) / "html"
    how = (
        f"build it first: `pruneplast book --profile {profile} --build-dir {build_dir}` "
        f"(or `make book PROFILE={profile}`)"
    )
    if not (stage / "_toc.yml").is_file():
        raise FileNotFoundError(f"no book staged at profile {profile!r} in {build_dir} (no {stage}/_toc.yml); {how}")
    if not (html / "index.html").is_file():
        raise FileNotFoundError(f"no HTML book in {html} (no index.html); {how}")
    return stage, html


def chromium_print_command(chromium: Path, page: Path, pdf: Path) -> list[str]:
    """Chromium's command line that prints ``page`` (a local HTML file) to ``pdf``."""
    return [
        str(chromium),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--allow-file-access-from-files",
        # no header and footer of Chromium's own: they would print the file's path on this machine
        # (the stylesheet numbers the pages instead)
        "--no-pdf-header-footer",
        "--run-all-compositor-stages-before-draw",
        f"--virtual-time-budget={SCRIPT_BUDGET_MS}",
        f"--print-to-pdf={pdf}",
        page.resolve().as_uri(),
    ]


def single_page(stage: Path, out: Path, profile: str, strict: bool = False) -> Path:
    """Build the staged book with Sphinx's single-page HTML builder into ``out``; returns the page."""

    cmd = jupyter_book_command() + ["build", str(stage), "--path-output", str(out), "--builder", "singlehtml", "--all"]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    proc = subprocess.run(cmd, cwd=project_root(), env={**os.environ, sphinxext.PROFILE_ENV: profile})
    # the whole book is the root page of _toc.yml (index.html only redirects to it)
    root = yaml.safe_load((stage / "_toc.yml").read_text(encoding="utf-8"))["root"]
    index = out / "_build" / "singlehtml" / f"{root}.html"
    if proc.returncode != 0 or not index.is_file():
        raise RuntimeError(f"Jupyter Book's single-page build failed (exit {proc.returncode}); see the messages above")
    return index


_HREF = re.compile(r"""(<a\b[^>]*?)\s+href=(["'])(.*?)\2""", re.I | re.S)


#: Run in the page before it is printed: each heading is kept on one sheet with the first visible
#: block after it (a table, a figure, a paragraph), by wrapping the two in a block that is not
#: broken inside (``.pruneplast-keep`` in the print stylesheet). CSS alone cannot do it: a heading
#: followed by a table or figure taller than the rest of the sheet stayed behind at its foot. A
#: heading followed directly by a subsection is left alone (the pair would be most of a chapter).
KEEP_WITH_NEXT_JS = """
<script>
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll(".bd-article h2, .bd-article h3, .bd-article h4, .bd-article h5").forEach(function (h) {
    var run = [h], next = h.nextElementSibling;
    while (next && next.getClientRects().length === 0) { run.push(next); next = next.nextElementSibling; }
    if (!next || next.tagName === "SECTION" || /^H[1-6]$/.test(next.tagName)) return;
    run.push(next);
    var keep = document.createElement("div");
    keep.className = "pruneplast-keep";
    h.parentNode.insertBefore(keep, h);
    run.forEach(function (e) { keep.appendChild(e); });
  });
});
</script>
"""


def paper_html(html: str) -> str:
    """The single-page book as it goes to paper: links to the other files of the HTML book (the
    results downloads, the PDF itself) become plain text, since in a PDF they would point into
    this machine's build folder; links within the book (``#...``) and to the web stay; and each
    heading is kept with what follows it (:data:`KEEP_WITH_NEXT_JS`, added before ``</body>``)."""

    def one(m: re.Match[str]) -> str:
        href = m.group(3)
        if href.startswith(("#", "http://", "https://", "mailto:")):
            return m.group(0)
        if href.startswith("index.html#"):  # the page itself, by name
            return f"{m.group(1)} href={m.group(2)}{href[len('index.html') :]}{m.group(2)}"
        return m.group(1)

    html = _HREF.sub(one, html)
    at = html.rfind("</body>")
    return html[:at] + KEEP_WITH_NEXT_JS + html[at:] if at >= 0 else html + KEEP_WITH_NEXT_JS


def print_pdf(page: Path, pdf: Path, chromium: Path | None = None, timeout: float = 900) -> Path:
    """Print ``page`` to ``pdf`` with headless Chromium, atomically (a temporary file beside it, checked
    to be a PDF, then renamed); returns ``pdf``."""
    chromium = chromium or find_chromium()
    pdf = Path(pdf)
    pdf.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=pdf.parent, prefix=f".{pdf.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with tempfile.TemporaryDirectory(prefix="pruneplast-chromium-") as profile_dir:
            cmd = chromium_print_command(chromium, page, tmp)
            cmd.insert(1, f"--user-data-dir={profile_dir}")
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            except subprocess.TimeoutExpired:
                raise RuntimeError(f"Chromium did not finish printing {page} within {timeout:.0f} s") from None
        with open(tmp, "rb") as fh:
            head = fh.read(5)
        if proc.returncode != 0 or head != b"%PDF-":
            tail = "\n".join((proc.stderr or "").strip().splitlines()[-8:])
            raise RuntimeError(f"Chromium could not print {page} to PDF (exit {proc.returncode}):\n{tail}")
        os.chmod(tmp, file_mode())
        os.replace(tmp, pdf)
    finally:
        tmp.unlink(missing_ok=True)
    return pdf


def build_pdf(
    profile: str = "paper",
    build_dir: Path | str | None = None,
    out: Path | str | None = None,
    strict: bool = False,
    work_dir: Path | str | None = None,
    html_dir: Path | str | None = None,
) -> Path:
    """The book built at ``profile`` in ``build_dir`` (default ``<project>/_build``) as one PDF,
    ``out`` (default ``<build_dir>/html/pruneplast.pdf``, linked from the front page); returns its path.
    The single-page book is built in ``work_dir`` (default ``<build_dir>/jb-single``), afresh;
    ``html_dir`` is the HTML book's folder when it is not ``<build_dir>/html``.

    Needs the built book (``pruneplast book``): its staging folder and its HTML folder; and
    Chromium (:func:`find_chromium`). Both are checked before anything is built.
    """
    build_dir = Path(build_dir or project_root() / "_build").resolve()
    stage, html = built_book(profile, build_dir, Path(html_dir).resolve() if html_dir else None)
    chromium = find_chromium()
    pdf = Path(out).resolve() if out else html / PDF_NAME
    t0 = time.perf_counter()
    single = Path(work_dir).resolve() if work_dir else build_dir / "jb-single"
    if single.exists():
        shutil.rmtree(single)
    log(f"== PDF: the {profile} book on one page (Jupyter Book, singlehtml) from {stage} ==")
    index = single_page(stage, single, profile, strict=strict)
    # the single page's links to images, stylesheets and scripts are relative to the output folder's
    # top (Sphinx writes them so for the root page, wherever that lies), so the page to print goes there
    page = single / "_build" / "singlehtml" / "print.html"
    atomic_write(page, paper_html(index.read_text(encoding="utf-8")))
    t1 = time.perf_counter()
    log(f"== PDF: printing the single page with {chromium} ==")
    print_pdf(page, pdf, chromium)
    size = pdf.stat().st_size / 2**20
    log(f"== PDF at {pdf} ({size:.1f} MiB): single page {t1 - t0:.1f} s, printing {time.perf_counter() - t1:.1f} s ==")
    return pdf


def print_built_book(profile: str, build_dir: Path | str | None = None) -> Path | None:
    """The last step of ``pruneplast book``: the PDF of the book just built, where Chromium is
    installed (returns its path); where it is not, a line saying so and no PDF (returns None)."""
    try:
        find_chromium()
    except FileNotFoundError as exc:
        log(f"== no PDF of the book: {exc} ==")
        return None
    return build_pdf(profile, build_dir)


def add_print_css(app, config) -> None:
    static = str(STATIC)
    if static not in [str(p) for p in config.html_static_path or []]:
        config.html_static_path = [*list(config.html_static_path or []), static]


def setup(app):
    app.connect("config-inited", add_print_css)
    app.add_css_file(PRINT_CSS, media="print")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
