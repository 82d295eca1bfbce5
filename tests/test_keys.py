"""Cache keys and page stamps cover what can change a result, and nothing else.

A copy of the package is edited file by file: an edit to the book tooling, the explorer app or the
command line leaves every cached state's key and every page's stamp as it was; an edit to an
operator changes both; an edit to the plotting changes stamps only.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pruneplast import booktools, keys
from pruneplast.config import RunConfig, TaskConfig, TrainConfig
from pruneplast.protocols import base

TINY_RUN = RunConfig(seeds=(0,), task=TaskConfig(n_train=64, n_standard=32, n_clean=16))
TINY_TRAIN = TrainConfig(epochs=0)


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A copy of the package that keys and stamps read instead of the installed one."""
    pkg = tmp_path / "pruneplast"
    shutil.copytree(keys.PACKAGE, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(keys, "PACKAGE", pkg)
    monkeypatch.setattr(booktools.stamps, "PACKAGE_DIR", pkg)
    page = tmp_path / "page.md"
    page.write_text("# A page\n")
    monkeypatch.setenv("PRUNEPLAST_CACHE", str(tmp_path / "cache"))

    def current() -> tuple[str, str, Path]:
        state = base.cache_dir() / "baselines" / f"{base.cache_key(0, TINY_RUN.task, TINY_TRAIN)}.pt"
        return keys.state_hash(), booktools.stamp(page, {"profile": "quick"}), state

    return pkg, current


def _edit(path: Path) -> None:
    path.write_text(path.read_text() + "\n# an edit\n")


@pytest.mark.parametrize(
    "tooling",
    [
        "booktools/book.py",
        "booktools/sphinxext.py",
        "booktools/webassets.py",
        "booktools/stamps.py",
        "booktools/references.py",
        "explorer/widgets.py",
        "explorer/app.py",
        "cli.py",
    ],
)
def test_an_edit_to_tooling_invalidates_no_state_and_no_stamp(package, tooling):
    pkg, current = package
    before = current()
    _edit(pkg / tooling)
    assert current() == before


def test_an_edit_to_an_operator_invalidates_states_and_stamps(package):
    pkg, current = package
    state0, stamp0, path0 = current()
    _edit(pkg / "operators.py")
    state1, stamp1, path1 = current()
    assert state1 != state0 and stamp1 != stamp0 and path1 != path0


@pytest.mark.parametrize(
    "presentation", ["plotting.py", "scorecard.py", "chapters/study_a.py", "booktools/execution.py"]
)
def test_an_edit_to_what_a_page_shows_changes_its_stamp_but_no_state(package, presentation):
    pkg, current = package
    state0, stamp0, path0 = current()
    _edit(pkg / presentation)
    state1, stamp1, path1 = current()
    assert (state1, path1) == (state0, path0) and stamp1 != stamp0


def test_every_package_file_is_classified():
    """Each file is in the engine, the presentation, the execution module or the tooling."""
    files = {p.relative_to(keys.PACKAGE).as_posix() for p in keys.package_files()}
    stamped = {p.relative_to(keys.PACKAGE).as_posix() for p in keys.stamp_files()}
    state = {p.relative_to(keys.PACKAGE).as_posix() for p in keys.state_files()}
    assert state <= stamped <= files
    assert "operators.py" in state and "kernels/layers.py" in state and "arms.py" in state
    assert "booktools/execution.py" in stamped - state and "plotting.py" in stamped - state
    assert not any(
        f in ("explorer/widgets.py", "explorer/app.py", "cli.py") or f.startswith("booktools/")
        for f in stamped - {"booktools/execution.py"}
    )
    assert "explorer/engine.py" in stamped - state
    page = {p.relative_to(keys.PACKAGE).as_posix() for p in keys.stamp_files(page="explorer")}
    assert page - stamped == {"explorer/widgets.py"}
