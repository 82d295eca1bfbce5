"""Study B longitudinal relapse: protection at test, checkpoints of one maintenance run, relapse.

The reference for a checkpoint is a separate, shorter maintenance run; the reference for the
discontinuation test is a network rebuilt from the same tensors with default modulation and the
protection set by hand.
"""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from conftest import assert_same_ensemble, small_trained

from pruneplast.config import MaintenanceConfig, TaskConfig
from pruneplast.network import EnsembleMLP
from pruneplast.protocols import longitudinal, longitudinal_tables, treatments
from pruneplast.stress import accuracy

TASK = TaskConfig(n_train=512, n_standard=500, n_clean=100)


@pytest.fixture(scope="module")
def treated():
    net, data = small_trained(TASK, epochs=3)
    cfgs = treatments.configs(
        ["untreated", "ketamine", "ssri", "neurosteroid"], epochs={"ketamine": 1, "ssri": 1, "neurosteroid": 1}
    )
    return treatments.treat(net, data, cfgs), data, cfgs


def test_protection_at_test_published_rates():
    got = [longitudinal.protection_at_test(r, 50) for r in (0.002, 0.015, 0.008)]
    assert got == pytest.approx([0.90, 0.25, 0.60])


def test_protection_is_a_linear_decrement_floored_at_zero():
    for rate in (0.002, 0.015, 0.03, 0.5):
        p = 1.0
        for _ in range(50):
            p = max(0.0, p - rate)
        assert longitudinal.protection_at_test(rate, 50) == pytest.approx(p, abs=1e-12)
    assert longitudinal.protection_at_test(0.03, 50) == 0.0
    with pytest.raises(ValueError, match="decay_rate"):
        longitudinal.protection_at_test(1.5)


def test_checkpoint_equals_a_separate_shorter_run(treated):
    states, data, _ = treated
    cfg = MaintenanceConfig(durations=(2, 4), lr=1e-3)  # a visible lr, so epochs matter
    long_run, _ = longitudinal.maintain(states, data, cfg)
    short_run, _ = longitudinal.maintain(states, data, MaintenanceConfig(durations=(2,), lr=1e-3))
    for a, b in zip(long_run[2].weights, short_run[2].weights):
        assert torch.allclose(a, b, atol=1e-6)
    assert any(not torch.allclose(a, b) for a, b in zip(long_run[2].weights, long_run[4].weights))
    assert sorted(long_run) == [2, 4]
    # maintenance keeps drug and protection on, and the masks fixed
    assert torch.all(long_run[4].protection == 1.0)
    assert [d["treatment"] for d in long_run[4].meta] == ["ketamine"] * 2 + ["ssri"] * 2 + ["neurosteroid"] * 2
    start, _ = treatments.joint({n: states[n] for n in ("ketamine", "ssri", "neurosteroid")}, data)
    for a, b in zip(long_run[4].masks, start.masks):
        assert torch.equal(a, b)


def test_per_treatment_maintenance_equals_one_joint_ensemble(treated):
    """Training each treatment's replicas separately gives what one mixed ensemble gives."""
    from pruneplast.config import TrainConfig
    from pruneplast.operators import train

    states, data, _ = treated
    cfg = MaintenanceConfig(durations=(1, 2), lr=1e-3)
    ck, d = longitudinal.maintain(states, data, cfg)
    net, dj = treatments.joint({n: states[n] for n in ("ketamine", "ssri", "neurosteroid")}, data)
    net.set_modulation(protection=1.0)
    train(net, dj, TrainConfig(epochs=2, lr=1e-3), tag="maintenance")
    assert d.seeds == dj.seeds
    for a, b in zip(ck[2].weights, net.weights):
        assert torch.allclose(a, b, atol=1e-6)
    for name in ("gain", "damping", "tanh", "protection"):
        assert torch.equal(getattr(ck[2], name), getattr(net, name))
    assert [m["treatment"] for m in ck[2].meta] == [m["treatment"] for m in net.meta]


