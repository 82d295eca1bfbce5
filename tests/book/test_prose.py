"""No number of the studies is typed in the book's prose: each is glued from the data file.

A decimal number in a page's text (outside code, code spans and maths) that equals a result of
the studies (``pruneplast.paper.numbers``) must be a glue role (``{glue:text}`study_...```), so a
change of the data file, or a typo, cannot leave the text saying something else. Numbers of the
protocol (gains, noise SDs, fractions, decay rates, the sparsity a 50% regrowth leaves) are not
results and may be typed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pruneplast import arms, paper, stress
from pruneplast.config import MaintenanceConfig, RegrowConfig, RelapseConfig, TaskConfig

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "notebooks").glob("*.md")) + sorted((ROOT / "book").glob("*.md"))


def protocol_numbers() -> set[float]:
    """Values set by the protocol rather than measured by the studies (rounded to 0.1, 0.01, 0.001):
    noise SDs, fractions, the relapse cap, the mood stabiliser's constants, the sparsities that
    pruning (95.0%), 50% regrowth (47.5%) and the relapse wave after it (68.5%) set by construction."""
    vals: list[float] = [0.5, 1.0, 1.5, 2.5, 0.3, 0.8, 0.03, 0.4, 0.6, 0.99, 0.975, 1.05, 0.15, 47.5, 68.5, 0.595, 95.0]
    for a in arms.names():
        t = arms.arm(a)
        vals += [t.gain, t.damping, t.noise_start, t.decay_rate, t.regrow.fraction, t.scale, t.gain - 1]
        vals.append(max(0.0, 1 - MaintenanceConfig().decay_steps * t.decay_rate))  # protection at test
    for c in stress.CONDITIONS.values():
        vals += [c.input_sigma, c.sigma_int]
    vals += [TaskConfig().sigma, RegrowConfig().fraction, RegrowConfig().init_std, RelapseConfig().fraction]
    return {round(v, d) for v in vals for d in (1, 2, 3)}


def prose(text: str) -> str:
    """A page's text without front matter, code cells, fenced blocks, code spans, maths or roles."""
    text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S)
    text = re.sub(r"```.*?\n```", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    text = re.sub(r"\{[a-z:]+\}`[^`]*`", "", text)  # roles: glue, numref, cite, ...
    text = re.sub(r"`[^`\n]*`", "", text)
    return re.sub(r"\$[^$\n]*\$", "", text)


def typed_study_numbers(text: str) -> list[str]:
    results = {round(v, 1) for v in paper.numbers().values()}
    allowed = protocol_numbers()
    out = []
    for i, line in enumerate(prose(text).split("\n"), 1):
        for m in re.finditer(r"(?<![\w.])[-−]?\d+\.\d+(?![\w.])", line):
            v = float(m.group().replace("−", "-"))
            if round(v, 1) in results and round(v, 1) not in allowed and round(v, 2) not in allowed:
                out.append(f"line {i}: {m.group()} in {line.strip()[:100]!r}")
    return out


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_study_number_is_typed(page):
    found = typed_study_numbers(page.read_text(encoding="utf-8"))
    assert not found, (
        f"{page.name} types numbers of the studies; glue them with {{glue:text}}`study_<name>:.1f` "
        "(pruneplast.paper.numbers names them):\n  " + "\n  ".join(found)
    )


def test_the_rule_catches_a_typed_number():
    assert typed_study_numbers("The study found 32.2% (combined).")
    assert not typed_study_numbers("The study found {glue:text}`study_A1_pruned_combined:.1f`%.")
    assert not typed_study_numbers("gain 1.25, noise SD 0.5 and 47.5% of the weights missing")


def test_every_glued_study_name_exists():
    names = {f"study_{k}" for k in paper.numbers()}
    for page in PAGES:
        for used in re.findall(r"\{glue:text\}`(study_[A-Za-z0-9_]+)", page.read_text(encoding="utf-8")):
            assert used in names, f"{page.name} quotes {used}, which pruneplast.paper.numbers does not name"


CROSS_GLUE = re.compile(r"\{glue:(\w*)\}`([^`]*::[^`]*)`")


def cross_glue_problem(page: Path, role: str, body: str) -> str | None:
    """Why a value glued from another page (``{glue:text}`page.ipynb::key:fmt```) would not resolve
    in the built book, as myst-nb reads it: a path relative to the page's folder with the staged
    file's suffix (text notebooks are staged as .ipynb) and, for ``glue:text``, a format spec (its
    last ``:`` separates the format from the key); None when it resolves."""
    from pruneplast.booktools import is_text_notebook

    path, rest = body.split("::", 1)
    target = (page.parent / path).resolve()
    source = target.with_suffix(".md")
    if target.suffix != ".ipynb" or not source.exists() or not is_text_notebook(source):
        return f"{body!r}: {path!r} is not a staged notebook relative to {page.parent.name}/"
    if role == "text" and (rest.count(":") != 1 or not rest.rsplit(":", 1)[1]):
        return f"{body!r}: glue:text needs key:format after '::'"
    return None


def test_glue_from_another_page_names_the_staged_notebook():
    found, problems = 0, []
    for page in sorted((ROOT / "book").glob("*.md")) + sorted((ROOT / "notebooks").glob("*.md")):
        for role, body in CROSS_GLUE.findall(page.read_text()):
            found += 1
            problems.append(cross_glue_problem(page, role, body))
    assert found >= 1 and not any(problems), problems  # the front page's abstract at least


def test_the_cross_page_rule_catches_the_forms_that_fail():
    intro = ROOT / "book" / "intro.md"
    assert cross_glue_problem(intro, "text", "discussion.ipynb::abstract_results:s") is None
    for body in ("book/discussion::abstract_results:s", "discussion::abstract_results:s",
                 "discussion.ipynb::abstract_results", "methods.ipynb::x:s"):  # fmt: skip
        assert cross_glue_problem(intro, "text", body), body
