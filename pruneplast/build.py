"""Executing the chapter notebooks and building the book.

The reviewed sources are jupytext MyST markdown files (``notebooks/NN_slug.md``, and notebook
pages of the front matter such as ``book/scorecard.md``). This module turns one of them into an
executed ``.ipynb`` with papermill, at a parameter *profile* (``paper`` or ``quick``, see
:mod:`pruneplast.chapters`) plus explicit overrides, and builds the HTML book from executed
notebooks only.

Staleness. Jupyter Book's own cache keys on a notebook's code cells, so an edit to the package
alone would leave old outputs in the book. Here the book is built with Jupyter Book's execution
switched off, from a staging folder holding the papermill-executed notebooks. A notebook is
re-executed unless its *stamp* matches: a SHA-256 over the notebook's text, every file of the
``pruneplast`` package, the parameter values, the profile and (for pages that are not chapters,
like the scorecard and the Compute appendix) every results file of the profile and the benchmark
results (``benchmarks/*.json``); the results files a chapter wrote must also still be there,
unchanged. Anything else re-executes.

Public functions: :func:`find_notebook`, :func:`parameters_for`, :func:`execute`, :func:`run`,
:func:`toc_files`, :func:`build_book`, :func:`make_reference`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

from . import chapters, sphinxext
from .results import atomic_write, cache_root, project_root, results_dir

PACKAGE_DIR = Path(__file__).resolve().parent
NOTEBOOK_DIRS = ("notebooks", "book")
#: Default per-cell timeout in seconds (the paper profile trains ten replicates at full length).
CELL_TIMEOUT = {"quick": 900, "paper": 6 * 3600}


class ParameterError(ValueError):
    """A bad parameter name or value, found before anything runs."""


# --------------------------------------------------------------------------- finding notebooks
def is_text_notebook(path: Path) -> bool:
    """True for a jupytext markdown notebook (front matter naming a kernelspec)."""
    path = Path(path)
    if path.suffix != ".md" or not path.is_file():
        return False
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return False
    end = text.find("\n---", 3)
    try:
        meta = yaml.safe_load(text[3:end]) if end > 0 else None
    except yaml.YAMLError:
        return False
    return isinstance(meta, dict) and "kernelspec" in meta


def text_notebooks(root: Path | None = None) -> list[Path]:
    """Every jupytext notebook under ``notebooks/`` and ``book/``, sorted."""
    root = Path(root or project_root())
    found = []
    for d in NOTEBOOK_DIRS:
        found += [p for p in sorted((root / d).glob("*.md")) if is_text_notebook(p)]
    return found


def find_notebook(spec: str | Path, root: Path | None = None) -> Path:
    """Resolve a notebook given as a path, a file stem (``02_pruning_cliff``) or a unique prefix (``02``)."""
    root = Path(root or project_root())
    p = Path(spec)
    if p.suffix in (".md", ".ipynb") and p.is_file():
        if p.suffix == ".md" and not is_text_notebook(p):
            raise ParameterError(f"{p} is not a jupytext notebook (its front matter names no kernelspec); "
                                 "give a chapter name, a prefix such as 02, or a notebook's path")
        if p.suffix == ".ipynb":
            import nbformat

            try:
                nbformat.validate(nbformat.read(p, as_version=4))
            except Exception as exc:  # not JSON, or not a notebook
                raise ParameterError(f"{p} is not a readable Jupyter notebook ({type(exc).__name__}: "
                                     f"{str(exc).splitlines()[0][:200]})") from None
        return p.resolve()
    if p.suffix in (".md", ".ipynb") and (p.is_absolute() or os.sep in str(spec)):
        raise ParameterError(f"notebook {spec} does not exist")
    candidates = text_notebooks(root)
    exact = [c for c in candidates if c.stem == str(spec)]
    if exact:
        return exact[0]
    pref = [c for c in candidates if c.stem.startswith(str(spec))]
    if len(pref) == 1:
        return pref[0]
    names = ", ".join(c.stem for c in candidates) or "(none)"
    what = "is ambiguous" if pref else "matches no notebook"
    raise ParameterError(f"notebook {str(spec)!r} {what}; notebooks: {names}")


def read_notebook(path: Path):
    """The notebook as an ``nbformat`` node (jupytext converts markdown on the fly)."""
    import jupytext
    import nbformat

    path = Path(path)
    if path.suffix == ".ipynb":
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            cell.metadata.setdefault("tags", [])
        return nb
    nb = jupytext.read(path)
    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
    for cell in nb.cells:  # papermill expects every cell to carry a tags list
        cell.metadata.setdefault("tags", [])
    return nb


# --------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class ParamInfo:
    name: str
    kind: str
    default: Any
    quick: Any
    help: str


_NOTEBOOK_NAME = re.compile(r"""^NOTEBOOK\s*=\s*["']([\w.-]+)["']""", re.M)


def chapter_name(path: Path, nb=None) -> str | None:
    """The registered chapter a notebook is: by file name, else by its ``NOTEBOOK = "..."`` line
    (a chapter converted or copied under another name is still that chapter); None for others."""
    path = Path(path)
    if path.stem in chapters.CHAPTERS:
        return path.stem
    try:
        nb = nb if nb is not None else read_notebook(path)
    except Exception:
        return None
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            m = _NOTEBOOK_NAME.search(cell.source)
            if m and m.group(1) in chapters.CHAPTERS:
                return m.group(1)
    return None


def parameter_info(path: Path, nb=None) -> dict[str, ParamInfo]:
    """Valid parameter names of a notebook: the registry's for a chapter, else its parameters cell."""
    path = Path(path)
    name = chapter_name(path, nb)
    if name is not None:
        return {k: ParamInfo(k, p.kind, p.default, p.value("quick"), p.help)
                for k, p in chapters.chapter(name).all_params.items()}
    from papermill.inspection import _infer_parameters

    nb = nb if nb is not None else read_notebook(path)
    out = {}
    for p in _infer_parameters(nb, name="python3", language="python"):
        default = _literal(p.default)
        quick = "quick" if p.name == "profile" else default
        kind = p.inferred_type_name if p.inferred_type_name not in (None, "None") else type(default).__name__
        out[p.name] = ParamInfo(p.name, kind, default, quick, p.help or "")
    return out


def _literal(text: str) -> Any:
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def describe_parameters(info: dict[str, ParamInfo]) -> str:
    lines = []
    for p in info.values():
        q = "" if p.quick == p.default else f" (quick: {p.quick!r})"
        lines.append(f"  {p.name:<22} {p.kind:<9} default {p.default!r}{q}  {p.help}".rstrip())
    return "\n".join(lines)


def parse_value(text: str) -> Any:
    """A command-line value as a YAML literal (``0.9``, ``[0, 1]``, ``true``, ``cpu``), like ``papermill -y``.

    YAML 1.1 reads ``1e-3`` as a string; such strings that Python reads as a number become numbers.
    """
    try:
        v = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            pass
        try:
            f = float(v)
            return f if math.isfinite(f) else v
        except ValueError:
            pass
    return v


def parameters_for(path: Path, profile: str, overrides: dict | None = None, nb=None) -> dict:
    """The values papermill injects: the profile's values plus ``overrides``, all validated.

    Raises :class:`ParameterError` (a ``ValueError``) naming an unknown parameter (with the list of
    valid ones) or carrying the engine's validation message for a bad value.
    """
    path = Path(path)
    chapters.check_choice("profile", profile, chapters.PROFILES)
    overrides = dict(overrides or {})
    info = parameter_info(path, nb)
    unknown = [k for k in overrides if k not in info]
    if unknown:
        raise ParameterError(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} for "
            f"{path.stem}; valid parameters (name, type, default):\n{describe_parameters(info)}")
    if "profile" in overrides and overrides["profile"] != profile:
        raise ParameterError(f"use --profile to choose the profile (got -p profile {overrides['profile']!r})")
    name = chapter_name(path, nb)
    if name is not None:
        values = chapters.profile_values(name, profile)
        values.update(overrides)
        try:
            values = chapters.validate(name, values)
        except ValueError as exc:
            raise ParameterError(str(exc)) from None
        return values
    values = {k: p.quick if profile == "quick" else p.default for k, p in info.items()}
    if "profile" in info:
        values["profile"] = profile
    values.update(overrides)
    return values


