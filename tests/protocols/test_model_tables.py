"""Chapter 1's tables and quoted numbers (protocols.model_tables): the data sets, the layers
against a pruned network's masks, the stress battery, and the tables of synthetic tidy rows."""

from __future__ import annotations

import pandas as pd
import pytest

from pruneplast import stress
from pruneplast.config import NetworkConfig, TaskConfig
from pruneplast.data import replicate_sets
from pruneplast.operators import prune
from pruneplast.protocols import model_tables

TASK = TaskConfig(n_train=400, n_standard=200, n_clean=40)


@pytest.mark.parametrize(("data_sets", "seeds"), [("per_replicate", (3100, 3200, 3300)), ("shared", (100, 200, 300))])
def test_data_table_counts_each_set_and_names_its_seed(data_sets, seeds):
    task = TaskConfig(n_train=400, n_standard=200, n_clean=40, data_sets=data_sets)
    table = model_tables.data_table(replicate_sets(3, task), 3, task)
    assert list(table.index) == ["train", "standard", "clean"]
    assert list(table["samples"]) == [400, 200, 40]
    assert list(table["noise SD"]) == [task.sigma, task.sigma, 0.0]
    assert tuple(table["RandomState seed"]) == seeds
    classes = table[[f"class {k}" for k in range(4)]]
    assert (classes.sum(axis=1) == table["samples"]).all() and (classes > 0).all().all()


def test_layer_table_keeps_what_pruning_keeps(full_net):
    table = model_tables.layer_table(NetworkConfig(), 0.95)
    assert list(table.index) == ["2 → 512", "512 → 512", "512 → 256", "256 → 4"]
    assert list(table["weights"]) == [1_024, 262_144, 131_072, 1_024]
    assert list(table["biases"]) == [512, 512, 256, 4]
    cut = prune(full_net.clone(), 0.95)
    assert list(table["kept at 95% (per-layer rule)"]) == [int(m.sum()) for m in cut.masks]
    assert "kept at 90% (per-layer rule)" in model_tables.layer_table(NetworkConfig(), 0.9)


def test_parameter_numbers_count_weights_and_biases():
    n = model_tables.parameter_numbers(NetworkConfig())
    assert n == {"n_params": 395_264 + 512 + 512 + 256 + 4, "n_weights": 1_024 + 262_144 + 131_072 + 1_024}


def test_stress_table_lists_the_battery():
    table = model_tables.stress_table()
    assert list(table.index) == list(stress.CONDITIONS)
    for name, c in stress.CONDITIONS.items():
        row = table.loc[name]
        assert (row["test set"], row["input noise SD"], row["internal noise SD"]) == (
            c.split,
            c.input_sigma,
            c.sigma_int,
        )
        assert row["biased (+b after activation)"] == c.biased


def rows() -> pd.DataFrame:
    """Two seeds' accuracies and kept weights at each stage (seed 1 two points above seed 0)."""
    out = []
    conditions = [*stress.MAIN_CONDITIONS, "internal_extreme"]
    for seed in (0, 1):
        for stage, base in (("baseline", 90.0), ("pruned", 30.0)):
            lab = dict(experiment="model_and_task", seed=seed, stage=stage)
            out += [
                dict(lab, condition=c, metric="accuracy", value=base - i + 2 * seed) for i, c in enumerate(conditions)
            ]
            kept = (1024, 262_144) if stage == "baseline" else (52, 13_108)
            out += [
                dict(lab, condition=f"layer_{i + 1}", metric="kept_weights", value=float(k)) for i, k in enumerate(kept)
            ]
    return pd.DataFrame(out)


def test_kept_table_per_layer_and_stage():
    table = model_tables.kept_table(rows())
    assert list(table.columns) == ["baseline", "pruned"] and list(table.index) == ["layer_1", "layer_2"]
    assert table.loc["layer_2", "pruned"] == 13_108 and table.dtypes.eq("int64").all()


def test_accuracy_table_and_numbers_are_means_over_seeds():
    table = model_tables.accuracy_table(rows())
    assert list(table.columns) == ["baseline", "pruned"]
    assert list(table.index) == [*stress.MAIN_CONDITIONS, "internal_extreme"]
    assert table.loc[stress.MAIN_CONDITIONS[0], "baseline"] == 91.0
    n = model_tables.accuracy_numbers(rows())
    i = {c: k for k, c in enumerate(stress.MAIN_CONDITIONS)}
    assert n["base_standard"] == pytest.approx(91.0 - i["standard"])
    assert n["fragile_standard"] == pytest.approx(31.0 - i["standard"])
    assert n["fragile_combined"] == pytest.approx(31.0 - i["combined"])
