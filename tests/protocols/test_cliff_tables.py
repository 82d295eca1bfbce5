"""Chapter 2's tables and quoted numbers (protocols.cliff_tables) on synthetic tidy rows."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pruneplast.config import DATA_SET_LABELS
from pruneplast.paper import A_STAGES
from pruneplast.protocols import cliff_tables
from pruneplast.stress import MAIN_CONDITIONS
from pruneplast.tables import plain

SEEDS = (0, 1, 2)
LEVELS = (0.0, 0.9, 0.95)


def main_rows(offset: float = 0.0, scheme: str = "shared") -> pd.DataFrame:
    """Main-experiment rows: accuracy = 10 * stage index + condition index + seed + offset."""
    rows = []
    for s in SEEDS:
        for k, stage in enumerate(A_STAGES):
            arms = ["none"] if stage != "recovered" else ["gradient", "random"]
            for arm in arms:
                lab = dict(
                    experiment="main", stage=stage, regrowth=arm, seed=s, data_sets=scheme, sparsity_target=np.nan
                )
                for j, cond in enumerate(MAIN_CONDITIONS):
                    bonus = 2.0 * s if arm == "gradient" else 0.0  # gradient - random = 2 * seed
                    rows.append(dict(lab, metric="accuracy", condition=cond, value=10 * k + j + s + offset + bonus))
                rows.append(dict(lab, metric="kept_weights", condition="layer_1", value=100.0 - k))
                rows.append(dict(lab, metric="weight_sparsity", condition="-", value=95.0 - k))
                if stage == "recovered":
                    rows.append(
                        dict(
                            lab,
                            metric="regrowth_selectivity",
                            condition="-",
                            value=90.0 if arm == "gradient" else 50.0 + s,
                        )
                    )
    return pd.DataFrame(rows)


def sweep_rows(offset: float = 0.0, scheme: str = "shared") -> pd.DataFrame:
    """Sweep rows: combined accuracy = 100 - 50 * level + seed + offset."""
    rows = []
    for s in SEEDS:
        for lv in LEVELS:
            lab = dict(experiment="sweep", stage=np.nan, regrowth=np.nan, seed=s, data_sets=scheme, sparsity_target=lv)
            for cond in ("clean", "combined"):
                rows.append(dict(lab, metric="accuracy", condition=cond, value=100 - 50 * lv + s + offset))
    return pd.DataFrame(rows)


def test_main_table_sets_ours_beside_the_study():
    table = cliff_tables.main_table(main_rows(), {"combined": [99.0, 32.0, 97.0]})
    assert list(table.columns) == list(A_STAGES) and len(table) == len(MAIN_CONDITIONS)
    j = MAIN_CONDITIONS.index("combined")
    row = table.iloc[j]
    assert row["pruned"].startswith(f"{10 + j + 1:.1f} [") and row["pruned"].endswith("(study 32.0)")
    assert "study" not in table.iloc[0 if j else 1]["baseline"]  # a condition the study left out


def test_structure_selectivity_and_stage_numbers():
    main = main_rows()
    struct = cliff_tables.structure_table(main)
    assert list(struct.columns) == list(A_STAGES)
    assert struct.loc[("kept_weights", "layer_1"), "pruned"] == 99.0
    assert struct.loc[("weight_sparsity", "-"), "recovered"] == 93.0  # the gradient arm, not the control
    sel = cliff_tables.selectivity_table(main)
    assert sel.loc["gradient", "gradient score captured (%)"] == 90.0
    assert sel.loc["random", "gradient score captured (%)"] == 51.0
    numbers = cliff_tables.stage_numbers(cliff_tables.stage_summary(main))
    j = MAIN_CONDITIONS.index("combined")
    assert numbers["pruned_combined"] == pytest.approx(10 + j + 1)
    assert numbers["recovered_combined"] == pytest.approx(20 + j + 1 + 2)  # gradient arm: + 2 * mean seed
    assert numbers["pruned_combined_lo"] < numbers["pruned_combined"] < numbers["pruned_combined_hi"]
    assert numbers["pruned_standard"] == pytest.approx(10 + MAIN_CONDITIONS.index("standard") + 1)


def test_sweep_table_marks_levels_the_study_did_not_report():
    acc = sweep_rows()
    sw, table = cliff_tables.sweep_table(acc, {0: 99.0, 95: 30.0})
    assert list(table.index) == [0, 90, 95]
    assert list(table["combined, study"]) == [99.0, "—", 30.0]
    assert table.loc[90, "combined, ours"].startswith("56 [")  # 100 - 45 + mean seed 1, no decimals
    assert cliff_tables.sweep_at(sw, 0.9) == pytest.approx(56.0)
    assert math.isnan(cliff_tables.sweep_at(sw, 0.93))


def test_regrowth_comparison_and_its_table():
    cmp = cliff_tables.regrowth_comparison(main_rows())
    c = cmp.set_index("condition")
    assert c.loc["combined", "mean"] == pytest.approx(2.0)  # 2 * mean seed
    table = cliff_tables.comparison_table(cmp)
    assert list(table.columns) == ["gradient − random (points)", "95% CI low", "95% CI high", "seeds"]
    assert table.index.name == "condition" and plain("combined") in table.index  # readers' words
    numbers = cliff_tables.comparison_numbers(cmp)
    assert numbers["grad_vs_rand_combined"] == pytest.approx(2.0)
    assert numbers["grad_vs_rand_severe_lo"] == c.loc["internal_severe", "ci_low"]
    assert set(numbers) == {f"grad_vs_rand_{k}{s}" for k in ("combined", "severe") for s in ("", "_lo", "_hi")}


def test_data_set_effect_is_paired_by_seed():
    mains = {"shared": main_rows(0.0, "shared"), "per_replicate": main_rows(-3.0, "per_replicate")}
    sweeps = {"shared": sweep_rows(0.0, "shared"), "per_replicate": sweep_rows(4.0, "per_replicate")}
    effect = cliff_tables.data_set_effect(mains, sweeps, LEVELS)
    points = [f"{st} (main)" for st in A_STAGES] + [
        "0% sparsity (sweep)",
        "90% sparsity (sweep)",
        "95% sparsity (sweep)",
    ]
    assert list(effect.effect.index) == points == list(effect.table.index)
    assert effect.effect.loc["pruned (main)", "mean"] == pytest.approx(3.0)
    assert effect.effect.loc["90% sparsity (sweep)", "mean"] == pytest.approx(-4.0)
    assert effect.effect.loc["pruned (main)", "ci_high"] == pytest.approx(3.0)  # the same shift for every seed
    assert list(effect.table.columns) == [*DATA_SET_LABELS.values(), "shared − per replicate (points)"]
    assert set(effect.accuracy.regrowth.dropna()) == {"none", "gradient"}  # the random control is left out
    numbers = cliff_tables.effect_numbers(effect.effect)
    assert numbers["effect_at"] in points[3:] and numbers["effect_max"] == pytest.approx(-4.0)
    assert numbers["effect_pruned"] == pytest.approx(3.0) and numbers["effect_recovered"] == pytest.approx(3.0)
    reading = cliff_tables.effect_reading(effect.effect)
    assert reading.startswith(f"The data set matters most at {numbers['effect_at']}: -4.0 points")
    with pytest.raises(ValueError, match="needs both schemes"):
        cliff_tables.data_set_effect({"shared": mains["shared"]}, {"shared": sweeps["shared"]}, LEVELS)


def test_prediction_numbers_are_nan_for_an_unscored_claim():
    t = [{"percentile": 40.0 + k, "low": 10.0 + k, "high": 60.0 + k} for k in range(3)]
    numbers = cliff_tables.prediction_numbers({"A1_pruned_combined": {"tests": t[:1]}, "A2_cliff": {"tests": t[1:]}})
    assert numbers == {
        "a1_pct": 40.0, "a1_lo": 10.0, "a1_hi": 60.0,
        "a2_90_pct": 41.0, "a2_90_lo": 11.0, "a2_90_hi": 61.0,
        "a2_93_pct": 42.0, "a2_93_lo": 12.0, "a2_93_hi": 62.0,
    }  # fmt: skip
    unscored = cliff_tables.prediction_numbers({"A1_pruned_combined": {"tests": t[:1]}, "A2_cliff": None})
    assert unscored["a1_pct"] == 40.0 and all(math.isnan(unscored[k]) for k in unscored if k.startswith("a2"))
