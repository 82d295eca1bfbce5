"""Study A, first half: the pruning cliff (Methods sections 4, 5, 6, 8).

* :func:`main_experiment`: baseline -> 95% pruning -> 50% regrowth + 15 epochs, with every
  stress condition at the three stages; the gradient-guided and random regrowth arms run as one
  ensemble from the same pruned states (the regrowth comparison).
  Each arm's *regrowth selectivity* (:func:`~pruneplast.stress.regrowth_selectivity`) records
  which positions the regrowth chose.
* :func:`sparsity_sweep`: each replicate's trained baseline pruned to every level at once
  (one replica per seed x level), no regrowth.
* :func:`experiments`: both, from each replicate's trained baseline, for every data-set scheme;
  the schemes are independent and run side by side in worker processes.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import pandas as pd
import torch

from .. import parallel
from ..config import (
    BASELINE,
    CONSOLIDATION,
    SWEEP_LEVEL,
    NetworkConfig,
    PruneConfig,
    RegrowConfig,
    RunConfig,
    TrainConfig,
    check_config,
)
from ..data import EnsembleData
from ..network import EnsembleMLP
from ..operators import prune_to, regrow, train
from ..stress import MAIN_CONDITIONS, evaluate, regrowth_selectivity, structure
from .base import baseline

#: Sweep levels of the study plus finer steps across the cliff (85-97%).
SWEEP_LEVELS = (0.0, 0.5, 0.7, 0.8, 0.85, 0.88, 0.9, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97, 0.99)
SWEEP_CONDITIONS = ("clean", "standard", "internal_moderate", "combined")


def main_experiment(
    base: EnsembleMLP,
    data: EnsembleData,
    prune_cfg: PruneConfig = PruneConfig(),
    regrow_cfg: RegrowConfig = RegrowConfig(),
    consolidation: TrainConfig = CONSOLIDATION,
    conditions: Sequence[str] = MAIN_CONDITIONS,
    progress=None,
):
    """Returns (tidy results, dict of states 'baseline', 'pruned', 'recovered').

    ``regrow_cfg``: the regrowth of both arms, each with its own method (gradient-guided, random)."""
    check_config("regrow_cfg", regrow_cfg, RegrowConfig)
    frames = [
        evaluate(base, data, conditions, extra={"stage": "baseline", "regrowth": "none"}),
        structure(base, extra={"stage": "baseline", "regrowth": "none"}),
    ]
    pruned = base.clone()
    prune_to(pruned, torch.full((pruned.n_replicas,), prune_cfg.sparsity, dtype=torch.float64), prune_cfg.scope)
    frames += [
        evaluate(pruned, data, conditions, extra={"stage": "pruned", "regrowth": "none"}),
        structure(pruned, extra={"stage": "pruned", "regrowth": "none"}),
    ]
    arms = []
    for method in ("gradient", "random"):
        arm = pruned.clone()
        for d in arm.meta:
            d["regrowth"] = method
        before = arm.clone()
        cfg = dataclasses.replace(regrow_cfg, method=method)
        grown = regrow(arm, data, cfg, tag="regrow")
        frames.append(regrowth_selectivity(before, grown, data, cfg, tag="regrow", extra={"stage": "regrown"}))
        arms.append(arm)
    both = EnsembleMLP.concat(arms)
    both_data = data.select(list(range(data.n_replicas)) * 2)
    train(both, both_data, consolidation, tag="consolidation", progress=progress, desc="consolidation")
    for d in both.meta:
        d["stage"] = "recovered"
    frames += [evaluate(both, both_data, conditions), structure(both)]
    df = pd.concat(frames, ignore_index=True)
    m = base.n_replicas
    return df, {
        "baseline": base,
        "pruned": pruned,
        "recovered": both.select(range(m)),
        "recovered_random": both.select(range(m, 2 * m)),
    }


def sparsity_sweep(
    base: EnsembleMLP,
    data: EnsembleData,
    levels=SWEEP_LEVELS,
    conditions: Sequence[str] = SWEEP_CONDITIONS,
    chunk: int = 40,
    scope: str = PruneConfig().scope,
) -> pd.DataFrame:
    """Accuracy under ``conditions`` at every sparsity level (fractions), one replica per seed x level.

    ``scope``: one magnitude threshold per layer ('layer', the studies') or for the whole network."""
    levels = SWEEP_LEVEL.check_list("levels", levels)
    PruneConfig(scope=scope)  # validates the scope before any work
    frames = []
    labels = [{"sparsity_target": float(s)} for s in levels]
    sweep = base.repeat(labels)  # replica index = seed * len(levels) + level
    sweep_data = data.select([i for i in range(data.n_replicas) for _ in levels])
    prune_to(sweep, torch.tensor([d["sparsity_target"] for d in sweep.meta], dtype=torch.float64), scope)
    for start in range(0, sweep.n_replicas, chunk):
        idx = list(range(start, min(start + chunk, sweep.n_replicas)))
        part, part_data = sweep.select(idx), sweep_data.select(idx)
        frames += [evaluate(part, part_data, conditions), structure(part)]
    return pd.concat(frames, ignore_index=True)


def experiment(
    run: RunConfig,
    baseline_config: TrainConfig = BASELINE,
    network: NetworkConfig = NetworkConfig(),
    prune_cfg: PruneConfig = PruneConfig(),
    regrow_cfg: RegrowConfig = RegrowConfig(),
    consolidation: TrainConfig = CONSOLIDATION,
    levels=SWEEP_LEVELS,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The chapter on one data set: each replicate's baseline (cached, :func:`~.base.baseline`),
    :func:`main_experiment` and :func:`sparsity_sweep` (at ``prune_cfg.scope``); returns (main
    experiment's rows, sweep's rows)."""
    base, data = baseline(run, baseline_config, network)
    main, _ = main_experiment(base, data, prune_cfg, regrow_cfg, consolidation, progress=run.progress)
    sweep = sparsity_sweep(base, data, levels, scope=prune_cfg.scope)
    parallel.report()
    return main, sweep


def experiments(
    runs: Mapping[str, RunConfig],
    baseline_config: TrainConfig = BASELINE,
    network: NetworkConfig = NetworkConfig(),
    prune_cfg: PruneConfig = PruneConfig(),
    regrow_cfg: RegrowConfig = RegrowConfig(),
    consolidation: TrainConfig = CONSOLIDATION,
    levels=SWEEP_LEVELS,
    workers: int = 1,
) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """:func:`experiment` for every data-set scheme of ``runs`` (name -> its run), in that order.

    ``workers``: processes the schemes run in side by side, one share of the cores each
    (:func:`pruneplast.parallel.run_phases`; 0: one per CPU core, always 1 on a GPU), a lone
    scheme here on that share; every scheme's results equal, bit for bit, a run in this process.
    """
    levels = SWEEP_LEVEL.check_list("levels", levels)  # before any work, here rather than in a worker
    check_config("regrow_cfg", regrow_cfg, RegrowConfig)
    runs = dict(runs)
    devices = {r.device for r in runs.values()}
    workers = parallel.resolve_workers(workers, next(iter(devices)) if len(devices) == 1 else "cuda")
    quiet = workers > 1 and len(runs) > 1  # bars of worker processes would interleave
    jobs = [
        (
            dataclasses.replace(r, progress=False) if quiet else r,
            baseline_config,
            network,
            prune_cfg,
            regrow_cfg,
            consolidation,
            levels,
        )
        for r in runs.values()
    ]
    done = parallel.run_phases(experiment, jobs, workers, "data-set schemes", progress=False)
    return dict(zip(runs, done))
