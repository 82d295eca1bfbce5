"""Study A's pruning-cliff tables and the numbers its chapter quotes (chapter 2).

Each function reads the tidy rows of :func:`pruneplast.protocols.cliff.main_experiment` and
:func:`~pruneplast.protocols.cliff.sparsity_sweep` (``experiment`` ``main`` / ``sweep``, with a
``data_sets`` column when the chapter ran both data-set schemes) and returns a table for reading
or a mapping of glue names to the numbers the prose quotes.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, NamedTuple, Sequence

import pandas as pd

from ..config import DATA_SET_LABELS
from ..paper import A_STAGES
from ..results import fmt_mean_ci, paired_difference, summarise
from ..stress import MAIN_CONDITIONS
from ..tables import plain

#: The pruned, repaired and unrepaired arms the stage tables show (the random-regrowth arm is the control).
SHOWN_REGROWTH = ("none", "gradient")


# --------------------------------------------------------------------------- main experiment
def main_table(df: pd.DataFrame, paper: dict) -> pd.DataFrame:
    """Ours (mean [95% CI] over seeds) beside the study's value, per condition and stage.

    ``paper`` is the study's ``main`` table: condition -> [baseline, pruned, recovered].
    """
    acc = df[(df.experiment == "main") & (df.metric == "accuracy") & df.regrowth.isin(SHOWN_REGROWTH)]
    s = summarise(acc, ["condition", "stage"]).set_index(["condition", "stage"])
    rows = []
    for cond in MAIN_CONDITIONS:
        row = {"condition": plain(cond)}
        for i, st in enumerate(A_STAGES):
            r = s.loc[(cond, st)]
            study = paper.get(cond, [None] * 3)[i]
            row[st] = fmt_mean_ci(r["mean"], r["ci_low"], r["ci_high"]) + (
                "" if study is None else f" (study {fmt_mean_ci(study, math.nan, math.nan)})"
            )
        rows.append(row)
    return pd.DataFrame(rows).set_index("condition")


def structure_table(main: pd.DataFrame) -> pd.DataFrame:
    """Kept weights per layer and weight / parameter sparsity (%) per stage (columns), mean over seeds."""
    struct = main[
        main.metric.isin(["kept_weights", "weight_sparsity", "parameter_sparsity"]) & main.regrowth.isin(SHOWN_REGROWTH)
    ]
    return struct.groupby(["stage", "metric", "condition"], sort=False).value.mean().unstack(0).round(1)


def selectivity_table(main: pd.DataFrame) -> pd.DataFrame:
    """The share (%) of the attainable gradient score each regrowth arm's connections capture."""
    sel = main[main.metric == "regrowth_selectivity"]
    return sel.groupby("regrowth").value.mean().round(1).to_frame("gradient score captured (%)")


def stage_summary(main: pd.DataFrame) -> pd.DataFrame:
    """Accuracy per (stage, condition) of the shown arms: mean, SD, n and 95% CI."""
    acc = main[(main.metric == "accuracy") & main.regrowth.isin(SHOWN_REGROWTH)]
    return summarise(acc, ["stage", "condition"]).set_index(["stage", "condition"])


def stage_numbers(s: pd.DataFrame) -> dict[str, Any]:
    """The stage accuracies the prose quotes, from :func:`stage_summary`."""
    return {
        "pruned_combined": s.loc[("pruned", "combined"), "mean"],
        "pruned_combined_lo": s.loc[("pruned", "combined"), "ci_low"],
        "pruned_combined_hi": s.loc[("pruned", "combined"), "ci_high"],
        "recovered_combined": s.loc[("recovered", "combined"), "mean"],
        "baseline_combined": s.loc[("baseline", "combined"), "mean"],
        "pruned_standard": s.loc[("pruned", "standard"), "mean"],
    }


