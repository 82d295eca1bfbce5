"""The claims' registry and helpers (:mod:`pruneplast.claims`); each claim's own rule is tested on
synthetic chapter results in ``tests/test_scorecard.py`` and the chapters' tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pruneplast import chapters, claims, paper, verdicts
from pruneplast.claims import registry


def _table() -> pd.DataFrame:
    rows = []
    for seed in (0, 1, 2):
        for data_sets, base in (("shared", 50.0), ("per_replicate", 70.0)):
            rows.append(dict(seed=seed, data_sets=data_sets, experiment="main", level=0.9, value=base + seed))
            rows.append(dict(seed=seed, data_sets=data_sets, experiment="main", level=0.9, value=base + seed + 2))
    return pd.DataFrame(rows)


def test_every_registered_claim_is_a_claim_of_the_paper_on_a_registered_chapter():
    ids = {cid for study in ("study_A", "study_B") for cid in paper.paper_results()[study]["claims"]}
    assert claims.CLAIMS and set(claims.CLAIMS) <= ids
    for cid, c in claims.CLAIMS.items():
        assert c.id == cid and c.notebook in chapters.CHAPTERS, cid
        assert callable(c.func)


def test_a_claim_registers_once_and_only_with_a_paper_id():
    with pytest.raises(KeyError, match="Z9_no_such_claim"):
        claims.claim("Z9_no_such_claim", notebook="02_pruning_cliff")(lambda df: {})
    with pytest.raises(ValueError, match="registered twice"):
        claims.claim("A1_pruned_combined", notebook="02_pruning_cliff")(lambda df: {})
    assert claims.CLAIMS["A1_pruned_combined"].notebook == "02_pruning_cliff"


def test_select_and_per_seed():
    df = _table()
    assert len(claims.select(df, data_sets="shared", level=0.9)) == 6  # a float compares within rounding
    assert claims.per_seed(df, data_sets="shared").tolist() == [51.0, 52.0, 53.0]  # the mean of each seed's rows
    with pytest.raises(ValueError, match="no column 'stage'"):
        claims.select(df, stage="pruned")
    with pytest.raises(ValueError, match="no rows"):
        claims.select(df, experiment="sweep")


def test_like_with_like_prefers_study_a_s_data_set():
    df = _table()
    kept, note = claims.like_with_like(df)
    assert set(kept["data_sets"]) == {"shared"} and note == "study A's data set"
    own, note = claims.like_with_like(df[df.data_sets == "per_replicate"])
    assert set(own["data_sets"]) == {"per_replicate"} and "not study A's" in note
    plain, note = claims.like_with_like(df.drop(columns="data_sets"))
    assert len(plain) == len(df) and "not study A's" in note


def test_relapse_outcomes_are_seeds_by_durations_without_the_sweep():
    rows = [
        dict(experiment="relapse", treatment="ssri", metric="relapse", seed=s, duration=d, value=v, sweep=None)
        for s, vals in ((0, (100.0, 100.0)), (1, (0.0, 100.0)))
        for d, v in zip((25, 50), vals)
    ]
    rows.append(
        dict(experiment="relapse", treatment="ssri", metric="relapse", seed=0, duration=25, value=0.0, sweep="p")
    )
    out = claims.relapse_outcomes(pd.DataFrame(rows), "ssri")
    assert out.tolist() == [[1.0, 1.0], [0.0, 1.0]]


def test_a_result_takes_the_least_favourable_verdict():
    tests = [verdicts.statement(True, "a"), verdicts.statement(False, "b")]
    r = registry.result(tests, "ours", "note", np.float64(3.5), np.int64(4))
    assert r["verdict"] == verdicts.DIFFERS and r["mean"] == 3.5 and r["n"] == 4
    assert type(r["mean"]) is float and type(r["n"]) is int
    assert registry.result(tests[:1], "", "", 0.0, 1)["verdict"] == verdicts.REPRODUCED


def test_single_and_its_text():
    values = pd.Series([30.0, 31.0, 33.0, 34.0, 36.0], index=[0, 1, 2, 3, 4])
    t = registry.single(values, 32.2)
    assert t == verdicts.single_replicate(32.2, values.to_numpy(), "accuracy")
    text = registry.pi_text(t)
    assert text.startswith("32.8 (PI ") and " to " in text


def test_evaluate_runs_the_registered_function():
    seeds = [0, 1, 2, 3, 4]
    df = pd.DataFrame(
        [
            dict(experiment="main", stage="pruned", condition="combined", metric="accuracy", seed=s, value=v)
            for s, v in zip(seeds, (31.0, 33.0, 32.0, 30.5, 34.0))
        ]
    )
    r = claims.evaluate("A1_pruned_combined", df)
    assert r == claims.CLAIMS["A1_pruned_combined"].func(df) and r["verdict"] == verdicts.REPRODUCED
    assert r["n"] == 5 and r["mean"] == pytest.approx(32.1)
