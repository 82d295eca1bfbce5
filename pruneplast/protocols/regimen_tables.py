"""Study A's regimen tables and the numbers its chapter quotes (chapter 4).

Each function reads the regimens of :func:`pruneplast.protocols.regimens.study_regimens`, the tidy
rows of :func:`~pruneplast.protocols.regimens.run` or its paired comparisons
(:func:`~pruneplast.protocols.regimens.comparisons`) and returns a table for reading or a mapping
of glue names to the numbers the prose quotes.
"""

from __future__ import annotations

from typing import Any, Sequence

import pandas as pd

from ..results import summarise
from .regimens import LABELS, PAIRS, Regimen, finals

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
    """Each comparison of :data:`~pruneplast.protocols.regimens.PAIRS` ("a - b") in readers' words."""
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