#: The maintenance that the tests of worker processes and of a Dask cluster run (lr 1e-3: the
#: weights move, so a difference between executors would show).
IN_WORKERS = MaintenanceConfig(durations=(1, 3), lr=1e-3)


@pytest.fixture(scope="module")
def in_workers(treated):
    """:data:`IN_WORKERS` in two local worker processes, run once for the tests that compare it:
    (checkpoints, data). One thread here, as in the tests (module fixtures are set up before the
    one-thread fixture)."""
    from pruneplast import parallel

    states, data, _ = treated
    with parallel.threads(1):
        return longitudinal.maintain(states, data, IN_WORKERS, workers=2)


@pytest.mark.slow
def test_maintenance_in_worker_processes_equals_one_process(treated, in_workers):
    """Two worker processes (the ketamine-like ensemble split between them, and the 95%-sparse ones
    on the compiled step) give the same checkpoints; bit for bit where each worker runs one thread,
    as the tests here do (two usable cores): a replica's sums do not depend on the replicas trained
    beside it."""
    from pruneplast import parallel

    states, data, _ = treated
    here, d1 = longitudinal.maintain(states, data, IN_WORKERS, workers=1)
    side, d2 = in_workers
    assert sorted(here) == sorted(side) == [1, 3]
    assert d1.seeds == d2.seeds
    for e in (1, 3):
        assert_same_ensemble(here[e], side[e])
        if parallel.usable_cores() == 2:
            for a, b in zip(here[e].weights + here[e].biases, side[e].weights + side[e].biases):
                assert torch.equal(a, b)
    assert any(not torch.allclose(x, y) for x, y in zip(side[1].weights, side[3].weights))


@pytest.mark.slow
def test_maintenance_on_a_dask_cluster_equals_local_worker_processes(treated, in_workers, dask_scheduler):
    """Checkpoints come back in memory from a separately started scheduler's workers, the same
    as from two local worker processes (the run the test above compares with one process)."""
    from pruneplast import parallel

    states, data, _ = treated
    side, _ = in_workers
    there, _ = longitudinal.maintain(states, data, IN_WORKERS, workers=2, scheduler=dask_scheduler)
    assert sorted(side) == sorted(there) == [1, 3]
    for e in (1, 3):
        assert_same_ensemble(side[e], there[e])
        if parallel.usable_cores() == 2:
            for a, b in zip(side[e].weights, there[e].weights):
                assert torch.equal(a, b)


def test_only_ensembles_that_split_well_are_split_between_workers(treated, monkeypatch):
    from pruneplast import parallel
    from pruneplast.kernels import fused

    states, _, _ = treated
    assert parallel.splits_well(states["ketamine"], noisy=False)  # 47.5% sparse: dense products
    # 95% sparse: each replica's own pass on the compiled step, mostly per-step work without it
    assert parallel.splits_well(states["ssri"], noisy=False) == fused.active()
    monkeypatch.setenv(fused.ENV, "0")
    assert not parallel.splits_well(states["ssri"], noisy=False)
    assert parallel.splits_well(states["ssri"], noisy=True)  # noise drawn replica by replica
    with pytest.raises(ValueError, match="workers"):
        longitudinal.maintain(states, None, MaintenanceConfig(durations=(1,)), workers=-1)


def test_discontinuation_resets_drug_and_uses_each_treatments_protection(treated):
    states, data, cfgs = treated
    cfg = MaintenanceConfig(durations=(1,))
    ck, d = longitudinal.maintain(states, data, cfg)
    df = longitudinal.biased_after_discontinuation({1: ck[1]}, d, cfgs, cfg)
    prot = df.groupby("treatment")["protection"].first().to_dict()
    assert prot == pytest.approx({"ketamine": 0.90, "ssri": 0.25, "neurosteroid": 0.60})
    net = ck[1]
    plain = EnsembleMLP(
        weights=[w.clone() for w in net.weights],
        biases=[b.clone() for b in net.biases],
        masks=[m.clone() for m in net.masks],
        meta=[dict(m) for m in net.meta],
    )
    plain.set_modulation(protection=[0.9, 0.9, 0.25, 0.25, 0.6, 0.6])
    want = accuracy(plain, d, "biased")
    assert df["value"].tolist() == pytest.approx(want.tolist())