# --------------------------------------------------------------------------- execution
def _env_for_kernel(results_root: Path | None) -> dict:
    """Environment changes for the kernel (papermill's kernel inherits ``os.environ``)."""
    env = {"PRUNEPLAST_PROGRESS": os.environ.get("PRUNEPLAST_PROGRESS", "0")}
    if results_root is not None:
        env["PRUNEPLAST_RESULTS"] = str(Path(results_root).resolve())
    return env


class _patched_environ:
    def __init__(self, changes: dict):
        self.changes, self.saved = changes, {}

    def __enter__(self):
        for k, v in self.changes.items():
            self.saved[k] = os.environ.get(k)
            os.environ[k] = v

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _logged_kernel_manager(log: Path):
    """A kernel manager whose kernel writes its own stdout and stderr to ``log``.

    The kernel's console output (its start-up warnings, and the tracebacks it prints when a
    Ctrl-C reaches it) then stays out of the terminal; cell outputs and errors reach papermill as
    usual.
    """
    from jupyter_client.manager import AsyncKernelManager

    class LoggedKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd, **kw):
            with open(log, "ab") as fh:  # the kernel process keeps its own copy of the descriptor
                kw["stdout"] = kw["stderr"] = fh
                return await super()._async_launch_kernel(kernel_cmd, **kw)

    return LoggedKernelManager


