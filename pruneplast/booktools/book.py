"""Building the book: execute every page (stamped), stage the executed notebooks, run Jupyter Book.

The reviewed sources are jupytext MyST markdown files (``notebooks/NN_slug.md``, and notebook
pages of the front matter such as ``book/scorecard.md``). This module turns one of them into an
executed ``.ipynb`` with papermill, at a parameter *profile* (``paper`` or ``quick``, see
:mod:`pruneplast.chapters`) plus explicit overrides, and builds the HTML book from executed
notebooks only.

Staleness. Jupyter Book's own cache keys on a notebook's code cells, so an edit to the package
alone would leave old outputs in the book. Here the book is built with Jupyter Book's execution
switched off, from a staging folder holding the papermill-executed notebooks. A notebook is
re-executed unless its *stamp* matches: a SHA-256 over the notebook's text, the package
files a page depends on (:func:`pruneplast.keys.stamp_files`), the parameter values, the
profile and (for pages that are not chapters, like the scorecard and the Compute appendix)
every results file of the profile and the benchmark results (``benchmarks/*.json``); the
results files a chapter wrote must also still be there, unchanged. Anything else re-executes.

Public functions: :func:`toc_files`, :func:`execute_book`, :func:`stage_book`, :func:`build_book`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import yaml

from .. import chapters
from ..results import atomic_write, project_root, results_dir
from . import sphinxext
from ._common import NOTEBOOK_DIRS, fmt_time, jupyter_book_command, log
from .execution import execute, patched_environ
from .memory import PeakMemory
from .notebooks import is_text_notebook, parameters_for
from .outputs import OutputError, check_cache, check_writable, given_path, keep_results, replace_folder
from .stamps import file_digest, stamp, stamp_ok


# --------------------------------------------------------------------------- the book
def toc_files(root: Path | None = None) -> list[str]:
    """Every page of ``_toc.yml`` in reading order, as paths without suffix (``notebooks/02_...``)."""
    root = Path(root or project_root())
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    out: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            for key in ("root", "file"):
                if key in node and isinstance(node[key], str):
                    out.append(node[key])
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key, []) or []:
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(toc)
    return out


def _source_of(page: str, root: Path) -> Path:
    for suffix in (".md", ".ipynb"):
        p = root / f"{page}{suffix}"
        if p.exists():
            return p
    raise FileNotFoundError(f"_toc.yml lists {page!r} but neither {page}.md nor {page}.ipynb exists")


#: Where a page being executed by :func:`execute_book` finds the timings of the pages this build
#: executed before it (the Compute appendix shows them).
TIMINGS_ENV = "PRUNEPLAST_BUILD_TIMINGS"


#: Side by side, each page's kernel trains with one torch thread: two-thread steps slow down
#: many-fold when another process runs on the other core, one-thread processes do not.
SIDE_BY_SIDE_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class PageFailed(RuntimeError):
    """A page's execution failed; the message names the page and what became of its files."""

    def __init__(self, message: str, page: str):
        super().__init__(message)
        self.page = page


