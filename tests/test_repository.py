"""The repository's own files: no merge leftovers in any tracked text file or script."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"^(<{7} |>{7} |={7}$)", re.M)


def leftovers(text: str) -> list[str]:
    """The lines of ``text`` that a merge conflict leaves behind."""
    return [m.group(0) for m in MARKER.finditer(text)]


def test_no_merge_conflict_markers_in_tracked_files():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    found = {}
    for name in files:
        path = ROOT / name
        if path.suffix in {".png", ".svg", ".pdf", ".ipynb", ".pt"} or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        if leftovers(text):
            found[name] = leftovers(text)
    assert not found, found


def test_the_rule_finds_a_leftover():
    assert leftovers("a\n<<<<<<< HEAD\nx\n=======\ny\n>>>>>>> branch\n") == ["<<<<<<< ", "=======", ">>>>>>> "]
    assert leftovers("a heading\n=======\n"[:-9] + "text ======= inside\n") == []


MAIN_BLOCK = re.compile(r"^if __name__ == [\"']__main__[\"']:", re.M)


def test_each_script_runs_its_main_once():
    """A merge that keeps both sides' tails leaves a second ``if __name__ == "__main__"`` block:
    the script then does all its work twice (make bench did, for a quarter of an hour)."""
    files = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True)
    twice = {n: k for n in files.stdout.split() if (k := len(MAIN_BLOCK.findall((ROOT / n).read_text("utf-8")))) > 1}
    assert not twice, twice
    assert len(MAIN_BLOCK.findall('if __name__ == "__main__":\n    main()\n' * 2)) == 2


def test_the_longest_test_files_are_test_files_that_make_test_hands_out_first():
    """``conftest.LONGEST_FIRST`` names test files that exist, once each, and ``make test`` keeps
    pytest-xdist from reordering them (``--no-loadscope-reorder``)."""
    from conftest import LONGEST_FIRST

    assert len(set(LONGEST_FIRST)) == len(LONGEST_FIRST)
    missing = [p for p in LONGEST_FIRST if not (ROOT / p).is_file() or not Path(p).name.startswith("test_")]
    assert not missing, f"conftest.LONGEST_FIRST names no test file: {missing}"
    make = (ROOT / "Makefile").read_text(encoding="utf-8")
    line = re.search(r"-m pytest -n \$\(TEST_PROCESSES\) --dist loadfile[^\n]*\\\n[^\n]*--durations", make)
    assert line and "--no-loadscope-reorder" in line.group(0), "make test's pytest line lost --no-loadscope-reorder"


def test_every_test_file_has_a_name_of_its_own():
    """The test folders are not packages, so pytest imports each test file under its bare name:
    two files of one name in two folders stop the second from being collected."""
    names: dict[str, list[str]] = {}
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        names.setdefault(path.name, []).append(str(path.relative_to(ROOT)))
    assert not {name: paths for name, paths in names.items() if len(paths) > 1}
