"""The book and the explorer app, tested as a reader would: in a real (headless) Chromium.

* :func:`test_every_page_of_the_book` serves the built quick book from a local HTTP server on
  127.0.0.1 and opens every page twice.

  - At desktop width (1280 px), once the page has loaded, MathJax has typeset it and its requests
    have settled, it fails on JavaScript console errors, uncaught exceptions, failed requests,
    requests leaving this machine (the book must work offline), broken images, broken internal
    links (missing page or missing anchor), what a reader must not see (:func:`content_problems`,
    :func:`reader_problems`) and figures or tables without a caption or wider than the text. On
    the explorer page it drags the sparsity slider and checks that the displayed result changes,
    with no kernel. It captures the whole of every page, ``_build/screenshots/<page>.jpg``, and
    the explorer before and after the drag, ``explorer-before-slider.png`` and
    ``explorer-after-slider.png`` (the window only).
  - At phone width (390 px, a mobile viewport), once the page has loaded, MathJax has typeset it
    and its images are in, it fails on a page wider than the screen (scrolling sideways), and
    captures the whole of every page, ``_build/screenshots/phone/<page>.jpg``.

  Full pages are JPEG (quality 80, :data:`FULL_PAGE_SHOT`): text stays readable at about 60 % of
  a PNG's processor time.
* :func:`test_voila_app_recomputes` starts the explorer as a Voila app on a free local port,
  changes a widget and checks that a recomputed result appears, then stops the server.

Chromium is Debian's (``/usr/bin/chromium``, installed by ``make browser``, a prerequisite of
``make test``), driven by Playwright's Python package; Playwright's own browsers are never
downloaded. The tests skip, saying why, only where Chromium is missing or the book is not built.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from conftest import stop_process

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "_build" / "screenshots"
#: Built quick books, in order of preference (``make test`` builds the first).
BOOK_CANDIDATES = [ROOT / "_build" / "test" / "html", ROOT / "_build" / "html"]

pytestmark = pytest.mark.browser


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is missing: Chromium could not be installed here "
            "(`make browser` installs Debian's chromium with apt-get, as root)"
        )
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (test extra)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def _book_dir() -> Path:
    env = os.environ.get("PRUNEPLAST_BOOK_HTML")
    candidates = [Path(env)] if env else BOOK_CANDIDATES
    for c in candidates:
        if (c / "index.html").exists():
            return c
    pytest.skip(
        "the book is not built (no index.html in "
        + ", ".join(str(c) for c in candidates)
        + "): run `make test` (builds the quick book first) or `make book PROFILE=quick`"
    )


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output readable
        pass


@pytest.fixture(scope="module")
def book_server():
    html = _book_dir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(html)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield html, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _pages(html: Path) -> list[str]:
    """Every HTML page of the book, relative to its root (Sphinx's own assets excluded)."""
    pages = []
    for p in sorted(html.rglob("*.html")):
        rel = p.relative_to(html).as_posix()
        if rel.startswith(("_static/", "_sources/", "_images/", "mathjax/")):
            continue
        pages.append(rel)
    return pages


def _shot_name(rel: str) -> str:
    return rel.removesuffix(".html").replace("/", "__") + ".jpg"


#: A screenshot of a whole page (up to 38000 pixels tall at phone width): JPEG at this quality
#: keeps the text readable and costs about 60 % of the processor time of a PNG.
FULL_PAGE_SHOT = {"full_page": True, "type": "jpeg", "quality": 80}


def _full_page_shot(page, path: Path) -> None:
    """Capture the whole of ``page`` in ``path`` (:data:`FULL_PAGE_SHOT`); the same page's PNG of
    an earlier version of this test goes, so the folder shows no stale picture of it."""
    page.screenshot(path=str(path), **FULL_PAGE_SHOT)
    path.with_suffix(".png").unlink(missing_ok=True)


# --------------------------------------------------------------------------- page checks
class PageWatch:
    """Console errors, uncaught exceptions, failed requests and off-machine requests of a page.

    It listens from its creation until :meth:`detach`, so one page object can visit page after
    page with a new watch for each visit (see :func:`_visit`).
    """

    def __init__(self, page, allowed_host: str = "127.0.0.1"):
        self.errors: list[str] = []
        self.external: list[str] = []
        self._pending: set = set()  # requests started and not yet finished or failed

        def on_request(r):
            self._pending.add(r)
            host = urllib.parse.urlsplit(r.url).hostname
            if r.url.startswith(("http://", "https://", "ws://", "wss://")) and host != allowed_host:
                self.external.append(r.url)

        self._page = page
        self._listeners = [
            ("console", self._console),
            ("pageerror", lambda e: self.errors.append(f"uncaught: {e}")),
            (
                "requestfailed",
                lambda r: (
                    None
                    if _font_probe(r.url, r.failure)
                    else self.errors.append(f"request failed: {r.url} ({r.failure})")
                ),
            ),
            (
                "response",
                lambda r: (
                    self.errors.append(f"HTTP {r.status}: {r.url}")
                    if r.status >= 400 and not _browser_own(r.url)
                    else None
                ),
            ),
            ("request", on_request),
            ("requestfinished", lambda r: self._pending.discard(r)),
            ("requestfailed", lambda r: self._pending.discard(r)),
        ]
        for event, listener in self._listeners:
            page.on(event, listener)

    def detach(self) -> None:
        """Stop listening (what was recorded stays)."""
        for event, listener in self._listeners:
            self._page.remove_listener(event, listener)

    def _console(self, m) -> None:
        if m.type != "error":
            return
        url = (m.location or {}).get("url", "")
        if _browser_own(url) or _font_probe(url, m.text) or "font at 'about:blank'" in m.text:
            return
        self.errors.append(f"console error: {m.text}" + (f" ({url})" if url else ""))

    @property
    def in_flight(self) -> int:
        return len(self._pending)


def _font_probe(url: str, detail) -> bool:
    """MathJax 2 probing web fonts: it aborts a font download once a usable font is found, and its
    font test loads ``about:blank``. Neither is a broken page: the maths still renders (the
    screenshots show it), so these two cases, and only these, are not counted as errors."""
    path = urllib.parse.urlsplit(url).path
    if url.startswith("about:blank"):
        return True
    return "/mathjax/fonts/" in path and "ERR_ABORTED" in str(detail)


def _browser_own(url: str) -> bool:
    """Requests the browser makes by itself, not the page (the site icon, absent from the book)."""
    return urllib.parse.urlsplit(url).path.endswith("/favicon.ico")


#: The ``content`` of a page's ``<meta http-equiv="refresh">`` (the book's ``index.html`` is one), or null.
REFRESH_JS = """() => { const m = document.querySelector('meta[http-equiv="refresh" i]');
  return m ? m.content : null; }"""
#: Resolves once MathJax 2 has typeset the page and loaded the fonts it needs (its startup's
#: ``End`` signal, replayed to a hook registered later), at once on a page without MathJax.
MATHJAX_DONE_JS = """() => new Promise(done => {
  if (!window.MathJax || !window.MathJax.Hub) { done('no MathJax'); return; }
  window.MathJax.Hub.Register.StartupHook('End', () => done('typeset'));
})"""


def _visit(page, url: str, timeout_ms: int = 60000) -> None:
    """Open ``url`` in ``page`` and wait until it is the page a reader sees: loaded, a
    ``<meta http-equiv="refresh">`` followed to its target (and that loaded), MathJax done.

    ``page`` may have shown another page before: one page object (one renderer process) visiting
    every page of the book costs about a third of the processor time of a new page object per page.
    """
    page.goto(url, wait_until="load", timeout=timeout_ms)
    try:
        refresh = page.evaluate(REFRESH_JS)
    except Exception:  # the refresh navigated away while we asked: it is under way
        refresh = ""
    if refresh is not None:
        page.wait_for_url(lambda u: u != url, wait_until="load", timeout=timeout_ms)
        page.wait_for_load_state("load", timeout=timeout_ms)
    page.wait_for_function(MATHJAX_DONE_JS, timeout=timeout_ms)


def _settle(page, watch: PageWatch, quiet_ms: int = 200, timeout_ms: int = 10000) -> None:
    """Wait until none of the page's requests has been in flight for ``quiet_ms`` (at most ``timeout_ms``).

    The requests are counted by ``watch`` (started minus finished or failed). Playwright's own
    "networkidle" state is not used: Chromium never reports it on some of the book's pages although
    every request has finished, so each such page would cost the full timeout. The requests a page
    makes after its load event are MathJax's (its fonts), and :func:`_visit` has waited for
    MathJax to finish already, so a short quiet time suffices: it catches what a script still
    starts once the page is otherwise done.
    """
    end = time.monotonic() + timeout_ms / 1000
    quiet_since = None
    while time.monotonic() < end:
        if watch.in_flight:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_ms / 1000:
            return
        page.wait_for_timeout(50)


def _wait_images(page, timeout_ms: int = 15000) -> None:
    page.wait_for_function("() => Array.from(document.images).every(i => i.complete)", timeout=timeout_ms)


def _broken_images(page) -> list[str]:
    return page.evaluate("""() => Array.from(document.images)
        .filter(i => i.complete && i.naturalWidth === 0)
        .map(i => i.currentSrc || i.src || i.outerHTML.slice(0, 120))""")


_ID_RE = re.compile(r"""\b(?:id|name)\s*=\s*["']([^"']+)["']""")


@functools.cache
def _anchors_of(path: Path) -> frozenset:
    return frozenset(_ID_RE.findall(path.read_text(encoding="utf-8", errors="replace")))


def _broken_links(page, html: Path, base: str) -> list[str]:
    """Internal links whose target page is missing, or whose #fragment is not an id there."""
    hrefs = page.evaluate("() => Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
    bad = []
    for href in sorted(set(hrefs)):
        if not href.startswith(base):
            continue  # external links are not followed (the book must work offline)
        parts = urllib.parse.urlsplit(href)
        rel = urllib.parse.unquote(parts.path)[len(urllib.parse.urlsplit(base).path) :]
        target = html / rel
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            bad.append(f"{href} (no file {target.relative_to(html)})")
            continue
        if parts.fragment and target.suffix == ".html":
            frag = urllib.parse.unquote(parts.fragment)
            if frag not in _anchors_of(target):
                bad.append(f"{href} (no anchor #{frag} in {target.relative_to(html)})")
    return bad


def _visible_caption(page) -> str:
    return page.locator(".pruneplast-static-explorer .explorer-caption:visible").first.inner_text()


def _visible_image(page) -> str:
    return page.locator(".pruneplast-static-explorer img:visible").first.get_attribute("src") or ""


def _drag_slider(page, index: int, to_left: bool) -> None:
    """Drag the handle of the explorer's ``index``-th slider to the left or right end of its track."""
    slider = page.locator(".pruneplast-static-explorer .widget-slider").nth(index)
    slider.scroll_into_view_if_needed()
    handle = slider.locator(".noUi-handle").first
    track = slider.locator(".noUi-base, .noUi-target").first
    hb, tb = handle.bounding_box(), track.bounding_box()
    assert hb and tb, "the slider has no visible handle or track"
    x0, y0 = hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2
    x1 = tb["x"] + (2 if to_left else tb["width"] - 2)
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y0, steps=12)
    page.mouse.up()


def _check_explorer(page, shots: Path) -> list[str]:
    """Move the sparsity slider (and the treatment menu); the displayed result must change."""
    problems = []
    box = page.locator(".pruneplast-static-explorer")
    box.wait_for(state="visible", timeout=30000)
    page.wait_for_function(
        "() => { const i = document.querySelector('.pruneplast-static-explorer img'); "
        "return i && i.complete && i.naturalWidth > 0; }",
        timeout=30000,
    )
    before_cap, before_img = _visible_caption(page), _visible_image(page)
    readout = page.locator(".pruneplast-static-explorer .widget-slider .widget-readout").first
    r0 = readout.inner_text()
    _drag_slider(page, 0, to_left=True)
    if readout.inner_text() == r0:  # it was at the left end already
        _drag_slider(page, 0, to_left=False)
    r1 = readout.inner_text()
    if r1 == r0:
        return [f"dragging the sparsity slider did not move it (readout stayed {r0!r})"]
    try:
        page.wait_for_function(
            "(c) => { const e = Array.from(document.querySelectorAll("
            "'.pruneplast-static-explorer .explorer-caption')).find(x => x.offsetParent !== null); "
            "return e && e.innerText !== c; }",
            arg=before_cap,
            timeout=10000,
        )
    except Exception:
        problems.append(f"slider moved {r0} -> {r1} but the caption stayed {before_cap!r}")
        return problems
    after_cap, after_img = _visible_caption(page), _visible_image(page)
    if f"pruned to {r1}" not in after_cap:
        problems.append(f"slider at {r1} but the caption reads {after_cap!r}")
    if after_img == before_img:
        problems.append("the displayed figure did not change when the slider moved")
    page.screenshot(path=str(shots / "explorer-after-slider.png"), full_page=False)
    # the treatment menu switches too
    menu = page.locator(".pruneplast-static-explorer select").first
    options = menu.locator("option").all_inner_texts()
    if len(options) > 1:
        menu.select_option(label=options[-1])
        try:  # the caption names the treatment once the explorer has switched (at most 10 s)
            page.wait_for_function(
                "(t) => { const e = Array.from(document.querySelectorAll("
                "'.pruneplast-static-explorer .explorer-caption')).find(x => x.offsetParent !== null); "
                "return e && e.innerText.includes(t); }",
                arg=options[-1],
                timeout=10000,
            )
        except Exception:
            pass  # reported below with the caption it shows
        cap = _visible_caption(page)
        if options[-1] not in cap:
            problems.append(f"treatment {options[-1]!r} chosen but the caption reads {cap!r}")
    return problems


# --------------------------------------------------------------------------- test 1: the static book
QUICK_BANNER = "This is the quick build of the book"


#: Pages that quote bad input on purpose ("-p sparsity NaN"), so NaN there is the subject.
DOCUMENTS_BAD_INPUT = ("book/faults.html",)
#: Text a reader must never see, with what it means.
STRAY = (
    (r"\bNaN\b", "a NaN"),
    (r"(?<![\w.])[-\u2212]0\.0+(?![\d])", "a negative zero"),
    (r"\bdtype:", "a raw pandas Series (dtype:)"),
    (r"NBVAL|nbval", "a test marker"),
    (r"results written to|results: \S+\.csv", "a log line"),
)
#: A path of the machine that built the book (a reader's machine has none of them).
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:work|home|root|tmp|builds?|runner)/[\w./-]+")

