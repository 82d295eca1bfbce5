"""The book's chapters and their papermill parameters, in one registry.

Each chapter notebook ``notebooks/<name>.md`` has one cell tagged ``parameters`` whose literals are
the ``paper`` values registered here (a test checks that they agree). The ``quick`` profile
overrides some of them so that every chapter runs in about a minute on two CPU cores through the
same code path. :func:`validate` checks a set of values (names, types, the engine's ranges) before
anything runs.

* :mod:`.registry`: a parameter, a chapter, the registry and the checks of a set of values;
* :mod:`.shared`: what several chapters declare alike (the depressed state, the model choices the
  atlas changes, the treated arms' parameters, the relapse threshold);
* :mod:`.study_a` (chapters 1-4), :mod:`.study_b` (5-6), :mod:`.robustness` (7),
  :mod:`.explore` (the explorer): the chapters, registered in the book's order.
"""

from __future__ import annotations

from ..config import check_choice  # noqa: F401  (the notebooks check their profile with it)
from .registry import (  # noqa: F401
    CHAPTERS,
    COMMON,
    PROFILES,
    Chapter,
    Param,
    chapter,
    describe,
    differs_from_profile,
    injected_names,
    profile_note,
    profile_values,
    register,
    validate,
)
from .shared import PAPER_SEEDS  # noqa: F401

# registered in the book's order (`pruneplast list` shows them so)
from . import study_a, study_b, robustness, explore  # noqa: E402, F401  isort: skip
