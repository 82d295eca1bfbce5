"""Parameter sweeps of a chapter, run as tasks on Dask distributed (``pruneplast sweep``).

A sweep runs one chapter (or any notebook page with a parameters cell) once per cell of a grid of
parameter values, each cell a validated papermill execution that writes its own tidy results,
and merges them into one table with the grid's parameters as columns.

* **Where it runs.** With no scheduler address, on a ``LocalCluster`` of this machine: one
  single-threaded worker process per core, listening on 127.0.0.1 only. With an address
  (``tcp://host:8786``), on that cluster: the same code on a laptop, an HPC queue (dask-jobqueue)
  or Kubernetes; every worker needs this package installed and the same project files.
* **Validated first.** The fixed values, then every grid value on its own (for a message naming
  it), then every cell (for the checks of several values together) are checked against the
  chapter's parameters (names, types, the engine's ranges) before any task is submitted; a name
  given both fixed and as a grid, or a grid value given twice, is refused. A cell's task carries
  its checked values (:class:`pruneplast.booktools.Request`): a worker executes them as they are.
* **One sweep per folder.** A sweep holds its output folder's lock (the one ``pruneplast run``
  takes) from planning to the merged table; a second sweep into the same folder is refused.
* **Resumable.** A cell's results go to ``OUT/cells/<id>/`` and the cell is marked done, with an
  atomic write, only when its execution finished; a rerun skips done cells. A cell whose worker
  dies is run again by the scheduler on another worker (tasks are retried), and since a cell
  writes into its own folder and is merged once, no cell is lost or counted twice.
* **Failures.** A failed cell is reported with its parameters and does not stop the others; the
  sweep ends with exit status 1 and the merged table of the cells that finished.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from .progress import progress_bar
from .results import atomic_write

#: Only cells of at most this many are run (a typo in a grid must not launch a month of work).
MAX_CELLS = 10_000


@dataclass(frozen=True)
class Cell:
    """One grid point: the parameter overrides and the folder its execution writes to."""

    overrides: dict
    folder: Path
    profile: str | None = None  # the sweep's profile; a record of another profile is not this cell's
    #: the notebook and every value it runs with, checked when the sweep was planned
    #: (:class:`pruneplast.booktools.Request`); its execution takes them as they are
    request: Any = None

    @property
    def id(self) -> str:
        return self.folder.name

    @property
    def done_file(self) -> Path:
        return self.folder / "done.json"

    def done(self) -> bool:
        """Whether the cell finished: its ``done.json`` is present and is a record of this cell."""
        return self.record() is not None

    def record(self) -> dict | None:
        """The cell's ``done.json``, checked against what it must be; None when there is none.

        A record that is not JSON, not of the expected structure, of another cell or naming an
        attempt folder that is not there is reported (one warning naming the file) and moved
        aside to ``done.json.damaged``, so the cell runs again: its results are recomputed in a
        fresh attempt folder, and the merged table takes only attempts that a valid record names.
        """
        f = self.done_file
        if not f.is_file():
            return None
        try:
            rec = json.loads(f.read_text(encoding="utf-8"))
            problem = _record_problem(rec, self)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            problem = f"not readable JSON ({type(exc).__name__}: {str(exc)[:120]})"
        if problem is None:
            return rec
        print(f"warning: sweep record {f} is {problem}; running the cell again", file=sys.stderr, flush=True)
        try:
            os.replace(f, f.with_name(f.name + ".damaged"))
        except OSError:
            pass
        return None


def _plain(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _record_problem(rec: Any, cell: Cell) -> str | None:
    """What is wrong with a cell's ``done.json`` record, or None (see :meth:`Cell.record`)."""
    if not isinstance(rec, dict):
        return f"not a cell record (a JSON {type(rec).__name__}, not an object)"
    missing = [k for k in ("overrides", "profile", "attempt", "results") if k not in rec]
    if missing:
        return f"not a cell record (no {', '.join(missing)})"
    attempt = rec["attempt"]
    if not isinstance(attempt, str) or not attempt.startswith("attempt-") or Path(attempt).name != attempt:
        return f"not a cell record (attempt {attempt!r} is not an attempt folder's name)"
    if not isinstance(rec["results"], list) or not all(isinstance(r, str) for r in rec["results"]):
        return "not a cell record (results is not a list of file names)"
    if _plain(rec["overrides"]) != _plain(cell.overrides):
        return f"the record of other parameters ({rec['overrides']}, not {cell.overrides})"
    if cell.profile is not None and rec["profile"] != cell.profile:
        return f"the record of profile {rec['profile']!r}, not {cell.profile!r}"
    if not (cell.folder / attempt).is_dir():
        return f"the record of an attempt folder that is not there ({cell.folder / attempt})"
    for name in rec["results"]:
        f = cell.folder / attempt / name
        if not f.is_file():
            return f"the record of a results file that is not there ({f})"
        if f.suffix == ".csv":
            try:
                pd.read_csv(f)
            except Exception as exc:  # every way a damaged CSV fails
                return f"the record of a damaged results file ({f}: {type(exc).__name__})"
    return None