def execute(path: Path, output: Path, parameters: dict, results_root: Path | None = None,
            timeout: int | None = None, progress: bool = False, cwd: Path | None = None,
            kernel_log: Path | None = None):
    """Execute notebook ``path`` with papermill into ``output`` (an ``.ipynb``); returns the node.

    The executed notebook appears at ``output`` only on success (written as ``*.partial.ipynb`` and
    renamed); on failure it is kept as ``<stem>.failed.ipynb`` beside it for inspection and the
    papermill error propagates. ``results_root`` sets ``PRUNEPLAST_RESULTS`` for the kernel.
    """
    import papermill as pm

    path, output = Path(path), Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f"{output.stem}.{os.getpid()}.partial.ipynb")  # one per process: concurrent runs never share it
    failed = output.with_name(output.stem + ".failed.ipynb")
    for p in (partial, failed):
        p.unlink(missing_ok=True)
    nb = read_notebook(path)
    profile = parameters.get("profile", "quick")
    with _patched_environ(_env_for_kernel(results_root)):
        try:
            extra = {} if kernel_log is None else {"kernel_manager_class": _logged_kernel_manager(Path(kernel_log))}
            out = pm.execute_notebook(
                nb, str(partial), parameters=parameters, kernel_name="python3", language="python",
                progress_bar=progress, cwd=str(cwd or path.parent),
                execution_timeout=timeout or CELL_TIMEOUT.get(profile, CELL_TIMEOUT["paper"]), **extra)
        except BaseException:
            if partial.exists():
                if _readable_notebook(partial):
                    os.replace(partial, failed)
                else:  # cut short (a full disk, a kill during a write): not worth keeping
                    partial.unlink(missing_ok=True)
            raise
    _tag_injected(out)
    _plain_glue_numbers(out)
    import nbformat

    nbformat.write(out, str(partial))
    os.replace(partial, output)
    return out


def _readable_notebook(path: Path) -> bool:
    import nbformat

    try:
        nbformat.read(path, as_version=4)
        return True
    except Exception:
        return False


def _tag_injected(nb) -> None:
    """Collapse papermill's injected-parameters cell in the book (its source stays one click away)."""
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and "hide-input" not in tags:
            tags.append("hide-input")


_NUMPY_REPR = re.compile(r"^np\.(?:float|int|uint|bool|complex)\w*\((.*)\)$", re.S)


