"""Study A's chapters: the model and the task (1), the pruning cliff (2), consolidation (3), the
regimens (4)."""

from __future__ import annotations

from ..config import (
    DATA_SETS,
    POSITIVE_COUNT,
    REGIMEN_FRACTION,
    SPARSITY,
    SWEEP_LEVEL,
    check_distinct_regimens,
    check_increasing,
)
from .registry import Chapter, Param, register
from .shared import DEPRESSED_STATE, MODEL_CHOICES

register(
    Chapter(
        "01_model_and_task",
        "The model and the task",
        {
            "seeds": Param("seeds", [0, 1], "replicate seeds shown in the decision-region figure", quick=[0]),
            "baseline_epochs": Param("int", 20, "baseline training epochs (lr 1e-3)", quick=10),
            "sparsity": Param("fraction", 0.95, "pruning level shown beside the trained network", range=SPARSITY),
        },
    )
)

#: Study A's chapters run on its one data set (the comparison with the study); chapter 2 also
#: runs every replicate on its own data set, to measure how much the data set matters.
_STUDY_A_DATA = Param(
    "str",
    "shared",
    "data sets: 'shared' (every replicate on study A's one data set, "
    "as the study) or 'per_replicate' (replicate s on its own, as study B)",
    choices=DATA_SETS,
)

#: Study A's chapters train in one-thread processes side by side; the results do not depend on it.
_STUDY_A_WORKERS = Param(
    "int",
    0,
    "processes the training runs go to side by side, one share of the CPU cores each: 0 = one per "
    "CPU core (1 on a GPU), 1 = one after the other in the notebook's process on every core",
)

register(
    Chapter(
        "02_pruning_cliff",
        "The pruning cliff",
        {
            **DEPRESSED_STATE,
            "data_sets": Param(
                "str",
                "both",
                "data sets: 'both' (study A's one data set, the comparison, and a "
                "data set per replicate beside it), 'shared' or 'per_replicate'",
                quick="shared",
                choices=("both", *DATA_SETS),
            ),
            "regrow_fraction": Param("fraction", 0.5, "fraction of pruned weights regrown"),
            "consolidation_epochs": Param("int", 15, "fine-tuning epochs after regrowth (lr 5e-4)", quick=5),
            "sweep_levels": Param(
                "fractions",
                [0.0, 0.5, 0.7, 0.8, 0.85, 0.88, 0.9, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97, 0.99],
                "sparsity levels of the sweep",
                quick=[0.0, 0.5, 0.8, 0.9, 0.93, 0.95, 0.99],
                range=SWEEP_LEVEL,
                rule=lambda n, v: check_increasing(n, v, at_least=2),
                rule_help="at least 2, increasing",
            ),
            **MODEL_CHOICES,
            "workers": _STUDY_A_WORKERS,
        },
    )
)

register(
    Chapter(
        "03_consolidation",
        "How long to consolidate",
        {
            **DEPRESSED_STATE,
            "data_sets": _STUDY_A_DATA,
            "regrow_fraction": Param("fraction", 0.5, "fraction of pruned weights regrown (gradient-guided)"),
            "max_epochs": Param(
                "int", 20, "consolidation epochs (lr 5e-4), evaluated after every epoch", quick=5, range=POSITIVE_COUNT
            ),
            "relapse_fraction": Param("fraction", 0.4, "share of remaining weights removed by the relapse challenge"),
            **MODEL_CHOICES,
            "workers": _STUDY_A_WORKERS,
        },
    )
)

register(
    Chapter(
        "04_regimens",
        "One large regrowth or many small ones",
        {
            **DEPRESSED_STATE,
            "data_sets": _STUDY_A_DATA,
            "acute_fraction": Param(
                "fraction", 0.6, "regrowth fraction of the acute moderate regimen (and control)", range=REGIMEN_FRACTION
            ),
            "acute_epochs": Param("int", 15, "consolidation epochs of the acute moderate regimen", quick=2),
            "chronic_fraction": Param(
                "fraction",
                0.4,
                "fraction of the still-pruned weights regrown per chronic cycle",
                range=REGIMEN_FRACTION,
            ),
            "chronic_epochs": Param("int", 5, "consolidation epochs per chronic cycle", quick=1, range=POSITIVE_COUNT),
            "chronic_cycles": Param(
                "ints",
                [3, 6, 10],
                "cycles of the short, moderate and long chronic regimens",
                quick=[1, 2, 3],
                range=POSITIVE_COUNT,
                rule=lambda n, v: check_increasing(n, v, count=3),
                rule_help="3, increasing",
            ),
            "full_epochs": Param("int", 20, "consolidation epochs of the full acute (100%) regimen", quick=2),
            "relapse_fraction": Param("fraction", 0.4, "share of remaining weights removed by the relapse challenge"),
            **MODEL_CHOICES,
            "workers": _STUDY_A_WORKERS,
        },
        checks=(
            lambda v: check_distinct_regimens(
                v["acute_fraction"],
                v["acute_epochs"],
                v["chronic_fraction"],
                v["chronic_epochs"],
                v["chronic_cycles"],
                v["full_epochs"],
            ),
        ),  # fmt: skip
    )
)
