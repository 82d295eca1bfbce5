"""Executing one notebook with papermill, and the post-processing of its outputs.

This module (with the notebook, the engine and the parameters) decides what an executed page holds,
so it is part of every chapter's stamp (:mod:`.stamps`); the rest of the build tooling is not.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from pathlib import Path

from ..results import cache_root, project_root, results_dir
from ._common import CELL_TIMEOUT
from .notebooks import find_notebook, parameters_for, read_notebook


# --------------------------------------------------------------------------- execution
def _env_for_kernel(results_root: Path | None) -> dict:
    """Environment changes for the kernel (papermill's kernel inherits ``os.environ``)."""
    env = {"PRUNEPLAST_PROGRESS": os.environ.get("PRUNEPLAST_PROGRESS", "0")}
    if results_root is not None:
        env["PRUNEPLAST_RESULTS"] = str(Path(results_root).resolve())
    return env


class patched_environ:
    def __init__(self, changes: dict):
        self.changes: dict = changes
        self.saved: dict = {}

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


def execute(
    path: Path,
    output: Path,
    parameters: dict,
    results_root: Path | None = None,
    timeout: int | None = None,
    progress: bool = False,
    cwd: Path | None = None,
    kernel_log: Path | None = None,
):
    """Execute notebook ``path`` with papermill into ``output`` (an ``.ipynb``); returns the node.

    The executed notebook appears at ``output`` only on success (written as ``*.partial.ipynb`` and
    renamed); on failure it is kept as ``<stem>.failed.ipynb`` beside it for inspection and the
    papermill error propagates. ``results_root`` sets ``PRUNEPLAST_RESULTS`` for the kernel.
    """
    import papermill as pm

    path, output = Path(path), Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(
        f"{output.stem}.{os.getpid()}.partial.ipynb"
    )  # one per process: concurrent runs never share it
    failed = output.with_name(output.stem + ".failed.ipynb")
    for p in (partial, failed):
        p.unlink(missing_ok=True)
    nb = read_notebook(path)
    profile = parameters.get("profile", "quick")
    with patched_environ(_env_for_kernel(results_root)):
        try:
            extra = {} if kernel_log is None else {"kernel_manager_class": _logged_kernel_manager(Path(kernel_log))}
            out = pm.execute_notebook(
                nb,
                str(partial),
                parameters=parameters,
                kernel_name="python3",
                language="python",
                progress_bar=progress,
                cwd=str(cwd or path.parent),
                execution_timeout=timeout or CELL_TIMEOUT.get(profile, CELL_TIMEOUT["paper"]),
                **extra,
            )
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


#: The first line of the parameters cell papermill injects, as the book shows it.
INJECTED_HEAD = "# The parameters this page was built with"
#: The first line added to a notebook's own parameters cell (its defaults) in the book.
DEFAULTS_HEAD = "# The notebook's defaults (the studies' values); the cell below holds those this build used"


def _tag_injected(nb) -> None:
    """How an executed notebook's code reads in the book.

    * The parameters this page was built with (papermill's injected cell) are shown, under a line
      that says so; the notebook's own parameters cell (the defaults) is collapsed beneath a line
      saying that it holds defaults, so the values in view are the ones used.
    * Every other code cell is collapsed (``hide-input``) unless the notebook removes or hides it
      already: the page reads as text, tables and figures, with the code one click away.
    """
    injected = any("injected-parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells)
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if "injected-parameters" in tags:
            if "hide-input" in tags:
                tags.remove("hide-input")
            lines = cell["source"].split("\n")
            if lines and lines[0].strip() in ("# Parameters", INJECTED_HEAD):
                lines = lines[1:]
            cell["source"] = "\n".join([INJECTED_HEAD, *lines])
        elif "parameters" in tags:
            if injected:
                if not cell["source"].startswith(DEFAULTS_HEAD):
                    cell["source"] = DEFAULTS_HEAD + "\n" + cell["source"]
                if "hide-input" not in tags:
                    tags.append("hide-input")
        elif not any(t.startswith(("remove-", "hide-")) for t in tags):
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


def run(
    spec: str | Path,
    profile: str = "quick",
    overrides: dict | None = None,
    out: Path | str | None = None,
    progress: bool | None = None,
) -> dict:
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
        with patched_environ({"TMPDIR": str(tmp)}):  # the kernel's temporary files, removed below
            execute(
                path,
                ipynb,
                params,
                results_root=out,
                kernel_log=log,
                progress=sys.stderr.isatty() if progress is None else progress,
            )
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
        raise OutputError(
            f"{what} {folder} cannot be written ({exc.strerror or exc}); choose another folder or fix its permissions"
        ) from None
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
            raise OutputError(
                f"output folder {self.path.parent} is in use by another pruneplast run "
                f"({who}); wait for it to finish or choose another --out"
            ) from None
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
