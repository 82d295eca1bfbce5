"""Every chapter at the quick profile, checked by nbval against its committed reference.

* ``tests/reference/<chapter>.ipynb`` holds the chapter executed at the quick profile, with
  outputs kept only in cells marked ``# NBVAL_CHECK_OUTPUT`` (``make reference`` refreshes it).
  Its code cells must equal the chapter's current source plus the quick parameters, so a stale
  reference fails here instead of checking old code.
* nbval re-executes the reference (``--nbval-lax``: marked cells compared, the rest must run)
  with the outputs sanitised by ``tests/nbval_sanitize.cfg``. Under ``make test`` the quick book
  has just executed every chapter; with ``PRUNEPLAST_EXECUTED`` pointing at those notebooks, the
  marked cells are compared with nbval's own comparison and sanitisers without a second run.
* Running a chapter twice with the same parameters gives byte-identical results files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from pruneplast import build, chapters

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / build.REFERENCE_DIR
SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"
CHAPTERS = build.chapter_sources(ROOT)
IDS = [p.stem for p in CHAPTERS]

#: Chapter and small overrides for the reproducibility test (one seed, a couple of epochs): the
#: full code path of the chapter, at a fraction of the quick profile's cost.
REPRO_OVERRIDES = {
    "02_pruning_cliff": {"seeds": [3], "baseline_epochs": 2, "consolidation_epochs": 1,
                         "sweep_levels": [0.0, 0.9, 0.95]},
    "03_consolidation": {"seeds": [3], "baseline_epochs": 2, "max_epochs": 1},
    "04_regimens": {"seeds": [3], "baseline_epochs": 2, "acute_epochs": 1, "chronic_epochs": 1,
                    "chronic_cycles": [1, 2, 3], "full_epochs": 1},
}


def _reference(path: Path) -> Path:
    ref = REFERENCE / f"{path.stem}.ipynb"
    if not ref.exists():
        pytest.fail(f"no nbval reference for {path.stem}: run `make reference` and commit {ref.relative_to(ROOT)}")
    return ref


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_reference_matches_current_source(path):
    ref = nbformat.read(_reference(path), as_version=4)
    got = [c.source for c in ref.cells if c.cell_type == "code"]
    want = build.expected_reference_sources(path)
    assert got == want, (f"tests/reference/{path.stem}.ipynb is stale (its code differs from "
                         f"notebooks/{path.name}); run `make reference` and review the diff")
    checked = [c for c in ref.cells if c.cell_type == "code" and build.CHECK_MARKER in c.source]
    assert checked, f"{path.name} has no cell marked '# {build.CHECK_MARKER}' (see book/methods.md)"
    assert all(c.outputs for c in checked), "a checked cell of the reference has no output to compare"


#: ``make test`` builds the quick book first and points here to its executed notebooks, so each
#: chapter runs once: its marked cells are then compared with nbval's own comparison (same
#: sanitising, same skipped keys) instead of nbval executing the chapter a second time.
EXECUTED = os.environ.get("PRUNEPLAST_EXECUTED")


def _nbval_compare(executed, reference) -> list[str]:
    """nbval's lax-mode comparison of every marked cell; returns the failures' reports."""
    from collections import OrderedDict

    from nbval import plugin

    class Parent:
        skip_compare = ("metadata", "traceback", "prompt_number", "output_type", "name", "execution_count",
                        "application/vnd.jupyter.widget-view+json", "image/png", "image/jpeg")
        sanitize_patterns = OrderedDict(plugin.get_sanitize_patterns(SANITIZE.read_text()))

    class Cell:
        parent, colors = Parent, plugin.nocolors
        sanitize = plugin.IPyNbCell.sanitize
        compare_outputs = plugin.IPyNbCell.compare_outputs

        def format_output_compare(self, key, left, right):  # nbval's needs a pytest item: a plain diff
            import difflib

            diff = difflib.unified_diff(str(left).splitlines(), str(right).splitlines(), "reference", "this run",
                                        lineterm="")
            self.comparison_traceback.append(f"mismatch {key!r}:\n" + "\n".join(diff))

    got = [c for c in executed.cells if c.cell_type == "code"]
    want = [c for c in reference.cells if c.cell_type == "code"]
    assert [c.source for c in got] == [c.source for c in want], "executed notebook and reference differ in code"
    failures = []
    for i, (g, w) in enumerate(zip(got, want)):
        if build.CHECK_MARKER not in w.source:
            continue
        cell = Cell()
        if not cell.compare_outputs(plugin.coalesce_streams(list(g.outputs)), plugin.coalesce_streams(list(w.outputs))):
            failures.append(f"code cell {i}:\n{w.source}\n" + "\n".join(map(str, cell.comparison_traceback)))
    return failures


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_nbval_quick_profile(path, tmp_path):
    ref = _reference(path)
    executed = Path(EXECUTED or "/nonexistent") / "notebooks" / f"{path.stem}.ipynb"
    if EXECUTED and executed.exists():
        failures = _nbval_compare(nbformat.read(executed, as_version=4), nbformat.read(ref, as_version=4))
        assert not failures, f"{path.stem}: outputs differ from the reference:\n" + "\n\n".join(failures)
        return
    env = dict(os.environ, PRUNEPLAST_RESULTS=str(tmp_path / "results"), PRUNEPLAST_PROGRESS="0")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--noconftest",
           "--nbval-lax", "--nbval-current-env", "--nbval-sanitize-with", str(SANITIZE),
           "--nbval-cell-timeout", str(build.CELL_TIMEOUT["quick"]), "--rootdir", str(tmp_path), str(ref)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-80:])
    assert proc.returncode == 0, f"nbval failed for {path.stem}:\n{tail}"
    assert " passed" in proc.stdout


def _repro_chapters():
    return [p for p in CHAPTERS if p.stem in REPRO_OVERRIDES]


@pytest.mark.parametrize("path", _repro_chapters(), ids=[p.stem for p in _repro_chapters()])
def test_same_parameters_give_byte_identical_results(path, tmp_path):
    """Two runs of ``pruneplast run`` with the same parameters write byte-identical results.

    The runs execute side by side as two processes, each training from scratch (its own empty
    baseline cache) with one torch thread: the same thread count in both, so the same reductions.
    """
    exe = Path(sys.executable).with_name("pruneplast")
    args = [a for name, value in REPRO_OVERRIDES[path.stem].items() for a in ("-p", name, json.dumps(value))]
    procs = []
    for k in range(2):
        env = dict(os.environ, PRUNEPLAST_CACHE=str(tmp_path / f"cache{k}"), PRUNEPLAST_PROGRESS="0",
                   OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        cmd = [str(exe), "run", path.stem, "--profile", "quick", "--out", str(tmp_path / f"run{k}"), *args]
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True))
    for proc in procs:
        log = proc.communicate()[0]
        assert proc.returncode == 0, f"pruneplast run {path.stem} failed:\n{log[-4000:]}"
    outs = [{p.name: p.read_bytes() for p in (tmp_path / f"run{k}" / "quick").glob(f"{path.stem}.*")}
            for k in range(2)]
    assert set(outs[0]) == {f"{path.stem}.csv", f"{path.stem}.json"}, f"{path.stem} wrote {sorted(outs[0])}"
    for name in outs[0]:
        assert outs[0][name] == outs[1][name], f"{name} differs between two identical runs"


def test_registry_and_notebooks_agree():
    for path in CHAPTERS:
        assert path.stem in chapters.CHAPTERS
