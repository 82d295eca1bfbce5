"""How the book prints numbers (:mod:`pruneplast.typeset`), and that the rendered pages print every
glued value as its source says.

* The unit tests run anywhere: negative values keep their sign as a minus sign (U+2212), values
  that round to zero lose it, hyphens that are not signs stay.
* :func:`test_every_inline_value_equals_its_glued_value` reads the built quick book (``make test``
  builds it first): for every page built from an executed notebook, each glued value in the HTML
  (``<span class="pasted-text">``) is compared, in order, with the value the notebook glued under
  that name, formatted with the role's format and typeset. A sign lost, a value from another run or
  a role that rendered nothing fails it.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
from pathlib import Path

import pytest

from pruneplast.typeset import MINUS, MISSING, agree, difference, number, plain, typeset

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("-0.3", f"{MINUS}0.3"),
        ("the drop is -0.1 points (95% CI -0.3 to 0.4)", f"the drop is {MINUS}0.1 points (95% CI {MINUS}0.3 to 0.4)"),
        ("-0.4", f"{MINUS}0.4"),
        ("[-0.01, 0.2]", f"[{MINUS}0.01, 0.2]"),
        ("changes by -12.5 points", f"changes by {MINUS}12.5 points"),
        ("-0.0", "0.0"),
        ("-0", "0"),
        ("-0.00 points", "0.00 points"),
        (f"{MINUS}0.0%", "0.0%"),
        ("-0.05", f"{MINUS}0.05"),
        # hyphens that are not signs
        ("chapters 2-6", "chapters 2-6"),
        ("2026-01-06", "2026-01-06"),
        ("x-1", "x-1"),
        ("-p sparsity 0.9", "-p sparsity 0.9"),
        ("a 5-epoch course", "a 5-epoch course"),
        ("0.0-0.1", "0.0-0.1"),
    ],
)
def test_typeset_signs(text, want):
    assert typeset(text) == want
    assert typeset(want) == want  # typesetting twice changes nothing


@pytest.mark.parametrize(
    ("x", "digits", "signed", "want"),
    [
        (-0.3, 1, False, f"{MINUS}0.3"),
        (-0.04, 1, False, "0.0"),
        (-0.04, 2, False, f"{MINUS}0.04"),
        (-0.0, 1, True, "0.0"),
        (0.3, 1, True, "+0.3"),
        (-0.3, 1, True, f"{MINUS}0.3"),
        (-94.66, 1, False, f"{MINUS}94.7"),
        (12.0, 0, False, "12"),
        (9999.0, 0, False, "9999"),
        (395264, 0, False, "395,264"),
        (-12345.67, 1, True, f"{MINUS}12,345.7"),
        (10000.04, 1, True, "+10,000.0"),
        (math.nan, 1, False, "\u2014"),
    ],
)
def test_number(x, digits, signed, want):
    assert number(x, digits, signed) == want
    if not math.isnan(x):
        assert float(plain(number(x, digits))) == pytest.approx(round(x, digits), abs=10**-digits)


@pytest.mark.parametrize(
    ("x", "figures", "want"),
    [
        (3.4868717193603516e-06, 2, "3.5e-06"),
        (3.4868717193603516e-06, 1, "3e-06"),
        (-2.0e-07, 2, f"{MINUS}2.0e-07"),
        (0.0, 2, "0"),
        (-0.0, 1, "0"),
        (float("nan"), 2, MISSING),
    ],
)
def test_a_rounding_size_difference_reads_zero_when_the_bits_agree(x, figures, want):
    assert difference(x, figures) == want


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("on 1 replicate seeds", "on 1 replicate seed"),
        ("for 1 epochs", "for 1 epoch"),
        ("1 changed settings", "1 changed setting"),
        ("11 epochs", "11 epochs"),
        ("0.1 points", "0.1 points"),
        ("21 seeds", "21 seeds"),
    ],
)
def test_a_count_of_one_takes_the_singular(text, want):
    assert agree(text) == want


def test_a_count_of_one_agrees_across_a_line_break():
    """Source lines break anywhere; the text node then holds a newline between count and noun."""
    assert agree("average 1 replicate\nseeds") == "average 1 replicate\nseed"
    assert agree("for 1\nepochs, 11 seeds") == "for 1\nepoch, 11 seeds"


def test_sphinx_hook_makes_a_glued_one_singular():
    from docutils import nodes

    from pruneplast.booktools.sphinxext import typeset_numbers

    doc = nodes.document(None, None)
    for n in ("1", "2"):
        para = nodes.paragraph()
        para += nodes.Text("averaged over ")
        para += nodes.inline(n, n, classes=["pasted-text"])
        para += nodes.Text(" replicate seeds.")
        doc += para
    typeset_numbers(None, doc, "page")
    assert "over 1 replicate seed." in doc.astext() and "over 2 replicate seeds." in doc.astext()


def test_sphinx_hook_typesets_prose_tables_and_leaves_code():
    from docutils import nodes

    from pruneplast.booktools.sphinxext import typeset_numbers

    doc = nodes.document(None, None)
    para = nodes.paragraph()
    para += nodes.Text("the drop is ")
    para += nodes.inline("-0.3", "-0.3", classes=["pasted-text"])
    para += nodes.Text(" points and -0.0 at 5; run ")
    para += nodes.literal("-p x -1", "-p x -1")
    doc += para
    doc += nodes.literal_block("x = -0.5", "x = -0.5")
    table = "<style>.a{margin:-1px}</style><table><td>-0.3</td><td>-0.0</td></table><script>f(-1)</script>"
    doc += nodes.raw("", table, format="html")
    typeset_numbers(None, doc, "page")
    text = doc.astext()
    assert f"the drop is {MINUS}0.3 points and 0.0 at 5" in text
    assert "-p x -1" in text and "x = -0.5" in text  # code as typed
    raw = next(iter(doc.findall(nodes.raw))).astext()
    assert f"<td>{MINUS}0.3</td><td>0.0</td>" in raw
    assert "margin:-1px" in raw and "f(-1)" in raw


# --------------------------------------------------------------------------- the rendered book
GLUE_ROLE = re.compile(r"\{glue:text\}`([^`]+)`")
PASTED = re.compile(r'<span class="pasted-text">(.*?)</span>', re.S)


def _exec_dir() -> Path:
    env = os.environ.get("PRUNEPLAST_EXECUTED")
    d = Path(env) if env else ROOT / "_build" / "test" / "exec" / "quick"
    if not d.is_dir():
        pytest.skip(f"no executed quick book in {d}: run `make test` (it builds the quick book first)")
    return d


def _glued(nb: dict) -> dict[str, str]:
    """Every value a notebook glued: name -> its text/plain representation."""
    out: dict[str, str] = {}
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            scrap = (o.get("metadata") or {}).get("scrapbook", {})
            key = scrap.get("mime_prefix", "") + "text/plain"  # glue(display=False) stores it prefixed
            if scrap.get("name") and key in o.get("data", {}):
                tp = o["data"][key]
                out[scrap["name"]] = "".join(tp) if isinstance(tp, list) else tp
    return out


def _roles(nb: dict) -> list[tuple[str, str]]:
    """The ``{glue:text}`` roles of a notebook's markdown cells, in reading order: (key, format)."""
    roles = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        src = re.sub(r"```.*?```", "", src, flags=re.S)  # code blocks show roles as typed
        for m in GLUE_ROLE.finditer(src):
            key, _, fmt = m.group(1).rpartition(":") if ":" in m.group(1) else (m.group(1), "", "")
            roles.append((key, fmt))
    return roles


