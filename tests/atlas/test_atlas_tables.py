"""The atlas chapter's tables (atlas.tables): the settings, the conclusions recomputed and left
out, and the map summed up and in full, on a synthetic map."""

from __future__ import annotations

import pandas as pd

from pruneplast import atlas

CELLS = atlas.settings([0.5], [-1], [1.6], True, [2.0], [0.1], True)


def test_settings_tables_name_each_change():
    table, shown = atlas.settings_tables(CELLS)
    assert list(table.index) == [s.name for s in CELLS]
    ref = table.loc["reference"]
    assert ref["network"] == "2-512-512-256-4" and ref["pruning threshold"] == "per layer"
    assert ref["data sets"] == "one per replicate" and ref["lr factor"] == 1.0
    changed = table[table["choice changed"] != atlas.CHOICES["reference"]]
    assert len(changed) == len(CELLS) - 1
    scope = next(s for s in CELLS if s.prune_scope == "global")
    assert table.loc[scope.name, "pruning threshold"] == "global"
    assert table.loc[scope.name, "choice changed"] == atlas.CHOICES["prune_scope"]
    # for reading: the labels, no choice or level (the label names them), no breakable hyphen
    assert list(shown.index) == [s.label for s in CELLS]
    assert "level" not in shown.columns and "choice changed" not in shown.columns
    assert shown["network"].iloc[0] == "2\u2011512\u2011512\u2011256\u20114"


def test_conclusions_and_left_out_tables():
    table = atlas.conclusions_table()
    assert list(table.index) == [c.claim.split("_")[0] for c in atlas.CONCLUSIONS]
    for c, (_, row) in zip(atlas.CONCLUSIONS, table.iterrows()):
        assert row["conclusion"] == c.statement and row["quantity per seed"].endswith(f"({c.unit})")
        word = row["holds when"].split()[0]
        assert word == c.kind and f"{c.bound[0]:g}" in row["holds when"]
    left = atlas.left_out_table()
    assert list(left.index) == [k.split("_")[0] for k in atlas.LEFT_OUT]
    assert list(left["reason"]) == list(atlas.LEFT_OUT.values())


def synthetic_map() -> pd.DataFrame:
    """A map of two conclusions (one of them a knife edge) under the reference and two settings:
    the first holds everywhere, the second reverses under the last setting."""
    claims = [atlas.CONCLUSIONS[0].claim, atlas.KNIFE_EDGE[0]]
    rows = []
    for claim in claims:
        for k, s in enumerate(CELLS[:3]):
            verdict = atlas.REVERSES if (claim == claims[1] and k == 2) else atlas.HOLDS
            rows.append(
                dict(claim=claim, setting=s.name, choice=s.choice, level=s.level, mean=10.04 + k, ci_low=9.0 + k,
                     ci_high=11.0 + k, n=2, shift=float(k), verdict=verdict, unchanged=False)
            )  # fmt: skip
    return pd.DataFrame(rows)


def test_summary_table_counts_verdicts_per_conclusion():
    summary = atlas.summary_table(synthetic_map())
    short = [atlas.CONCLUSIONS[0].claim.split("_")[0], atlas.KNIFE_EDGE[0].split("_")[0]]
    assert short[0] in summary.index and short[1] in summary.index and "conclusion" not in summary.columns
    assert summary.loc[short[0], atlas.HOLDS] == 2 and summary.loc[short[0], "not holding under"] == "—"
    assert summary.loc[short[1], atlas.REVERSES] == 1 and summary.loc[short[1], atlas.HOLDS] == 1
    assert summary.loc[short[1], "reference"] == atlas.HOLDS


def test_means_tables_check_all_but_the_knife_edges():
    m = synthetic_map()
    checked, shown = atlas.means_tables(m, CELLS)
    assert list(checked.columns) == ["mean"]
    assert set(checked.index.get_level_values("claim")) == {atlas.CONCLUSIONS[0].claim}
    assert list(checked["mean"]) == [10.0, 11.0, 12.0]
    assert len(shown) == len(m)  # every cell is shown, the knife edges too
    assert list(shown.index.get_level_values("setting"))[:3] == [s.label for s in CELLS[:3]]
