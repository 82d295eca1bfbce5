"""Constants and the error type shared by the build tooling."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # the pruneplast package
NOTEBOOK_DIRS = ("notebooks", "book")
#: Default per-cell timeout in seconds (the paper profile trains ten replicates at full length).
CELL_TIMEOUT = {"quick": 900, "paper": 6 * 3600}
#: Seconds the kernel's last outputs of a cell may lag behind its "done" reply. Jupyter's default
#: (4 s) is short on a busy machine: a cell's output (a glued number, say) that arrived later would
#: be dropped with only a logged warning, and the page's checks would then fail on a value the run
#: did compute. Waiting costs nothing when the outputs are there.
IOPUB_TIMEOUT = 120


class ParameterError(ValueError):
    """A bad parameter name or value, found before anything runs."""


def log(msg: str) -> None:
    print(msg, flush=True)


def fmt_time(s: float) -> str:
    return f"{s:.1f} s" if s < 120 else f"{int(s // 60)} min {s % 60:04.1f} s"


def jupyter_book_command() -> list[str]:
    """The jupyter-book executable beside this Python, else on PATH."""
    exe = Path(sys.executable).with_name("jupyter-book")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("jupyter-book")
    if found:
        return [found]
    raise FileNotFoundError("jupyter-book is not installed; install the project with its 'book' extra")