def _plain_glue_numbers(nb) -> None:
    """Glued numpy scalars as plain numbers (``np.float64(97.8)`` -> ``97.8``).

    NumPy 2 reprs its scalars with the type name, which myst-nb's ``{glue:text}`var:.1f``` cannot
    format; chapters glue values straight from pandas, so the executed notebook is normalised here.
    """
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if "scrapbook" not in o.get("metadata", {}):
                continue
            for key, val in o.get("data", {}).items():
                if key.endswith("text/plain") and isinstance(val, str):
                    m = _NUMPY_REPR.match(val.strip())
                    if m:
                        o["data"][key] = m.group(1)


def run(spec: str | Path, profile: str = "quick", overrides: dict | None = None,
        out: Path | str | None = None, progress: bool | None = None) -> dict:
    """Validate, then execute one notebook; returns paths of the executed notebook and results.

    The executed ``<stem>.ipynb`` goes to ``out`` (default ``runs/<stem>-<profile>``) and results to
    ``out/<profile>/<stem>.csv`` and ``.json``.
    """
    root = project_root()
    path = find_notebook(spec, root)
    nb = read_notebook(path)
    params = parameters_for(path, profile, overrides, nb)  # fails here, before any execution
    out = Path(out) if out is not None else root / "runs" / f"{path.stem}-{profile}"
    out = out.resolve()
    check_writable(out, "output folder (--out)")
    check_writable(cache_root(), "cache folder ($PRUNEPLAST_CACHE)")
    ipynb = out / f"{path.stem}.ipynb"
    t0 = time.perf_counter()
    log = out / f"{path.stem}.kernel.log"
    with run_lock(out), scratch_dir() as tmp:
        log.unlink(missing_ok=True)
        with _patched_environ({"TMPDIR": str(tmp)}):  # the kernel's temporary files, removed below
            execute(path, ipynb, params, results_root=out, kernel_log=log,
                    progress=sys.stderr.isatty() if progress is None else progress)
        log.unlink(missing_ok=True)  # kept only when the run failed
    res = results_dir(profile, out)
    files = sorted(res.glob(f"{path.stem}.*")) if res.is_dir() else []
    return {"notebook": ipynb, "results": files, "parameters": params, "seconds": time.perf_counter() - t0}


class OutputError(RuntimeError):
    """An output or cache folder that cannot be used, found before anything runs."""


def check_writable(folder: Path, what: str) -> Path:
    """Create ``folder`` if needed and prove that a file can be written there; else :class:`OutputError`."""
    import tempfile

    folder = Path(folder)
    try:
        if folder.exists() and not folder.is_dir():
            raise OutputError(f"{what} {folder} exists and is not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".pruneplast-write-test-"):
            pass
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(f"{what} {folder} cannot be written ({exc.strerror or exc}); "
                          "choose another folder or fix its permissions") from None
    return folder


class run_lock:
    """An exclusive lock on an output folder for one ``pruneplast run`` (released when the process ends)."""

    NAME = ".pruneplast-run.lock"

    def __init__(self, folder: Path):
        self.path = Path(folder) / self.NAME
        self.fh = None

    def __enter__(self):
        import fcntl

        self.fh = open(self.path, "a+")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.fh.seek(0)
            who = self.fh.read().strip() or "another process"
            self.fh.close()
            raise OutputError(f"output folder {self.path.parent} is in use by another pruneplast run "
                              f"({who}); wait for it to finish or choose another --out") from None
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(f"pid {os.getpid()}\n")
        self.fh.flush()
        return self

    def __exit__(self, *exc):
        try:
            self.fh.seek(0)
            self.fh.truncate()
        finally:
            self.fh.close()  # closing releases the lock; the empty file stays (removing it would race)


class scratch_dir:
    """A temporary folder for one run, removed when the run ends, however it ends (also on SIGTERM)."""

    def __enter__(self) -> Path:
        import tempfile

        self.path = Path(tempfile.mkdtemp(prefix="pruneplast-run-"))
        return self.path

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)


# --------------------------------------------------------------------------- stamps
def _hash_files(h, files: Iterable[Path], base: Path) -> None:
    for f in sorted(files):
        h.update(f.relative_to(base).as_posix().encode())
        h.update(b"\0")
        h.update(f.read_bytes())
        h.update(b"\0")


def package_files() -> list[Path]:
    """Every file of the installed ``pruneplast`` package (sources, data, style), no byte code."""
    return [p for p in PACKAGE_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts
            and p.suffix not in (".pyc", ".pyo")]


