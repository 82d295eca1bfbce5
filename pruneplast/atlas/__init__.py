"""The robustness atlas: the studies' headline conclusions under one changed choice at a time.

:mod:`~pruneplast.atlas.protocol` holds the settings (the studies' choices with one changed) and
the compact protocol that computes one setting's cell; :mod:`~pruneplast.atlas.conclusions` turns
the cells' results into each claim's quantity, interval and verdict; :mod:`~pruneplast.atlas.figures`
draws them and :mod:`~pruneplast.atlas.tables` builds the chapter's tables. The chapter
``notebooks/07_robustness_atlas.md`` runs and shows it.
"""

from .conclusions import (
    CHANCE,
    CONCLUSIONS,
    HOLDS,
    KNIFE_EDGE,
    LEFT_OUT,
    REVERSES,
    VERDICTS,
    WEAKENS,
    Conclusion,
    atlas_map,
    findings,
    half_collapse,
    long_table,
    per_seed,
    robustness,
    verdict,
)
from .figures import plot_cliffs, plot_forest, plot_map, verdict_colours
from .protocol import (
    CHOICES,
    HIDDEN,
    PART_MINUTES,
    PARTS,
    Protocol,
    Setting,
    Task,
    cell,
    deeper,
    labels,
    regimen_parts,
    run,
    settings,
    state_keys,
    tasks,
)
from .tables import conclusions_table, left_out_table, means_tables, settings_tables, summary_table

__all__ = [
    "CHANCE", "CHOICES", "CONCLUSIONS", "HIDDEN", "HOLDS", "KNIFE_EDGE", "LEFT_OUT", "PART_MINUTES", "PARTS",
    "REVERSES", "VERDICTS", "WEAKENS", "Conclusion", "Protocol", "Setting", "atlas_map", "cell",
    "conclusions_table", "deeper", "findings", "half_collapse", "left_out_table", "long_table", "means_tables",
    "per_seed", "plot_cliffs", "plot_forest", "plot_map", "regimen_parts", "robustness", "run", "labels",
    "settings", "settings_tables", "state_keys", "summary_table", "Task", "tasks", "verdict", "verdict_colours",
]  # fmt: skip
