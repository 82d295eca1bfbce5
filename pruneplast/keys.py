"""What can change a result, and therefore what the cache keys and the page stamps hash.

Two keys depend on the package's own files:

* a cached **state** (a trained baseline, the treated networks) is keyed on its configuration and
  :func:`state_hash`: the engine (configuration, arms, data, model, kernels, operators, stress
  tests, random streams, protocols);
* an executed **page** is stamped (:mod:`pruneplast.booktools.stamps`) with :func:`stamp_files`: the
  engine plus what turns results into a page's tables and figures (plotting, checks, verdicts,
  scorecard, the studies' numbers, the chapters' parameters) and the module that executes a page
  and post-processes its outputs (:mod:`pruneplast.booktools.execution`).

The rest of the build tooling (discovery, orchestration, stamps, memory profile, references, web
assets, the Sphinx hook), the explorer app and the command line decide how a book is built or a
result is shown live, never what a state or a page holds: an edit there invalidates nothing.
Tested in ``tests/test_keys.py``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable

PACKAGE = Path(__file__).resolve().parent
#: Never part of a key (paths relative to the package; a folder covers everything in it).
TOOLING = (
    "booktools",
    "explorer/widgets.py",
    "explorer/app.py",
    "explorer/__main__.py",
    "cli.py",
    "progress.py",
    "sweep.py",
    "atlas",
    "faults.py",
)
#: The part of the tooling that decides what an executed page holds: part of every stamp.
EXECUTION = ("booktools/execution.py",)
#: Modules that one page alone shows or runs, so part of that page's stamp only (page name -> files):
#: the explorer's widgets, the catalogue of faults, and the robustness atlas (its compact protocol
#: composes the engine's protocols; the states it caches are keyed by theirs, so it is no part of
#: a state's key).
PAGE_FILES = {
    "explorer": ("explorer/widgets.py",),
    "07_robustness_atlas": ("atlas",),
    "discussion": ("atlas",),
    "faults": ("faults.py",),  # the catalogue of bad inputs and faults, which that page runs
}
#: Changes a page's tables and figures, never a cached state: in stamps, not in state keys (the
#: explorer computes its states afresh in memory; its baselines come from the engine's cache).
PRESENTATION = ("plotting.py", "pruneplast.mplstyle", "scorecard.py", "published.py", "verdicts.py",
                "checks.py", "chapters", "paper.py", "data", "machine.py", "explorer", "claims",
                "tables.py", "protocols/model_tables.py", "protocols/treatment_tables.py", "protocols/cliff_tables.py",
                "protocols/consolidation_tables.py", "protocols/regimen_tables.py",
                "protocols/longitudinal_tables.py", "pages.py", "discussion.py", "typeset.py")  # fmt: skip


def _under(rel: str, prefixes: Iterable[str]) -> bool:
    return any(rel == p or rel.startswith(p + "/") for p in prefixes)


def package_files(package: Path | None = None) -> list[Path]:
    """Every file of the package (sources, data, style), without byte code."""
    root = Path(package or PACKAGE)
    return sorted(
        p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    )


def stamp_files(package: Path | None = None, page: str | None = None) -> list[Path]:
    """The package files an executed page depends on: everything but the tooling, plus the
    execution module and the tooling that ``page`` (a notebook's name) itself shows."""
    root = Path(package or PACKAGE)
    keep = EXECUTION + PAGE_FILES.get(page or "", ())
    out = []
    for p in package_files(root):
        rel = p.relative_to(root).as_posix()
        if not _under(rel, TOOLING) or _under(rel, keep):
            out.append(p)
    return out


def state_files(package: Path | None = None) -> list[Path]:
    """The package files a computed state depends on (the engine: no tooling, no presentation)."""
    root = Path(package or PACKAGE)
    return [p for p in stamp_files(root) if not _under(p.relative_to(root).as_posix(), PRESENTATION + EXECUTION)]


def digest(files: Iterable[Path], base: Path, h=None):
    """SHA-256 over the files' paths (relative to ``base``) and bytes; returns the hash object."""
    h = h or hashlib.sha256()
    for f in sorted(files):
        h.update(f.relative_to(base).as_posix().encode())
        h.update(b"\0")
        h.update(f.read_bytes())
        h.update(b"\0")
    return h


def state_hash(package: Path | None = None) -> str:
    """The engine's hash, part of every cache key of a computed state."""
    root = Path(package or PACKAGE)
    return digest([p for p in state_files(root) if p.suffix == ".py"], root).hexdigest()
