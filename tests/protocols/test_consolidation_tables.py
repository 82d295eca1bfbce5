"""Chapter 3's tables and quoted numbers (protocols.consolidation_tables) on synthetic tidy rows."""

from __future__ import annotations

import pandas as pd
import pytest

from pruneplast.protocols import consolidation_tables

SEEDS = (0, 1)


def curve_rows(last: int = 8) -> pd.DataFrame:
    """A duration curve: combined accuracy 30 + 8 e (to 90), extreme 25 + 3 e, relapse drop 10 - e."""
    rows = []
    for s in SEEDS:
        for e in range(last + 1):
            lab = dict(experiment="consolidation", epochs=e, seed=s)
            rows += [
                dict(lab, phase="pre_relapse", condition="combined", metric="accuracy", value=min(30 + 8 * e, 90) + s),
                dict(lab, phase="pre_relapse", condition="internal_extreme", metric="accuracy", value=25 + 3 * e + s),
                dict(lab, phase="post_relapse", condition="combined", metric="relapse_drop", value=10 - e + s),
                dict(lab, phase="pre_relapse", condition="-", metric="weight_sparsity", value=47.5),
                dict(lab, phase="post_relapse", condition="-", metric="weight_sparsity", value=68.5),
            ]
    return pd.DataFrame(rows)


def test_sparsity_table_shows_the_first_and_last_checkpoint():
    table = consolidation_tables.sparsity_table(curve_rows())
    assert list(table.index) == [0, 8]
    assert list(table.columns) == ["post_relapse", "pre_relapse"]
    assert table.loc[8, "pre_relapse"] == 47.5 and table.loc[0, "post_relapse"] == 68.5


def test_course_numbers_past_five_epochs():
    n = consolidation_tables.course_numbers(curve_rows(8))
    assert n["last_epochs"] == 8 and n["at5"] == 5
    assert n["combined_0"] == pytest.approx(30.5) and n["combined_5"] == pytest.approx(70.5)
    assert n["combined_last"] == pytest.approx(90.5) and n["combined_after_5"] == pytest.approx(20.0)
    assert n["extreme_0"] == pytest.approx(25.5) and n["extreme_last"] == pytest.approx(49.5)
    assert n["extreme_gain"] == pytest.approx(24.0)  # paired, the same for every seed
    assert n["extreme_share_5"] == pytest.approx(100 * 15 / 24)
    assert n["extreme_after_5"] == pytest.approx(9.0)
    assert all(isinstance(n[k], float) for k in ("combined_0", "extreme_gain", "extreme_share_5"))
    assert n["course_text"].startswith("Consolidation repairs") and "after 5 epochs" in n["course_text"]
    assert n["share_text"] == "Of that gain, 62% is reached in the first 5 epochs."
    assert n["after_5_text"].startswith("Between 5 and 8 epochs, combined accuracy changes by 20.0 points")


def test_course_numbers_of_a_run_of_five_epochs_or_fewer():
    n = consolidation_tables.course_numbers(curve_rows(3))
    assert n["at5"] == 3 == n["last_epochs"]
    assert n["course_text"].startswith("After 3 epochs of consolidation combined accuracy is 54.5%")
    assert n["share_text"].startswith("The run has no checkpoint between")
    assert n["after_5_text"].startswith("This run consolidates for 3 epochs only")
    one = consolidation_tables.course_numbers(curve_rows(1))
    assert "After 1 epoch of" in one["course_text"] and "for 1 epoch only" in one["after_5_text"]


@pytest.mark.parametrize("last, at15", [(20, 15), (8, 8)])
def test_drop_numbers(last, at15):
    n = consolidation_tables.drop_numbers(curve_rows(last))
    assert n["at15"] == at15
    assert n["drop_0"] == pytest.approx(10.5) and n["drop_5"] == pytest.approx(5.5)
    assert n["drop_15"] == pytest.approx(10.5 - at15) and n["drop_last"] == pytest.approx(10.5 - last)
    assert n["drop_0_lo"] <= n["drop_0"] <= n["drop_0_hi"]
    assert n["drop_max"] == pytest.approx(10.5) and n["drop_max_at"] == 0
    assert set(n) == {f"drop_{k}{s}" for k in ("0", "5", "15", "last") for s in ("", "_lo", "_hi")} | {
        "at15",
        "drop_max",
        "drop_max_at",
    }
