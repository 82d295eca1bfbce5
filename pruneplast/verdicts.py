"""How a published number is set against ours: one rule per kind of value.

The two studies report three kinds of number, and each needs its own question:

* **A single replicate** (study A ran every experiment once). The question is whether a new
  replicate of ours would plausibly give the study's value: :func:`single_replicate` places it
  in the 95% *prediction* interval of one new replicate from our seeds (mean +- t * SD *
  sqrt(1 + 1/n)) and gives its percentile among our seeds. Inside: *reproduced*; outside:
  *differs*. Comparing one draw with the confidence interval of a 10-seed mean would ask whether
  the study's single network *is* our mean, which no single network is.
* **A mean +- SD over n seeds** (study B, n = 10, population SD). :func:`mean_sd` gives the
  difference of means (ours - study) with its Welch 95% CI: *reproduced* when the CI lies inside
  the equivalence margin of the value's kind (:data:`MARGINS`), *consistent* when it contains 0
  but reaches past the margin (not enough seeds to say), *differs* otherwise.
* **A proportion of near-binary outcomes** (relapse probabilities: each seed relapses or not
  after each of six maintenance durations). :func:`proportion` pools the outcomes, takes the
  correlation of one seed's outcomes into account through the design effect (effective sample
  size), and sets Wilson score intervals, and Newcombe's interval for the difference, which
  respect 0-100%; the verdict follows the same three-way rule with the proportion margin.
* **A qualitative statement** (a ranking, "negligible", "vanishes") is read from our data as
  holding or not, and reported with the probability that it holds when our seeds are resampled
  (:mod:`pruneplast.scorecard` computes it with the verdicts' stability).

A value's *stability* (the share of seed-bootstrap resamples giving the same verdict) is computed
by the scorecard; a verdict less stable than :data:`STABLE` is reported as unstable.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .results import fmt_number, fmt_signed

REPRODUCED, CONSISTENT, DIFFERS = "reproduced", "consistent", "differs"
VERDICT_ORDER = (REPRODUCED, CONSISTENT, DIFFERS)

#: Equivalence margins by kind of value, in the value's unit: the largest difference of means
#: that changes none of the studies' conclusions. Accuracies (percentage points): 5, a fifth of
#: the smallest gap between treatments the studies build a conclusion on (ketamine- vs SSRI-like
#: extreme-stress accuracy, 26.9 points). Sparsities: 1 point (they are set by construction).
#: Relapse drops: 2 points (the studies call drops of 5-7 points a relapse and of 0-0.6 none).
#: Proportions (relapse probability, % of outcomes): 30 points. A seed's outcomes at its six
#: maintenance durations are nearly all alike, so ten seeds carry about ten outcomes' worth of
#: information and the study's own 95% interval is +-28 points at 0% or 100%: a narrower margin
#: could never be met, and 30 still separates the studies' contrast (0% vs 88-95%).
#: Gains: 0.05 (a protocol setting).
#: Activation magnitudes: 0.05 (the treatments differ by 0.19 to 0.55).
MARGINS = {"accuracy": 5.0, "sparsity": 1.0, "relapse_drop": 2.0, "proportion": 30.0, "gain": 0.05, "activation": 0.05}

#: The smallest half-width a prediction interval is given, in the value's unit: accuracies are
#: measured on 2,000-4,000 test points and reported to 0.1, so a spread of zero across our seeds
#: (every replicate at 100.0%) does not make a study value of 99.9 "outside" it.
RESOLUTION = {
    "accuracy": 0.5,
    "sparsity": 0.5,
    "relapse_drop": 0.5,
    "proportion": 0.5,
    "gain": 0.005,
    "activation": 0.005,
}

#: A verdict given by fewer than this share of seed-bootstrap resamples is reported as unstable.
STABLE = 0.8

LEVEL = 0.95


def t_quantile(df: float) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.5 + LEVEL / 2, df))


def _clean(values: Sequence[float] | np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or len(v) == 0:
        raise ValueError("no values to compare: the results hold no replicate for this value")
    if not np.all(np.isfinite(v)):
        raise ValueError("values to compare must be finite")
    return v


def equivalence(lo: float, hi: float, margin: float) -> str:
    """The three-way rule on an interval of a difference: inside +-``margin`` *reproduced*,
    containing 0 *consistent*, else *differs*."""
    if -margin <= lo and hi <= margin:
        return REPRODUCED
    if lo <= 0 <= hi:
        return CONSISTENT
    return DIFFERS


def welch_half_width(a: float, b: float, n1: int, n2: int) -> float:
    """Half-width of the Welch 95% interval of a difference of means, from the squared standard
    errors ``a`` = s1²/n1 and ``b`` = s2²/n2 (Welch-Satterthwaite degrees of freedom)."""
    se = math.sqrt(a + b)
    if se == 0:
        return 0.0
    dfs = (a + b) ** 2 / ((a**2 / (n1 - 1) if n1 > 1 and a > 0 else 0) + (b**2 / (n2 - 1) if n2 > 1 and b > 0 else 0))
    return t_quantile(max(dfs, 1.0)) * se


def worst(*verdicts: str) -> str:
    """The least favourable of several verdicts (reproduced < consistent < differs)."""
    return max(verdicts, key=VERDICT_ORDER.index)


def prediction_interval(values: Sequence[float] | np.ndarray, resolution: float = 0.0) -> tuple[float, float]:
    """95% prediction interval of one new replicate: mean +- t(n-1) * SD * sqrt(1 + 1/n).

    Its half-width is at least ``resolution``; with one value it is that value +- ``resolution``.
    """
    v = _clean(values)
    n, m = len(v), float(v.mean())
    half = t_quantile(n - 1) * float(v.std(ddof=1)) * math.sqrt(1 + 1 / n) if n >= 2 else 0.0
    half = max(half, resolution)
    return m - half, m + half


def percentile(value: float, values: Sequence[float] | np.ndarray) -> float:
    """Where ``value`` falls among ``values``, in % (mid-rank: ties count half)."""
    v = _clean(values)
    return float(100 * (np.sum(v < value) + 0.5 * np.sum(v == value)) / len(v))


def single_replicate(study: float, ours: Sequence[float], kind: str = "accuracy") -> dict:
    """The rule for a single published replicate (module docstring)."""
    v = _clean(ours)
    lo, hi = prediction_interval(v, RESOLUTION[kind])
    verdict = REPRODUCED if lo <= study <= hi else DIFFERS
    p = percentile(study, v)
    return {
        "test": "prediction interval",
        "verdict": verdict,
        "mean": float(v.mean()),
        "n": len(v),
        "low": lo,
        "high": hi,
        "percentile": p,
        "text": f"study {study:g} at percentile {p:.0f} of our {len(v)} seeds; "
        f"95% PI of a new replicate [{fmt_number(lo)}, {fmt_number(hi)}]",
    }


def mean_sd(
    study_mean: float,
    study_sd: float,
    study_n: int,
    ours: Sequence[float],
    kind: str = "accuracy",
    population_sd: bool = True,
) -> dict:
    """The rule for a published mean +- SD over ``study_n`` seeds: Welch CI of ours - study.

    ``population_sd``: the study's SD is the population SD (numpy's default, ddof 0), converted
    here to the sample SD. With one value of ours, its variance is taken as the study's.
    """
    v = _clean(ours)
    if study_n < 1 or study_sd < 0:
        raise ValueError(f"study_n must be >= 1 and study_sd >= 0; got {study_n}, {study_sd}")
    margin = MARGINS[kind]
    n1, m1 = len(v), float(v.mean())
    s2 = study_sd * math.sqrt(study_n / (study_n - 1)) if population_sd and study_n > 1 else study_sd
    s1 = float(v.std(ddof=1)) if n1 >= 2 else s2
    diff = m1 - study_mean
    a, b = s1**2 / n1, s2**2 / study_n
    half = welch_half_width(a, b, n1, study_n)
    lo, hi = diff - half, diff + half
    verdict = equivalence(lo, hi, margin)
    need = seeds_needed(diff, s1, s2, study_n, margin) if verdict == CONSISTENT else None
    # a new run of the study (study_n seeds) would plausibly give a mean in this interval
    half_pi = max(t_quantile(max(n1 - 1, 1)) * s1 * math.sqrt(1 / n1 + 1 / study_n), RESOLUTION[kind])
    return {
        "test": "Welch difference",
        "verdict": verdict,
        "mean": m1,
        "n": n1,
        "diff": diff,
        "low": lo,
        "high": hi,
        "margin": margin,
        "pi_low": m1 - half_pi,
        "pi_high": m1 + half_pi,
        "seeds_needed": need,
        "text": f"ours − study {fmt_signed(diff, 1)} (95% CI {fmt_signed(lo, 1)} to {fmt_signed(hi, 1)}; "
        f"margin ±{margin:g})" + _need_text(verdict, need),
    }


MAX_SEEDS = 1000


def seeds_needed(diff: float, s1: float, s2: float, study_n: int, margin: float) -> int | None:
    """The fewest seeds of ours for which the Welch CI of the same difference (same SDs) would
    lie inside +-``margin``; None when no number of our seeds would do (the study's own standard
    error, or the difference itself, is too large) or more than :data:`MAX_SEEDS` are needed."""
    room = margin - abs(diff)
    if room <= 0:
        return None
    b = s2**2 / study_n
    for n1 in range(2, MAX_SEEDS + 1):
        if welch_half_width(s1**2 / n1, b, n1, study_n) <= room:
            return n1
    return None


def _need_text(verdict: str, need: int | None) -> str:
    if verdict != CONSISTENT:
        return ""
    if need is None:
        return "; no number of our seeds would settle it (the study's own uncertainty exceeds the margin)"
    return f"; about {need} seeds of ours would settle it"


def wilson(p: float, n: float, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval of a proportion ``p`` (0-1) from ``n`` (effective) outcomes."""
    if n <= 0:
        return 0.0, 1.0
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def predictive_proportion(p: float, n: float, n_new: float, level: float = LEVEL) -> tuple[float, float]:
    """Central ``level`` prediction interval (0-1) of the proportion a new sample of ``n_new``
    (effective) outcomes would show, given ``p`` observed in ``n`` (effective) outcomes: the
    beta-binomial predictive distribution with a Jeffreys prior, sizes rounded to whole
    outcomes. Unlike a Wilson interval of ``p``, it reaches 0% or 100% when a new sample could
    plausibly show them (9 of 10 relapsing makes 10 of 10 in a new sample likely)."""
    from scipy import stats

    n, m = max(1, int(round(n))), max(1, int(round(n_new)))
    x = min(max(p * n, 0.0), float(n))
    dist = stats.betabinom(m, x + 0.5, n - x + 0.5)
    a = (1 - level) / 2
    return float(dist.ppf(a)) / m, float(dist.ppf(1 - a)) / m


