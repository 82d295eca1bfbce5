"""The explorer as a web app: the chapter converted for Voila and served on 127.0.0.1 (``pruneplast explore``)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Sequence

from ..config import check_int

#: Put first on JUPYTER_PATH: it holds ``voila/templates/pruneplast``, Voila's 'lab' template
#: without its CDN stylesheets.
TEMPLATES = Path(__file__).resolve().parent
_ROLE = re.compile(r"\{glue:(?:text|md)\}`([A-Za-z_][A-Za-z0-9_]*)(?::([^`]*))?`")


def app_cells(nb, values: dict[str, Any]) -> None:
    """Make the chapter notebook an app, in place: drop the cells tagged ``book-only`` (the
    precomputed grid, build timings), fill the glue roles whose values the parameters give, and
    drop any other markdown cell that would show a raw role (``{glue:...}``, ``{numref}``)."""
    cells = []
    for cell in nb.cells:
        if "book-only" in cell.get("metadata", {}).get("tags", []):
            continue
        if cell.cell_type == "markdown":
            text = _ROLE.sub(lambda m: format(values[m[1]], m[2] or "") if m[1] in values else m[0], cell.source)
            if "{glue" in text or "{numref" in text:
                continue
            cell.source = text
        cells.append(cell)
    nb.cells = cells


# --------------------------------------------------------------------------- the web app
def app_request(profile: str = "paper", overrides: dict | None = None, pairs=()):
    """The explorer chapter at ``profile`` with ``overrides`` and the command line's ``-p`` ``pairs``,
    found and checked once (:func:`pruneplast.booktools.request`); ``show_grid`` is False unless
    given, since the app recomputes live and the grid exists for the static book. Raises
    ``ValueError`` naming the first bad parameter."""
    from .. import booktools

    return booktools.request("explorer", profile, {"show_grid": False, **dict(overrides or {})}, pairs)


def app_notebook(out, profile: str = "paper", overrides: dict | None = None, request=None):
    """Write the explorer chapter as an ``.ipynb`` for Voila (``make explore``); returns its path.

    The jupytext source ``notebooks/explorer.md`` is converted and its parameters injected: the
    values of ``request`` (:func:`app_request`, checked already) or, without one, the profile's
    values plus ``overrides``, checked here.
    """
    import nbformat
    import papermill as pm

    from .. import booktools

    request = request if request is not None else app_request(profile, overrides)
    params = request.values
    nb = pm.execute_notebook(
        booktools.read_notebook(request.path),
        None,
        parameters=params,
        prepare_only=True,
        kernel_name="python3",
        language="python",
        progress_bar=False,
    )
    from .knobs import ExplorerConfig

    app_cells(
        nb,
        {
            "n_seeds": len(params["seeds"]),
            "train_subset": params["train_subset"],
            "consolidation_epochs": params["consolidation_epochs"],
            "eval_samples": ExplorerConfig().eval_samples,
        },
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(out))
    return out


#: Voila options of the app: local address only, on the port asked for or not at all (so the
#: address printed is the one served); the package's template (no CDN requests);
#: cells shown as they finish (the first, which trains the baselines, says so while it runs);
#: JupyterLab extensions that need the full JupyterLab (jupytext's) are not loaded, so the page
#: has no JavaScript errors.
VOILA_OPTIONS = (
    "--no-browser",
    "--Voila.ip=127.0.0.1",
    "--Voila.port_retries=0",
    "--NotebookClient.timeout=1800",
    "--template=pruneplast",
    "--VoilaConfiguration.progressive_rendering=True",
    "--VoilaConfiguration.extension_denylist=jupyterlab-jupytext",
)


def voila_environ(base: dict | None = None) -> dict:
    """The environment Voila runs in: ``base`` (default ``os.environ``) with the app's template
    folder first on ``JUPYTER_PATH``."""
    env = dict(os.environ if base is None else base)
    env["JUPYTER_PATH"] = os.pathsep.join([str(TEMPLATES), *filter(None, [env.get("JUPYTER_PATH")])])
    return env


def voila_command(notebook, port: int) -> list[str]:
    """The command that serves ``notebook`` with Voila on http://127.0.0.1:``port``/."""
    import sys

    check_int("port", port, 1, 65535)
    return [sys.executable, "-m", "voila", str(notebook), f"--port={port}", *VOILA_OPTIONS]


def serve(out, profile: str = "paper", overrides: dict | None = None, port: int | None = None, pairs=()) -> int:
    """Write the app notebook to ``out``; then, with a ``port``, serve it with Voila until interrupted.

    Everything is checked first, before the explorer's engine (torch, matplotlib) is imported: the
    port's number, the parameters (``overrides``, then the command line's ``-p`` ``pairs``), the
    notebook, the app notebook's folder, the cache and whether the port is free. A bad option is
    one line on stderr and exit status 2 (a parameter, the port's number) or 1 (a folder, a port
    in use).
    """
    import subprocess
    import sys

    from .. import booktools

    try:
        if port is not None:
            check_int("port", port, 1, 65535)
        request = app_request(profile, overrides, pairs)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:  # every place it writes, and the port, before any work
        out = booktools.check_app_outputs(out, port)
        path = app_notebook(out, request=request)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except booktools.OutputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"explorer app notebook: {path}")
    if port is None:
        return 0
    print(
        f"== explorer at http://127.0.0.1:{port}/ (Ctrl-C stops it; the first page load trains the "
        "baselines, about two minutes on two cores at the paper profile, unless they are cached) ==",
        flush=True,
    )
    try:
        return subprocess.call(voila_command(path, port), env=voila_environ())
    except KeyboardInterrupt:
        return 0


def add_arguments(ap, profiles: Sequence[str]) -> None:
    """The app's command-line options, added to the parser ``ap`` (``pruneplast explore`` and
    ``python -m pruneplast.explorer`` both call it)."""
    ap.add_argument("--out", default="_build/explore/explorer.ipynb", help="the .ipynb to write")
    ap.add_argument("--profile", default="paper", choices=profiles)
    ap.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="override one of the explorer chapter's parameters (a YAML literal); repeatable",
    )
    ap.add_argument(
        "--serve",
        type=int,
        default=None,
        metavar="PORT",
        help="then serve it with Voila on http://127.0.0.1:PORT/ until interrupted",
    )


def run(args) -> int:
    """Write the app notebook and serve it, as the parsed options of :func:`add_arguments` ask
    (``pruneplast explore`` and ``python -m pruneplast.explorer``); the options are checked by
    :func:`serve`."""
    return serve(args.out, args.profile, port=args.serve, pairs=args.parameter)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pruneplast.explorer``: the same options as ``pruneplast explore``."""
    import argparse

    from .. import chapters

    ap = argparse.ArgumentParser(prog="python -m pruneplast.explorer", description="The explorer as a web app (Voila).")
    add_arguments(ap, chapters.PROFILES)
    return run(ap.parse_args(argv))
