"""Study B's treatment tables: ours beside the study's, per measure and arm (chapter 5).

The study's tables (``paper_results.yaml``, keyed by arm name) against the tidy rows of
:func:`pruneplast.protocols.treatments.evaluate_treatments`; an arm the study lacks shows "—".
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import pandas as pd

from .. import arms
from ..results import fmt_sd_ci, fmt_study, summarise
from ..tables import plain

# --------------------------------------------------------------------------- tables
#: Rows of the study's tables: (table name in paper_results.yaml, experiment, condition, metric).
TABLE_ROWS = (
    ("sparsity", "efficacy", "-", "weight_sparsity"),
    ("clean", "efficacy", "clean", "accuracy"),
    ("standard", "efficacy", "standard", "accuracy"),
    ("combined", "efficacy", "combined", "accuracy"),
    ("sigma_0.5", "tolerance", "sigma_0.5", "accuracy"),
    ("sigma_1.0", "tolerance", "sigma_1", "accuracy"),
    ("sigma_1.5", "tolerance", "sigma_1.5", "accuracy"),
    ("sigma_2.5", "tolerance", "sigma_2.5", "accuracy"),
    ("gain", "manic_risk", "-", "gain"),
    ("biased_accuracy", "manic_risk", "biased", "accuracy"),
    ("activation_magnitude", "manic_risk", "-", "activation_magnitude"),
    ("acute_relapse_drop", "acute_relapse", "combined", "relapse_drop"),
)

#: The off-drug table's rows: row name in paper_results.yaml -> condition.
OFF_DRUG = {"combined": "combined", "extreme": "sigma_2.5", "biased": "biased"}

#: The manic-risk figure's panels: (title, experiment, condition, metric, study table).
MANIC_PANELS = (
    ("biased-stress accuracy (%)", "manic_risk", "biased", "accuracy", "biased_accuracy"),
    ("activation magnitude", "manic_risk", "-", "activation_magnitude", "activation_magnitude"),
    ("gain", "manic_risk", "-", "gain", "gain"),
)

#: What readers see for each row of the study's tables.
MEASURE_LABELS = {
    "sparsity": "weight sparsity (%)",
    "clean": "clean accuracy (%)",
    "standard": "standard accuracy (%)",
    "combined": "combined-stress accuracy (%)",
    "sigma_0.5": "accuracy, internal noise SD 0.5 (%)",
    "sigma_1.0": "accuracy, internal noise SD 1.0 (%)",
    "sigma_1.5": "accuracy, internal noise SD 1.5 (%)",
    "sigma_2.5": "accuracy, internal noise SD 2.5 (%)",
    "gain": "gain",
    "biased_accuracy": "biased-stress accuracy (%)",
    "activation_magnitude": "activation magnitude (mean |h|)",
    "acute_relapse_drop": "acute relapse drop (points)",
}


def comparison_long(
    df: pd.DataFrame, paper_tables: Mapping, rows=TABLE_ROWS, treatments: Sequence[str] | None = None
) -> pd.DataFrame:
    """:func:`comparison_table` in long form for reading: one row per measure and arm, columns
    'ours' (mean ± SD [95% CI]) and 'study' (mean ± SD), measures and arms by their labels."""
    wide = comparison_table(df, paper_tables, rows, treatments)
    arms_shown = [c.removesuffix(", ours") for c in wide.columns if c.endswith(", ours")]
    out = []
    for measure, r in wide.iterrows():
        for t in arms_shown:
            out.append(
                {
                    "measure": MEASURE_LABELS.get(str(measure), str(measure)),
                    "treatment": plain(t),
                    "ours": r[f"{t}, ours"],
                    "study": r[f"{t}, study"],
                }
            )
    return pd.DataFrame(out).set_index(["measure", "treatment"])


def comparison_table(
    df: pd.DataFrame, paper_tables: Mapping, rows=TABLE_ROWS, treatments: Sequence[str] | None = None
) -> pd.DataFrame:
    """Ours (mean ± SD [95% CI] over seeds) beside the study's (mean ± SD), one row per measure.

    ``paper_tables`` is study B's ``tables`` mapping (each row keyed by arm name); ``treatments``
    defaults to the arms present in ``df``, in registry order. An arm the study lacks shows "—".
    """
    treatments = _arms_in(df) if treatments is None else list(treatments)
    out = []
    for table_name, exp, cond, metric in rows:
        sel = df[(df.experiment == exp) & (df.condition == cond) & (df.metric == metric)]
        s = summarise(sel, ["treatment"]).set_index("treatment")
        digits = 3 if metric == "activation_magnitude" else 2 if metric == "gain" else 1
        row = {"measure": table_name}
        for t in treatments:
            row[f"{t}, ours"] = fmt_sd_ci(s.loc[t], digits) if t in s.index else "—"
            row[f"{t}, study"] = fmt_study(paper_tables[table_name].get(t), digits)
        out.append(row)
    return pd.DataFrame(out).set_index("measure")


def off_drug_table(df: pd.DataFrame, paper_off: Mapping, name: str = "neurosteroid") -> pd.DataFrame:
    """One arm on and off drug (the study's: neurosteroid-like), ours beside the study's off-drug values."""
    rows = []
    for key, cond in OFF_DRUG.items():
        on = df[
            (df.treatment == name)
            & (df.drug == "on")
            & (df.condition == cond)
            & (df.metric == "accuracy")
            & df.experiment.isin(["efficacy", "tolerance", "manic_risk"])
        ]
        off = df[
            (df.experiment == "off_drug") & (df.treatment == name) & (df.condition == cond) & (df.metric == "accuracy")
        ]
        s_on, s_off = summarise(on, ["treatment"]).iloc[0], summarise(off, ["treatment"]).iloc[0]
        rows.append(
            {
                "condition": key,
                "on drug, ours": fmt_sd_ci(s_on),
                "off drug, ours": fmt_sd_ci(s_off),
                "off drug, study": fmt_study(paper_off[key]) if name == "neurosteroid" else "—",
            }
        )
    return pd.DataFrame(rows).set_index("condition")


def structure_table(df: pd.DataFrame) -> pd.DataFrame:
    """Kept weights per layer, weight sparsity (%) and gain of each arm (columns) after its treatment."""
    struct = df[(df.experiment == "efficacy") & df.metric.isin(["kept_weights", "weight_sparsity", "gain"])]
    return struct.groupby(["metric", "condition", "treatment"], sort=False).value.mean().unstack().round(2)


def headline_numbers(df: pd.DataFrame, shown: Sequence[str], treated: Sequence[str]) -> dict[str, Any]:
    """The numbers chapter 5's prose quotes: per arm of ``shown``, extreme-stress (internal noise
    SD 2.5), combined-stress and biased-stress accuracy (``<arm>_extreme``, ``_combined``,
    ``_biased``); among the ``treated`` arms the one best at extreme stress (``best_extreme``), the
    one most liable under the biased test (``most_manic``) and the lowest clean or standard
    accuracy (``ceiling_min``); the ketamine-like arm's weight sparsity (``ketamine_sparsity``)."""
    ext = summary(df, "tolerance", "sigma_2.5", "accuracy")
    comb = summary(df, "efficacy", "combined", "accuracy")
    biased = summary(df, "manic_risk", "biased", "accuracy")
    treated = list(treated)
    ceiling = pd.concat([summary(df, "efficacy", c, "accuracy").loc[treated, "mean"] for c in ("clean", "standard")])
    out: dict[str, Any] = {}
    for t in shown:
        out[f"{t}_extreme"] = ext.loc[t, "mean"]
        out[f"{t}_combined"] = comb.loc[t, "mean"]
        out[f"{t}_biased"] = biased.loc[t, "mean"]
    out["best_extreme"] = plain(ext.loc[treated, "mean"].idxmax())
    out["most_manic"] = plain(biased.loc[treated, "mean"].idxmin())
    out["ceiling_min"] = ceiling.min()
    out["ketamine_sparsity"] = summary(df, "efficacy", "-", "weight_sparsity").loc["ketamine", "mean"]
    return out


