"""The robustness atlas: settings, verdict rules, the compact protocol and its executors.

The protocol runs on small networks and a small task (two seeds) so that what is tested is the
plumbing: each setting changes what it says and nothing else, a quantity a setting cannot move
equals the reference's, and the cells give the same numbers in this process, in worker processes
and on a Dask cluster of worker processes on 127.0.0.1.
"""

from __future__ import annotations

import itertools
import math
import types

import numpy as np
import pandas as pd
import pytest

from pruneplast import atlas, chapters

SMALL = (48, 48, 24)
TINY = atlas.Protocol(
    seeds=(0, 1),
    baseline_epochs=2,
    consolidation_epochs=1,
    acute_epochs=1,
    chronic_epochs=1,
    chronic_cycles=2,
    treatment_epochs=(("ketamine", 1), ("ssri", 2), ("neurosteroid", 1)),
    maintenance_epochs=1,
    sweep_levels=(0.0, 0.5, 0.9, 0.95, 0.99),
    n_train=30 * 128 + 64,
    n_standard=600,
    n_clean=200,
)


def _small(name, choice, **kw):
    return atlas.Setting(name, choice, name, hidden=kw.pop("hidden", SMALL), **kw)


#: Every regimen group of more than one cycle split into one part per cycle (TINY's long chronic
#: regimen: two parts).
SPLIT = 1e-9
CELLS = [
    _small("reference", "reference"),
    _small("scope_global", "prune_scope", prune_scope="global"),
    _small("init_0.1", "regrowth_init", regrow_init_std=0.1),
]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    import os

    old = os.environ.get("PRUNEPLAST_CACHE")
    os.environ["PRUNEPLAST_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    try:
        yield atlas.run(CELLS, TINY, workers=1, progress=False, part_minutes=SPLIT)
    finally:
        if old is None:
            os.environ.pop("PRUNEPLAST_CACHE", None)
        else:
            os.environ["PRUNEPLAST_CACHE"] = old


# --------------------------------------------------------------------------- settings
def test_settings_change_one_choice_each():
    cells = atlas.settings()
    names = [s.name for s in cells]
    assert names[0] == "reference" and len(names) == len(set(names)) == 13
    ref = cells[0]
    fields = ("hidden", "task_sigma", "prune_scope", "lr_factor", "regrow_init_std", "data_sets")
    for s in cells[1:]:
        changed = [f for f in fields if getattr(s, f) != getattr(ref, f)]
        assert len(changed) == 1, (s.name, changed)
    by = {s.name: s for s in cells}
    assert by["width_x0.5"].hidden == (256, 256, 128) and by["width_x2"].hidden == (1024, 1024, 512)
    assert by["depth_-1"].hidden == (512, 256) and by["depth_+1"].hidden == (512, 512, 512, 256)
    assert by["data_shared"].data_sets == "shared" and ref.data_sets == "per_replicate"
    assert {s.choice for s in cells} == set(atlas.CHOICES)


def test_settings_reject_bad_levels():
    with pytest.raises(ValueError, match="depth change"):
        atlas.deeper(-3)
    with pytest.raises(ValueError, match=r"width_factors must not repeat a value"):
        atlas.settings(width_factors=[2.0, 2.0])
    with pytest.raises(ValueError, match="sweep_levels must include 0.0"):
        atlas.Protocol(sweep_levels=(0.5, 0.9, 0.95))
    with pytest.raises(ValueError, match="make the consolidated and acute moderate regimens the same experiment"):
        atlas.Protocol(acute_fraction=0.5, acute_epochs=15)


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("width_factors", [0.05], r"width_factors\[0\] must be in \[0.1, 4.0\]"),
        ("depth_changes", [-3], r"depth_changes\[0\] must be an integer \[-2, 3\]"),
        ("task_sigmas", "[]", "non-empty list"),
        ("init_stds", [0.0], r"init_stds\[0\] must be in \(0.0, 1.0\]"),
        ("scheduler", "8786", "scheduler must be '' or a Dask scheduler address"),
        ("scheduler", "localhost:8786", "scheduler must be '' or a Dask scheduler address"),
        ("scheduler", "tcp://127.0.0.1:8786 --x", "scheduler must be '' or a Dask scheduler address"),
    ],
)
def test_chapter_parameters_validated(name, value, message):
    values = chapters.profile_values("07_robustness_atlas", "paper")
    values[name] = value
    with pytest.raises(ValueError, match=message):
        chapters.validate("07_robustness_atlas", values)


