"""Where a command writes, checked before any work, and written so that nothing is lost.

Every command that writes (``pruneplast run``, ``sweep``, ``explore``, ``book``) checks every
folder it will write, and the cache folder, with :func:`check_writable` (or :func:`check_file`
for a single output file) before any notebook, kernel or cell starts: a path that is a file, a
folder that cannot be created or written, an empty path and an empty ``$PRUNEPLAST_CACHE`` are
one-line :class:`OutputError` messages naming the option and the path. Then:

* results files already there are never deleted or replaced before their replacement is
  complete (:class:`keep_results`): they stay in place until the page that rewrites them has
  finished, and a page that fails or is stopped leaves them as they were;
* a folder that is rebuilt whole (the book's HTML) is built beside the old one and swapped in
  by renaming (:func:`replace_folder`);
* one output folder holds one run or sweep at a time (:class:`run_lock`).

:func:`run` is ``pruneplast run`` once its values (:func:`.notebooks.request`) and its folders
(:func:`check_run_outputs`, the one check of them) are checked: lock, execute.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import NamedTuple

from ..results import cache_root, project_root, results_dir
from .execution import execute, patched_environ
from .notebooks import Request


class OutputError(RuntimeError):
    """An output or cache folder that cannot be used, found before anything runs."""


def given_path(path, what: str) -> Path:
    """``path`` as given: refused when empty (``--out ''`` would mean the current folder)."""
    if path is None or (isinstance(path, (str, os.PathLike)) and not str(os.fspath(path)).strip()):
        raise OutputError(f"{what} is empty; give a path")
    return Path(path).expanduser().resolve()


def check_writable(folder: Path | str, what: str) -> Path:
    """Create ``folder`` if needed and prove that a file can be written there; else
    :class:`OutputError` naming ``what`` and the path. Returns the absolute folder."""
    import tempfile

    folder = given_path(folder, what)
    try:
        for p in (folder, *folder.parents):  # a file on the way: 'not a folder', whatever the OS says
            if p.exists():
                if not p.is_dir():
                    raise OutputError(
                        f"{what} {folder} exists and is not a folder"
                        if p == folder
                        else f"{what} {folder} cannot be created: {p} is a file"
                    )
                break
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".pruneplast-write-test-"):
            pass
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(
            f"{what} {folder} cannot be written ({exc.strerror or exc}); choose another folder or fix its permissions"
        ) from None
    return folder


def check_file(path: Path | str, what: str, suffix: str | None = None) -> Path:
    """A file to be written: not a folder, its folder writable (:func:`check_writable`)."""
    path = given_path(path, what)
    if path.is_dir():
        raise OutputError(f"{what} {path} is a folder; give the path of a file{f' ({suffix})' if suffix else ''}")
    if suffix is not None and path.suffix != suffix:
        raise OutputError(f"{what} {path} must end in {suffix}")
    check_writable(path.parent, f"the folder of {what}")
    return path


CACHE_ENV = "PRUNEPLAST_CACHE"


def check_cache() -> Path:
    """The cache folder (``$PRUNEPLAST_CACHE``, default ``<project>/.cache``), checked writable.

    An empty ``$PRUNEPLAST_CACHE`` is refused; a relative one is made absolute in this process's
    environment, so a kernel started in another folder uses the folder checked here.
    """
    try:
        root = cache_root()
    except ValueError as exc:  # an empty $PRUNEPLAST_CACHE
        raise OutputError(str(exc)) from None
    folder = check_writable(root, f"cache folder (${CACHE_ENV})")
    if CACHE_ENV in os.environ:
        os.environ[CACHE_ENV] = str(folder)
    return folder


def check_port(port: int, host: str = "127.0.0.1") -> int:
    """``port`` on ``host`` is free to listen on; else :class:`OutputError` saying so."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            raise OutputError(
                f"port {port} on {host} is in use or not allowed ({exc.strerror or exc}); "
                "choose another with --serve PORT (the explorer is then at http://127.0.0.1:PORT/)"
            ) from None
    return port


def check_app_outputs(out, port: int | None) -> Path:
    """``pruneplast explore``'s: the app notebook's path (an ``.ipynb`` in a writable folder), the
    cache and, to serve it, a free ``port``; :class:`OutputError` otherwise. Returns the path."""
    path = check_file(out, "app notebook (--out)", ".ipynb")
    check_cache()
    if port is not None:
        check_port(port)
    return path