#: What Sphinx's smart quotes make of a straight quote in a page (a typographic change, not a value's).
SMART_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})


def _strip_tags(s: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", s)).translate(SMART_QUOTES)


def _chapter_pages(exec_dir: Path, html_dir: Path) -> list[tuple[Path, Path]]:
    pages = []
    for nb in sorted(exec_dir.rglob("*.ipynb")):
        page = html_dir / nb.relative_to(exec_dir).with_suffix(".html")
        if page.exists():
            pages.append((nb, page))
    return pages


def glue_mismatches(exec_dir: Path, html_dir: Path) -> tuple[int, list[str]]:
    """(values checked, problems): each page's glued values against what its notebook glued."""
    from myst_nb.core.variables import format_plain_text

    pages = _chapter_pages(exec_dir, html_dir)
    notebooks = {nb: json.loads(nb.read_text(encoding="utf-8")) for nb, _ in pages}
    glued_by_doc = {nb.relative_to(exec_dir).with_suffix("").as_posix(): _glued(d) for nb, d in notebooks.items()}
    problems: list[str] = []
    checked = 0
    for nb, page in pages:
        doc = nb.relative_to(exec_dir).with_suffix("").as_posix()
        roles = _roles(notebooks[nb])
        shown = [_strip_tags(s) for s in PASTED.findall(page.read_text(encoding="utf-8"))]
        if len(shown) != len(roles):
            problems.append(f"{doc}: {len(roles)} glue roles but {len(shown)} glued values in the page")
            continue
        for (key, fmt), got in zip(roles, shown):
            src_doc, _, name = key.rpartition("::")
            values = glued_by_doc.get(src_doc or doc, {})
            if name not in values:
                problems.append(f"{doc}: {key!r} was not glued by {src_doc or doc}")
                continue
            want = typeset(format_plain_text(values[name], fmt or "s"))
            checked += 1
            if got != want:
                problems.append(f"{doc}: {key}:{fmt} shows {got!r}, the glued value gives {want!r}")
    return checked, problems


def test_every_inline_value_equals_its_glued_value():
    exec_dir = _exec_dir()
    html_dir = exec_dir.parent.parent / "html"
    if not (html_dir / "index.html").exists():
        pytest.skip(f"no built quick book in {html_dir}: run `make test`")
    checked, problems = glue_mismatches(exec_dir, html_dir)
    assert checked > 100, f"only {checked} glued values checked: the book's pages were not found"
    assert not problems, "\n".join(problems[:30])


@pytest.mark.slow
def test_the_rendered_check_catches_a_lost_sign(tmp_path):
    """A page that prints 0.3 for a glued -0.31 (what the old negative-zero hook did) is caught,
    and so is a role that rendered nothing."""
    nb = {
        "cells": [
            {"cell_type": "code", "source": "glue(...)", "outputs": [
                {"output_type": "display_data", "metadata": {"scrapbook": {"name": "drop", "mime_prefix": ""}},
                 "data": {"text/plain": "-0.31"}},
            ]},
            {"cell_type": "markdown", "source": "The drop is {glue:text}`drop:.1f` points."},
        ]
    }  # fmt: skip
    (tmp_path / "exec").mkdir()
    (tmp_path / "html").mkdir()
    (tmp_path / "exec" / "ch.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    page = tmp_path / "html" / "ch.html"
    page.write_text(f'<p>The drop is <span class="pasted-text">{MINUS}0.3</span> points.</p>', encoding="utf-8")
    assert glue_mismatches(tmp_path / "exec", tmp_path / "html") == (1, [])
    page.write_text('<p>The drop is <span class="pasted-text">0.3</span> points.</p>', encoding="utf-8")
    checked, problems = glue_mismatches(tmp_path / "exec", tmp_path / "html")
    assert checked == 1 and "shows '0.3'" in problems[0]
    page.write_text("<p>The drop is  points.</p>", encoding="utf-8")
    assert "1 glue roles but 0" in glue_mismatches(tmp_path / "exec", tmp_path / "html")[1][0]
