"""Every published table value against ours (:mod:`pruneplast.published`), on synthetic results of
chapters 5 and 6 whose per-seed values are built from the study's own numbers (study A's tables
are covered in ``tests/test_scorecard.py``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pruneplast import paper, published, verdicts
from pruneplast.config import MaintenanceConfig
from pruneplast.protocols.treatment_tables import OFF_DRUG, TABLE_ROWS
from pruneplast.results import save_results

SEEDS = list(range(10))
#: Ten values with mean 0 and population SD 1: ``m + sd * UNIT`` has the study's mean and SD.
UNIT = (np.arange(10) - 4.5) / np.arange(10).std()


def _seed_rows(mean: float, sd: float, shift: float = 0.0, **fixed) -> list[dict]:
    return [dict(fixed, seed=s, value=float(mean + shift + sd * u)) for s, u in zip(SEEDS, UNIT)]


def chapter5(shift: float = 0.0) -> pd.DataFrame:
    """Chapter 5's tidy rows with every study-B table value, each arm's ten seeds at the study's
    mean (plus ``shift``) and SD; the off-drug rows too."""
    tables = paper.paper_results()["study_B"]["tables"]
    rows: list[dict] = []
    for name, exp, condition, metric in TABLE_ROWS:
        for arm, cell in tables[name].items():
            if cell is None:
                continue
            drug = "none" if arm == "untreated" else "on"
            rows += _seed_rows(
                *cell, shift, experiment=exp, treatment=arm, condition=condition, metric=metric, drug=drug
            )
    for key, condition in OFF_DRUG.items():
        m, sd = tables["neurosteroid_off_drug"][key]
        rows += _seed_rows(
            m,
            sd,
            shift,
            experiment="off_drug",
            treatment="neurosteroid",
            condition=condition,
            metric="accuracy",
            drug="off",
        )
    return pd.DataFrame(rows)


def chapter6() -> pd.DataFrame:
    """Chapter 6's relapse rows: for each arm and duration, the study's share of seeds relapsing
    (as 0/100 per seed) and the biased accuracy at the study's mean with a small spread."""
    tables = paper.paper_results()["study_B"]["tables"]
    rows: list[dict] = []
    for k, d in enumerate(MaintenanceConfig().durations):
        for arm, rates in tables["relapse_rate_by_maintenance"].items():
            relapsing = round(rates[k] / 10)
            where = dict(experiment="relapse", treatment=arm, condition="biased", duration=float(d))
            rows += [dict(where, metric="relapse", seed=s, value=100.0 * (s < relapsing)) for s in SEEDS]
            acc = tables["biased_accuracy_by_maintenance"][arm][k]
            rows += _seed_rows(
                acc, 0.5, experiment="relapse", treatment=arm, condition="biased", metric="accuracy", duration=float(d)
            )
    return pd.DataFrame(rows)


def _study_b_values() -> int:
    t = paper.paper_results()["study_B"]["tables"]
    cells = sum(c is not None for name, *_ in TABLE_ROWS for c in t[name].values())
    return (
        cells
        + len(t["neurosteroid_off_drug"])
        + sum(c is not None for c in t["manic_relapse_probability"].values())
        + sum(len(v) for v in t["relapse_rate_by_maintenance"].values())
        + sum(len(v) for v in t["biased_accuracy_by_maintenance"].values())
    )


def test_without_results_every_study_b_value_is_listed_and_not_compared(tmp_path):
    t = published.compare("quick", root=tmp_path)
    b = t[t["study"] == "B"]
    assert len(b) == _study_b_values()
    assert (b["verdict"] == "not compared").all() and b["inside"].isna().all()
    assert b["test"].str.len().gt(0).all()  # each says why
    assert (b[b["table"] == "treatments"]["test"] == "no results for 05_treatments").all()


def test_the_study_s_own_numbers_are_inside_and_reproduced(tmp_path):
    save_results(chapter5(), "05_treatments", "quick", {}, root=tmp_path)
    save_results(chapter6(), "06_longitudinal_relapse", "quick", {}, root=tmp_path)
    b = published.compare("quick", root=tmp_path).query("study == 'B'")
    assert len(b) == _study_b_values() and b["inside"].notna().all(), b[b["inside"].isna()][["table", "row", "test"]]
    assert b["inside"].all()
    treat = b[b["table"] == "treatments"]
    assert (treat["ours"] - treat["paper"]).abs().max() == pytest.approx(0.0, abs=1e-3)
    assert (treat["verdict"] != verdicts.DIFFERS).all()  # a wide study SD leaves some only consistent
    tight = treat[(treat["kind"] == "accuracy") & (treat["paper_sd"] <= 1.0)]
    assert len(tight) > 5 and (tight["verdict"] == verdicts.REPRODUCED).all()
    # the relapse rates are proportions, compared as such, and equal the study's (its pooled
    # probabilities are rounded to 0.1: 88.3 for 53 of 60 outcomes)
    rates = b[b["kind"] == "proportion"]
    assert len(rates) == 21 and (rates["ours"] - rates["paper"]).abs().max() < 0.05
    s = published.summary(b)
    assert s["compared"] == len(b) and s["share"] == 1.0 and s["misses"].empty


def test_a_shift_of_our_values_is_a_miss_where_the_study_is_tight(tmp_path):
    save_results(chapter5(shift=8.0), "05_treatments", "quick", {}, root=tmp_path)
    b = published.compare("quick", root=tmp_path).query("study == 'B' and table == 'treatments'")
    acc = b[(b["kind"] == "accuracy") & (b["paper_sd"] <= 3.0)]
    assert len(acc) > 10 and not acc["inside"].any() and (acc["verdict"] == verdicts.DIFFERS).all()
    # gains are set by the protocol: 8 above the study's is far outside
    gains = b[b["kind"] == "gain"]
    assert len(gains) == 4 and not gains["inside"].any()
