"""The explorer as a web app: its options checked by the app itself, once, before any work."""

from __future__ import annotations

from pathlib import Path

from pruneplast import chapters, cli
from pruneplast.booktools import notebooks

ROOT = Path(__file__).resolve().parents[2]


def test_explore_finds_the_explorer_and_checks_its_values_once(tmp_path, monkeypatch, capsys):
    found: list = []
    checked: list = []
    find, validate = notebooks.find_notebook, chapters.validate
    monkeypatch.setattr(notebooks, "find_notebook", lambda *a, **k: found.append(a[0]) or find(*a, **k))
    monkeypatch.setattr(chapters, "validate", lambda *a, **k: checked.append(a[0]) or validate(*a, **k))
    monkeypatch.setenv("PRUNEPLAST_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(ROOT)
    out = tmp_path / "app.ipynb"
    assert cli.main(["explore", "--profile", "quick", "-p", "seeds", "[4]", "--out", str(out)]) == 0
    assert found == ["explorer"] and checked == ["explorer"]
    text = out.read_text()
    assert "seeds = [4]" in text and "show_grid = False" in text  # the app's default, under -p
    assert f"explorer app notebook: {out}" in capsys.readouterr().out


def test_explore_options_are_the_apps_own(tmp_path, monkeypatch, capsys):
    """A bad parameter or port fails with the app's one-line message, from ``pruneplast explore``
    and from the app's own entry point alike."""
    from pruneplast.explorer import app

    monkeypatch.setenv("PRUNEPLAST_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(ROOT)
    out = str(tmp_path / "app.ipynb")
    for argv, says in (
        (["-p", "train_subset", "50"], "train_subset must be an integer [128, 12000]; got 50"),
        (["--serve", "0"], "port must be an integer [1, 65535]; got 0"),
        (["-p", "show_grid", "1", "-p", "show_grid", "0"], "parameter 'show_grid' given twice (-p show_grid)"),
    ):
        assert cli.main(["explore", "--out", out, *argv]) == 2
        assert capsys.readouterr().err.strip() == f"error: {says}"
        assert app.main(["--out", out, *argv]) == 2
        assert capsys.readouterr().err.strip() == f"error: {says}"
    assert not Path(out).exists()