def summary(
    df: pd.DataFrame, experiment: str, condition: str, metric: str, treatments: Sequence[str] | None = None
) -> pd.DataFrame:
    """Mean, SD, n and 95% CI per treatment (index, in registry order) of one measure."""
    sel = df[(df.experiment == experiment) & (df.condition == condition) & (df.metric == metric)]
    s = summarise(sel, ["treatment"]).set_index("treatment")
    order = _arms_in(df) if treatments is None else list(treatments)
    return s.reindex([t for t in order if t in s.index])


def _arms_in(df: pd.DataFrame) -> list[str]:
    """The arms with rows in ``df``: registered ones in registry order, then any others."""
    present = list(dict.fromkeys(df["treatment"]))
    return [t for t in arms.names() if t in present] + [t for t in present if t not in arms.names()]


def paper_value(paper_tables: Mapping, table_name: str, name: str) -> float:
    """The study's mean for one treatment in one of its tables (nan where it reports none)."""
    v = paper_tables[table_name].get(name)
    return float("nan") if v is None else float(v[0])


def tolerance_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The tolerance rows with a numeric ``sigma`` column (internal-noise SD)."""
    tol = df[(df.experiment == "tolerance") & (df.metric == "accuracy")].copy()
    tol["sigma"] = tol["condition"].str.removeprefix("sigma_").astype(float)
    return tol


def paper_tolerance(paper_tables: Mapping, name: str) -> tuple[list[float], list[float]]:
    """The study's tolerance curve of one treatment: (sigmas, mean accuracy %); sigma 0 = standard."""
    keys = {0.0: "standard", 0.5: "sigma_0.5", 1.0: "sigma_1.0", 1.5: "sigma_1.5", 2.5: "sigma_2.5"}
    return list(keys), [paper_value(paper_tables, k, name) for k in keys.values()]
