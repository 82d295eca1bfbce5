"""Plotting helpers: one style, and one colour table in which each colour keeps one meaning.

``use_style()`` loads the package's ``pruneplast.mplstyle``. :func:`colour` is the only source of
colours for the book's figures. Families of things that appear on the same figures use disjoint
colours, and a colour is shared only by names that mean the same thing (:data:`SAME`: the pruned
network is the untreated one; the recovered network of study A is the gradient-regrown one).
Treatment arms take their colour from their registry entry (:mod:`pruneplast.arms`). Tested in
``tests/test_results.py``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt
import pandas as pd
import torch

from . import arms
from .results import summarise
from .tables import plain

STYLE = Path(__file__).with_name("pruneplast.mplstyle")

#: States of the network and regrowth methods (Okabe-Ito hues; the arms' are in pruneplast.arms).
STATES = {
    "baseline": "#000000",
    "pruned": "#D55E00",
    "recovered": "#0072B2",
    "gradient": "#0072B2",
    "random": "#E69F00",
    "explored": "#56B4E9",
}
#: The studies' own values (open markers) and reference lines.
STUDY = {"paper": "#7F7F7F", "study": "#7F7F7F"}
#: Stress conditions, light to dark with the severity of the test (cividis).
CONDITIONS = {
    "clean": "#BCAF6F",
    "standard": "#8F8B5E",
    "internal_moderate": "#575C6D",
    "internal_high": "#414D6B",
    "combined": "#2A3F6C",
    "internal_extreme": "#00204C",
}
#: Study A's regimens, by the amount of regrowth they give (the pruned network as above).
REGIMENS = {
    "pruned": "#D55E00",
    "acute_moderate": "#F0E442",
    "short_chronic": "#B5DE2B",
    "moderate_chronic": "#6ECE58",
    "long_chronic": "#1F9E89",
    "full_acute": "#3E4989",
    "epochs_matched": "#AA4499",
}
#: The two data-set schemes (Methods section 1).
DATA_SETS = {"shared": "#332288", "per_replicate": "#88CCEE"}
#: Before and after the relapse challenge (light grey, wine: no arm's or state's hue).
RELAPSE = {"before": "#AAAAAA", "after": "#882255"}
#: The four classes of the task (decision regions and data points).
CLASSES = ("#77AADD", "#EE8866", "#EEDD88", "#99DDFF")
#: One marker per chapter, for figures that gather values from several chapters (the published
#: values against ours): chapters are told apart by shape, in one neutral colour, so that no colour
#: of an arm or a state takes a second meaning there.
CHAPTER_MARKERS = {
    "02_pruning_cliff": "o",
    "03_consolidation": "s",
    "04_regimens": "^",
    "05_treatments": "D",
    "06_longitudinal_relapse": "v",
}
#: One colour per changed modelling choice in the atlas's cliff figure (chapter 7; the reference is
#: black). Muted hues picked at least 23 CIE76 units from every other colour of the book and 27 from
#: each other, so that no setting reads as an arm, a state or a condition.
ATLAS_CHOICES = {
    "width": "#DD8855",
    "depth": "#AA99FF",
    "task_noise": "#995544",
    "prune_scope": "#FF8888",
    "learning_rates": "#667700",
    "regrowth_init": "#664400",
    "data_sets": "#005544",
}
#: The colour of values gathered from several chapters.
GATHERED = "#333333"
#: The scorecard's verdicts (text colour of the verdict cells).
VERDICTS = {"reproduced": "#1B7837", "consistent": "#B35806", "differs": "#B2182B", "not yet covered": "#6C757D"}
#: Names that share a colour because they mean the same thing.
SAME = ({"pruned", "untreated"}, {"recovered", "gradient", "ketamine"}, {"paper", "study"})
_TABLE = {**STATES, **STUDY, **CONDITIONS, **REGIMENS, **DATA_SETS, **RELAPSE}


def colour(name: str, default: str | None = None) -> str | None:
    """The colour of a state, arm, condition, regimen, data set or relapse phase (or ``default``)."""
    if name in arms.names():
        return arms.arm(name).colour
    return _TABLE.get(name, default)


def use_style() -> None:
    """The house style; inside a notebook, figures are also sent as PNG at twice the resolution
    ("retina"), so that they are sharp on high-density screens at the same displayed size."""
    mpl.style.use(str(STYLE))
    try:
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:
        return
    if get_ipython() is not None:
        set_matplotlib_formats("retina")


def line_ci(
    ax,
    df: pd.DataFrame,
    x: str,
    group: str | None = None,
    label_map=None,
    colours=None,
    marker="o",
    errorbars: bool = False,
    dodge: float = 0.0,
    **kw,
):
    """Mean line with a 95% CI per group; ``df`` is tidy (one row per seed).

    The CI is a shaded band, or with ``errorbars`` a whisker at each point; ``dodge`` shifts
    group k's x values by a factor (1 + dodge) ** (k - (n - 1) / 2) so whiskers of groups do not
    overlap (a factor, so it works on a log axis too).
    """
    groups = [(None, df)] if group is None else list(df.groupby(group, sort=False))
    for k, (name, g) in enumerate(groups):
        s = summarise(g, [x]).sort_values(x)
        c = (colours or {}).get(name, colour(str(name)))
        if name is None:
            lab = kw.pop("label", None)
        elif label_map:
            lab = label_map.get(name, name)
        else:  # an arm by its readers' name; other groups as they are
            lab = plain(name) if name in arms.names() else name
        xs = s[x] * (1 + dodge) ** (k - (len(groups) - 1) / 2) if dodge else s[x]
        ax.plot(xs, s["mean"], marker=marker, ms=3.5, color=c, label=lab, **kw)
        if s["n"].max() > 1:
            if errorbars:
                ax.errorbar(
                    xs,
                    s["mean"],
                    yerr=[s["mean"] - s["ci_low"], s["ci_high"] - s["mean"]],
                    fmt="none",
                    ecolor=ax.lines[-1].get_color(),
                    elinewidth=1,
                    capsize=2,
                )
            else:
                ax.fill_between(xs, s["ci_low"], s["ci_high"], color=ax.lines[-1].get_color(), alpha=0.2, lw=0)
    return ax


def duration_axis(ax, durations) -> None:
    """A log x axis labelled at the given durations only (no crowded minor labels)."""
    ax.set_xscale("log")
    ax.set_xticks(list(durations), [f"{d:g}" for d in durations])
    ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())
    ax.xaxis.set_minor_locator(mpl.ticker.NullLocator())


@torch.no_grad()
def decision_regions(ax, net, replica: int = 0, lim: float = 6.5, n: int = 241, data=None, title=None):
    """Class regions of one replica over [-lim, lim]^2 (no noise), with the data points."""
    xs = torch.linspace(-lim, lim, n)
    gx, gy = torch.meshgrid(xs, xs, indexing="xy")
    grid = torch.stack([gx.flatten(), gy.flatten()], 1).to(net.device)
    one = net.select([replica])
    pred = one.forward(grid.unsqueeze(0)).argmax(-1)[0].reshape(n, n).cpu().numpy()
    cmap = mpl.colors.ListedColormap(list(CLASSES))
    ax.imshow(
        pred,
        origin="lower",
        extent=(-lim, lim, -lim, lim),
        cmap=cmap,
        alpha=0.35,
        vmin=-0.5,
        vmax=3.5,
        interpolation="nearest",
    )
    if data is not None:
        x, y = data
        ax.scatter(x[:, 0], x[:, 1], c=y, cmap=cmap, s=2, vmin=-0.5, vmax=3.5, lw=0)
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xlabel="$x_1$", ylabel="$x_2$", aspect="equal")
    ax.grid(False)
    if title:
        ax.set_title(title)
    return ax


def paper_markers(ax, xs, ys, label="paper (one replicate)", **kw):
    """The study's published values as open markers."""
    ax.plot(list(xs), list(ys), ls="none", marker="D", mfc="none", color=colour("paper"), label=label, **kw)
    return ax


def fig_axes(ncols=1, nrows=1, width=None, height=None, **kw):
    use_style()
    w, h = plt.rcParams["figure.figsize"]
    return plt.subplots(
        nrows, ncols, figsize=(width or w * (1 if ncols == 1 else 0.62 * ncols), height or h * nrows), **kw
    )
