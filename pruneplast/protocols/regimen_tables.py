"""Study A's regimen tables and the numbers its chapter quotes (chapter 4).

Each function reads the regimens of :func:`pruneplast.protocols.regimens.study_regimens` or the
tidy rows of :func:`~pruneplast.protocols.regimens.run` and returns a table for reading, the rows a
figure draws, the paired comparisons of the regimens (:func:`comparisons`) and their reading, or a
mapping of glue names to the numbers the prose quotes. The regimens' names for readers
(:data:`LABELS`, which :func:`pruneplast.tables.plain` reads), the comparisons (:data:`PAIRS`) and
the columns of the study's table (:data:`TABLE_COLUMNS`) are declared here.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import pandas as pd

from ..results import fmt_mean_ci, paired_difference, summarise
from .regimens import CHRONIC_NAMES, Regimen

#: The regimens' names for readers.
LABELS = {
    "pruned": "pruned (untreated)",
    "acute_moderate": "acute moderate",
    "short_chronic": "short chronic",
    "moderate_chronic": "moderate chronic",
    "long_chronic": "long chronic",
    "full_acute": "full acute",
    "epochs_matched": "epochs-matched control",
}

#: Paired comparisons of the chapter: (a, b) means a - b per seed.
PAIRS = (
    ("long_chronic", "acute_moderate"),
    ("long_chronic", "full_acute"),
    ("long_chronic", "epochs_matched"),
    ("epochs_matched", "acute_moderate"),
)

#: Columns of the study's regimen table: (label, phase, condition, metric), in its order.
TABLE_COLUMNS = (
    ("final sparsity", "pre_relapse", "-", "weight_sparsity"),
    ("clean", "pre_relapse", "clean", "accuracy"),
    ("standard", "pre_relapse", "standard", "accuracy"),
    ("extreme", "pre_relapse", "internal_extreme", "accuracy"),
    ("combined", "pre_relapse", "combined", "accuracy"),
    ("relapse drop", "post_relapse", "combined", "relapse_drop"),
    ("post-relapse sparsity", "post_relapse", "-", "weight_sparsity"),
)


def _order(names) -> list[str]:
    known = ["pruned", "acute_moderate", *CHRONIC_NAMES, "full_acute", "epochs_matched"]
    return [n for n in known if n in names] + sorted(n for n in names if n not in known)


def finals(df: pd.DataFrame) -> pd.DataFrame:
    """Rows at each regimen's end state (and the pruned start)."""
    return df[df.regimen != "-"]


