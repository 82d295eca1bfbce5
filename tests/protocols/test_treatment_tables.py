"""Chapter 5's structure table and quoted numbers (protocols.treatment_tables) on synthetic tidy rows."""

from __future__ import annotations

import pandas as pd
import pytest

from pruneplast.arms import STUDY_ARMS, STUDY_TREATED
from pruneplast.protocols import treatment_tables
from pruneplast.tables import plain

SEEDS = (0, 1, 2)
#: Per arm: extreme, combined, biased, clean and standard accuracy; weight sparsity; gain.
VALUES = {
    "untreated": (20.0, 30.0, 40.0, 60.0, 55.0, 95.0, 1.0),
    "ketamine": (70.0, 90.0, 50.0, 99.0, 98.0, 47.5, 1.25),
    "ssri": (60.0, 85.0, 30.0, 97.0, 96.0, 95.0, 1.6),
    "neurosteroid": (65.0, 88.0, 70.0, 98.0, 94.0, 95.0, 0.85),
}


def treated_rows() -> pd.DataFrame:
    rows = []
    for t, (ext, comb, biased, clean, std, sp, gain) in VALUES.items():
        for s in SEEDS:
            lab = dict(treatment=t, seed=s, drug="on")
            rows += [
                dict(lab, experiment="tolerance", condition="sigma_2.5", metric="accuracy", value=ext + s),
                dict(lab, experiment="efficacy", condition="combined", metric="accuracy", value=comb + s),
                dict(lab, experiment="efficacy", condition="clean", metric="accuracy", value=clean),
                dict(lab, experiment="efficacy", condition="standard", metric="accuracy", value=std),
                dict(lab, experiment="manic_risk", condition="biased", metric="accuracy", value=biased + s),
                dict(lab, experiment="efficacy", condition="-", metric="weight_sparsity", value=sp),
                dict(lab, experiment="efficacy", condition="-", metric="gain", value=gain),
                dict(lab, experiment="efficacy", condition="layer_1", metric="kept_weights", value=100.0 - sp),
            ]
    return pd.DataFrame(rows)


def test_structure_table_has_one_column_per_arm():
    table = treatment_tables.structure_table(treated_rows())
    assert list(table.columns) == list(VALUES)
    assert table.loc[("gain", "-"), "ssri"] == 1.6
    assert table.loc[("kept_weights", "layer_1"), "ketamine"] == 52.5
    assert ("accuracy", "combined") not in table.index


def test_headline_numbers():
    n = treatment_tables.headline_numbers(treated_rows(), STUDY_ARMS, STUDY_TREATED)
    assert n["ketamine_extreme"] == pytest.approx(71.0) and n["untreated_combined"] == pytest.approx(31.0)
    assert n["ssri_biased"] == pytest.approx(31.0)
    assert n["best_extreme"] == plain("ketamine")  # among the treated arms only
    assert n["most_manic"] == plain("ssri")  # the untreated arm (40) is not treated
    assert n["ceiling_min"] == 94.0  # neurosteroid's standard accuracy
    assert n["ketamine_sparsity"] == 47.5
    assert set(n) == {f"{t}_{k}" for t in STUDY_ARMS for k in ("extreme", "combined", "biased")} | {
        "best_extreme",
        "most_manic",
        "ceiling_min",
        "ketamine_sparsity",
    }
