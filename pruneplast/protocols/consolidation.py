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
    check_config("regrow_cfg", regrow_cfg, RegrowConfig)
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
