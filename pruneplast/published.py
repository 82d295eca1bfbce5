"""Every number of the studies' tables set against ours, each by the rule of its kind.

:func:`compare` walks every table of ``paper_results.yaml`` (about 190 values), finds our
per-seed values of the same quantity in the chapters' results, and applies the rule of the
value's kind (:mod:`pruneplast.verdicts`): study A's single replicates against the prediction
interval of a new replicate of ours; study B's means +- SD by the Welch difference; study B's
relapse rates (proportions) by Wilson / Newcombe intervals; study B's means reported without an
SD (biased accuracy by maintenance duration) against the prediction interval of a new 10-seed
mean of ours. Every value also gets ``inside``: whether it lies in our prediction interval of what
a rerun of the study would give (one replicate for study A, ten seeds for study B), the
table-wide summary of :func:`summary`. Study A's values are compared on study A's data set.
A value whose quantity the results do not hold (a duration the quick profile skips) is listed
with the reason.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from . import paper
from .claims import STUDY_B_SEEDS, like_with_like, per_seed, relapse_outcomes
from .config import MaintenanceConfig
from .protocols.treatment_tables import OFF_DRUG, TABLE_ROWS
from .results import load_results
from .verdicts import RESOLUTION, mean_sd, proportion, single_replicate, t_quantile

CONSOLIDATION_COLUMNS = (  # study A's consolidation table: (label, phase, condition, metric)
    ("clean", "pre_relapse", "clean", "accuracy"),
    ("combined", "pre_relapse", "combined", "accuracy"),
    ("extreme", "pre_relapse", "internal_extreme", "accuracy"),
    ("post-relapse combined", "post_relapse", "combined", "accuracy"),
    ("relapse drop", "post_relapse", "combined", "relapse_drop"),
)
KIND = {
    "accuracy": "accuracy",
    "weight_sparsity": "sparsity",
    "relapse_drop": "relapse_drop",
    "gain": "gain",
    "activation_magnitude": "activation",
}


def _seeds(df: pd.DataFrame, **where) -> np.ndarray:
    """One value per seed, selected as a claim selects them (:func:`pruneplast.claims.per_seed`);
    empty when the results lack the column or the rows."""
    try:
        return per_seed(df, **where).to_numpy()
    except ValueError:
        return np.array([])


def _row(
    study: str,
    table: str,
    row,
    column,
    chapter: str,
    kind: str,
    value: float,
    test: dict | None,
    reason: str = "",
    sd: float | None = None,
) -> dict:
    base = {
        "study": study,
        "table": table,
        "row": str(row),
        "column": str(column),
        "chapter": chapter,
        "kind": kind,
        "paper": value,
        "paper_sd": sd,
    }
    if test is None:
        return {
            **base,
            "ours": math.nan,
            "n": 0,
            "pi_low": math.nan,
            "pi_high": math.nan,
            "inside": None,
            "verdict": "not compared",
            "test": reason,
        }
    lo, hi = (test["low"], test["high"]) if test["test"] == "prediction interval" else (test["pi_low"], test["pi_high"])
    return {
        **base,
        "ours": test["mean"],
        "n": test["n"],
        "pi_low": lo,
        "pi_high": hi,
        "inside": bool(lo <= value <= hi),
        "verdict": test["verdict"],
        "test": test["text"],
    }


def _single(study_value, values, kind) -> dict | None:
    return single_replicate(study_value, values, kind) if len(values) else None


def _mean_only(study_mean: float, values: np.ndarray, kind: str) -> dict:
    """A published mean without its SD: inside the prediction interval of a new 10-seed mean of ours?"""
    v = np.asarray(values, dtype=float)
    n, m = len(v), float(v.mean())
    half = t_quantile(n - 1) * float(v.std(ddof=1)) * math.sqrt(1 / n + 1 / STUDY_B_SEEDS) if n >= 2 else 0.0
    half = max(half, RESOLUTION[kind])
    inside = m - half <= study_mean <= m + half
    return {
        "test": "mean without SD",
        "verdict": "reproduced" if inside else "differs",
        "mean": m,
        "n": n,
        "pi_low": m - half,
        "pi_high": m + half,
        "text": f"study mean {study_mean:g}; "
        f"95% PI of a new {STUDY_B_SEEDS}-seed mean [{m - half:.1f}, {m + half:.1f}]",
    }


def study_a_rows(results: dict[str, pd.DataFrame | None]) -> list[dict]:
    rows: list[dict] = []
    t = paper.paper_results()["study_A"]["tables"]
    ch2, ch3, ch4 = (results.get(k) for k in ("02_pruning_cliff", "03_consolidation", "04_regimens"))
    missing = lambda nb: f"no results for {nb}"  # noqa: E731
    if ch2 is not None:
        ch2, _ = like_with_like(ch2)
    for cond, vals in t["main"].items():
        for stage, v in zip(paper.A_STAGES, vals):
            vv: Any = (
                _seeds(
                    ch2,
                    experiment="main",
                    stage=stage,
                    condition=cond,
                    metric="accuracy",
                    regrowth="gradient" if stage == "recovered" else "none",
                )
                if ch2 is not None
                else []
            )
            rows.append(
                _row(
                    "A",
                    "main",
                    cond,
                    stage,
                    "02_pruning_cliff",
                    "accuracy",
                    v,
                    _single(v, vv, "accuracy"),
                    missing("02_pruning_cliff"),
                )
            )
    for cond, vals in t["regrowth_gradient_vs_random"].items():
        for arm, v in zip(("gradient", "random"), vals):
            vv = (
                _seeds(ch2, experiment="main", stage="recovered", condition=cond, metric="accuracy", regrowth=arm)
                if ch2 is not None
                else []
            )
            rows.append(
                _row(
                    "A",
                    "regrowth",
                    cond,
                    arm,
                    "02_pruning_cliff",
                    "accuracy",
                    v,
                    _single(v, vv, "accuracy"),
                    missing("02_pruning_cliff"),
                )
            )
    for level, v in t["sparsity_sweep_combined"].items():
        vv = (
            _seeds(ch2, experiment="sweep", condition="combined", metric="accuracy", sparsity_target=float(level) / 100)
            if ch2 is not None
            else []
        )
        rows.append(
            _row(
                "A",
                "sparsity sweep",
                f"{level}%",
                "combined",
                "02_pruning_cliff",
                "accuracy",
                v,
                _single(v, vv, "accuracy"),
                f"level {level}% not in this run's sweep",
            )
        )
    if ch3 is not None:
        ch3, _ = like_with_like(ch3)
    for epochs, vals in t["consolidation"].items():
        for (label, phase, cond, metric), v in zip(CONSOLIDATION_COLUMNS, vals):
            vv = _seeds(ch3, epochs=int(epochs), phase=phase, condition=cond, metric=metric) if ch3 is not None else []
            rows.append(
                _row(
                    "A",
                    "consolidation",
                    f"{epochs} epochs",
                    label,
                    "03_consolidation",
                    KIND[metric],
                    v,
                    _single(v, vv, KIND[metric]),
                    f"{epochs} epochs not in this run",
                )
            )
    from .protocols.regimen_tables import TABLE_COLUMNS

    if ch4 is not None:
        ch4, _ = like_with_like(ch4)
    for reg, vals in t["regimens"].items():
        for (label, phase, cond, metric), v in zip(TABLE_COLUMNS, vals):
            vv = _seeds(ch4, regimen=reg, phase=phase, condition=cond, metric=metric) if ch4 is not None else []
            rows.append(
                _row(
                    "A",
                    "regimens",
                    reg,
                    label,
                    "04_regimens",
                    KIND[metric],
                    v,
                    _single(v, vv, KIND[metric]),
                    missing("04_regimens") if ch4 is None else f"regimen {reg} not in this run",
                )
            )
    return rows


def study_b_rows(results: dict[str, pd.DataFrame | None]) -> list[dict]:
    rows: list[dict] = []
    t = paper.paper_results()["study_B"]["tables"]
    ch5, ch6 = results.get("05_treatments"), results.get("06_longitudinal_relapse")
    for name, exp, condition, metric in TABLE_ROWS:
        cond = None if condition == "-" else condition  # "-": a measure of the whole network
        kind = KIND[metric]
        for tr, cell in t[name].items():
            if cell is None:
                continue
            m, sd = cell
            where = dict(experiment=exp, treatment=tr, metric=metric)
            if exp in ("efficacy", "tolerance", "manic_risk") and "drug" in (ch5.columns if ch5 is not None else ()):
                where["drug"] = "none" if tr == "untreated" else "on"
            if cond is not None:
                where["condition"] = cond
            vv: Any = _seeds(ch5, **where) if ch5 is not None else []
            test = mean_sd(m, sd, STUDY_B_SEEDS, vv, kind) if len(vv) else None
            rows.append(
                _row(
                    "B",
                    "treatments",
                    name,
                    tr,
                    "05_treatments",
                    kind,
                    m,
                    test,
                    "no results for 05_treatments" if ch5 is None else f"{tr} not run for {name}",
                    sd,
                )
            )
    for label, cond in OFF_DRUG.items():
        m, sd = t["neurosteroid_off_drug"][label]
        vv = (
            _seeds(ch5, experiment="off_drug", treatment="neurosteroid", condition=cond, metric="accuracy")
            if ch5 is not None
            else []
        )
        rows.append(
            _row(
                "B",
                "neurosteroid off drug",
                label,
                "neurosteroid",
                "05_treatments",
                "accuracy",
                m,
                mean_sd(m, sd, STUDY_B_SEEDS, vv) if len(vv) else None,
                "no off-drug rows",
                sd,
            )
        )
    for tr, cell in t["manic_relapse_probability"].items():
        if cell is None:
            continue
        test = proportion(cell[0], STUDY_B_SEEDS, relapse_outcomes(ch6, tr)) if ch6 is not None else None
        rows.append(
            _row(
                "B",
                "relapse",
                "manic relapse probability",
                tr,
                "06_longitudinal_relapse",
                "proportion",
                cell[0],
                test,
                "no results for 06_longitudinal_relapse",
                cell[1],
            )
        )
    rel = None
    if ch6 is not None:
        rel = ch6[(ch6.experiment == "relapse") & ch6["duration"].notna()]
        if "sweep" in rel.columns:
            rel = rel[rel["sweep"].isna()]
    for metric, table in (("relapse", "relapse_rate_by_maintenance"), ("accuracy", "biased_accuracy_by_maintenance")):
        for tr, vals in t[table].items():
            for d, v in zip(MaintenanceConfig().durations, vals):
                vv = _seeds(rel, treatment=tr, metric=metric, duration=float(d)) if rel is not None else []
                if not len(vv):
                    test = None
                elif metric == "relapse":
                    test = proportion(v, STUDY_B_SEEDS, (np.asarray(vv) / 100).round())
                else:
                    test = _mean_only(v, vv, "accuracy")
                rows.append(
                    _row(
                        "B",
                        table.replace("_", " "),
                        f"{d} epochs",
                        tr,
                        "06_longitudinal_relapse",
                        "proportion" if metric == "relapse" else "accuracy",
                        v,
                        test,
                        f"duration {d} not in this run",
                    )
                )
    return rows


def compare(profile: str, root=None) -> pd.DataFrame:
    """Every published table value against ours at ``profile`` (one row each; see the module doc)."""
    results = {}
    for nb in ("02_pruning_cliff", "03_consolidation", "04_regimens", "05_treatments", "06_longitudinal_relapse"):
        try:
            results[nb] = load_results(nb, profile, root)
        except FileNotFoundError:
            results[nb] = None
    return pd.DataFrame(study_a_rows(results) + study_b_rows(results))


def summary(table: pd.DataFrame) -> dict:
    """Values compared, the share inside our prediction interval, verdict counts, and the misses."""
    done = table[table["inside"].notna()]
    inside = done["inside"].astype(bool)
    return {
        "values": len(table),
        "compared": len(done),
        "inside": int(inside.sum()),
        "share": float(inside.mean()) if len(done) else math.nan,
        "verdicts": done["verdict"].value_counts().to_dict(),
        "misses": done[~inside],
    }


def figure(table: pd.DataFrame, ax=None):
    """Ours (with the prediction interval) against the study's value, one point per table value,
    one marker shape per chapter; the diagonal is agreement."""
    import matplotlib.pyplot as plt

    from .plotting import CHAPTER_MARKERS, GATHERED

    done = table[table["inside"].notna()]
    if ax is None:
        _, ax = plt.subplots(figsize=(5.6, 5.2))
    for ch, g in done.groupby("chapter", sort=True):
        pct = g[g["kind"].isin(["accuracy", "sparsity", "proportion"])]
        ax.errorbar(
            pct["paper"],
            pct["ours"],
            yerr=[pct["ours"] - pct["pi_low"], pct["pi_high"] - pct["ours"]],
            fmt=CHAPTER_MARKERS.get(ch, "o"),
            ms=4,
            mfc="none",
            lw=0.8,
            capsize=0,
            color=GATHERED,
            alpha=0.85,
            label=f"chapter {int(ch[:2])}",
        )
    ax.plot([0, 100], [0, 100], color="grey", lw=1, ls="--")
    ax.set(
        xlim=(-3, 103),
        ylim=(-3, 103),
        xlabel="study's value (%)",
        ylabel="ours (%), 95% prediction interval",
        title="Every published accuracy, sparsity and rate",
    )
    ax.legend(loc="upper left", fontsize=8)
    return ax
