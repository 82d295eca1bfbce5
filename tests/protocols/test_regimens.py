"""Regrowth regimens (study A): the sparsity path, checkpoints and merged ensembles vs separate runs.

References: the per-layer integer recurrence of "40% of the still-missing weights" for the path,
and the protocol written out with the operators (regrow, train, one cycle at a time) for states.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import small_trained

from pruneplast.config import RegrowConfig, TaskConfig, TrainConfig
from pruneplast.data import EnsembleData
from pruneplast.network import EnsembleMLP
from pruneplast.operators import prune, regrow, train
from pruneplast.protocols import regimen_tables as T
from pruneplast.protocols import regimens as R

LAYER_SIZES = (1_024, 262_144, 131_072, 1_024)
KEPT_95 = (52, 13_108, 6_554, 52)
#: The study's sparsity path of the 40% cycles (% of weights).
PAPER_PATH = (95.0, 57.0, 34.2, 20.5, 12.3, 7.4, 4.4, 2.7, 1.6, 1.0, 0.6)
TASK = TaskConfig(n_train=1024, n_standard=600, n_clean=100)


@pytest.fixture(scope="module")
def small_start():
    """Two small replicas trained briefly, then pruned to 95%."""
    return small_trained(TASK, epochs=4)


def expected_path(cycles: int, fraction: float = 0.4) -> list[float]:
    """Weight sparsity (%) after each cycle from the published 95% counts, by integer recurrence."""
    pruned = [n - k for n, k in zip(LAYER_SIZES, KEPT_95)]
    out = [100 * sum(pruned) / sum(LAYER_SIZES)]
    for _ in range(cycles):
        pruned = [p - (max(1, math.floor(fraction * p + 1e-9)) if p else 0) for p in pruned]
        out.append(100 * sum(pruned) / sum(LAYER_SIZES))
    return out


@pytest.mark.slow
def test_sparsity_path_on_the_real_network(full_net):
    """95 -> 57.0 -> 34.2 -> 20.5 -> ... -> 0.6 per cycle; single 60% and 100% regrowth; relapse targets."""
    start = prune(full_net.clone(), 0.95)
    data = EnsembleData.build([0], TaskConfig(n_train=10, n_standard=100, n_clean=20))
    regs = [
        R.Regimen("long_chronic", 10, 0.4, 0),
        R.Regimen("acute_moderate", 1, 0.6, 0),
        R.Regimen("full_acute", 1, 1.0, 0),
    ]
    df = R.run(start, data, regs, conditions=["standard"], regrow_config=RegrowConfig(method="random"))
    path = T.sparsity_path(df).set_index(["schedule", "cycle"])["weight_sparsity"]
    ours = [path[("long_chronic", k)] for k in range(11)]
    np.testing.assert_allclose(ours, expected_path(10), atol=1e-9)
    assert [round(v, 1) for v in ours] == list(PAPER_PATH)
    fin = T.finals(df).set_index(["regimen", "phase", "metric"])
    sp = fin[fin.condition == "-"]["value"]
    assert round(sp[("acute_moderate", "pre_relapse", "weight_sparsity")], 1) == 38.0
    assert sp[("full_acute", "pre_relapse", "weight_sparsity")] == 0.0
    for name in ("pruned", "acute_moderate", "long_chronic", "full_acute"):
        s = sp[(name, "pre_relapse", "weight_sparsity")]
        target = min(s + 40 * (1 - s / 100), 99.0)
        assert sp[(name, "post_relapse", "weight_sparsity")] == pytest.approx(target, abs=0.01)
    # the study's post-relapse sparsities (62.8 acute moderate, 40.0 full acute, 40.3 long chronic)
    assert round(sp[("acute_moderate", "post_relapse", "weight_sparsity")], 1) == 62.8
    assert round(sp[("full_acute", "post_relapse", "weight_sparsity")], 1) == 40.0
    assert round(sp[("long_chronic", "post_relapse", "weight_sparsity")], 1) == 40.3


def test_gradient_regrowth_follows_the_same_path(full_net):
    start = prune(full_net.clone(), 0.95)
    data = EnsembleData.build([0], TaskConfig(n_train=256, n_standard=100, n_clean=20))
    df = R.run(start, data, [R.Regimen("chronic", 3, 0.4, 0)], conditions=["standard"])
    path = T.sparsity_path(df).set_index("cycle")["weight_sparsity"]
    np.testing.assert_allclose(path.to_numpy(), expected_path(3), atol=1e-9)


def _manual(start, data, cycles, fraction, epochs):
    """The regimen written out with the operators, one cycle at a time."""
    net = start.clone()
    for k in range(1, cycles + 1):
        regrow(net, data, RegrowConfig(fraction=fraction), tag=f"cycle{k}")
        train(net, data, TrainConfig(epochs=epochs, lr=5e-4), tag=f"cycle{k}")
    return net


def _assert_same_state(a: EnsembleMLP, b: EnsembleMLP):
    for wa, wb, ma, mb in zip(a.weights, b.weights, a.masks, b.masks):
        assert torch.equal(ma, mb)
        torch.testing.assert_close(wa, wb, rtol=0, atol=1e-6)


@pytest.mark.slow
def test_cycle_and_epoch_checkpoints_equal_separate_runs(small_start):
    start, data = small_start
    regs = [
        R.Regimen("long", 4, 0.4, 1),
        R.Regimen("short", 2, 0.4, 1),
        R.Regimen("acute", 1, 0.6, 1),
        R.Regimen("control", 1, 0.6, 3),
    ]
    groups = R.plan(regs)
    hosts = sorted(run.schedule.name for g in groups for run in g)
    assert hosts == ["control", "long"]
    df, states = R.run(start, data, regs, conditions=["standard", "combined"], keep_states=True)
    _assert_same_state(states["short"], _manual(start, data, 2, 0.4, 1))
    _assert_same_state(states["long"], _manual(start, data, 4, 0.4, 1))
    _assert_same_state(states["acute"], _manual(start, data, 1, 0.6, 1))
    _assert_same_state(states["control"], _manual(start, data, 1, 0.6, 3))
    # and a separate run of the short regimen alone gives the same results rows
    alone = R.run(start, data, [R.Regimen("short", 2, 0.4, 1)], conditions=["standard", "combined"])
    cols = ["phase", "condition", "metric", "seed"]
    a = T.finals(df)[T.finals(df).regimen == "short"].sort_values(cols)["value"].to_numpy()
    b = T.finals(alone)[T.finals(alone).regimen == "short"].sort_values(cols)["value"].to_numpy()
    np.testing.assert_allclose(a, b, atol=1e-6)
    # labels: total epochs and cycles at each regimen's end
    ends = T.finals(df).drop_duplicates("regimen").set_index("regimen")
    assert ends.loc["short", "cycle"] == 2 and ends.loc["short", "epochs"] == 2
    assert ends.loc["control", "epochs"] == 3 and ends.loc["acute", "epochs"] == 1
    assert ends.loc["pruned", "epochs"] == 0


def test_same_schedule_runs_share_one_ensemble_and_match_separate_runs(small_start):
    start, data = small_start
    regs = [R.Regimen("x", 2, 0.4, 1), R.Regimen("y", 2, 0.7, 1)]
    groups = R.plan(regs)
    assert len(groups) == 1 and len(groups[0]) == 2
    _, states = R.run(start, data, regs, conditions=["standard"], keep_states=True)
    for name, f in (("x", 0.4), ("y", 0.7)):
        _, alone = R.run(start, data, [R.Regimen(name, 2, f, 1)], conditions=["standard"], keep_states=True)
        _assert_same_state(states[name], alone[name])
        _assert_same_state(states[name], _manual(start, data, 2, f, 1))


def _assert_identical(a: EnsembleMLP, b: EnsembleMLP):
    assert a.meta == b.meta
    for name in ("weights", "biases", "masks"):
        for x, y in zip(getattr(a, name), getattr(b, name), strict=True):
            assert x.dtype == y.dtype and torch.equal(x, y), name
    assert all(torch.equal(x, y) for x, y in zip(a.modulation.state().values(), b.modulation.state().values()))


def test_a_run_split_by_cycles_equals_the_unsplit_run(small_start, tmp_path):
    """Cycles 1, then 2, then 3, each part resuming from the ensemble the previous one ended with
    (saved to a file and loaded back): the unsplit run's rows and states, bit for bit."""
    from pruneplast.protocols.base import load_state, save_state

    start, data = small_start
    before = start.clone()
    # one ensemble of two schedules, one with a checkpoint inside it
    regs = [R.Regimen("long", 3, 0.4, 1), R.Regimen("short", 2, 0.4, 1), R.Regimen("wide", 3, 0.7, 1)]
    kw = dict(conditions=["standard", "combined"], keep_states=True)
    whole, want = R.run(start, data, regs, **kw)
    frames, states, resume = [], {}, start
    for k, (first, last) in enumerate(((0, 1), (1, 2), (2, None))):
        df, got = R.run(resume, data, regs, start_cycle=first, end_cycle=last, **kw)
        frames.append(df)
        if last is not None:
            path = tmp_path / f"after{last}.pt"
            save_state(got.pop(R.RESUME).state_dict(), path)
            resume = EnsembleMLP.from_state_dict(load_state(path))
            assert resume.n_replicas == 2 * data.n_replicas
        else:
            assert R.RESUME not in got
        assert ("pruned" in got) == (k == 0)
        states.update(got)
    assert all(list(df.columns) == list(whole.columns) for df in frames)
    pd.testing.assert_frame_equal(pd.concat(frames, ignore_index=True), whole, check_exact=True)
    assert set(states) == set(want) == {"pruned", "long", "short", "wide"}
    for name in want:
        _assert_identical(states[name], want[name])
    _assert_identical(start, before)  # the start is left as it was
    # the pruned start's rows come once, from the first part; each part holds its own cycles
    assert list(frames[0]["cycle"].unique()) == [0, 1] and set(frames[2]["cycle"]) == {3}


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (dict(start_cycle=-1), r"start_cycle must be an integer >= 0; got -1"),
        (dict(start_cycle=3), r"start_cycle must be an integer \[0, 2\]; got 3"),
        (dict(end_cycle=4), r"end_cycle must be an integer \[1, 3\]; got 4"),
        (dict(start_cycle=1, end_cycle=1), r"end_cycle must be an integer \[2, 3\]; got 1"),
        (dict(start_cycle=1), r"start must be the training ensemble after cycle 1"),
        (dict(end_cycle=1, regimens=[R.Regimen("long", 3, 0.4, 1), R.Regimen("acute", 1, 0.6, 5)]),
         r"train as 2 ensembles: \[\['acute'\], \['long'\]\]"),
    ],
    ids=["start-negative", "start-past-last", "end-past-last", "end-not-after-start", "not-resumable", "two-ensembles"],
)  # fmt: skip
def test_a_split_that_cannot_resume_fails_before_any_work(small_start, kw, message, monkeypatch):
    start, data = small_start

    def fail(*args, **kw):
        raise AssertionError("work began")

    monkeypatch.setattr(R, "relapse_probe", fail)
    regs = kw.pop("regimens", [R.Regimen("long", 3, 0.4, 1)])
    with pytest.raises(ValueError, match=message):
        R.run(start, data, regs, conditions=["standard"], **kw)  # the pruned network is no resumable state


