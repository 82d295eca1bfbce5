"""Executing one notebook with papermill, and the post-processing of its outputs.

This module (with the notebook, the engine and the parameters) decides what an executed page holds,
so it is part of every chapter's stamp (:mod:`.stamps`); the rest of the build tooling is not.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

from ._common import CELL_TIMEOUT, IOPUB_TIMEOUT
from .kernel import kernel_manager
from .notebooks import read_notebook


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


#: While a page executes, its partial notebook is saved at its start, then at most this often
#: (seconds), and at the end (also when a cell fails). Papermill's own engine saves it at the start and end of every
#: cell; each save copies, validates and serialises the whole notebook, figures included, which cost
#: about 3 s of CPU in a small chapter's run of 17 s and competes with the kernel for the cores.
SAVE_EVERY_S = 30.0


@functools.cache
def _engine_name() -> str:
    """Papermill's nbclient engine with its saves throttled to :data:`SAVE_EVERY_S`, registered once."""
    from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines

    name = "pruneplast-throttled-saves"

    class ThrottledSaves(NotebookExecutionManager):
        final = False  # the end of the run (or a failed cell): always saved
        started = False  # the first save, at the notebook's start: always made

        def save(self, **kwargs):
            due = (self.now() - self.last_save_time).total_seconds() >= SAVE_EVERY_S
            if self.final or not self.started or due:
                super().save(**kwargs)
            self.started = True

        def cell_exception(self, cell, cell_index=None, **kwargs):
            self.final = True
            super().cell_exception(cell, cell_index, **kwargs)

        def notebook_complete(self, **kwargs):
            self.final = True
            super().notebook_complete(**kwargs)

    class ThrottledEngine(NBClientEngine):
        @classmethod
        def execute_notebook(
            cls,
            nb,
            kernel_name,
            output_path=None,
            progress_bar=True,
            log_output=False,
            autosave_cell_every=30,
            **kwargs,
        ):
            nb_man = ThrottledSaves(
                nb,
                output_path=output_path,
                progress_bar=progress_bar,
                log_output=log_output,
                autosave_cell_every=autosave_cell_every,
            )
            nb_man.notebook_start()
            try:
                cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
            finally:
                nb_man.cleanup_pbar()
                nb_man.notebook_complete()
            return nb_man.nb

    papermill_engines.register(name, ThrottledEngine)
    return name


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
            manager = kernel_manager(None if kernel_log is None else Path(kernel_log))
            out = pm.execute_notebook(
                nb,
                str(partial),
                parameters=parameters,
                kernel_name="python3",
                language="python",
                progress_bar=progress,
                cwd=str(cwd or path.parent),
                execution_timeout=timeout or CELL_TIMEOUT.get(profile, CELL_TIMEOUT["paper"]),
                iopub_timeout=IOPUB_TIMEOUT,
                engine_name=_engine_name(),
                kernel_manager_class=manager,
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
