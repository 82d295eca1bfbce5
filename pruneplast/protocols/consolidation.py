"""Study A: how long to consolidate after regrowth (Methods sections 5-8).

From each replicate's 95%-pruned network, 50% of the pruned weights regrow (gradient-guided), then
the network is fine-tuned (masked Adam, lr 5e-4). The study ran 0, 5, 10, 15 and 20 epochs as
separate experiments; one 20-epoch run evaluated after every epoch is the same protocol (a
training run's first ``e`` epochs do not depend on how long it will continue), so
:func:`duration_curve` trains once and takes checkpoints. At every checkpoint it evaluates the
stress battery and applies the relapse challenge (a second pruning wave of 40% of the remaining
weights) to a copy, leaving the training run untouched.

Random streams: regrowth uses the tag ``"regrow"`` and training ``"consolidation"``, as the
pruning-cliff chapter's main experiment does, so this chapter's 15-epoch checkpoint is that
chapter's recovered network (same seeds and baseline).
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from .. import parallel
from ..config import CONSOLIDATION, RegrowConfig, RelapseConfig, TrainConfig, check_int_list
from ..data import EnsembleData
from ..network import EnsembleMLP
from ..operators import regrow, train
from ..results import fmt_mean_ci, paired_difference, summarise
from .base import relapse_probe

#: Conditions of the study's duration table (plus standard and moderate noise).
CONDITIONS = ("clean", "standard", "internal_moderate", "internal_high", "internal_extreme", "combined")
#: The durations the study ran (epochs of consolidation).
TABLE_EPOCHS = (0, 5, 10, 15, 20)
#: Columns of the study's duration table: (label, phase, condition, metric), in its order.
TABLE_COLUMNS = (
    ("clean", "pre_relapse", "clean", "accuracy"),
    ("combined", "pre_relapse", "combined", "accuracy"),
    ("extreme", "pre_relapse", "internal_extreme", "accuracy"),
    ("post-relapse combined", "post_relapse", "combined", "accuracy"),
    ("relapse drop", "post_relapse", "combined", "relapse_drop"),
)


def duration_curve(
    start: EnsembleMLP,
    data: EnsembleData,
    regrow_fraction: float = 0.5,
    consolidation: TrainConfig = TrainConfig(epochs=20, lr=CONSOLIDATION.lr),
    checkpoints: Sequence[int] | None = None,
    conditions: Sequence[str] = CONDITIONS,
    relapse: RelapseConfig = RelapseConfig(),
    progress: bool | None = None,
    regrow_init_std: float = RegrowConfig().init_std,
    workers: int = 1,
) -> pd.DataFrame:
    """Regrow ``start`` (a pruned ensemble, left unchanged) once, consolidate, evaluate at checkpoints.

    ``regrow_init_std``: SD of the regrown weights.
    ``workers``: the run is one ensemble trained in order, so it does not split; it runs here on
    one of ``workers`` shares of the cores (:func:`pruneplast.parallel.on_share`: 0 = one share
    per CPU core, so one thread; 1 = the threads this process has), which keeps its speed when
    other processes use the other cores. The results do not depend on it, bit for bit.
    checkpoints: consolidation epochs (0 = right after regrowth) at which to evaluate; default
        every epoch from 0 to ``consolidation.epochs``.
    Returns tidy rows (see :func:`~pruneplast.protocols.base.relapse_probe`) labelled
    ``experiment='consolidation'`` and ``epochs``; accuracies in %, sparsities in % of weights,
    relapse drop in percentage points.
    """
    regrow_cfg = RegrowConfig(fraction=regrow_fraction, init_std=regrow_init_std)  # validated early
    n_epochs = consolidation.epochs
    if checkpoints is None:
        wanted = set(range(n_epochs + 1))
    else:
        wanted = set(check_int_list("checkpoints", list(checkpoints), 0))
        late = sorted(e for e in wanted if e > n_epochs)
        if late:
            raise ValueError(f"checkpoints must be in [0, {n_epochs}] (the consolidation epochs); got {late}")
    frames: list[pd.DataFrame] = []

    def probe(epoch: int, net: EnsembleMLP) -> None:
        if epoch in wanted:
            frames.append(relapse_probe(net, data, conditions, relapse, extra={"epochs": epoch}))

    with parallel.on_share(workers, str(start.device)):
        net = start.clone()
        regrow(net, data, regrow_cfg, tag="regrow")
        probe(0, net)
        last = max(wanted)
        if last > 0:
            train(
                net,
                data,
                TrainConfig(epochs=last, lr=consolidation.lr, batch_size=consolidation.batch_size),
                tag="consolidation",
                on_epoch_end=probe,
                progress=progress,
                desc="consolidation",
            )
    df = pd.concat(frames, ignore_index=True)
    df.insert(0, "experiment", "consolidation")
    return df


# --------------------------------------------------------------------------- tables for the chapter
def _pick(df: pd.DataFrame, phase: str, condition: str, metric: str) -> pd.DataFrame:
    return df[(df.phase == phase) & (df.condition == condition) & (df.metric == metric)]


def duration_table(df: pd.DataFrame, paper: dict, epochs: Sequence[int] = TABLE_EPOCHS) -> pd.DataFrame:
    """Ours (mean [95% CI] over seeds) above the study's value, per consolidation duration.

    ``paper`` is the study's table: epochs -> [clean, combined, extreme, post-relapse combined,
    relapse drop]. Durations that were not run are left out.
    """
    have = set(int(e) for e in df.epochs.unique())
    rows = []
    for e in [int(e) for e in epochs if int(e) in have]:
        ours, study = {"epochs": e, "source": "ours"}, {"epochs": e, "source": "study"}
        for j, (label, phase, cond, metric) in enumerate(TABLE_COLUMNS):
            s = summarise(_pick(df[df.epochs == e], phase, cond, metric), ["condition"]).iloc[0]
            ours[label] = fmt_mean_ci(s["mean"], s["ci_low"], s["ci_high"])
            ref = paper.get(e)
            study[label] = "" if ref is None else f"{ref[j]:.1f}"
        rows += [ours, study]
    return pd.DataFrame(rows).set_index(["epochs", "source"])


def curve(df: pd.DataFrame, phase: str = "pre_relapse", metric: str = "accuracy") -> pd.DataFrame:
    """Rows of one phase and metric, for plotting against ``epochs`` (one row per seed)."""
    return df[(df.phase == phase) & (df.metric == metric)]


def extreme_gain(df: pd.DataFrame, condition: str = "internal_extreme", to_epochs: int | None = None) -> pd.Series:
    """Paired gain in accuracy (points) from 0 epochs to ``to_epochs`` (default: the longest run).

    Returns mean, sd, n, ci_low, ci_high and the durations compared.
    """
    acc = _pick(df, "pre_relapse", condition, "accuracy").copy()
    to = int(acc.epochs.max()) if to_epochs is None else int(to_epochs)
    acc = acc[acc.epochs.isin([0, to])]
    acc["duration"] = acc.epochs.map({0: "start", to: "end"})
    out = paired_difference(acc, "duration", "end", "start").iloc[0]
    return pd.concat([out, pd.Series({"from_epochs": 0, "to_epochs": to})])


def relapse_drop(df: pd.DataFrame, condition: str = "combined") -> pd.DataFrame:
    """Relapse drop (points, pre - post) per duration: mean, sd, n and 95% CI."""
    return summarise(_pick(df, "post_relapse", condition, "relapse_drop"), ["epochs"])
