"""The atlas chapter's tables (chapter 7): its settings, the conclusions it recomputes and those it
leaves out, and the map (:func:`~pruneplast.atlas.conclusions.atlas_map`) summed up per conclusion
and in full."""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from .conclusions import CONCLUSIONS, KNIFE_EDGE, LEFT_OUT, long_table, robustness, short_id
from .protocol import CHOICES, Setting


def settings_tables(cells: Sequence[Setting]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The settings, one row each: the choice changed and its level, the network, the class
    spread, the pruning threshold, the learning-rate factor, the regrowth SD and the data sets.

    Returns the table the notebook checks (indexed by the settings' names) and the one a reader
    sees (indexed by their labels, without the choice and level the labels name, the network's
    hyphens non-breaking)."""
    table = pd.DataFrame(
        [
            {
                "setting": s.name,
                "choice changed": CHOICES[s.choice],
                "level": s.level,
                "network": s.arch,
                "class spread": s.task_sigma,
                "pruning threshold": "global" if s.prune_scope == "global" else "per layer",
                "lr factor": s.lr_factor,
                "regrowth SD": s.regrow_init_std,
                "data sets": "one shared" if s.data_sets == "shared" else "one per replicate",
            }
            for s in cells
        ]
    ).set_index("setting")
    shown = (
        table.drop(columns=["level", "choice changed"])
        .assign(network=table["network"].str.replace("-", "\u2011"))
        .rename(index={s.name: s.label for s in cells})
    )
    return table, shown


def _bound(kind: str, bound: tuple[float, ...]) -> str:
    if kind == "above":
        return f"above {bound[0]:g}"
    if kind == "below":
        return f"below {bound[0]:g}"
    return f"between {bound[0]:g} and {bound[-1]:g}"


def conclusions_table() -> pd.DataFrame:
    """The conclusions the atlas recomputes, one row per claim (short id): the statement, the
    quantity per seed with its unit, and the bound its interval must clear."""
    return pd.DataFrame(
        [
            {
                "claim": short_id(c.claim),
                "conclusion": c.statement,
                "quantity per seed": c.quantity + f" ({c.unit})",
                "holds when": _bound(c.kind, c.bound),
            }
            for c in CONCLUSIONS
        ]
    ).set_index("claim")


def left_out_table() -> pd.DataFrame:
    """The headline claims the atlas does not recompute (short id), with the reason."""
    return pd.DataFrame({"claim": [short_id(k) for k in LEFT_OUT], "reason": list(LEFT_OUT.values())}).set_index(
        "claim"
    )


def summary_table(m: pd.DataFrame) -> pd.DataFrame:
    """Per conclusion (short id) of the map ``m``: its verdict under the reference, how many changed
    settings it holds, weakens or reverses under, and those it does not hold under."""
    summary = robustness(m)
    summary["claim"] = summary["claim"].map(short_id)
    return summary.set_index("claim").drop(columns="conclusion")


def means_tables(m: pd.DataFrame, cells: Sequence[Setting]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every cell of the map ``m``: the mean of each claim's quantity per setting, to 0.1, indexed
    by (claim, setting), the claims whose quantity jumps (:data:`KNIFE_EDGE`) left out; and for
    reading, the map in long form (:func:`long_table`) with the settings' labels."""
    checked = m[~m.claim.isin(KNIFE_EDGE)].set_index(["claim", "setting"])[["mean"]].round(1)
    shown = long_table(m).rename(index={c.name: c.label for c in cells}, level="setting")
    return checked, shown
