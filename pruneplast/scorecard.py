"""The reproduction scorecard: every claim of the studies, the paper's number, ours, a verdict.

Each claim id of ``paper_results.yaml`` (see :mod:`pruneplast.paper`) that a chapter covers has a
function here, registered with ``@claim(claim_id, notebook=...)``. It receives the chapter's tidy
results (``results/<profile>/<notebook>.csv`` as a DataFrame) and returns a dict with ``tests``
(one or more rule results of :mod:`pruneplast.verdicts`, by the kind of the published value),
``mean`` and ``n`` (replicate seeds), ``ours`` (display text) and a short ``note``. The claim's
verdict is the least favourable of its tests: *reproduced*, *consistent* (not enough seeds to
tell), or *differs*.

Study A's claims are scored on study A's own data set when the results hold it (column
``data_sets``, value ``'shared'``): like with like. :func:`stability` resamples the replicate
seeds (bootstrap) and reports the share of resamples giving the same verdict, and for a
qualitative statement the share in which it holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from . import paper
from .arms import STUDY_ARMS
from .results import load_results
from .verdicts import CONSISTENT, DIFFERS, REPRODUCED, STABLE, VERDICT_ORDER, mean_sd, proportion, \
    single_replicate, statement, worst

NOT_COVERED = "not yet covered"
STUDY_B_SEEDS = 10  # study B's replicates (paper_results.yaml: study_B.replicates)

__all__ = ["REPRODUCED", "CONSISTENT", "DIFFERS", "NOT_COVERED", "VERDICT_ORDER", "CLAIMS", "claim",
           "evaluate", "collect", "stability", "counts"]


@dataclass(frozen=True)
class Claim:
    id: str
    notebook: str
    func: Callable[[pd.DataFrame], dict]


CLAIMS: dict[str, Claim] = {}


def claim(claim_id: str, notebook: str):
    """Register ``func(results: DataFrame) -> dict`` as the check of ``claim_id`` on ``notebook``'s results."""

    def deco(func):
        paper.claim(claim_id)  # KeyError for an id the paper does not have
        if claim_id in CLAIMS:
            raise ValueError(f"claim {claim_id!r} is registered twice")
        CLAIMS[claim_id] = Claim(claim_id, notebook, func)
        return func

    return deco


# --------------------------------------------------------------------------- helpers
def select(df: pd.DataFrame, **where) -> pd.DataFrame:
    """Rows matching every ``column=value``; a missing column or no match raises ValueError."""
    out = df
    for col, val in where.items():
        if col not in out.columns:
            raise ValueError(f"results have no column {col!r} (columns: {list(df.columns)})")
        out = out[np.isclose(out[col].astype(float), val)] if isinstance(val, float) else out[out[col] == val]
    if out.empty:
        raise ValueError(f"results hold no rows with {where}")
    return out


def per_seed(df: pd.DataFrame, **where) -> pd.Series:
    """One value per replicate seed (the mean if a seed has several rows)."""
    return select(df, **where).groupby("seed")["value"].mean()


