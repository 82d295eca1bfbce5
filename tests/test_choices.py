"""The choices the atlas changes, as chapter parameters: defaults are the studies', bad values fail
early, and each choice reaches the engine (pruning scope, regrowth SD, learning rates, network)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from conftest import small_trained

from pruneplast.config import (
    BASELINE,
    ModelChoices,
    NetworkConfig,
    PruneConfig,
    RegrowConfig,
    TaskConfig,
    TrainConfig,
)
from pruneplast.operators import regrow
from pruneplast.protocols import cliff, consolidation, treatments

TASK = TaskConfig(n_train=512, n_standard=300, n_clean=100)


def test_the_defaults_are_the_studies_choices():
    c = ModelChoices()
    assert c.network == NetworkConfig()
    assert c.task("shared") == TaskConfig(data_sets="shared")
    assert c.prune(0.95) == PruneConfig()
    assert c.train(BASELINE.epochs, BASELINE.lr) == BASELINE
    assert c.regrow_init_std == RegrowConfig().init_std
    assert c.regrow(0.5) == RegrowConfig()  # gradient-guided, the studies' SD
    assert ModelChoices([64, 32]).network.sizes == (2, 64, 32, 4)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"hidden": ()}, "hidden must be a non-empty list"),
        ({"hidden": (64, 0)}, r"sizes\[2\]"),
        ({"task_sigma": -1.0}, "sigma"),
        ({"prune_scope": "row"}, "scope"),
        ({"lr_factor": 0.0}, "lr_factor"),
        ({"regrow_init_std": -0.1}, "init_std"),
    ],
)
def test_bad_choices_fail_naming_the_parameter(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ModelChoices(**kwargs)


@pytest.fixture(scope="module")
def trained():
    return small_trained(TASK, epochs=2, sparsity=None)


def test_the_sweep_prunes_with_the_scope_it_is_given(trained):
    net, data = trained
    per_layer = cliff.sparsity_sweep(net, data, [0.9], conditions=("clean",))
    overall = cliff.sparsity_sweep(net, data, [0.9], conditions=("clean",), scope="global")

    def kept(df):
        return df[df.metric == "kept_weights"].value.tolist()

    def sparsity(df):
        return df[df.metric == "weight_sparsity"].value.tolist()

    assert sparsity(per_layer) == pytest.approx(sparsity(overall), abs=0.5)  # both about 90% overall
    assert kept(per_layer) != kept(overall)  # one threshold over all weights keeps other layers' weights
    with pytest.raises(ValueError, match="scope"):
        cliff.sparsity_sweep(net, data, [0.9], scope="row")


def test_regrown_weights_have_the_sd_they_are_given(trained):
    net, data = trained
    start = net.clone()
    from pruneplast.operators import prune

    start = prune(start, 0.95)
    small, wide = (
        consolidation.duration_curve(
            start,
            data,
            ModelChoices(regrow_init_std=sd).regrow(0.5),
            TrainConfig(epochs=0, lr=5e-4),
            checkpoints=[0],
            conditions=("clean",),
        )
        for sd in (0.03, 0.3)
    )
    assert not small.equals(wide)
    a, b = start.clone(), start.clone()
    regrow(a, data, RegrowConfig(fraction=0.5), tag="regrow")
    regrow(b, data, RegrowConfig(fraction=0.5, init_std=0.3), tag="regrow")
    new = a.masks[0] & ~start.masks[0]
    ratio = float(b.weights[0][new].std() / a.weights[0][new].std())
    assert 5 < ratio < 20  # 0.3 / 0.03 = 10


def test_treatment_arms_take_the_learning_rate_factor_and_regrowth_sd():
    base = treatments.configs()
    scaled = treatments.configs(lr_factor=2.0, regrow_init_std=0.1)
    for name in base:
        assert scaled[name].lr == pytest.approx(2.0 * base[name].lr)
        # the regrowing arms regrow with the SD given; the others regrow nothing and stay as they were
        want = dataclasses.replace(base[name].regrow, init_std=0.1) if base[name].regrows else base[name].regrow
        assert scaled[name].regrow == want
    assert [n for n in base if base[n].regrows] == ["ketamine"]
    assert treatments.configs(regrow_fraction=0.0)["ketamine"].regrows is False
    with pytest.raises(ValueError, match="init_std"):
        treatments.configs(["ssri"], regrow_init_std=-1.0)  # checked even where no arm regrows
    assert treatments.configs(lr_factor=1.0) == base
    with pytest.raises(ValueError, match="lr_factor"):
        treatments.configs(lr_factor=-1.0)
    assert torch.get_num_threads() == 1
