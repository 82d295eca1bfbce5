"""Experiment protocols, one module per chapter; each returns tidy results (pandas DataFrames).

* :mod:`.base`: trained baselines (cached on disk) and the 95%-pruned states every study starts from.
* :mod:`.cliff`: study A's main experiment, the sparsity sweep and the regrowth control.
* :mod:`.consolidation`: study A's consolidation duration and relapse challenge.
* :mod:`.regimens`: study A's single vs iterative regrowth regimens.
* :mod:`.treatments`: study B's ketamine-, SSRI- and neurosteroid-like treatments.
* :mod:`.longitudinal`: study B's maintenance, discontinuation and manic relapse.

Beside each experiment, ``<experiment>_tables`` (:mod:`.cliff_tables`, :mod:`.consolidation_tables`,
:mod:`.regimen_tables`, :mod:`.treatment_tables`, :mod:`.longitudinal_tables`) builds its chapter's
tables and the numbers its prose quotes; :mod:`.model_tables` does so for chapter 1, which shows
the model, the task and the stress tests on :mod:`.base`'s states.
"""

from . import (
    cliff,  # noqa: F401,E402
    consolidation,  # noqa: F401,E402
    longitudinal,  # noqa: F401,E402
    regimens,  # noqa: F401,E402
    treatments,  # noqa: F401,E402
)
from .base import baseline, pruned  # noqa: F401
