"""The explorer's page: the parameters of its ensemble and of its precomputed grid."""

from __future__ import annotations

from ..config import EXPLORER_SPARSITY, POSITIVE_COUNT, Range
from .registry import Chapter, Param, register

register(
    Chapter(
        "explorer",
        "Explore the model",
        {
            "seeds": Param("seeds", [0, 1, 2], "replicate seeds of the explorer's ensemble", quick=[0, 1]),
            "baseline_epochs": Param("int", 20, "baseline training epochs (lr 1e-3)", quick=10, range=POSITIVE_COUNT),
            "train_subset": Param(
                "int",
                2000,
                "training samples per replicate for regrowth scores and consolidation",
                range=Range(128, 12000, integer=True),
            ),
            "consolidation_epochs": Param(
                "int",
                3,
                "consolidation epochs at the starting values and in the grid",
                quick=1,
                range=Range(0, 100, integer=True),
            ),
            "grid_sparsities": Param(
                "fractions",
                [0.9, 0.95, 0.97],
                "pruning levels of the precomputed grid",
                quick=[0.9, 0.95],
                range=EXPLORER_SPARSITY,
            ),
            "grid_regrow_fractions": Param(
                "fractions", [0.0, 0.25, 0.5], "regrowth fractions of the precomputed grid", quick=[0.0, 0.5]
            ),
            "show_grid": Param("bool", True, "precompute the grid for the static page (the live app skips it)"),
        },
        # its baselines are chapter 5's (the same seeds' networks, task and training, cached per
        # seed; at both profiles): run after it, the page loads them instead of training them
        reuses=("05_treatments",),
    )
)