#: The article's prose, tables and captions as a reader reads them: every text node outside code
#: (code cells, literals, keyboard input), scripts and styles.
READER_TEXT_JS = r"""() => {
  const art = document.querySelector('article.bd-article') || document.querySelector('main');
  if (!art) return '';
  const skip = 'pre, code, kbd, samp, script, style, .highlight, .cell_input, .jupyter-widgets, .widget-output';
  const walker = document.createTreeWalker(art, NodeFilter.SHOW_TEXT);
  const out = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (n.parentElement && !n.parentElement.closest(skip)) out.push(n.textContent);
  }
  return out.join(' ');
}"""
#: An identifier of the code (``biased_accuracy``, ``short_chronic``) where a reader expects words.
IDENTIFIER = re.compile(r"(?<![\w./-])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![\w(/.-])")
#: Words of that shape a reader knows as words: a processor architecture.
NOT_IDENTIFIERS = {"x86_64"}


def reader_problems(reader_text: str, page_text: str) -> list[str]:
    """Identifiers of the code in the prose, tables and captions (``reader_text``), and paths of the
    building machine anywhere on the page (``page_text``)."""
    out = []
    for m in [m for m in IDENTIFIER.finditer(reader_text) if m.group(0) not in NOT_IDENTIFIERS][:3]:
        ctx = reader_text[max(0, m.start() - 40) : m.end() + 20]
        out.append(f"identifier {m.group(0)!r} in the reader's text: ...{ctx!r}...")
    for m in list(MACHINE_PATH.finditer(page_text))[:2]:
        out.append(f"a path of the building machine: {m.group(0)!r}")
    return out


