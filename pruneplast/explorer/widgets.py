"""The explorer's ipywidgets front ends: static (precomputed grid, no kernel) and live (recomputes)."""

from __future__ import annotations

import time
from typing import Any, Sequence

import pandas as pd

from .. import arms
from ..config import (
    REGROWTH_METHODS,
)
from .drawing import figure, png
from .engine import Explorer
from .grid import Grid
from .knobs import Knobs


# --------------------------------------------------------------------------- widgets
def _fmt_pct(v: float) -> str:
    return f"{100 * v:g}%"


def static_explorer(grid: Grid):
    """Widgets that switch between the precomputed grid points in the browser, with no kernel.

    Nested ``Stack`` widgets (sparsity > regrowth fraction > treatment) hold every point's figure
    and caption; each control's ``index`` is ``jslink``-ed to the ``selected_index`` of every
    stack at its level, so the links live in the page's embedded widget state.
    """
    import ipywidgets as W

    spec = grid.spec
    s_ctl = W.SelectionSlider(
        options=[(_fmt_pct(s), i) for i, s in enumerate(spec.sparsities)],
        value=min(range(len(spec.sparsities)), key=lambda i: abs(spec.sparsities[i] - 0.95)),
        description="sparsity",
        continuous_update=True,
    )
    f_ctl = W.SelectionSlider(
        options=[(_fmt_pct(f), j) for j, f in enumerate(spec.regrow_fractions)],
        value=len(spec.regrow_fractions) - 1,
        description="regrowth",
    )
    t_ctl = W.Dropdown(options=[(t, k) for k, t in enumerate(spec.treatments)], value=0, description="treatment")
    links, level2, level3 = [], [], []
    outer_children = []
    for i in range(len(spec.sparsities)):
        mid_children = []
        for j in range(len(spec.regrow_fractions)):
            leaves = []
            for k in range(len(spec.treatments)):
                img = W.Image(
                    value=grid.images[(i, j, k)],
                    format="png",
                    layout=W.Layout(width="100%", max_width="840px", height="auto"),
                )
                cap = W.HTML(f'<div class="explorer-caption">{grid.captions[(i, j, k)]}</div>')
                leaves.append(W.VBox([cap, img]))
            st3 = W.Stack(leaves, selected_index=t_ctl.index)
            level3.append(st3)
            mid_children.append(st3)
        st2 = W.Stack(mid_children, selected_index=f_ctl.index)
        level2.append(st2)
        outer_children.append(st2)
    outer = W.Stack(outer_children, selected_index=s_ctl.index)
    links.append(W.jslink((s_ctl, "index"), (outer, "selected_index")))
    links += [W.jslink((f_ctl, "index"), (st, "selected_index")) for st in level2]
    links += [W.jslink((t_ctl, "index"), (st, "selected_index")) for st in level3]
    box = W.VBox([W.HBox([s_ctl, f_ctl, t_ctl]), outer])
    box.add_class("pruneplast-static-explorer")
    box._links = links  # keep the link widgets referenced
    return box


def live_explorer(explorer: Explorer, knobs: Knobs = Knobs(), dpi: int = 80):
    """Widgets for every knob; a change recomputes (needs a running kernel).

    Returns the widget box; its ``status`` HTML names the computation count and its wall time.
    """
    import ipywidgets as W

    style = {"description_width": "135px"}
    ctl = {
        "sparsity": W.FloatSlider(
            value=knobs.sparsity, min=0.0, max=0.99, step=0.01, readout_format=".2f", description="pruning sparsity"
        ),
        "regrow_method": W.Dropdown(
            options=list(REGROWTH_METHODS), value=knobs.regrow_method, description="regrowth method"
        ),
        "regrow_fraction": W.FloatSlider(
            value=knobs.regrow_fraction, min=0.0, max=1.0, step=0.05, description="regrowth fraction"
        ),
        "consolidation_epochs": W.IntSlider(
            value=knobs.consolidation_epochs, min=0, max=15, description="consolidation epochs"
        ),
        "treatment": W.Dropdown(options=list(arms.names()), value=knobs.treatment, description="treatment"),
        "protection": W.FloatSlider(
            value=knobs.protection, min=0.0, max=1.0, step=0.05, description="mood-stabiliser p"
        ),
        "sigma_int": W.FloatSlider(
            value=knobs.sigma_int, min=0.0, max=3.0, step=0.1, description="custom: internal SD"
        ),
        "input_sigma": W.FloatSlider(
            value=knobs.input_sigma, min=0.0, max=3.0, step=0.1, description="custom: input SD"
        ),
    }
    for w in ctl.values():
        w.style, w.layout = style, W.Layout(width="auto", min_width="0")
        if hasattr(w, "continuous_update"):
            w.continuous_update = False
    drug = W.HTML()
    status = W.HTML()
    status.add_class("explorer-status")
    image = W.Image(format="png", layout=W.Layout(width="100%", max_width="840px", height="auto"))
    count = {"n": 0}

    def show_drug(name: str) -> None:
        t = arms.arm(name)
        drug.value = f"<small>{name}: gain {t.gain:g}, damping {t.damping:g}, activation {t.activation}</small>"

    def recompute(*_: Any) -> None:
        try:
            k = Knobs(**{name: w.value for name, w in ctl.items()})
        except ValueError as exc:
            status.value = f"<b>invalid setting:</b> {exc}"
            return
        show_drug(k.treatment)
        status.value = "<i>computing…</i>"
        res = explorer.compute(k)
        image.value = png(figure(res, dpi=dpi), dpi=dpi)
        count["n"] += 1
        status.value = (
            f'<span class="explorer-result">result {count["n"]}: {res.headline()} '
            f"(computed in {res.seconds:.1f} s)</span>"
        )

    for w in ctl.values():
        w.observe(recompute, names="value")
    recompute()
    controls = W.GridBox(
        list(ctl.values()),
        layout=W.Layout(
            grid_template_columns="repeat(auto-fit, minmax(300px, 1fr))", grid_gap="2px 16px", width="100%"
        ),
    )
    box = W.VBox([controls, drug, status, image])
    box.add_class("pruneplast-live-explorer")
    box.controls, box.status, box.image, box.recompute = ctl, status, image, recompute
    return box


def timed_recompute(explorer: Explorer, settings: Sequence[Knobs]) -> pd.DataFrame:
    """Wall time (s) of computing, then drawing, each setting in turn, with what is cached then."""
    rows = []
    for k in settings:
        t0 = time.perf_counter()
        res = explorer.compute(k)
        t1 = time.perf_counter()
        png(figure(res))
        rows.append({"setting": k.describe(), "seconds": t1 - t0, "drawing_seconds": time.perf_counter() - t1})
    return pd.DataFrame(rows)