def execute_book(
    profile: str, build_dir: Path, root: Path | None = None, force: bool = False, jobs: int = 1
) -> list[dict]:
    """Execute every notebook page of the toc into ``build_dir/exec/<profile>``.

    A page is skipped only when its stamp matches (see the module docstring). Prints a progress
    line per page with its elapsed time. Returns one record per page, in toc order (chapters
    first). After every page the records so far are written to ``build_dir/timings-<profile>.json``
    (``"complete": false``), so a build that stops part-way keeps what it measured;
    :func:`build_book` completes the file at the end.

    ``jobs`` > 1 executes up to that many pages side by side, each in a process of its own with
    one torch thread (:data:`SIDE_BY_SIDE_ENV`): chapters as lanes free up, the longest first as
    the last build timed them (:func:`expected_seconds`; one no build timed first) (a chapter
    after those whose cached states it reuses, ``Chapter.reuses``), then the pages that read every
    results file (their stamps cover those files), side by side too; one of those that writes a
    results file changes what the others read, so they are checked again afterwards, one at a time,
    and executed again where their stamps no longer match.
    The first failure, Ctrl-C or SIGTERM stops the other pages (their kernels end and their
    results files stay as they were) and is raised.
    """
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"jobs (pages executed side by side) must be an integer >= 1; got {jobs!r}")
    root = Path(root or project_root())
    res_root = Path(os.environ.get("PRUNEPLAST_RESULTS", root / "results")).resolve()
    pages = [(page, _source_of(page, root)) for page in toc_files(root)]
    nbs = [(page, src) for page, src in pages if src.suffix == ".ipynb" or is_text_notebook(src)]
    # chapters first (in toc order), then pages that read their results (e.g. the scorecard)
    nbs.sort(key=lambda ps: ps[1].stem not in chapters.CHAPTERS)
    # every page's parameters validated (and a scheduler probed) before the first page runs
    every = {page: parameters_for(src, profile) for page, src in nbs}
    todo: list[dict[str, Any]] = [
        {
            "page": page,
            "src": str(src),
            "params": every[page],
            "profile": profile,
            "build_dir": str(build_dir),
            "root": str(root),
            "res_root": str(res_root),
            "force": force,
            "head": f"[{i}/{len(nbs)}] {page} ({profile})",
        }
        for i, (page, src) in enumerate(nbs, 1)
    ]
    records: dict[str, dict] = {}
    t_start = time.perf_counter()

    def finished(record: dict) -> None:
        records[record["page"]] = record
        done = [records[t["page"]] for t in todo if t["page"] in records]
        write_timings(build_dir, profile, done, time.perf_counter() - t_start, jobs=jobs)

    try:
        if jobs == 1:
            for task in todo:
                finished(execute_page(**task))
        else:
            # the longest chapters first (as the last build of this profile timed them), so that
            # the longest does not start last and run alone
            cost = expected_seconds(profile, Path(build_dir), root)
            # (a chapter no build timed first: it may be the longest)
            order = sorted(todo, key=lambda t: _lane_order(t, cost))
            _side_by_side(order, jobs, finished)
            # the pages that are not chapters ran side by side; one that wrote a results file changed
            # what those beside it read (their stamps cover every results file): each is checked
            # again, one at a time, until every stamp matches (none of the book's pages writes one)
            readers = [{**t, "force": False} for t in order if Path(t["src"]).stem not in chapters.CHAPTERS]
            for _ in readers:
                stale = [t for t in readers if not page_is_current(t)]
                if not stale:
                    break
                _side_by_side(stale, 1, finished, share=jobs)  # as they ran: a process each, one thread
    except PageFailed as exc:
        done = [records[t["page"]] for t in todo if t["page"] in records]
        write_timings(build_dir, profile, done, time.perf_counter() - t_start, failed_page=exc.page, jobs=jobs)
        raise
    return [records[t["page"]] for t in todo]


def _lane_order(task: dict, cost: dict[str, float]) -> tuple:
    if Path(task["src"]).stem not in chapters.CHAPTERS:
        return (1, 0.0)  # after every chapter, in toc order
    return (0, -cost.get(task["page"], float("inf")))


def expected_seconds(profile: str, build_dir: Path, root: Path) -> dict[str, float]:
    """Each page's wall time in the last build of ``profile`` that executed it: from this build
    folder's timings, else from those ``make bench`` keeps in ``benchmarks/results.json``."""
    seconds: dict[str, float] = {}
    sources = [build_dir / f"timings-{profile}.json", root / "benchmarks" / "results.json"]
    for path in reversed(sources):  # the build folder's own timings win
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        rec = rec.get("book", {}).get(profile, {}) if "book" in rec else rec
        for r in rec.get("pages", []) if isinstance(rec, dict) else []:
            if isinstance(r, dict) and r.get("executed") and isinstance(r.get("seconds"), (int, float)):
                seconds[str(r.get("page"))] = float(r["seconds"])
    return seconds


