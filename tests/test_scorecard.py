"""The reproduction scorecard's rules and claims, on synthetic results tables with known answers."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from pruneplast import claims, paper, scorecard, verdicts
from pruneplast.results import save_results

SEEDS = [0, 1, 2, 3, 4]


def _rows(values, **fixed):
    return [dict(fixed, seed=s, value=float(v)) for s, v in zip(SEEDS, values)]


def chapter2_results(
    pruned=(31.0, 33.0, 32.0, 30.5, 34.0),
    recovered=(97.2, 96.8, 97.5, 96.9, 97.1),
    sparsity_left=47.5,
    cliff=(0.90, 0.93),
    percent_levels=False,
) -> pd.DataFrame:
    """A chapter-2-shaped table: main experiment (3 stages) and a sweep with a drop across ``cliff``."""
    rows = []
    base = dict(experiment="main", metric="accuracy", condition="combined")
    rows += _rows([97.9] * 5, **base, stage="baseline", regrowth="none")
    rows += _rows(pruned, **base, stage="pruned", regrowth="none")
    rows += _rows(recovered, **base, stage="recovered", regrowth="gradient")
    rows += _rows([97.3] * 5, **base, stage="recovered", regrowth="random")
    rows += _rows(
        [80.0] * 5, experiment="main", metric="accuracy", condition="standard", stage="pruned", regrowth="none"
    )  # another condition, must not leak into A1
    for reg, sp in (("gradient", sparsity_left), ("random", 47.5)):
        rows += _rows(
            [sp] * 5, experiment="main", metric="weight_sparsity", condition="-", stage="recovered", regrowth=reg
        )
    levels = [0.0, 0.5, 0.8, 0.9, 0.93, 0.95, 0.99]
    for lv in levels:
        if lv <= cliff[0]:
            acc = 97.5 - 20 * lv  # gentle decline: 97.5 ... 79.5 at 0.9
        elif lv >= cliff[1]:
            acc = 37.0 - 100 * (lv - cliff[1])
        else:
            acc = 60.0
        jitter = np.array([-0.4, 0.2, 0.0, 0.3, -0.1])
        rows += _rows(
            acc + jitter,
            experiment="sweep",
            metric="accuracy",
            condition="combined",
            sparsity_target=lv * 100 if percent_levels else lv,
        )
    return pd.DataFrame(rows)


def test_single_replicate_rule_uses_the_prediction_interval():
    v = np.array([31.0, 33.0, 32.0, 30.5, 34.0])
    r = verdicts.single_replicate(32.2, v)
    half = sps.t.ppf(0.975, 4) * v.std(ddof=1) * math.sqrt(1 + 1 / 5)
    assert (r["low"], r["high"]) == (pytest.approx(v.mean() - half), pytest.approx(v.mean() + half))
    assert r["verdict"] == verdicts.REPRODUCED and r["percentile"] == pytest.approx(60.0)  # above 3 of 5 seeds
    far = verdicts.single_replicate(50.8, v)  # far outside: differs, above every seed
    assert far["verdict"] == verdicts.DIFFERS and far["percentile"] == 100.0
    # just inside / just outside the interval's edge
    assert verdicts.single_replicate(r["high"] - 1e-9, v)["verdict"] == verdicts.REPRODUCED
    assert verdicts.single_replicate(r["high"] + 1e-6, v)["verdict"] == verdicts.DIFFERS
    # the CI of the mean would have rejected a value the prediction interval accepts
    lo, hi = sps.t.interval(0.95, 4, loc=v.mean(), scale=sps.sem(v))
    assert not lo <= 35.0 <= hi and verdicts.single_replicate(35.0, v)["verdict"] == verdicts.REPRODUCED


def test_a_bound_that_rounds_to_zero_prints_as_zero_not_minus_zero():
    v = np.array([0.47, 0.47])  # no spread: the interval is the resolution (0.5), from -0.03
    r = verdicts.single_replicate(0.0, v)
    assert -0.05 < r["low"] < 0
    assert "[0.0, " in r["text"] and "-0.0" not in r["text"]


def test_single_replicate_resolution_at_the_ceiling():
    ceiling = [100.0] * 10  # every seed at 100%: the study's 99.9 is within the reporting resolution
    assert verdicts.single_replicate(99.9, ceiling)["verdict"] == verdicts.REPRODUCED
    assert verdicts.single_replicate(99.0, ceiling)["verdict"] == verdicts.DIFFERS
    with pytest.raises(ValueError, match="no values"):
        verdicts.single_replicate(1.0, [])


def test_mean_sd_rule_three_ways():
    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, 10)
    ours = 76.8 + 3.6 * (base - base.mean()) / base.std(ddof=0)  # same mean and population SD as the study
    r = verdicts.mean_sd(76.8, 3.6, 10, ours)
    assert r["diff"] == pytest.approx(0.0, abs=1e-9) and r["verdict"] == verdicts.REPRODUCED
    # Welch: the interval from both samples' variances, the study's SD taken as a population SD
    s2 = 3.6 * math.sqrt(10 / 9)
    se = math.sqrt(ours.std(ddof=1) ** 2 / 10 + s2**2 / 10)
    dfw = se**4 / ((ours.std(ddof=1) ** 2 / 10) ** 2 / 9 + (s2**2 / 10) ** 2 / 9)
    assert r["high"] == pytest.approx(sps.t.ppf(0.975, dfw) * se)
    # a mean just outside the margin: the CI reaches past +5 but contains 0 -> consistent
    wide = verdicts.mean_sd(76.8, 12.0, 10, 76.8 + 12.0 * (base - base.mean()) / base.std(ddof=0) + 1.0)
    assert wide["low"] < 0 < wide["high"] and wide["high"] > 5 and wide["verdict"] == verdicts.CONSISTENT
    off = verdicts.mean_sd(76.8, 0.5, 10, ours * 0 + 83.0 + 0.1 * base)  # 6 points away, tight: differs
    assert off["low"] > 5 and off["verdict"] == verdicts.DIFFERS
    near = verdicts.mean_sd(76.8, 0.5, 10, ours * 0 + 79.0 + 0.1 * base)  # 2.2 away, CI inside +-5, excludes 0
    assert 0 < near["low"] and near["high"] < 5 and near["verdict"] == verdicts.REPRODUCED
    exact = verdicts.mean_sd(47.5, 0.0, 10, [47.5] * 10, "sparsity")  # no spread at all
    assert exact["low"] == exact["high"] == 0.0 and exact["verdict"] == verdicts.REPRODUCED
    assert verdicts.mean_sd(47.5, 0.0, 10, [49.0] * 10, "sparsity")["verdict"] == verdicts.DIFFERS


def test_proportion_rule_respects_zero_and_hundred():
    zero = np.zeros((10, 6))
    r0 = verdicts.proportion(0.0, 10, zero)
    assert r0["mean"] == 0.0 and r0["ci_low"] == 0.0 and 0 < r0["ci_high"] < 100
    assert r0["low"] >= -100 and r0["verdict"] == verdicts.REPRODUCED
    full = np.ones((10, 6))
    r1 = verdicts.proportion(100.0, 10, full)
    assert r1["ci_high"] == pytest.approx(100.0) and r1["ci_low"] < 100 and r1["verdict"] == verdicts.REPRODUCED
    # perfectly correlated outcomes: a seed counts once (design effect 6), so the intervals are wider
    mixed = np.repeat(np.array([1, 1, 1, 1, 1, 1, 1, 0, 0, 0])[:, None], 6, axis=1)
    rm = verdicts.proportion(88.3, 10, mixed)
    assert rm["design_effect"] == pytest.approx(6.0)
    lo, hi = verdicts.wilson(0.7, 10)
    assert (rm["ci_low"], rm["ci_high"]) == (pytest.approx(100 * lo), pytest.approx(100 * hi))
    assert rm["low"] < 0 < rm["high"] and rm["verdict"] == verdicts.CONSISTENT  # 70 vs 88.3: too few seeds
    indep = np.array([[1, 0, 1, 0, 1, 0]] * 10)  # within-seed alternation, no seed effect
    assert verdicts.design_effect(indep) == 1.0
    far = verdicts.proportion(95.0, 10, zero)
    assert far["high"] < 0 and far["verdict"] == verdicts.DIFFERS
    with pytest.raises(ValueError, match="0/1"):
        verdicts.proportion(50.0, 10, np.full((3, 2), 0.5))


def test_wilson_matches_its_formula():
    lo, hi = verdicts.wilson(0.0, 60)
    assert lo == 0.0 and hi == pytest.approx(1.959963984540054**2 / (60 + 1.959963984540054**2))
    lo, hi = verdicts.wilson(0.5, 100)
    assert (lo + hi) / 2 == pytest.approx(0.5)


def test_a1_uses_only_pruned_combined():
    df = chapter2_results()
    r = scorecard.evaluate("A1_pruned_combined", df)
    assert r["n"] == 5 and r["mean"] == pytest.approx(np.mean([31.0, 33.0, 32.0, 30.5, 34.0]))
    assert r["verdict"] == scorecard.REPRODUCED
    far = chapter2_results(pruned=(50.0, 51.0, 49.0, 50.5, 49.5))
    assert scorecard.evaluate("A1_pruned_combined", far)["verdict"] == scorecard.DIFFERS


def test_study_a_claims_use_study_a_data_set_when_present():
    shared = chapter2_results().assign(data_sets="shared")
    other = chapter2_results(pruned=(50.0, 51.0, 49.0, 50.5, 49.5)).assign(data_sets="per_replicate")
    r = scorecard.evaluate("A1_pruned_combined", pd.concat([other, shared], ignore_index=True))
    assert r["verdict"] == scorecard.REPRODUCED and "study A's data set" in r["note"]
    r = scorecard.evaluate("A1_pruned_combined", other)
    assert r["verdict"] == scorecard.DIFFERS and "not study A's" in r["note"]


@pytest.mark.parametrize("percent", [False, True])
def test_a2_cliff_location_and_values(percent):
    df = chapter2_results(percent_levels=percent)
    assert claims.steepest_drop(df)[:2] == (90.0, 93.0)
    r = scorecard.evaluate("A2_cliff", df)
    assert r["verdict"] == scorecard.REPRODUCED, r
    assert "90% and 93%" in r["note"] and "at 93%" in r["ours"]
    assert r["mean"] == pytest.approx(37.0)  # the 93% value, jitter sums to zero


def test_a2_cliff_elsewhere_differs():
    df = chapter2_results(cliff=(0.5, 0.8))
    lo, hi, drop = claims.steepest_drop(df)
    assert (lo, hi) == (50.0, 80.0) and drop > 0
    r = scorecard.evaluate("A2_cliff", df)
    assert r["verdict"] == scorecard.DIFFERS
    assert [t["holds"] for t in r["tests"] if t["test"] == "statement"] == [False]


def test_a3_recovered_and_sparsity():
    r = scorecard.evaluate("A3_recovered_combined", chapter2_results())
    assert r["verdict"] == scorecard.REPRODUCED and "47.5%" in r["note"]
    assert r["mean"] == pytest.approx(np.mean([97.2, 96.8, 97.5, 96.9, 97.1]))
    assert (
        scorecard.evaluate("A3_recovered_combined", chapter2_results(sparsity_left=60.0))["verdict"]
        == scorecard.DIFFERS
    )


def test_stability_of_verdicts_under_seed_resampling():
    clear = chapter2_results()  # 32.2 sits mid-distribution: every resample agrees
    v = {c: scorecard.evaluate(c, clear) for c in ("A1_pruned_combined", "A2_cliff")}
    st = scorecard.stability(list(v), clear, v, n=60)
    assert st["A1_pruned_combined"]["stability"] > 0.9 and st["A2_cliff"]["holds"] == [1.0]
    # a value at the edge of the prediction interval: resamples disagree
    edge = chapter2_results(pruned=(28.0, 29.0, 30.0, 27.5, 36.0))
    r = scorecard.evaluate("A1_pruned_combined", edge)
    st = scorecard.stability(["A1_pruned_combined"], edge, {"A1_pruned_combined": r}, n=100)
    assert 0.1 < st["A1_pruned_combined"]["stability"] < 0.9
    again = scorecard.stability(["A1_pruned_combined"], edge, {"A1_pruned_combined": r}, n=100)
    assert again == st  # deterministic
    assert scorecard.shown_verdict("reproduced", 0.5) == "reproduced (unstable)"
    assert scorecard.shown_verdict("reproduced", 0.95) == "reproduced"


def test_resampled_seeds_keep_their_rows_together():
    df = chapter2_results()
    b = scorecard.resample_seeds(df, np.random.default_rng(3))
    assert len(b) == len(df) and sorted(b.seed.unique()) == list(range(5))
    per = b.groupby("seed").size()
    assert (per == df.groupby("seed").size().iloc[0]).all()


def test_missing_rows_raise():
    df = chapter2_results()
    with pytest.raises(ValueError, match="no rows"):
        scorecard.evaluate("A1_pruned_combined", df[df.stage != "pruned"])


def test_collect_covers_every_claim(tmp_path):
    ids = [cid for _, cid, _ in scorecard.all_claims()]
    expected = set(paper.paper_results()["study_A"]["claims"]) | set(paper.paper_results()["study_B"]["claims"])
    empty = scorecard.collect("quick", root=tmp_path, bootstrap=20)
    assert list(empty["claim"]) == ids and set(ids) == expected
    assert (empty["verdict"] == scorecard.NOT_COVERED).all() and empty["n"].isna().all()
    assert "no results" in empty.set_index("claim").loc["A1_pruned_combined", "note"]

    save_results(chapter2_results(), "02_pruning_cliff", "quick", {"synthetic": True}, root=tmp_path)
    table = scorecard.collect("quick", root=tmp_path, bootstrap=20).set_index("claim")
    for cid in ("A1_pruned_combined", "A2_cliff", "A3_recovered_combined"):
        assert table.loc[cid, "verdict"] == scorecard.REPRODUCED, table.loc[cid].to_dict()
        assert table.loc[cid, "n"] == 5
    assert table.loc["A1_pruned_combined", "paper"] == "32.2"
    assert table.loc["A1_pruned_combined", "ours"].startswith("32.1 (PI ")
    assert (table.loc[["A1_pruned_combined", "A2_cliff"], "stability"] > 0.5).all()
    uncovered = [c for c in ids if c not in scorecard.CLAIMS]
    assert (table.loc[uncovered, "verdict"] == scorecard.NOT_COVERED).all()
    counts = scorecard.counts(table.reset_index())
    assert sum(v for k, v in counts.items() if k != "unstable") == len(ids) and counts[scorecard.REPRODUCED] >= 3


def test_registry_rejects_unknown_and_duplicate_ids():
    with pytest.raises(KeyError):
        claims.claim("Z9_no_such_claim", notebook="x")(lambda df: {})
    with pytest.raises(ValueError, match="twice"):
        claims.claim("A1_pruned_combined", notebook="x")(lambda df: {})


def test_paper_value_formatting():
    assert scorecard.paper_value({"value": 32.2}) == "32.2"
    assert scorecard.paper_value({"mean": 76.8, "sd": 3.6}) == "76.8 ± 3.6"
    assert scorecard.paper_value({"at_90": 79.0, "at_93": 37.1, "text": "t"}) == "79.0 at 90%; 37.1 at 93%"
    assert scorecard.paper_value({"drop_15": 0.0, "drop_20": -0.4, "text": "t"}) == (
        "drop 0.0 at 15 epochs; drop -0.4 at 20 epochs"
    )
    assert scorecard.paper_value({"text": "qualitative only"}) == "qualitative"


def test_html_table_escapes_and_shows_every_claim(tmp_path):
    save_results(chapter2_results(), "02_pruning_cliff", "quick", {}, root=tmp_path)
    table = scorecard.collect("quick", root=tmp_path, bootstrap=10)
    html = scorecard.to_html(table)
    assert html.count("<tr>") == len(table) + 1
    assert "(A1)" in html and "not yet covered" in html and "&gt;" in html  # "->" escaped
    assert "A1_pruned_combined" not in html  # claims in words, with their short id
    for verdict, symbol in scorecard.VERDICT_SYMBOLS.items():  # legible without colour
        if verdict in set(table["verdict"]):
            assert f'<span aria-hidden="true">{symbol}</span> {verdict}' in html
    assert all(f'data-label="{f}"' in html for f in ("claim", "study", "ours", "verdict", "stability"))
    details = scorecard.details_html(table)
    assert details.count("<details") == len(table) and "prediction interval" in details.lower()


def test_every_published_value_is_listed_and_compared_by_its_kind(tmp_path):
    from pruneplast import published

    save_results(chapter2_results(), "02_pruning_cliff", "quick", {}, root=tmp_path)
    t = published.compare("quick", root=tmp_path)
    data = paper.paper_results()
    n_a = (
        sum(len(v) for v in data["study_A"]["tables"]["main"].values())
        + sum(len(v) for v in data["study_A"]["tables"]["regrowth_gradient_vs_random"].values())
        + len(data["study_A"]["tables"]["sparsity_sweep_combined"])
        + sum(len(v) for v in data["study_A"]["tables"]["consolidation"].values())
        + sum(len(v) for v in data["study_A"]["tables"]["regimens"].values())
    )
    assert (t["study"] == "A").sum() == n_a and len(t) > 150
    # the synthetic chapter 2 holds combined accuracy of the main experiment and the sweep only
    got = t[t["inside"].notna()]
    assert set(got["table"]) == {"main", "regrowth", "sparsity sweep"}
    pruned = got[(got["table"] == "main") & (got["row"] == "combined") & (got["column"] == "pruned")].iloc[0]
    assert pruned["paper"] == 32.2 and pruned["inside"] and pruned["verdict"] == verdicts.REPRODUCED
    assert pruned["ours"] == pytest.approx(np.mean([31.0, 33.0, 32.0, 30.5, 34.0]))
    missing = t[t["inside"].isna()]
    assert (missing["verdict"] == "not compared").all() and missing["test"].str.len().gt(0).all()
    s = published.summary(t)
    assert s["values"] == len(t) and s["compared"] == len(got) and 0 <= s["share"] <= 1
    assert len(s["misses"]) == s["compared"] - s["inside"]


def test_seeds_needed_for_a_consistent_verdict():
    few = np.array([66.8, 86.8, 76.8])  # mean 76.8, SD 10, only three seeds: consistent
    r = verdicts.mean_sd(76.8, 1.0, 10, few)
    assert r["verdict"] == verdicts.CONSISTENT and r["seeds_needed"] is not None
    n = r["seeds_needed"]
    assert n > 3 and "seeds of ours would settle it" in r["text"]

    def seeds(k):  # k seeds with mean 76.8 and sample SD 10
        z = np.random.default_rng(k).normal(size=k)
        return 76.8 + 10.0 * (z - z.mean()) / z.std(ddof=1)

    assert verdicts.mean_sd(76.8, 1.0, 10, seeds(n))["verdict"] == verdicts.REPRODUCED
    assert verdicts.mean_sd(76.8, 1.0, 10, seeds(n - 1))["verdict"] == verdicts.CONSISTENT
    wide = verdicts.mean_sd(47.2, 12.7, 10, [40.0, 45, 50, 55, 60, 35, 42, 48, 52, 44])
    assert wide["verdict"] == verdicts.CONSISTENT and wide["seeds_needed"] is None and "no number" in wide["text"]


def test_predictive_proportion_reaches_the_edges_a_new_sample_can_show():
    lo, hi = verdicts.predictive_proportion(0.9, 10, 10)  # 9 of 10: a new 10 of 10 is plausible
    assert hi == 1.0 and lo < 0.9
    lo, hi = verdicts.predictive_proportion(0.0, 10, 10)
    assert lo == 0.0 and 0 < hi < 0.5
    lo, hi = verdicts.predictive_proportion(0.5, 1000, 1000)  # large samples: close to the binomial interval
    assert 0.45 < lo < 0.5 < hi < 0.55


def test_chapter_verdicts_list_each_claim_of_the_chapter(tmp_path):
    df = chapter2_results()
    text = scorecard.chapter_verdicts("02_pruning_cliff", df)
    ids = [cid for cid, c in scorecard.CLAIMS.items() if c.notebook == "02_pruning_cliff"]
    assert len([line for line in text.splitlines() if line.startswith("- **")]) == len(ids) > 0
    for cid in ids:
        assert f"(claim {cid.split('_')[0]})" in text and cid not in text
    assert any(f"**{sym} " in text for sym in scorecard.VERDICT_SYMBOLS.values())
    assert scorecard.chapter_verdicts("no_such_chapter", df) == ""


def test_every_claim_says_what_its_number_depends_on():
    from pruneplast.claims import reasons

    assert set(reasons.REASONS) == set(scorecard.CLAIMS)
    for cid, text in reasons.REASONS.items():
        assert len(text) > 80 and not re.search(r"\d+\.\d", text), (cid, text)  # no typed numbers


def test_a_claim_that_differs_gets_its_paragraph_where_it_is_measured():
    reproduced = chapter2_results()
    assert scorecard.why_differs("02_pruning_cliff", reproduced) == ""
    # a pruned network far better than the study's 32%: claim A1 differs, A3 still holds
    differs = chapter2_results(pruned=(70.0, 71.0, 69.5, 70.5, 70.2))
    why = scorecard.why_differs("02_pruning_cliff", differs)
    assert why.startswith("**Why claim A1 differs in this run.** The test that fails: study 32")
    assert "A3" not in why and "foot of the cliff" in why
    text = scorecard.chapter_verdicts("02_pruning_cliff", differs)
    assert text.endswith(why) and text.count("**Why claim") == 1