def test_study_plan_shares_cycles():
    groups = R.plan(R.study_regimens())
    runs = {run.schedule.name: dict((name, cp) for cp, name in run.checkpoints) for g in groups for run in g}
    assert runs == {
        "long_chronic": {"short_chronic": (3, 5), "moderate_chronic": (6, 5), "long_chronic": (10, 5)},
        "epochs_matched": {"acute_moderate": (1, 15), "epochs_matched": (1, 50)},
        "full_acute": {"full_acute": (1, 20)},
    }
    regs = {r.name: r for r in R.study_regimens()}
    assert regs["epochs_matched"].total_epochs == regs["long_chronic"].total_epochs == 50


@pytest.mark.parametrize(
    "bad,name",
    [
        (lambda: R.study_regimens(chronic_cycles=[3, 3, 10]), "chronic_cycles"),
        (lambda: R.study_regimens(chronic_cycles=[3, 6]), "chronic_cycles"),
        (lambda: R.study_regimens(chronic_cycles=[0, 6, 10]), "chronic_cycles[0]"),
        (lambda: R.Regimen("a", 1, 0.0, 5), "a.fraction"),
        (lambda: R.Regimen("a", 0, 0.4, 5), "a.cycles"),
        (lambda: R.Regimen("pruned", 1, 0.4, 5), "regimen name"),
        (lambda: R.plan([R.Regimen("a", 1, 0.4, 5), R.Regimen("a", 2, 0.4, 5)]), "distinct"),
        (lambda: R.plan([R.Regimen("a", 1, 0.4, 5), R.Regimen("b", 1, 0.4, 5)]), "same cycles"),
    ],
)
def test_bad_regimens_raise(bad, name):
    with pytest.raises(ValueError, match=name.replace("[", r"\[").replace("]", r"\]")):
        bad()


