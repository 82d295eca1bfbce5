"""The JavaScript that renders embedded ipywidgets in the static book, served by the book itself.

Pages with widget state (the explorer) need the ipywidgets "embed" bundle to show and link the
widgets without a kernel. Instead of loading it from a CDN, the book ships it: the bundle comes
from the npm package :data:`PACKAGE` at the pinned :data:`VERSION`, fetched once with
``npm pack`` (the npm registry's ordinary client), checked against its pinned SHA-512 integrity,
and unpacked under ``<cache>/webassets/`` (``$PRUNEPLAST_CACHE``, default ``<project>/.cache``).
:func:`copy_widgets_js` copies the standalone (non-AMD, no require.js) ``embed.js`` with its web
fonts and licence into the staging folder's ``_static/widgets/``; ``_config.yml`` points myst-nb's
``nb_ipywidgets_js`` at ``widgets/embed.js``, which Sphinx serves as ``_static/widgets/embed.js``.

Run ``python -m pruneplast.booktools.webassets`` (the Makefile's ``widgets-js`` step) to fetch ahead of a
build; :func:`pruneplast.booktools.stage_book` fetches when the files are missing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "@jupyter-widgets/html-manager"  # ipywidgets 8's HTML manager (BSD-3-Clause)
VERSION = "1.0.15"  # matches ipywidgets 8.1 (@jupyter-widgets/controls 5)
INTEGRITY = (
    "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//"
    "SABeNz1yp47bCrJ3CQA=="
)  # of the npm tarball, as the registry publishes it
#: Files of the package's ``dist/`` that the book serves: the standalone bundle, its licence
#: notice and the icon fonts its stylesheet refers to (source maps and AMD builds are left out).
KEEP_SUFFIXES = (".woff2", ".woff", ".ttf", ".eot", ".svg")
BUNDLE = "embed.js"


class AssetError(RuntimeError):
    """The widget bundle could not be fetched or failed its integrity check."""


def _cache_root() -> Path:
    from ..protocols.base import cache_dir

    return cache_dir() / "webassets"


def asset_dir() -> Path:
    """Where the unpacked files of the pinned version live."""
    return _cache_root() / f"html-manager-{VERSION}"


def _check_integrity(tarball: Path) -> None:
    algo, _, want = INTEGRITY.partition("-")
    got = base64.b64encode(hashlib.new(algo, tarball.read_bytes()).digest()).decode()
    if got != want:
        raise AssetError(f"{tarball.name}: {algo} integrity {got} does not match the pinned {want}")


def fetch(quiet: bool = False) -> Path:
    """The unpacked ``dist`` files of the pinned package (fetched with ``npm pack`` if missing)."""
    dest = asset_dir()
    if (dest / BUNDLE).is_file() and (dest / ".complete").is_file():
        return dest
    npm = shutil.which("npm")
    if npm is None:
        raise AssetError(
            f"npm is needed once to fetch {PACKAGE}@{VERSION} (the widget bundle the book serves); "
            "install Node.js and npm (Debian: apt-get install -y npm), then rerun"
        )
    root = _cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix="fetch-") as tmp:
        if not quiet:
            print(f"fetching {PACKAGE}@{VERSION} with npm pack ...", file=sys.stderr)
        proc = subprocess.run(
            [npm, "pack", f"{PACKAGE}@{VERSION}", "--json", "--pack-destination", tmp],
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if proc.returncode != 0:
            raise AssetError(f"npm pack {PACKAGE}@{VERSION} failed:\n{proc.stderr.strip()[-2000:]}")
        info = json.loads(proc.stdout)[0]
        tarball = Path(tmp) / info["filename"]
        _check_integrity(tarball)
        unpack = Path(tmp) / "unpacked"
        unpack.mkdir()
        with tarfile.open(tarball) as tf:
            members = [m for m in tf.getmembers() if m.isfile() and _wanted(m.name)]
            for m in members:
                m.name = Path(m.name).name  # flatten package/dist/x and package/package.json
                tf.extract(m, unpack, filter="data")
        if not (unpack / BUNDLE).is_file():
            raise AssetError(f"{PACKAGE}@{VERSION} has no dist/{BUNDLE}")
        (unpack / ".complete").write_text(f"{PACKAGE}@{VERSION} {INTEGRITY}\n", encoding="utf-8")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(unpack, dest)
    return dest


def _wanted(name: str) -> bool:
    parts = Path(name).parts
    if len(parts) == 2 and parts[1] == "package.json":  # names the licence (BSD-3-Clause)
        return True
    if len(parts) != 3 or parts[1] != "dist":
        return False
    f = parts[2]
    return f in (BUNDLE, BUNDLE + ".LICENSE.txt") or f.endswith(KEEP_SUFFIXES)


def copy_widgets_js(dest: Path) -> list[Path]:
    """Copy the bundle, its fonts, licence notice and package.json into ``dest`` (e.g. ``<stage>/_static/widgets``)."""
    src = fetch(quiet=True)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for f in sorted(src.iterdir()):
        if f.is_file() and not f.name.startswith("."):
            shutil.copy2(f, dest / f.name)
            out.append(dest / f.name)
    return out


def main() -> int:
    try:
        d = fetch()
    except AssetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    size = sum(f.stat().st_size for f in d.iterdir() if f.is_file())
    print(f"{PACKAGE}@{VERSION}: {d} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
