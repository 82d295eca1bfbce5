"""Study B's chapters: the treatments (5) and the longitudinal relapse study (6)."""

from __future__ import annotations

from .. import arms
from ..config import DATA_SETS, LEARNING_RATE, POSITIVE_COUNT, MaintenanceConfig, Range
from .registry import Chapter, Param, register
from .shared import ARM_DECAYS, ARM_EPOCHS, DEPRESSED_STATE, MODEL_CHOICES, RELAPSE_THRESHOLD

#: Shared by chapters 5 and 6, so chapter 6 reuses chapter 5's cached states.
TREATMENT_PARAMS = {
    **DEPRESSED_STATE,
    "regrow_fraction": Param(
        "fraction", arms.arm("ketamine").regrow.fraction, "ketamine-like: fraction of pruned weights regrown"
    ),
    **ARM_EPOCHS,
    "workers": Param(
        "int",
        0,
        "processes the training runs go to side by side: 0 = one per CPU core "
        "(1 on a GPU), 1 = one after the other in the notebook's process",
    ),
    "scheduler": Param(
        "address",
        "",
        "a Dask scheduler's address (tcp://host:port) to send the training runs to; '' = this machine",
    ),
    "data_sets": Param(
        "str",
        "per_replicate",
        "data sets: 'per_replicate' (replicate s on its own, as study B) or 'shared' (study A's one data set)",
        choices=DATA_SETS,
    ),
    **MODEL_CHOICES,
}

register(Chapter("05_treatments", "Three routes out of the pruned state", dict(TREATMENT_PARAMS)))

register(
    Chapter(
        "06_longitudinal_relapse",
        "Maintenance, discontinuation and manic relapse",
        {
            **TREATMENT_PARAMS,
            "durations": Param(
                "ints",
                list(MaintenanceConfig().durations),
                "maintenance epochs tested (checkpoints of one run)",
                quick=[1, 2, 4],
                range=POSITIVE_COUNT,
            ),
            "maintenance_lr": Param("float", 1e-6, "maintenance learning rate (masked Adam)", range=LEARNING_RATE),
            "protection": Param("fraction", 1.0, "mood-stabiliser protection during maintenance"),
            "decay_steps": Param("int", 50, "protection decay steps after discontinuation"),
            **ARM_DECAYS,
            "threshold": RELAPSE_THRESHOLD,
            "sensitivity_protections": Param(
                "fractions",
                [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
                "protection values left at test (sensitivity panel)",
            ),
            "sensitivity_thresholds": Param(
                "ints",
                [40, 45, 50, 55, 60, 65, 70, 75, 80],
                "relapse thresholds in % (sensitivity panel)",
                range=Range(0, 100, integer=True),
            ),
        },
        reuses=("05_treatments",),  # the treated networks, cached by chapter 5 (TREATMENT_PARAMS)
    )
)
