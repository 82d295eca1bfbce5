"""Configuration: defaults are the studies' values; bad values fail early and clearly.

Every invalid value must raise ``ValueError`` whose message names the parameter and states the
allowed range or choices.
"""

from __future__ import annotations

import dataclasses
import re

import pytest

from pruneplast import chapters
from pruneplast.arms import Arm, arm
from pruneplast.config import (
    BASELINE,
    CONSOLIDATION,
    MaintenanceConfig,
    NetworkConfig,
    PruneConfig,
    RegrowConfig,
    RelapseConfig,
    RunConfig,
    TaskConfig,
    TrainConfig,
)
from pruneplast.data import EnsembleData
from pruneplast.network import EnsembleMLP
from pruneplast.operators import prune
from pruneplast.stress import accuracy


def raises_naming(fn, name: str, allowed: str):
    """``fn()`` raises ValueError whose message names ``name`` and contains ``allowed``."""
    with pytest.raises(ValueError) as info:
        fn()
    msg = str(info.value)
    assert re.search(rf"(?<!\w){re.escape(name)}(?!\w)", msg), f"{name!r} not named in: {msg}"
    assert allowed in msg, f"allowed range {allowed!r} not stated in: {msg}"
    return msg


# (description, callable, parameter named, allowed range or choices stated)
CASES = [
    ("sparsity 1.5", lambda: PruneConfig(sparsity=1.5), "sparsity", "[0.0, 1.0)"),
    ("sparsity -0.2", lambda: PruneConfig(sparsity=-0.2), "sparsity", "[0.0, 1.0)"),
    ("sparsity 1.0", lambda: PruneConfig(sparsity=1.0), "sparsity", "[0.0, 1.0)"),
    ("sparsity nan", lambda: PruneConfig(sparsity=float("nan")), "sparsity", "[0.0, 1.0)"),
    ("sparsity string", lambda: PruneConfig(sparsity="0.95"), "sparsity", "[0.0, 1.0)"),
    ("unknown scope", lambda: PruneConfig(scope="network"), "scope", "'layer', 'global'"),
    ("fraction -0.1", lambda: RegrowConfig(fraction=-0.1), "fraction", "[0.0, 1.0]"),
    ("fraction 1.1", lambda: RegrowConfig(fraction=1.1), "fraction", "[0.0, 1.0]"),
    ("fraction True", lambda: RegrowConfig(fraction=True), "fraction", "[0.0, 1.0]"),
    ("unknown method", lambda: RegrowConfig(method="magnitude"), "method", "'gradient', 'random'"),
    ("0 score batches", lambda: RegrowConfig(score_batches=0), "score_batches", ">= 1"),
    ("relapse fraction", lambda: RelapseConfig(fraction=-0.1), "fraction", "[0.0, 1.0]"),
    ("relapse cap", lambda: RelapseConfig(max_sparsity=1.0), "max_sparsity", "[0.0, 1.0)"),
    ("0 seeds", lambda: RunConfig(seeds=[]), "seeds", "at least 1"),
    ("negative seed", lambda: RunConfig(seeds=[0, -1]), "seeds[1]", "[0, 4294966]"),
    ("float seed", lambda: RunConfig(seeds=[1.5]), "seeds[0]", "[0, 4294966]"),
    ("bool seed", lambda: RunConfig(seeds=[True]), "seeds[0]", "[0, 4294966]"),
    ("seeds as int", lambda: RunConfig(seeds=3), "seeds", "non-empty list of distinct integers >= 0"),
    ("seeds as str", lambda: RunConfig(seeds="0,1"), "seeds", "non-empty list of distinct integers >= 0"),
    ("repeated seed", lambda: RunConfig(seeds=[1, 1]), "seeds", "must not repeat"),
    ("unknown device", lambda: RunConfig(device="tpu"), "device", "'cpu' or 'cuda'"),
    ("progress str", lambda: RunConfig(progress="yes"), "progress", "True, False or None"),
    ("eval_batch 0", lambda: RunConfig(eval_batch=0), "eval_batch", ">= 1"),
    ("unknown activation", lambda: Arm("ketamine", activation="sigmoid"), "activation", "'relu', 'tanh'"),
    (
        "bad treatment name",
        lambda: Arm("Prozac 20"),
        "treatment name",
        "lower-case letters, digits and '_'",
    ),
    ("bad arm colour", lambda: Arm("lithium", colour="blue"), "colour", "'#RRGGBB'"),
    ("off_drug not a bool", lambda: Arm("lithium", off_drug=1), "off_drug", "True or False"),
    (
        "unknown treatment by name",
        lambda: arm("lithium"),
        "treatment",
        "'untreated', 'ketamine', 'ssri', 'neurosteroid'",
    ),
    ("gain 0", lambda: Arm("ketamine", gain=0.0), "gain", "(0.0, 10.0]"),
    ("treatment epochs -1", lambda: Arm("ssri", epochs=-1), "epochs", ">= 0"),
    ("decay 2", lambda: Arm("ssri", decay_rate=2.0), "decay_rate", "[0.0, 1.0]"),
    ("arm regrowth as a bare fraction", lambda: Arm("lithium", regrow=0.5), "regrow", "must be a RegrowConfig"),
    ("epochs 2.5", lambda: TrainConfig(epochs=2.5), "epochs", "integer >= 0"),
    ("epochs 10.0", lambda: TrainConfig(epochs=10.0), "epochs", "integer >= 0"),
    ("epochs -1", lambda: TrainConfig(epochs=-1), "epochs", "integer >= 0"),
    ("epochs '10'", lambda: TrainConfig(epochs="10"), "epochs", "integer >= 0"),
    ("epochs True", lambda: TrainConfig(epochs=True), "epochs", "integer >= 0"),
    ("epochs None", lambda: TrainConfig(epochs=None), "epochs", "integer >= 0"),
    ("lr 0", lambda: TrainConfig(lr=0.0), "lr", "(0.0, 1.0]"),
    ("lr string", lambda: TrainConfig(lr="1e-3"), "lr", "(0.0, 1.0]"),
    ("batch 0", lambda: TrainConfig(batch_size=0), "batch_size", ">= 1"),
    ("n_train 0", lambda: TaskConfig(n_train=0), "n_train", ">= 1"),
    ("n_train bool", lambda: TaskConfig(n_train=True), "n_train", ">= 1"),
    ("sigma -1", lambda: TaskConfig(sigma=-1.0), "sigma", "[0.0, 100.0]"),
    ("layer width 0", lambda: NetworkConfig(sizes=(2, 0, 4)), "sizes[1]", ">= 1"),
    ("durations", lambda: MaintenanceConfig(durations=[25, -5]), "durations[1]", ">= 1"),
    ("durations empty", lambda: MaintenanceConfig(durations=[]), "durations", "non-empty"),
    ("protection 1.5", lambda: MaintenanceConfig(protection=1.5), "protection", "[0.0, 1.0]"),
    ("threshold 101", lambda: MaintenanceConfig(threshold=101.0), "threshold", "[0.0, 100.0]"),
]


