"""The book as a reader takes it away: the PDF (``make pdf``), how to cite it, the build in every
page's footer and each chapter's results files.

The unit tests need nothing built. The slow test prints the PDF of an existing quick book
(``make test`` builds ``_build/test``; ``$PRUNEPLAST_BOOK_BUILD`` names another build folder) with
Debian's Chromium and reads it back with poppler-utils (``pdfinfo``, ``pdftoppm``, ``pdftotext``;
``make browser`` installs both); it skips, saying why, where either is missing.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
import yaml

import pruneplast
from pruneplast import booktools
from pruneplast.booktools import downloads, footer, pdf

ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- a small BibTeX reader
_ENTRY = re.compile(r"@(\w+)\s*\{\s*([^,\s{}]+)\s*,", re.S)


def _braced(text: str, i: int) -> tuple[str, int]:
    """The text inside the braces opening at ``text[i]`` and the index after the closing one."""
    assert text[i] == "{"
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j], j + 1
    raise ValueError(f"unbalanced braces from offset {i}")


def parse_bibtex(text: str) -> list[dict]:
    """Entries of ``text`` as ``{"type", "key", field: value}``; ValueError on anything malformed
    (unbalanced braces, a field without ``=`` or value, a repeated field, text outside entries)."""
    entries, pos = [], 0
    while True:
        m = _ENTRY.search(text, pos)
        if not m:
            if text[pos:].strip():
                raise ValueError(f"text outside an entry: {text[pos:].strip()[:60]!r}")
            return entries
        if text[pos : m.start()].strip():
            raise ValueError(f"text outside an entry: {text[pos : m.start()].strip()[:60]!r}")
        body, pos = _braced(text, text.index("{", m.start()))
        entry = {"type": m.group(1).lower(), "key": m.group(2)}
        rest = body[body.index(",") + 1 :]
        while rest.strip():
            fm = re.match(r"\s*([A-Za-z_-]+)\s*=\s*", rest)
            if not fm:
                raise ValueError(f"{entry['key']}: expected 'field = value' at {rest.strip()[:40]!r}")
            name = fm.group(1).lower()
            if name in entry:
                raise ValueError(f"{entry['key']}: field {name!r} given twice")
            rest = rest[fm.end() :]
            if rest.startswith("{"):
                value, k = _braced(rest, 0)
            elif rest.startswith('"'):
                k = rest.index('"', 1) + 1
                value = rest[1 : k - 1]
            else:
                vm = re.match(r"[A-Za-z0-9]+", rest)
                if not vm:
                    raise ValueError(f"{entry['key']}: field {name!r} has no value")
                value, k = vm.group(0), vm.end()
            entry[name] = value
            rest = rest[k:]
            sep = re.match(r"\s*(,|$)", rest)
            if not sep:
                raise ValueError(f"{entry['key']}: missing comma after field {name!r}")
            rest = rest[sep.end() :]
        entries.append(entry)


def _bibtex_blocks(md: str) -> list[str]:
    return re.findall(r"```bibtex\n(.*?)```", md, re.S)


def test_the_bibtex_reader_finds_what_it_should():
    good = "@misc{a, title = {T {x}}, year = 2026, month = jan}\n"
    assert parse_bibtex(good) == [{"type": "misc", "key": "a", "title": "T {x}", "year": "2026", "month": "jan"}]
    for bad in (
        "@misc{a, title = {T}",  # unbalanced
        "@misc{a, title {T}}",  # no '='
        "@misc{a, title = {T} year = {2026}}",  # no comma
        "@misc{a, title = {T}, title = {U}}",  # repeated
        "stray @misc{a, title = {T}}",
    ):
        with pytest.raises(ValueError):
            parse_bibtex(bad)


# --------------------------------------------------------------------------- how to cite
def _cite_entries() -> dict[str, dict]:
    md = (ROOT / "book" / "cite.md").read_text(encoding="utf-8")
    blocks = _bibtex_blocks(md)
    assert len(blocks) == 3, "the cite page has one BibTeX block for the book and one per study"
    entries = [e for b in blocks for e in parse_bibtex(b)]
    return {e["key"]: e for e in entries}


def test_cite_page_has_valid_bibtex_for_the_book_and_both_studies():
    entries = _cite_entries()
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert set(entries) == {"pruneplast2026", "studyA2026", "studyB2026"}
    for e in entries.values():
        for field in ("author", "title", "year"):
            assert e.get(field), f"{e['key']} has no {field}"
    book = entries["pruneplast2026"]
    assert book["type"] == "software"
    # one version everywhere: the package, CITATION.cff, the cite page
    assert book["version"] == pruneplast.__version__ == str(cff["version"])
    assert book["title"] == cff["title"]
    # the studies: the titles CITATION.cff names, Ngo Cheung, Zenodo, January 2026
    studies = [entries["studyA2026"], entries["studyB2026"]]
    assert [s["title"] for s in studies] == [r["title"] for r in cff["references"]]
    for s in studies:
        assert s["author"] == "Cheung, Ngo" and s["publisher"] == "Zenodo"
        assert s["year"] == "2026" and s["month"] == "jan"
        assert "Zenodo record" in s["howpublished"]
    # keys shared with the references page, so the two merge in a reader's bibliography
    bib = (ROOT / "book" / "references.bib").read_text(encoding="utf-8")
    assert "@misc{studyA2026," in bib and "@misc{studyB2026," in bib


def test_cite_page_is_in_the_book_and_linked_from_the_front_page():
    assert "book/cite" in booktools.toc_files(ROOT)
    intro = (ROOT / "book" / "intro.md").read_text(encoding="utf-8")
    assert "{doc}`cite`" in intro
    assert 'href="../pruneplast.pdf"' in intro  # the front page links the PDF beside the HTML book


# --------------------------------------------------------------------------- the footer
def test_footer_names_version_commit_and_date():
    line = "pruneplast 0.1.0 · commit abc1234 · built 2026-12-06"
    assert footer.footer_text("0.1.0", "abc1234", "2026-12-06") == line
    html = '<p class="pruneplast-build-info">pruneplast 1 · commit a&lt;b · built d</p>'
    assert footer.footer_html("1", "a<b", "d") == html
    assert footer.version() == pruneplast.__version__
    assert footer.build_date({"SOURCE_DATE_EPOCH": "0"}) == "1970-01-01"
    assert footer.build_date({}) == dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    with pytest.raises(ValueError, match="SOURCE_DATE_EPOCH"):
        footer.build_date({"SOURCE_DATE_EPOCH": "yesterday"})


def test_footer_commit_of_a_checkout(tmp_path):
    assert footer.commit(tmp_path) == "no git checkout"
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-C", str(tmp_path)]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "f.txt").write_text("a\n")
    subprocess.run([*git, "add", "f.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    short = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert footer.commit(tmp_path) == short
    (tmp_path / "f.txt").write_text("b\n")
    assert footer.commit(tmp_path) == f"{short} + local changes"


def test_footer_extension_appends_to_the_configured_footer():
    config = SimpleNamespace(html_theme_options={"extra_footer": "Built from executed notebooks."})
    footer.add_footer(SimpleNamespace(srcdir=str(ROOT)), config)
    text = config.html_theme_options["extra_footer"]
    assert text.startswith('Built from executed notebooks.\n<p class="pruneplast-build-info">')
    assert f"pruneplast {pruneplast.__version__} · commit " in text and " · built " in text
    ext = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["sphinx"]["extra_extensions"]
    assert "pruneplast.booktools.footer" in ext and "pruneplast.booktools.pdf" in ext


# --------------------------------------------------------------------------- the print stylesheet
def test_print_stylesheet_is_there_and_loaded_for_print():
    css = (pdf.STATIC / pdf.PRINT_CSS).read_text(encoding="utf-8")
    assert re.search(r"@page\s*\{[^}]*size:\s*A4", css)
    assert "counter(page)" in css  # pages numbered (Chromium's own header and footer are off)
    rules: dict[str, str] = {}  # selector -> its declarations, over every rule that names it
    for sels, body in re.findall(r"([^{}]+)\{([^{}]*)\}", re.sub(r"/\*.*?\*/", "", css, flags=re.S)):
        for sel in sels.split(","):
            rules[sel.strip()] = rules.get(sel.strip(), "") + body
    for sel in ("figure", "table", "div.math"):
        assert "break-inside: avoid" in rules[sel], f"{sel} may be split across pages"
    assert "display: none" in rules[".jupyter-widgets"]
    assert "Interactive controls" in css  # the note that replaces them
    assert "width: 100%" in rules["table"]
    calls = []
    app = SimpleNamespace(connect=lambda *a, **k: calls.append(a), add_css_file=lambda *a, **k: calls.append((a, k)))
    pdf.setup(app)
    assert ((pdf.PRINT_CSS,), {"media": "print"}) in calls
    config = SimpleNamespace(html_static_path=["_static"])
    pdf.add_print_css(app, config)
    pdf.add_print_css(app, config)
    assert config.html_static_path == ["_static", str(pdf.STATIC)]


def test_chromium_prints_without_its_own_header_and_footer(tmp_path):
    cmd = pdf.chromium_print_command(Path("/usr/bin/chromium"), tmp_path / "index.html", tmp_path / "b.pdf")
    assert "--headless" in cmd and "--no-pdf-header-footer" in cmd  # they would print a machine path
    assert f"--print-to-pdf={tmp_path / 'b.pdf'}" in cmd and cmd[-1] == (tmp_path / "index.html").as_uri()


def test_paper_keeps_links_within_the_book_and_to_the_web_only():
    html = (
        '<a class="x" href="_downloads/ab/c.csv">c</a> <a href="../pruneplast.pdf">p</a> <a href="#fig-1">F</a> '
        '<a href="index.html#x">y</a> <a href="https://e.org">e</a> <link href="_static/a.css">'
    )
    links = (
        '<a class="x">c</a> <a>p</a> <a href="#fig-1">F</a> '
        '<a href="#x">y</a> <a href="https://e.org">e</a> <link href="_static/a.css">'
    )
    assert pdf.paper_html(html) == links + pdf.KEEP_WITH_NEXT_JS
    # the script that keeps each heading with what follows it runs in the page, before </body>
    assert pdf.paper_html(f"<body>{html}</body>") == f"<body>{links}{pdf.KEEP_WITH_NEXT_JS}</body>"
    css = (pdf.STATIC / pdf.PRINT_CSS).read_text(encoding="utf-8")
    assert re.search(r"\.pruneplast-keep\s*\{\s*break-inside:\s*avoid", css)
    assert '"pruneplast-keep"' in pdf.KEEP_WITH_NEXT_JS


def test_pdf_errors_are_clear(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"no book staged at profile 'quick'.*pruneplast book --profile quick"):
        pdf.build_pdf("quick", tmp_path)
    (tmp_path / "source" / "quick").mkdir(parents=True)
    (tmp_path / "source" / "quick" / "_toc.yml").write_text("root: x\n")
    with pytest.raises(FileNotFoundError, match="no HTML book in"):
        pdf.build_pdf("quick", tmp_path)
    (tmp_path / "html").mkdir()
    (tmp_path / "html" / "index.html").write_text("<html></html>")
    monkeypatch.setenv(pdf.CHROMIUM_ENV, str(tmp_path / "no-chromium"))
    with pytest.raises(FileNotFoundError, match="headless Chromium.*no-chromium"):
        pdf.build_pdf("quick", tmp_path)
    assert not list(tmp_path.rglob("*.pdf")) and not list(tmp_path.rglob("*.tmp"))


def test_a_failed_print_leaves_no_file(tmp_path):
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\necho 'cannot print' >&2\nexit 3\n")
    fake.chmod(0o755)
    page = tmp_path / "index.html"
    page.write_text("<html></html>")
    with pytest.raises(RuntimeError, match=r"(?s)could not print.*exit 3.*cannot print"):
        pdf.print_pdf(page, tmp_path / "out" / "book.pdf", fake)
    assert not (tmp_path / "out" / "book.pdf").exists() and not list((tmp_path / "out").iterdir())


def test_cli_pdf_says_what_is_missing(tmp_path, capsys):
    from pruneplast import cli

    assert cli.main(["pdf", "--profile", "quick", "--build-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no book staged") and "Traceback" not in err


# --------------------------------------------------------------------------- results to download
CHAPTER = "01_model_and_task"


def _executed(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Chapter\n\n## Rerun it\n\ntext")]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def _results(res: Path) -> None:
    res.mkdir(parents=True, exist_ok=True)
    (res / f"{CHAPTER}.csv").write_text("experiment,condition,seed,metric,value\ne,c,0,accuracy,97.5\n")
    (res / f"{CHAPTER}.json").write_text('{"parameters": {"seeds": [0]}}\n')


def test_download_section_links_the_chapters_results(tmp_path):
    nb_path, res, stage = tmp_path / "stage" / "notebooks" / f"{CHAPTER}.ipynb", tmp_path / "res", tmp_path / "stage"
    _executed(nb_path)
    _results(res)
    copied = downloads.add_downloads(nb_path, CHAPTER, "quick", res, stage)
    assert [p.name for p in copied] == [f"{CHAPTER}.csv", f"{CHAPTER}.json"]
    for p in copied:
        assert p.parent == stage / "_results" and p.read_bytes() == (res / p.name).read_bytes()
    nb = nbformat.read(nb_path, as_version=4)
    nbformat.validate(nb)
    last = nb.cells[-1]
    assert last.cell_type == "markdown" and last.source.startswith("## Download the results")
    assert f"{{download}}`{CHAPTER}.csv </_results/{CHAPTER}.csv>`" in last.source
    assert f"{{download}}`{CHAPTER}.json </_results/{CHAPTER}.json>`" in last.source
    assert "`quick` profile" in last.source and f"pruneplast run {CHAPTER} --profile quick" in last.source
    # a chapter that wrote no results table gets no section
    other = tmp_path / "stage" / "notebooks" / "explorer.ipynb"
    _executed(other)
    assert downloads.add_downloads(other, "explorer", "quick", res, stage) == []
    assert len(nbformat.read(other, as_version=4).cells) == 1


def test_staging_copies_each_chapters_results(tmp_path, monkeypatch):
    root = tmp_path / "proj"
    (root / "book").mkdir(parents=True)
    (root / "book" / "intro.md").write_text("# Intro\n")
    (root / "notebooks").mkdir()
    (root / "notebooks" / f"{CHAPTER}.md").write_text(
        "---\njupytext:\n  text_representation:\n    format_name: myst\nkernelspec:\n  name: python3\n"
        "  display_name: Python 3\n---\n# Chapter\n"
    )
    (root / "_toc.yml").write_text(f"format: jb-book\nroot: book/intro\nchapters:\n  - file: notebooks/{CHAPTER}\n")
    (root / "_config.yml").write_text("title: t\n")
    monkeypatch.setenv("PRUNEPLAST_RESULTS", str(tmp_path / "res"))
    _results(tmp_path / "res" / "quick")
    executed = tmp_path / "b" / "exec" / "quick" / "notebooks" / f"{CHAPTER}.ipynb"
    _executed(executed)
    before = executed.read_bytes()
    stage = booktools.stage_book("quick", tmp_path / "b", root)
    written = tmp_path / "res" / "quick" / f"{CHAPTER}.csv"
    assert (stage / "_results" / f"{CHAPTER}.csv").read_bytes() == written.read_bytes()
    staged = nbformat.read(stage / "notebooks" / f"{CHAPTER}.ipynb", as_version=4)
    assert staged.cells[-1].source.startswith("## Download the results")
    assert executed.read_bytes() == before  # the executed notebook (stamped, checked) is untouched


# --------------------------------------------------------------------------- the PDF itself
def _book_build() -> Path:
    env = os.environ.get("PRUNEPLAST_BOOK_BUILD")
    return Path(env) if env else ROOT / "_build" / "test"


def test_built_book_has_its_footer_downloads_and_pdf_link():
    """In the built quick book: the build line in every page's footer, a download section with
    working links at the end of every chapter that saved results, and the front page's PDF link
    pointing at the PDF the build printed (where Chromium printed one)."""
    build_dir = _book_build()
    html = build_dir / "html"
    if not (html / "index.html").is_file() or not (build_dir / "source" / "quick" / "_toc.yml").is_file():
        pytest.skip(f"no quick book built in {build_dir} (make test builds it; $PRUNEPLAST_BOOK_BUILD names another)")
    pages = sorted([*html.glob("book/*.html"), *html.glob("notebooks/*.html"), html / "genindex.html"])
    version = re.escape(pruneplast.__version__)
    line = re.compile(rf'class="pruneplast-build-info">pruneplast {version} · commit [^<]+ · built \d{{4}}-\d\d-\d\d<')
    no_footer = [str(p.relative_to(html)) for p in pages if not line.search(p.read_text(encoding="utf-8"))]
    assert not no_footer, f"pages without the build line in their footer: {no_footer}"
    staged = build_dir / "source" / "quick" / downloads.RESULTS_FOLDER
    chapters_with_results = sorted({p.stem for p in staged.glob("*.csv")}) if staged.is_dir() else []
    assert chapters_with_results, f"no chapter's results were staged in {staged}"
    for chapter in chapters_with_results:
        page = html / "notebooks" / f"{chapter}.html"
        text = page.read_text(encoding="utf-8")
        assert downloads.HEADING in text, f"{page.name} has no '{downloads.HEADING}' section"
        for href in re.findall(r'href="(\.\./_downloads/[^"]+)"', text):
            target = (page.parent / href).resolve()
            assert target.is_file(), f"{page.name} links {href}, which is not in the book"
            assert target.read_bytes() == (staged / target.name).read_bytes()
    intro = (html / "book" / "intro.html").read_text(encoding="utf-8")
    assert 'href="../pruneplast.pdf"' in intro
    if shutil.which("pdfinfo") and (html / pdf.PDF_NAME).is_file():
        assert (html / pdf.PDF_NAME).read_bytes()[:5] == b"%PDF-"


@pytest.mark.slow
def test_pdf_of_the_quick_book_renders(tmp_path):
    """The quick book's PDF: the one its build printed when that is newer than its HTML, else one
    printed here from the built book. A4 pages, at least one per page of the book, pages with ink
    on them, the front matter, chapters, figures and tables numbered, the footer, no machine path."""
    build_dir = _book_build()
    if not (build_dir / "source" / "quick" / "_toc.yml").is_file() or not (build_dir / "html" / "index.html").is_file():
        pytest.skip(f"no quick book built in {build_dir} (make test builds it; $PRUNEPLAST_BOOK_BUILD names another)")
    try:
        pdf.find_chromium()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    missing = [t for t in ("pdfinfo", "pdftoppm", "pdftotext") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} missing: poppler-utils is not installed (`make browser` installs it)")
    built = build_dir / "html" / pdf.PDF_NAME
    if built.is_file() and built.stat().st_mtime >= (build_dir / "html" / "index.html").stat().st_mtime:
        out = built  # printed by the book build itself (pruneplast book), after this HTML: read it
    else:
        out = pdf.build_pdf("quick", build_dir, tmp_path / "book.pdf", work_dir=tmp_path / "single")
        assert out == tmp_path / "book.pdf" and not list(tmp_path.glob(".*.tmp"))
    info = subprocess.run(["pdfinfo", str(out)], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))
    width, height = map(float, re.search(r"^Page size:\s+([\d.]+) x ([\d.]+) pts", info, re.M).groups())
    assert abs(width - 595.3) < 2 and abs(height - 841.9) < 2, f"not A4: {width} x {height} pts"
    assert pages >= len(booktools.toc_files(ROOT)), (
        f"{pages} pages for {len(booktools.toc_files(ROOT))} chapters and pages"
    )
    # pages render: the first, one in the middle and the last, each with ink on it
    from PIL import Image

    for n in (1, pages // 2, pages):
        first_last = ["-f", str(n), "-l", str(n)]
        subprocess.run(["pdftoppm", "-r", "30", "-png", *first_last, str(out), str(tmp_path / f"p{n}")], check=True)
        (png,) = tmp_path.glob(f"p{n}*.png")
        lo, hi = Image.open(png).convert("L").getextrema()
        assert hi - lo > 100, f"page {n} of the PDF is blank"
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True, check=True).stdout
    # the quick build says so on paper too (the theme's print stylesheet would hide the banner)
    assert "This is the quick build of the book" in " ".join(text.split())
    for needle in ("Abstract", "Discussion", "How to cite", "Download the results", "Figure 2.1", "Table 2.1"):
        assert needle in text, f"{needle!r} is not in the PDF"
    assert f"pruneplast {pruneplast.__version__} · commit" in text  # the build, in the footer
    assert str(ROOT) not in text and "/work/" not in text, "the PDF prints a path of this machine"
    assert b"file://" not in out.read_bytes(), "a link of the PDF points into this machine's build folder"


def test_book_command_prints_the_pdf_where_chromium_is(tmp_path, monkeypatch, capsys):
    from pruneplast import cli

    built, printed = [], []
    monkeypatch.setattr(booktools, "build_book", lambda *a, **k: built.append((a, k)) or tmp_path / "html")
    monkeypatch.setattr(pdf, "build_pdf", lambda *a, **k: printed.append(a) or tmp_path / "html" / pdf.PDF_NAME)
    argv = ["book", "--profile", "quick", "--build-dir", str(tmp_path)]
    monkeypatch.setenv(pdf.CHROMIUM_ENV, str(tmp_path / "no-chromium"))
    assert cli.main(argv) == 0 and len(built) == 1 and printed == []
    assert "no PDF of the book: the PDF is printed by headless Chromium" in capsys.readouterr().out
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    monkeypatch.setenv(pdf.CHROMIUM_ENV, str(fake))
    assert cli.main(argv) == 0 and printed == [("quick", str(tmp_path))]
    assert cli.main([*argv, "--no-pdf"]) == 0 and len(built) == 3 and len(printed) == 1