def test_an_empty_list_leaves_a_choice_out():
    values = chapters.profile_values("07_robustness_atlas", "paper")
    values.update(width_factors=[], depth_changes=[], global_scope=False)
    v = chapters.validate("07_robustness_atlas", values)
    keys = ("width_factors", "depth_changes", "task_sigmas", "global_scope", "lr_factors", "init_stds")
    names = [s.name for s in atlas.settings(*(v[k] for k in keys), v["shared_data_set"])]
    assert names[0] == "reference" and not any(n.startswith(("width", "depth", "scope")) for n in names)
    assert len(names) == 1 + 2 + 2 + 2 + 1


def test_scheduler_addresses_accepted():
    import socket

    values = chapters.profile_values("07_robustness_atlas", "paper")
    with socket.socket() as s:  # something listening (tls:// is probed by connecting only)
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        for address in ("", f"tls://127.0.0.1:{port}", f"tls://localhost:{port}"):
            values["scheduler"] = address
            assert chapters.validate("07_robustness_atlas", values)["scheduler"] == address


# --------------------------------------------------------------------------- verdict rules
def _c(kind, bound):
    return atlas.Conclusion("X", "x", "x", kind, bound, "A")


@pytest.mark.parametrize(
    "kind, bound, interval, expected",
    [
        ("above", (0.0,), (0.5, 2.0), "holds"),
        ("above", (0.0,), (-0.5, 2.0), "weakens"),
        ("above", (0.0,), (-2.0, -0.5), "reverses"),
        ("below", (1.0,), (-0.5, 0.9), "holds"),
        ("below", (1.0,), (0.5, 1.5), "weakens"),
        ("below", (1.0,), (1.1, 3.0), "reverses"),
        ("between", (90.0, 93.0), (90.5, 92.0), "holds"),
        ("between", (90.0, 93.0), (89.0, 91.0), "weakens"),
        ("between", (90.0, 93.0), (94.0, 96.0), "reverses"),
        ("above", (0.0,), (math.nan, math.nan), "weakens"),
    ],
)
def test_verdict_rule(kind, bound, interval, expected):
    assert atlas.verdict(_c(kind, bound), *interval) == expected


def test_half_collapse_interpolates_between_levels():
    curve = pd.DataFrame({"level": [0.0, 80.0, 90.0, 95.0], "value": [97.0, 95.0, 71.0, 31.0]})
    # halfway from 97 to chance (25) is 61: between 90 (71) and 95 (31), a quarter of the way
    assert atlas.half_collapse(curve) == pytest.approx(91.25)
    assert math.isnan(atlas.half_collapse(curve.assign(value=[97.0, 96.0, 95.0, 94.0])))


# --------------------------------------------------------------------------- the protocol
def test_every_conclusion_computed_under_every_setting(tiny_run):
    m = atlas.atlas_map(tiny_run, CELLS)
    assert len(m) == len(atlas.CONCLUSIONS) * len(CELLS)
    assert m["n"].eq(2).all() and m["verdict"].isin(atlas.VERDICTS).all()
    assert np.isfinite(m[m.claim != "A2_cliff"]["mean"]).all()
    summary = atlas.robustness(m)
    assert list(summary["claim"]) == [c.claim for c in atlas.CONCLUSIONS]
    assert (summary[list(atlas.VERDICTS)].sum(axis=1) == len(CELLS) - 1).all()
    words = atlas.findings(m, CELLS)
    assert set(words) == {
        "robust_text",
        "fragile_text",
        "settings_text",
        "settings_list",
        "b6_text",
        "b7_text",
        "a7_text",
        "a2_text",
    }
    assert all(isinstance(v, str) and v for v in words.values())


def test_findings_say_one_value_where_every_setting_gives_it(tiny_run):
    """A conclusion's mean over the changed settings is given as a range, or as one value where
    both ends print alike (never "from 100.0 to 100.0"), with the book's minus sign."""
    m = atlas.atlas_map(tiny_run, CELLS)
    changed = (m.claim == "B6_ssri_extreme") & (m.choice != "reference")
    text = atlas.findings(m.assign(mean=m["mean"].where(~changed, 100.0)), CELLS)["b6_text"]
    assert "Its mean is 100.0 " in text and "ranges from" not in text
    spread = m["mean"].where(~changed, -2.0)
    spread[changed.to_numpy().nonzero()[0][0]] = 3.0
    text = atlas.findings(m.assign(mean=spread), CELLS)["b6_text"]
    assert "ranges from \u22122.0 to 3.0 " in text