@pytest.mark.parametrize("desc,fn,name,allowed", CASES, ids=[c[0] for c in CASES])
def test_invalid_configuration_raises_naming_parameter_and_range(desc, fn, name, allowed):
    raises_naming(fn, name, allowed)


def test_defaults_are_the_studies_values():
    assert TaskConfig() == TaskConfig(n_train=12_000, n_standard=4_000, n_clean=2_000, sigma=0.8, centre=3.0)
    assert NetworkConfig().sizes == (2, 512, 512, 256, 4)
    assert NetworkConfig().n_weights == 395_264 and NetworkConfig().n_biases == 1_284
    assert (BASELINE.epochs, BASELINE.lr, BASELINE.batch_size) == (20, 1e-3, 128)
    assert (CONSOLIDATION.epochs, CONSOLIDATION.lr) == (15, 5e-4)
    assert PruneConfig() == PruneConfig(sparsity=0.95, scope="layer")
    assert RegrowConfig() == RegrowConfig(fraction=0.5, method="gradient", score_batches=30, init_std=0.03)
    assert RelapseConfig() == RelapseConfig(fraction=0.4, max_sparsity=0.99)
    assert RunConfig().seeds == tuple(range(10)) and RunConfig().device == "cpu"
    k, s, n = arm("ketamine"), arm("ssri"), arm("neurosteroid")
    assert (k.gain, k.regrow.fraction, k.epochs, k.lr) == (1.25, 0.5, 15, 5e-4)
    assert (s.gain, s.gain_start, s.noise_start, s.epochs, s.lr) == (1.6, 1.0, 0.5, 100, 1e-5)
    assert (n.activation, n.damping, n.gain, n.epochs, n.lr) == ("tanh", 0.7, 0.85, 10, 5e-4)
    assert n.scale == pytest.approx(0.595)
    assert (k.decay_rate, s.decay_rate, n.decay_rate) == (0.002, 0.015, 0.008)
    m = MaintenanceConfig()
    assert m.durations == (25, 50, 100, 150, 200, 300)
    assert (m.lr, m.protection, m.decay_steps, m.threshold, m.bias) == (1e-6, 1.0, 50, 60.0, 1.0)