class keep_results:
    """The results files of one page (``<stem>.csv`` / ``.json`` in ``folder``), kept until replaced.

    While the page runs, each file that is there keeps its name and its content; a second name
    (``.<file>.previous``, a hard link, else a copy) holds the same content. The page replaces a
    file only by an atomic rename of a complete one (:func:`pruneplast.results.atomic_write`).
    When the page finishes, the files it did not rewrite are removed (no stale results survive
    it); when it fails or is stopped, every file is put back as it was. A ``.previous`` left by a
    process that was killed is put back at the next start.
    """

    SUFFIXES = (".csv", ".json")

    def __init__(self, folder: Path, stem: str):
        self.folder, self.stem = Path(folder), stem
        self.kept: dict[Path, Path] = {}

    def _previous(self, f: Path) -> Path:
        return f.with_name(f".{f.name}.previous")

    def __enter__(self):
        for suffix in self.SUFFIXES:
            f = self.folder / f"{self.stem}{suffix}"
            prev = self._previous(f)
            if prev.exists():  # a run that was killed: its files are not a finished run's
                self._put_back(f, prev)
            if f.exists():
                try:
                    os.link(f, prev)
                except OSError:
                    shutil.copy2(f, prev)
                self.kept[f] = prev
        return self

    def _same(self, f: Path, prev: Path) -> bool:
        """``f`` is still the file set aside (not rewritten): one file, or an unchanged copy."""
        if self._linked(f, prev):
            return True
        try:
            a, b = f.stat(), prev.stat()
        except FileNotFoundError:
            return False
        return a.st_size == b.st_size and a.st_mtime_ns == b.st_mtime_ns and f.read_bytes() == prev.read_bytes()

    def __exit__(self, exc_type, *exc):
        for f, prev in self.kept.items():
            if exc_type is None:
                if self._same(f, prev):  # not rewritten by this run: stale
                    f.unlink(missing_ok=True)
                prev.unlink(missing_ok=True)
            else:
                self._put_back(f, prev)
        return False

    def _put_back(self, f: Path, prev: Path) -> None:
        if self._linked(f, prev):  # not replaced: two names of one file (a rename would do nothing)
            prev.unlink()
        else:
            os.replace(prev, f)

    @staticmethod
    def _linked(f: Path, prev: Path) -> bool:
        try:
            a, b = f.stat(), prev.stat()
        except FileNotFoundError:
            return False
        return (a.st_ino, a.st_dev) == (b.st_ino, b.st_dev)


def replace_folder(src: Path, dest: Path) -> None:
    """Copy ``src`` to ``dest`` whole: into a sibling folder first, then swapped in by renames;
    the old ``dest`` is removed only once the new one is in place."""
    dest = Path(dest)
    new = dest.with_name(f".{dest.name}.new-{os.getpid()}")
    old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
    for p in (new, old):
        if p.exists():
            shutil.rmtree(p)
    try:
        shutil.copytree(src, new)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    if dest.exists():
        os.replace(dest, old)
    os.replace(new, dest)
    shutil.rmtree(old, ignore_errors=True)


class RunFolders(NamedTuple):
    """The folders one ``pruneplast run`` writes, checked writable (:func:`check_run_outputs`)."""

    out: Path  # the executed notebook (and the kernel's log of a failed run)
    results: Path  # <out>/<profile>: the results files


def check_run_outputs(path: Path, profile: str, out: Path | str | None = None) -> RunFolders:
    """``pruneplast run``'s folders: the output folder (default ``runs/<stem>-<profile>``), its
    results folder ``<out>/<profile>`` and the cache, checked writable before any work; the one
    check of them (the command's, and a sweep cell's on its worker), whose result :func:`run` takes."""
    default = project_root() / "runs" / f"{Path(path).stem}-{profile}"
    out = check_writable(default if out is None else out, "output folder (--out)")
    res = check_writable(results_dir(profile, out), "results folder (<out>/<profile>)")
    check_cache()
    return RunFolders(out, res)


def run(request: Request, folders: RunFolders, progress: bool | None = None) -> dict:
    """Execute one notebook as ``request`` asks (found and checked already: :func:`.notebooks.request`)
    into ``folders`` (checked already: :func:`check_run_outputs`); returns the paths of the executed
    notebook and of the results.

    The executed ``<stem>.ipynb`` goes to ``folders.out`` and results to ``folders.results``
    (``<stem>.csv`` and ``.json``); results already there stay until the run has written their
    replacement.
    """
    if not isinstance(folders, RunFolders):
        raise TypeError(f"folders must be check_run_outputs' RunFolders; got {folders!r}")
    path, params = request.path, request.values
    out, res = folders
    ipynb = out / f"{path.stem}.ipynb"
    t0 = time.perf_counter()
    log = out / f"{path.stem}.kernel.log"
    with run_lock(out), scratch_dir() as tmp, keep_results(res, path.stem):
        log.unlink(missing_ok=True)
        with patched_environ({"TMPDIR": str(tmp)}):  # the kernel's temporary files, removed below
            execute(
                path,
                ipynb,
                params,
                results_root=out,
                kernel_log=log,
                progress=sys.stderr.isatty() if progress is None else progress,
            )
        log.unlink(missing_ok=True)  # kept only when the run failed
    files = sorted(res.glob(f"{path.stem}.*"))
    return {"notebook": ipynb, "results": files, "parameters": params, "seconds": time.perf_counter() - t0}


class run_lock:
    """An exclusive lock on an output folder for one ``pruneplast run`` (released when the process ends)."""

    NAME = ".pruneplast-run.lock"

    def __init__(self, folder: Path):
        self.path = Path(folder) / self.NAME
        self.fh = None

    def __enter__(self):
        import fcntl

        self.fh = open(self.path, "a+")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.fh.seek(0)
            who = self.fh.read().strip() or "another process"
            self.fh.close()
            raise OutputError(
                f"output folder {self.path.parent} is in use by another pruneplast run "
                f"({who}); wait for it to finish or choose another --out"
            ) from None
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(f"pid {os.getpid()}\n")
        self.fh.flush()
        return self

    def __exit__(self, *exc):
        try:
            self.fh.seek(0)
            self.fh.truncate()
        finally:
            self.fh.close()  # closing releases the lock; the empty file stays (removing it would race)


class scratch_dir:
    """A temporary folder for one run, removed when the run ends, however it ends (also on SIGTERM)."""

    def __enter__(self) -> Path:
        import tempfile

        self.path = Path(tempfile.mkdtemp(prefix="pruneplast-run-"))
        return self.path

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)
