"""Study A's claims (chapters 2-4), each registered with ``@claim`` and scored by its rule."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import paper
from ..verdicts import statement
from .registry import claim, like_with_like, per_seed, pi_text, result, select, single


# --------------------------------------------------------------------------- study A, chapter 2
@claim("A1_pruned_combined", notebook="02_pruning_cliff")
def a1_pruned_combined(df: pd.DataFrame) -> dict:
    """Combined-stress accuracy (%) of the 95%-pruned network: a single replicate of the study,
    placed in the prediction interval of a new replicate of ours (main experiment, stage 'pruned')."""
    df, data = like_with_like(df)
    v = per_seed(df, experiment="main", stage="pruned", condition="combined", metric="accuracy")
    t = single(v, paper.claim("A1_pruned_combined")["value"])
    return result([t], pi_text(t), data, t["mean"], t["n"])


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
    tests = [
        single(
            per_seed(df, experiment="sweep", condition="combined", metric="accuracy", sparsity_target=_lv(df, level)),
            c[f"at_{level}"],
        )
        for level in (90, 93)
    ]
    lo, hi, drop = steepest_drop(df)
    tests.append(statement(lo >= 90 and hi <= 95, "steepest fall between 90% and 95% sparsity"))
    return result(
        tests,
        f"{pi_text(tests[0])} at 90%; {pi_text(tests[1])} at 93%",
        f"{data}; steepest fall between {lo:g}% and {hi:g}% ({drop:.1f} points)",
        tests[1]["mean"],
        tests[1]["n"],
    )


@claim("A3_recovered_combined", notebook="02_pruning_cliff")
def a3_recovered_combined(df: pd.DataFrame) -> dict:
    """Combined accuracy (%) after 50% gradient-guided regrowth + consolidation, with the sparsity left.

    Rule: the study's single-replicate 97.0 in our prediction interval, and the study's 47.5%
    weight sparsity left in the prediction interval of ours.
    """
    df, data = like_with_like(df)
    acc = per_seed(
        df, experiment="main", stage="recovered", regrowth="gradient", condition="combined", metric="accuracy"
    )
    sp = per_seed(df, experiment="main", stage="recovered", regrowth="gradient", metric="weight_sparsity")
    t = single(acc, paper.claim("A3_recovered_combined")["value"])
    ts = single(sp, 47.5, "sparsity")
    return result(
        [t, ts], pi_text(t), f"{data}; weight sparsity left {sp.mean():.1f}% (study ~47.5%)", t["mean"], t["n"]
    )


# --------------------------------------------------------------------------- study A, chapters 3 and 4
def _durations(df: pd.DataFrame, wanted: tuple[int, ...]) -> list[int]:
    """The consolidation durations to use for ``wanted``: each if it was run, else the longest run."""
    have = sorted(int(e) for e in df["epochs"].unique())
    return [w if w in have else have[-1] for w in wanted]


@claim("A4_consolidation_gain_extreme", notebook="03_consolidation")
def a4_consolidation_gain_extreme(df: pd.DataFrame) -> dict:
    """Gain in extreme-stress accuracy (points, internal noise SD 2.5) from 0 to 20 consolidation epochs, by seed.

    Rule: the study's single-replicate 55.1 in the prediction interval of our per-seed gains. A
    run shorter than 20 epochs is scored on its longest duration (the note says which).
    """
    df, data = like_with_like(df)
    to = _durations(df, (20,))[0]
    sel = dict(phase="pre_relapse", condition="internal_extreme", metric="accuracy")
    g = per_seed(df, epochs=to, **sel) - per_seed(df, epochs=0, **sel)
    t = single(g, paper.claim("A4_consolidation_gain_extreme")["value"])
    return result([t], pi_text(t), f"{data}; paired gain 0 -> {to} epochs", t["mean"], t["n"])


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
    tests = [single(d, c[k], "relapse_drop") for d, k in zip(drops, ("drop_15", "drop_20"))]
    tests.append(
        statement(
            all(abs(d.mean()) <= RELAPSE_ZERO for d in drops),
            f"mean drop within {RELAPSE_ZERO:g} point of zero at both durations",
        )
    )
    return result(
        tests,
        "; ".join(f"{pi_text(t)} at {e}" for t, e in zip(tests, at)),
        f"{data}; relapse drop in points at {at[0]} and {at[1]} epochs (study: 0.0 and -0.4)",
        tests[-2]["mean"],
        tests[-2]["n"],
    )


@claim("A6_iterative_sparsity", notebook="04_regimens")
def a6_iterative_sparsity(df: pd.DataFrame) -> dict:
    """Weight sparsity (%) left after the long chronic regimen (10 cycles of 40% regrowth): the
    study's single-replicate 0.6 in the prediction interval of ours."""
    df, data = like_with_like(df)
    cycles = int(select(df, regimen="long_chronic")["cycle"].max())
    v = per_seed(df, regimen="long_chronic", phase="pre_relapse", metric="weight_sparsity")
    t = single(v, paper.claim("A6_iterative_sparsity")["value"], "sparsity")
    return result([t], pi_text(t), f"{data}; after {cycles} cycles", t["mean"], t["n"])


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
    tests = [
        single(d1, c["low"]),
        single(d2, c["high"]),
        statement(d1.mean() > 0 and d2.mean() > 0, "long chronic ahead of both on average"),
    ]
    return result(
        tests,
        f"{pi_text(tests[0])} vs acute moderate; {pi_text(tests[1])} vs full acute",
        f"{data}; paired differences in points (study: 9.4 and 11.6)",
        tests[0]["mean"],
        tests[0]["n"],
    )


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
    t = single(d, -0.6 - (-0.1), "relapse_drop")
    tests = [
        t,
        statement(
            d.mean() <= NONINFERIORITY, f"long chronic's drop at most {NONINFERIORITY:g} point larger than full acute's"
        ),
    ]
    own = per_seed(df, regimen="long_chronic", phase="post_relapse", condition="combined", metric="relapse_drop")
    return result(
        tests,
        pi_text(t),
        f"{data}; long chronic's own drop {own.mean():.1f} points (study: -0.6 vs -0.1 for full acute)",
        t["mean"],
        t["n"],
    )