def test_paired_comparisons_are_per_seed_differences(small_start):
    start, data = small_start
    regs = [R.Regimen("long_chronic", 2, 0.4, 1), R.Regimen("acute_moderate", 1, 0.6, 1)]
    df = R.run(start, data, regs, conditions=["internal_extreme", "combined"])
    cmp = T.comparisons(df).set_index(["quantity", "comparison"])
    assert set(cmp.index.get_level_values("comparison")) == {"long_chronic - acute_moderate"}
    fin = T.finals(df)
    ext = fin[(fin.condition == "internal_extreme") & (fin.metric == "accuracy")].set_index(["regimen", "seed"])[
        "value"
    ]
    diff = (ext["long_chronic"] - ext["acute_moderate"]).mean()
    assert cmp.loc[("extreme accuracy", "long_chronic - acute_moderate"), "mean"] == pytest.approx(diff)


# --------------------------------------------------------------------------- scorecard claims A6-A8
def _synthetic(extreme: dict, drop: dict, sparsity: dict, seeds=(0, 1, 2, 3, 4)):
    """A chapter-4-shaped table of regimen end states (values per seed)."""
    import pandas as pd

    rows = []
    for name in extreme:
        lab = dict(
            experiment="regimens", schedule=name, cycle=10 if name == "long_chronic" else 1, epochs=50, regimen=name
        )
        for s, k in zip(seeds, range(len(seeds))):
            rows.append(
                dict(
                    lab,
                    phase="pre_relapse",
                    condition="internal_extreme",
                    metric="accuracy",
                    seed=s,
                    value=extreme[name][k],
                )
            )
            rows.append(
                dict(
                    lab, phase="post_relapse", condition="combined", metric="relapse_drop", seed=s, value=drop[name][k]
                )
            )
            rows.append(
                dict(lab, phase="pre_relapse", condition="-", metric="weight_sparsity", seed=s, value=sparsity[name])
            )
    return pd.DataFrame(rows)


