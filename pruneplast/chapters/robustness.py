"""Beyond the studies: the robustness atlas (chapter 7). Its level parameters change the model
choices the reproduction chapters fix (:data:`~pruneplast.chapters.shared.MODEL_CHOICES`), within
the same ranges."""

from __future__ import annotations

import dataclasses

from ..config import POSITIVE_COUNT, REGIMEN_FRACTION, SPARSITY, Range, check_distinct_atlas_regimens
from .registry import Chapter, Param, register
from .shared import ARM_EPOCHS, FACTOR, INIT_STD, PAPER_SEEDS, RELAPSE_THRESHOLD, SPREAD

#: The quick profile's treatment epochs in the atlas (one epoch per arm, two for the scheduled one).
_QUICK_EPOCHS = {"ketamine_epochs": 1, "ssri_epochs": 2, "neurosteroid_epochs": 1}
#: Hidden layers removed or added (at least one hidden layer stays).
_DEPTH = Range(-2, 3, integer=True)

register(
    Chapter(
        "07_robustness_atlas",
        "Do the conclusions survive?",
        {
            "seeds": Param("seeds", PAPER_SEEDS, "replicate seeds of every cell", quick=[0, 1]),
            "baseline_epochs": Param("int", 20, "baseline training epochs (lr 1e-3 x the lr factor)", quick=2),
            "sparsity": Param("fraction", 0.95, "pruning level of the depressed state", range=SPARSITY),
            "width_factors": Param(
                "fractions", [0.5, 2.0], "hidden widths times each factor", quick=[0.5], range=FACTOR, empty_ok=True
            ),
            "depth_changes": Param(
                "ints",
                [-1, 1],
                "hidden layers fewer (-) or more (+): 512-unit layers removed or added",
                quick=[-1],
                range=_DEPTH,
                empty_ok=True,
            ),
            "task_sigmas": Param(
                "fractions",
                [0.4, 1.6],
                "class spreads of the task (the studies' 0.8)",
                quick=[],
                range=SPREAD,
                empty_ok=True,
            ),
            "global_scope": Param(
                "bool", True, "include one global pruning threshold instead of one per layer", quick=False
            ),
            "lr_factors": Param(
                "fractions",
                [0.5, 2.0],
                "every learning rate times each factor",
                quick=[],
                range=FACTOR,
                empty_ok=True,
            ),
            "init_stds": Param(
                "fractions",
                [0.01, 0.1],
                "SDs of regrown weights (the studies' 0.03)",
                quick=[0.1],
                range=INIT_STD,
                empty_ok=True,
            ),
            "shared_data_set": Param(
                "bool",
                True,
                "include every replicate on study A's one data set (else one data set per replicate)",
                quick=False,
            ),
            "regrow_fraction": Param(
                "fraction", 0.5, "study A's single regrowth (and the ketamine-like one)", range=REGIMEN_FRACTION
            ),
            "consolidation_epochs": Param(
                "int", 15, "consolidation epochs after it (lr 5e-4)", quick=1, range=POSITIVE_COUNT
            ),
            "acute_fraction": Param("fraction", 0.6, "regrowth of the acute moderate regimen", range=REGIMEN_FRACTION),
            "acute_epochs": Param("int", 15, "consolidation epochs of the acute moderate regimen", quick=1),
            "chronic_fraction": Param(
                "fraction", 0.4, "still-pruned weights regrown per long-chronic cycle", range=REGIMEN_FRACTION
            ),
            "chronic_epochs": Param("int", 5, "epochs per long-chronic cycle", quick=1, range=POSITIVE_COUNT),
            "chronic_cycles": Param("int", 10, "cycles of the long chronic regimen", quick=2, range=POSITIVE_COUNT),
            **{k: dataclasses.replace(p, quick=_QUICK_EPOCHS[k]) for k, p in ARM_EPOCHS.items()},
            "maintenance_epochs": Param(
                "int", 0, "maintenance epochs (lr 1e-6) before discontinuation; 0: discontinued after the course"
            ),
            "threshold": RELAPSE_THRESHOLD,
            "workers": Param("int", 0, "processes the cells go to on this machine: 0 = one per CPU core"),
            "scheduler": Param(
                "address", "", "a Dask scheduler's address (tcp://host:port) to send the cells to; '' = this machine"
            ),
        },
        checks=(
            lambda v: check_distinct_atlas_regimens(
                v["regrow_fraction"],
                v["consolidation_epochs"],
                v["acute_fraction"],
                v["acute_epochs"],
                v["chronic_fraction"],
                v["chronic_epochs"],
                v["chronic_cycles"],
            ),
        ),  # fmt: skip
    )
)