def content_problems(text: str, banner: str | None = QUICK_BANNER, check_stray: bool = True) -> list[str]:
    """What a reader must not see on a page: the banner of a non-paper build missing (``banner``
    None for the paper book), a MyST role left unrendered (``{glue:...}``, ``{numref}``), or a
    stray value (:data:`STRAY`)."""
    out = []
    if banner is not None and banner not in " ".join(text.split()):
        out.append(f"no banner saying {banner!r}")
    for raw in re.findall(r"\{(?:glue|numref|doc|ref)[^}]*\}`?[^`\s]*", text)[:3]:
        out.append(f"unrendered role in the text: {raw!r}")
    for pattern, what in STRAY if check_stray else ():
        for m in list(re.finditer(pattern, text))[:2]:
            out.append(f"{what} in the text: ...{text[max(0, m.start() - 50) : m.end() + 30]!r}...")
    return out


#: Figures and tables in a page's article that lack a number and caption, and tables wider than
#: the article (the content column); widget output (the explorer's precomputed figures) excepted.
LAYOUT_JS = r"""() => {
  const art = document.querySelector('article.bd-article') || document.querySelector('main');
  if (!art) return {missing: ['no article element'], wide: []};
  const inWidget = e => !!e.closest('.jupyter-widgets, .widget-output, .jp-OutputArea-output .widget-box, .lm-Widget');
  const missing = [], wide = [];
  art.querySelectorAll('img').forEach(img => {
    if (inWidget(img)) return;
    const fig = img.closest('figure');
    if (!fig || !fig.querySelector('.caption-number') || !img.alt || /^[0-9a-f]{16,}$/.test(img.alt))
      missing.push('figure without number, caption or alt text: ' + (img.alt || img.src).slice(0, 80));
  });
  const width = art.clientWidth;
  art.querySelectorAll('table').forEach(t => {
    if (inWidget(t) || t.closest('.highlight')) return;
    const cap = t.querySelector('caption');
    if (!cap || !(cap.querySelector('.caption-number') || /\S/.test(cap.textContent)))
      missing.push('table without number or caption: ' + t.innerText.slice(0, 60).replace(/\s+/g, ' '));
    const w = t.getBoundingClientRect().width;
    if (w > width + 1) wide.push(`table ${Math.round(w)} px wide in a ${width} px column: ` +
                                 t.innerText.slice(0, 50).replace(/\s+/g, ' '));
  });
  return {missing, wide};
}"""