def regimen_table(df: pd.DataFrame, paper: dict, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Ours (mean [95% CI] over seeds) with the study's value, per regimen (one row each).

    ``paper``: regimen -> [final sparsity, clean, standard, extreme, combined, relapse drop,
    post-relapse sparsity]. Sparsities in % of weights, accuracies in %, drop in points. A cell
    reads "ours [CI] (study x)". ``columns``: the labels of :data:`TABLE_COLUMNS` to show
    (default all).
    """
    fin = finals(df)
    wanted = [c for c in TABLE_COLUMNS if columns is None or c[0] in columns]
    rows = []
    for name in _order(set(fin.regimen)):
        g = fin[fin.regimen == name]
        row = {"regimen": LABELS.get(name, name)}
        ref = paper.get(name)
        for label, phase, cond, metric in wanted:
            j = [c[0] for c in TABLE_COLUMNS].index(label)
            sel = g[(g.phase == phase) & (g.condition == cond) & (g.metric == metric)]
            s = summarise(sel, ["metric"]).iloc[0]
            row[label] = fmt_mean_ci(s["mean"], s["ci_low"], s["ci_high"]) + (
                "" if ref is None else f" (study {fmt_mean_ci(ref[j], math.nan, math.nan)})"
            )
        rows.append(row)
    return pd.DataFrame(rows).set_index("regimen")


def sparsity_path(df: pd.DataFrame) -> pd.DataFrame:
    """Weight sparsity (%) after each cycle of every run, with the pruned start as cycle 0.

    One row per schedule x cycle (sparsity is the same for every seed by construction; the
    mean is reported, with the spread across seeds as ``sd``).
    """
    s = df[(df.metric == "weight_sparsity") & (df.phase == "pre_relapse")]
    start = s[s.schedule == "pruned"]
    parts = []
    for name in [n for n in s.schedule.unique() if n != "pruned"]:
        g = s[s.schedule == name]
        g = g[g.groupby("cycle").epochs.transform("max") == g.epochs]  # end of each cycle
        parts += [start.assign(schedule=name), g]
    out = summarise(pd.concat(parts), ["schedule", "cycle"])
    return out[["schedule", "cycle", "mean", "sd", "n"]].rename(columns={"mean": "weight_sparsity"})


def accuracy_path(df: pd.DataFrame, condition: str = "internal_extreme") -> pd.DataFrame:
    """Pre-relapse accuracy rows of every run against total training epochs (pruned start at 0)."""
    a = df[(df.metric == "accuracy") & (df.phase == "pre_relapse") & (df.condition == condition)]
    start = a[a.schedule == "pruned"]
    parts = [a[a.schedule != "pruned"]]
    parts += [start.assign(schedule=n) for n in a.schedule.unique() if n != "pruned"]
    return pd.concat(parts, ignore_index=True)


QUANTITIES = {  # label -> (phase, condition, metric)
    "extreme accuracy": ("pre_relapse", "internal_extreme", "accuracy"),
    "combined accuracy": ("pre_relapse", "combined", "accuracy"),
    "relapse drop": ("post_relapse", "combined", "relapse_drop"),
}


def comparisons(df: pd.DataFrame, pairs: Sequence[tuple[str, str]] = PAIRS, quantities=QUANTITIES) -> pd.DataFrame:
    """Paired differences a - b across seeds (mean, 95% CI) for every pair and quantity.

    Differences are in points (accuracy %, or relapse-drop points). Pairs whose regimens were
    not run are skipped.
    """
    fin = finals(df)
    frames = []
    for q, (phase, cond, metric) in quantities.items():
        sel = fin[(fin.phase == phase) & (fin.condition == cond) & (fin.metric == metric)]
        have = set(sel.regimen)
        for a, b in pairs:
            if a in have and b in have:
                out = paired_difference(sel[sel.regimen.isin([a, b])], "regimen", a, b)
                out.insert(0, "quantity", q)
                out["a"], out["b"] = a, b
                frames.append(out)
    if not frames:
        raise ValueError(f"no pair of {list(pairs)} has results for any of {list(quantities)}")
    return pd.concat(frames, ignore_index=True)


def interpret_control(cmp: pd.DataFrame, quantity: str = "extreme accuracy") -> str:
    """One paragraph reading the epochs-matched control from :func:`comparisons`' output.

    The reading depends on the signs of the 95% CIs (a CI is "clear" only when it excludes zero):
    is long chronic ahead of acute moderate, and does it stay ahead of a single regrowth trained
    for as long (cycles beyond training time)?
    """
    c = cmp[cmp.quantity == quantity].set_index(["a", "b"])
    need = [
        ("long_chronic", "acute_moderate"),
        ("long_chronic", "epochs_matched"),
        ("epochs_matched", "acute_moderate"),
    ]
    if any(p not in c.index for p in need):
        return "The control was not run, so training time and the number of cycles stay confounded."
    lc_am, lc_em, em_am = (c.loc[p] for p in need)

    def sign(r) -> int:
        return 1 if r["ci_low"] > 0 else -1 if r["ci_high"] < 0 else 0

    few = " (With a single seed there are no intervals, so no difference counts as clear.)" if lc_am["n"] < 2 else ""
    if sign(lc_am) <= 0:
        head = (
            "Here long chronic is not clearly ahead of acute moderate, so there is no cycling advantage "
            "for the control to explain"
        )
        tail = {
            1: "; the chronic schedule is nevertheless clearly ahead of the epochs-matched control.",
            0: "; nor does it differ clearly from the epochs-matched control.",
            -1: "; the epochs-matched control is clearly ahead of it.",
        }[sign(lc_em)]
        return head + tail + few
    share = 100 * em_am["mean"] / lc_am["mean"]
    closed = f"Training the single regrowth for as long closes {share:.0f}% of the gap to long chronic"
    if sign(lc_em) == 0:
        return (
            f"{closed}, and what remains is not distinguishable from zero: the advantage of the "
            "chronic schedule over acute moderate is accounted for by its longer training, not by "
            "the repeated cycles." + few
        )
    if sign(lc_em) > 0:
        return (
            f"{closed}, but the chronic schedule stays clearly ahead of the control: repeated cycles "
            "add resilience beyond what the extra training time gives." + few
        )
    return (
        f"{closed}; the control even ends clearly ahead of the chronic schedule: at equal training "
        "time one large regrowth is better, and the study's advantage of cycling is an advantage of "
        "training longer." + few
    )


#: The quantities of the comparisons the prose quotes, and the prefix of their glue names.
PAIR_KEYS = (("extreme accuracy", "ext"), ("relapse drop", "drop"), ("combined accuracy", "comb"))
#: The regimens whose end state the prose quotes.
QUOTED = ("acute_moderate", "long_chronic", "full_acute", "epochs_matched")


def schedule_table(schedule: Sequence[Regimen]) -> pd.DataFrame:
    """The regimens at the chapter's parameters: cycles, regrowth per cycle (%), epochs per cycle and in total."""
    return pd.DataFrame(
        [
            {
                "regimen": LABELS[r.name],
                "cycles": r.cycles,
                "regrowth per cycle (%)": 100 * r.fraction,
                "epochs per cycle": r.epochs,
                "total epochs": r.total_epochs,
            }
            for r in schedule
        ]
    ).set_index("regimen")


def pair_names() -> dict[str, str]:
    """Each comparison of :data:`PAIRS` ("a - b") in readers' words."""
    return {f"{a} - {b}": f"{LABELS[a]} − {LABELS[b]}" for a, b in PAIRS}


def pairs_table(cmp: pd.DataFrame) -> pd.DataFrame:
    """The paired differences for reading: per quantity and comparison, mean, 95% CI and seeds."""
    shown = cmp[["quantity", "comparison", "mean", "ci_low", "ci_high", "n"]].copy()
    shown["comparison"] = shown["comparison"].map(pair_names())
    shown.columns = ["quantity", "comparison", "mean (points)", "95% CI low", "95% CI high", "seeds"]
    return shown.set_index(["quantity", "comparison"])


def pair_numbers(cmp: pd.DataFrame) -> dict[str, float]:
    """Every paired difference with its CI, as ``<ext|drop|comb>_<a>_vs_<b>`` (``_lo``, ``_hi``)."""
    c = cmp.set_index(["quantity", "a", "b"])
    out = {}
    for q, qk in PAIR_KEYS:
        for a, b in PAIRS:
            key = f"{qk}_{a}_vs_{b}"
            for col, suffix in (("mean", ""), ("ci_low", "_lo"), ("ci_high", "_hi")):
                out[key + suffix] = float(c.loc[(q, a, b), col])
    return out


def final_numbers(res: pd.DataFrame) -> dict[str, Any]:
    """Extreme-stress accuracy, relapse drop and weight sparsity at the end of each quoted regimen
    (``extreme_<regimen>``, ``drop_<regimen>``, ``sparsity_<regimen>``; means over seeds)."""
    f = summarise(finals(res), ["regimen", "phase", "condition", "metric"]).set_index(
        ["regimen", "phase", "condition", "metric"]
    )["mean"]
    out = {}
    for name in QUOTED:
        out[f"extreme_{name}"] = float(f[(name, "pre_relapse", "internal_extreme", "accuracy")])
        out[f"drop_{name}"] = float(f[(name, "post_relapse", "combined", "relapse_drop")])
        out[f"sparsity_{name}"] = float(f[(name, "pre_relapse", "-", "weight_sparsity")])
    return out
