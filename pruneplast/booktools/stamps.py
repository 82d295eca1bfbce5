"""Stamps: the SHA-256 that decides whether an executed page is up to date (see :mod:`pruneplast.keys`)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterable

from .. import keys

#: The package whose files a stamp covers (:func:`pruneplast.keys.stamp_files`).
PACKAGE_DIR = keys.PACKAGE


def stamp(
    path: Path,
    parameters: dict,
    extra_files: Iterable[Path] = (),
    extra_base: Path | None = None,
    project_files: Iterable[Path] = (),
    project_base: Path | None = None,
) -> str:
    """SHA-256 of the notebook text, the package files a page depends on
    (:func:`pruneplast.keys.stamp_files`: not the build tooling, the explorer app or the command
    line, except what the page itself shows), the parameters, ``extra_files`` (results, named
    relative to ``extra_base``) and ``project_files`` (relative to ``project_base``)."""
    h = hashlib.sha256()
    h.update(Path(path).read_bytes())
    keys.digest(keys.stamp_files(PACKAGE_DIR, Path(path).stem), PACKAGE_DIR, h)
    h.update(json.dumps(parameters, sort_keys=True, default=str).encode())
    for files, base in ((list(extra_files), extra_base), (list(project_files), project_base)):
        h.update(b"\1")
        if files:
            keys.digest(files, base or Path(os.path.commonpath(files)), h)
    return h.hexdigest()


def file_digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def stamp_ok(stamp_file: Path, out: Path, key: str) -> bool:
    if not (stamp_file.exists() and out.exists()):
        return False
    try:
        rec = json.loads(stamp_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if rec.get("stamp") != key:
        return False
    for f, digest in rec.get("results", {}).items():
        if not Path(f).exists() or file_digest(Path(f)) != digest:
            return False
    return True
