"""Where a chapter's time goes: wall time in training, regrowth, the stress tests, and the rest.

``python benchmarks/time_split.py CHAPTER [CHAPTER ...] [--profile paper|quick]``

Runs the code cells of ``notebooks/<CHAPTER>.md`` in this process, at the profile's parameters
(the values papermill injects in a build), with timers around ``pruneplast.operators.train`` and
``regrow`` and the stress tests (``pruneplast.stress.evaluate``, ``accuracy``,
``activation_magnitude``, ``structure``). Every timer counts its function's own time: a stress
test run inside training (a checkpoint evaluated by ``on_epoch_end``) is charged to the stress
tests, not to training. "other" is the rest of the chapter: data, cached states, tables,
figures. Results files go to a temporary folder; baselines and treated states come from, and go
to, the cache as in a build (so a chapter whose states are cached does not train them).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

#: (module, function, category) of the timed functions.
TIMED = (
    ("pruneplast.operators", "train", "train"),
    ("pruneplast.operators", "regrow", "regrow"),
    ("pruneplast.stress", "evaluate", "stress tests"),
    ("pruneplast.stress", "accuracy", "stress tests"),
    ("pruneplast.stress", "activation_magnitude", "stress tests"),
    ("pruneplast.stress", "structure", "stress tests"),
)


class Timers:
    """Exclusive wall time per category of the wrapped functions (nested timed calls subtracted)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._stack: list[list] = []  # [category, start, time spent in timed callees]

    def wrap(self, module, name: str, category: str) -> None:
        """Replace ``module.name`` by a timed version (callers that look it up afterwards get it)."""
        f = getattr(module, name)

        @functools.wraps(f)
        def timed(*args, **kwargs):
            self._stack.append([category, time.perf_counter(), 0.0])
            try:
                return f(*args, **kwargs)
            finally:
                cat, start, inner = self._stack.pop()
                elapsed = time.perf_counter() - start
                self.seconds[cat] = self.seconds.get(cat, 0.0) + elapsed - inner
                if self._stack:
                    self._stack[-1][2] += elapsed

        setattr(module, name, timed)


def install(timers: Timers) -> None:
    """Wrap every function of :data:`TIMED`; must run before ``pruneplast.protocols`` is imported,
    because the protocols bind these functions by name when they are imported."""
    import importlib

    if "pruneplast.protocols" in sys.modules:
        raise RuntimeError("install the timers before pruneplast.protocols is imported")
    for mod, name, cat in TIMED:
        timers.wrap(importlib.import_module(mod), name, cat)


def run_chapter(name: str, profile: str) -> float:
    """Execute the chapter's code cells at ``profile`` in a fresh namespace; returns the wall time."""
    import jupytext

    from pruneplast import chapters

    values = chapters.profile_values(name, profile)
    nb = jupytext.read(HERE.parent / "notebooks" / f"{name}.md")
    ns: dict = {"__name__": "__main__"}
    start = time.perf_counter()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(cell.source, f"{name}.md", "exec"), ns)
        if "parameters" in cell.metadata.get("tags", []):
            ns.update(values)  # what papermill injects after the parameters cell
    return time.perf_counter() - start


def main(argv=None) -> dict:
    from pruneplast import chapters

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("chapter", nargs="+", help=f"chapter names: {', '.join(chapters.CHAPTERS)}")
    ap.add_argument("--profile", default="paper", choices=chapters.PROFILES)
    args = ap.parse_args(argv)
    for name in args.chapter:
        if name not in chapters.CHAPTERS:
            ap.error(f"unknown chapter {name!r}; chapters: {', '.join(chapters.CHAPTERS)}")
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ["PRUNEPLAST_PROGRESS"] = "0"
    timers = Timers()
    install(timers)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PRUNEPLAST_RESULTS"] = tmp
        for name in args.chapter:
            timers.seconds = {}
            total = run_chapter(name, args.profile)
            split = dict(timers.seconds)
            split["other"] = total - sum(split.values())
            out[name] = {"total_s": total, **{f"{k}_s": v for k, v in split.items()}}
            parts = ", ".join(f"{k} {v:.0f} s ({v / total:.0%})" for k, v in split.items())
            print(f"{name} ({args.profile}): {total:.0f} s = {parts}", flush=True)
    return out


if __name__ == "__main__":
    main()
