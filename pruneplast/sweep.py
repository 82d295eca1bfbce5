"""Parameter sweeps of a chapter, run as tasks on Dask distributed (``pruneplast sweep``).

A sweep runs one chapter (or any notebook page with a parameters cell) once per cell of a grid of
parameter values, each cell a validated papermill execution that writes its own tidy results,
and merges them into one table with the grid's parameters as columns.

* **Where it runs.** With no scheduler address, on a ``LocalCluster`` of this machine: one
  single-threaded worker process per core, listening on 127.0.0.1 only. With an address
  (``tcp://host:8786``), on that cluster: the same code on a laptop, an HPC queue (dask-jobqueue)
  or Kubernetes; every worker needs this package installed and the same project files.
* **Validated first.** Every cell's values are checked against the chapter's parameters (names,
  types, the engine's ranges) before any task is submitted.
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

    @property
    def id(self) -> str:
        return self.folder.name

    @property
    def done_file(self) -> Path:
        return self.folder / "done.json"

    def done(self) -> bool:
        return self.done_file.is_file()


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
    from . import build

    path = build.find_notebook(spec)
    nb = build.read_notebook(path)
    cells = []
    for overrides in grid_cells(grid, fixed):
        try:
            build.parameters_for(path, profile, overrides, nb)
        except build.ParameterError as exc:
            raise ValueError(f"grid cell {overrides}: {exc}") from None
        cells.append(Cell(overrides, Path(out).resolve() / "cells" / cell_id(overrides)))
    return path, cells


def run_cell(path: str, profile: str, overrides: dict, folder: str) -> dict:
    """Execute one cell (on a worker): the notebook with ``overrides`` into ``folder``, then mark
    it done. Returns the cell's record. Run again after a lost worker, it starts afresh."""
    from . import build

    folder_p = Path(folder)
    # each attempt writes into its own folder: a retry after a lost worker never shares one with
    # an orphaned kernel of the lost attempt; done.json names the attempt that finished
    attempt = folder_p / f"attempt-{os.getpid()}-{time.time_ns()}"
    t0 = time.perf_counter()
    out = build.run(path, profile, overrides, attempt, progress=False)
    record = {
        "overrides": overrides,
        "profile": profile,
        "notebook": Path(path).stem,
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
        return Client(scheduler, timeout="30s"), None
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
    path, cells = plan(spec, grid, profile, out, fixed)
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    todo = [c for c in cells if not c.done()]
    failed: list[dict] = []
    if todo:
        from dask.distributed import as_completed

        client, cluster = _client(scheduler, workers)
        try:
            futures = {
                client.submit(
                    run_cell, str(path), profile, c.overrides, str(c.folder), key=f"cell-{c.id}", pure=False, retries=2
                ): c
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
        if not c.done():
            continue
        csv = c.folder / json.loads(c.done_file.read_text())["attempt"] / profile / f"{stem}.csv"
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