def test_content_problems_finds_what_it_should():
    good = f"{QUICK_BANNER}: fewer seeds ... Chapter text 36.0%, -0.05 and [-0.01, 0.2]."
    assert content_problems(good) == []
    for bad in (
        "a NaN here",
        "drop -0.0 points",
        "drop \u22120.0 points",
        "Name: protection, dtype: float64",
        "# NBVAL_CHECK_OUTPUT",
    ):
        assert content_problems(f"{good} {bad}"), bad
    assert content_problems("Chapter text") == [f"no banner saying {QUICK_BANNER!r}"]
    assert any("unrendered" in p for p in content_problems(good + " {glue:text}`x:.1f`"))
    assert content_problems("Paper text", banner=None) == []
    assert reader_problems("The ketamine-like arm's biased accuracy is 61.2%.", "/proc/1/x and a/tmp/b") == []
    assert reader_problems("biased_accuracy 61.2", "") and reader_problems("", "see /work/main/results/x.csv")
    assert reader_problems("rows: short_chronic, long_chronic", "")
    assert reader_problems("2 threads on 2 cores (x86_64)", "") == []


@pytest.mark.slow
def test_every_page_of_the_book(browser, book_server):
    """Every page at desktop width (1280 x 900), then every page at phone width (390 x 844, a
    mobile viewport): see the module's docstring for what each pass checks and captures.

    Each pass uses one page object for all its visits (:func:`_visit`); at desktop width a new
    :class:`PageWatch` watches each visit, from before the page opens until its checks are done,
    and the page is left (for ``about:blank``) before the next watch starts, so a page's errors
    are its own.
    """
    html, base = book_server
    pages = _pages(html)
    assert "index.html" in pages and any("explorer" in p for p in pages), (
        f"the book lacks its index or the explorer page; pages: {pages}"
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    failures: dict[str, list[str]] = {}
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        for rel in pages:
            watch = PageWatch(page)
            problems: list[str] = []
            try:
                _visit(page, base + rel)
                _settle(page, watch)
                _wait_images(page)
                if "explorer" in rel:
                    page.screenshot(path=str(SCREENSHOTS / "explorer-before-slider.png"), full_page=False)
                    problems += _check_explorer(page, SCREENSHOTS)
                meta = page.locator('meta[name="pruneplast-profile"]')
                profile = meta.get_attribute("content") if meta.count() else None
                if profile is None:
                    problems.append("no pruneplast-profile meta tag (the book was not built by `pruneplast book`)")
                body = page.inner_text("body")
                problems += content_problems(
                    body,
                    None if profile == "paper" else QUICK_BANNER.replace("quick", profile or "quick"),
                    check_stray=rel not in DOCUMENTS_BAD_INPUT,
                )
                # the faults page quotes commands and parameter names as typed: only machine paths count there
                reader = "" if rel in DOCUMENTS_BAD_INPUT else page.evaluate(READER_TEXT_JS)
                problems += reader_problems(reader, body)
                layout = page.evaluate(LAYOUT_JS)
                problems += layout["missing"] + layout["wide"]
                problems += [f"broken image {s}" for s in _broken_images(page)]
                problems += [f"broken link {s}" for s in _broken_links(page, html, base)]
                _full_page_shot(page, SCREENSHOTS / _shot_name(rel))
            except Exception as exc:  # a timeout or a navigation error is a failure of this page
                problems.append(f"{type(exc).__name__}: {exc}")
            watch.detach()
            try:  # leave the page before the next watch starts: what leaving does belongs to neither
                page.goto("about:blank")
            except Exception as exc:
                problems.append(f"leaving the page: {type(exc).__name__}: {exc}")
            problems += watch.errors
            problems += [f"request leaves this machine: {u}" for u in watch.external]
            if problems:
                failures[rel] = problems
    finally:
        context.close()
    # every page at phone width too (a screenshot each, and nothing cut off without a scrollbar)
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        (SCREENSHOTS / "phone").mkdir(parents=True, exist_ok=True)
        page = phone.new_page()
        for rel in pages:
            try:
                _visit(page, base + rel)
                _wait_images(page)
                _full_page_shot(page, SCREENSHOTS / "phone" / _shot_name(rel))
                over = page.evaluate(
                    "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                if over > 2:
                    failures.setdefault(rel, []).append(f"at phone width the page scrolls sideways by {over} px")
            except Exception as exc:
                failures.setdefault(rel, []).append(f"phone width: {type(exc).__name__}: {exc}")
    finally:
        phone.close()
    assert not failures, "problems found in the browser:\n" + "\n".join(
        f"  {page}:\n" + "\n".join(f"    - {p}" for p in probs[:20]) for page, probs in failures.items()
    )


# --------------------------------------------------------------------------- test 2: the Voila app
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"voila exited with code {proc.returncode} before serving")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)  # Voila listens about 2 s after its start: poll often
    raise TimeoutError(f"voila did not listen on port {port} within {timeout:.0f} s")


