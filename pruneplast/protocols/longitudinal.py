"""Study B, second half: maintenance, discontinuation and manic relapse (Methods sections 2, 9).

Per treatment and replicate, starting from the treated network with its drug on:

1. maintenance: the mood stabiliser at protection p = 1.0, masked Adam at lr 1e-6, no noise,
   for D epochs, D in {25, 50, 100, 150, 200, 300};
2. discontinuation: drug off (gain 1.0, damping 1.0, ReLU), same weights;
3. protection decays for 50 steps, losing ``decay_rate`` per step (linear, floored at 0):
   p = max(0, 1 - 50 rate) = 0.90 / 0.25 / 0.60 for the ketamine- / SSRI- / neurosteroid-like
   networks (rates 0.002 / 0.015 / 0.008);
4. biased-stress test (N(0, 1) + b after each hidden activation, b = 1.0 (1 - 0.3 p));
   manic relapse if accuracy < 60%.

Relapse probability of a replicate = % of its durations that relapsed. The durations are
checkpoints of *one* maintenance run of max(D) epochs per replicate and treatment (taken by
``on_epoch_end``), which is the same protocol as separate runs (the optimiser and the streams do
not know where the run will stop) at a fraction of the cost; each treatment's replicas train as
one ensemble. The checkpoints are kept, so the sensitivity analysis (relapse probability as a function
of the protection left at test and of the threshold) only re-evaluates saved states.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from .. import parallel
from ..arms import Arm
from ..config import (
    MaintenanceConfig,
    TrainConfig,
    check_fractions,
    check_int,
    check_real,
)
from ..data import EnsembleData
from ..network import EnsembleMLP
from ..operators import train
from ..stress import accuracy
from .treatments import joint

#: Default grid of the sensitivity analysis: protection left at test.
SENSITIVITY_PROTECTIONS = tuple(round(0.1 * k, 1) for k in range(11))
#: Default grid of the sensitivity analysis: relapse thresholds (% biased accuracy).
SENSITIVITY_THRESHOLDS = (40, 45, 50, 55, 60, 65, 70, 75, 80)


def protection_at_test(decay_rate: float, steps: int = 50, start: float = 1.0) -> float:
    """Protection left after ``steps`` steps that each remove ``decay_rate`` (floored at 0).

    ``p_k = max(0, p_{k-1} - rate)`` with ``p_0 = start``, i.e. ``max(0, start - steps * rate)``.
    """
    rate = check_real("decay_rate", decay_rate, 0.0, 1.0)
    steps = check_int("decay_steps", steps, 0)
    start = check_real("protection", start, 0.0, 1.0)
    return max(0.0, start - steps * rate)


def _maintain_run(
    net: EnsembleMLP, data: EnsembleData, durations: Sequence[int], lr: float, protection: float, prefix: str | None
) -> dict[int, Any]:
    """One ensemble's maintenance run; the state after each duration is saved to ``<prefix>-<epoch>.pt``.

    Returns {duration: file}. Checkpoints go to disk as they are taken, so a worker process on this
    machine never holds them (at paper scale 60-120 MB per run) and never sends them through a
    pipe. With ``prefix=None`` (a worker of a Dask cluster, whose disk may be another machine's)
    it returns {duration: state dict} instead.
    """
    net = net.clone()
    net.set_modulation(protection=protection)
    files: dict[int, Any] = {}

    def snapshot(epoch: int, current: EnsembleMLP) -> None:
        if epoch > 0:
            parallel.report(current.n_replicas)
        if epoch in durations:
            if prefix is None:
                files[epoch] = copy.deepcopy(current.state_dict())  # training goes on in place
            else:
                files[epoch] = f"{prefix}-{epoch}.pt"
                torch.save(current.state_dict(), files[epoch])

    snapshot(0, net)
    train(
        net, data, TrainConfig(epochs=max(durations), lr=lr), tag="maintenance", on_epoch_end=snapshot, progress=False
    )
    return files


def maintain(
    states: Mapping[str, EnsembleMLP],
    data: EnsembleData,
    config: MaintenanceConfig = MaintenanceConfig(),
    progress: bool | None = None,
    workers: int = 1,
    scheduler: str = "",
) -> tuple[dict[int, EnsembleMLP], EnsembleData]:
    """One maintenance run of max(durations) epochs for every treated replica.

    ``states``: treatment name -> ensemble of M replicas with its drug on (from
    :func:`~pruneplast.protocols.treatments.treat`). Returns (duration -> copy of the whole
    ensemble after that many epochs, treatments in order as in
    :func:`~pruneplast.protocols.treatments.joint`, drug and protection still on; its data).

    Each treatment's replicas train as their own ensemble: the ketamine-like replicas are 47.5%
    sparse (dense products) and the others 95% sparse (sparse products), and one mixed ensemble
    was measured 1.5x slower per step than the groups run one after the other. Every replica draws
    from its own random streams, so the result does not depend on the grouping (tested).

    ``workers``: processes to run the ensembles in side by side (:func:`pruneplast.parallel.run_jobs`;
    0: one per CPU core, always 1 on a GPU). With more than one, the ensembles whose step shrinks
    with the replicas a process holds are split into one part per worker: the ketamine-like one
    (mostly dense products) and, on the compiled sparse step, the 95%-sparse ones; on the standard
    path those stay whole (:func:`~pruneplast.parallel.splits_well`,
    :func:`~pruneplast.parallel.run_ensembles`). A replica's sums do not depend on the replicas
    beside it, so the parts give a one-process run's bits at the same thread count (tested; ``make
    bench`` found one process on two threads and two one-thread workers 0.0 apart too).
    ``scheduler``: a Dask scheduler's address to send the runs to instead (their checkpoints then
    come back in memory, not through this disk).
    """
    names = [n for n in states if n != "untreated"]
    if not names:
        raise ValueError("maintenance needs at least one treated network (ketamine, ssri or neurosteroid)")
    device = states[names[0]].device
    workers = parallel.resolve_workers(workers, str(device), scheduler)
    durations = sorted(set(config.durations))
    with tempfile.TemporaryDirectory(prefix="pruneplast-maintenance-") as tmp:
        jobs = [
            (
                states[n],
                data,
                False,
                lambda idx, n=n: (
                    durations,
                    config.lr,
                    config.protection,
                    None if scheduler else str(Path(tmp) / f"{n}-{idx[0]}"),
                ),
            )
            for n in names
        ]
        files = parallel.run_ensembles(
            jobs, _maintain_run, workers, "maintenance", [max(durations)] * len(names), progress, scheduler
        )
        # each duration's parts, in treatment and replica order, joined into one ensemble
        checkpoints = {
            e: EnsembleMLP.concat(
                [
                    EnsembleMLP.from_state_dict(
                        part[e]
                        if isinstance(part[e], dict)
                        else torch.load(part[e], map_location=device, weights_only=False),
                        device,
                    )
                    for per_treatment in files
                    for part in per_treatment
                ]
            )
            for e in durations
        }
    _, d = joint({n: states[n] for n in names}, data)
    return checkpoints, d


def discontinue(net: EnsembleMLP, protection) -> EnsembleMLP:
    """A copy with the drug off (gain 1.0, damping 1.0, ReLU) and the given protection (scalar or (M,))."""
    off = net.clone().reset_modulation()
    return off.set_modulation(protection=protection)


def biased_after_discontinuation(
    checkpoints: Mapping[int, EnsembleMLP],
    data: EnsembleData,
    cfgs: Mapping[str, Arm],
    config: MaintenanceConfig = MaintenanceConfig(),
    protections: Sequence[float] | None = None,
    tag="eval",
) -> pd.DataFrame:
    """Biased-stress accuracy (%) after discontinuation at every checkpoint, tidy.

    With ``protections=None`` each replica is tested at its treatment's own protection
    (:func:`protection_at_test` of its decay rate); otherwise at every value of the grid (the
    sensitivity analysis). Columns: seed, treatment, duration, protection, drug, condition,
    metric ('accuracy'), value.
    """
    rows = []
    for duration, net in sorted(checkpoints.items()):
        if protections is None:
            grid = [
                [
                    protection_at_test(cfgs[m["treatment"]].decay_rate, config.decay_steps, config.protection)
                    for m in net.meta
                ]
            ]
        else:
            grid = [[p] * net.n_replicas for p in check_fractions("protections", protections)]
        off = discontinue(net, net.protection)
        # every protection of the grid under the same noise draws (each equals a separate test)
        accs = accuracy(off, data, "biased", tag=tag, bias=config.bias, protections=grid)
        for ps, acc in zip(grid, accs):
            for meta, p, a in zip(off.meta, ps, acc.tolist()):
                rows.append(
                    {
                        "seed": meta["seed"],
                        "treatment": meta["treatment"],
                        "duration": duration,
                        "protection": float(p),
                        "drug": "off",
                        "condition": "biased",
                        "metric": "accuracy",
                        "value": float(a),
                    }
                )
    return pd.DataFrame(rows)


def relapses(acc: pd.DataFrame, thresholds: Sequence[float]) -> pd.DataFrame:
    """Per row of biased accuracy and threshold: relapse indicator in % (100 if accuracy < threshold)."""
    out = []
    for t in thresholds:
        check_real("threshold", t, 0.0, 100.0)
        out.append(acc.assign(metric="relapse", threshold=float(t), value=np.where(acc["value"] < t, 100.0, 0.0)))
    return pd.concat(out, ignore_index=True)


def relapse_probability(rel: pd.DataFrame) -> pd.DataFrame:
    """Relapse probability (%) per replicate: the mean relapse indicator over durations.

    Grouped by treatment, seed, protection and threshold; ``duration`` is NaN (all durations).
    """
    keys = ["treatment", "seed", "protection", "threshold", "drug", "condition"]
    g = rel.groupby(keys, sort=False)["value"].mean().reset_index()
    return g.assign(metric="relapse_probability", duration=np.nan)


def longitudinal(
    states: Mapping[str, EnsembleMLP],
    data: EnsembleData,
    cfgs: Mapping[str, Arm],
    config: MaintenanceConfig = MaintenanceConfig(),
    protections: Sequence[float] = SENSITIVITY_PROTECTIONS,
    thresholds: Sequence[float] = SENSITIVITY_THRESHOLDS,
    progress: bool | None = None,
    workers: int = 1,
    scheduler: str = "",
) -> tuple[pd.DataFrame, dict[int, EnsembleMLP]]:
    """The whole chapter: maintenance, discontinuation tests, relapse, sensitivity. Tidy rows.

    experiments: ``relapse`` (biased accuracy and relapse indicator per replicate x duration at the
    treatment's own protection and ``config.threshold``; relapse probability per replicate) and
    ``sensitivity``: ``sweep='protection'`` holds biased accuracy at every protection of
    ``protections`` and the relapse probability there at every threshold of ``thresholds``;
    ``sweep='threshold'`` the relapse probability at each treatment's own protection at every
    threshold. ``workers``: processes for the maintenance runs (:func:`maintain`). Returns (rows,
    checkpoints).
    """
    checkpoints, d = maintain(states, data, config, progress, workers, scheduler)
    checkpoints = {k: v for k, v in checkpoints.items() if k in config.durations}
    own = biased_after_discontinuation(checkpoints, d, cfgs, config)
    rel = relapses(own, [config.threshold])
    main = pd.concat([own.assign(threshold=config.threshold), rel, relapse_probability(rel)], ignore_index=True)
    thr = sorted(set(float(t) for t in thresholds) | {config.threshold})
    sens = biased_after_discontinuation(checkpoints, d, cfgs, config, protections)
    frames = [
        main.assign(experiment="relapse"),
        sens.assign(experiment="sensitivity", sweep="protection", threshold=np.nan),
        relapse_probability(relapses(sens, thr)).assign(experiment="sensitivity", sweep="protection"),
        relapse_probability(relapses(own, thr)).assign(experiment="sensitivity", sweep="threshold"),
    ]
    return pd.concat(frames, ignore_index=True), checkpoints
