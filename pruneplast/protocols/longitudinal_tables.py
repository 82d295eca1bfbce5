"""Study B's maintenance and relapse tables and the numbers its chapter quotes (chapter 6).

Each function reads the tidy rows of :func:`pruneplast.protocols.longitudinal.longitudinal`
(``experiment`` ``relapse`` / ``sensitivity``; per treatment, seed, maintenance duration,
protection at test and threshold) and returns a table for reading, the rows a figure draws, or a
mapping of glue names to the numbers the prose quotes.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from .. import arms
from ..config import MaintenanceConfig, check_choice, check_real
from ..results import fmt_sd_ci, fmt_study, summarise
from ..tables import plain


# --------------------------------------------------------------------------- the study's tables
def probability_table(df: pd.DataFrame, paper_prob: Mapping, treatments: Sequence[str] | None = None) -> pd.DataFrame:
    """Manic relapse probability (%) per treatment: ours (mean ± SD [95% CI]) beside the study's.

    ``paper_prob``: the study's values keyed by arm; ``treatments`` defaults to the arms in ``df``
    (registry order). An arm the study lacks shows "—".
    """
    sel = df[(df.experiment == "relapse") & (df.metric == "relapse_probability")]
    s = summarise(sel, ["treatment"]).set_index("treatment")
    if treatments is None:
        present = set(sel["treatment"])
        treatments = [t for t in arms.names() if t in present] + sorted(present - set(arms.names()))
    rows = []
    for t in treatments:
        p = sel[sel.treatment == t]["protection"].iloc[0]
        rows.append(
            {
                "treatment": plain(t),
                "protection at test": f"{p:.2f}",
                "ours": fmt_sd_ci(s.loc[t]),
                "study": fmt_study(paper_prob.get(t)),
            }
        )
    return pd.DataFrame(rows).set_index("treatment")


def by_duration_table(
    df: pd.DataFrame,
    paper_rows: Mapping[str, Sequence[float]],
    paper_durations: Sequence[int] = MaintenanceConfig().durations,
    metric: str = "relapse",
) -> pd.DataFrame:
    """By maintenance duration: relapse rate (% of seeds) or mean biased accuracy (%), ours and the
    study's, one row per arm (by its label) and duration.

    ``metric``: 'relapse' (the study's relapse_rate_by_maintenance) or 'accuracy'
    (biased_accuracy_by_maintenance). The study's value is shown where our duration is one of
    its durations.
    """
    sel = df[(df.experiment == "relapse") & (df.metric == metric) & df.duration.notna()]
    s = summarise(sel.sort_values("duration"), ["treatment", "duration"])
    rows = []
    for _, r in s.iterrows():
        dur = int(r["duration"])
        row = paper_rows.get(r["treatment"])
        study = row[list(paper_durations).index(dur)] if row is not None and dur in paper_durations else None
        rows.append(
            {
                "treatment": plain(r["treatment"]),
                "duration (epochs)": dur,
                "ours": f"{r['mean']:.1f}" if metric == "relapse" else fmt_sd_ci(r),
                "study": fmt_study(study),
            }
        )
    out = pd.DataFrame(rows)
    order = {plain(t): k for k, t in enumerate(arms.names())}
    out = out.sort_values(
        ["treatment", "duration (epochs)"], key=lambda c: c.map(order) if c.name == "treatment" else c, kind="stable"
    )
    return out.set_index(["treatment", "duration (epochs)"])


def sensitivity_curves(df: pd.DataFrame, sweep: str, threshold: float | None = None) -> pd.DataFrame:
    """Per-replicate relapse probability (%) along one sensitivity axis, for plotting.

    ``sweep='protection'``: rows at ``threshold`` for every protection of the grid;
    ``sweep='threshold'``: rows at each treatment's own protection for every threshold.
    """
    check_choice("sweep", sweep, ("protection", "threshold"))
    sel = df[(df.experiment == "sensitivity") & (df.metric == "relapse_probability") & (df.sweep == sweep)]
    if sweep == "protection":
        t = check_real("threshold", threshold, 0.0, 100.0)
        sel = sel[np.isclose(sel.threshold.astype(float), t)]
        if sel.empty:
            raise ValueError(
                f"no sensitivity rows at threshold {t}; thresholds: {sorted(df.threshold.dropna().unique())}"
            )
    return sel.copy()


def at_protection(df: pd.DataFrame, protection: float, threshold: float) -> pd.Series:
    """Mean relapse probability (%) per treatment if every treatment kept ``protection`` at test.

    Uses the sensitivity grid value nearest to ``protection``.
    """
    curves = sensitivity_curves(df, "protection", threshold)
    grid = np.array(sorted(curves.protection.unique()))
    p = grid[np.argmin(np.abs(grid - protection))]
    return curves[np.isclose(curves.protection, p)].groupby("treatment", sort=False)["value"].mean()


# --------------------------------------------------------------------------- the chapter's numbers
def protection_table(main: pd.DataFrame, checkpoints: Iterable[int]) -> pd.DataFrame:
    """Protection left at test per treatment (in run order) and the maintenance checkpoints taken."""
    left = main.groupby("treatment", sort=False).protection.first().round(3).to_frame("protection left at test")
    left["maintenance checkpoints (epochs)"] = ", ".join(map(str, sorted(checkpoints)))
    return left


def relapse_numbers(prob: pd.DataFrame, main: pd.DataFrame, followed: Sequence[str]) -> dict[str, Any]:
    """Each followed arm's mean relapse probability (``<arm>_relapse``, %, over the per-replicate
    probabilities ``prob`` of :func:`~pruneplast.protocols.longitudinal.relapse_probability`) and
    its protection at test (``<arm>_protection``, from the main experiment's rows ``main``)."""
    p_mean = prob.groupby("treatment").value.mean()
    out: dict[str, Any] = {}
    for t in followed:
        out[f"{t}_relapse"] = p_mean[t]
        out[f"{t}_protection"] = main[main.treatment == t].protection.iloc[0]
    return out


def maintenance_numbers(acc: pd.DataFrame, followed: Sequence[str]) -> dict[str, Any]:
    """How much longer maintenance moves mean biased-stress accuracy (``<arm>_maint_gain``, points
    from the shortest to the longest duration, ``d_min`` / ``d_max``), from the accuracy rows."""
    by_d = acc.groupby(["treatment", "duration"]).value.mean().unstack()
    change = by_d[by_d.columns.max()] - by_d[by_d.columns.min()]
    out: dict[str, Any] = {f"{t}_maint_gain": change[t] for t in followed}
    out["d_min"] = by_d.columns.min()
    out["d_max"] = by_d.columns.max()
    return out


def equal_protection_numbers(
    df: pd.DataFrame, main: pd.DataFrame, threshold: float, followed: Sequence[str]
) -> dict[str, Any]:
    """Each followed arm's relapse probability (%) if every arm kept the ketamine-like arm's
    protection at test (``<arm>_at_ketamine_p``) and with none left (``<arm>_at_zero_p``)."""
    common = at_protection(df, main[main.treatment == "ketamine"].protection.iloc[0], threshold)
    none = at_protection(df, 0.0, threshold)
    out: dict[str, Any] = {}
    for t in followed:
        out[f"{t}_at_ketamine_p"] = common[t]
        out[f"{t}_at_zero_p"] = none[t]
    return out
