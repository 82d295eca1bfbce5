"""Parameters declared once and used by several chapters: the depressed state every experiment
starts from, the model choices the studies fixed (which the atlas changes), the treated arms'
parameters (from the arms' registry) and the relapse threshold."""

from __future__ import annotations

from .. import arms
from ..config import (
    DECAY_RATE,
    PERCENT,
    POSITIVE_COUNT,
    PRUNE_SCOPES,
    SPARSITY,
    ModelChoices,
    NetworkConfig,
    Range,
    check_memory,
)
from .registry import Param

PAPER_SEEDS = list(range(10))

#: The start of every experiment chapter: replicate seeds, their trained baselines, the pruned state.
DEPRESSED_STATE = {
    "seeds": Param("seeds", PAPER_SEEDS, "replicate seeds", quick=[0, 1]),
    "baseline_epochs": Param("int", 20, "baseline training epochs (lr 1e-3)", quick=10),
    "sparsity": Param("fraction", 0.95, "pruning level of the depressed state", range=SPARSITY),
}

#: The atlas's ranges: multipliers of the hidden widths and of every learning rate, class spreads
#: of the task, regrowth SDs, hidden-layer widths.
FACTOR = Range(0.1, 4.0)
SPREAD = Range(0.05, 3.0)
INIT_STD = Range(0.0, 1.0, lo_open=True)
WIDTH = Range(1, 4096, integer=True)

_STUDIES = ModelChoices()

#: The choices the studies fixed and the atlas changes (:class:`~pruneplast.config.ModelChoices`),
#: as parameters of a reproduction chapter (chapters 2 to 6); their defaults are the studies'.
MODEL_CHOICES = {
    "hidden": Param(
        "ints",
        list(_STUDIES.hidden),
        "hidden-layer widths (the network is 2-<hidden>-4)",
        range=WIDTH,
        distinct=False,  # layer widths, not levels: [512, 512, 256]
        rule=lambda n, v: check_memory(NetworkConfig((2, *v, 4)), 1, name=n),
        rule_help="one replica training within this machine's memory",
    ),
    "task_sigma": Param(
        "float", _STUDIES.task_sigma, "class spread of the task's training and standard sets", range=SPREAD
    ),
    "prune_scope": Param(
        "str",
        _STUDIES.prune_scope,
        "pruning threshold: one per layer ('layer', the studies') or one over all weights ('global')",
        choices=PRUNE_SCOPES,
    ),
    "lr_factor": Param("float", _STUDIES.lr_factor, "every learning rate of the chapter times this", range=FACTOR),
    "regrow_init_std": Param("float", _STUDIES.regrow_init_std, "SD of regrown weights", range=INIT_STD),
}

#: Treatment epochs of the studies' treated arms in the quick profile.
_QUICK_ARM_EPOCHS = {"ketamine": 3, "ssri": 5, "neurosteroid": 2}


def _modulation(a: arms.Arm) -> str:
    parts = [f"gain {a.gain:g}"] if a.gain_start is None else [f"gain {a.gain_start:g} to {a.gain:g}"]
    if a.damping != 1.0:
        parts.append(f"damping {a.damping:g}")
    if a.activation != "relu":
        parts.append(a.activation)
    if a.noise_start > 0:
        parts.append(f"noise taper from SD {a.noise_start:g}")
    return ", ".join(parts)


def _epochs(a: arms.Arm) -> Param:
    return Param(
        "int",
        a.epochs,
        f"{a.shown}: treatment epochs at lr {a.lr:g} ({_modulation(a)})",
        quick=_QUICK_ARM_EPOCHS[a.name],
        range=POSITIVE_COUNT if a.course == "scheduled" else None,
    )


def _decay(a: arms.Arm) -> Param:
    return Param("float", a.decay_rate, f"{a.shown}: protection lost per step", range=DECAY_RATE)


#: One parameter per treated arm of the studies, its default from the arm's registry entry
#: (:mod:`pruneplast.arms`): its treatment epochs, and its protection decay rate.
ARM_EPOCHS = {f"{name}_epochs": _epochs(arms.arm(name)) for name in arms.STUDY_TREATED}
ARM_DECAYS = {f"{name}_decay": _decay(arms.arm(name)) for name in arms.STUDY_TREATED}

#: Chapters 6 and 7: when a treated network's relapse counts as manic.
RELAPSE_THRESHOLD = Param("float", 60.0, "manic relapse if biased-stress accuracy (%) is below this", range=PERCENT)