def test_a_setting_moves_only_what_it_can(tiny_run):
    m = atlas.atlas_map(tiny_run, CELLS).set_index(["claim", "setting"])
    # the regrowth SD cannot move the sweep, the pruned network or the arms that regrow nothing
    for claim in ("A1_pruned_combined", "A2_cliff", "B4_neurosteroid_combined"):
        assert m.loc[(claim, "init_0.1"), "unchanged"], claim
    # ... and moves what regrows
    for claim in ("A3_recovered_combined", "B6_ssri_extreme"):
        assert not m.loc[(claim, "init_0.1"), "unchanged"], claim
    # a global threshold changes the pruned network itself
    assert not m.loc[("A1_pruned_combined", "scope_global"), "unchanged"]
    sw = tiny_run[(tiny_run.quantity == "sweep_combined") & (tiny_run.level == 0)]
    by = sw.groupby("setting")["value"].mean()
    assert by["reference"] == by["scope_global"] == by["init_0.1"]  # the same baseline


def test_results_are_tidy_and_savable(tiny_run, tmp_path):
    from pruneplast import results

    assert {"experiment", "setting", "part", "quantity", "condition", "metric", "seed", "value"} <= set(tiny_run)
    assert set(tiny_run["part"]) == {"A", "B"}
    out = results.save_results(tiny_run, "07_robustness_atlas", "quick", {"seeds": [0, 1]}, root=tmp_path)
    back = results.load_results("07_robustness_atlas", "quick", root=tmp_path)
    assert len(back) == len(tiny_run) and out.exists()


@pytest.mark.slow
def test_same_numbers_in_worker_processes_and_on_dask(tiny_run, tmp_path, monkeypatch, dask_scheduler):
    """One thread per cell: the executor does not change a number (same machine), nor does splitting
    the long chronic regimen by cycles (split in ``tiny_run`` and on Dask, whole here).

    The Dask cluster is the tests' shared one (a scheduler and two one-thread workers, separate
    processes on 127.0.0.1, :func:`conftest.dask_scheduler`): its workers' engine cache is theirs,
    shared only with this session's other Dask tests and never this process's, so the states come
    from the workers (computed there, unless an earlier Dask test of the session cached the same
    ones) and the cells are assembled and saved here, as on a cluster that does not share this
    machine's cache."""
    monkeypatch.setenv("PRUNEPLAST_CACHE", str(tmp_path / "cache"))  # nothing cached: every cell recomputed
    cells = CELLS[:2]
    want = _numbers(tiny_run[tiny_run.setting.isin([c.name for c in cells])])
    local = atlas.run(cells, TINY, workers=2, progress=False)
    pd.testing.assert_frame_equal(_numbers(local), want)
    assert not local["cached"].any() and (local["cell_seconds"] > 0).all()
    monkeypatch.setenv("PRUNEPLAST_CACHE", str(tmp_path / "dask-cache"))  # the cells assembled afresh
    on_dask = atlas.run(cells, TINY, scheduler=dask_scheduler, progress=False, part_minutes=SPLIT)
    pd.testing.assert_frame_equal(_numbers(on_dask), want)
    assert not on_dask["cached"].any() and (tmp_path / "dask-cache" / "atlas").is_dir()


def _numbers(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=["cell_seconds", "longest_task_seconds", "path_seconds", "cached"]).reset_index(drop=True)


def test_finished_cells_are_not_recomputed(tiny_run, monkeypatch):
    """A rerun loads every finished cell (a renamed setting too: its name is no part of the key)."""
    from pruneplast.atlas import protocol

    def fail(*args):
        raise AssertionError("a cached cell was recomputed")

    monkeypatch.setattr(protocol, "_study_a", fail)
    monkeypatch.setattr(protocol, "_study_b", fail)
    monkeypatch.setattr(protocol, "run_task", fail)
    renamed = [atlas.Setting("again", "regrowth_init", "SD 0.1", hidden=SMALL, regrow_init_std=0.1)]
    again = atlas.run(renamed, TINY, workers=1, progress=False)
    assert again["cached"].all() and set(again["setting"]) == {"again"}
    first = tiny_run[tiny_run.setting == "init_0.1"]
    assert again["value"].tolist() == first["value"].tolist()


