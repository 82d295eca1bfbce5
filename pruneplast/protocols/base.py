"""Shared starting states: each replicate's trained baseline and its 95%-pruned network.

Baselines are the most reused state (every chapter starts from them), so they are cached on disk
under ``$PRUNEPLAST_CACHE`` (default ``<project>/.cache``), keyed by the replicate seeds, the task,
network and training configuration, and a hash of the engine's source code
(:func:`pruneplast.keys.state_hash`): any change to the engine or the protocol trains afresh, so a
cached state can never be stale.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Callable

import torch

from .. import keys, parallel
from ..config import BASELINE, NetworkConfig, PruneConfig, RelapseConfig, RunConfig, TrainConfig
from ..data import EnsembleData
from ..inputs import check_state
from ..kernels import denormals, fused
from ..network import EnsembleMLP
from ..operators import prune, relapse_challenge, train
from ..results import atomic_write, cache_root


def source_hash() -> str:
    """SHA-256 of the engine's source files (:func:`pruneplast.keys.state_hash`: what decides
    whether a cached state is valid; the book tooling, the explorer app and the figures are not
    part of it)."""
    return keys.state_hash()


def cache_dir() -> Path:
    return cache_root()


def _is_config(p) -> bool:
    return dataclasses.is_dataclass(p) and not isinstance(p, type)


def cache_key(*parts) -> str:
    text = json.dumps([dataclasses.asdict(p) if _is_config(p) else p for p in parts], sort_keys=True, default=str)
    # states trained with the fused step (the default where it is built), or with denormals kept or
    # flushed on only some threads, differ in the last bits: their own keys
    tag = fused.cache_tag() + ("" if denormals.mode() == "flushed" else f":denormals-{denormals.mode()}")
    return hashlib.sha256((text + source_hash() + tag).encode()).hexdigest()[:20]


def baseline(
    run: RunConfig,
    config: TrainConfig = BASELINE,
    network: NetworkConfig = NetworkConfig(),
    cache: bool = True,
    workers: int = 1,
) -> tuple[EnsembleMLP, EnsembleData]:
    """Each replicate's network trained from PyTorch's default initialisation (20 epochs, lr 1e-3).

    Returns the ensemble (one replica per seed of ``run``, in order) and its data. Replicates are
    cached one file per seed, so chapters with overlapping seed lists share their baselines. The
    seeds missing from the cache are trained in ``workers`` processes side by side, each on one
    share of the cores (one thread on a two-core machine) with a contiguous part of the seeds (0:
    one per CPU core; 1: all together here, on the threads this process has). A seed's trained
    state does not depend on which seeds trained beside it, nor on the threads, bit for bit (an
    unpruned replica's products and Adam's updates are its own: :class:`~pruneplast.kernels.adam.Adam`),
    so a cached baseline is the same whichever run trained it.
    """
    data = EnsembleData.build(run.seeds, run.task, run.device)
    paths = baseline_paths(run, config, network)
    have = {}
    for s, p in paths.items():
        state = (
            load_state(p, functools.partial(check_state, name="baseline", sizes=network.sizes, seeds=[s]))
            if cache
            else None
        )
        if state is not None:
            have[s] = EnsembleMLP.from_state_dict(state, run.device)
    todo = [s for s in run.seeds if s not in have]
    if todo:
        net = EnsembleMLP.init(todo, network, run.device)
        todo_data = data.select([run.seeds.index(s) for s in todo])
        w = parallel.resolve_workers(workers, run.device)
        if w > 1 and len(todo) > 1:  # an unpruned ensemble splits into contiguous parts, one a worker
            [parts] = parallel.run_ensembles(
                [(net, todo_data, False, lambda idx: (config,))],
                _train_baseline,
                w,
                "baseline training",
                [config.epochs],
                run.progress,
            )
            net = EnsembleMLP.concat(parts)
        else:
            with parallel.on_share(workers, run.device):  # a lone seed: one share of the cores
                train(net, todo_data, config, tag="baseline", progress=run.progress, desc="baseline training")
        for i, s in enumerate(todo):
            have[s] = net.select([i])
            if cache:
                _save(have[s], paths[s])
    return EnsembleMLP.concat([have[s] for s in run.seeds]), data


def _train_baseline(net: EnsembleMLP, data: EnsembleData, config: TrainConfig) -> EnsembleMLP:
    """A part of the baseline seeds trained (a job of :func:`baseline`, reporting replica-epochs)."""
    return train(
        net,
        data,
        config,
        tag="baseline",
        progress=False,
        on_epoch_end=lambda epoch, current: parallel.report(current.n_replicas),
    )


def baseline_paths(
    run: RunConfig, config: TrainConfig = BASELINE, network: NetworkConfig = NetworkConfig()
) -> dict[int, Path]:
    """Where :func:`baseline` caches each replicate seed's trained network: keyed by the seed, the
    task, the training configuration, the network and the engine's source, nothing else."""
    return {s: cache_dir() / "baselines" / f"{cache_key(s, run.task, config, network)}.pt" for s in run.seeds}


