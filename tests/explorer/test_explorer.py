"""The explorer engine on a small network: validation, caching, what it measures, the widgets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import SMALL_NET

from pruneplast import explorer
from pruneplast.config import TaskConfig, TrainConfig
from pruneplast.data import EnsembleData
from pruneplast.network import EnsembleMLP
from pruneplast.operators import train

TASK = TaskConfig(n_train=640, n_standard=400, n_clean=200)
SEEDS = (0, 1)


@pytest.fixture(scope="module")
def start():
    data = EnsembleData.build(SEEDS, TASK)
    net = EnsembleMLP.init(SEEDS, SMALL_NET)
    train(net, data, TrainConfig(epochs=3, lr=3e-3), tag="baseline")
    return net, data


def make(start, **kw) -> explorer.Explorer:
    cfg = explorer.ExplorerConfig(seeds=SEEDS, train_subset=512, eval_samples=400, region_points=21, **kw)
    return explorer.Explorer(cfg, start=(start[0].clone(), start[1]))


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("sparsity", 0.995, "sparsity must be in"),
        ("regrow_method", "magic", "regrow_method must be one of"),
        ("regrow_fraction", -0.1, "regrow_fraction must be in"),
        ("consolidation_epochs", 2.5, "consolidation_epochs must be an integer"),
        ("sigma_int", 9.0, "sigma_int must be in"),
        ("input_sigma", float("nan"), "input_sigma must be a number"),
        ("treatment", "lithium", "treatment must be one of"),
        ("protection", 1.5, "protection must be in"),
    ],
)
def test_bad_knobs_name_the_parameter(field, value, match):
    with pytest.raises(ValueError, match=match):
        explorer.Knobs(**{field: value})


def test_bad_sizes_and_grids_raise():
    with pytest.raises(ValueError, match="train_subset"):
        explorer.ExplorerConfig(train_subset=10)
    with pytest.raises(ValueError, match="seeds"):
        explorer.ExplorerConfig(seeds=(1, 1))
    with pytest.raises(ValueError, match="grid treatments"):
        explorer.GridSpec(treatments=("ketamine", "placebo"))
    with pytest.raises(ValueError, match="must not repeat"):
        explorer.GridSpec(sparsities=(0.9, 0.9))


def test_compute_measures_every_test_stage_and_seed(start):
    ex = make(start)
    res = ex.compute(explorer.Knobs(consolidation_epochs=1))
    t = res.table
    stress = t[t.experiment == "stress"]
    assert set(stress.stage) == set(explorer.STAGES)
    for stage in explorer.STAGES:
        got = stress[stress.stage == stage]
        assert list(dict.fromkeys(got.condition)) == list(explorer.CONDITIONS)
        assert sorted(set(got.seed)) == list(SEEDS)
    assert ((stress.value >= 0) & (stress.value <= 100)).all()
    # tolerance points at the battery's SDs are those tests, the others evaluated separately
    tol = t[t.experiment == "tolerance"]
    assert sorted(set(tol.condition)) == sorted(f"sigma_{s:g}" for s in explorer.TOLERANCE_SIGMAS)
    for sigma, cond in explorer.TOLERANCE_FROM_STRESS.items():
        a = tol[(tol.condition == f"sigma_{sigma:g}")].sort_values(["stage", "seed"]).value.to_numpy()
        b = stress[stress.condition == cond].sort_values(["stage", "seed"]).value.to_numpy()
        np.testing.assert_array_equal(a, b)
    assert res.regions.shape == (21, 21) and res.pruned_regions.shape == (21, 21)
    assert set(np.unique(res.regions)) <= {0, 1, 2, 3}


def test_layer_sparsity_follows_pruning_and_regrowth_counts(start):
    ex = make(start)
    k = explorer.Knobs(sparsity=0.9, regrow_fraction=0.4, consolidation_epochs=0)
    res = ex.compute(k)
    pruned = ex.pruned(0.9)
    sizes = [m[0].numel() for m in pruned.masks]
    kept_pruned = pruned.kept_per_layer()  # (M, L)
    expected_kept = kept_pruned + torch.floor(0.4 * (torch.tensor(sizes) - kept_pruned) + 1e-9).long()
    got = res.net.kept_per_layer()
    assert (got == expected_kept).all()
    ls = res.table[(res.table.metric == "layer_sparsity") & (res.table.stage == "explored")]
    for (seed_idx, layer), v in zip(
        [(i, j) for i in range(len(SEEDS)) for j in range(len(sizes))], ls.sort_values(["seed", "condition"]).value
    ):
        assert math.isclose(v, 100 * (1 - int(got[seed_idx, layer]) / sizes[layer]), rel_tol=1e-9)


def test_states_are_cached_and_test_knobs_do_not_retrain(start):
    ex = make(start)
    k = explorer.Knobs(consolidation_epochs=1)
    a = ex.compute(k)
    assert ex.trainings == 1
    b = ex.compute(explorer.Knobs(consolidation_epochs=1, sigma_int=1.2, input_sigma=0.0, protection=0.7))
    assert ex.trainings == 1, "a change of test knobs retrained the network"
    c = ex.compute(explorer.Knobs(consolidation_epochs=1, treatment="ketamine"))
    assert ex.trainings == 2
    # same setting again: identical numbers
    again = ex.compute(k)
    np.testing.assert_array_equal(a.table.value.to_numpy(), again.table.value.to_numpy())

    # protection acts on the explored network only; references are untouched
    def stage(r, s):
        return r.table[
            (r.table.stage == s) & (r.table.condition == "standard") & (r.table.experiment == "stress")
        ].value.to_numpy()

    np.testing.assert_array_equal(stage(a, "baseline"), stage(b, "baseline"))
    assert float(c.net.gain[0]) == pytest.approx(1.25)


def test_same_setting_same_numbers_in_a_fresh_explorer(start):
    k = explorer.Knobs(regrow_method="random", regrow_fraction=0.3, consolidation_epochs=1, treatment="neurosteroid")
    a, b = make(start).compute(k), make(start).compute(k)
    np.testing.assert_array_equal(a.table.value.to_numpy(), b.table.value.to_numpy())
    assert bool(a.net.tanh.all())


def test_a_setting_is_computed_on_one_thread_with_the_numbers_of_two(start, monkeypatch):
    """Training and measuring run on engine.THREADS (1) whatever this process has, restored after;
    the same setting computed on two threads gives the same numbers, bit for bit."""
    from pruneplast import parallel
    from pruneplast.explorer import engine

    seen = []

    def counting_train(*args, **kw):
        seen.append(torch.get_num_threads())
        return train(*args, **kw)

    monkeypatch.setattr(engine, "train", counting_train)
    k = explorer.Knobs(consolidation_epochs=1)
    with parallel.threads(2):
        one = make(start).compute(k, regions=False)
        assert torch.get_num_threads() == 2
        monkeypatch.setattr(engine, "THREADS", 2)
        two = make(start).compute(k, regions=False)
    assert seen == [1, 2]
    np.testing.assert_array_equal(one.table.value.to_numpy(), two.table.value.to_numpy())
    for a, b in zip(one.net.weights, two.net.weights):
        assert torch.equal(a, b)


@pytest.mark.slow
def test_grid_figures_and_static_widgets(start):
    ex = make(start)
    spec = explorer.GridSpec(
        sparsities=(0.8, 0.9),
        regrow_fractions=(0.0, 0.5),
        treatments=("untreated", "ssri"),
        base=explorer.Knobs(consolidation_epochs=0),
    )
    grid = explorer.precompute_grid(ex, spec, dpi=30)
    assert len(grid.images) == len(spec) == 8
    assert all(b[:8] == b"\x89PNG\r\n\x1a\n" for b in grid.images.values())
    assert grid.nbytes == sum(len(b) for b in grid.images.values())
    assert "pruned to 90%, 50% gradient regrowth" in grid.captions[(1, 1, 0)]
    assert "SSRI-like: gain 1.6" in grid.captions[(0, 0, 1)]
    res = explorer.grid_results(grid)
    assert set(res.treatment) == {"untreated", "ssri"} and "stage" not in res
    assert {"experiment", "condition", "seed", "metric", "value"} <= set(res.columns)

    w = explorer.static_explorer(grid)
    controls, outer = w.children[0].children, w.children[1]
    s_ctl, f_ctl, t_ctl = controls
    assert len(outer.children) == 2 and all(len(c.children) == 2 for c in outer.children)
    leaves = [leaf for mid in outer.children for st in mid.children for leaf in st.children]
    assert len(leaves) == 8
    # every stack is linked to the control of its level, in the browser (jslink)
    links = w._links
    assert len(links) == 1 + 2 + 4
    assert links[0].source == (s_ctl, "index") and links[0].target == (outer, "selected_index")
    assert {id(lk.target[0]) for lk in links[1:3]} == {id(m) for m in outer.children}
    assert all(lk.source == (f_ctl, "index") for lk in links[1:3])
    assert all(lk.source == (t_ctl, "index") for lk in links[3:])
    # the leaf at (i, j, k) shows that point's figure
    leaf = outer.children[1].children[0].children[1]
    assert leaf.children[1].value == grid.images[(1, 0, 1)]


@pytest.mark.slow
def test_live_explorer_recomputes_on_change(start):
    ex = make(start)
    box = explorer.live_explorer(ex, explorer.Knobs(consolidation_epochs=0), dpi=30)
    assert box.status.value.count("result 1:") == 1
    first = box.image.value
    box.controls["treatment"].value = "ketamine"
    assert "result 2:" in box.status.value
    assert box.image.value != first
    box.controls["sparsity"].value = 0.5
    assert "result 3:" in box.status.value


@pytest.mark.parametrize("profile", ["paper", "quick"])
def test_the_explorer_page_reuses_chapter_5s_baselines(profile):
    """The explorer's page runs after chapter 5 (``Chapter.reuses``) because every baseline it
    trains is one chapter 5 has cached at the same profile (same seed, task, training, network)."""
    from pruneplast import chapters
    from pruneplast.config import BASELINE, ModelChoices, RunConfig
    from pruneplast.pages import CHOICE_PARAMETERS
    from pruneplast.protocols.base import baseline_paths

    assert chapters.chapter("explorer").reuses == ("05_treatments",)
    ex = chapters.profile_values("explorer", profile)
    run = RunConfig(seeds=tuple(ex["seeds"]), progress=False)  # as explorer.Explorer builds it
    explored = baseline_paths(run, TrainConfig(epochs=ex["baseline_epochs"], lr=BASELINE.lr))
    v = chapters.profile_values("05_treatments", profile)
    hidden, *rest = (v[k] for k in CHOICE_PARAMETERS)
    choices = ModelChoices(tuple(hidden), *rest)  # as pages.open_chapter builds them
    treated = baseline_paths(
        RunConfig(seeds=tuple(v["seeds"]), task=choices.task(v["data_sets"])),
        choices.train(v["baseline_epochs"], BASELINE.lr),
        choices.network,
    )
    assert set(explored.values()) <= set(treated.values())
