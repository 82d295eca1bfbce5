"""The notebook checks' references: write them from executed notebooks, compare executed notebooks with them."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Iterable

from .. import chapters
from ..results import atomic_write, project_root
from ._common import fmt_time, log
from .execution import execute
from .notebooks import find_notebook, parameters_for

# --------------------------------------------------------------------------- notebook-check references
REFERENCE_DIR = "tests/reference"


def chapter_sources(root: Path | None = None) -> list[Path]:
    """Registered chapters whose notebook exists, in registry order."""
    root = Path(root or project_root())
    return [
        root / "notebooks" / f"{name}.md" for name in chapters.CHAPTERS if (root / "notebooks" / f"{name}.md").exists()
    ]


def reference_path(path: Path, root: Path | None = None) -> Path:
    return Path(root or project_root()) / REFERENCE_DIR / f"{Path(path).stem}.yaml"


def reference_text(path: Path, nb) -> str:
    """The reference file of an executed chapter: its quick parameters and its checked quantities."""
    from .. import checks, machine

    found = checks.collect(nb)
    if not found:
        raise RuntimeError(f"{Path(path).stem} shows no checked table (pruneplast.checks.show); see book/methods.md")
    params = parameters_for(path, "quick")
    doc = {"chapter": Path(path).stem, "profile": "quick", "parameters": params, "checks": found}
    m = machine.facts()
    header = (
        f"Notebook checks of {Path(path).stem} at the quick profile (`make reference` rewrites this file).\n"
        "Each quantity: its value in this reference and the tolerance (same unit) that a fresh run must\n"
        "agree within; tol 0 = exact, tol null = text compared exactly. Written on: "
        f"{m['cpu_model']}, torch {m['torch_version']} ({m['torch_cpu_capability']}, {m['blas']})."
    )
    return checks.dump(doc, header)


def read_reference(path: Path, root: Path | None = None) -> dict:
    """A chapter's reference as a dict; a clear error when missing or unreadable."""
    from .. import checks

    ref = reference_path(path, root)
    if not ref.exists():
        raise FileNotFoundError(
            f"no notebook-check reference for {Path(path).stem}: run `make reference` and commit {ref}"
        )
    try:
        doc = checks.load(ref.read_text(encoding="utf-8"))
    except Exception as exc:
        raise RuntimeError(f"{ref} is not a readable reference ({exc}); run `make reference`") from None
    for k in ("chapter", "parameters", "checks"):
        if k not in doc:
            raise RuntimeError(f"{ref} has no {k!r} entry; run `make reference`")
    return doc


def check_against_reference(path: Path, nb, root: Path | None = None) -> list[str]:
    """Every failure of an executed chapter's checks against its reference (empty: it passes)."""
    from .. import checks

    doc = read_reference(path, root)
    failures = []
    want = json.loads(json.dumps(parameters_for(path, "quick"), default=str))
    if json.loads(json.dumps(doc["parameters"], default=str)) != want:
        failures.append(
            f"the reference of {Path(path).stem} was made with other quick parameters "
            f"({doc['parameters']} vs {want}); run `make reference`"
        )
    return failures + checks.compare(doc["checks"], checks.collect(nb))


def make_reference(
    names: Iterable[str] | None = None, root: Path | None = None, executed: Path | str | None = None
) -> list[Path]:
    """Execute chapters at the quick profile and write ``tests/reference/<stem>.yaml``.

    executed: a folder of chapters already executed at the quick profile (``<stem>.ipynb``, e.g.
        ``_build/test/exec/quick/notebooks`` after ``make test``) to take the checks from instead.
    """
    import tempfile

    import nbformat

    root = Path(root or project_root())
    sources = chapter_sources(root)
    if names:
        sources = [find_notebook(n, root) for n in names]
    written = []
    with tempfile.TemporaryDirectory(prefix="pruneplast-ref-") as tmp:
        for i, src in enumerate(sources, 1):
            log(f"[{i}/{len(sources)}] reference for {src.stem} (quick) ...")
            t0 = time.perf_counter()
            done = Path(executed) / f"{src.stem}.ipynb" if executed is not None else None
            if done is not None:
                if not done.exists():
                    raise FileNotFoundError(f"no executed notebook {done}")
                nb = nbformat.read(done, as_version=4)
                injected = [c for c in nb.cells if "injected-parameters" in c.get("metadata", {}).get("tags", [])]
                want = parameters_for(src, "quick")
                got: dict = {}
                if injected:
                    exec(compile(injected[0].source, str(done), "exec"), {}, got)  # literals papermill wrote
                if json.dumps(got, sort_keys=True, default=str) != json.dumps(want, sort_keys=True, default=str):
                    raise RuntimeError(f"{done} was not executed with the quick parameters of {src.stem}")
            else:
                nb = None
            try:
                if nb is None:
                    nb = execute(
                        src, Path(tmp) / f"{src.stem}.ipynb", parameters_for(src, "quick"), results_root=Path(tmp)
                    )
            except Exception as exc:
                kept = root / "_build" / "reference-failed" / f"{src.stem}.failed.ipynb"
                kept.parent.mkdir(parents=True, exist_ok=True)
                failed = Path(tmp) / f"{src.stem}.failed.ipynb"
                if failed.exists():
                    shutil.copy2(failed, kept)
                what = (
                    f"{exc.ename}: {getattr(exc, 'evalue', '')}"
                    if hasattr(exc, "ename")
                    else f"{type(exc).__name__}: {exc}"
                )
                raise RuntimeError(
                    f"{src.stem} failed at the quick profile ({what}); the partly executed notebook is {kept}"
                ) from None
            target = reference_path(src, root)
            atomic_write(target, reference_text(src, nb))
            written.append(target)
            from .. import checks

            n = sum(len(c["quantities"]) for c in checks.collect(nb).values())
            log(
                f"    {target}: {len(checks.collect(nb))} check(s), {n} quantities, "
                f"{fmt_time(time.perf_counter() - t0)}"
            )
    return written