def like_with_like(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Study A's rows on its own data set when the results hold them, and a note saying which."""
    if "data_sets" in df.columns and df["data_sets"].notna().any():
        have = set(df["data_sets"].dropna())
        use = "shared" if "shared" in have else sorted(have)[0]
        keep = df["data_sets"].isna() | (df["data_sets"] == use)
        return df[keep], ("study A's data set" if use == "shared" else "per-replicate data sets (not study A's)")
    return df, "per-replicate data sets (not study A's)"


def fmt(mean: float, lo: float = math.nan, hi: float = math.nan, digits: int = 1) -> str:
    z = lambda x: round(x, digits) + 0.0  # noqa: E731  (no "-0.0")
    if math.isnan(lo):
        return f"{z(mean):.{digits}f}"
    return f"{z(mean):.{digits}f} [{z(lo):.{digits}f}, {z(hi):.{digits}f}]"


def _result(tests: list[dict], ours: str, note: str, mean: float, n: int) -> dict:
    return {"tests": tests, "verdict": worst(*(t["verdict"] for t in tests)), "ours": ours, "note": note,
            "mean": float(mean), "n": int(n)}


def _single(values: pd.Series, study: float, kind: str = "accuracy") -> dict:
    return single_replicate(study, values.to_numpy(), kind)


def _pi_text(t: dict) -> str:
    return f"{fmt(t['mean'])} (PI {fmt(t['low'])} to {fmt(t['high'])})"


# --------------------------------------------------------------------------- study A, chapter 2
@claim("A1_pruned_combined", notebook="02_pruning_cliff")
def a1_pruned_combined(df: pd.DataFrame) -> dict:
    """Combined-stress accuracy (%) of the 95%-pruned network: a single replicate of the study,
    placed in the prediction interval of a new replicate of ours (main experiment, stage 'pruned')."""
    df, data = like_with_like(df)
    v = per_seed(df, experiment="main", stage="pruned", condition="combined", metric="accuracy")
    t = _single(v, paper.claim("A1_pruned_combined")["value"])
    return _result([t], _pi_text(t), data, t["mean"], t["n"])


def _sweep_curve(df: pd.DataFrame) -> pd.DataFrame:
    """Per sparsity level (%): mean combined accuracy over seeds, sorted by level."""
    sw = select(df, experiment="sweep", condition="combined", metric="accuracy").copy()
    level = sw["sparsity_target"].astype(float)
    sw["level"] = (level * 100 if level.max() <= 1.0 else level).round(6)
    return sw.groupby("level")["value"].mean().sort_index().reset_index()


def steepest_drop(df: pd.DataFrame) -> tuple[float, float, float]:
    """The sweep segment with the steepest fall of mean combined accuracy per point of sparsity.

    Returns (from level %, to level %, drop in points over the segment).
    """
    curve = _sweep_curve(df)
    if len(curve) < 2:
        raise ValueError("the sweep needs at least two sparsity levels to locate a drop")
    lv, acc = curve["level"].to_numpy(), curve["value"].to_numpy()
    slope = (acc[:-1] - acc[1:]) / np.diff(lv)
    i = int(np.argmax(slope))
    return float(lv[i]), float(lv[i + 1]), float(acc[i] - acc[i + 1])


def _lv(df: pd.DataFrame, percent: float) -> float:
    """The sweep's ``sparsity_target`` value for ``percent`` (stored as a fraction or in %)."""
    if "sparsity_target" not in df.columns:
        raise ValueError("results have no column 'sparsity_target' (the sweep's levels)")
    levels = df["sparsity_target"].dropna().astype(float)
    return percent / 100 if levels.max() <= 1.0 else float(percent)


@claim("A2_cliff", notebook="02_pruning_cliff")
def a2_cliff(df: pd.DataFrame) -> dict:
    """The cliff: combined accuracy (%) at 90% and 93% sparsity, and where the steepest fall is.

    Rule: each of the study's two single-replicate values (79.0 at 90%, 37.1 at 93%) in the
    prediction interval of a new replicate of ours at that level, and the statement "the
    steepest fall of mean combined accuracy between neighbouring sweep levels lies between 90% and
    95% sparsity" holding in our data (its probability under resampling of our seeds is shown).
    """
    df, data = like_with_like(df)
    c = paper.claim("A2_cliff")
    tests = [_single(per_seed(df, experiment="sweep", condition="combined", metric="accuracy",
                              sparsity_target=_lv(df, level)), c[f"at_{level}"]) for level in (90, 93)]
    lo, hi, drop = steepest_drop(df)
    tests.append(statement(lo >= 90 and hi <= 95, "steepest fall between 90% and 95% sparsity"))
    return _result(tests, f"{_pi_text(tests[0])} at 90%; {_pi_text(tests[1])} at 93%",
                   f"{data}; steepest fall between {lo:g}% and {hi:g}% ({drop:.1f} points)",
                   tests[1]["mean"], tests[1]["n"])


@claim("A3_recovered_combined", notebook="02_pruning_cliff")
def a3_recovered_combined(df: pd.DataFrame) -> dict:
    """Combined accuracy (%) after 50% gradient-guided regrowth + consolidation, with the sparsity left.

    Rule: the study's single-replicate 97.0 in our prediction interval, and the study's 47.5%
    weight sparsity left in the prediction interval of ours.
    """
    df, data = like_with_like(df)
    acc = per_seed(df, experiment="main", stage="recovered", regrowth="gradient", condition="combined",
                   metric="accuracy")
    sp = per_seed(df, experiment="main", stage="recovered", regrowth="gradient", metric="weight_sparsity")
    t = _single(acc, paper.claim("A3_recovered_combined")["value"])
    ts = _single(sp, 47.5, "sparsity")
    return _result([t, ts], _pi_text(t), f"{data}; weight sparsity left {sp.mean():.1f}% (study ~47.5%)",
                   t["mean"], t["n"])


# --------------------------------------------------------------------------- study A, chapters 3 and 4
def _durations(df: pd.DataFrame, wanted: tuple[int, ...]) -> list[int]:
    """The consolidation durations to use for ``wanted``: each if it was run, else the longest run."""
    have = sorted(int(e) for e in df["epochs"].unique())
    return [w if w in have else have[-1] for w in wanted]


@claim("A4_consolidation_gain_extreme", notebook="03_consolidation")
def a4_consolidation_gain_extreme(df: pd.DataFrame) -> dict:
    """Gain in extreme-stress accuracy (points, sigma_int 2.5) from 0 to 20 consolidation epochs, paired by seed.

    Rule: the study's single-replicate 55.1 in the prediction interval of our per-seed gains. A
    run shorter than 20 epochs is scored on its longest duration (the note says which).
    """
    df, data = like_with_like(df)
    to = _durations(df, (20,))[0]
    sel = dict(phase="pre_relapse", condition="internal_extreme", metric="accuracy")
    g = per_seed(df, epochs=to, **sel) - per_seed(df, epochs=0, **sel)
    t = _single(g, paper.claim("A4_consolidation_gain_extreme")["value"])
    return _result([t], _pi_text(t), f"{data}; paired gain 0 -> {to} epochs", t["mean"], t["n"])


RELAPSE_ZERO = 1.0  # points: a relapse drop "vanishes" when its mean is this close to zero


@claim("A5_relapse_vanishes", notebook="03_consolidation")
def a5_relapse_vanishes(df: pd.DataFrame) -> dict:
    """Relapse drop (combined accuracy before - after the second pruning wave, points) at 15 and 20 epochs.

    Rule: the study's single-replicate drops (0.0 and -0.4) each in the prediction interval of
    ours, and the statement "our mean drop is within 1 point of zero at both durations" holding.
    Runs shorter than 15/20 epochs use their longest duration.
    """
    df, data = like_with_like(df)
    c = paper.claim("A5_relapse_vanishes")
    at = _durations(df, (15, 20))
    drops = [per_seed(df, phase="post_relapse", condition="combined", metric="relapse_drop", epochs=e) for e in at]
    tests = [_single(d, c[k], "relapse_drop") for d, k in zip(drops, ("drop_15", "drop_20"))]
    tests.append(statement(all(abs(d.mean()) <= RELAPSE_ZERO for d in drops),
                           f"mean drop within {RELAPSE_ZERO:g} point of zero at both durations"))
    return _result(tests, "; ".join(f"{_pi_text(t)} at {e}" for t, e in zip(tests, at)),
                   f"{data}; relapse drop in points at {at[0]} and {at[1]} epochs (study: 0.0 and -0.4)",
                   tests[-2]["mean"], tests[-2]["n"])


@claim("A6_iterative_sparsity", notebook="04_regimens")
def a6_iterative_sparsity(df: pd.DataFrame) -> dict:
    """Weight sparsity (%) left after the long chronic regimen (10 cycles of 40% regrowth): the
    study's single-replicate 0.6 in the prediction interval of ours."""
    df, data = like_with_like(df)
    cycles = int(select(df, regimen="long_chronic")["cycle"].max())
    v = per_seed(df, regimen="long_chronic", phase="pre_relapse", metric="weight_sparsity")
    t = _single(v, paper.claim("A6_iterative_sparsity")["value"], "sparsity")
    return _result([t], _pi_text(t), f"{data}; after {cycles} cycles", t["mean"], t["n"])


def _regimen_diff(df: pd.DataFrame, metric: str, a: str, b: str, **where) -> pd.Series:
    """Per seed: regimen ``a`` minus regimen ``b`` of one metric (pre-relapse accuracy or relapse drop)."""
    return per_seed(df, regimen=a, metric=metric, **where) - per_seed(df, regimen=b, metric=metric, **where)


@claim("A7_iterative_extreme_gain", notebook="04_regimens")
def a7_iterative_extreme_gain(df: pd.DataFrame) -> dict:
    """Extreme-stress accuracy (points) of long chronic minus acute moderate, and minus full acute, paired by seed.

    Rule: the study's single-replicate differences (9.4 vs acute moderate, 11.6 vs full acute),
    each in the prediction interval of our per-seed differences, and the statement "long chronic
    is ahead of both on average" holding.
    """
    df, data = like_with_like(df)
    c = paper.claim("A7_iterative_extreme_gain")
    where = dict(phase="pre_relapse", condition="internal_extreme")
    d1 = _regimen_diff(df, "accuracy", "long_chronic", "acute_moderate", **where)
    d2 = _regimen_diff(df, "accuracy", "long_chronic", "full_acute", **where)
    tests = [_single(d1, c["low"]), _single(d2, c["high"]),
             statement(d1.mean() > 0 and d2.mean() > 0, "long chronic ahead of both on average")]
    return _result(tests, f"{_pi_text(tests[0])} vs acute moderate; {_pi_text(tests[1])} vs full acute",
                   f"{data}; paired differences in points (study: 9.4 and 11.6)", tests[0]["mean"], tests[0]["n"])


NONINFERIORITY = 1.0  # points: "matching" full restoration allows a relapse drop this much larger


@claim("A8_iterative_relapse", notebook="04_regimens")
def a8_iterative_relapse(df: pd.DataFrame) -> dict:
    """Relapse drop (points) of long chronic minus full acute, paired by seed (lower is better).

    Rule: the study's single-replicate difference (-0.6 - (-0.1) = -0.5 points) in the prediction
    interval of ours, and the statement "long chronic's mean drop is at most 1 point larger than
    full acute's" (matching or beating it) holding.
    """
    df, data = like_with_like(df)
    d = _regimen_diff(df, "relapse_drop", "long_chronic", "full_acute", phase="post_relapse", condition="combined")
    t = _single(d, -0.6 - (-0.1), "relapse_drop")
    tests = [t, statement(d.mean() <= NONINFERIORITY,
                          f"long chronic's drop at most {NONINFERIORITY:g} point larger than full acute's")]
    own = per_seed(df, regimen="long_chronic", phase="post_relapse", condition="combined", metric="relapse_drop")
    return _result(tests, _pi_text(t), f"{data}; long chronic's own drop {own.mean():.1f} points "
                   "(study: -0.6 vs -0.1 for full acute)", t["mean"], t["n"])


# --------------------------------------------------------------------------- study B, chapter 5
#: The studies' treated arms, which the claims compare (an arm registered besides them is not in a claim).
TREATED = STUDY_ARMS[1:]


def _treated_means(df: pd.DataFrame, **where) -> pd.Series:
    """Mean over seeds per treated network (ketamine, ssri, neurosteroid) of one measure."""
    sel = select(df, **where)
    sel = sel[sel["treatment"].isin(TREATED)]
    return sel.groupby("treatment")["value"].mean()


def _b_mean(df: pd.DataFrame, claim_id: str, kind: str, **where) -> dict:
    c = paper.claim(claim_id)
    v = per_seed(df, **where)
    if "mean" in c:
        return mean_sd(c["mean"], c["sd"], STUDY_B_SEEDS, v.to_numpy(), kind)
    return mean_sd(c["value"], 0.0, STUDY_B_SEEDS, v.to_numpy(), kind)


def _welch_text(t: dict) -> str:
    return f"{fmt(t['mean'])} (diff {fmt(t['diff'])} [{fmt(t['low'])}, {fmt(t['high'])}])"


@claim("B1_ketamine_extreme", notebook="05_treatments")
def b1_ketamine_extreme(df: pd.DataFrame) -> dict:
    """Ketamine-like accuracy (%) at internal noise SD 2.5, drug on.

    Rule: the Welch difference of means against the study's 76.8 ± 3.6 (margin 5 points), and the
    statement "the ketamine-like network is the best of the three treatments at SD 2.5" holding.
    """
    where = dict(experiment="tolerance", condition="sigma_2.5", metric="accuracy")
    t = _b_mean(df, "B1_ketamine_extreme", "accuracy", treatment="ketamine", **where)
    means = _treated_means(df, **where)
    tests = [t, statement(means.idxmax() == "ketamine", "ketamine-like best at SD 2.5")]
    return _result(tests, _welch_text(t), ", ".join(f"{k} {v:.1f}" for k, v in means.items()), t["mean"], t["n"])


@claim("B3_ketamine_sparsity", notebook="05_treatments")
def b3_ketamine_sparsity(df: pd.DataFrame) -> dict:
    """Weight sparsity (%) of the ketamine-like network after 50% regrowth: the difference from the
    study's 47.5 within the sparsity margin (1 point)."""
    t = _b_mean(df, "B3_ketamine_sparsity", "sparsity", experiment="efficacy", treatment="ketamine",
                metric="weight_sparsity")
    return _result([t], _welch_text(t), "weight-matrix entries only", t["mean"], t["n"])


@claim("B4_neurosteroid_combined", notebook="05_treatments")
def b4_neurosteroid_combined(df: pd.DataFrame) -> dict:
    """Neurosteroid-like combined-stress accuracy (%), drug on: Welch difference against 97.6 ± 0.3."""
    t = _b_mean(df, "B4_neurosteroid_combined", "accuracy", experiment="efficacy", treatment="neurosteroid",
                condition="combined", metric="accuracy")
    return _result([t], _welch_text(t), "drug on (tanh, x0.595)", t["mean"], t["n"])


@claim("B6_ssri_extreme", notebook="05_treatments")
def b6_ssri_extreme(df: pd.DataFrame) -> dict:
    """SSRI-like accuracy (%) at internal noise SD 2.5, drug on.

    Rule: the Welch difference against the study's 49.9 ± 2.8, and the statement "the SSRI-like
    network lags the ketamine-like one at SD 2.5" holding.
    """
    where = dict(experiment="tolerance", condition="sigma_2.5", metric="accuracy")
    t = _b_mean(df, "B6_ssri_extreme", "accuracy", treatment="ssri", **where)
    means = _treated_means(df, **where)
    tests = [t, statement(means["ssri"] < means["ketamine"], "SSRI-like below ketamine-like at SD 2.5")]
    return _result(tests, _welch_text(t), f"ketamine-like at SD 2.5: {means['ketamine']:.1f}", t["mean"], t["n"])


@claim("B8_ssri_biased", notebook="05_treatments")
def b8_ssri_biased(df: pd.DataFrame) -> dict:
    """SSRI-like biased-stress accuracy (%), drug on.

    Rule: the Welch difference against the study's 47.2 ± 12.7, and the statement "the SSRI-like
    network has the lowest biased-stress accuracy (the highest manic proxy) of the three" holding.
    """
    where = dict(experiment="manic_risk", condition="biased", metric="accuracy")
    t = _b_mean(df, "B8_ssri_biased", "accuracy", treatment="ssri", **where)
    means = _treated_means(df, **where)
    tests = [t, statement(means.idxmin() == "ssri", "SSRI-like lowest biased accuracy")]
    return _result(tests, _welch_text(t), "lowest biased accuracy: " + means.idxmin(), t["mean"], t["n"])


@claim("B9_ssri_gain", notebook="05_treatments")
def b9_ssri_gain(df: pd.DataFrame) -> dict:
    """Gain of the SSRI-like network after its course (a protocol setting, checked, not a finding).

    Rule: the statement "every replicate's gain is 1.60 to within 0.005" holding.
    """
    v = per_seed(df, experiment="manic_risk", treatment="ssri", metric="gain")
    ok = bool(np.all(np.abs(v.to_numpy() - paper.claim("B9_ssri_gain")["value"]) <= 0.005))
    return _result([statement(ok, "every replicate's gain 1.60 ± 0.005")], fmt(v.mean(), digits=2),
                   "set by the protocol's gain ramp", v.mean(), len(v))


@claim("B10_all_near_ceiling", notebook="05_treatments")
def b10_all_near_ceiling(df: pd.DataFrame) -> dict:
    """Clean and standard accuracy (%) of the three treated networks, drug on.

    Rule: the statement "the lowest of the six means (3 treatments x clean, standard) is at least
    99%" holding. Reports the lowest mean.
    """
    sel = select(df, experiment="efficacy", metric="accuracy")
    sel = sel[sel["treatment"].isin(TREATED) & sel["condition"].isin(["clean", "standard"])]
    means = sel.groupby(["treatment", "condition"])["value"].mean()
    t, c = means.idxmin()
    n = sel["seed"].nunique()
    return _result([statement(means.min() >= 99.0, "lowest clean/standard mean at least 99%")],
                   fmt(means.min()), f"lowest of clean/standard: {t}, {c}", means.min(), n)


# --------------------------------------------------------------------------- study B, chapter 6
def relapse_outcomes(df: pd.DataFrame, treatment: str) -> np.ndarray:
    """Seeds x maintenance durations of 0/1 relapse outcomes (main relapse experiment)."""
    sel = select(df, experiment="relapse", treatment=treatment, metric="relapse")
    if "sweep" in sel.columns:
        sel = sel[sel["sweep"].isna()]
    wide = sel.pivot_table(index="seed", columns="duration", values="value", aggfunc="first")
    return (wide.to_numpy() / 100.0).round()


def _relapse_probability(df: pd.DataFrame, treatment: str, claim_id: str) -> dict:
    o = relapse_outcomes(df, treatment)
    t = proportion(paper.claim(claim_id)["mean"], STUDY_B_SEEDS, o)
    return _result([t], f"{fmt(t['mean'])} [{fmt(t['ci_low'])}, {fmt(t['ci_high'])}]",
                   f"% of {o.size} outcomes ({o.shape[0]} seeds x {o.shape[1]} maintenance durations) relapsed; "
                   f"ours − study {fmt(t['diff'])} [{fmt(t['low'])}, {fmt(t['high'])}]", t["mean"], t["n"])


@claim("B2_ketamine_no_manic_relapse", notebook="06_longitudinal_relapse")
def b2_ketamine_no_manic_relapse(df: pd.DataFrame) -> dict:
    """Ketamine-like manic relapse probability (%) after discontinuation (protection 0.90 at test).

    Rule: the proportion rule (pooled outcomes, Wilson and Newcombe intervals, margin 30 points)
    against the study's 0.0%.
    """
    return _relapse_probability(df, "ketamine", "B2_ketamine_no_manic_relapse")


@claim("B5_neurosteroid_relapse", notebook="06_longitudinal_relapse")
def b5_neurosteroid_relapse(df: pd.DataFrame) -> dict:
    """Neurosteroid-like manic relapse probability (%) off drug (protection 0.60 at test): the
    proportion rule against the study's 88.3%."""
    return _relapse_probability(df, "neurosteroid", "B5_neurosteroid_relapse")


@claim("B7_ssri_relapse", notebook="06_longitudinal_relapse")
def b7_ssri_relapse(df: pd.DataFrame) -> dict:
    """SSRI-like manic relapse probability (%) after cessation (protection 0.25 at test): the
    proportion rule against the study's 95.0%."""
    return _relapse_probability(df, "ssri", "B7_ssri_relapse")


@claim("B11_maintenance_negligible", notebook="06_longitudinal_relapse")
def b11_maintenance_negligible(df: pd.DataFrame) -> dict:
    """Longest minus shortest maintenance, SSRI- and neurosteroid-like networks.

    Per seed and treatment: the change in biased-stress accuracy (points) and in the relapse
    indicator between the shortest and the longest duration. Rule: the statement "for both
    treatments the mean accuracy change is at most 5 points and the share of seeds that stop
    relapsing is at most 20 points" (the study: +2.5 to +3.7 points, 10 points fewer seeds) holding.
    Reports the larger mean accuracy change.
    """
    sel = df[(df["experiment"] == "relapse") & df["duration"].notna()]
    if sel.empty:
        raise ValueError("results hold no per-duration relapse rows")
    d_lo, d_hi = sel["duration"].astype(float).min(), sel["duration"].astype(float).max()
    changes, rate_changes = {}, {}
    for t in ("ssri", "neurosteroid"):
        delta = {}
        for metric in ("accuracy", "relapse"):
            hi = per_seed(sel, treatment=t, metric=metric, duration=float(d_hi))
            lo = per_seed(sel, treatment=t, metric=metric, duration=float(d_lo))
            delta[metric] = hi - lo
        changes[t], rate_changes[t] = delta["accuracy"], delta["relapse"]
    holds = all(v.mean() <= 5.0 for v in changes.values()) and all(-v.mean() <= 20.0 for v in rate_changes.values())
    t_max = max(changes, key=lambda t: changes[t].mean())
    return _result([statement(holds, "accuracy change <= 5 points and <= 20 points fewer seeds relapsing, both")],
                   ", ".join(f"{t} {v.mean():+.1f}" for t, v in changes.items()) + " points",
                   f"biased accuracy, {d_hi:g} vs {d_lo:g} maintenance epochs; relapse rate change "
                   + ", ".join(f"{t} {v.mean():+.0f}" for t, v in rate_changes.items()) + " points",
                   changes[t_max].mean(), len(changes[t_max]))


# --------------------------------------------------------------------------- stability
BOOTSTRAP = 200  # seed resamples per chapter for the verdicts' stability


def resample_seeds(df: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The results with their replicate seeds drawn with replacement (each draw a new seed id)."""
    groups = {s: g for s, g in df.groupby("seed", sort=True)}
    seeds = list(groups)
    pick = rng.integers(0, len(seeds), len(seeds))
    return pd.concat([groups[seeds[i]].assign(seed=k) for k, i in enumerate(pick)], ignore_index=True)


def stability(claim_ids, df: pd.DataFrame, verdicts: dict[str, dict], n: int = BOOTSTRAP, seed: int = 0) -> dict:
    """Per claim: the share of ``n`` seed resamples giving the verdict of ``verdicts[claim]`` and,
    per statement test, the share in which the statement holds. Deterministic (``seed``)."""
    rng = np.random.default_rng(seed)
    same = {c: 0 for c in claim_ids}
    holds = {c: np.zeros(sum(t["test"] == "statement" for t in verdicts[c]["tests"])) for c in claim_ids}
    valid = {c: 0 for c in claim_ids}
    for _ in range(n):
        b = resample_seeds(df, rng)
        for c in claim_ids:
            try:
                r = CLAIMS[c].func(b)
            except (ValueError, KeyError, ZeroDivisionError):
                continue  # a resample without the rows a claim needs (e.g. one distinct seed)
            valid[c] += 1
            same[c] += r["verdict"] == verdicts[c]["verdict"]
            holds[c] += [t["holds"] for t in r["tests"] if t["test"] == "statement"]
    return {c: {"stability": same[c] / valid[c] if valid[c] else math.nan,
                "holds": list(holds[c] / valid[c]) if valid[c] else [], "resamples": valid[c]} for c in claim_ids}


# --------------------------------------------------------------------------- the table
def paper_value(c: dict) -> str:
    """The paper's number(s) of a claim as display text."""
    if "value" in c:
        return str(c["value"])
    if "mean" in c:
        return f"{c['mean']} ± {c['sd']}" if "sd" in c else str(c["mean"])
    nums = {k: v for k, v in c.items() if k != "text" and isinstance(v, (int, float))}
    if nums:
        parts = []
        for k, v in nums.items():
            kind, _, level = k.partition("_")
            parts.append(f"{v} at {level}%" if kind == "at" and level.isdigit() else f"{k}: {v}")
        return "; ".join(parts)
    return "qualitative"


def all_claims() -> list[tuple[str, str, dict]]:
    """(study, claim id, claim) for every claim of the paper, in file order."""
    data = paper.paper_results()
    return [(study[-1], cid, c) for study in ("study_A", "study_B") for cid, c in data[study]["claims"].items()]


def evaluate(claim_id: str, df: pd.DataFrame) -> dict:
    """Run one registered claim on a results DataFrame."""
    return CLAIMS[claim_id].func(df)


def tests_text(r: dict, holds: list[float] | None = None) -> str:
    """The tests of a claim's result as one line each (statements with their probability)."""
    out, k = [], 0
    for t in r["tests"]:
        line = f"{t['test']}: {t['text']} → {t['verdict']}"
        if t["test"] == "statement":
            line = f"statement “{t['text']}”: {'holds' if t['holds'] else 'does not hold'}"
            if holds:
                line += f" (in {100 * holds[k]:.0f}% of resamples)"
            k += 1
        out.append(line)
    return "; ".join(out)


def collect(profile: str, root=None, bootstrap: int = BOOTSTRAP) -> pd.DataFrame:
    """The scorecard at ``profile``: one row per claim id of the paper, covered or not.

    Columns: claim, study, statement, notebook, paper, ours, n, verdict, stability, tests, note.
    ``bootstrap`` seed resamples per chapter give the stability (0: not computed).
    """
    cache: dict[str, pd.DataFrame | None] = {}
    rows, results = [], {}
    for study, cid, c in all_claims():
        row = {"claim": cid, "study": study, "statement": c.get("text", ""), "notebook": "",
               "paper": paper_value(c), "ours": "", "n": None, "verdict": NOT_COVERED, "stability": math.nan,
               "tests": "", "note": ""}
        reg = CLAIMS.get(cid)
        if reg is not None:
            row["notebook"] = reg.notebook
            if reg.notebook not in cache:
                try:
                    cache[reg.notebook] = load_results(reg.notebook, profile, root)
                except FileNotFoundError:
                    cache[reg.notebook] = None
            df = cache[reg.notebook]
            if df is None:
                row["note"] = f"no results for {reg.notebook} at profile {profile!r}"
            else:
                r = reg.func(df)
                results[cid] = r
                row.update(ours=r["ours"], n=r["n"], verdict=r["verdict"], note=r.get("note", ""))
        rows.append(row)
    table = pd.DataFrame(rows)
    if bootstrap:
        by_nb: dict[str, list[str]] = {}
        for cid in results:
            by_nb.setdefault(CLAIMS[cid].notebook, []).append(cid)
        for nb, cids in by_nb.items():
            st = stability(cids, cache[nb], results, bootstrap)
            for cid in cids:
                i = table.index[table["claim"] == cid][0]
                table.at[i, "stability"] = st[cid]["stability"]
                table.at[i, "tests"] = tests_text(results[cid], st[cid]["holds"])
    else:
        for cid, r in results.items():
            table.loc[table["claim"] == cid, "tests"] = tests_text(r)
    return table


def shown_verdict(verdict: str, stability: float) -> str:
    """The verdict as shown: marked unstable when fewer than :data:`STABLE` of the resamples agree."""
    if verdict == NOT_COVERED or math.isnan(stability) or stability >= STABLE:
        return verdict
    return f"{verdict} (unstable)"


def counts(table: pd.DataFrame) -> dict:
    """How many claims got each verdict (including 'not yet covered'), and how many are unstable."""
    out = {v: int((table["verdict"] == v).sum()) for v in (*VERDICT_ORDER, NOT_COVERED)}
    st = table["stability"].astype(float)
    out["unstable"] = int(((table["verdict"] != NOT_COVERED) & (st < STABLE)).sum())
    return out


# --------------------------------------------------------------------------- the book page
VERDICT_COLOURS = {REPRODUCED: "#1b7837", CONSISTENT: "#b35806", DIFFERS: "#b2182b", NOT_COVERED: "#6c757d"}


def to_html(table: pd.DataFrame) -> str:
    """The scorecard as a compact, self-styled HTML table (claim and statement stacked, verdict badges)."""
    from html import escape

    rows = []
    for r in table.itertuples(index=False):
        colour = VERDICT_COLOURS.get(r.verdict, "#333")
        n = "" if r.n is None or (isinstance(r.n, float) and math.isnan(r.n)) else str(int(r.n))
        st = "" if math.isnan(float(r.stability)) else f"{100 * float(r.stability):.0f}%"
        rows.append(
            "<tr>"
            f"<td><strong>{escape(r.claim)}</strong><br><small>{escape(r.statement)}</small></td>"
            f"<td>{escape(r.paper)}</td><td>{escape(r.ours)}</td><td>{n}</td>"
            f'<td><span style="color:{colour};font-weight:600">{escape(shown_verdict(r.verdict, float(r.stability)))}'
            f"</span><br><small>stability {st}</small></td>"
            f"<td><small>{escape(r.tests)}<br>{escape(r.note)}</small></td>"
            "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("claim", "study", "ours", "n", "verdict", "tests and notes"))
    return ('<div style="overflow-x:auto"><table class="scorecard" style="font-size:0.85em">'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")
