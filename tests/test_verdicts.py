"""The verdict rules (:mod:`pruneplast.verdicts`) against independent computations (scipy's
distributions, the textbook formulas written out). The claims built on them are tested in
``tests/test_scorecard.py`` and ``tests/claims/test_claims.py``."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from pruneplast import verdicts
from pruneplast.verdicts import CONSISTENT, DIFFERS, REPRODUCED


@pytest.mark.parametrize("df", [1, 2, 4, 9, 30, 1000])
def test_t_quantile_is_the_two_sided_95_percent_point(df):
    assert verdicts.t_quantile(df) == pytest.approx(stats.t.ppf(0.975, df), rel=1e-9)


def test_the_three_way_rule_and_the_least_favourable_verdict():
    assert verdicts.equivalence(-1.0, 2.0, 5.0) == REPRODUCED
    assert verdicts.equivalence(-1.0, 6.0, 5.0) == CONSISTENT  # contains 0, reaches past the margin
    assert verdicts.equivalence(0.5, 6.0, 5.0) == DIFFERS
    assert verdicts.equivalence(-5.0, 5.0, 5.0) == REPRODUCED  # the margin itself is inside
    assert verdicts.worst(REPRODUCED, REPRODUCED) == REPRODUCED
    assert verdicts.worst(REPRODUCED, CONSISTENT) == CONSISTENT
    assert verdicts.worst(CONSISTENT, DIFFERS, REPRODUCED) == DIFFERS


def test_welch_half_width_matches_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(70, 4, 6), rng.normal(72, 2, 10)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    want = stats.t.ppf(0.975, dof) * math.sqrt(va + vb)
    assert verdicts.welch_half_width(va, vb, len(a), len(b)) == pytest.approx(want, rel=1e-9)
    assert verdicts.welch_half_width(0.0, 0.0, 5, 10) == 0.0


def test_prediction_interval_of_a_new_replicate():
    v = np.array([30.0, 31.0, 33.0, 34.0, 36.0])
    half = stats.t.ppf(0.975, 4) * v.std(ddof=1) * math.sqrt(1 + 1 / 5)
    lo, hi = verdicts.prediction_interval(v)
    assert (lo, hi) == pytest.approx((v.mean() - half, v.mean() + half))
    # a floor on the half-width; one value is that value +- the floor
    assert verdicts.prediction_interval([100.0, 100.0], resolution=0.5) == (99.5, 100.5)
    assert verdicts.prediction_interval([42.0], resolution=0.5) == (41.5, 42.5)


def test_percentile_counts_ties_half():
    assert verdicts.percentile(2.0, [1.0, 2.0, 3.0, 4.0]) == pytest.approx(37.5)
    assert verdicts.percentile(0.0, [1.0, 2.0]) == 0.0 and verdicts.percentile(9.0, [1.0, 2.0]) == 100.0


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [[1.0, 2.0]]])
def test_values_to_compare_must_be_a_finite_list(bad):
    with pytest.raises(ValueError, match="values|finite"):
        verdicts.single_replicate(1.0, bad)


def test_mean_sd_converts_the_population_sd_and_reports_the_welch_interval():
    ours = np.array([75.0, 77.0, 78.0, 76.0, 79.0])
    r = verdicts.mean_sd(76.8, 3.6, 10, ours)
    s2 = 3.6 * math.sqrt(10 / 9)  # the study's population SD as a sample SD
    va, vb = ours.var(ddof=1) / 5, s2**2 / 10
    dof = (va + vb) ** 2 / (va**2 / 4 + vb**2 / 9)
    half = stats.t.ppf(0.975, dof) * math.sqrt(va + vb)
    diff = ours.mean() - 76.8
    assert r["diff"] == pytest.approx(diff) and (r["low"], r["high"]) == pytest.approx((diff - half, diff + half))
    assert r["n"] == 5 and r["margin"] == verdicts.MARGINS["accuracy"]
    with pytest.raises(ValueError, match="study_n"):
        verdicts.mean_sd(76.8, 3.6, 0, ours)


def test_seeds_needed_is_the_fewest_that_settle_it():
    diff, s1, s2, study_n, margin = 1.0, 6.0, 3.0, 10, 5.0
    need = verdicts.seeds_needed(diff, s1, s2, study_n, margin)
    assert need is not None and need > 2

    def width(n):
        return verdicts.welch_half_width(s1**2 / n, s2**2 / study_n, n, study_n)

    assert width(need) <= margin - diff < width(need - 1)
    assert verdicts.seeds_needed(6.0, s1, s2, study_n, margin) is None  # the difference alone exceeds it
    assert verdicts.seeds_needed(0.0, 1.0, 40.0, study_n, margin) is None  # the study's own SE exceeds it


def test_wilson_interval_matches_its_formula():
    p, n, z = 0.7, 10.0, stats.norm.ppf(0.975)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert verdicts.wilson(p, n) == pytest.approx((centre - half, centre + half))
    assert verdicts.wilson(0.0, 10)[0] == 0.0 and verdicts.wilson(1.0, 10)[1] == pytest.approx(1.0)
    assert verdicts.wilson(0.5, 0) == (0.0, 1.0)


def test_design_effect_of_alike_and_independent_outcomes():
    alike = np.repeat([[1.0], [0.0], [1.0], [0.0]], 6, axis=1)  # each seed the same at every duration
    assert verdicts.design_effect(alike) == pytest.approx(6.0)
    checker = np.tile([1.0, 0.0], (4, 3))  # every seed half and half: no correlation within a seed
    assert verdicts.design_effect(checker) == 1.0
    assert verdicts.design_effect(np.ones((5, 6))) == 6.0  # all alike: one seed says as much as six outcomes
    assert verdicts.design_effect(np.ones((5, 1))) == 1.0


def test_predictive_proportion_is_the_beta_binomial_interval():
    lo, hi = verdicts.predictive_proportion(0.9, 10, 10)
    dist = stats.betabinom(10, 9 + 0.5, 1 + 0.5)
    assert (lo, hi) == pytest.approx((dist.ppf(0.025) / 10, dist.ppf(0.975) / 10))
    assert hi == 1.0  # 9 of 10 makes 10 of 10 in a new sample plausible


def test_proportion_rule_on_pooled_outcomes():
    full = np.ones((10, 6))
    r = verdicts.proportion(95.0, 10, full)
    assert r["mean"] == 100.0 and r["design_effect"] == 6.0
    # Newcombe's hybrid score interval from the two Wilson intervals, at 10 effective outcomes each
    (l1, u1), (l2, u2) = verdicts.wilson(1.0, 10), verdicts.wilson(0.95, 10)
    d = 1.0 - 0.95
    lo, hi = d - math.sqrt((1.0 - l1) ** 2 + (u2 - 0.95) ** 2), d + math.sqrt((u1 - 1.0) ** 2 + (0.95 - l2) ** 2)
    assert (r["low"], r["high"]) == pytest.approx((100 * lo, 100 * hi))
    assert r["verdict"] == verdicts.equivalence(lo, hi, 0.30)
    none = verdicts.proportion(90.0, 10, np.zeros((10, 6)))
    assert none["diff"] == pytest.approx(-90.0) and none["verdict"] == DIFFERS
    with pytest.raises(ValueError, match="0/1"):
        verdicts.proportion(50.0, 10, np.array([[0.5, 1.0]]))


def test_statement():
    assert verdicts.statement(True, "x")["verdict"] == REPRODUCED
    s = verdicts.statement(np.bool_(False), "y")
    assert s["verdict"] == DIFFERS and s["holds"] is False and s["test"] == "statement"