def cell_id(overrides: dict) -> str:
    """A short stable name of a grid point (hash of its overrides)."""
    text = json.dumps(overrides, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def grid_cells(grid: dict[str, Sequence[Any]], fixed: dict | None = None) -> list[dict]:
    """Every combination of the grid's values (first name varying slowest), plus ``fixed``."""
    if not grid:
        raise ValueError("a sweep needs at least one grid parameter (-g NAME VALUES)")
    for name, values in grid.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
            raise ValueError(f"grid values of {name!r} must be a non-empty list (like [0.9, 0.95]); got {values!r}")
        if len({json.dumps(v, sort_keys=True, default=str) for v in values}) != len(values):
            raise ValueError(f"grid values of {name!r} repeat a value: {list(values)}")
    names = list(grid)
    n = 1
    for v in grid.values():
        n *= len(v)
    if n > MAX_CELLS:
        raise ValueError(f"the grid has {n} cells; a sweep runs at most {MAX_CELLS}")
    return [{**dict(fixed or {}), **dict(zip(names, combo))} for combo in itertools.product(*grid.values())]


def plan(
    spec: str | Path, grid: dict[str, Sequence[Any]], profile: str, out: Path | str, fixed: dict | None = None
) -> tuple[Path, list[Cell]]:
    """The notebook and the cells of a sweep, every cell validated (``ValueError`` naming the
    parameter and its allowed range before anything runs)."""
    from . import booktools, chapters

    path = booktools.find_notebook(spec)
    # a chapter's parameters come from the registry: its notebook is read (jupytext) only to run it
    nb = None if path.stem in chapters.CHAPTERS else booktools.read_notebook(path)
    fixed = dict(fixed or {})
    both = [k for k in grid if k in fixed]
    if both:
        raise ValueError(
            f"parameter {both[0]!r} is given both fixed (-p) and as a grid (-g); give it once: "
            f"-g {both[0]} [...] to sweep it, -p {both[0]} VALUE to fix it"
        )
    try:
        booktools.parameters_for(path, profile, fixed, nb)
    except booktools.ParameterError as exc:
        raise ValueError(f"fixed parameters (-p): {exc}") from None
    grid_cells(grid)  # the grid's shape: lists, no repeats, not too many cells
    for name, values in grid.items():  # each value on its own, as `pruneplast run -p NAME VALUE` checks it
        seen: dict[str, Any] = {}
        for i, value in enumerate(values):
            try:
                checked = booktools.parameters_for(path, profile, {**fixed, name: value}, nb).get(name, value)
            except booktools.ParameterError as exc:
                raise ValueError(f"grid value {name}[{i}] = {value!r} (-g {name}): {exc}") from None
            key = _plain(checked)
            if key in seen:
                raise ValueError(f"grid values of {name!r} repeat a value: {seen[key]!r} and {value!r} are the same")
            seen[key] = value
    cells = []
    for overrides in grid_cells(grid, fixed):
        try:
            params = booktools.parameters_for(path, profile, overrides, nb)
        except booktools.ParameterError as exc:
            raise ValueError(f"grid cell {overrides}: {exc}") from None
        request = booktools.Request(path, profile, overrides, params)
        cells.append(Cell(overrides, Path(out).resolve() / "cells" / cell_id(overrides), profile, request))
    return path, cells


def run_cell(request, folder: str) -> dict:
    """Execute one cell (on a worker): the notebook with the values of ``request`` (checked when the
    sweep was planned) into ``folder``, then mark it done. Returns the cell's record. Run again
    after a lost worker, it starts afresh."""
    from . import booktools

    folder_p = Path(folder)
    # each attempt writes into its own folder: a retry after a lost worker never shares one with
    # an orphaned kernel of the lost attempt; done.json names the attempt that finished
    attempt = folder_p / f"attempt-{os.getpid()}-{time.time_ns()}"
    t0 = time.perf_counter()
    folders = booktools.check_run_outputs(request.path, request.profile, attempt)
    out = booktools.run(request, folders, progress=False)
    record = {
        "overrides": request.overrides,
        "profile": request.profile,
        "notebook": request.path.stem,
        "attempt": attempt.name,
        "results": [str(Path(p).relative_to(attempt)) for p in out.get("results", [])],
        "seconds": time.perf_counter() - t0,
        "worker_pid": os.getpid(),
    }
    atomic_write(folder_p / "done.json", json.dumps(record, indent=1, default=str) + "\n")
    return record


def _client(scheduler: str | None, workers: int | None):
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout="30s"), None
        except OSError as exc:
            raise RuntimeError(f"could not reach the Dask scheduler at {scheduler!r} within 30 s: {exc}") from None
    n = workers or os.cpu_count() or 1
    import logging

    # every process and the dashboard on 127.0.0.1 only (the dashboard on a free port)
    cluster = LocalCluster(
        n_workers=n,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        silence_logs=logging.ERROR,
    )
    return Client(cluster), cluster


