"""The reproduction scorecard's rules and claims, on synthetic results tables with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from pruneplast import paper, scorecard
from pruneplast.results import save_results

SEEDS = [0, 1, 2, 3, 4]


def _rows(values, **fixed):
    return [dict(fixed, seed=s, value=float(v)) for s, v in zip(SEEDS, values)]


def chapter2_results(pruned=(31.0, 33.0, 32.0, 30.5, 34.0), recovered=(97.2, 96.8, 97.5, 96.9, 97.1),
                     sparsity_left=47.5, cliff=(0.90, 0.93), percent_levels=False) -> pd.DataFrame:
    """A chapter-2-shaped table: main experiment (3 stages) and a sweep with a drop across ``cliff``."""
    rows = []
    base = dict(experiment="main", metric="accuracy", condition="combined")
    rows += _rows([97.9] * 5, **base, stage="baseline", regrowth="none")
    rows += _rows(pruned, **base, stage="pruned", regrowth="none")
    rows += _rows(recovered, **base, stage="recovered", regrowth="gradient")
    rows += _rows([97.3] * 5, **base, stage="recovered", regrowth="random")
    rows += _rows([80.0] * 5, experiment="main", metric="accuracy", condition="standard", stage="pruned",
                  regrowth="none")  # another condition, must not leak into A1
    for reg, sp in (("gradient", sparsity_left), ("random", 47.5)):
        rows += _rows([sp] * 5, experiment="main", metric="weight_sparsity", condition="-", stage="recovered",
                      regrowth=reg)
    levels = [0.0, 0.5, 0.8, 0.9, 0.93, 0.95, 0.99]
    for lv in levels:
        if lv <= cliff[0]:
            acc = 97.5 - 20 * lv  # gentle decline: 97.5 ... 79.5 at 0.9
        elif lv >= cliff[1]:
            acc = 37.0 - 100 * (lv - cliff[1])
        else:
            acc = 60.0
        jitter = np.array([-0.4, 0.2, 0.0, 0.3, -0.1])
        rows += _rows(acc + jitter, experiment="sweep", metric="accuracy", condition="combined",
                      sparsity_target=lv * 100 if percent_levels else lv)
    return pd.DataFrame(rows)


def test_default_rule():
    assert scorecard.verdict_single(32.2, 33.9) == scorecard.REPRODUCED  # within 2 points
    assert scorecard.verdict_single(32.2, 36.0, 30.0, 40.0) == scorecard.REPRODUCED  # inside the CI
    assert scorecard.verdict_single(32.2, 36.0, 35.0, 37.0) == scorecard.PARTLY  # 3.8 points, outside CI
    assert scorecard.verdict_single(32.2, 42.2) == scorecard.PARTLY  # exactly 10
    assert scorecard.verdict_single(32.2, 42.3) == scorecard.NOT_REPRODUCED
    assert scorecard.verdict_single(32.2, 20.0, math.nan, math.nan) == scorecard.NOT_REPRODUCED


def test_stats_match_scipy():
    v = np.array([31.0, 33.0, 32.0, 30.5, 34.0])
    s = scorecard.stats(v)
    lo, hi = sps.t.interval(0.95, len(v) - 1, loc=v.mean(), scale=sps.sem(v))
    assert s["n"] == 5 and s["mean"] == pytest.approx(v.mean())
    assert (s["ci_low"], s["ci_high"]) == (pytest.approx(lo), pytest.approx(hi))
    one = scorecard.stats([5.0])
    assert one["n"] == 1 and math.isnan(one["ci_low"])
    with pytest.raises(ValueError, match="no values"):
        scorecard.stats([])


def test_stats_cut_to_the_metric_range():
    v = [100.0, 100.0, 83.3, 100.0, 66.7]  # relapse probability per seed
    plain = scorecard.stats(v)
    assert plain["ci_high"] > 100
    cut = scorecard.stats(v, "relapse_probability")
    assert cut["ci_high"] == 100.0 and cut["ci_low"] == pytest.approx(plain["ci_low"])
    df = pd.DataFrame([{"experiment": "relapse", "condition": "biased", "seed": s, "metric": "relapse_probability",
                        "value": x, "treatment": "ssri"} for s, x in enumerate(v)])
    r = scorecard.evaluate("B7_ssri_relapse", df)
    assert r["ci_high"] == 100.0 and r["verdict"] == scorecard.REPRODUCED  # 95.0 lies in [.., 100]
    assert scorecard.stats(np.array(v) - 100.0)["ci_low"] < 0  # differences stay unbounded


def test_a1_uses_only_pruned_combined():
    df = chapter2_results()
    r = scorecard.evaluate("A1_pruned_combined", df)
    assert r["n"] == 5 and r["mean"] == pytest.approx(np.mean([31.0, 33.0, 32.0, 30.5, 34.0]))
    assert r["verdict"] == scorecard.REPRODUCED
    far = chapter2_results(pruned=(50.0, 51.0, 49.0, 50.5, 49.5))
    assert scorecard.evaluate("A1_pruned_combined", far)["verdict"] == scorecard.NOT_REPRODUCED
    near = chapter2_results(pruned=(38.0, 38.5, 37.5, 38.2, 37.8))  # ~6 points off, tight CI
    assert scorecard.evaluate("A1_pruned_combined", near)["verdict"] == scorecard.PARTLY


@pytest.mark.parametrize("percent", [False, True])
def test_a2_cliff_location_and_values(percent):
    df = chapter2_results(percent_levels=percent)
    assert scorecard.steepest_drop(df)[:2] == (90.0, 93.0)
    r = scorecard.evaluate("A2_cliff", df)
    assert r["verdict"] == scorecard.REPRODUCED, r
    assert "90% and 93%" in r["note"] and "at 93%" in r["ours"]
    assert r["mean"] == pytest.approx(37.0)  # the 93% value, jitter sums to zero


def test_a2_cliff_elsewhere_is_not_reproduced():
    df = chapter2_results(cliff=(0.5, 0.8))
    lo, hi, drop = scorecard.steepest_drop(df)
    assert (lo, hi) == (50.0, 80.0) and drop > 0
    assert scorecard.evaluate("A2_cliff", df)["verdict"] == scorecard.NOT_REPRODUCED


def test_a2_cliff_in_region_but_values_off_is_partly():
    df = chapter2_results(cliff=(0.93, 0.95))  # steepest between 93 and 95: 93% value ~60, not 37
    assert scorecard.evaluate("A2_cliff", df)["verdict"] == scorecard.PARTLY


def test_a3_recovered_and_sparsity():
    r = scorecard.evaluate("A3_recovered_combined", chapter2_results())
    assert r["verdict"] == scorecard.REPRODUCED and "47.5%" in r["note"]
    assert r["mean"] == pytest.approx(np.mean([97.2, 96.8, 97.5, 96.9, 97.1]))
    assert scorecard.evaluate("A3_recovered_combined", chapter2_results(sparsity_left=60.0))["verdict"] == scorecard.PARTLY


def test_missing_rows_raise():
    df = chapter2_results()
    with pytest.raises(ValueError, match="no rows"):
        scorecard.evaluate("A1_pruned_combined", df[df.stage != "pruned"])


def test_collect_covers_every_claim(tmp_path):
    ids = [cid for _, cid, _ in scorecard.all_claims()]
    expected = set(paper.paper_results()["study_A"]["claims"]) | set(paper.paper_results()["study_B"]["claims"])
    empty = scorecard.collect("quick", root=tmp_path)
    assert list(empty["claim"]) == ids and set(ids) == expected
    assert (empty["verdict"] == scorecard.NOT_COVERED).all() and empty["n"].isna().all()
    assert "no results" in empty.set_index("claim").loc["A1_pruned_combined", "note"]

    save_results(chapter2_results(), "02_pruning_cliff", "quick", {"synthetic": True}, root=tmp_path)
    table = scorecard.collect("quick", root=tmp_path).set_index("claim")
    for cid in ("A1_pruned_combined", "A2_cliff", "A3_recovered_combined"):
        assert table.loc[cid, "verdict"] == scorecard.REPRODUCED, table.loc[cid].to_dict()
        assert table.loc[cid, "n"] == 5
    assert table.loc["A1_pruned_combined", "paper"] == "32.2"
    assert table.loc["A1_pruned_combined", "ours"].startswith("32.1 [")
    uncovered = [c for c in ids if c not in scorecard.CLAIMS]
    assert (table.loc[uncovered, "verdict"] == scorecard.NOT_COVERED).all()
    counts = scorecard.counts(table.reset_index())
    assert sum(counts.values()) == len(ids) and counts[scorecard.REPRODUCED] >= 3


def test_registry_rejects_unknown_and_duplicate_ids():
    with pytest.raises(KeyError):
        scorecard.claim("Z9_no_such_claim", notebook="x")(lambda df: {})
    with pytest.raises(ValueError, match="twice"):
        scorecard.claim("A1_pruned_combined", notebook="x")(lambda df: {})


def test_paper_value_formatting():
    assert scorecard.paper_value({"value": 32.2}) == "32.2"
    assert scorecard.paper_value({"mean": 76.8, "sd": 3.6}) == "76.8 ± 3.6"
    assert scorecard.paper_value({"at_90": 79.0, "at_93": 37.1, "text": "t"}) == "79.0 at 90%; 37.1 at 93%"
    assert scorecard.paper_value({"drop_15": 0.0, "drop_20": -0.4, "text": "t"}) == "drop_15: 0.0; drop_20: -0.4"
    assert scorecard.paper_value({"text": "qualitative only"}) == "qualitative"


def test_html_table_escapes_and_shows_every_claim(tmp_path):
    save_results(chapter2_results(), "02_pruning_cliff", "quick", {}, root=tmp_path)
    table = scorecard.collect("quick", root=tmp_path)
    html = scorecard.to_html(table)
    assert html.count("<tr>") == len(table) + 1
    assert "A1_pruned_combined" in html and "not yet covered" in html and "&gt;" in html  # "->" escaped