def stamp(path: Path, parameters: dict, extra_files: Iterable[Path] = (), extra_base: Path | None = None,
          project_files: Iterable[Path] = (), project_base: Path | None = None) -> str:
    """SHA-256 of the notebook text, the package's files, the parameters, ``extra_files`` (results,
    named relative to ``extra_base``) and ``project_files`` (relative to ``project_base``)."""
    h = hashlib.sha256()
    h.update(Path(path).read_bytes())
    _hash_files(h, package_files(), PACKAGE_DIR)
    h.update(json.dumps(parameters, sort_keys=True, default=str).encode())
    for files, base in ((list(extra_files), extra_base), (list(project_files), project_base)):
        h.update(b"\1")
        if files:
            _hash_files(h, files, base or Path(os.path.commonpath(files)))
    return h.hexdigest()


def _file_digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


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


def _log(msg: str) -> None:
    print(msg, flush=True)


def _fmt_time(s: float) -> str:
    return f"{s:.1f} s" if s < 120 else f"{int(s // 60)} min {s % 60:04.1f} s"


class PeakMemory:
    """Peak resident memory (MiB) of this process and all its descendants (the kernel) while active.

    Sampled every ``interval`` seconds in a thread with psutil; the sum over the process tree, so a
    kernel and whatever it starts are counted together.
    """

    def __init__(self, interval: float = 0.25, heartbeat: float | None = None, label: str = ""):
        self.interval = interval
        self.peak_mib = 0.0
        self.heartbeat, self.label = heartbeat, label  # a "still running" line every ``heartbeat`` s

    def _sample(self) -> None:
        import psutil

        me = psutil.Process()
        t0 = last = time.perf_counter()
        while not self._stop.wait(self.interval):
            total = 0
            for proc in [me] + me.children(recursive=True):
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    pass
            self.peak_mib = max(self.peak_mib, total / 2**20)
            now = time.perf_counter()
            if self.heartbeat and now - last >= self.heartbeat:
                last = now
                _log(f"{self.label}: still running, {_fmt_time(now - t0)} so far, "
                     f"{total / 2**20:.0f} MiB in use")

    def __enter__(self):
        import threading

        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        return False