def _page_stamp(src: Path, params: dict, profile: str, build_dir: Path, root: Path, res_root: Path):
    """A page's stamp key, its executed notebook and its stamp file (see the module docstring)."""
    is_chapter = src.stem in chapters.CHAPTERS
    res_dir = results_dir(profile, res_root)
    # a page that is not a chapter (the scorecard) may read every results file of the profile
    extra = (
        []
        if is_chapter or not res_dir.is_dir()
        else sorted(p for p in res_dir.glob("*") if p.is_file() and p.stem != src.stem and not p.name.startswith("."))
    )
    # ... and the benchmark results (the Compute appendix renders them)
    bench = [] if is_chapter else sorted((root / "benchmarks").glob("*.json"))
    # ... and the tests behind the catalogue of bad inputs and faults (pruneplast/faults.py,
    # which the page of that name runs, is part of that page's stamp: pruneplast.keys)
    bench += [] if is_chapter else [f for f in (root / "tests" / "test_faults.py",) if f.exists()]
    key = stamp(src, {"profile": profile, "parameters": params}, extra, res_dir, bench, root)
    return key, res_dir


def _page_files(page: str, profile: str, build_dir: Path) -> tuple[Path, Path]:
    out = build_dir / "exec" / profile / f"{page}.ipynb"
    return out, out.with_suffix(".stamp.json")


def page_is_current(task: dict) -> bool:
    """Whether the page of an :func:`execute_book` task is up to date (its stamp matches)."""
    out, stamp_file = _page_files(task["page"], task["profile"], Path(task["build_dir"]))
    if task["force"] or not stamp_file.exists():
        return False
    key, _ = _page_stamp(
        Path(task["src"]),
        task["params"],
        task["profile"],
        Path(task["build_dir"]),
        Path(task["root"]),
        Path(task["res_root"]),
    )
    return stamp_ok(stamp_file, out, key)


def execute_page(
    page: str,
    src: str | Path,
    params: dict,
    profile: str,
    build_dir: str | Path,
    root: str | Path,
    res_root: str | Path,
    force: bool,
    head: str,
    progress: bool | None = None,
) -> dict:
    """Execute one page of the book unless its stamp matches; returns its timing record.

    Raises :class:`PageFailed` (one line: what failed and what became of the partly executed
    notebook) when the page fails; a chapter's results files are then as they were before.
    ``progress`` (default: on a terminal) shows papermill's bar per cell.
    """
    src, build_dir, root, res_root = Path(src), Path(build_dir), Path(root), Path(res_root)
    is_chapter = src.stem in chapters.CHAPTERS
    key, res_dir = _page_stamp(src, params, profile, build_dir, root, res_root)
    out, stamp_file = _page_files(page, profile, build_dir)
    if not force and stamp_ok(stamp_file, out, key):
        log(f"{head}: up to date (stamp matches), not re-executed")
        return {"page": page, "executed": False, "seconds": 0.0}
    stamp_file.unlink(missing_ok=True)
    log(f"{head}: executing ...")
    t0 = time.perf_counter()
    bar = sys.stderr.isatty() if progress is None else progress
    try:
        # on a terminal papermill shows a bar per cell; in a log, a line every two minutes;
        # a chapter's results files stay as they are until it has written their replacement
        # (the ones it does not rewrite are removed then: no stale results for the scorecard)
        with (
            keep_results(res_dir, src.stem) if is_chapter else nullcontext(),
            PeakMemory(heartbeat=None if bar else 120, label=head) as mem,
            patched_environ({TIMINGS_ENV: str(build_dir.resolve() / f"timings-{profile}.json")}),
        ):
            execute(src, out, params, results_root=res_root, progress=bar)
    except Exception as exc:
        failed = out.with_name(out.stem + ".failed.ipynb")
        kept = f"the partly executed notebook is {failed}" if failed.exists() else "no partly executed notebook"
        log(f"{head}: FAILED after {fmt_time(time.perf_counter() - t0)}; {kept}")
        what = f"{exc.ename}: {getattr(exc, 'evalue', '')}" if hasattr(exc, "ename") else f"{type(exc).__name__}: {exc}"
        message = f"executing {src} failed: {what}; the results files it had were kept ({kept})"
        raise PageFailed(message, page) from None
    dt = time.perf_counter() - t0
    written = sorted(res_dir.glob(f"{src.stem}.*")) if res_dir.is_dir() else []
    atomic_write(
        stamp_file,
        json.dumps({"stamp": key, "results": {str(p): file_digest(p) for p in written}}, indent=1) + "\n",
    )
    log(f"{head}: done in {fmt_time(dt)}, peak memory {mem.peak_mib:.0f} MiB")
    return {"page": page, "executed": True, "seconds": dt, "peak_rss_mib": mem.peak_mib}


