"""The interactive explorer: the model's main knobs, recomputed on a small ensemble of replicates.

Modules: :mod:`.knobs` (settings and sizes), :mod:`.engine`, :mod:`.drawing` (the figure), :mod:`.grid` (the
static book's precomputed settings), :mod:`.widgets` (front ends) and :mod:`.app` (Voila).

Given a set of :class:`Knobs` (pruning sparsity, regrowth method and fraction, consolidation
epochs, the internal and input noise of a custom stress test, a treatment class with its gain,
damping and activation, and mood-stabiliser protection), :meth:`Explorer.compute` takes each
replicate's trained baseline (disk-cached, see :func:`pruneplast.protocols.base.baseline`) through

    prune (per layer, magnitude) -> drug modulation on -> regrowth -> consolidation (lr 5e-4)

and measures, on every replicate: accuracy (%) under each stress condition of the methods'
section 6 plus the custom test and the biased (manic-risk) test, the graded noise tolerance
curve, the weight sparsity of each layer (%), and the decision regions of the first replicate.
The trained baseline and the pruned, untreated network are measured under the same tests as
references. Results are tidy tables; :func:`figure` draws them (mean and SD over replicates).

Defaults are sized for interaction on two CPU cores: three replicates; regrowth scores and
consolidation on the first ``train_subset`` (2,000 of 12,000) training samples of each replicate,
for 3 epochs instead of the studies' 15; tests on the first ``eval_samples`` (1,000 of 4,000)
points of the standard set. Everything else is the studies' protocol. States are
cached in memory (the pruned state per sparsity, the trained state per training knobs), so a
change of the noise or protection knobs only re-evaluates.

Simplifications, stated on the explorer page: the treatment knob switches on the drug's
modulation (gain, damping, activation) during regrowth scoring (gain forced to 1.0 as in the
studies), consolidation and testing; its own training course (the SSRI-like 100 epochs at
lr 1e-5 with a noise taper) is replaced by the explorer's regrowth and consolidation knobs.
Protection is the mood stabiliser left at test: it acts on every test of the treated network and
not during training.

:func:`precompute_grid` evaluates a small grid of knob settings and renders every grid point's
figure, for the static book; :func:`static_explorer` and :func:`live_explorer` build the
ipywidgets front ends (the first switches between precomputed results in the browser, without a
kernel; the second recomputes with one).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

#: The names this package offers, by the module that defines them. They load on first use, so
#: that ``pruneplast explore`` and the command line (which read :mod:`.app` only) do not import
#: the engine, the figures and the widgets.
EXPORTS = {
    "app": ("TEMPLATES", "VOILA_OPTIONS", "add_arguments", "app_cells", "app_notebook", "app_request", "main",
            "voila_command", "voila_environ"),
    "engine": ("Explorer", "region_map"),
    "drawing": ("figure", "png"),
    "grid": ("Grid", "GridSpec", "grid_results", "precompute_grid"),
    "knobs": ("CONDITIONS", "CONSOLIDATION_LR", "STAGE_COLOURS", "STAGE_LABELS", "STAGES", "TOLERANCE_FROM_STRESS",
              "TOLERANCE_SIGMAS", "ExplorerConfig", "Knobs", "Result"),
    "widgets": ("live_explorer", "static_explorer", "timed_recompute"),
}  # fmt: skip
_WHERE = {name: module for module, names in EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)

if TYPE_CHECKING:
    from .app import (  # noqa: F401
        TEMPLATES,
        VOILA_OPTIONS,
        add_arguments,
        app_cells,
        app_notebook,
        app_request,
        main,
        voila_command,
        voila_environ,
    )
    from .drawing import figure, png  # noqa: F401
    from .engine import Explorer, region_map  # noqa: F401
    from .grid import Grid, GridSpec, grid_results, precompute_grid  # noqa: F401
    from .knobs import (  # noqa: F401
        CONDITIONS,
        CONSOLIDATION_LR,
        STAGE_COLOURS,
        STAGE_LABELS,
        STAGES,
        TOLERANCE_FROM_STRESS,
        TOLERANCE_SIGMAS,
        ExplorerConfig,
        Knobs,
        Result,
    )
    from .widgets import live_explorer, static_explorer, timed_recompute  # noqa: F401


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
