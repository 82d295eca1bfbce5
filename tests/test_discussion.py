"""The abstract's and the Discussion's sentences (:mod:`pruneplast.discussion`): counts agree with
their nouns, numbers keep their signs, and a part whose chapter did not run says so."""

from __future__ import annotations

import pandas as pd
import pytest

from pruneplast import discussion as d
from pruneplast import typeset
from pruneplast.typeset import MINUS


def test_plural_and_listing():
    assert typeset.plural(1, "seed") == "1 seed" and typeset.plural(2, "seed") == "2 seeds"
    assert typeset.plural(0, "claim") == "0 claims"
    assert typeset.listing([]) == "" and typeset.listing(["A1"]) == "A1"
    assert typeset.listing(["A1", "B2"]) == "A1 and B2" and typeset.listing(["A1", "B2", "B3"]) == "A1, B2 and B3"


def _tally(covered, reproduced, consistent, differs, claims=19):
    return d.Tally(claims, covered, reproduced, consistent, differs, 0, pd.DataFrame())


def test_tally_sentence_agrees_with_its_counts():
    assert "1 is covered" in _tally(1, 1, 0, 0).sentence()
    assert "0 consistent" in _tally(1, 1, 0, 0).sentence() and "0 differ." in _tally(1, 1, 0, 0).sentence()
    assert "1 differs." in _tally(3, 1, 1, 1).sentence()
    assert "None of the studies' 19 headline claims" in _tally(0, 0, 0, 0).sentence()


def test_atlas_sentence_agrees_with_its_counts():
    one = d.AtlasSummary(1, ["A3"], [("B8", 0, "weakens")])
    assert "A3 holds" in one.sentence() and "every one of the atlas's 1 changed setting" in one.sentence()
    assert "B8 (holds in 0 of 1; reference: weakens) does not hold" in one.sentence()
    two = d.AtlasSummary(12, ["A3", "A4"], [])
    assert "A3 and A4 hold" in two.sentence() and "12 changed settings" in two.sentence()
    assert "no conclusion holds everywhere" in d.abstract_results(
        _tally(1, 1, 0, 0),
        d.TableShare(10, 0, 0, float("nan"), pd.DataFrame()),
        d.AtlasSummary(3, [], [("A2", 1, "holds")]),
    )


def test_negative_differences_keep_their_sign():
    every = pd.DataFrame(
        [{"table": "treatments", "row": "biased_accuracy", "column": "ketamine", "paper": 84.2, "paper_sd": 8.5,
          "ours": 83.9, "n": 1, "verdict": "reproduced"}]
    )  # fmt: skip
    text = d.ketamine_biased_sentence(every)
    assert f"{MINUS}0.3 points" in text and "mean of 1 seed)" in text
    assert "has not run" in d.ketamine_biased_sentence(every.iloc[0:0])
    effect = {"pruned": -0.35, "pruned_lo": -1.2, "pruned_hi": 0.4, "recovered": 0.0}
    text = d.data_set_sentence(effect)
    assert f"{MINUS}0.3 points (95% CI {MINUS}1.2 to 0.4)" in text or f"{MINUS}0.4 points" in text
    assert "difference is 0.0 points" in text
    assert "one data-set scheme only" in d.data_set_sentence(None)


def test_parts_not_run_say_so(tmp_path):
    (tmp_path / "results" / "quick").mkdir(parents=True)
    root = tmp_path / "results"
    assert d.atlas_summary("quick", root) is None
    assert d.data_set_effect("quick", root) is None
    t = d.tally("quick", root)
    assert t.covered == 0 and "None of the studies'" in t.sentence()
    share = d.table_share("quick", root)
    assert share.compared == 0 and "None of the studies'" in share.sentence()


def test_on_the_quick_results_when_present():
    from pruneplast.results import results_dir

    if not (results_dir("quick") / "05_treatments.csv").exists():
        pytest.skip("no quick results (make test builds the quick book first)")
    t = d.tally("quick")
    assert t.covered > 0 and t.reproduced + t.consistent + t.differs == t.covered
    s = d.table_share("quick")
    assert 0 < s.inside <= s.compared <= s.values
