"""The prose follows the run: a chapter rendered under other parameters says nothing its numbers
contradict.

A chapter's text is rendered as the book renders it (each ``{glue:text}`` role replaced by the value
the executed notebook glued, formatted and typeset by :mod:`pruneplast.typeset`) and read for the
contradictions a parameter change used to leave: a count of one with a plural noun ("1 replicate
seeds", "for 1 epochs"), a range whose ends are the same ("between 5 and 5 epochs", "from 3 to 3"),
the same value stated twice for what should be two points ("97.8% after 5 epochs, 97.8% after 5"),
and a number of seeds typed in the prose that is not the number the run used.

:func:`test_chapter_3_under_two_parameter_sets` executes chapter 3 at two small parameter sets (one
seed and three epochs; two seeds and five epochs, which is the quick profile, so ``make test``
reads the quick book's execution for it) and checks both;
:func:`test_the_quick_book_reads_without_contradictions` checks every chapter of the built quick
book when it is there.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from pruneplast.typeset import agree, typeset

ROOT = Path(__file__).resolve().parents[2]
GLUE_ROLE = re.compile(r"\{glue:text\}`([^`]+)`")
GLUE_MD = re.compile(r"\{glue:md\}`([^`]+)`")
NUMBER_WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "ten": 10}


def glued(nb: dict) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            scrap = (o.get("metadata") or {}).get("scrapbook", {})
            if scrap.get("name"):  # glue(display=False) stores its data under a mime prefix
                prefix = scrap.get("mime_prefix", "")
                out[scrap["name"]] = {k.removeprefix(prefix): v for k, v in o.get("data", {}).items()}
    return out


def render(nb: dict) -> str:
    """The notebook's markdown as a reader sees it (glue roles replaced, numbers typeset)."""
    from myst_nb.core.variables import format_plain_text

    values = glued(nb)

    def text(m: re.Match[str]) -> str:
        key, _, fmt = m.group(1).rpartition(":") if ":" in m.group(1) else (m.group(1), "", "")
        data = values.get(key.rpartition("::")[2], {})
        tp = data.get("text/plain")
        if tp is None:
            return f"<missing {key}>"
        tp = "".join(tp) if isinstance(tp, list) else tp
        return typeset(format_plain_text(tp, fmt or "s"))

    def md(m: re.Match[str]) -> str:
        data = values.get(m.group(1).split(":")[0], {})
        v = data.get("text/markdown", "")
        return "".join(v) if isinstance(v, list) else v

    parts = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            src = re.sub(r"```.*?```", "", src, flags=re.S)
            parts.append(GLUE_MD.sub(md, GLUE_ROLE.sub(text, src)))
    return agree("\n\n".join(parts))


def contradictions(text: str, n_seeds: int | None = None) -> list[str]:
    """What a reader would catch in rendered prose (see the module docstring)."""
    flat = " ".join(text.split())
    out = []
    for m in re.finditer(
        r"(?<![\w.,\u2212-])1 (?:replicate |changed )?(seeds|epochs|cycles|settings|replicates)\b", flat
    ):
        out.append(f"a count of one with a plural: {flat[max(0, m.start() - 40) : m.end() + 10]!r}")
    for m in re.finditer(r"\b(between|from) (\S+?)%? (and|to) \2\b", flat):
        out.append(f"a range with equal ends: {flat[max(0, m.start() - 30) : m.end() + 15]!r}")
    for m in re.finditer(r"(\d+(?:\.\d+)?%?) (at|after) (\d+)\b[^.;]{0,40}?\b\1 \2 \3\b", flat):
        out.append(f"one value stated twice: {flat[max(0, m.start() - 30) : m.end() + 10]!r}")
    if n_seeds is not None:
        for m in re.finditer(r"\b(\d+|two|three|four|five|ten) (?:replicate )?seeds\b", flat):
            k = NUMBER_WORDS.get(m.group(1), None) if not m.group(1).isdigit() else int(m.group(1))
            before = flat[max(0, m.start() - 60) : m.start()]
            if k not in (None, n_seeds) and not re.search(r"study|studies|its |paper|profile|quick", before):
                out.append(f"{m.group(0)!r} but the run used {n_seeds}: {flat[max(0, m.start() - 60) : m.end()]!r}")
    return out


def test_the_rules_catch_what_they_should():
    bad = (
        "averaged over 1 replicate seeds. Between 5 and 5 epochs the drop is small. "
        "It reached 97.8% after 5 epochs, 97.8% after 5 and more later. Over ten seeds we saw it."
    )
    found = contradictions(bad, n_seeds=2)
    assert len(found) == 4, found
    good = (
        "averaged over 1 replicate seed. Between 5 and 15 epochs it rose from 90.0% after 5 epochs to "
        "97.8% after 15. The study used ten seeds; the quick profile uses two seeds. Over 2 seeds we saw it."
    )
    assert contradictions(good, n_seeds=2) == []


def _run_chapter(tmp_path: Path, params: dict) -> dict:
    """Chapter 3 executed at the quick profile with ``params`` changed; when the change leaves the
    quick profile as it is, the quick book's executed chapter (``$PRUNEPLAST_EXECUTED``, as
    ``make test`` sets it) is that run, and is read instead of executing the chapter again."""
    from pruneplast.booktools.execution import execute
    from pruneplast.booktools.notebooks import parameters_for

    src = ROOT / "notebooks" / "03_consolidation.md"
    quick = parameters_for(src, "quick")
    done = Path(os.environ.get("PRUNEPLAST_EXECUTED", "/nonexistent")) / "notebooks" / "03_consolidation.ipynb"
    if {**quick, **params} == quick and done.is_file():
        return json.loads(done.read_text(encoding="utf-8"))
    out = tmp_path / "03.ipynb"
    os.environ.setdefault("PRUNEPLAST_PROGRESS", "0")
    execute(src, out, {**parameters_for(src, "quick"), **params}, results_root=tmp_path / "results", cwd=ROOT)
    return json.loads(out.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "params", [{"seeds": [0], "max_epochs": 3}, {"seeds": [0, 1], "max_epochs": 5}], ids=["1seed-3ep", "2seeds-5ep"]
)
@pytest.mark.slow
def test_chapter_3_under_two_parameter_sets(tmp_path, params):
    nb = _run_chapter(tmp_path, params)
    text = render(nb)
    assert "<missing" not in text, re.findall(r"<missing [^>]+>", text)
    assert contradictions(text, n_seeds=len(params["seeds"])) == []


def test_the_quick_book_reads_without_contradictions():
    exec_dir = Path(os.environ.get("PRUNEPLAST_EXECUTED", ROOT / "_build" / "test" / "exec" / "quick"))
    pages = sorted((exec_dir / "notebooks").glob("0*.ipynb")) if exec_dir.is_dir() else []
    if not pages:
        pytest.skip(f"no executed quick book in {exec_dir}: run `make test`")
    problems = []
    for page in pages:
        nb = json.loads(page.read_text(encoding="utf-8"))
        problems += [f"{page.stem}: {p}" for p in contradictions(render(nb))]
    assert not problems, "\n".join(problems)