def design_effect(outcomes: np.ndarray) -> float:
    """1 + (m - 1) * ICC of 0/1 outcomes (seeds x m), the ICC from a one-way ANOVA, cut to [0, 1]."""
    o = np.asarray(outcomes, dtype=float)
    k, m = o.shape
    if m < 2 or k < 2:
        return 1.0 if m < 2 else float(m)
    grand = o.mean()
    msb = m * np.sum((o.mean(axis=1) - grand) ** 2) / (k - 1)
    msw = np.sum((o - o.mean(axis=1, keepdims=True)) ** 2) / (k * (m - 1))
    if msb + (m - 1) * msw == 0:  # every outcome the same: one seed says as much as all its outcomes
        icc = 1.0
    else:
        icc = (msb - msw) / (msb + (m - 1) * msw)
    return float(1 + (m - 1) * min(max(icc, 0.0), 1.0))


def proportion(study_percent: float, study_seeds: int, outcomes: np.ndarray) -> dict:
    """The rule for a proportion: our pooled outcomes (seeds x m, 0/1) against the study's %.

    Effective sample sizes are the outcomes divided by the design effect of ours (the study's
    seeds are taken to be as correlated as ours); the difference's interval is Newcombe's
    hybrid score interval.
    """
    o = np.asarray(outcomes, dtype=float)
    if o.ndim == 1:
        o = o[:, None]
    if o.size == 0 or not np.all((o == 0) | (o == 1)):
        raise ValueError("outcomes must be a non-empty seeds x m array of 0/1")
    k, m = o.shape
    deff = design_effect(o)
    n1, n2 = k * m / deff, study_seeds * m / deff
    p1, p2 = float(o.mean()), study_percent / 100
    l1, u1 = wilson(p1, n1)
    l2, u2 = wilson(p2, n2)
    d = p1 - p2
    lo = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    hi = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    margin = MARGINS["proportion"] / 100
    verdict = equivalence(lo, hi, margin)
    pl, ph = predictive_proportion(p1, n1, n2)  # what a new run of the study would observe
    return {
        "test": "Newcombe difference",
        "verdict": verdict,
        "mean": 100 * p1,
        "n": k,
        "diff": 100 * d,
        "low": 100 * lo,
        "high": 100 * hi,
        "margin": 100 * margin,
        "ci_low": 100 * l1,
        "ci_high": 100 * u1,
        "pi_low": 100 * pl,
        "pi_high": 100 * ph,
        "design_effect": deff,
        "text": f"ours {fmt_number(100 * p1)}% (Wilson 95% CI {fmt_number(100 * l1)} to "
        f"{fmt_number(100 * u1)}, design effect {fmt_number(deff)}); ours − study {fmt_signed(100 * d, 1)} "
        f"(95% CI {fmt_signed(100 * lo, 1)} to {fmt_signed(100 * hi, 1)}; "
        f"margin ±{100 * margin:g})",
    }


def statement(holds: bool, text: str) -> dict:
    """A qualitative statement read from our data (its probability under resampling is added
    by the scorecard)."""
    return {"test": "statement", "verdict": REPRODUCED if holds else DIFFERS, "holds": bool(holds), "text": text}
