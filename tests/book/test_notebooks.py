"""Every chapter at the quick profile, checked against its committed reference.

* ``tests/reference/<chapter>.yaml`` holds the chapter's checked quantities at the quick profile:
  each key table a chapter shows with :func:`pruneplast.checks.show`, number by number, with the
  tolerance the chapter states for it (``make reference`` rewrites the files). Counts and
  configuration are compared exactly, accuracies within their stated points, so the checks hold
  on another CPU (whose float kernels give other trained weights from the same seeds) and still
  fail for a broken operator (``tests/book/test_float_paths.py``).
* Under ``make test`` the quick book has just executed every chapter; ``PRUNEPLAST_EXECUTED``
  points at those notebooks and they are compared without a second run. Without it, each chapter
  is executed here first.
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

from pruneplast import booktools, chapters

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = booktools.chapter_sources(ROOT)
IDS = [p.stem for p in CHAPTERS]

#: Chapter and small overrides for the reproducibility test (one seed, a couple of epochs): the
#: full code path of the chapter, at a fraction of the quick profile's cost.
REPRO_OVERRIDES = {
    "02_pruning_cliff": {
        "seeds": [3],
        "baseline_epochs": 2,
        "consolidation_epochs": 1,
        "sweep_levels": [0.0, 0.9, 0.95],
        "data_sets": "both",  # both: the data-set section
        "hidden": [128, 128, 64],  # the studies' depth; the kernels are chosen by density, not width
    },
    # the atlas's choices changed: the chapter runs (and reproduces) under any of them
    "03_consolidation": {
        "seeds": [3],
        "baseline_epochs": 2,
        "max_epochs": 1,
        "hidden": [64, 32],
        "task_sigma": 1.2,
        "prune_scope": "global",
        "lr_factor": 2.0,
        "regrow_init_std": 0.1,
    },
    "04_regimens": {
        "seeds": [3],
        "baseline_epochs": 2,
        "acute_epochs": 1,
        "chronic_epochs": 1,
        "chronic_cycles": [1, 2, 3],
        "full_epochs": 1,
        "hidden": [128, 64, 64, 32],
    },
}

#: ``make test`` builds the quick book first and points here to its executed notebooks.
EXECUTED = os.environ.get("PRUNEPLAST_EXECUTED")


def executed_chapter(path: Path, tmp_path: Path):
    """The chapter executed at the quick profile: the quick book's, or executed here."""
    done = Path(EXECUTED or "/nonexistent") / "notebooks" / f"{path.stem}.ipynb"
    if EXECUTED and done.exists():
        return nbformat.read(done, as_version=4)
    return booktools.execute(
        path,
        tmp_path / f"{path.stem}.ipynb",
        booktools.parameters_for(path, "quick"),
        results_root=tmp_path / "results",
        cwd=path.parent,
    )


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_reference_is_current_and_states_tolerances(path):
    doc = booktools.read_reference(path, ROOT)
    assert doc["chapter"] == path.stem and doc["profile"] == "quick"
    want = json.loads(json.dumps(booktools.parameters_for(path, "quick"), default=str))
    assert doc["parameters"] == want, f"tests/reference/{path.stem}.yaml is stale; run `make reference`"
    assert doc["checks"], f"{path.name} shows no checked table"
    for name, c in doc["checks"].items():
        for key, q in c["quantities"].items():
            assert set(q) == {"value", "tol"}, f"{name} | {key}: {q}"
            assert q["tol"] is None or q["tol"] >= 0, f"{name} | {key}: negative tolerance"


@pytest.mark.slow
@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_quick_profile_matches_reference(path, tmp_path):
    nb = executed_chapter(path, tmp_path)
    failures = booktools.check_against_reference(path, nb, ROOT)
    assert not failures, f"{path.stem}: checks differ from tests/reference/{path.stem}.yaml:\n" + "\n".join(failures)


def _repro_chapters():
    return [p for p in CHAPTERS if p.stem in REPRO_OVERRIDES]


@pytest.mark.slow
@pytest.mark.parametrize("path", _repro_chapters(), ids=[p.stem for p in _repro_chapters()])
def test_same_parameters_give_byte_identical_results(path, tmp_path):
    """Two runs of ``pruneplast run`` with the same parameters write byte-identical results.

    The runs execute side by side as two processes, each training from scratch (its own empty
    baseline cache) with one torch thread: the same thread count in both, so the same reductions.
    Each runs the chapter's every section at :data:`REPRO_OVERRIDES` (one seed, an epoch or two,
    narrower hidden layers): what could make two runs differ (random streams, the order of
    reductions, the kernels chosen by each layer's density, worker processes, the results
    writer) is the same code at any width and length, so the small run proves what a quick
    run would.
    """
    exe = Path(sys.executable).with_name("pruneplast")
    args = [a for name, value in REPRO_OVERRIDES[path.stem].items() for a in ("-p", name, json.dumps(value))]
    procs = []
    for k in range(2):
        env = dict(
            os.environ,
            PRUNEPLAST_CACHE=str(tmp_path / f"cache{k}"),
            PRUNEPLAST_PROGRESS="0",
            OMP_NUM_THREADS="1",
            MKL_NUM_THREADS="1",
        )
        cmd = [str(exe), "run", path.stem, "--profile", "quick", "--out", str(tmp_path / f"run{k}"), *args]
        procs.append(
            subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        )
    for proc in procs:
        log = proc.communicate()[0]
        assert proc.returncode == 0, f"pruneplast run {path.stem} failed:\n{log[-4000:]}"
    outs = [{p.name: p.read_bytes() for p in (tmp_path / f"run{k}" / "quick").glob(f"{path.stem}.*")} for k in range(2)]
    assert set(outs[0]) == {f"{path.stem}.csv", f"{path.stem}.json"}, f"{path.stem} wrote {sorted(outs[0])}"
    for name in outs[0]:
        assert outs[0][name] == outs[1][name], f"{name} differs between two identical runs"


def test_registry_and_notebooks_agree():
    for path in CHAPTERS:
        assert path.stem in chapters.CHAPTERS
