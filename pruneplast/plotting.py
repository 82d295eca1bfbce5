"""Plotting helpers: one style, one colour per condition on every page.

``use_style()`` loads the package's ``pruneplast.mplstyle``; :data:`COLOURS` fixes the colour of
every treatment and stage so that the same thing has the same colour throughout the book.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from .results import summarise

STYLE = Path(__file__).with_name("pruneplast.mplstyle")

#: Okabe-Ito colours, fixed per condition across the book.
COLOURS = {
    "untreated": "#000000", "ketamine": "#0072B2", "ssri": "#D55E00", "neurosteroid": "#009E73",
    "baseline": "#000000", "pruned": "#D55E00", "recovered": "#0072B2",
    "gradient": "#0072B2", "random": "#E69F00", "paper": "#CC79A7",
}
#: One colour per chapter, for figures that gather values from several chapters (the scorecard).
CHAPTER_COLOURS = {"02_pruning_cliff": "#0072B2", "03_consolidation": "#56B4E9", "04_regimens": "#009E73",
                   "05_treatments": "#E69F00", "06_longitudinal_relapse": "#CC79A7"}
LABELS = {"untreated": "untreated", "ketamine": "ketamine-like", "ssri": "SSRI-like",
          "neurosteroid": "neurosteroid-like"}


def use_style() -> None:
    mpl.style.use(str(STYLE))


def colour(name: str, default: str | None = None) -> str | None:
    return COLOURS.get(name, default)


def line_ci(ax, df: pd.DataFrame, x: str, group: str | None = None, label_map=None, colours=None,
            marker="o", **kw):
    """Mean line with a shaded 95% CI band per group; ``df`` is tidy (one row per seed)."""
    groups = [(None, df)] if group is None else list(df.groupby(group, sort=False))
    for name, g in groups:
        s = summarise(g, [x]).sort_values(x)
        c = (colours or {}).get(name, colour(str(name)))
        lab = (label_map or LABELS).get(name, name) if name is not None else kw.pop("label", None)
        ax.plot(s[x], s["mean"], marker=marker, ms=3.5, color=c, label=lab, **kw)
        if s["n"].max() > 1:
            ax.fill_between(s[x], s["ci_low"], s["ci_high"], color=ax.lines[-1].get_color(), alpha=0.2, lw=0)
    return ax


@torch.no_grad()
def decision_regions(ax, net, replica: int = 0, lim: float = 6.5, n: int = 241, data=None, title=None):
    """Class regions of one replica over [-lim, lim]^2 (no noise), with the data points."""
    xs = torch.linspace(-lim, lim, n)
    gx, gy = torch.meshgrid(xs, xs, indexing="xy")
    grid = torch.stack([gx.flatten(), gy.flatten()], 1).to(net.device)
    one = net.select([replica])
    pred = one.forward(grid.unsqueeze(0)).argmax(-1)[0].reshape(n, n).cpu().numpy()
    cmap = mpl.colors.ListedColormap(["#0072B2", "#D55E00", "#009E73", "#CC79A7"])
    ax.imshow(pred, origin="lower", extent=(-lim, lim, -lim, lim), cmap=cmap, alpha=0.35,
              vmin=-0.5, vmax=3.5, interpolation="nearest")
    if data is not None:
        x, y = data
        ax.scatter(x[:, 0], x[:, 1], c=y, cmap=cmap, s=2, vmin=-0.5, vmax=3.5, lw=0)
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xlabel="$x_1$", ylabel="$x_2$", aspect="equal")
    ax.grid(False)
    if title:
        ax.set_title(title)
    return ax


def paper_markers(ax, xs, ys, label="paper (one replicate)" , **kw):
    """The study's published values as open markers."""
    ax.plot(list(xs), list(ys), ls="none", marker="D", mfc="none", color=colour("paper"), label=label, **kw)
    return ax


def fig_axes(ncols=1, nrows=1, width=None, height=None, **kw):
    use_style()
    w, h = plt.rcParams["figure.figsize"]
    return plt.subplots(nrows, ncols, figsize=(width or w * (1 if ncols == 1 else 0.62 * ncols),
                                                height or h * nrows), **kw)


def np_(t):
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
