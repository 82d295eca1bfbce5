"""Every chapter at the quick profile, checked by nbval against its committed reference.

* ``tests/reference/<chapter>.ipynb`` holds the chapter executed at the quick profile, with
  outputs kept only in cells marked ``# NBVAL_CHECK_OUTPUT`` (``make reference`` refreshes it).
  Its code cells must equal the chapter's current source plus the quick parameters, so a stale
  reference fails here instead of checking old code.
* nbval re-executes the reference (``--nbval-lax``: marked cells compared, the rest must run)
  with the outputs sanitised by ``tests/nbval_sanitize.cfg``.
* Running a chapter twice with the same parameters gives byte-identical results files.
"""

from __future__ import annotations

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


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_nbval_quick_profile(path, tmp_path):
    ref = _reference(path)
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
def test_same_parameters_give_byte_identical_results(path, tmp_path, monkeypatch):
    outs = []
    for k in range(2):
        # each run trains from scratch: its own empty baseline cache
        monkeypatch.setenv("PRUNEPLAST_CACHE", str(tmp_path / f"cache{k}"))
        out = build.run(path, "quick", REPRO_OVERRIDES[path.stem], tmp_path / f"run{k}", progress=False)
        assert out["results"], f"{path.stem} wrote no results"
        outs.append({p.name: p.read_bytes() for p in out["results"]})
    assert set(outs[0]) == {f"{path.stem}.csv", f"{path.stem}.json"}
    for name in outs[0]:
        assert outs[0][name] == outs[1][name], f"{name} differs between two identical runs"


def test_registry_and_notebooks_agree():
    for path in CHAPTERS:
        assert path.stem in chapters.CHAPTERS
