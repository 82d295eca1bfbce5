"""A chapter's opening and closing (pruneplast.pages): parameters, choices, results and glue."""

from __future__ import annotations

import json
import math

import myst_nb
import pandas as pd
import pytest

from pruneplast import chapters, pages, results, scorecard
from pruneplast.config import ModelChoices, TaskConfig


@pytest.fixture
def glued(monkeypatch):
    """Every value glued, by name (myst_nb's glue recorded instead of displayed)."""
    out: dict = {}

    def glue(name, value, display=True):
        assert display is False, f"{name} glued visibly"
        out[name] = value

    monkeypatch.setattr(myst_nb, "glue", glue)
    return out


@pytest.fixture
def results_root(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNEPLAST_RESULTS", str(tmp_path))
    return tmp_path


def namespace(name: str, profile: str = "quick", **changes) -> dict:
    """A notebook's globals after its parameters cell (and papermill's, which injected nothing)."""
    return {**chapters.profile_values(name, profile), **changes, "In": []}


def frame(n: int = 3) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "experiment": "e",
            "condition": "c",
            "seed": range(n),
            "metric": "accuracy",
            "value": [50.0 + k for k in range(n)],
        }
    )


def test_opening_validates_and_builds_the_choices(glued):
    ns = namespace("03_consolidation", hidden=[64, 32], task_sigma=1.2, prune_scope="global", lr_factor=2.0)
    page = pages.open_chapter("03_consolidation", ns)
    assert page.params == chapters.validate("03_consolidation", ns)
    assert page.profile == "quick"
    assert page.choices == ModelChoices((64, 32), 1.2, "global", 2.0, 0.03)
    run = page.run_config()
    assert run.seeds == tuple(ns["seeds"]) and run.device == "cpu"
    assert run.task == ModelChoices((64, 32), 1.2, "global", 2.0, 0.03).task(ns["data_sets"])
    assert page.run_config("per_replicate").task.data_sets == "per_replicate"
    # the studies' numbers are glued for the prose
    assert glued and all(k.startswith("study_") for k in glued)


def test_a_chapter_without_choices_gets_the_studies_task(glued):
    page = pages.open_chapter("01_model_and_task", namespace("01_model_and_task"), study_numbers=False)
    assert page.choices is None and glued == {}
    assert page.run_config().task == TaskConfig()
    with pytest.raises(ValueError, match="takes no model choices"):
        page.run_config("shared")


def test_a_bad_value_fails_at_the_opening_naming_the_parameter(glued):
    with pytest.raises(ValueError, match=r"sparsity.*\[0\.0, 1\.0\)"):
        pages.open_chapter("02_pruning_cliff", namespace("02_pruning_cliff", sparsity=1.5))
    assert glued == {}  # nothing glued before the check


def test_closing_saves_reads_back_and_glues_the_runtime(glued, results_root, capsys):
    page = pages.open_chapter("01_model_and_task", namespace("01_model_and_task"), study_numbers=False)
    assert page.close(frame()) is None and page.claims == {}
    assert page.out == results_root / "quick" / "01_model_and_task.csv"
    pd.testing.assert_frame_equal(page.saved, results.load_results("01_model_and_task", "quick"))
    assert page.saved["value"].tolist() == [50.0, 51.0, 52.0]
    meta = json.loads(page.out.with_suffix(".json").read_text())
    assert meta["parameters"] == json.loads(json.dumps(page.params, default=str))
    assert 0 <= glued["runtime_s"] < 60
    assert f"results written to {page.out}" in capsys.readouterr().out
    assert not list(results_root.rglob("*.tmp"))  # written through temporary files, none left


def test_closing_without_results_saves_nothing_and_says_nothing(glued, results_root, capsys):
    page = pages.open_chapter("01_model_and_task", namespace("01_model_and_task"), study_numbers=False)
    page.close(None, say_where=False)
    assert "runtime_s" in glued and page.saved is None
    assert not list(results_root.rglob("*")) and capsys.readouterr().out == ""
    with pytest.raises(ValueError, match="need results to score"):
        page.close(None, claims=("A1_pruned_combined",))
    with pytest.raises(ValueError, match="call close"):
        page.why_differs()


def test_a_claim_the_run_cannot_score_says_so(glued, results_root):
    page = pages.open_chapter("02_pruning_cliff", namespace("02_pruning_cliff"))
    page.close(frame(), claims=("A1_pruned_combined",))
    assert page.claims == {"A1_pruned_combined": None}
    assert glued["verdict_A1"].data.startswith("**not scored here (")


def test_verdicts_of_a_scored_claim_are_the_scorecards(glued, results_root, monkeypatch):
    page = pages.open_chapter("02_pruning_cliff", namespace("02_pruning_cliff"))
    result = {"verdict": "reproduced", "tests": []}
    monkeypatch.setattr(scorecard, "evaluate", lambda cid, df: result if cid == "A3_recovered_combined" else {})
    page.close(frame(), claims=("A3_recovered_combined",))
    assert page.claims == {"A3_recovered_combined": result}
    assert glued["verdict_A3"].data == "**reproduced**"
    shown = page.chapter_verdicts()
    assert shown.data == scorecard.chapter_verdicts("02_pruning_cliff", page.saved)


def test_glue_hidden_glues_sentences_as_markdown(glued):
    pages.glue_hidden({"x": 1.5, "words": "a *sentence*"}, markdown=("words",))
    assert glued["x"] == 1.5 and glued["words"].data == "a *sentence*"
    with pytest.raises(ValueError, match="not among the values"):
        pages.glue_hidden({"x": 1.0}, markdown=("y",))
    assert math.isclose(glued["x"], 1.5)
