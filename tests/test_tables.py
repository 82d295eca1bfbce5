"""Tables for reading: numbered MyST tables with plain labels and no stray values."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from pruneplast import checks, tables

ROOT = Path(__file__).resolve().parent.parent


def test_a_table_reads_as_a_paper_table():
    df = pd.DataFrame(
        {
            "metric": ["weight_sparsity", "weight_sparsity", "kept_weights"],
            "treatment": ["ketamine", "ssri", "ketamine"],
            "ours": ["-0.0 [-0.1, 0.2]", "1.5", None],
            "count": [12000.0, 3.0, math.nan],
        }
    ).set_index(["metric", "treatment"])
    md = tables.to_markdown(df)
    lines = md.splitlines()
    assert lines[0] == "| metric | treatment | ours | count |"
    assert lines[2] == "| weight sparsity (%) | ketamine-like | 0.0 [-0.1, 0.2] | 12,000 |"
    assert lines[3].startswith("|   | SSRI-like |")  # the repeated outer label is left blank
    assert lines[4] == "| kept weights | ketamine-like | — | — |"
    assert "-0.0" not in md and "nan" not in md.lower() and "12000.0" not in md


def test_a_numbered_table_needs_a_caption_and_a_label():
    text = tables.directive(pd.Series([1, 2], name="n"), "Two counts.", "tbl-two")
    assert text.startswith("```{table} Two counts.\n:name: tbl-two\n")
    with pytest.raises(ValueError, match="caption"):
        tables.directive(pd.Series([1]), "  ", "tbl-x")
    with pytest.raises(ValueError, match="label"):
        tables.directive(pd.Series([1]), "A caption.", "Table One")


def test_checks_show_keeps_the_checked_numbers_behind_a_captioned_table(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, metadata=None: shown.append((obj, metadata)))
    checks.show(pd.Series([1.0, 2.0], index=["a", "b"], name="x"), "two", caption="Two values.", label="tbl-two")
    obj, meta = shown[0]
    assert obj.data.startswith("```{table} Two values.")
    assert meta[checks.META_KEY]["name"] == "two" and meta[checks.META_KEY]["quantities"]


def test_html_tables_carry_a_caption():
    html = tables.html(pd.DataFrame({"command": ["pruneplast run 02 -p sparsity <1.5>"]}), "Commands tried.")
    assert html.index("<caption") < html.index("<thead") and "&lt;1.5&gt;" in html


@pytest.mark.slow
def test_jupytext_opens_the_chapters_as_myst_notebooks():
    from jupytext.config import load_jupytext_configuration_file

    config = load_jupytext_configuration_file(str(ROOT / "jupytext.toml"))
    assert config.formats in ("md:myst", ["md:myst"])
    import json

    viewers = json.loads((ROOT / "lab" / "overrides.json").read_text())
    assert viewers["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]["markdown"] == "Jupytext Notebook"


def test_the_repository_is_named_in_one_place_and_turns_on_the_buttons(tmp_path):
    from pruneplast.booktools import sphinxext

    assert sphinxext.repository_url(ROOT) == ""  # unset here: the book shows no repository buttons
    assert sphinxext.repository_options("", {"a": 1}) == {"a": 1}
    (tmp_path / "pyproject.toml").write_text('[tool.pruneplast]\nrepository = "https://example.org/lab/pruneplast"\n')
    url = sphinxext.repository_url(tmp_path)
    opts = sphinxext.repository_options(url)
    assert url == "https://example.org/lab/pruneplast" and opts["use_repository_button"] and opts["use_issues_button"]
    assert opts["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