def execute_book(profile: str, build_dir: Path, root: Path | None = None, force: bool = False) -> list[dict]:
    """Execute every notebook page of the toc, in order, into ``build_dir/exec/<profile>``.

    A page is skipped only when its stamp matches (see the module docstring). Prints a progress
    line per page with its elapsed time. Returns one record per page. After every page the records
    so far are written to ``build_dir/timings-<profile>.json`` (``"complete": false``), so a build
    that stops part-way keeps what it measured; :func:`build_book` completes the file at the end.
    """
    root = Path(root or project_root())
    exec_dir = Path(build_dir) / "exec" / profile
    res_root = Path(os.environ.get("PRUNEPLAST_RESULTS", root / "results")).resolve()
    pages = [(page, _source_of(page, root)) for page in toc_files(root)]
    nbs = [(page, src) for page, src in pages if src.suffix == ".ipynb" or is_text_notebook(src)]
    # chapters first (in toc order), then pages that read their results (e.g. the scorecard)
    nbs.sort(key=lambda ps: ps[1].stem not in chapters.CHAPTERS)
    records: list[dict] = []
    t_start = time.perf_counter()
    for i, (page, src) in enumerate(nbs, 1):
        is_chapter = src.stem in chapters.CHAPTERS
        params = parameters_for(src, profile)
        res_dir = results_dir(profile, res_root)
        # a page that is not a chapter (the scorecard) may read every results file of the profile
        extra = [] if is_chapter or not res_dir.is_dir() else sorted(
            p for p in res_dir.glob("*") if p.is_file() and p.stem != src.stem and not p.name.startswith("."))
        # ... and the benchmark results (the Compute appendix renders them)
        bench = [] if is_chapter else sorted((root / "benchmarks").glob("*.json"))
        # ... and the catalogue of bad inputs and faults (the page of that name runs it)
        bench += [] if is_chapter else [f for f in (root / "tests" / "faults.py", root / "tests" / "test_faults.py")
                                         if f.exists()]
        key = stamp(src, {"profile": profile, "parameters": params}, extra, res_dir, bench, root)
        out = exec_dir / f"{page}.ipynb"
        stamp_file = out.with_suffix(".stamp.json")
        head = f"[{i}/{len(nbs)}] {page} ({profile})"
        if not force and _stamp_ok(stamp_file, out, key):
            _log(f"{head}: up to date (stamp matches), not re-executed")
            records.append({"page": page, "executed": False, "seconds": 0.0})
            continue
        stamp_file.unlink(missing_ok=True)
        if is_chapter:  # no stale results may survive a re-execution (the scorecard reads them)
            for suffix in (".csv", ".json"):
                (res_dir / f"{src.stem}{suffix}").unlink(missing_ok=True)
        _log(f"{head}: executing ...")
        t0 = time.perf_counter()
        try:
            # on a terminal papermill shows a bar per cell; in a log, a line every two minutes
            with PeakMemory(heartbeat=None if sys.stderr.isatty() else 120, label=head) as mem:
                execute(src, out, params, results_root=res_root, progress=sys.stderr.isatty())
        except Exception as exc:
            _log(f"{head}: FAILED after {_fmt_time(time.perf_counter() - t0)}; the partly executed "
                 f"notebook is {out.with_name(out.stem + '.failed.ipynb')}")
            write_timings(build_dir, profile, records, time.perf_counter() - t_start, failed_page=page)
            raise RuntimeError(f"executing {src} failed: {exc}") from exc
        dt = time.perf_counter() - t0
        written = sorted(res_dir.glob(f"{src.stem}.*")) if res_dir.is_dir() else []
        stamp_file.write_text(json.dumps({"stamp": key, "results": {str(p): _file_digest(p) for p in written}},
                                         indent=1) + "\n", encoding="utf-8")
        _log(f"{head}: done in {_fmt_time(dt)}, peak memory {mem.peak_mib:.0f} MiB")
        records.append({"page": page, "executed": True, "seconds": dt, "peak_rss_mib": mem.peak_mib})
        write_timings(build_dir, profile, records, time.perf_counter() - t_start)
    return records


def write_timings(build_dir: Path, profile: str, records: list[dict], execute_s: float,
                  html_s: float | None = None, failed_page: str | None = None) -> tuple[Path, dict]:
    """Write ``build_dir/timings-<profile>.json`` atomically; complete only once the HTML is built."""
    timings = {"profile": profile, "pages": records, "execute_s": execute_s, "html_s": html_s,
               "total_s": execute_s + (html_s or 0.0), "executed": sum(r["executed"] for r in records),
               "complete": html_s is not None, "failed_page": failed_page, "threads": _torch_threads(),
               "cpus": os.cpu_count(), "load_average_at_end": os.getloadavg(),
               "peak_rss_mib": max([r.get("peak_rss_mib", 0.0) for r in records] or [0.0])}
    path = Path(build_dir) / f"timings-{profile}.json"
    atomic_write(path, json.dumps(timings, indent=1) + "\n")
    return path, timings


def _stamp_ok(stamp_file: Path, out: Path, key: str) -> bool:
    if not (stamp_file.exists() and out.exists()):
        return False
    try:
        rec = json.loads(stamp_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if rec.get("stamp") != key:
        return False
    for f, digest in rec.get("results", {}).items():
        if not Path(f).exists() or _file_digest(Path(f)) != digest:
            return False
    return True


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
            if not f.is_file() or f.suffix == ".ipynb" or ".ipynb_checkpoints" in rel.parts or \
                    "_build" in rel.parts or is_text_notebook(f):
                continue
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, stage / rel)
    _copy_mathjax(stage / "_mathjax" / "mathjax")
    from .webassets import copy_widgets_js  # ipywidgets embed bundle, served as _static/widgets/

    copy_widgets_js(stage / "_static" / "widgets")
    exec_dir = Path(build_dir) / "exec" / profile
    for page in toc_files(root):
        src = _source_of(page, root)
        if src.suffix == ".ipynb" or is_text_notebook(src):
            (stage / page).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(exec_dir / f"{page}.ipynb", stage / f"{page}.ipynb")
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


