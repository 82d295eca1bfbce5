"""The atlas's figures: the claims x settings map, the named conclusions per setting, the cliffs."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..plotting import ATLAS_CHOICES
from .conclusions import CHANCE, CONCLUSIONS, HOLDS, REVERSES, VERDICTS, WEAKENS, fmt_cell, short_id
from .protocol import CHOICES, Setting


def verdict_colours() -> dict[str, str]:
    """The map's colours: those of the scorecard's verdicts of the same direction."""
    from ..plotting import VERDICTS as V

    return {HOLDS: V["reproduced"], WEAKENS: V["consistent"], REVERSES: V["differs"]}


#: Each verdict's symbol in the map, so that it reads without colour.
VERDICT_SYMBOLS = {HOLDS: "\u2713", WEAKENS: "\u2248", REVERSES: "\u2717"}


def setting_label(s: Setting) -> str:
    """A setting as the map's column label: the choice in words, then its level."""
    if s.choice == "reference":
        return "reference:\nthe studies' choices"
    level = s.level.split(":")[0].replace("x", "\u00d7", 1) if s.level.startswith("x") else s.level
    return f"{CHOICES[s.choice]}:\n{level}"


def conclusion_label(c) -> str:
    """A conclusion as the map's row label: its statement, claim id and the unit of its number."""
    return f"{c.statement} ({short_id(c.claim)}; {c.unit})"


def plot_map(m: pd.DataFrame, cells: Sequence[Setting]):
    """The conclusions x settings map: one coloured square per cell, with the verdict's symbol
    (legible without colour) and the mean of the claim's quantity; rows grouped by study in
    chapter order, columns labelled with the choice changed and its level."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    colours = verdict_colours()
    claims = list(CONCLUSIONS)
    names = [s.name for s in cells]
    fig, ax = plt.subplots(figsize=(max(8.0, 0.78 * len(names) + 5.2), 0.5 * len(claims) + 2.4))
    for i, c in enumerate(claims):
        for j, name in enumerate(names):
            row = m[(m.claim == c.claim) & (m.setting == name)].iloc[0]
            ax.add_patch(plt.Rectangle((j - 0.47, i - 0.44), 0.94, 0.88, color=colours[row["verdict"]], lw=0))
            ax.text(j, i, f"{VERDICT_SYMBOLS[row['verdict']]} {fmt_cell(row)}", ha="center", va="center",
                    fontsize=7.5, color="white", fontweight="bold")  # fmt: skip
    first_b = next((i for i, c in enumerate(claims) if c.part == "B"), len(claims))
    if 0 < first_b < len(claims):
        ax.axhline(first_b - 0.5, color="black", lw=1.2)
        ax.text(len(names) - 0.5, first_b - 0.55, "study B \u2193", ha="right", va="bottom", fontsize=8)
        ax.text(len(names) - 0.5, -0.55, "study A \u2193", ha="right", va="bottom", fontsize=8)
    ax.grid(False)
    ax.set_xlim(-0.5, len(names) - 0.5)
    ax.set_ylim(len(claims) - 0.5, -0.5)
    ax.set_xticks(range(len(names)), [setting_label(s) for s in cells], rotation=55, ha="right", fontsize=8)
    ax.set_yticks(range(len(claims)), [conclusion_label(c) for c in claims], fontsize=8)
    ax.set_xlabel("setting (one modelling choice changed)")
    ax.tick_params(length=0)
    for side in ("top", "right", "left", "bottom"):
        ax.spines[side].set_visible(False)
    ax.legend(handles=[Patch(color=colours[v], label=f"{VERDICT_SYMBOLS[v]} {v}") for v in VERDICTS],
              loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=3, fontsize="small", frameon=False)  # fmt: skip
    ax.set_title("Which conclusions survive which change (mean per cell; units in each row's label)", pad=22)
    fig.tight_layout()
    return fig


def plot_forest(m: pd.DataFrame, cells: Sequence[Setting], claims: Sequence[str]):
    """Mean and 95% CI of each claim's quantity per setting, against its bound; one panel per claim."""
    import matplotlib.pyplot as plt

    colours = verdict_colours()
    by_id = {c.claim: c for c in CONCLUSIONS}
    names = [s.name for s in cells]
    fig, axes = plt.subplots(2, 2, figsize=(10, 0.28 * len(names) * 2 + 2.4), sharey=True)
    for ax, claim in zip(axes.flat, claims):
        c = by_id[claim]
        sub = m[m.claim == claim].set_index("setting").loc[names]
        y = np.arange(len(names))
        for k, (_, r) in enumerate(sub.iterrows()):
            ax.errorbar(r["mean"], k, xerr=[[r["mean"] - r["ci_low"]], [r["ci_high"] - r["mean"]]], fmt="o",
                        color=colours[r["verdict"]], ms=4, capsize=2)  # fmt: skip
        if c.kind == "between":
            ax.axvspan(c.bound[0], c.bound[1], color="0.85", zorder=0)
        else:
            ax.axvline(c.bound[0], ls="--", color="0.4", lw=1)
        ax.set_yticks(y, names, fontsize=8)
        ax.set_xlabel(f"{c.quantity} ({c.unit})", fontsize=8)
        ax.set_title(f"{short_id(claim)}: {c.statement}", fontsize=9)
    axes[0, 0].invert_yaxis()
    fig.tight_layout()
    return fig


def plot_cliffs(df: pd.DataFrame, cells: Sequence[Setting]):
    """Combined accuracy against sparsity per setting (mean over seeds), the reference in black;
    settings whose sweep equals the reference's (the regrowth SD cannot move it) are not drawn."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.6))
    sweep = df[(df.part == "A") & (df.quantity == "sweep_combined")]
    ref = sweep[sweep.setting == cells[0].name].groupby("level")["value"].mean()
    seen: dict[str, int] = {}
    for s in cells:
        curve = sweep[sweep.setting == s.name].groupby("level")["value"].mean()
        if s.choice == "reference":
            ax.plot(curve.index, curve.values, color="black", lw=2.2, label="reference", zorder=5)
            continue
        if curve.equals(ref):
            continue
        k = seen.get(s.choice, 0)
        seen[s.choice] = k + 1
        ax.plot(curve.index, curve.values, color=ATLAS_CHOICES[s.choice], ls=("-", "--")[k % 2], lw=1.4,
                label=f"{s.name}")  # fmt: skip
    ax.axhline(CHANCE, ls=":", color="0.5", lw=1)
    low = float(sweep["level"].replace(0, np.nan).min())
    ax.set(xlabel="weight sparsity (%)", ylabel="combined-stress accuracy (%)", ylim=(0, 102),
           xlim=(min(80.0, low), 100))  # fmt: skip
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="small", frameon=False)
    ax.set_title("The pruning cliff under each setting")
    fig.tight_layout()
    return fig
