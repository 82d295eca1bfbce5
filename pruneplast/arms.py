"""Treatment arms: each declared once, in one registry (Methods section 9).

An arm is everything the engine, the tables and the figures need to know about one treatment:
its name and label, its colour, the modulation it switches on (gain, damping, activation), its
course (regrowth, epochs, learning rate; plain, or scheduled with a noise taper and a gain ramp),
the protection it loses per step after discontinuation, and whether the chapter also tests it off
drug. Study B's four arms are registered here; a new arm built from these mechanisms is one call::

    from pruneplast.arms import Arm, register
    register(Arm("lithium", label="lithium-like", colour="#56B4E9", gain=1.1, damping=0.9,
                 epochs=10, lr=5e-4, decay_rate=0.004))

after which chapter 5's protocol (:mod:`pruneplast.protocols.treatments`) and the longitudinal
protocol (:mod:`pruneplast.protocols.longitudinal`) run it, and their tables show it with "—" in
the study's columns. The study's tables are keyed by arm name (:mod:`pruneplast.paper`), so an arm
the studies lack has no study value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .config import (
    ACTIVATIONS,
    COUNT,
    DECAY_RATE,
    LEARNING_RATE,
    RegrowConfig,
    check_choice,
    check_config,
    check_real,
)

#: The studies' arms, in the order of their tables' columns.
STUDY_ARMS = ("untreated", "ketamine", "ssri", "neurosteroid")
#: The studies' treated arms (all but the untreated network), which their claims compare.
STUDY_TREATED = STUDY_ARMS[1:]
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")


@dataclass(frozen=True)
class Arm:
    """One treatment arm; every field validated at construction, one comment per field."""

    name: str  # identifier: lower-case letters, digits and '_' (used in tables and parameters)
    label: str = ""  # what readers see ('ketamine-like'); the name where empty
    colour: str = "#7F7F7F"  # '#RRGGBB', the arm's colour in every figure
    gain: float = 1.0  # excitability gain while the drug is on
    damping: float = 1.0  # tonic damping while the drug is on
    activation: str = "relu"  # hidden activation while the drug is on
    regrow: RegrowConfig = RegrowConfig(fraction=0.0)  # regrowth before the course (fraction 0: the mask is fixed)
    epochs: int = 0  # treatment training epochs
    lr: float = 5e-4  # treatment learning rate
    noise_start: float = 0.0  # scheduled course: training noise tapers from this to 0
    gain_start: float | None = None  # scheduled course: gain rises from this to `gain`
    decay_rate: float = 0.0  # mood-stabiliser protection lost per step after discontinuation
    off_drug: bool = False  # also tested off drug (modulation reset, same weights)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(
                f"treatment name must be lower-case letters, digits and '_', starting with a letter; got {self.name!r}"
            )
        if not isinstance(self.label, str):
            raise ValueError(f"label must be a string; got {self.label!r}")
        if not isinstance(self.colour, str) or not _COLOUR.match(self.colour):
            raise ValueError(f"colour must be '#RRGGBB'; got {self.colour!r}")
        check_real("gain", self.gain, 0.0, 10.0, lo_open=True)
        check_real("damping", self.damping, 0.0, 10.0, lo_open=True)
        check_choice("activation", self.activation, ACTIVATIONS)
        check_config("regrow", self.regrow, RegrowConfig)
        COUNT.check("epochs", self.epochs)
        LEARNING_RATE.check("lr", self.lr)
        check_real("noise_start", self.noise_start, 0.0, 10.0)
        if self.gain_start is not None:
            check_real("gain_start", self.gain_start, 0.0, 10.0, lo_open=True)
        DECAY_RATE.check("decay_rate", self.decay_rate)
        if not isinstance(self.off_drug, bool):
            raise ValueError(f"off_drug must be True or False; got {self.off_drug!r}")

    @property
    def scale(self) -> float:
        """Damping x gain: the multiplier on hidden activations while the drug is on."""
        return self.damping * self.gain

    @property
    def regrows(self) -> bool:
        """Whether the arm regrows pruned connections before its course."""
        return self.regrow.fraction > 0

    @property
    def course(self) -> str:
        """'scheduled' when training sets noise or gain per epoch, else 'plain'."""
        ramp = self.gain_start is not None and self.gain_start != self.gain
        return "scheduled" if self.noise_start > 0 or ramp else "plain"

    @property
    def shown(self) -> str:
        return self.label or self.name


_REGISTRY: dict[str, Arm] = {}


def register(arm: Arm, replace: bool = False) -> Arm:
    """Add an arm to the registry (``replace=True`` to redefine one); returns it."""
    if not isinstance(arm, Arm):
        raise ValueError(f"register takes an Arm; got {type(arm).__name__}")
    if arm.name in _REGISTRY and not replace:
        raise ValueError(f"treatment {arm.name!r} is already registered (pass replace=True to redefine it)")
    _REGISTRY[arm.name] = arm
    return arm


def unregister(name: str) -> None:
    """Remove an arm that is not one of the studies' (tests and notebooks that add their own)."""
    if name in STUDY_ARMS:
        raise ValueError(f"{name!r} is one of the studies' arms and stays registered")
    _REGISTRY.pop(check_choice("treatment", name, names()), None)


def names() -> tuple[str, ...]:
    """Every registered arm, the studies' first, in registration order."""
    return tuple(_REGISTRY)


def arm(name: str) -> Arm:
    """The registered configuration of a treatment arm, by name."""
    check_choice("treatment", name, names())
    return _REGISTRY[name]


def treated_names() -> tuple[str, ...]:
    """Every arm with a drug to stop (all but 'untreated'): the arms the longitudinal study follows."""
    return tuple(n for n in names() if n != "untreated")


# --------------------------------------------------------------------------- study B's arms
register(Arm("untreated", label="untreated", colour="#D55E00"))
register(
    Arm(
        "ketamine",
        label="ketamine-like",
        colour="#0072B2",
        gain=1.25,
        regrow=RegrowConfig(fraction=0.5),
        epochs=15,
        lr=5e-4,
        decay_rate=0.002,
    )
)
register(
    Arm(
        "ssri",
        label="SSRI-like",
        colour="#CC79A7",
        gain=1.6,
        epochs=100,
        lr=1e-5,
        noise_start=0.5,
        gain_start=1.0,
        decay_rate=0.015,
    )
)
register(
    Arm(
        "neurosteroid",
        label="neurosteroid-like",
        colour="#009E73",
        gain=0.85,
        damping=0.7,
        activation="tanh",
        epochs=10,
        lr=5e-4,
        decay_rate=0.008,
        off_drug=True,
    )
)
