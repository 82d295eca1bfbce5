"""Chapter 4's tables and quoted numbers (protocols.regimen_tables) on synthetic tidy rows."""

from __future__ import annotations

import pandas as pd
import pytest

from pruneplast.protocols import regimen_tables
from pruneplast.protocols import regimens as R

SEEDS = (0, 1, 2)
#: Per regimen: extreme accuracy, relapse drop, combined accuracy and sparsity at its end (seed 0).
ENDS = {
    "acute_moderate": (40.0, 5.0, 80.0, 38.0),
    "long_chronic": (55.0, 2.0, 90.0, 0.6),
    "full_acute": (45.0, 4.0, 85.0, 0.0),
    "epochs_matched": (50.0, 3.0, 88.0, 38.0),
}


def finals_rows() -> pd.DataFrame:
    """Each regimen's end state per seed (values of ENDS plus the seed), and an intermediate row."""
    rows = []
    for name, (ext, drop, comb, sp) in ENDS.items():
        for s in SEEDS:
            lab = dict(experiment="regimens", schedule=name, cycle=1, epochs=10, regimen=name, seed=s)
            rows += [
                dict(lab, phase="pre_relapse", condition="internal_extreme", metric="accuracy", value=ext + s),
                dict(lab, phase="pre_relapse", condition="combined", metric="accuracy", value=comb + s),
                dict(lab, phase="post_relapse", condition="combined", metric="relapse_drop", value=drop + s),
                dict(lab, phase="pre_relapse", condition="-", metric="weight_sparsity", value=sp),
            ]
    rows.append(dict(rows[0], regimen="-", value=0.0))  # a point between two ends: not a regimen's end
    return pd.DataFrame(rows)


def test_schedule_table_lists_every_regimen():
    schedule = R.study_regimens(0.6, 15, 0.4, 5, [3, 6, 10], 20)
    table = regimen_tables.schedule_table(schedule)
    assert list(table.index) == [regimen_tables.LABELS[r.name] for r in schedule]
    long = table.loc[regimen_tables.LABELS["long_chronic"]]
    assert long["cycles"] == 10 and long["regrowth per cycle (%)"] == 40.0 and long["total epochs"] == 50
    assert table.loc[regimen_tables.LABELS["epochs_matched"], "total epochs"] == 50


def test_pairs_table_and_numbers():
    cmp = regimen_tables.comparisons(finals_rows())
    table = regimen_tables.pairs_table(cmp)
    assert table.index.names == ["quantity", "comparison"]
    assert list(table.columns) == ["mean (points)", "95% CI low", "95% CI high", "seeds"]
    assert ("extreme accuracy", "long chronic − acute moderate") in table.index
    assert set(regimen_tables.pair_names().values()) == set(table.index.get_level_values("comparison"))
    n = regimen_tables.pair_numbers(cmp)
    assert n["ext_long_chronic_vs_acute_moderate"] == pytest.approx(15.0)
    assert n["drop_long_chronic_vs_full_acute"] == pytest.approx(-2.0)
    assert n["comb_epochs_matched_vs_acute_moderate"] == pytest.approx(8.0)
    assert n["ext_long_chronic_vs_epochs_matched_lo"] == pytest.approx(5.0)  # the same difference for every seed
    assert len(n) == 3 * len(regimen_tables.PAIRS) * 3 and all(isinstance(v, float) for v in n.values())


def test_final_numbers_are_means_at_each_regimens_end():
    n = regimen_tables.final_numbers(finals_rows())
    assert n["extreme_long_chronic"] == pytest.approx(56.0)  # 55 + mean seed
    assert n["drop_full_acute"] == pytest.approx(5.0)
    assert n["sparsity_acute_moderate"] == pytest.approx(38.0)
    assert set(n) == {f"{q}_{r}" for q in ("extreme", "drop", "sparsity") for r in regimen_tables.QUOTED}


def test_interpret_control_follows_the_intervals():
    def cmp(lc_am, lc_em, em_am):
        rows = []
        for (a, b), (m, lo, hi) in (
            (("long_chronic", "acute_moderate"), lc_am),
            (("long_chronic", "epochs_matched"), lc_em),
            (("epochs_matched", "acute_moderate"), em_am),
        ):
            rows.append(dict(quantity="extreme accuracy", a=a, b=b, mean=m, ci_low=lo, ci_high=hi, n=10))
        return pd.DataFrame(rows)

    explained = regimen_tables.interpret_control(cmp((9.0, 7.0, 11.0), (0.5, -1.0, 2.0), (8.5, 6.0, 11.0)))
    assert "accounted for by its longer training" in explained and "94%" in explained
    assert "stays clearly ahead" in regimen_tables.interpret_control(
        cmp((9.0, 7.0, 11.0), (5.0, 3.0, 7.0), (4.0, 2.0, 6.0))
    )
    assert "control even ends clearly ahead" in regimen_tables.interpret_control(
        cmp((9.0, 7.0, 11.0), (-2.0, -3.0, -1.0), (11.0, 9.0, 13.0))
    )
    assert "not clearly ahead" in regimen_tables.interpret_control(
        cmp((1.0, -1.0, 3.0), (0.0, -1.0, 1.0), (1.0, -1.0, 3.0))
    )