def test_relapse_probability_is_relapses_over_durations():
    acc = pd.DataFrame(
        {
            "treatment": "ssri",
            "seed": [0] * 6 + [1] * 6,
            "duration": list(range(6)) * 2,
            "protection": 0.25,
            "drug": "off",
            "condition": "biased",
            "metric": "accuracy",
            "value": [50, 70, 59.9, 60, 61, 10] + [80] * 6,
        }
    )
    prob = longitudinal.relapse_probability(longitudinal.relapses(acc, [60.0]))
    assert prob.set_index("seed")["value"].to_dict() == pytest.approx({0: 300 / 6, 1: 0.0})
    prob50 = longitudinal.relapse_probability(longitudinal.relapses(acc, [50.0]))
    assert prob50.set_index("seed")["value"].to_dict() == pytest.approx({0: 100 / 6, 1: 0.0})


def test_longitudinal_rows_and_sensitivity(treated):
    states, data, cfgs = treated
    cfg = MaintenanceConfig(durations=(1, 2))
    df, ck = longitudinal.longitudinal(states, data, cfgs, cfg, protections=[0.0, 0.6, 1.0], thresholds=[50, 70])
    assert sorted(ck) == [1, 2]
    rel = df[(df.experiment == "relapse") & (df.metric == "relapse_probability")]
    assert len(rel) == 3 * 2 and set(rel.threshold) == {60.0}
    sens = longitudinal_tables.sensitivity_curves(df, "protection", 50)
    assert set(sens.threshold) == {50.0} and set(sens.protection) == {0.0, 0.6, 1.0}
    thr = longitudinal_tables.sensitivity_curves(df, "threshold")
    assert set(thr.threshold) == {50.0, 60.0, 70.0}
    at60 = thr[thr.threshold == 60.0].sort_values(["treatment", "seed"])["value"].to_numpy()
    assert at60 == pytest.approx(rel.sort_values(["treatment", "seed"])["value"].to_numpy())
    # the sensitivity re-evaluation at a treatment's own protection reproduces the main result
    own = df[(df.experiment == "relapse") & (df.metric == "accuracy") & (df.treatment == "neurosteroid")]
    again = df[
        (df.experiment == "sensitivity")
        & (df.metric == "accuracy")
        & (df.treatment == "neurosteroid")
        & (df.protection == 0.6)
    ]
    assert sorted(own["value"]) == pytest.approx(sorted(again["value"]))
    with pytest.raises(ValueError, match="protections"):
        longitudinal.longitudinal(states, data, cfgs, cfg, protections=[1.5])


@pytest.mark.slow
def test_scorecard_claims_read_the_saved_results(treated, tmp_path):
    from pruneplast import scorecard
    from pruneplast.results import load_results, save_results

    states, data, cfgs = treated
    df, _ = longitudinal.longitudinal(
        states, data, cfgs, MaintenanceConfig(durations=(1, 2)), protections=[0.0, 1.0], thresholds=[60]
    )
    save_results(df, "06_longitudinal_relapse", "quick", {}, root=tmp_path)
    back = load_results("06_longitudinal_relapse", "quick", root=tmp_path)
    for cid in (
        "B2_ketamine_no_manic_relapse",
        "B5_neurosteroid_relapse",
        "B7_ssri_relapse",
        "B11_maintenance_negligible",
    ):
        assert scorecard.CLAIMS[cid].notebook == "06_longitudinal_relapse"
        r = scorecard.evaluate(cid, back)
        assert r["n"] == 2 and r["verdict"] in scorecard.VERDICT_ORDER, cid
    want = df[(df.experiment == "relapse") & (df.metric == "relapse_probability") & (df.treatment == "ssri")]
    assert scorecard.evaluate("B7_ssri_relapse", back)["mean"] == pytest.approx(want["value"].mean())
