"""The ``pruneplast`` command: rerun a chapter with other parameters, list chapters, build the book.

    pruneplast list
    pruneplast run 02_pruning_cliff --profile quick -p seeds "[0, 1, 2]" -p sparsity 0.9 --out my-run
    pruneplast book --profile paper
    pruneplast pdf --profile paper
    pruneplast reference
    pruneplast explore --serve 8866
    pruneplast sweep 02_pruning_cliff -g sparsity "[0.9, 0.95]" -g regrow_fraction "[0.25, 0.5]" --out sweeps/cliff

Values given with ``-p NAME VALUE`` are YAML literals (as ``papermill -y``): ``0.9``, ``[0, 1]``,
``true``, ``cpu``. Names and values are checked before anything runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from . import booktools, chapters
from .explorer import app as explorer_app


def _parameter_option(parser, help: str) -> None:
    """``-p/--parameter NAME VALUE`` (repeatable): one parameter as a YAML literal."""
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"), help=help)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="pruneplast", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="list the chapters and their parameters")

    r = sub.add_parser(
        "run",
        help="execute one chapter notebook with papermill",
        description="Execute one chapter (converted from its text form on the fly) at a "
        "profile, with parameter overrides; leaves the executed notebook and "
        "the results files in the output folder.",
    )
    r.add_argument("notebook", help="chapter name (02_pruning_cliff), unique prefix (02) or path")
    r.add_argument("--profile", default="quick", choices=chapters.PROFILES, help="parameter profile (default: quick)")
    _parameter_option(r, "override one parameter; VALUE is a YAML literal; repeatable")
    r.add_argument("--out", default=None, help="output folder (default: runs/<notebook>-<profile>)")

    b = sub.add_parser("book", help="execute every notebook of the book and build the HTML")
    b.add_argument("--profile", default="paper", choices=chapters.PROFILES)
    b.add_argument("--build-dir", default=None, help="build folder (default: _build)")
    b.add_argument("--force", action="store_true", help="re-execute every notebook even if its stamp matches")
    b.add_argument("--no-strict", action="store_true", help="do not turn Sphinx warnings into errors")
    b.add_argument("--no-pdf", action="store_true", help="do not print the book as one PDF (pruneplast pdf)")
    b.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="pages executed side by side, each in its own process with one torch thread (default: 1)",
    )

    d = sub.add_parser(
        "pdf",
        help="print the built book as one PDF (headless Chromium)",
        description="Build the book already built at a profile (pruneplast book) as one page and print "
        "it with headless Chromium to <build-dir>/html/pruneplast.pdf; nothing is executed again.",
    )
    d.add_argument("--profile", default="paper", choices=chapters.PROFILES)
    d.add_argument("--build-dir", default=None, help="the book's build folder (default: _build)")
    d.add_argument("--out", default=None, help="the PDF to write (default: <build-dir>/html/pruneplast.pdf)")

    w = sub.add_parser(
        "sweep",
        help="run a chapter over a grid of parameter values on Dask (this machine or a cluster)",
        description="Run a chapter once per cell of the grid of the given values, as tasks on Dask "
        "distributed; merge the cells' results into OUT/<chapter>-sweep.csv. Rerunning skips finished cells.",
    )
    w.add_argument("notebook", help="chapter name (02_pruning_cliff), unique prefix (02) or path")
    w.add_argument(
        "-g",
        "--grid",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUES"),
        help="a grid parameter and its values as a YAML list ([0.9, 0.95]); repeatable",
    )
    _parameter_option(w, "a parameter fixed for every cell (a YAML literal); repeatable")
    w.add_argument("--profile", default="quick", choices=chapters.PROFILES, help="parameter profile (default: quick)")
    w.add_argument("--out", default="sweeps", help="output folder (default: sweeps)")
    w.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="a running Dask scheduler (tcp://host:8786); default: a LocalCluster on 127.0.0.1",
    )
    w.add_argument("--workers", type=int, default=None, help="LocalCluster worker processes (default: one per core)")

    e = sub.add_parser("explore", help="the explorer as a web app (Voila) on 127.0.0.1")
    explorer_app.add_arguments(e, chapters.PROFILES)

    f = sub.add_parser("reference", help="refresh the notebook-check references in tests/reference")
    f.add_argument("notebooks", nargs="*", help="chapters to refresh (default: all present)")
    f.add_argument(
        "--executed",
        default=None,
        metavar="DIR",
        help="take the checks from chapters already executed at the quick profile in DIR "
        "(e.g. _build/test/exec/quick/notebooks) instead of executing them",
    )
    return ap


def _list() -> int:
    present = {p.stem for p in booktools.text_notebooks()}
    for name in chapters.CHAPTERS:
        head, _, rest = chapters.describe(name).partition("\n")
        print(head + ("" if name in present else "   [notebook not present yet]"))
        print(rest + "\n")
    others = sorted(present - set(chapters.CHAPTERS))
    if others:
        print("other notebook pages: " + ", ".join(others))
    return 0


def _need_runtime() -> None:
    """`pruneplast run` executes notebooks: say what is missing before anything else happens."""
    import importlib.util

    missing = [
        m for m in ("papermill", "jupytext", "ipykernel", "myst_nb", "nbformat") if importlib.util.find_spec(m) is None
    ]
    if missing:
        raise RuntimeError(
            f"pruneplast run needs {', '.join(missing)}, which this environment lacks; "
            "install the package with its dependencies (pip install -e .) or use `make install`"
        )


def _run(args) -> int:
    _need_runtime()
    # the notebook found and every -p value read and checked, once, before anything runs
    req = booktools.request(args.notebook, args.profile, pairs=args.parameter)
    folders = booktools.check_run_outputs(req.path, req.profile, args.out)  # and every folder it writes, once
    print(
        f"running {req.path.stem} at profile {req.profile!r}"
        + (f" with {', '.join(f'{k}={v!r}' for k, v in req.overrides.items())}" if req.overrides else ""),
        flush=True,
    )
    try:
        out = booktools.run(req, folders)
    except (booktools.ParameterError, booktools.OutputError, Interrupted):
        raise
    except Exception as exc:  # papermill's execution error: the cell's exception, and where to look
        what = f"{exc.ename}: {getattr(exc, 'evalue', '')}" if hasattr(exc, "ename") else f"{type(exc).__name__}: {exc}"
        print(f"error: execution failed: {what}\n{_left_behind(req.path, folders.out)}", file=sys.stderr)
        return 1
    print(f"executed notebook: {out['notebook']}")
    if out["results"]:
        print("results: " + ", ".join(str(p) for p in out["results"]))
    else:
        print("results: none written by this notebook")
    print(f"time: {out['seconds']:.1f} s")
    return 0


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM: the run stops, its kernel and worker processes end, nothing is published."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _on_signal(signum, frame):
    raise Interrupted(signum)


def _left_behind(path, out) -> str:
    """Where a failed run left its partly executed notebook and its kernel's log, in ``out``."""
    from pathlib import Path

    failed = out / f"{Path(path).stem}.failed.ipynb"
    log = out / f"{Path(path).stem}.kernel.log"
    where = f"; the kernel's own log is {log}" if log.exists() else ""
    if failed.exists():
        return f"(the partly executed notebook is {failed}{where})"
    return f"(no partly executed notebook was kept{where})"