def _save(net: EnsembleMLP, path: Path) -> None:
    save_state(net.to("cpu").state_dict(), path)


def save_state(obj, path: Path) -> None:
    """``torch.save`` of a cached state, atomically (see :func:`pruneplast.results.atomic_write`)."""
    atomic_write(path, writer=lambda fh: torch.save(obj, fh))


def load_state(path: Path, check: Callable[[Any], None] | None = None):
    """A cached state, or None when the file is missing, unreadable or not what it must be.

    An unreadable file (truncated by a full disk or a killed copy, emptied, or not written by
    this package), or one that loads but fails ``check`` (a function raising ``ValueError`` that
    says what the object holds instead: another object, other keys, tensors of other shapes or
    dtypes), is reported with its path on stderr in one line and deleted, so the caller
    recomputes it: the cache holds only deterministic results, and the recomputed state equals
    the lost one.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        obj = torch.load(path, weights_only=False)
    except Exception as exc:  # zip reader, unpickling, EOF: every way a damaged file fails
        return _discard(path, f"is unreadable ({type(exc).__name__}: {str(exc)[:200]})")
    if check is not None:
        try:
            check(obj)
        except ValueError as exc:
            return _discard(path, f"does not hold what it should ({str(exc)[:300]})")
    return obj


def _discard(path: Path, problem: str) -> None:
    print(f"warning: cache file {path} {problem}; recomputing it", file=sys.stderr, flush=True)
    try:
        path.unlink()
    except OSError:
        pass
    return None


def pruned(net: EnsembleMLP, config: PruneConfig = PruneConfig()) -> EnsembleMLP:
    """A pruned copy of ``net`` (the depressed state; 95% per layer by default)."""
    return prune(net.clone(), config)


def relapse_probe(
    net: EnsembleMLP,
    data: EnsembleData,
    conditions,
    relapse: RelapseConfig = RelapseConfig(),
    relapse_conditions=("combined",),
    tag="eval",
    extra: dict | None = None,
):
    """Evaluate a state, then the relapse challenge (second pruning wave) on a copy of it.

    Returns tidy rows labelled ``phase``: accuracy (%) under ``conditions`` and weight sparsity (%)
    at ``'pre_relapse'``; accuracy under ``relapse_conditions``, weight sparsity and
    ``relapse_drop`` (pre - post accuracy, percentage points) at ``'post_relapse'``. ``net`` is
    left unchanged. Pre and post use the same evaluation noise (``tag``), so the drop is paired.
    """
    import pandas as pd

    from ..stress import evaluate, structure

    extra = dict(extra or {})
    conds = list(dict.fromkeys(list(conditions) + list(relapse_conditions)))
    pre = evaluate(net, data, conds, tag, extra={**extra, "phase": "pre_relapse"})
    with torch.no_grad():
        hit = net.clone()
    relapse_challenge(hit, relapse)
    post = evaluate(hit, data, relapse_conditions, tag, extra={**extra, "phase": "post_relapse"})
    drop = post.copy()  # rows are condition-major, replica-minor in both frames
    for c in relapse_conditions:
        at = (drop.condition == c).to_numpy()
        drop.loc[at, "value"] = (
            pre.loc[(pre.condition == c).to_numpy(), "value"].to_numpy() - post.loc[at, "value"].to_numpy()
        )
    drop["metric"] = "relapse_drop"
    frames = [pre, post, drop]
    for phase, state in (("pre_relapse", net), ("post_relapse", hit)):
        s = structure(state, extra={**extra, "phase": phase})
        frames.append(s[s.metric == "weight_sparsity"])
    return pd.concat(frames, ignore_index=True)