def jupyter_book_command() -> list[str]:
    exe = Path(sys.executable).with_name("jupyter-book")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("jupyter-book")
    if found:
        return [found]
    raise FileNotFoundError("jupyter-book is not installed; install the project with its 'book' extra")


def build_book(profile: str = "paper", build_dir: Path | str | None = None, html_dir: Path | str | None = None,
               force: bool = False, strict: bool = True) -> Path:
    """Execute every notebook page (stamped), stage them and build the HTML book; returns the HTML folder.

    ``build_dir`` (default ``<project>/_build``) holds ``exec/<profile>`` (executed notebooks and
    stamps), ``source/<profile>`` (the staging folder) and ``html`` (the book). ``strict`` turns
    Sphinx warnings into errors (``-W -n --keep-going``).
    """
    root = project_root()
    build_dir = Path(build_dir or root / "_build").resolve()
    t0 = time.perf_counter()
    _log(f"== executing the book's notebooks at profile {profile!r} ==")
    records = execute_book(profile, build_dir, root, force)
    t_exec = time.perf_counter() - t0
    stage = stage_book(profile, build_dir, root)
    _log(f"== building HTML with Jupyter Book from {stage} ==")
    t1 = time.perf_counter()
    cmd = jupyter_book_command() + ["build", str(stage), "--path-output", str(build_dir / "jb"),
                                    "--builder", "html", "--all"]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    # the book's Sphinx extension puts a banner on every page of a non-paper profile
    proc = subprocess.run(cmd, cwd=root, env={**os.environ, sphinxext.PROFILE_ENV: profile})
    if proc.returncode != 0:
        raise RuntimeError(f"Jupyter Book failed (exit {proc.returncode}); see the warnings above")
    html = Path(html_dir).resolve() if html_dir else build_dir / "html"
    if html.exists():
        shutil.rmtree(html)
    shutil.copytree(build_dir / "jb" / "_build" / "html", html)
    t_html = time.perf_counter() - t1
    n_exec = sum(r["executed"] for r in records)
    timing_file, timings = write_timings(build_dir, profile, records, t_exec, t_html)
    _log(f"== book at {html / 'index.html'} ==")
    _log(f"   notebooks: {n_exec} executed, {len(records) - n_exec} up to date, {_fmt_time(t_exec)}; "
         f"HTML: {_fmt_time(t_html)}; total {_fmt_time(time.perf_counter() - t0)}; "
         f"peak memory {timings['peak_rss_mib']:.0f} MiB (timings in {timing_file})")
    return html


def _torch_threads() -> int | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.get_num_threads()


# --------------------------------------------------------------------------- notebook-check references
REFERENCE_DIR = "tests/reference"


def chapter_sources(root: Path | None = None) -> list[Path]:
    """Registered chapters whose notebook exists, in registry order."""
    root = Path(root or project_root())
    return [root / "notebooks" / f"{name}.md" for name in chapters.CHAPTERS
            if (root / "notebooks" / f"{name}.md").exists()]


def reference_path(path: Path, root: Path | None = None) -> Path:
    return Path(root or project_root()) / REFERENCE_DIR / f"{Path(path).stem}.yaml"


def reference_text(path: Path, nb) -> str:
    """The reference file of an executed chapter: its quick parameters and its checked quantities."""
    from . import checks, machine

    found = checks.collect(nb)
    if not found:
        raise RuntimeError(f"{Path(path).stem} shows no checked table (pruneplast.checks.show); see book/methods.md")
    params = parameters_for(path, "quick")
    doc = {"chapter": Path(path).stem, "profile": "quick", "parameters": params, "checks": found}
    m = machine.facts()
    header = (f"Notebook checks of {Path(path).stem} at the quick profile (`make reference` rewrites this file).\n"
              "Each quantity: its value in this reference and the tolerance (same unit) that a fresh run must\n"
              "agree within; tol 0 = exact, tol null = text compared exactly. Written on: "
              f"{m['cpu_model']}, torch {m['torch_version']} ({m['torch_cpu_capability']}, {m['blas']}).")
    return checks.dump(doc, header)


