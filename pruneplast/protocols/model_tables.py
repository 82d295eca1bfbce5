"""Chapter 1's tables and the numbers its prose quotes (the model and the task).

The data sets of one replicate seed (:func:`pruneplast.data.replicate_sets`), the network's layers
(:class:`~pruneplast.config.NetworkConfig`), the stress battery (:data:`pruneplast.stress.CONDITIONS`),
and the chapter's tidy rows: :func:`pruneplast.stress.evaluate` and :func:`pruneplast.stress.structure`
of the trained and the pruned network, labelled by ``stage`` (``baseline``, ``pruned``).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from ..config import NetworkConfig, TaskConfig
from ..data import data_seed
from ..results import summarise
from ..stress import CONDITIONS, MAIN_CONDITIONS

#: The classes of the task.
CLASSES = range(4)
#: The stages of the chapter's rows, in the tables' column order.
STAGES = ("baseline", "pruned")


def data_table(sets: Mapping[str, tuple[np.ndarray, np.ndarray]], seed: int, task: TaskConfig) -> pd.DataFrame:
    """One row per data set of replicate ``seed`` (``sets``: split -> (X, y), as
    :func:`~pruneplast.data.replicate_sets` returns them): its size, the class spread it is drawn
    with (none for the clean set), the NumPy ``RandomState`` seed it is drawn from and the count of
    each class."""
    return pd.DataFrame(
        [
            {
                "split": split,
                "samples": len(y),
                "noise SD": 0.0 if split == "clean" else task.sigma,
                "RandomState seed": data_seed(seed, split, task.data_sets),
                **{f"class {k}": int((y == k).sum()) for k in CLASSES},
            }
            for split, (x, y) in sets.items()
        ]
    ).set_index("split")


def layer_table(net: NetworkConfig, sparsity: float) -> pd.DataFrame:
    """One row per weight matrix: its weights, its biases and the weights the per-layer quantile
    rule keeps at ``sparsity``."""
    shapes = list(zip(net.sizes[:-1], net.sizes[1:]))
    return pd.DataFrame(
        {
            "layer": [f"{a} → {b}" for a, b in shapes],
            "weights": [a * b for a, b in shapes],
            "biases": list(net.sizes[1:]),
            f"kept at {100 * sparsity:.0f}% (per-layer rule)": [
                a * b - int(sparsity * (a * b - 1)) - 1 for a, b in shapes
            ],
        }
    ).set_index("layer")


def parameter_numbers(net: NetworkConfig) -> dict[str, int]:
    """The network's parameters (weights and biases, ``n_params``) and weights (``n_weights``)."""
    return {"n_params": net.n_weights + net.n_biases, "n_weights": net.n_weights}


def stress_table() -> pd.DataFrame:
    """The stress battery, one row per condition: test set, input-noise SD, internal-noise SD and
    whether the biased offset is added."""
    return pd.DataFrame(
        [
            {
                "condition": c.name,
                "test set": c.split,
                "input noise SD": c.input_sigma,
                "internal noise SD": c.sigma_int,
                "biased (+b after activation)": c.biased,
            }
            for c in CONDITIONS.values()
        ]
    ).set_index("condition")


def kept_table(res: pd.DataFrame) -> pd.DataFrame:
    """Weights kept per layer (rows) at each stage (columns), from the rows' ``kept_weights``."""
    kept = res[res.metric == "kept_weights"].pivot_table(index="condition", columns="stage", values="value")
    return kept.astype(int)


def _accuracy(res: pd.DataFrame) -> pd.DataFrame:
    return summarise(res[res.metric == "accuracy"], ["stage", "condition"]).set_index(["stage", "condition"])


def accuracy_table(res: pd.DataFrame) -> pd.DataFrame:
    """Accuracy (%, mean over seeds, to 0.1) per stress condition (the main ones, then extreme
    internal noise; rows) at each stage (columns)."""
    table = _accuracy(res)["mean"].unstack(0)[list(STAGES)]
    return table.reindex([*MAIN_CONDITIONS, "internal_extreme"]).round(1)


def accuracy_numbers(res: pd.DataFrame) -> dict[str, float]:
    """The mean accuracies the prose quotes: the trained network's on the standard set
    (``base_standard``), the pruned one's on the standard set and under combined stress
    (``fragile_standard``, ``fragile_combined``)."""
    s = _accuracy(res)["mean"]
    return {
        "fragile_standard": s[("pruned", "standard")],
        "fragile_combined": s[("pruned", "combined")],
        "base_standard": s[("baseline", "standard")],
    }