# --------------------------------------------------------------------------- the sweep
def sweep_table(acc_sw: pd.DataFrame, paper_sweep: Mapping[int, float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sweep's combined-stress accuracy: its summary per level, and the table for reading.

    ``acc_sw`` holds the sweep's accuracy rows; ``paper_sweep`` the study's sweep (sparsity in %
    -> combined accuracy); a level the study did not report shows "—"."""
    sw = summarise(acc_sw[acc_sw.condition == "combined"], ["sparsity_target"])
    table = pd.DataFrame(
        {
            "sparsity (%)": (100 * sw["sparsity_target"]).round(0).astype(int),
            "combined, ours": [fmt_mean_ci(r["mean"], r["ci_low"], r["ci_high"], 0) for _, r in sw.iterrows()],
            "combined, study": [paper_sweep.get(int(round(100 * x)), "—") for x in sw["sparsity_target"]],
        }
    ).set_index("sparsity (%)")
    return sw, table


def sweep_at(sw: pd.DataFrame, level: float) -> float:
    """Mean combined accuracy of :func:`sweep_table`'s summary at ``level`` (NaN if not swept)."""
    return sw.set_index(sw["sparsity_target"].round(3))["mean"].get(level, float("nan"))


# --------------------------------------------------------------------------- the regrowth control
def regrowth_comparison(df: pd.DataFrame) -> pd.DataFrame:
    """Gradient-guided minus random regrowth after consolidation, paired by seed, per condition."""
    rec = df[(df.stage == "recovered") & (df.metric == "accuracy")]
    return paired_difference(rec, "regrowth", "gradient", "random", by=["condition"])


def comparison_table(cmp: pd.DataFrame) -> pd.DataFrame:
    """:func:`regrowth_comparison` for reading: the difference, its CI and the seeds, per condition."""
    table = cmp.set_index("condition")[["mean", "ci_low", "ci_high", "n"]].round(2)
    table.columns = ["gradient − random (points)", "95% CI low", "95% CI high", "seeds"]
    table.index = [plain(c) for c in table.index]
    table.index.name = "condition"
    return table


def comparison_numbers(cmp: pd.DataFrame) -> dict[str, Any]:
    """The paired differences the prose quotes: combined and severe internal noise, with CIs."""
    ci = cmp.set_index("condition")
    out = {}
    for key, cond in (("combined", "combined"), ("severe", "internal_severe")):
        for col, suffix in (("mean", ""), ("ci_low", "_lo"), ("ci_high", "_hi")):
            out[f"grad_vs_rand_{key}{suffix}"] = ci.loc[cond, col]
    return out


# --------------------------------------------------------------------------- the data set
class DataSetEffect(NamedTuple):
    """Combined-stress accuracy on both data-set schemes (:func:`data_set_effect`)."""

    accuracy: pd.DataFrame  # the rows compared, with a ``point`` column naming stage or sweep level
    effect: pd.DataFrame  # shared minus per-replicate, paired by seed, indexed by point
    table: pd.DataFrame  # both schemes and the difference, mean [95% CI], for reading


def data_set_effect(
    mains: Mapping[str, pd.DataFrame], sweeps: Mapping[str, pd.DataFrame], sweep_levels: Sequence[float]
) -> DataSetEffect:
    """Combined-stress accuracy at each stage of the main experiment (gradient regrowth) and each
    sweep level, on study A's one data set and on a data set per replicate, and the paired
    difference (the same initialisations and random streams: only the data differ).

    ``mains`` / ``sweeps`` map each data-set scheme (both of ``shared``, ``per_replicate``) to its
    rows of the main experiment / the sweep."""
    missing = [k for k in DATA_SET_LABELS if k not in mains or k not in sweeps]
    if missing:
        raise ValueError(f"the data-set effect needs both schemes {list(DATA_SET_LABELS)}; missing {missing}")
    schemes = list(mains)
    both = pd.concat([mains[k] for k in schemes] + [sweeps[k] for k in schemes], ignore_index=True)
    acc = both[
        (both.metric == "accuracy")
        & (both.condition == "combined")
        & ((both.experiment == "sweep") | both.regrowth.isin(SHOWN_REGROWTH))
    ].copy()
    acc["point"] = [
        f"{100 * lv:.0f}% sparsity (sweep)" if e == "sweep" else f"{st} (main)"
        for e, st, lv in zip(acc.experiment, acc.stage, acc.sparsity_target)
    ]
    points = [f"{st} (main)" for st in A_STAGES] + [f"{100 * lv:.0f}% sparsity (sweep)" for lv in sweep_levels]
    eff = paired_difference(acc, "data_sets", "shared", "per_replicate", by=["point"])
    eff = eff.set_index("point").reindex(points)
    per = summarise(acc, ["point", "data_sets"]).set_index(["point", "data_sets"])
    cols = ["mean", "ci_low", "ci_high"]
    table = pd.DataFrame(
        {
            DATA_SET_LABELS["shared"]: [fmt_mean_ci(*per.loc[(p, "shared"), cols]) for p in points],
            DATA_SET_LABELS["per_replicate"]: [fmt_mean_ci(*per.loc[(p, "per_replicate"), cols]) for p in points],
            "shared − per replicate (points)": [
                fmt_mean_ci(r["mean"], r["ci_low"], r["ci_high"]) for _, r in eff.iterrows()
            ],
        },
        index=pd.Index(points, name="combined-stress accuracy (%)"),
    )
    return DataSetEffect(acc, eff, table)


def effect_numbers(eff: pd.DataFrame) -> dict[str, Any]:
    """The data-set differences the prose quotes: the largest (and where), pruned and recovered."""
    big = eff["mean"].abs().idxmax()
    return {
        "effect_at": big,
        "effect_max": eff.loc[big, "mean"],
        "effect_max_lo": eff.loc[big, "ci_low"],
        "effect_max_hi": eff.loc[big, "ci_high"],
        "effect_pruned": eff.loc["pruned (main)", "mean"],
        "effect_recovered": eff.loc["recovered (main)", "mean"],
    }


def effect_reading(eff: pd.DataFrame) -> str:
    """The data-set effect in words: where it is largest, and at the pruned and recovered states."""
    big = eff["mean"].abs().idxmax()
    return (
        f"The data set matters most at {big}: {eff.loc[big, 'mean']:+.1f} points "
        f"(95% CI {eff.loc[big, 'ci_low']:+.1f} to {eff.loc[big, 'ci_high']:+.1f}) on study A's data "
        f"set. At the 95%-pruned state the difference is {eff.loc['pruned (main)', 'mean']:+.1f} points and "
        f"after recovery {eff.loc['recovered (main)', 'mean']:+.1f}."
    )


# --------------------------------------------------------------------------- the claims
def prediction_numbers(claims: Mapping[str, dict | None]) -> dict[str, float]:
    """The study's percentile among our replicates and a new replicate's 95% prediction interval,
    for claim A1 (``a1_*``) and claim A2 at 90% and 93% (``a2_90_*``, ``a2_93_*``); NaN where a
    claim was not scored (``None``, :meth:`pruneplast.pages.Page.close`)."""
    nan = {"percentile": math.nan, "low": math.nan, "high": math.nan}
    a1 = claims["A1_pruned_combined"]
    a2 = claims["A2_cliff"]
    tests = {
        "a1": a1["tests"][0] if a1 else nan,
        "a2_90": a2["tests"][0] if a2 else nan,
        "a2_93": a2["tests"][1] if a2 else nan,
    }
    out = {}
    for key, t in tests.items():
        out[f"{key}_pct"] = t["percentile"]
        out[f"{key}_lo"] = t["low"]
        out[f"{key}_hi"] = t["high"]
    return out