def _explore(args) -> int:
    """``pruneplast explore``: the explorer app checks its own options (:func:`explorer.app.run`)."""
    return explorer_app.run(args)


def _sweep(args) -> int:
    from . import sweep

    grid: dict[str, Sequence] = {}
    for name, text in args.grid:
        if name in grid:
            raise booktools.ParameterError(
                f"grid parameter {name!r} given twice (-g {name}); give all its values in one list"
            )
        value = booktools.parse_value(text)
        if not isinstance(value, list):
            raise booktools.ParameterError(
                f"grid values of {name!r} must be a YAML list like [0.9, 0.95]; got {text!r}"
            )
        grid[name] = value
    fixed = booktools.overrides_of(args.parameter)
    if args.workers is not None and args.workers < 1:
        raise booktools.ParameterError(f"--workers must be an integer >= 1; got {args.workers}")
    try:
        summary = sweep.run(args.notebook, grid, args.profile, args.out, args.scheduler, args.workers, fixed)
    except ValueError as exc:
        raise booktools.ParameterError(str(exc)) from None
    print(
        f"sweep of {summary['notebook']}: {summary['cells']} cells, {summary['run']} run, "
        f"{summary['skipped']} already done, {len(summary['failed'])} failed; table: {summary['table']}"
    )
    return 1 if summary["failed"] else 0


def main(argv: list[str] | None = None) -> int:
    import signal

    args = _parser().parse_args(argv)
    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    interrupted = False
    try:
        if args.command == "list":
            return _list()
        if args.command == "run":
            return _run(args)
        if args.command == "book":
            if args.jobs < 1:
                raise booktools.ParameterError(f"--jobs must be an integer >= 1; got {args.jobs}")
            booktools.build_book(
                args.profile, args.build_dir, force=args.force, strict=not args.no_strict, jobs=args.jobs
            )
            if not args.no_pdf:
                from .booktools.pdf import print_built_book

                print_built_book(args.profile, args.build_dir)
            return 0
        if args.command == "pdf":
            from .booktools.pdf import build_pdf

            build_pdf(args.profile, args.build_dir, args.out)
            return 0
        if args.command == "sweep":
            return _sweep(args)
        if args.command == "explore":
            return _explore(args)
        if args.command == "reference":
            booktools.make_reference(args.notebooks or None, executed=args.executed)
            return 0
    except booktools.ParameterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (RuntimeError, FileNotFoundError, booktools.OutputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Interrupted as exc:
        import logging

        interrupted = True
        for sig in previous:  # a second Ctrl-C must not cut the clean-up short
            signal.signal(sig, signal.SIG_IGN)
        # the cell that was running ends with the interrupt; asyncio would report that at exit
        logging.getLogger("asyncio").setLevel(logging.CRITICAL + 1)
        name = "interrupted (Ctrl-C)" if exc.signum == signal.SIGINT else "terminated (SIGTERM)"
        print(
            f"\n{name}: the run was stopped and its kernel and worker processes have ended; no "
            "executed notebook was written (results files are written whole or not at all)",
            file=sys.stderr,
        )
        return 128 + exc.signum
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    finally:
        if not interrupted:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    return 2


if __name__ == "__main__":
    sys.exit(main())
