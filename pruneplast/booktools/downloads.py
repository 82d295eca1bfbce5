"""Each chapter's results, downloadable from the chapter.

At staging (:func:`pruneplast.booktools.book.stage_book`) the results files a chapter's run wrote,
``results/<profile>/<chapter>.csv`` (the tidy table, :func:`pruneplast.results.save_results`) and
``<chapter>.json`` beside it (the run's parameters and the versions of the package and
libraries), are copied into the staging folder's ``_results/``, and a last section, "Download the
results", is appended to the chapter's staged notebook with a ``{download}`` link to each: Sphinx
copies the files into the book's ``_downloads/`` and links them. The section is generated, the
same for every chapter; the executed notebooks under ``exec/`` are left as they are (their stamps
and the notebook checks read those).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..results import REQUIRED_COLUMNS, atomic_write

#: Where the staged results files go, relative to the staging folder (outside ``_static``: Sphinx
#: copies each file once, through its ``{download}`` link).
RESULTS_FOLDER = "_results"
HEADING = "Download the results"


def section(chapter: str, profile: str, files: list[str]) -> str:
    """The Markdown (MyST) of the section for ``chapter``'s results ``files`` (names only)."""
    columns = ", ".join(REQUIRED_COLUMNS)
    lines = [
        f"## {HEADING}",
        "",
        f"The results files this chapter's run wrote, at the `{profile}` profile:",
        "",
    ]
    for name in files:
        link = f"{{download}}`{name} </{RESULTS_FOLDER}/{name}>`"
        if name.endswith(".csv"):
            lines.append(
                f"- {link}: the tidy results table, one row per measurement (columns `{columns}` and "
                "the chapter's own; accuracies and sparsities in %);"
            )
        else:
            lines.append(f"- {link}: the run's parameters and the versions of the package and libraries.")
    lines += [
        "",
        f"`pruneplast run {chapter} --profile {profile}` writes them again (see *Rerun it* above).",
    ]
    return "\n".join(lines) + "\n"


def results_files(chapter: str, res_dir: Path) -> list[Path]:
    """The chapter's results files in ``res_dir`` (its ``.csv`` first, then its ``.json``), those present."""
    return [p for p in (Path(res_dir) / f"{chapter}.csv", Path(res_dir) / f"{chapter}.json") if p.is_file()]


def add_downloads(notebook: Path, chapter: str, profile: str, res_dir: Path, stage: Path) -> list[Path]:
    """Copy ``chapter``'s results files into ``stage/_results`` and append the download section to
    the staged ``notebook``. Nothing happens for a chapter without a results table (a chapter that
    saves none). Returns the copied files."""
    import nbformat

    found = results_files(chapter, res_dir)
    if not any(p.suffix == ".csv" for p in found):
        return []
    dest = Path(stage) / RESULTS_FOLDER
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for p in found:
        shutil.copy2(p, dest / p.name)
        copied.append(dest / p.name)
    nb = nbformat.read(notebook, as_version=4)
    cell = nbformat.v4.new_markdown_cell(section(chapter, profile, [p.name for p in found]))
    if (nb.nbformat, nb.nbformat_minor) < (4, 5):  # cell ids exist from format 4.5 on
        cell.pop("id", None)
    nb.cells.append(cell)
    atomic_write(notebook, nbformat.writes(nb) + "\n")
    return copied
