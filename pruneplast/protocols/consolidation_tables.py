"""Study A's consolidation tables and the numbers its chapter quotes (chapter 3).

Each function reads the tidy rows of :func:`pruneplast.protocols.consolidation.duration_curve`
(``phase`` ``pre_relapse`` / ``post_relapse``, ``epochs``, condition, metric) and returns a table for
reading, a summary, or a mapping of glue names to the numbers and sentences the prose quotes.
"""

from __future__ import annotations

from typing import Any, Sequence

import pandas as pd

from ..results import fmt_mean_ci, paired_difference, summarise
from ..typeset import number

#: The durations the study ran (epochs of consolidation).
TABLE_EPOCHS = (0, 5, 10, 15, 20)
#: Columns of the study's duration table: (label, phase, condition, metric), in its order.
TABLE_COLUMNS = (
    ("clean", "pre_relapse", "clean", "accuracy"),
    ("combined", "pre_relapse", "combined", "accuracy"),
    ("extreme", "pre_relapse", "internal_extreme", "accuracy"),
    ("post-relapse combined", "post_relapse", "combined", "accuracy"),
    ("relapse drop", "post_relapse", "combined", "relapse_drop"),
)


# --------------------------------------------------------------------------- the study's table and the curves
def _pick(df: pd.DataFrame, phase: str, condition: str, metric: str) -> pd.DataFrame:
    return df[(df.phase == phase) & (df.condition == condition) & (df.metric == metric)]


def duration_table(df: pd.DataFrame, paper: dict, epochs: Sequence[int] = TABLE_EPOCHS) -> pd.DataFrame:
    """Ours (mean [95% CI] over seeds) above the study's value, per consolidation duration.

    ``paper`` is the study's table: epochs -> [clean, combined, extreme, post-relapse combined,
    relapse drop]. Durations that were not run are left out.
    """
    have = set(int(e) for e in df.epochs.unique())
    rows = []
    for e in [int(e) for e in epochs if int(e) in have]:
        ours, study = {"epochs": e, "source": "ours"}, {"epochs": e, "source": "study"}
        for j, (label, phase, cond, metric) in enumerate(TABLE_COLUMNS):
            s = summarise(_pick(df[df.epochs == e], phase, cond, metric), ["condition"]).iloc[0]
            ours[label] = fmt_mean_ci(s["mean"], s["ci_low"], s["ci_high"])
            ref = paper.get(e)
            study[label] = "" if ref is None else f"{ref[j]:.1f}"
        rows += [ours, study]
    return pd.DataFrame(rows).set_index(["epochs", "source"])


def curve(df: pd.DataFrame, phase: str = "pre_relapse", metric: str = "accuracy") -> pd.DataFrame:
    """Rows of one phase and metric, for plotting against ``epochs`` (one row per seed)."""
    return df[(df.phase == phase) & (df.metric == metric)]


def extreme_gain(df: pd.DataFrame, condition: str = "internal_extreme", to_epochs: int | None = None) -> pd.Series:
    """Paired gain in accuracy (points) from 0 epochs to ``to_epochs`` (default: the longest run).

    Returns mean, sd, n, ci_low, ci_high and the durations compared.
    """
    acc = _pick(df, "pre_relapse", condition, "accuracy").copy()
    to = int(acc.epochs.max()) if to_epochs is None else int(to_epochs)
    acc = acc[acc.epochs.isin([0, to])]
    acc["duration"] = acc.epochs.map({0: "start", to: "end"})
    out = paired_difference(acc, "duration", "end", "start").iloc[0]
    return pd.concat([out, pd.Series({"from_epochs": 0, "to_epochs": to})])


def relapse_drop(df: pd.DataFrame, condition: str = "combined") -> pd.DataFrame:
    """Relapse drop (points, pre - post) per duration: mean, sd, n and 95% CI."""
    return summarise(_pick(df, "post_relapse", condition, "relapse_drop"), ["epochs"])


# --------------------------------------------------------------------------- the chapter's numbers
def sparsity_table(df: pd.DataFrame) -> pd.DataFrame:
    """Weight sparsity (%) before and after the second wave (columns), at the first and last checkpoint."""
    sp = df[df.metric == "weight_sparsity"]
    return sp.groupby(["phase", "epochs"]).value.mean().unstack(0).round(1).iloc[[0, -1]]