def read_reference(path: Path, root: Path | None = None) -> dict:
    """A chapter's reference as a dict; a clear error when missing or unreadable."""
    from . import checks

    ref = reference_path(path, root)
    if not ref.exists():
        raise FileNotFoundError(f"no notebook-check reference for {Path(path).stem}: run `make reference` and commit {ref}")
    try:
        doc = checks.load(ref.read_text(encoding="utf-8"))
    except Exception as exc:
        raise RuntimeError(f"{ref} is not a readable reference ({exc}); run `make reference`") from None
    for k in ("chapter", "parameters", "checks"):
        if k not in doc:
            raise RuntimeError(f"{ref} has no {k!r} entry; run `make reference`")
    return doc


def check_against_reference(path: Path, nb, root: Path | None = None) -> list[str]:
    """Every failure of an executed chapter's checks against its reference (empty: it passes)."""
    from . import checks

    doc = read_reference(path, root)
    failures = []
    want = json.loads(json.dumps(parameters_for(path, "quick"), default=str))
    if json.loads(json.dumps(doc["parameters"], default=str)) != want:
        failures.append(f"the reference of {Path(path).stem} was made with other quick parameters "
                        f"({doc['parameters']} vs {want}); run `make reference`")
    return failures + checks.compare(doc["checks"], checks.collect(nb))


def make_reference(names: Iterable[str] | None = None, root: Path | None = None,
                   executed: Path | str | None = None) -> list[Path]:
    """Execute chapters at the quick profile and write ``tests/reference/<stem>.yaml``.

    executed: a folder of chapters already executed at the quick profile (``<stem>.ipynb``, e.g.
        ``_build/test/exec/quick/notebooks`` after ``make test``) to take the checks from instead.
    """
    import tempfile

    import nbformat

    root = Path(root or project_root())
    sources = chapter_sources(root)
    if names:
        sources = [find_notebook(n, root) for n in names]
    written = []
    with tempfile.TemporaryDirectory(prefix="pruneplast-ref-") as tmp:
        for i, src in enumerate(sources, 1):
            _log(f"[{i}/{len(sources)}] reference for {src.stem} (quick) ...")
            t0 = time.perf_counter()
            done = Path(executed) / f"{src.stem}.ipynb" if executed is not None else None
            if done is not None:
                if not done.exists():
                    raise FileNotFoundError(f"no executed notebook {done}")
                nb = nbformat.read(done, as_version=4)
                injected = [c for c in nb.cells if "injected-parameters" in c.get("metadata", {}).get("tags", [])]
                want = parameters_for(src, "quick")
                got: dict = {}
                if injected:
                    exec(compile(injected[0].source, str(done), "exec"), {}, got)  # literals papermill wrote
                if json.dumps(got, sort_keys=True, default=str) != json.dumps(want, sort_keys=True, default=str):
                    raise RuntimeError(f"{done} was not executed with the quick parameters of {src.stem}")
            else:
                nb = None
            try:
                if nb is None:
                    nb = execute(src, Path(tmp) / f"{src.stem}.ipynb", parameters_for(src, "quick"),
                                 results_root=Path(tmp))
            except Exception as exc:
                kept = root / "_build" / "reference-failed" / f"{src.stem}.failed.ipynb"
                kept.parent.mkdir(parents=True, exist_ok=True)
                failed = Path(tmp) / f"{src.stem}.failed.ipynb"
                if failed.exists():
                    shutil.copy2(failed, kept)
                what = f"{exc.ename}: {exc.evalue}" if hasattr(exc, "ename") else f"{type(exc).__name__}: {exc}"
                raise RuntimeError(f"{src.stem} failed at the quick profile ({what}); the partly executed "
                                   f"notebook is {kept}") from None
            target = reference_path(src, root)
            atomic_write(target, reference_text(src, nb))
            written.append(target)
            from . import checks

            n = sum(len(c["quantities"]) for c in checks.collect(nb).values())
            _log(f"    {target}: {len(checks.collect(nb))} check(s), {n} quantities, "
                 f"{_fmt_time(time.perf_counter() - t0)}")
    return written
