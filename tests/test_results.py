"""Results I/O (atomic, validated) and summary statistics against numpy / scipy by hand."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pruneplast import results
from pruneplast.results import (
    METRIC_RANGE,
    REQUIRED_COLUMNS,
    load_results,
    paired_difference,
    save_results,
    summarise,
    t_ci,
)


def frame(n_seeds=3, value_shift=0.0) -> pd.DataFrame:
    rows = []
    for s in range(n_seeds):
        for cond in ("standard", "combined"):
            rows.append(
                {
                    "experiment": "main",
                    "condition": cond,
                    "seed": s,
                    "metric": "accuracy",
                    "value": 90.0 + s + (5 if cond == "standard" else 0) + value_shift,
                    "stage": "baseline",
                }
            )
    return pd.DataFrame(rows)


def test_save_and_load_round_trip(tmp_path):
    df = frame()
    path = save_results(df, "02_test", "quick", {"seeds": [0, 1, 2]}, root=tmp_path)
    assert path == tmp_path / "quick" / "02_test.csv"
    assert sorted(p.name for p in path.parent.iterdir()) == ["02_test.csv", "02_test.json"]  # no temp files
    back = load_results("02_test", "quick", root=tmp_path)
    assert list(back.columns[:5]) == list(REQUIRED_COLUMNS)
    pd.testing.assert_frame_equal(
        back[df.columns].sort_values(["seed", "condition"]).reset_index(drop=True),
        df.sort_values(["seed", "condition"]).reset_index(drop=True),
        check_dtype=False,
    )
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["parameters"] == {"seeds": [0, 1, 2]} and meta["profile"] == "quick"
    assert "torch_version" in meta and "pruneplast_version" in meta


@pytest.mark.parametrize("missing", REQUIRED_COLUMNS)
def test_required_columns_are_enforced(tmp_path, missing):
    with pytest.raises(ValueError, match=missing):
        save_results(frame().drop(columns=missing), "x", "quick", {}, root=tmp_path)
    assert not (tmp_path / "quick" / "x.csv").exists()


def test_non_finite_values_are_refused(tmp_path):
    df = frame()
    df.loc[1, "value"] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        save_results(df, "x", "quick", {}, root=tmp_path)
    assert not (tmp_path / "quick" / "x.csv").exists()


@pytest.mark.parametrize("where", ["write", "fsync", "replace"])
def test_failure_mid_write_leaves_no_partial_file(tmp_path, monkeypatch, where):
    old = save_results(frame(), "02_test", "quick", {"v": 1}, root=tmp_path)
    old_text = old.read_text()
    boom = RuntimeError("disk full")

    def fail(*a, **k):
        raise boom

    if where in ("replace", "fsync"):
        monkeypatch.setattr(results.os, where, fail)
    else:  # half the text reaches the temporary file, then the write fails
        real_fdopen = os.fdopen

        class HalfWriter:
            def __init__(self, fh):
                self.fh = fh

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.fh.close()
                return False

            def write(self, text):
                self.fh.write(text[: len(text) // 2])
                self.fh.flush()
                raise boom

            def __getattr__(self, name):
                return getattr(self.fh, name)

        monkeypatch.setattr(results.os, "fdopen", lambda *a, **k: HalfWriter(real_fdopen(*a, **k)))
    with pytest.raises(RuntimeError, match="disk full"):
        save_results(frame(value_shift=1.0), "02_test", "quick", {"v": 2}, root=tmp_path)
    monkeypatch.undo()
    assert sorted(p.name for p in old.parent.iterdir()) == ["02_test.csv", "02_test.json"]
    assert old.read_text() == old_text  # the previous complete file is untouched


def test_failure_at_a_fresh_location_leaves_nothing(tmp_path, monkeypatch):
    def fail(*a, **k):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(results.os, "replace", fail)
    with pytest.raises(RuntimeError, match="interrupted"):
        save_results(frame(), "new", "other", {}, root=tmp_path)
    assert list((tmp_path / "other").iterdir()) == []


def test_t_ci_against_scipy():
    v = [91.2, 95.5, 93.1, 97.0, 92.4]
    lo, hi = t_ci(v)
    ref = stats.t.interval(0.95, len(v) - 1, loc=np.mean(v), scale=stats.sem(v))
    assert (lo, hi) == pytest.approx(ref, rel=1e-12)
    lo90, hi90 = t_ci(v, level=0.9)
    assert hi90 - lo90 < hi - lo
    assert all(math.isnan(x) for x in t_ci([3.0]))


def test_t_ci_is_cut_to_its_bounds():
    v = [100.0, 100.0, 100.0, 50.0]  # a relapse probability per seed: the t-interval passes 100
    plain = t_ci(v)
    assert plain[1] > 100
    lo, hi = t_ci(v, bounds=(0.0, 100.0))
    assert (lo, hi) == (pytest.approx(plain[0]), 100.0)
    assert t_ci([1.0, 1.0, 9.0], bounds=(0.0, 100.0))[0] == 0.0  # and the low side
    assert t_ci([40.0, 60.0], bounds=(0.0, 100.0)) != t_ci([40.0, 60.0])  # wide enough to be cut both ways
    assert t_ci([50.0, 51.0, 52.0], bounds=(0.0, 100.0)) == pytest.approx(t_ci([50.0, 51.0, 52.0]))  # inside: unchanged


def test_summarise_cuts_intervals_to_the_metric_range():
    rows = [
        {"experiment": "relapse", "condition": "biased", "seed": s, "metric": m, "value": v}
        for m in ("relapse_probability", "unnamed_score", "relapse_drop")
        for s, v in enumerate([100.0, 100.0, 100.0, 50.0])
    ]
    out = summarise(pd.DataFrame(rows), ["metric"]).set_index("metric")
    assert METRIC_RANGE["relapse_probability"] == (0.0, 100.0)
    assert out.loc["relapse_probability", "ci_high"] == 100.0
    plain_high = t_ci([100.0, 100.0, 100.0, 50.0])[1]
    assert out.loc["unnamed_score", "ci_high"] == pytest.approx(plain_high)  # unknown metric: plain interval
    assert out.loc["relapse_drop", "ci_high"] == 100.0  # a drop of accuracy points lies in [-100, 100]
    assert out.loc["relapse_probability", "ci_low"] == pytest.approx(t_ci([100.0, 100.0, 100.0, 50.0])[0])
    # a group mixing metrics, or another value column, or explicit bounds: no inference
    mixed = summarise(pd.DataFrame(rows), ["condition"]).iloc[0]
    assert mixed["ci_high"] > 100
    other = summarise(pd.DataFrame(rows).assign(score=lambda d: d.value), ["metric"], value="score")
    assert (other["ci_high"] > 100).all()
    forced = summarise(pd.DataFrame(rows), ["metric"], bounds=(0.0, 90.0))
    assert (forced["ci_high"] == 90.0).all()


def test_paired_differences_are_not_cut():
    rows = [
        {"experiment": "e", "condition": c, "seed": s, "metric": "accuracy", "value": v}
        for s, (a, b) in enumerate([(0.0, 100.0), (0.0, 100.0), (100.0, 0.0)])
        for c, v in (("a", a), ("b", b))
    ]
    d = paired_difference(pd.DataFrame(rows), "condition", "a", "b", by=["metric"]).iloc[0]
    assert d["ci_low"] < -100 and d["ci_high"] > 100  # a difference is not an accuracy


def test_summarise_by_hand():
    df = pd.concat([frame(5), frame(5, value_shift=0.0).assign(stage="pruned", value=lambda d: d.value / 3)])
    out = summarise(df, ["stage", "condition"]).set_index(["stage", "condition"])
    assert len(out) == 4
    for (stage, cond), g in df.groupby(["stage", "condition"]):
        v = g.value.to_numpy()
        r = out.loc[(stage, cond)]
        assert r["mean"] == pytest.approx(v.mean())
        assert r["sd"] == pytest.approx(np.sqrt(((v - v.mean()) ** 2).mean()))  # population SD
        assert r["n"] == 5
        half = stats.t.ppf(0.975, 4) * v.std(ddof=1) / np.sqrt(5)
        assert (r["ci_low"], r["ci_high"]) == pytest.approx((v.mean() - half, v.mean() + half))


def test_paired_difference_by_hand():
    rows = []
    rng = np.random.RandomState(0)
    for s in range(6):
        base = rng.randn()
        for arm, shift in (("gradient", 1.0), ("random", 0.0)):
            rows.append(
                {"seed": s, "regrowth": arm, "condition": "combined", "value": base + shift + 0.1 * rng.randn()}
            )
    df = pd.DataFrame(rows)
    out = paired_difference(df, "regrowth", "gradient", "random", by=["condition"]).iloc[0]
    w = df.pivot(index="seed", columns="regrowth", values="value")
    d = (w["gradient"] - w["random"]).to_numpy()
    assert out["mean"] == pytest.approx(d.mean())
    assert out["comparison"] == "gradient - random"
    lo, hi = stats.t.interval(0.95, 5, loc=d.mean(), scale=stats.sem(d))
    assert (out["ci_low"], out["ci_high"]) == pytest.approx((lo, hi))


def test_formatted_means_never_show_minus_zero():
    from pruneplast.results import fmt_mean_ci

    assert fmt_mean_ci(-0.01, -0.04, 0.3) == "0.0 [0.0, 0.3]"
    assert fmt_mean_ci(-0.06, -0.2, 0.1) == "\u22120.1 [\u22120.2, 0.1]"
    assert fmt_mean_ci(-0.001, float("nan"), float("nan"), 2) == "0.00"