# --------------------------------------------------------------------------- tasks and cache keys
def test_each_state_keyed_on_what_changes_it():
    """At the studies' durations the regrowth scale changes only what regrows: the reference's
    baselines, sweep, pruned network (the untreated arm's state) and the SSRI-like and
    neurosteroid-like states are reused, so no key of those covers the regrowth scale; a global
    threshold keeps the baselines only; every other choice changes every state."""
    paper = atlas.Protocol()
    cells = atlas.settings()
    keys = {s.name: atlas.state_keys(s, paper) for s in cells}
    ref = keys["reference"]
    assert set(ref) == {
        "baseline",
        "sweep",
        "regimens:long_chronic",
        "regimens:acute_moderate+regrown+consolidated",
        "arms:untreated",
        "arms:ketamine",
        "arms:ssri",
        "arms:neurosteroid",
        "study_b",
    }
    assert len(set(ref.values())) == len(ref)  # no two states share a key
    shared = {"baseline", "sweep", "arms:untreated", "arms:ssri", "arms:neurosteroid"}
    for s in cells[1:]:
        assert list(keys[s.name]) == list(ref), s.name
        same = {k for k in ref if keys[s.name][k] == ref[k]}
        want = shared if s.choice == "regrowth_init" else {"baseline"} if s.choice == "prune_scope" else set()
        assert same == want, (s.name, same)
    # a regimen group run in parts (a lower limit than the atlas's): one key per part
    width = next(s for s in cells if s.name == "width_x2")
    split = atlas.state_keys(width, paper, part_minutes=8)
    parts = ["regimens:long_chronic:1-5", "regimens:long_chronic:6-10"]
    assert list(split) == [p for k in ref for p in (parts if k == "regimens:long_chronic" else [k])]
    assert len(set(split.values())) == len(split) and not set(split.values()) & set(ref.values())
    # the two regrowth scales differ from each other where they differ from the reference
    a, b = keys["init_0.01"], keys["init_0.1"]
    assert {k for k in a if a[k] == b[k]} == shared


def test_tasks_assemble_the_one_task_cells(tiny_run, tmp_path, monkeypatch):
    """Split into tasks and assembled, every cell holds the rows, bit for bit, of the cell computed
    as one task with nothing cached (each in a cache of its own)."""
    for s in CELLS:
        monkeypatch.setenv("PRUNEPLAST_CACHE", str(tmp_path / s.name))
        one = atlas.cell(s, TINY, cache=False)
        pd.testing.assert_frame_equal(_numbers(one), _numbers(tiny_run[tiny_run.setting == s.name]))


def test_shared_states_computed_once_in_waves(tmp_path, monkeypatch):
    """The reference and a regrowth scale together: one baseline training, the arms that regrow
    nothing treated once, and every task after the tasks whose states it reads."""
    from pruneplast.atlas import protocol
    from pruneplast.protocols import base, treatments

    monkeypatch.setenv("PRUNEPLAST_CACHE", str(tmp_path / "cache"))
    trained, treats, kinds = [], [], []

    def spy(fn, log, pick):
        def wrapped(*args, **kw):
            log.append(pick(*args, **kw))
            return fn(*args, **kw)

        return wrapped

    monkeypatch.setattr(base, "train", spy(base.train, trained, lambda *a, **kw: kw.get("tag")))
    monkeypatch.setattr(treatments, "treat", spy(treatments.treat, treats, lambda d, data, cfgs, **kw: list(cfgs)))
    monkeypatch.setattr(protocol, "run_task", spy(protocol.run_task, kinds, lambda task, p: task.wave))
    # a clock that advances one second per reading: every task takes exactly one second
    monkeypatch.setattr(protocol, "time", types.SimpleNamespace(perf_counter=itertools.count().__next__))
    cells = [CELLS[0], CELLS[2]]
    df = atlas.run(cells, TINY, workers=1, progress=False)
    assert trained == ["baseline"]
    # at these durations the ketamine-like and neurosteroid-like courses train as one ensemble
    assert sorted(n for names in treats for n in names) == sorted(
        ["untreated", "ketamine", "neurosteroid", "ssri", "ketamine", "neurosteroid"]
    )
    assert kinds == sorted(kinds) and set(kinds) == {0, 1, 2}
    assert len(kinds) == len(atlas.tasks(cells, TINY)) == 1 + 1 + 2 + 3 + 1 + (2 + 1 + 1)
    # a shared task counts in the first cell that needs it: the regrowth scale's cell counts only
    # the tasks of its own, its critical path one task per wave
    times = df.groupby("setting", sort=False)[["cell_seconds", "longest_task_seconds", "path_seconds"]].first()
    own = len(atlas.tasks(cells, TINY)) - len(atlas.tasks(cells[:1], TINY))
    assert times.loc["reference", "cell_seconds"] == len(atlas.tasks(cells[:1], TINY))
    assert times.loc["init_0.1", "cell_seconds"] == own and 0 < own < times.loc["reference", "cell_seconds"]
    assert (times["longest_task_seconds"] == 1).all() and (times["path_seconds"] == 3).all()


