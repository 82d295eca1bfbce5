"""Chapter 6's tables and quoted numbers (protocols.longitudinal_tables) on synthetic tidy rows."""

from __future__ import annotations

import pandas as pd
import pytest

from pruneplast.protocols import longitudinal, longitudinal_tables

SEEDS = (0, 1)
ARMS = {"ketamine": 0.9, "ssri": 0.25, "neurosteroid": 0.6}  # protection left at test
DURATIONS = (1, 2, 4)


def relapse_rows() -> pd.DataFrame:
    """Biased accuracy = 50 + 10 protection + duration + seed; relapse (100) below 60%; and a
    sensitivity grid where the relapse probability is 100 (1 - protection) for every arm."""
    rows = []
    for t, p in ARMS.items():
        for s in SEEDS:
            for d in DURATIONS:
                lab = dict(treatment=t, seed=s, duration=float(d), protection=p, drug="off", condition="biased")
                acc = 50 + 10 * p + d + s
                rows.append(dict(lab, experiment="relapse", metric="accuracy", threshold=float("nan"), value=acc))
                rows.append(dict(lab, experiment="relapse", metric="relapse", threshold=60.0, value=100.0 * (acc < 60)))
            for q in (0.0, 0.5, 0.9, 1.0):
                rows.append(
                    dict(
                        treatment=t, seed=s, duration=float("nan"), protection=q, drug="off", condition="biased",
                        experiment="sensitivity", metric="relapse_probability", sweep="protection", threshold=60.0,
                        value=100.0 * (1 - q) + (5.0 if t == "ssri" else 0.0),
                    )
                )  # fmt: skip
    return pd.DataFrame(rows)


def test_protection_table_lists_each_arm_and_the_checkpoints():
    df = relapse_rows()
    main = df[df.experiment == "relapse"]
    table = longitudinal_tables.protection_table(main, {4, 1, 2})
    assert list(table.index) == list(ARMS)
    assert table["protection left at test"].tolist() == list(ARMS.values())
    assert set(table["maintenance checkpoints (epochs)"]) == {"1, 2, 4"}


def test_relapse_and_maintenance_numbers():
    df = relapse_rows()
    main = df[df.experiment == "relapse"]
    prob = longitudinal.relapse_probability(main[main.metric == "relapse"])
    n = longitudinal_tables.relapse_numbers(prob, main, list(ARMS))
    # ssri (p 0.25): accuracy 52.5 + d + s, below 60 at every duration for both seeds
    assert n["ssri_relapse"] == pytest.approx(100.0) and n["ketamine_relapse"] == pytest.approx(0.0)
    # neurosteroid (p 0.6): 56 + d + s relapses at d = 1, 2 for seed 0 and d = 1, 2 for seed 1
    assert n["neurosteroid_relapse"] == pytest.approx(100 * 2 / 3)
    assert n["ssri_protection"] == 0.25
    m = longitudinal_tables.maintenance_numbers(main[main.metric == "accuracy"], list(ARMS))
    assert m["d_min"] == 1 and m["d_max"] == 4
    assert all(m[f"{t}_maint_gain"] == pytest.approx(3.0) for t in ARMS)


def test_equal_protection_numbers_read_the_sensitivity_grid():
    df = relapse_rows()
    main = df[df.experiment == "relapse"]
    n = longitudinal_tables.equal_protection_numbers(df, main, 60.0, list(ARMS))
    assert n["ketamine_at_ketamine_p"] == pytest.approx(10.0)  # the grid's 0.9
    assert n["ssri_at_ketamine_p"] == pytest.approx(15.0)
    assert n["neurosteroid_at_zero_p"] == pytest.approx(100.0)
    assert set(n) == {f"{t}_at_{k}_p" for t in ARMS for k in ("ketamine", "zero")}
