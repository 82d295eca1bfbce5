"""The explorer's figure: accuracy under each test, the tolerance curve, sparsity and decision regions."""

from __future__ import annotations

import io

import numpy as np

from .knobs import CONDITIONS, STAGE_COLOURS, STAGE_LABELS, STAGES, Result


# --------------------------------------------------------------------------- drawing
def figure(result: Result, dpi: int = 80):
    """Five panels: accuracy per stress test, sparsity per layer, tolerance curve, and the decision
    regions of the first replicate pruned (untreated) and in your setting.

    Bars and lines are means over replicates; error bars and bands are ± 1 SD.
    """
    import matplotlib as mpl
    import matplotlib.pyplot as plt

    from .. import plotting

    plotting.use_style()
    fig = plt.figure(figsize=(10.0, 6.6), dpi=dpi, layout="constrained")
    gs = fig.add_gridspec(2, 3, width_ratios=[1.2, 1.0, 1.0], height_ratios=[1.0, 1.05])
    ax_acc, ax_sp = fig.add_subplot(gs[0, :2]), fig.add_subplot(gs[0, 2])
    ax_tol, ax_rp, ax_re = fig.add_subplot(gs[1, 0]), fig.add_subplot(gs[1, 1]), fig.add_subplot(gs[1, 2])
    t = result.table

    # accuracy under every stress test
    s = result.summary()
    x = np.arange(len(CONDITIONS))
    w = 0.27
    for k, stage in enumerate(STAGES):
        ax_acc.bar(
            x + (k - 1) * w,
            s[("mean", stage)],
            w,
            yerr=s[("sd", stage)],
            capsize=1.5,
            color=STAGE_COLOURS[stage],
            label=STAGE_LABELS[stage],
            error_kw={"lw": 0.8},
        )
    ax_acc.set_xticks(
        x, [c.replace("internal_", "int. ").replace("input_", "input ") for c in CONDITIONS], rotation=30, ha="right"
    )
    ax_acc.set(ylim=(0, 104), ylabel="accuracy (%)", title="accuracy under each stress test")
    ax_acc.axhline(25, color="0.6", lw=0.8, ls=":")

    # weight sparsity per layer
    ls = result.layer_sparsity()
    y = np.arange(len(ls.index))
    for k, stage in enumerate(("pruned", "explored")):
        ax_sp.barh(y + (k - 0.5) * 0.38, ls[("mean", stage)], 0.38, xerr=ls[("sd", stage)], color=STAGE_COLOURS[stage])
    sizes = result.net.sizes
    ax_sp.set_yticks(y, [f"{a}→{b}" for a, b in zip(sizes[:-1], sizes[1:])])
    ax_sp.invert_yaxis()
    ax_sp.set(xlim=(0, 100), xlabel="weights pruned (%)", title="sparsity per layer")

    # tolerance curve
    tol = t[t.experiment == "tolerance"].copy()
    tol["sigma"] = tol["condition"].str.removeprefix("sigma_").astype(float)
    for stage in STAGES:
        g = tol[tol.stage == stage].groupby("sigma")["value"]
        m, sd = g.mean(), g.std(ddof=0)
        ax_tol.plot(m.index, m, marker="o", ms=3, color=STAGE_COLOURS[stage])
        ax_tol.fill_between(m.index, m - sd, m + sd, color=STAGE_COLOURS[stage], alpha=0.2, lw=0)
    ax_tol.set(xlabel="internal noise SD", ylabel="standard accuracy (%)", ylim=(0, 104), title="noise tolerance")

    # decision regions of the first replicate, pruned and explored
    cmap = mpl.colors.ListedColormap(list(plotting.CLASSES))
    seed = result.net.seeds[0]
    for ax, reg, title in (
        (ax_rp, result.pruned_regions, f"pruned, untreated (seed {seed})"),
        (ax_re, result.regions, f"your setting (seed {seed})"),
    ):
        if reg is None:
            ax.set_axis_off()
            continue
        ax.imshow(
            reg,
            origin="lower",
            extent=(-6.5, 6.5, -6.5, 6.5),
            cmap=cmap,
            alpha=0.45,
            vmin=-0.5,
            vmax=3.5,
            interpolation="nearest",
        )
        ax.plot([-3, 3, -3, 3], [-3, 3, 3, -3], "k+", ms=6)
        ax.set(xlabel="$x_1$", ylabel="$x_2$", aspect="equal", title=title)
        ax.grid(False)
    n = len(result.net.seeds)
    handles = [mpl.patches.Patch(color=STAGE_COLOURS[st], label=STAGE_LABELS[st]) for st in STAGES]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize="small", frameon=False)
    fig.suptitle(
        f"{result.knobs.describe()}\nmeans over {n} replicate{'s' if n > 1 else ''}, bars ± 1 SD; "
        "dotted line: chance (25%); + class centres",
        fontsize="medium",
    )
    return fig


def png(fig, dpi: int = 80) -> bytes:
    """A figure as PNG bytes (the figure is closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()