def test_a6_a7_a8_rules():
    from pruneplast import scorecard

    jit = [-0.5, 0.0, 0.5, 0.2, -0.2]
    df = _synthetic(
        {
            "long_chronic": [93.8 + j for j in jit],
            "acute_moderate": [84.4 + j / 2 for j in jit],
            "full_acute": [82.2 - j for j in jit],
        },
        {
            "long_chronic": [-0.6 + j / 5 for j in jit],
            "acute_moderate": [-0.2] * 5,
            "full_acute": [-0.1 + j / 5 for j in jit],
        },
        {"long_chronic": 0.57, "acute_moderate": 38.0, "full_acute": 0.0},
    )
    assert scorecard.evaluate("A6_iterative_sparsity", df)["verdict"] == scorecard.REPRODUCED
    a7 = scorecard.evaluate("A7_iterative_extreme_gain", df)
    assert a7["verdict"] == scorecard.REPRODUCED and a7["mean"] == pytest.approx(9.4)
    assert scorecard.evaluate("A8_iterative_relapse", df)["verdict"] == scorecard.REPRODUCED
    # iterative ahead but by far less than the study, and losing more to the second wave: differs
    small = _synthetic(
        {
            "long_chronic": [86.0 + j for j in jit],
            "acute_moderate": [84.4 + j / 2 for j in jit],
            "full_acute": [84.0 - j for j in jit],
        },
        {"long_chronic": [3.0 + j for j in jit], "acute_moderate": [0.0] * 5, "full_acute": [0.0] * 5},
        {"long_chronic": 20.5, "acute_moderate": 38.0, "full_acute": 0.0},
    )
    assert scorecard.evaluate("A6_iterative_sparsity", small)["verdict"] == scorecard.DIFFERS
    a7 = scorecard.evaluate("A7_iterative_extreme_gain", small)  # ahead, but the study's 9.4 is outside
    assert a7["verdict"] == scorecard.DIFFERS and [t["holds"] for t in a7["tests"] if "holds" in t] == [True]
    a8 = scorecard.evaluate("A8_iterative_relapse", small)
    assert a8["verdict"] == scorecard.DIFFERS and [t["holds"] for t in a8["tests"] if "holds" in t] == [False]


