"""`pruneplast sweep`: a chapter's grid as tasks on Dask distributed, local and through a scheduler.

The cells run a tiny notebook page (a parameters cell, a pause, one results file) so that the
scheduling is what is tested: a LocalCluster of worker processes on 127.0.0.1, and a scheduler and
two workers started as separate processes (``dask scheduler`` / ``dask worker``), one of which is
killed mid-sweep. Resuming, merging and validation before submission are checked on the way.
"""

from __future__ import annotations

import json
import os
import signal
import textwrap
import threading
import time

import pandas as pd
import pytest
from conftest import MYST_HEADER, start_dask_cluster, stop_process

from pruneplast import sweep

PAGE = MYST_HEADER + textwrap.dedent("""\
    # A tiny page

    ```{code-cell} ipython3
    :tags: [parameters]

    profile = "quick"
    sparsity = 0.95
    seeds = [0, 1]
    pause = 0.0
    ```

    ```{code-cell} ipython3
    import time

    import pandas as pd
    from pruneplast.results import save_results

    time.sleep(pause)
    df = pd.DataFrame({"experiment": "t", "condition": "c", "seed": seeds, "metric": "m",
                       "value": [sparsity * (s + 1) for s in seeds]})
    save_results(df, "tiny_sweep", profile, {"sparsity": sparsity, "seeds": seeds})
    ```
    """)
GRID = {"sparsity": [0.5, 0.9], "seeds": [[0], [0, 1]]}


@pytest.fixture
def page(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNEPLAST_CACHE", str(tmp_path / "cache"))
    p = tmp_path / "tiny_sweep.md"
    p.write_text(PAGE)
    return p


def _table_ok(summary: dict, cells: int) -> pd.DataFrame:
    df = pd.read_csv(summary["table"])
    assert summary["cells"] == cells and not summary["failed"]
    assert set(df.columns) >= {"sparsity", "seeds", "cell", "seed", "value"}
    assert len(df) == 2 * (1 + 2)  # two sparsities x (one seed + two seeds)
    assert not df.duplicated(["cell", "seed"]).any()
    got = df.set_index(["sparsity", "seeds", "seed"])["value"]
    assert got.loc[(0.9, "[0, 1]", 1)] == pytest.approx(1.8)
    return df


@pytest.mark.slow
def test_a_grid_on_a_local_cluster_merges_and_resumes(page, tmp_path):
    out = tmp_path / "sweep"
    first = sweep.run(page, GRID, "quick", out, workers=2, progress=False)
    assert first["run"] == 4 and first["skipped"] == 0
    _table_ok(first, 4)
    again = sweep.run(page, GRID, "quick", out, workers=2, progress=False)
    assert again["run"] == 0 and again["skipped"] == 4  # resumable: nothing recomputed
    _table_ok(again, 4)
    assert json.loads((out / "sweep.json").read_text())["skipped"] == 4


def test_a_cell_is_executed_with_the_values_checked_when_it_was_planned(tmp_path, monkeypatch):
    from pruneplast import booktools, chapters

    path, cells = sweep.plan("02", {"sparsity": [0.9, 0.95]}, "quick", tmp_path, fixed={"seeds": [3]})
    assert [c.request.values["sparsity"] for c in cells] == [0.9, 0.95]
    for c in cells:
        assert c.request.path == path and c.request.profile == "quick" and c.request.overrides == c.overrides
        assert c.request.values == chapters.validate(
            path.stem, {**chapters.profile_values(path.stem, "quick"), **c.overrides}
        )
    executed: list = []

    def run(request, folders, progress=None):
        executed.append(request)
        assert folders.out.is_dir() and folders.results.is_dir()  # the attempt's folders, checked before
        return {"results": []}

    monkeypatch.setattr(booktools, "run", run)
    monkeypatch.setattr(chapters, "validate", lambda *a: pytest.fail("a worker checked the values again"))
    record = sweep.run_cell(cells[1].request, str(cells[1].folder))
    assert executed == [cells[1].request] and record["overrides"] == {"seeds": [3], "sparsity": 0.95}
    assert cells[1].done()


def test_a_bad_grid_value_fails_before_any_task():
    with pytest.raises(ValueError, match="sparsity"):
        sweep.plan("01_model_and_task", {"sparsity": [0.5, 1.5]}, "quick", "/nonexistent/never-written")
    with pytest.raises(ValueError, match="non-empty list"):
        sweep.grid_cells({"sparsity": []})
    with pytest.raises(ValueError, match="repeat"):
        sweep.grid_cells({"sparsity": [0.5, 0.5]})


def test_the_cli_refuses_a_grid_that_is_not_a_list(capsys):
    from pruneplast import cli

    assert cli.main(["sweep", "01_model_and_task", "-g", "sparsity", "0.9"]) == 2
    assert "YAML list" in capsys.readouterr().err


@pytest.mark.slow
def test_a_separately_started_scheduler_survives_a_killed_worker(page, tmp_path):
    """A worker (and its kernel) killed while cells run: the sweep still finishes every cell, the
    lost one run again on the other worker.

    The worker is killed as soon as two cells' attempt folders exist, which a cell writes before
    its kernel starts: each worker runs one cell at a time, so both are then in a cell, and the
    killed one's lasts at least its kernel's start-up after its folder appeared (a kernel process
    and its imports: far longer than the 50 ms within which the kill comes). The cells' pause,
    0.2 s (a fixed value), adds to that; a longer one would only make each of the cells the
    surviving worker runs one after the other take longer.
    """
    address, procs = start_dask_cluster(tmp_path, workers=2)
    try:
        out = tmp_path / "sweep"
        grid = {**GRID}
        result: dict = {}
        thread = threading.Thread(
            target=lambda: result.update(
                sweep.run(page, grid, "quick", out, scheduler=address, fixed={"pause": 0.2}, progress=False)
            )
        )
        thread.start()
        # kill one worker (and its kernel) once both workers are in a cell
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(list(out.glob("cells/*/attempt-*"))) < 2 and thread.is_alive():
            time.sleep(0.05)
        assert len(list(out.glob("cells/*/attempt-*"))) >= 2, "the two workers did not both start a cell"
        os.killpg(procs[1].pid, signal.SIGKILL)
        thread.join(timeout=300)
        assert not thread.is_alive(), "the sweep did not finish after a worker was killed"
        df = _table_ok(result, 4)
        assert df["cell"].nunique() == 4
        attempts = [len(list(c.glob("attempt-*"))) for c in (out / "cells").iterdir()]
        assert sorted(attempts) == [1, 1, 1, 2]  # the killed worker's cell, and only it, ran again
    finally:
        for p in procs:
            stop_process(p)
