"""Study B's claims (chapters 5-6), each registered with ``@claim`` and scored by its rule."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import paper
from ..arms import STUDY_TREATED
from ..results import fmt_number, fmt_signed
from ..verdicts import mean_sd, proportion, statement
from .registry import STUDY_B_SEEDS, claim, per_seed, relapse_outcomes, result, select

# --------------------------------------------------------------------------- study B, chapter 5


def _treated_means(df: pd.DataFrame, **where) -> pd.Series:
    """Mean over seeds per treated network (ketamine, ssri, neurosteroid) of one measure."""
    sel = select(df, **where)
    sel = sel[sel["treatment"].isin(STUDY_TREATED)]
    return sel.groupby("treatment")["value"].mean()


def _b_mean(df: pd.DataFrame, claim_id: str, kind: str, **where) -> dict:
    c = paper.claim(claim_id)
    v = per_seed(df, **where)
    if "mean" in c:
        return mean_sd(c["mean"], c["sd"], STUDY_B_SEEDS, v.to_numpy(), kind)
    return mean_sd(c["value"], 0.0, STUDY_B_SEEDS, v.to_numpy(), kind)


def _welch_text(t: dict) -> str:
    return f"{fmt_number(t['mean'])} (diff {fmt_number(t['diff'])} [{fmt_number(t['low'])}, {fmt_number(t['high'])}])"


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
    return result(tests, _welch_text(t), ", ".join(f"{k} {v:.1f}" for k, v in means.items()), t["mean"], t["n"])


@claim("B3_ketamine_sparsity", notebook="05_treatments")
def b3_ketamine_sparsity(df: pd.DataFrame) -> dict:
    """Weight sparsity (%) of the ketamine-like network after 50% regrowth: the difference from the
    study's 47.5 within the sparsity margin (1 point)."""
    t = _b_mean(
        df, "B3_ketamine_sparsity", "sparsity", experiment="efficacy", treatment="ketamine", metric="weight_sparsity"
    )
    return result([t], _welch_text(t), "weight-matrix entries only", t["mean"], t["n"])


@claim("B4_neurosteroid_combined", notebook="05_treatments")
def b4_neurosteroid_combined(df: pd.DataFrame) -> dict:
    """Neurosteroid-like combined-stress accuracy (%), drug on: Welch difference against 97.6 ± 0.3."""
    t = _b_mean(
        df,
        "B4_neurosteroid_combined",
        "accuracy",
        experiment="efficacy",
        treatment="neurosteroid",
        condition="combined",
        metric="accuracy",
    )
    return result([t], _welch_text(t), "drug on (tanh, x0.595)", t["mean"], t["n"])


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
    return result(tests, _welch_text(t), f"ketamine-like at SD 2.5: {means['ketamine']:.1f}", t["mean"], t["n"])


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
    return result(tests, _welch_text(t), "lowest biased accuracy: " + means.idxmin(), t["mean"], t["n"])


@claim("B9_ssri_gain", notebook="05_treatments")
def b9_ssri_gain(df: pd.DataFrame) -> dict:
    """Gain of the SSRI-like network after its course (a protocol setting, checked, not a finding).

    Rule: the statement "every replicate's gain is 1.60 to within 0.005" holding.
    """
    v = per_seed(df, experiment="manic_risk", treatment="ssri", metric="gain")
    ok = bool(np.all(np.abs(v.to_numpy() - paper.claim("B9_ssri_gain")["value"]) <= 0.005))
    return result(
        [statement(ok, "every replicate's gain 1.60 ± 0.005")],
        fmt_number(v.mean(), 2),
        "set by the protocol's gain ramp",
        v.mean(),
        len(v),
    )


@claim("B10_all_near_ceiling", notebook="05_treatments")
def b10_all_near_ceiling(df: pd.DataFrame) -> dict:
    """Clean and standard accuracy (%) of the three treated networks, drug on.

    Rule: the statement "the lowest of the six means (3 treatments x clean, standard) is at least
    99%" holding. Reports the lowest mean.
    """
    sel = select(df, experiment="efficacy", metric="accuracy")
    sel = sel[sel["treatment"].isin(STUDY_TREATED) & sel["condition"].isin(["clean", "standard"])]
    means = sel.groupby(["treatment", "condition"])["value"].mean()
    t, c = means.idxmin()
    n = sel["seed"].nunique()
    return result(
        [statement(means.min() >= 99.0, "lowest clean/standard mean at least 99%")],
        fmt_number(means.min()),
        f"lowest of clean/standard: {t}, {c}",
        means.min(),
        n,
    )


# --------------------------------------------------------------------------- study B, chapter 6


# --------------------------------------------------------------------------- study B, chapter 6
def _relapse_probability(df: pd.DataFrame, treatment: str, claim_id: str) -> dict:
    o = relapse_outcomes(df, treatment)
    t = proportion(paper.claim(claim_id)["mean"], STUDY_B_SEEDS, o)
    return result(
        [t],
        f"{fmt_number(t['mean'])} [{fmt_number(t['ci_low'])}, {fmt_number(t['ci_high'])}]",
        f"% of {o.size} outcomes ({o.shape[0]} seeds x {o.shape[1]} maintenance durations) relapsed; "
        f"ours − study {fmt_number(t['diff'])} [{fmt_number(t['low'])}, {fmt_number(t['high'])}]",
        t["mean"],
        t["n"],
    )


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
    return result(
        [statement(holds, "accuracy change <= 5 points and <= 20 points fewer seeds relapsing, both")],
        ", ".join(f"{t} {fmt_signed(v.mean(), 1)}" for t, v in changes.items()) + " points",
        f"biased accuracy, {d_hi:g} vs {d_lo:g} maintenance epochs; relapse rate change "
        + ", ".join(f"{t} {fmt_signed(v.mean(), 0)}" for t, v in rate_changes.items())
        + " points",
        changes[t_max].mean(),
        len(changes[t_max]),
    )