def test_valid_edge_values_are_accepted():
    assert TrainConfig(epochs=0).epochs == 0
    assert PruneConfig(sparsity=0.0).sparsity == 0.0
    assert RegrowConfig(fraction=1.0).fraction == 1.0
    assert RunConfig(seeds=[0]).seeds == (0,)
    assert RunConfig(seeds=(3, 7)).seeds == (3, 7)


def test_configs_are_frozen():
    cfg = TrainConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.epochs = 3  # type: ignore[misc]


def test_operators_and_modulation_validate_their_inputs():
    net = EnsembleMLP.init([0], NetworkConfig(sizes=(2, 4, 4, 4, 4)))
    raises_naming(lambda: prune(net.clone(), 1.5), "sparsity", "[0.0, 1.0)")
    raises_naming(lambda: net.clone().set_modulation(gain=0.0), "gain", "(0.0, 10.0]")
    raises_naming(lambda: net.clone().set_modulation(protection=1.5), "protection", "[0.0, 1.0]")
    raises_naming(lambda: net.clone().set_modulation(activation="sigmoid"), "activation", "'relu', 'tanh'")
    data = EnsembleData.build([0], TaskConfig(n_train=10, n_standard=10, n_clean=10))
    raises_naming(lambda: accuracy(net, data, "internal_huge"), "condition", "'combined'")
    raises_naming(lambda: EnsembleData.build([]), "seeds", "at least 1")


# --------------------------------------------------------------------------- chapter parameters
BAD_BY_KIND = {
    "seeds": [[], "0,1", [0, -1], [0.5], 3],
    "int": ["20", 2.5, -1, True, None],
    "float": ["0.1", float("nan"), None],
    "fraction": [1.5, -0.1, "0.95", True],
    "fractions": [[0.5, 9.9], [-0.5], [], "0.5", [None]],
    "ints": [[5, -1], [], "5", [2.5]],
    "str": ["no-such-choice", 1],
    "device": ["tpu", 0],
    "bool": ["yes", 1],
    "address": ["8786", "tcp://host:8786; rm", 8786, None],
}


def _bad_cases():
    for name, ch in chapters.CHAPTERS.items():
        for key, p in ch.all_params.items():
            for bad in BAD_BY_KIND[p.kind]:
                if p.empty_ok and bad == []:
                    continue  # an empty list is allowed there (the atlas leaves the choice out)
                yield pytest.param(name, key, bad, id=f"{name}-{key}-{bad!r}")


@pytest.mark.parametrize("profile", chapters.PROFILES)
def test_chapter_profile_values_validate(profile):
    for name in chapters.CHAPTERS:
        vals = chapters.profile_values(name, profile)
        assert chapters.validate(name, vals).keys() == vals.keys()


@pytest.mark.parametrize("chapter,key,bad", list(_bad_cases()))
def test_chapter_validate_rejects_bad_papermill_values(chapter, key, bad):
    vals = chapters.profile_values(chapter, "quick")
    vals[key] = bad
    with pytest.raises(ValueError) as info:
        chapters.validate(chapter, vals)
    assert key in str(info.value)


def test_chapter_validate_messages_state_the_range():
    vals = chapters.profile_values("02_pruning_cliff", "paper")
    raises_naming(lambda: chapters.validate("02_pruning_cliff", {**vals, "sparsity": 1.5}), "sparsity", "[0.0, 1.0)")
    raises_naming(
        lambda: chapters.validate("02_pruning_cliff", {**vals, "baseline_epochs": "20"}), "baseline_epochs", ">= 0"
    )
    raises_naming(
        lambda: chapters.validate("02_pruning_cliff", {**vals, "consolidation_epochs": True}),
        "consolidation_epochs",
        ">= 0",
    )
    raises_naming(lambda: chapters.validate("02_pruning_cliff", {**vals, "seeds": []}), "seeds", "at least 1")
    raises_naming(
        lambda: chapters.validate("02_pruning_cliff", {**vals, "sweep_levels": [0.5, 1.2]}),
        "sweep_levels[1]",
        "[0.0, 0.999]",
    )
    raises_naming(
        lambda: chapters.validate("02_pruning_cliff", {**vals, "profile": "fast"}), "profile", "'paper', 'quick'"
    )
    missing = {k: v for k, v in vals.items() if k != "regrow_fraction"}
    raises_naming(lambda: chapters.validate("02_pruning_cliff", missing), "regrow_fraction", "missing")
    raises_naming(lambda: chapters.validate("no_such_chapter", vals), "chapter", "02_pruning_cliff")
