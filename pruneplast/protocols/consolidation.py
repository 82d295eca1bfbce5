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

import numpy as np
import pandas as pd

from .. import parallel
from ..config import CONSOLIDATION, RegrowConfig, RelapseConfig, TrainConfig, check_config, check_int_list
from ..data import EnsembleData
from ..network import EnsembleMLP
from ..operators import regrow, train
from .base import relapse_probe

#: Conditions of the study's duration table (plus standard and moderate noise).
CONDITIONS = ("clean", "standard", "internal_moderate", "internal_high", "internal_extreme", "combined")


def duration_curve(
    start: EnsembleMLP,
    data: EnsembleData,
    regrow_cfg: RegrowConfig = RegrowConfig(),
    consolidation: TrainConfig = TrainConfig(epochs=20, lr=CONSOLIDATION.lr),
    checkpoints: Sequence[int] | None = None,
    conditions: Sequence[str] = CONDITIONS,
    relapse: RelapseConfig = RelapseConfig(),
    progress: bool | None = None,
    workers: int = 1,
) -> pd.DataFrame:
    """Regrow ``start`` (a pruned ensemble, left unchanged) once (``regrow_cfg``), consolidate, evaluate
    at checkpoints.

    ``workers``: processes the replicas are split between, one contiguous part each, side by side
    on one share of the cores each (:func:`pruneplast.parallel.run_jobs`; 0: one per CPU core, so
    one thread each on a machine of two cores; 1: here, on the threads this process has; always 1
    on a GPU). Every replica regrows, trains and is evaluated on its own data and random streams,
    and its sums do not depend on the replicas beside it, so the rows equal a run in one process at
    the same thread count, bit for bit, in the same order (but for the two padded-block cases that
    :class:`~pruneplast.kernels.compact.CompactLayer` names, which the book's networks do not meet).

    checkpoints: consolidation epochs (0 = right after regrowth) at which to evaluate; default
        every epoch from 0 to ``consolidation.epochs``.
    Returns tidy rows (see :func:`~pruneplast.protocols.base.relapse_probe`) labelled
    ``experiment='consolidation'`` and ``epochs``; accuracies in %, sparsities in % of weights,
    relapse drop in percentage points.
    """
    check_config("regrow_cfg", regrow_cfg, RegrowConfig)
    n_epochs = consolidation.epochs
    if checkpoints is None:
        wanted = set(range(n_epochs + 1))
    else:
        wanted = set(check_int_list("checkpoints", list(checkpoints), 0))
        late = sorted(e for e in wanted if e > n_epochs)
        if late:
            raise ValueError(f"checkpoints must be in [0, {n_epochs}] (the consolidation epochs); got {late}")
    workers = parallel.resolve_workers(workers, str(start.device))
    m = start.n_replicas
    settings = (regrow_cfg, consolidation.lr, consolidation.batch_size, sorted(wanted), tuple(conditions), relapse)
    if workers > 1 and m > 1:
        idx = parallel.parts(m, workers)
        done = parallel.run_jobs(
            _curve,
            [(start.select(i), data.select(i), *settings, False, True) for i in idx],
            workers,
            total=(max(wanted) + 1) * m,  # the regrown state, then every epoch
            desc="consolidation",
            progress=progress,
            unit="replica-epoch",
        )
        df = _interleave(done, [len(i) for i in idx])
    else:
        with parallel.on_share(workers, str(start.device)):
            df = _curve(start, data, *settings, progress, False)
    df.insert(0, "experiment", "consolidation")
    return df


def _curve(start, data, regrow_cfg, lr, batch_size, wanted, conditions, relapse, progress, report) -> pd.DataFrame:
    """:func:`duration_curve`'s rows for the replicas of ``start``; ``report``: as a worker's job,
    count the replicas to the parent's bar after regrowth and after every epoch."""
    frames: list[pd.DataFrame] = []

    def probe(epoch: int, net: EnsembleMLP) -> None:
        if report:
            parallel.report(net.n_replicas)
        if epoch in wanted:
            frames.append(relapse_probe(net, data, conditions, relapse, extra={"epochs": epoch}))

    net = start.clone()
    regrow(net, data, regrow_cfg, tag="regrow")
    probe(0, net)
    last = max(wanted)
    if last > 0:
        train(
            net,
            data,
            TrainConfig(epochs=last, lr=lr, batch_size=batch_size),
            tag="consolidation",
            on_epoch_end=probe,
            progress=progress,
            desc="consolidation",
        )
    return pd.concat(frames, ignore_index=True)


def _interleave(frames: Sequence[pd.DataFrame], sizes: Sequence[int]) -> pd.DataFrame:
    """The rows of the parts' frames (contiguous parts of ``sizes`` replicas, in order) in the order
    of one run over all replicas: every frame is a run of groups (a checkpoint's condition or
    metric) of one row per replica, replica-minor, and so is the whole run's."""
    keyed, first = [], 0
    for df, n in zip(frames, sizes):
        if len(df) % n or len(df) // n != len(frames[0]) // sizes[0]:
            raise AssertionError("the parts' rows do not come in groups of one row per replica")
        pos = np.arange(len(df))
        keyed.append(df.assign(_group=pos // n, _replica=first + pos % n))
        first += n
    both = pd.concat(keyed, ignore_index=True).sort_values(["_group", "_replica"], kind="stable")
    return both.drop(columns=["_group", "_replica"]).reset_index(drop=True)