def _side_by_side(todo: list[dict], jobs: int, finished, share: int | None = None) -> None:
    """Run :func:`execute_page` for every task, up to ``jobs`` processes at a time (see
    :func:`execute_book`), each on ``1 / share`` of the cores (default: ``1 / jobs``); calls
    ``finished(record)`` as each page ends.

    Each page process runs in a session of its own, so a Ctrl-C at the terminal reaches this
    process only; it then sends each running page one SIGINT (papermill ends the page's kernel,
    the chapter's results files are put back), waits for it and, past a minute, kills it and
    what it started. A page process whose parent dies gets the same SIGINT from Linux.
    """
    import signal
    import tempfile

    from ..parallel import CORES_ENV, usable_cores

    stems = {Path(t["src"]).stem for t in todo}
    chapter_pages = {t["page"] for t in todo if Path(t["src"]).stem in chapters.CHAPTERS}
    done: set[str] = set()
    pending = list(todo)
    running: dict[subprocess.Popen, tuple[dict, Path]] = {}
    # one torch thread a page, and the cores shared among the pages (a chapter with worker
    # processes starts one per core it is given)
    env = {**os.environ, **SIDE_BY_SIDE_ENV, CORES_ENV: str(max(1, usable_cores() // (share or jobs)))}

    def ready(task: dict) -> bool:
        stem = Path(task["src"]).stem
        if stem not in chapters.CHAPTERS:  # reads every results file, its stamp too: after the chapters
            return chapter_pages <= done
        after = [s for s in chapters.chapter(stem).reuses if s in stems]
        return all(any(Path(t["src"]).stem == s and t["page"] in done for t in todo) for s in after)

    with tempfile.TemporaryDirectory(prefix="pruneplast-pages-") as tmp:
        try:
            while pending or running:
                while len(running) < jobs:
                    task = next((t for t in pending if ready(t)), None)
                    if task is None:
                        break
                    pending.remove(task)
                    if page_is_current(task):  # no process for a page whose stamp matches
                        log(f"{task['head']}: up to date (stamp matches), not re-executed")
                        done.add(task["page"])
                        finished({"page": task["page"], "executed": False, "seconds": 0.0})
                        continue
                    record_file = Path(tmp) / f"{task['head'].split(']')[0].strip('[').replace('/', '-')}.json"
                    cmd = [sys.executable, "-c", "from pruneplast.booktools.book import page_main; page_main()"]
                    args = [json.dumps({**task, "progress": False}), str(record_file)]
                    proc = subprocess.Popen([*cmd, *args], env=env, start_new_session=True)
                    running[proc] = (task, record_file)
                if not running:
                    if not pending:
                        break
                    raise RuntimeError("no page can start: a page waits for one that is not in the book")
                time.sleep(0.2)
                failure = None
                for proc in [p for p in running if p.poll() is not None]:  # every page that ended
                    task, record_file = running.pop(proc)
                    result = json.loads(record_file.read_text(encoding="utf-8")) if record_file.exists() else {}
                    if proc.returncode != 0 or "record" not in result:
                        error = result.get("error") or f"executing {task['src']} failed (exit {proc.returncode})"
                        failure = failure or PageFailed(error, task["page"])
                    else:
                        done.add(task["page"])
                        finished(result["record"])
                if failure is not None:
                    raise failure
        except BaseException:
            _stop_pages(list(running), signal)
            raise


def _stop_pages(procs: list[subprocess.Popen], signal) -> None:
    """Stop running page processes: one SIGINT each, a minute to end, then a kill of each and of
    what it started (its kernel, its workers). A second Ctrl-C meanwhile does not cut this short."""
    import psutil

    try:
        ignored = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: signals are not ours to set
        ignored = {}
    try:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                try:
                    started = psutil.Process(proc.pid).children(recursive=True)
                except psutil.Error:
                    started = []
                for p in [proc, *started]:
                    try:
                        p.kill()
                    except (psutil.Error, OSError):
                        pass
                proc.wait()
    finally:
        for s, handler in ignored.items():
            signal.signal(s, handler)


def page_main() -> None:
    """One page of a side-by-side build, in a process of its own (``sys.argv``: the task as JSON
    and the file to write its record, or its error, to). SIGTERM, and the death of the build
    that started it, stop it as Ctrl-C does (its kernel ends, results files are put back).
    SIGINT, the build's request to stop, is heeded even where the build was started with it
    ignored (in the background of a script), which its pages would otherwise inherit."""
    import signal

    from ..parallel import die_with_parent

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupted)
    die_with_parent(signal.SIGINT)
    task, record_file = json.loads(sys.argv[1]), Path(sys.argv[2])
    result: dict[str, Any]
    try:
        result = {"record": execute_page(**task)}
    except PageFailed as exc:
        result = {"error": str(exc)}
    except KeyboardInterrupt:
        sys.exit(130)
    atomic_write(record_file, json.dumps(result))
    sys.exit(0 if "record" in result else 1)


def write_timings(
    build_dir: Path,
    profile: str,
    records: list[dict],
    execute_s: float,
    html_s: float | None = None,
    failed_page: str | None = None,
    jobs: int = 1,
) -> tuple[Path, dict]:
    """Write ``build_dir/timings-<profile>.json`` atomically; complete only once the HTML is built."""
    timings = {
        "profile": profile,
        "pages": records,
        "execute_s": execute_s,
        "html_s": html_s,
        "total_s": execute_s + (html_s or 0.0),
        "executed": sum(r["executed"] for r in records),
        "complete": html_s is not None,
        "failed_page": failed_page,
        "threads": _torch_threads() if jobs == 1 else 1,
        "jobs": jobs,
        "cpus": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "peak_rss_mib": max([r.get("peak_rss_mib", 0.0) for r in records] or [0.0]),
    }
    path = Path(build_dir) / f"timings-{profile}.json"
    atomic_write(path, json.dumps(timings, indent=1) + "\n")
    return path, timings


def stage_book(profile: str, build_dir: Path, root: Path | None = None) -> Path:
    """A fresh folder to build the book from: config, toc, front matter and executed notebooks only."""
    root = Path(root or project_root())
    stage = Path(build_dir) / "source" / profile
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(root / name, stage / name)
    for d in NOTEBOOK_DIRS:
        for f in (root / d).rglob("*"):
            rel = f.relative_to(root)
            if (
                not f.is_file()
                or f.suffix == ".ipynb"
                or ".ipynb_checkpoints" in rel.parts
                or "_build" in rel.parts
                or is_text_notebook(f)
            ):
                continue
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, stage / rel)
    _copy_mathjax(stage / "_mathjax" / "mathjax")
    from .webassets import copy_widgets_js  # ipywidgets embed bundle, served as _static/widgets/

    copy_widgets_js(stage / "_static" / "widgets")
    exec_dir = Path(build_dir) / "exec" / profile
    from .downloads import add_downloads  # each chapter's results files, linked from its last section

    res_dir = results_dir(profile, Path(os.environ.get("PRUNEPLAST_RESULTS", root / "results")).resolve())
    for page in toc_files(root):
        src = _source_of(page, root)
        if src.suffix == ".ipynb" or is_text_notebook(src):
            (stage / page).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(exec_dir / f"{page}.ipynb", stage / f"{page}.ipynb")
            if src.stem in chapters.CHAPTERS:
                add_downloads(stage / f"{page}.ipynb", src.stem, profile, res_dir, stage)
    return stage


def _copy_mathjax(dest: Path) -> None:
    """Serve MathJax from the book itself (``_config.yml`` points ``mathjax_path`` here): no CDN.

    The files come from the ``jupyter-server-mathjax`` package (MathJax 2, TeX input, HTML-CSS
    output with its web fonts); localisations and the SVG output are left out.
    """
    try:
        import jupyter_server_mathjax
    except ImportError as exc:
        raise FileNotFoundError("jupyter-server-mathjax is not installed; install the project's 'book' extra") from exc
    src = Path(jupyter_server_mathjax.__file__).parent / "static"
    skip = shutil.ignore_patterns("localization", "SVG", "__pycache__")
    shutil.copytree(src, dest, ignore=skip)


def check_book_folders(
    profile: str, build_dir: Path | str | None = None, html_dir: Path | str | None = None, root: Path | None = None
) -> tuple[Path, Path]:
    """Every folder :func:`build_book` writes, checked before any page runs (:class:`OutputError`
    naming the folder): the build folder and its ``exec/<profile>``, ``source`` and ``jb``, the
    HTML folder's parent, the results folder of the profile and the cache. Returns the absolute
    build folder and HTML folder."""
    root = Path(root or project_root())
    build_dir = check_writable(root / "_build" if build_dir is None else build_dir, "build folder (--build-dir)")
    for sub in (Path("exec") / profile, Path("source"), Path("jb")):
        check_writable(build_dir / sub, "build folder (--build-dir)")
    html = (build_dir / "html") if html_dir is None else given_path(html_dir, "HTML folder")
    if html.exists() and not html.is_dir():
        check_writable(html, "HTML folder")  # names it: exists and is not a folder
    check_writable(html.parent, "the folder of the HTML folder")
    if "PRUNEPLAST_RESULTS" in os.environ and not os.environ["PRUNEPLAST_RESULTS"].strip():
        raise OutputError("$PRUNEPLAST_RESULTS is set but empty; unset it (results then go to <project>/results)")
    res_root = Path(os.environ.get("PRUNEPLAST_RESULTS", root / "results"))
    check_writable(results_dir(profile, res_root), "results folder ($PRUNEPLAST_RESULTS/<profile>)")
    check_cache()
    return build_dir, html


def build_book(
    profile: str = "paper",
    build_dir: Path | str | None = None,
    html_dir: Path | str | None = None,
    force: bool = False,
    strict: bool = True,
    jobs: int = 1,
) -> Path:
    """Execute every notebook page (stamped), stage them and build the HTML book; returns the HTML folder.

    ``build_dir`` (default ``<project>/_build``) holds ``exec/<profile>`` (executed notebooks and
    stamps), ``source/<profile>`` (the staging folder) and ``html`` (the book). ``strict`` turns
    Sphinx warnings into errors (``-W -n --keep-going``).
    """
    root = project_root()
    build_dir, html = check_book_folders(profile, build_dir, html_dir, root)
    t0 = time.perf_counter()
    log(f"== executing the book's notebooks at profile {profile!r} ==")
    records = execute_book(profile, build_dir, root, force, jobs)
    t_exec = time.perf_counter() - t0
    stage = stage_book(profile, build_dir, root)
    log(f"== building HTML with Jupyter Book from {stage} ==")
    t1 = time.perf_counter()
    cmd = jupyter_book_command() + [
        "build",
        str(stage),
        "--path-output",
        str(build_dir / "jb"),
        "--builder",
        "html",
        "--all",
    ]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    # the book's Sphinx extension puts a banner on every page of a non-paper profile
    proc = subprocess.run(cmd, cwd=root, env={**os.environ, sphinxext.PROFILE_ENV: profile})
    if proc.returncode != 0:
        raise RuntimeError(f"Jupyter Book failed (exit {proc.returncode}); see the warnings above")
    replace_folder(build_dir / "jb" / "_build" / "html", html)  # the old book stays until the new one is whole
    t_html = time.perf_counter() - t1
    n_exec = sum(r["executed"] for r in records)
    timing_file, timings = write_timings(build_dir, profile, records, t_exec, t_html, jobs=jobs)
    log(f"== book at {html / 'index.html'} ==")
    log(
        f"   notebooks: {n_exec} executed, {len(records) - n_exec} up to date, {fmt_time(t_exec)}; "
        f"HTML: {fmt_time(t_html)}; total {fmt_time(time.perf_counter() - t0)}; "
        f"peak memory {timings['peak_rss_mib']:.0f} MiB (timings in {timing_file})"
    )
    return html


def _torch_threads() -> int | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.get_num_threads()
