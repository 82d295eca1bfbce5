"""Study B treatments: the SSRI-like schedule, ketamine-like regrowth, neurosteroid-like on/off drug.

References are written with the engine's operators directly (a fresh network built from the same
tensors with default modulation; regrowth on a gain-1.0 copy; one treatment trained alone).
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import assert_same_ensemble, small_trained

from pruneplast.arms import Arm, arm
from pruneplast.config import RegrowConfig, TaskConfig
from pruneplast.network import EnsembleMLP
from pruneplast.operators import prune, regrow
from pruneplast.protocols import treatment_tables, treatments
from pruneplast.stress import evaluate

TASK = TaskConfig(n_train=512, n_standard=500, n_clean=100)


@pytest.fixture(scope="module")
def depressed():
    """Two small replicas trained briefly, then pruned to 95%."""
    net, data = small_trained(TASK, epochs=3)
    return net, data


def test_ssri_schedule_published_values():
    sigma, gain = treatments.course_schedule(arm("ssri"))
    assert sigma(0) == pytest.approx(0.5) and gain(0) == pytest.approx(1.0)
    assert sigma(50) == pytest.approx(0.5 * (1 - 50 / 99)) and gain(50) == pytest.approx(1 + 0.6 * 50 / 99)
    assert sigma(99) == pytest.approx(0.0, abs=1e-12) and gain(99) == pytest.approx(1.6)
    assert sigma(150) == 0.0 and gain(150) == pytest.approx(1.6)  # after the course


def test_ssri_schedule_compresses_to_a_shorter_course():
    sigma, gain = treatments.course_schedule(treatments.configs(["ssri"], epochs={"ssri": 5})["ssri"])
    assert [round(sigma(e), 6) for e in range(5)] == [0.5, 0.375, 0.25, 0.125, 0.0]
    assert gain(4) == pytest.approx(1.6)


def test_unknown_treatment_name_raises():
    with pytest.raises(ValueError, match="treatment"):
        treatments.configs(["lithium"])
    with pytest.raises(ValueError, match="epochs key"):
        treatments.configs(epochs={"lithium": 3})
    with pytest.raises(ValueError, match="treatment name"):
        Arm("Lithium!")
    with pytest.raises(ValueError, match="epochs"):
        treatments.configs(["ketamine"], epochs={"ketamine": -1})


def test_ketamine_sparsity_and_scores_at_unit_gain(full_net, score_data):
    pruned_net = prune(full_net.select([0, 0]), 0.95)
    pruned_net.meta[1]["seed"] = 1
    cfgs = treatments.configs(["ketamine"], epochs={"ketamine": 0})
    states = treatments.treat(pruned_net, score_data, cfgs)
    k = states["ketamine"]
    assert torch.allclose(100 * k.weight_sparsity(), torch.full((2,), 47.5, dtype=torch.float64), atol=0.01)
    assert torch.allclose(k.gain, torch.full((2,), 1.25))
    ref = pruned_net.clone()  # gain 1.0: the positions must be the same as at gain 1.25
    regrow(ref, score_data, RegrowConfig(fraction=0.5), tag="regrow")
    for a, b in zip(k.masks, ref.masks):
        assert torch.equal(a, b)


def test_joint_training_equals_each_treatment_alone(depressed):
    net, data = depressed
    cfgs = treatments.configs(["ketamine", "neurosteroid"], epochs={"ketamine": 2, "neurosteroid": 2})
    together = treatments.treat(net, data, cfgs)
    for name in cfgs:
        alone = treatments.treat(net, data, {name: cfgs[name]})[name]
        for a, b in zip(together[name].weights, alone.weights):
            assert torch.allclose(a, b, atol=1e-6)
        assert [d["treatment"] for d in together[name].meta] == [name, name]


#: The courses that the tests of worker processes and of a Dask cluster run: every arm, the
#: ketamine-like and the noisy SSRI-like ensembles split between the workers.
IN_WORKERS = dict(
    names=["untreated", "ketamine", "ssri", "neurosteroid"], epochs={"ketamine": 2, "ssri": 3, "neurosteroid": 1}
)


@pytest.fixture(scope="module")
def in_workers(depressed):
    """:data:`IN_WORKERS` in two local worker processes, run once for the tests that compare it.
    One thread here, as in the tests (module fixtures are set up before the one-thread fixture)."""
    from pruneplast import parallel

    net, data = depressed
    with parallel.threads(1):
        return treatments.treat(net, data, treatments.configs(**IN_WORKERS), workers=2)


@pytest.mark.slow
def test_courses_in_worker_processes_equal_one_process(depressed, in_workers):
    """Two workers (the ketamine-like and the noisy SSRI-like ensembles split) give the same states;
    bit for bit where each worker runs one thread, as the tests here do (two usable cores)."""
    from pruneplast import parallel

    net, data = depressed
    cfgs = treatments.configs(**IN_WORKERS)
    here = treatments.treat(net, data, cfgs, workers=1)
    side = in_workers
    assert list(here) == list(side)
    for name in cfgs:
        assert_same_ensemble(here[name], side[name])
        if parallel.usable_cores() == 2:
            for a, b in zip(here[name].weights + here[name].biases, side[name].weights + side[name].biases):
                assert torch.equal(a, b)
    assert any(not torch.equal(x, y) for x, y in zip(side["ssri"].weights, net.weights))


@pytest.mark.slow
def test_treated_baselines_train_in_worker_processes(monkeypatch):
    """treated() with two workers trains its baseline seeds in two worker processes (one seed
    each, on one share of the cores), bit for bit the baselines of one process on two threads, and its courses
    in worker processes, as treat() does; a lone missing seed trains here, on one share of the
    cores."""
    from pruneplast import parallel
    from pruneplast.config import NetworkConfig, RunConfig, TrainConfig
    from pruneplast.protocols import base

    run = RunConfig(seeds=(0, 1), task=TASK, progress=False)
    cfgs = treatments.configs(["ketamine", "ssri"], epochs={"ketamine": 1, "ssri": 2})
    threads, bases, jobs = [], [], []
    train, baseline, run_jobs = base.train, treatments.baseline, parallel.run_jobs

    def counted(*args, **kw):
        threads.append(torch.get_num_threads())
        return train(*args, **kw)

    def spied(fn, js, workers=1, **kw):
        jobs.append((fn.__name__, [j[0].seeds for j in js] if fn is base._train_baseline else len(js), workers))
        return run_jobs(fn, js, workers, **kw)

    monkeypatch.setattr(base, "train", counted)
    monkeypatch.setattr(parallel, "run_jobs", spied)
    monkeypatch.setattr(treatments, "baseline", lambda *a, **kw: bases.append(baseline(*a, **kw)) or bases[-1])
    kw = dict(baseline_config=TrainConfig(epochs=1), network=NetworkConfig((2, 24, 24, 12, 4)), cache=False)
    with parallel.threads(2):
        here, _ = treatments.treated(run, cfgs, workers=1, **kw)
        assert threads == [2] and not any(name == "_train_baseline" for name, *_ in jobs)
        side, _ = treatments.treated(run, cfgs, workers=2, **kw)
        assert torch.get_num_threads() == 2
    assert threads == [2]  # the second run's baselines trained in the worker processes
    assert ("_train_baseline", [[0], [1]], 2) in jobs
    _identical(bases[0][0], bases[1][0])
    assert list(here) == list(side) == list(cfgs)
    for name in cfgs:
        assert_same_ensemble(here[name], side[name])
    with parallel.threads(2):
        base.baseline(RunConfig(seeds=(0,), task=TASK, progress=False), kw["baseline_config"], kw["network"], False, 2)
    assert threads == [2, parallel.share(2)]


@pytest.mark.slow
def test_courses_on_a_dask_cluster_equal_local_worker_processes(depressed, in_workers, dask_scheduler):
    """The chapter's own parts sent to a separately started scheduler's two one-thread workers:
    the same states as from two local worker processes (the run the test above compares with
    one process)."""
    from pruneplast import parallel

    net, data = depressed
    cfgs = treatments.configs(**IN_WORKERS)
    side = in_workers
    there = treatments.treat(net, data, cfgs, workers=0, scheduler=dask_scheduler)  # 0: the cluster's 2 threads
    assert list(side) == list(there)
    for name in cfgs:
        assert_same_ensemble(side[name], there[name])
        if parallel.usable_cores() == 2:  # one thread per local process, as on the workers: the same bits
            for a, b in zip(side[name].weights, there[name].weights):
                assert torch.equal(a, b)


def test_ssri_ends_at_full_gain_with_mask_fixed(depressed):
    net, data = depressed
    s = treatments.treat(net, data, treatments.configs(["ssri"], epochs={"ssri": 2}))["ssri"]
    assert torch.allclose(s.gain, torch.full((2,), 1.6))
    for a, b in zip(s.masks, net.masks):
        assert torch.equal(a, b)
    assert any(not torch.equal(a, b) for a, b in zip(s.weights, net.weights))


def test_neurosteroid_off_drug_uses_the_same_weights(depressed):
    net, data = depressed
    states = treatments.treat(net, data, treatments.configs(["neurosteroid"], epochs={"neurosteroid": 1}))
    on = states["neurosteroid"]
    assert bool(on.tanh.all()) and torch.allclose(on.gain * on.damping, torch.full((2,), 0.595))
    df = treatments.evaluate_treatments(states, data)
    off = df[(df.experiment == "off_drug") & (df.metric == "accuracy")]
    assert set(off.drug) == {"off"}
    # reference: a plain network from the very same tensors, default modulation (ReLU, gain 1)
    plain = EnsembleMLP(
        weights=[w.clone() for w in on.weights],
        biases=[b.clone() for b in on.biases],
        masks=[m.clone() for m in on.masks],
        meta=[{"seed": s, "treatment": "neurosteroid"} for s in on.seeds],
    )
    ref = evaluate(plain, data, treatments.OFF_DRUG_CONDITIONS)
    got = off.sort_values(["condition", "seed"])["value"].to_numpy()
    want = ref.sort_values(["condition", "seed"])["value"].to_numpy()
    assert got.tolist() == pytest.approx(want.tolist())
    on_rows = df[(df.experiment == "efficacy") & (df.condition == "combined")]
    assert set(on_rows.drug) == {"on"}


@pytest.mark.slow
def test_evaluation_tables_cover_every_measure(depressed):
    net, data = depressed
    cfgs = treatments.configs(epochs={"ketamine": 1, "ssri": 1, "neurosteroid": 1})
    df = treatments.evaluate_treatments(treatments.treat(net, data, cfgs), data)
    from pruneplast import paper

    table = treatment_tables.comparison_table(df, paper.paper_results()["study_B"]["tables"])
    assert list(table.index) == [r[0] for r in treatment_tables.TABLE_ROWS]
    assert not table.isin(["—"]).drop(columns=["untreated, study"]).any().any()
    drop = df[(df.experiment == "acute_relapse") & (df.metric == "relapse_drop")]
    before = df[(df.experiment == "acute_relapse") & (df.metric == "accuracy_before")]
    after = df[(df.experiment == "acute_relapse") & (df.metric == "accuracy_after")]
    assert drop["value"].to_numpy() == pytest.approx(before["value"].to_numpy() - after["value"].to_numpy())
    sp = df[(df.experiment == "acute_relapse") & (df.metric == "sparsity_after")]
    assert all(math.isclose(v, 97.0, abs_tol=0.3) for v in sp[sp.treatment == "ssri"]["value"])


@pytest.mark.slow
def test_scorecard_claims_read_the_saved_results(depressed, tmp_path):
    from pruneplast import scorecard
    from pruneplast.results import load_results, save_results

    net, data = depressed
    cfgs = treatments.configs(epochs={"ketamine": 1, "ssri": 1, "neurosteroid": 1})
    df = treatments.evaluate_treatments(treatments.treat(net, data, cfgs), data)
    save_results(df, "05_treatments", "quick", {}, root=tmp_path)
    back = load_results("05_treatments", "quick", root=tmp_path)
    for cid in (
        "B1_ketamine_extreme",
        "B3_ketamine_sparsity",
        "B4_neurosteroid_combined",
        "B6_ssri_extreme",
        "B8_ssri_biased",
        "B9_ssri_gain",
        "B10_all_near_ceiling",
    ):
        assert scorecard.CLAIMS[cid].notebook == "05_treatments"
        r = scorecard.evaluate(cid, back)
        assert r["n"] == 2 and r["verdict"] in scorecard.VERDICT_ORDER, cid
    assert scorecard.evaluate("B3_ketamine_sparsity", back)["verdict"] == scorecard.REPRODUCED
    assert scorecard.evaluate("B9_ssri_gain", back)["verdict"] == scorecard.REPRODUCED


def test_treated_caches_each_group_of_arms(tmp_path, monkeypatch):
    """One cache file per group of arms trained together, keyed on what changes its states: another
    regrowth SD or decay rate retrains only the arms that regrow, and a mix of cached and fresh
    states equals, bit for bit, a call with nothing cached."""
    from pruneplast.config import NetworkConfig, RunConfig, TrainConfig

    monkeypatch.setenv("PRUNEPLAST_CACHE", str(tmp_path / "cache"))
    run, net, base = (
        RunConfig(seeds=(0, 1), task=TASK, progress=False),
        NetworkConfig((2, 24, 24, 12, 4)),
        TrainConfig(epochs=1),
    )
    arms = ["untreated", "ketamine", "ssri", "neurosteroid"]
    cfgs = treatments.configs(arms, epochs={"ketamine": 2, "ssri": 2, "neurosteroid": 1})
    assert treatments.course_groups(cfgs) == [("untreated",), ("ketamine",), ("ssri",), ("neurosteroid",)]
    together = treatments.configs(arms, epochs={"ketamine": 1, "ssri": 2, "neurosteroid": 1})
    assert treatments.course_groups(together) == [("untreated",), ("ketamine", "neurosteroid"), ("ssri",)]
    other = treatments.configs(
        arms, epochs={"ketamine": 2, "ssri": 2, "neurosteroid": 1}, regrow_init_std=0.1, decay_rates={"ssri": 0.01}
    )
    first = treatments.treated(run, cfgs, base, network=net)
    paths, again = (treatments.treated_paths(run, c, base, network=net) for c in (cfgs, other))
    assert {g[0] for g in paths if paths[g] == again[g]} == {"untreated", "ssri", "neurosteroid"}
    assert all(p.exists() for p in paths.values())
    trained = []
    real = treatments.treat
    monkeypatch.setattr(treatments, "treat", lambda d, data, c, **kw: trained.extend(c) or real(d, data, c, **kw))
    mixed, _ = treatments.treated(run, other, base, network=net)
    assert trained == ["ketamine"]
    for name in ("untreated", "ssri", "neurosteroid"):
        _identical(mixed[name], first[0][name])
    monkeypatch.setenv("PRUNEPLAST_CACHE", str(tmp_path / "fresh"))
    fresh, _ = treatments.treated(run, other, base, network=net)
    assert list(mixed) == list(fresh) == arms
    for name in arms:
        _identical(mixed[name], fresh[name])


def _identical(a: EnsembleMLP, b: EnsembleMLP) -> None:
    """The same replicas, bit for bit: every tensor of the state dicts equal, the same meta."""
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["meta"] == sb["meta"] and set(sa) == set(sb)
    for k in sa:
        if k != "meta":
            xs, ys = (v if isinstance(v, list) else [v] for v in (sa[k], sb[k]))
            assert len(xs) == len(ys) and all(torch.equal(x, y) for x, y in zip(xs, ys)), k