@pytest.mark.slow
def test_voila_app_recomputes(browser, tmp_path):
    from pruneplast import explorer

    nb = explorer.app_notebook(tmp_path / "explorer.ipynb", profile="quick")
    port = _free_port()
    log = open(tmp_path / "voila.log", "w")
    env = dict(os.environ, PRUNEPLAST_PROGRESS="0", PRUNEPLAST_RESULTS=str(tmp_path / "results"))
    proc = subprocess.Popen(
        explorer.voila_command(nb, port),
        cwd=tmp_path,
        env=explorer.voila_environ(env),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    page = None
    try:
        _wait_port(port, proc, timeout=120)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        watch = PageWatch(page)
        page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded", timeout=600000)
        status = page.locator(".pruneplast-live-explorer .explorer-result")
        status.wait_for(state="visible", timeout=600000)
        first = status.inner_text()
        assert first.startswith("result 1:"), first
        img0 = page.locator(".pruneplast-live-explorer img").first.get_attribute("src")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        live = page.locator(".pruneplast-live-explorer")
        live.scroll_into_view_if_needed()  # Voila scrolls inside its own container, not the page
        page.screenshot(path=str(SCREENSHOTS / "voila-explorer-start.png"), full_page=False)
        # change a widget: the treatment menu (first <select> of the live explorer is the method,
        # so pick the one offering 'ketamine')
        menu = page.locator(
            ".pruneplast-live-explorer select:has(option[value='ketamine']), "
            ".pruneplast-live-explorer select:has(option:text-is('ketamine'))"
        ).first
        menu.select_option(label="ketamine")
        page.wait_for_function(
            "() => { const e = document.querySelector('.pruneplast-live-explorer .explorer-result'); "
            "return e && e.innerText.startsWith('result 2:'); }",
            timeout=300000,
        )
        second = status.inner_text()
        img1 = page.locator(".pruneplast-live-explorer img").first.get_attribute("src")
        live.scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / "voila-explorer-recomputed.png"), full_page=False)
        assert second != first
        assert img1 != img0, "the figure was not replaced after the recompute"
        caption = page.locator(".pruneplast-live-explorer").inner_text()
        assert "ketamine: gain 1.25" in caption, caption[-500:]
        # The app's own template drops the CDN stylesheets of Voila's: nothing leaves the machine.
        assert not watch.errors, watch.errors
        assert not watch.external, f"requests leave this machine: {watch.external}"
        text = page.inner_text("body")
        assert not re.findall(r"\{(?:glue|numref)[^}]*\}", text), "raw MyST roles in the app"
        assert "Grid not computed" not in text and "Precomputed results" not in text, "book-only text in the app"
        context.close()
    finally:
        stop_process(proc)
        log.close()