def run(
    spec: str | Path,
    grid: dict[str, Sequence[Any]],
    profile: str = "quick",
    out: Path | str = "sweeps",
    scheduler: str | None = None,
    workers: int | None = None,
    fixed: dict | None = None,
    progress: bool | None = None,
) -> dict:
    """Run a sweep and merge it; returns a summary (cells, skipped, failed, the merged table's path).

    ``scheduler``: a Dask scheduler address, or None for a LocalCluster of ``workers`` single-
    threaded processes (default one per core) on 127.0.0.1.
    """
    from . import booktools
    from .config import check_scheduler

    check_scheduler("--scheduler", scheduler or "", probe=False)  # its form; whether it answers: below
    out = booktools.given_path(out, "output folder (--out)")
    path, cells = plan(spec, grid, profile, out, fixed)
    out = booktools.check_writable(out, "output folder (--out)")
    with sweep_lock(out):
        # every other place the sweep writes, and its scheduler, before any cell starts
        booktools.check_writable(out / "cells", "the sweep's cells folder (<out>/cells)")
        booktools.check_cache()
        check_scheduler("--scheduler", scheduler or "")
        return _run_locked(path, grid, profile, out, cells, scheduler, workers, progress)


class sweep_lock:
    """The output folder's lock (:class:`pruneplast.booktools.run_lock`) for one sweep: a second sweep,
    or a ``pruneplast run``, into the same folder is refused while this one runs."""

    def __init__(self, folder: Path):
        from . import booktools

        self.lock = booktools.run_lock(folder)

    def __enter__(self):
        from . import booktools

        try:
            self.lock.__enter__()
        except booktools.OutputError as exc:
            message = str(exc).replace("another pruneplast run", "another pruneplast sweep or run")
            raise booktools.OutputError(message) from None
        return self

    def __exit__(self, *exc):
        self.lock.__exit__(*exc)


def _run_locked(
    path: Path,
    grid: dict[str, Sequence[Any]],
    profile: str,
    out: Path,
    cells: list[Cell],
    scheduler: str | None,
    workers: int | None,
    progress: bool | None,
) -> dict:
    todo = [c for c in cells if not c.done()]
    failed: list[dict] = []
    if todo:
        from dask.distributed import as_completed

        client, cluster = _client(scheduler, workers)
        try:
            futures = {
                client.submit(run_cell, c.request, str(c.folder), key=f"cell-{c.id}", pure=False, retries=2): c
                for c in todo
            }
            bar = progress_bar(total=len(todo), desc=f"sweep {path.stem}", enabled=progress, unit="cell")
            try:
                for fut in as_completed(futures):
                    c = futures[fut]
                    try:
                        fut.result()
                    except Exception as exc:  # the cell's own error, reported with its parameters
                        failed.append({"overrides": c.overrides, "error": f"{type(exc).__name__}: {exc}"[:2000]})
                        print(f"cell {c.overrides} failed: {type(exc).__name__}: {str(exc)[:300]}", flush=True)
                    bar.update(1)
            finally:
                bar.close()
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    table = merge(path.stem, profile, cells, out)
    summary = {
        "notebook": path.stem,
        "profile": profile,
        "grid": {k: list(v) for k, v in grid.items()},
        "cells": len(cells),
        "run": len(todo) - len(failed),
        "skipped": len(cells) - len(todo),
        "failed": failed,
        "table": str(table) if table is not None else None,
    }
    atomic_write(out / "sweep.json", json.dumps(summary, indent=1, default=str) + "\n")
    return summary


def merge(stem: str, profile: str, cells: Sequence[Cell], out: Path) -> Path | None:
    """One tidy table of every done cell's results, the grid parameters as columns (atomic)."""
    frames = []
    for c in cells:
        rec = c.record()
        if rec is None:
            continue
        csv = c.folder / rec["attempt"] / profile / f"{stem}.csv"
        if not csv.is_file():
            continue
        df = pd.read_csv(csv)
        for name, value in c.overrides.items():
            df[name] = json.dumps(value) if isinstance(value, (list, dict)) else value
        df["cell"] = c.id
        frames.append(df)
    if not frames:
        return None
    table = out / f"{stem}-sweep.csv"
    atomic_write(table, pd.concat(frames, ignore_index=True).to_csv(index=False))
    return table
