"""The studies' claims: the registry and its helpers (:mod:`.registry`), and one function per claim
(:mod:`.study_a`, :mod:`.study_b`), registered when this package loads. :mod:`pruneplast.scorecard`
reads the registry; nothing here imports the scorecard."""

from . import study_a, study_b  # noqa: F401  (their claims register on import)
from .registry import CLAIMS, STUDY_B_SEEDS, Claim, claim, evaluate, like_with_like, per_seed, relapse_outcomes, select
from .study_a import steepest_drop

__all__ = [
    "CLAIMS",
    "STUDY_B_SEEDS",
    "Claim",
    "claim",
    "evaluate",
    "like_with_like",
    "per_seed",
    "relapse_outcomes",
    "select",
    "steepest_drop",
]