def course_numbers(df: pd.DataFrame) -> dict[str, Any]:
    """The course of recovery the prose quotes: combined and extreme-stress accuracy at 0 epochs,
    at 5 epochs (``at5``: the last checkpoint, if earlier) and at the last one, the paired extreme
    gain, and three sentences (``course_text``, ``share_text``, ``after_5_text``) that depend on
    whether the run went past 5 epochs (a shorter run has no checkpoint between)."""
    s = summarise(curve(df, "pre_relapse", "accuracy"), ["epochs", "condition"]).set_index(["epochs", "condition"])
    last = int(df.epochs.max())
    gain = extreme_gain(df)
    at5 = min(5, last)
    ext_mean = s.xs("internal_extreme", level="condition")["mean"]
    comb_mean = s.xs("combined", level="condition")["mean"]
    out = {
        "last_epochs": last,
        "combined_0": float(s.loc[(0, "combined"), "mean"]),
        "combined_last": float(s.loc[(last, "combined"), "mean"]),
        "extreme_0": float(s.loc[(0, "internal_extreme"), "mean"]),
        "extreme_last": float(s.loc[(last, "internal_extreme"), "mean"]),
        "extreme_gain": float(gain["mean"]),
        "extreme_gain_lo": float(gain["ci_low"]),
        "extreme_gain_hi": float(gain["ci_high"]),
        "at5": at5,
        "combined_5": float(s.loc[(at5, "combined"), "mean"]),
        "extreme_5": float(s.loc[(at5, "internal_extreme"), "mean"]),
        "extreme_share_5": float(100 * (ext_mean[at5] - ext_mean[0]) / (ext_mean[last] - ext_mean[0])),
        "extreme_after_5": float(ext_mean[last] - ext_mean[at5]),
        "combined_after_5": float(comb_mean[last] - comb_mean[at5]),
    }
    n1 = number
    if at5 < last:
        course = (
            f"Consolidation repairs the noise-free and moderately noisy conditions within a few epochs "
            f"(combined {n1(s.loc[(at5, 'combined'), 'mean'])}% after {at5} epochs, "
            f"{n1(s.loc[(last, 'combined'), 'mean'])}% after {last}). Extreme internal noise keeps improving "
            f"for longer: {n1(ext_mean[0])}% at 0 epochs, {n1(ext_mean[at5])}% at {at5}, "
            f"{n1(ext_mean[last])}% at {last}."
        )
        share = (
            f"Of that gain, {n1(100 * (ext_mean[at5] - ext_mean[0]) / (ext_mean[last] - ext_mean[0]), 0)}% is "
            f"reached in the first {at5} epochs."
        )
        after = (
            f"Between {at5} and {last} epochs, combined accuracy changes by "
            f"{n1(comb_mean[last] - comb_mean[at5])} points and extreme-stress accuracy by "
            f"{n1(ext_mean[last] - ext_mean[at5])}."
        )
    else:
        course = (
            f"After {last} epoch{'s' if last != 1 else ''} of consolidation combined accuracy is "
            f"{n1(s.loc[(last, 'combined'), 'mean'])}% and extreme-stress accuracy "
            f"{n1(ext_mean[last])}% (from {n1(ext_mean[0])}% at 0 epochs); this run stops before the "
            "study's longer durations, so it cannot show how long each condition keeps improving."
        )
        share = "The run has no checkpoint between its first and last duration to split that gain."
        after = (
            f"This run consolidates for {last} epoch{'s' if last != 1 else ''} only, so it cannot say whether "
            "extreme-stress accuracy keeps rising after combined accuracy has saturated."
        )
    return {**out, "course_text": course, "share_text": share, "after_5_text": after}


def drop_numbers(df: pd.DataFrame) -> dict[str, Any]:
    """The relapse drops the prose quotes: mean and 95% CI at 0, 5 and 15 epochs (the last
    checkpoint where the run is shorter) and at the last checkpoint (``drop_0``, ``drop_5``,
    ``drop_15``, ``drop_last``, each with ``_lo`` / ``_hi``), the checkpoint standing for 15
    epochs (``at15``) and the largest mean drop and where (``drop_max``, ``drop_max_at``)."""
    d = relapse_drop(df).set_index("epochs")
    last = int(df.epochs.max())
    out: dict[str, Any] = {}
    for e, key in ((0, "0"), (min(5, last), "5"), (min(15, last), "15"), (last, "last")):
        out[f"drop_{key}"] = float(d.loc[e, "mean"])
        out[f"drop_{key}_lo"] = float(d.loc[e, "ci_low"])
        out[f"drop_{key}_hi"] = float(d.loc[e, "ci_high"])
    out["at15"] = min(15, last)
    out["drop_max"] = float(d["mean"].max())
    out["drop_max_at"] = int(d["mean"].idxmax())
    return out
