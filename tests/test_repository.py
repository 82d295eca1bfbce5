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