def test_the_long_chronic_regimen_runs_in_parts_where_it_would_take_too_long():
    """At the studies' durations no regimen group is expected to take longer than a task may (the
    widest networks' long chronic regimen about 15 min); under a lower limit that regimen runs in
    parts of whole cycles, each a wave after the one before, the cycles weighed equally, and no
    regimen task is expected to take longer than the limit."""
    from pruneplast.atlas import protocol

    paper = atlas.Protocol()
    cells = atlas.settings()
    assert not [s.name for s in cells if any(len(p) > 1 for p in protocol.regimen_parts(s, paper).values())]
    width = next(s for s in cells if s.name == "width_x2")
    assert protocol.regimen_parts(width, paper)[("long_chronic",)] == [(0, 10)]
    assert protocol.regimen_parts(width, paper, part_minutes=8)[("long_chronic",)] == [(0, 5), (5, 10)]
    assert protocol.regimen_parts(width, paper, part_minutes=4)[("long_chronic",)] == [
        (0, 2), (2, 4), (4, 6), (6, 8), (8, 10)
    ]  # fmt: skip
    assert protocol.regimen_parts(width, paper, part_minutes=1e-9)[("long_chronic",)] == [(k, k + 1) for k in range(10)]
    per_cost = protocol.REGIMEN_SECONDS_PER_COST / 60
    for limit in (protocol.PART_MINUTES, 9):  # (the groups of one cycle take up to 8.7 min)
        for s in cells:
            for t in (t for t in atlas.tasks([s], paper, part_minutes=limit) if t.kind == "regimens"):
                assert t.cost * per_cost <= limit, (s.name, t.label, limit)
    chronic = [
        t for t in atlas.tasks([width], paper, part_minutes=8) if t.kind == "regimens" and t.names == ("long_chronic",)
    ]
    assert [(t.label, t.cycles, t.wave) for t in chronic] == [
        ("regimens:long_chronic:1-5", (0, 5), 1),
        ("regimens:long_chronic:6-10", (5, 10), 2),
    ]
    whole = next(t for t in atlas.tasks([width], paper, part_minutes=1e9) if t.label == "regimens:long_chronic")
    assert sum(t.cost for t in chronic) == pytest.approx(whole.cost) and whole.cycles is None
    for bad in (0, -1.0, float("nan"), "40"):
        with pytest.raises(ValueError, match="part_minutes must be"):
            atlas.tasks([width], paper, part_minutes=bad)


def test_a_part_without_the_state_before_it_computes_that_state(tiny_run, tmp_path, monkeypatch):
    """A part run where the previous part's state is not in the cache (a worker that does not share
    it) trains the cycles before itself, to the same bits, and caches the state for the next time."""
    from pruneplast.atlas import protocol

    monkeypatch.setenv("PRUNEPLAST_CACHE", str(tmp_path / "cache"))
    s = CELLS[0]
    whole = protocol._regimens(s, TINY, ("long_chronic",))
    states = tmp_path / "cache" / "atlas" / "states"
    assert not states.exists()
    second = protocol._regimens(s, TINY, ("long_chronic",), (1, 2))
    assert len(list(states.iterdir())) == 1  # the state after cycle 1
    want = whole[whole["cycle"] == 2].reset_index(drop=True)
    pd.testing.assert_frame_equal(second, want, check_exact=True)
    pd.testing.assert_frame_equal(protocol._regimens(s, TINY, ("long_chronic",), (1, 2)), want, check_exact=True)