@pytest.mark.parametrize(
    ("change", "names"),
    [
        ({"acute_fraction": 1.0, "acute_epochs": 2, "full_epochs": 2}, ("acute moderate", "full acute")),
        ({"acute_fraction": 0.4, "acute_epochs": 1, "chronic_epochs": 1, "chronic_cycles": [1, 2, 3]},
         ("acute moderate", "short chronic")),
        ({"acute_epochs": 3, "chronic_epochs": 1, "chronic_cycles": [1, 2, 3]}, ("acute moderate", "epochs-matched")),
    ],
)  # fmt: skip
def test_regimens_that_would_be_identical_fail_before_any_work_naming_the_parameters(change, names):
    """A combination the engine refuses ("the same experiment under two names") fails in the chapter's
    validation, which the command line and papermill both run, naming the parameters; the engine
    raises the same message."""
    from pruneplast import chapters

    values = {k: p.value("quick") for k, p in chapters.chapter("04_regimens").all_params.items()}
    values.update(change)
    with pytest.raises(ValueError) as exc:
        chapters.validate("04_regimens", values)
    msg = str(exc.value)
    assert all(n in msg for n in names) and all(f"{k}=" in msg for k in change)
    args = {k: values[k] for k in ("acute_fraction", "acute_epochs", "chronic_fraction", "chronic_epochs",
                                   "chronic_cycles", "full_epochs")}  # fmt: skip
    with pytest.raises(ValueError, match="the same experiment"):
        R.study_regimens(**args)


@pytest.mark.slow
def test_groups_in_worker_processes_equal_one_process_on_two_threads(full_net):
    """The training groups (independent ensembles) in one-thread worker processes give the rows and
    states, bit for bit, of the groups one after the other in this process on two threads."""
    from pruneplast import parallel

    start = prune(full_net.clone(), 0.95)
    data = EnsembleData.build([0], TaskConfig(n_train=256, n_standard=200, n_clean=100))
    regs = [R.Regimen("chronic", 2, 0.4, 1), R.Regimen("acute", 1, 0.6, 2), R.Regimen("full", 1, 1.0, 1)]
    assert len(R.plan(regs)) == 3
    kw = dict(conditions=["standard", "combined"], keep_states=True)
    with parallel.threads(2):
        here, here_states = R.run(start, data, regs, workers=1, **kw)
    side, side_states = R.run(start, data, regs, workers=2, **kw)
    pd.testing.assert_frame_equal(here, side, check_exact=True)
    assert list(here_states) == list(side_states)
    for name in here_states:
        for a, b in zip(
            here_states[name].weights + here_states[name].biases, side_states[name].weights + side_states[name].biases
        ):
            assert torch.equal(a, b)
