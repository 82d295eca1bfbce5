"""Finding the book's text notebooks and their papermill parameters (validated before anything runs).

:func:`request` is the command side's one check of the values a notebook is run with: the
notebook found once, every ``-p NAME VALUE`` read (:func:`parse_value`) and checked against the
chapter's registry (:func:`parameters_for`, :func:`pruneplast.chapters.validate`) once. What runs it
(:func:`pruneplast.booktools.run`, a sweep's cells, the explorer app) takes the checked
:class:`Request` as it is.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .. import chapters
from ..results import project_root
from ._common import NOTEBOOK_DIRS, ParameterError


# --------------------------------------------------------------------------- finding notebooks
def is_text_notebook(path: Path) -> bool:
    """True for a jupytext markdown notebook (front matter naming a kernelspec)."""
    path = Path(path)
    if path.suffix != ".md" or not path.is_file():
        return False
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return False
    end = text.find("\n---", 3)
    try:
        meta = yaml.safe_load(text[3:end]) if end > 0 else None
    except yaml.YAMLError:
        return False
    return isinstance(meta, dict) and "kernelspec" in meta


def text_notebooks(root: Path | None = None) -> list[Path]:
    """Every jupytext notebook under ``notebooks/`` and ``book/``, sorted."""
    root = Path(root or project_root())
    found = []
    for d in NOTEBOOK_DIRS:
        found += [p for p in sorted((root / d).glob("*.md")) if is_text_notebook(p)]
    return found


def find_notebook(spec: str | Path, root: Path | None = None) -> Path:
    """Resolve a notebook given as a path, a file stem (``02_pruning_cliff``) or a unique prefix (``02``)."""
    root = Path(root or project_root())
    p = Path(spec)
    if p.suffix in (".md", ".ipynb") and p.is_file():
        if p.suffix == ".md" and not is_text_notebook(p):
            raise ParameterError(
                f"{p} is not a jupytext notebook (its front matter names no kernelspec); "
                "give a chapter name, a prefix such as 02, or a notebook's path"
            )
        if p.suffix == ".ipynb":
            import nbformat

            try:
                nbformat.validate(nbformat.read(p, as_version=4))
            except Exception as exc:  # not JSON, or not a notebook
                raise ParameterError(
                    f"{p} is not a readable Jupyter notebook ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
                ) from None
        return p.resolve()
    if p.suffix in (".md", ".ipynb") and (p.is_absolute() or os.sep in str(spec)):
        raise ParameterError(f"notebook {spec} does not exist")
    candidates = text_notebooks(root)
    exact = [c for c in candidates if c.stem == str(spec)]
    if exact:
        return exact[0]
    pref = [c for c in candidates if c.stem.startswith(str(spec))]
    if len(pref) == 1:
        return pref[0]
    names = ", ".join(c.stem for c in candidates) or "(none)"
    what = "is ambiguous" if pref else "matches no notebook"
    raise ParameterError(f"notebook {str(spec)!r} {what}; notebooks: {names}")


def read_notebook(path: Path):
    """The notebook as an ``nbformat`` node (jupytext converts markdown on the fly)."""
    import jupytext
    import nbformat

    path = Path(path)
    if path.suffix == ".ipynb":
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            cell.metadata.setdefault("tags", [])
        return nb
    nb = jupytext.read(path)
    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
    for cell in nb.cells:  # papermill expects every cell to carry a tags list
        cell.metadata.setdefault("tags", [])
    return nb


# --------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class ParamInfo:
    name: str
    kind: str
    default: Any
    quick: Any
    help: str


#: How a chapter names itself in its code: ``page = pages.open_chapter("02_pruning_cliff", ...)``
#: (or a ``NOTEBOOK = "..."`` line).
_NOTEBOOK_NAME = re.compile(r"""(?:^NOTEBOOK\s*=\s*|\bopen_chapter\(\s*)["']([\w.-]+)["']""", re.M)


def chapter_name(path: Path, nb=None) -> str | None:
    """The registered chapter a notebook is: by file name, else by the name it opens its page with
    (``pages.open_chapter("...")``; a chapter converted or copied under another name is still
    that chapter); None for others."""
    path = Path(path)
    if path.stem in chapters.CHAPTERS:
        return path.stem
    try:
        nb = nb if nb is not None else read_notebook(path)
    except Exception:
        return None
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            m = _NOTEBOOK_NAME.search(cell.source)
            if m and m.group(1) in chapters.CHAPTERS:
                return m.group(1)
    return None


def parameter_info(path: Path, nb=None) -> dict[str, ParamInfo]:
    """Valid parameter names of a notebook: the registry's for a chapter, else its parameters cell."""
    return _parameter_info(Path(path), chapter_name(path, nb), nb)


def _parameter_info(path: Path, name: str | None, nb) -> dict[str, ParamInfo]:
    if name is not None:
        return {
            k: ParamInfo(k, p.kind, p.default, p.value("quick"), p.help)
            for k, p in chapters.chapter(name).all_params.items()
        }
    from papermill.inspection import _infer_parameters

    nb = nb if nb is not None else read_notebook(path)
    out = {}
    for p in _infer_parameters(nb, name="python3", language="python"):
        default = _literal(p.default)
        quick = "quick" if p.name == "profile" else default
        kind = p.inferred_type_name if p.inferred_type_name not in (None, "None") else type(default).__name__
        out[p.name] = ParamInfo(p.name, kind, default, quick, p.help or "")
    return out


def _literal(text: str) -> Any:
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def describe_parameters(info: dict[str, ParamInfo]) -> str:
    lines = []
    for p in info.values():
        q = "" if p.quick == p.default else f" (quick: {p.quick!r})"
        lines.append(f"  {p.name:<22} {p.kind:<9} default {p.default!r}{q}  {p.help}".rstrip())
    return "\n".join(lines)


def parse_value(text: str) -> Any:
    """A command-line value as a YAML literal (``0.9``, ``[0, 1]``, ``true``, ``cpu``), like ``papermill -y``.

    YAML 1.1 reads ``1e-3`` as a string; such strings that Python reads as a number become numbers.
    """
    try:
        v = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            pass
        try:
            f = float(v)
            return f if math.isfinite(f) else v
        except ValueError:
            pass
    return v


def parameters_for(path: Path, profile: str, overrides: dict | None = None, nb=None) -> dict:
    """The values papermill injects: the profile's values plus ``overrides``, all validated.

    Raises :class:`ParameterError` (a ``ValueError``) naming an unknown parameter (with the list of
    valid ones) or carrying the engine's validation message for a bad value.
    """
    path = Path(path)
    chapters.check_choice("profile", profile, chapters.PROFILES)
    overrides = dict(overrides or {})
    if nb is None and path.stem not in chapters.CHAPTERS:  # read once: its name, its parameters cell
        nb = read_notebook(path)
    name = chapter_name(path, nb)
    info = _parameter_info(path, name, nb)
    unknown = [k for k in overrides if k not in info]
    if unknown:
        raise ParameterError(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} for "
            f"{path.stem}; valid parameters (name, type, default):\n{describe_parameters(info)}"
        )
    if "profile" in overrides and overrides["profile"] != profile:
        raise ParameterError(f"use --profile to choose the profile (got -p profile {overrides['profile']!r})")
    if name is not None:
        values = chapters.profile_values(name, profile)
        values.update(overrides)
        try:
            values = chapters.validate(name, values)
        except ValueError as exc:
            raise ParameterError(str(exc)) from None
        return values
    values = {k: p.quick if profile == "quick" else p.default for k, p in info.items()}
    if "profile" in info:
        values["profile"] = profile
    values.update(overrides)
    return values


def overrides_of(pairs) -> dict:
    """``-p NAME VALUE`` pairs as a dict of YAML values (:func:`parse_value`); a name given twice
    is refused (:class:`ParameterError`), never silently the last."""
    out: dict = {}
    for name, text in pairs:
        if name in out:
            raise ParameterError(f"parameter {name!r} given twice (-p {name})")
        out[name] = parse_value(text)
    return out


@dataclass(frozen=True)
class Request:
    """One notebook to execute at a profile, with the values it runs with: found and checked once
    (:func:`request`, or a sweep's plan), then handed on as it is."""

    path: Path  # the notebook (text or .ipynb), resolved
    profile: str
    overrides: dict  # the values given (``-p``, a sweep's cell), as read
    values: dict  # every value papermill injects: the profile's, then the overrides; all checked


def request(
    spec: str | Path, profile: str, overrides: dict | None = None, pairs=(), root: Path | None = None
) -> Request:
    """The command side's check of a run: the notebook ``spec`` found (:func:`find_notebook`), the
    command line's ``-p NAME VALUE`` ``pairs`` read (:func:`overrides_of`, over the values that
    ``overrides`` gives from Python) and every value checked (:func:`parameters_for`), once.

    Raises :class:`ParameterError` with the one-line message of the first problem.
    """
    given = {**dict(overrides or {}), **overrides_of(pairs)}
    path = find_notebook(spec, root)
    return Request(path, profile, given, parameters_for(path, profile, given))
