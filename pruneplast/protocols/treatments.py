"""Study B, first half: three routes out of the pruned state (Methods sections 2, 5, 6, 7, 9).

Every treatment starts from its replicate's own 95%-pruned network:

* untreated: the pruned network as it is;
* ketamine-like: gain 1.25; 50% gradient-guided regrowth (scores at gain 1.0); 15 epochs of
  masked Adam at lr 5e-4 with the gain on (47.5% weight sparsity);
* SSRI-like: mask fixed; 100 epochs at lr 1e-5; during epoch e (0..E-1) internal noise
  sigma = 0.5 (1 - e/(E-1)) is on in training and the gain is 1 + 0.6 e/(E-1); 1.6 afterwards;
* neurosteroid-like: mask fixed; tanh, damping 0.7, gain 0.85; 10 epochs at lr 5e-4.
  Off drug: ReLU, damping 1.0, gain 1.0, same weights.

Treatments whose training has no schedule and the same number of epochs train as one ensemble
(one learning rate per replica); the SSRI-like schedule sets noise and gain for a whole ensemble,
so it trains on its own. Training streams are keyed on each replica's seed and a tag, so the
grouping never changes a result beyond float rounding. Evaluations run with the drug on
(``drug='on'``) unless labelled ``drug='off'``; every table is tidy (one row per replica x
condition x metric), accuracies in %.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import pandas as pd

from .. import arms, parallel
from ..arms import Arm
from ..config import (
    BASELINE,
    NetworkConfig,
    PruneConfig,
    RegrowConfig,
    RunConfig,
    TrainConfig,
    check_choice,
    check_real,
)
from ..data import EnsembleData
from ..inputs import check_data, check_network, check_state
from ..network import EnsembleMLP
from ..operators import regrow, relapse_challenge, train
from ..stress import TOLERANCE_SIGMAS, evaluate, manic_risk, structure, tolerance, tolerance_condition
from .base import baseline, cache_dir, cache_key, load_state, pruned, save_state

#: Conditions of the efficacy table (Methods section 6), drug on; extreme stress is the tolerance
#: curve's sigma 2.5 point.
EFFICACY_CONDITIONS = ("clean", "standard", "combined")
#: Conditions of the neurosteroid-like network off drug (extreme = internal noise SD 2.5).
OFF_DRUG_CONDITIONS = ("combined", tolerance_condition(2.5), "biased")


# --------------------------------------------------------------------------- configuration
def configs(
    names: Iterable[str] | None = None,
    epochs: Mapping[str, int] | None = None,
    regrow_fraction: float | None = None,
    decay_rates: Mapping[str, float] | None = None,
    lr_factor: float = 1.0,
    regrow_init_std: float | None = None,
) -> dict[str, Arm]:
    """The registered configuration of each named treatment arm (every arm where ``names`` is
    None), with optional overrides.

    ``epochs`` maps a treatment name to its training epochs (e.g. a shorter quick profile);
    ``regrow_fraction`` overrides the regrowth fraction of every arm that regrows (the
    ketamine-like one); ``decay_rates`` maps a treatment name to its protection decay per step after
    discontinuation; ``lr_factor`` multiplies every arm's learning rate and ``regrow_init_std`` sets
    the SD of the weights every regrowing arm regrows (the robustness atlas's choices,
    :class:`~pruneplast.config.ModelChoices`). Unknown names raise ``ValueError``; out-of-range
    values raise it from :class:`~pruneplast.config.RegrowConfig` and :class:`Arm`.
    """
    check_real("lr_factor", lr_factor, 0.0, 100.0, lo_open=True)
    regrowth: dict[str, Any] = {
        k: v for k, v in (("fraction", regrow_fraction), ("init_std", regrow_init_std)) if v is not None
    }
    RegrowConfig(**regrowth)  # the overrides validated before any arm is built
    for key, mapping in (("epochs", epochs), ("decay_rates", decay_rates)):
        for name in mapping or {}:
            check_choice(f"{key} key", name, arms.names())
    out = {}
    for name in arms.names() if names is None else names:
        cfg = arms.arm(name)
        if epochs and name in epochs and name != "untreated":
            cfg = dataclasses.replace(cfg, epochs=epochs[name])
        if decay_rates and name in decay_rates:
            cfg = dataclasses.replace(cfg, decay_rate=decay_rates[name])
        if regrowth and cfg.regrows:
            cfg = dataclasses.replace(cfg, regrow=dataclasses.replace(cfg.regrow, **regrowth))
        if lr_factor != 1.0:
            cfg = dataclasses.replace(cfg, lr=cfg.lr * lr_factor)
        out[name] = cfg
    return out


def course_schedule(cfg: Arm) -> tuple[Callable[[int], float], Callable[[int], float]]:
    """(sigma(e), gain(e)) of a scheduled course of ``cfg.epochs`` epochs, e = 0, 1, ... (the
    SSRI-like arm's noise taper and gain ramp)

    sigma = noise_start (1 - f) and gain = gain_start + (gain - gain_start) f with
    f = min(e / (E - 1), 1) (f = 1 after the course; E = 1 gives f = 0 in its only epoch).
    """
    n = cfg.epochs
    g0 = cfg.gain if cfg.gain_start is None else cfg.gain_start

    def frac(e: int) -> float:
        if e >= n:
            return 1.0
        return min(e / (n - 1), 1.0) if n > 1 else 0.0

    return (lambda e: cfg.noise_start * (1.0 - frac(e))), (lambda e: g0 + (cfg.gain - g0) * frac(e))


def scheduled(cfg: Arm) -> bool:
    """Whether a treatment's training sets noise or gain per epoch (then it trains alone)."""
    return cfg.course == "scheduled"


def drug_on(net: EnsembleMLP, cfg: Arm, index: Sequence[int] | None = None) -> EnsembleMLP:
    """Switch a treatment's modulation on (gain, damping, activation), in place."""
    return net.set_modulation(gain=cfg.gain, damping=cfg.damping, activation=cfg.activation, index=index)


# --------------------------------------------------------------------------- treating
def _course(
    net: EnsembleMLP, data: EnsembleData, epochs: int, lr: list[float], schedule: Arm | None = None
) -> EnsembleMLP:
    """Train one ensemble's treatment course in place and return it.

    ``lr``: one learning rate per replica. ``schedule``: a scheduled treatment's configuration (the
    SSRI-like noise taper and gain ramp, :func:`course_schedule`; its drug is switched on at the end
    value afterwards), or None for a course at constant modulation.
    """

    def done(epoch: int, current: EnsembleMLP) -> None:
        parallel.report(current.n_replicas)

    sigma, gain = course_schedule(schedule) if schedule is not None else (0.0, None)
    train(
        net,
        data,
        TrainConfig(epochs=epochs, lr=lr[0]),
        tag="treatment",
        lr=lr,
        sigma_int=sigma,
        gain=gain,
        on_epoch_end=done,
        progress=False,
    )
    if schedule is not None:
        drug_on(net, schedule)  # the gain stays at its end value after the course
    return net


def treat(
    depressed: EnsembleMLP,
    data: EnsembleData,
    cfgs: Mapping[str, Arm],
    progress: bool | None = None,
    workers: int = 1,
    scheduler: str = "",
) -> dict[str, EnsembleMLP]:
    """Apply every treatment to copies of the pruned ensemble ``depressed`` (M replicas).

    Returns name -> ensemble of M replicas (``meta['treatment']`` set), drug modulation on.
    ``workers``: processes the courses train in side by side (:func:`pruneplast.parallel.run_jobs`;
    0: one per CPU core, always 1 on a GPU); ensembles for which
    :func:`~pruneplast.parallel.splits_well` holds are split into one part per worker. A replica
    trains to the same bits in any part (at the same thread count). ``scheduler``: a Dask scheduler's address to
    send the courses to instead of local processes (0 workers: one part per worker thread there).
    """
    _check_data(depressed, data)
    workers = parallel.resolve_workers(workers, str(depressed.device), scheduler)
    m = depressed.n_replicas
    states: dict[str, EnsembleMLP] = {}
    for name, cfg in cfgs.items():
        net = depressed.clone()
        for d in net.meta:
            d["treatment"] = name
        drug_on(net, cfg)
        if cfg.regrows:  # scores are taken at gain 1.0 by gradient_scores
            regrow(net, data, cfg.regrow, tag="regrow")
        states[name] = net
    # Unscheduled treatments with equal epochs train together (one lr per replica); a scheduled one
    # (noise and gain set per epoch for the whole ensemble) trains alone.
    groups: dict[int, list[str]] = {}
    for name, cfg in cfgs.items():
        if cfg.epochs > 0 and not scheduled(cfg):
            groups.setdefault(cfg.epochs, []).append(name)
    jobs: list = []
    names: list[list[str]] = []
    epochs: list[int] = []
    for ep, group in groups.items():
        lr = [cfgs[n].lr for n in group for _ in range(m)]
        jobs.append(
            (
                EnsembleMLP.concat([states[n] for n in group]),
                data.select(list(range(m)) * len(group)),
                False,
                lambda idx, ep=ep, lr=lr: (ep, [lr[i] for i in idx]),
            )
        )
        names.append(group)
        epochs.append(ep)
    for name, cfg in cfgs.items():
        if cfg.epochs > 0 and scheduled(cfg):
            jobs.append(
                (states[name], data, cfg.noise_start > 0, lambda idx, cfg=cfg: (cfg.epochs, [cfg.lr] * len(idx), cfg))
            )
            names.append([name])
            epochs.append(cfg.epochs)
    for group, parts in zip(
        names, parallel.run_ensembles(jobs, _course, workers, "treatment courses", epochs, progress, scheduler)
    ):
        trained = EnsembleMLP.concat(parts)
        for k, n in enumerate(group):
            states[n] = trained.select(range(k * m, (k + 1) * m))
    return states


def course_groups(cfgs: Mapping[str, Arm]) -> list[tuple[str, ...]]:
    """The arms whose treated states :func:`treat` computes together, in the order of their first arm.

    Plain courses of equal epochs train as one ensemble, so their states are one group; a scheduled
    course, and an arm without a course, each stand alone. :func:`treated` caches each group on
    its own, so a group is recomputed only when one of its arms changes.
    """
    out: list[list[str]] = []
    plain: dict[int, list[str]] = {}
    for name, cfg in cfgs.items():
        if cfg.epochs > 0 and not scheduled(cfg):
            if cfg.epochs not in plain:
                plain[cfg.epochs] = []
                out.append(plain[cfg.epochs])
            plain[cfg.epochs].append(name)
        else:
            out.append([name])
    return [tuple(g) for g in out]


def treated_paths(
    run: RunConfig,
    cfgs: Mapping[str, Arm],
    baseline_config: TrainConfig = BASELINE,
    prune_config: PruneConfig = PruneConfig(),
    network: NetworkConfig = NetworkConfig(),
    workers: int = 1,
) -> dict[tuple[str, ...], Path]:
    """Where :func:`treated` caches each group of arms (:func:`course_groups`): keyed by the seeds,
    the task, the baseline's training, the pruning, the network, the fields of the group's arms
    that change their states (:func:`_protocol`), the number of worker processes (a resolved
    count, not 0) and the engine's source. An arm's key does not depend on the arms outside its
    group, nor on a field it does not use (the regrowth SD of an arm that regrows nothing)."""
    return {
        group: cache_dir()
        / "treated"
        / (
            cache_key(
                run.seeds,
                run.task,
                baseline_config,
                prune_config,
                network,
                [_protocol(cfgs[n]) for n in group],
                {"workers": workers},
            )
            + ".pt"
        )
        for group in course_groups(cfgs)
    }


def treated(
    run: RunConfig,
    cfgs: Mapping[str, Arm],
    baseline_config: TrainConfig = BASELINE,
    prune_config: PruneConfig = PruneConfig(),
    network: NetworkConfig = NetworkConfig(),
    cache: bool = True,
    workers: int = 1,
    scheduler: str = "",
) -> tuple[dict[str, EnsembleMLP], EnsembleData]:
    """Each replicate's baseline, pruned and treated: (name -> ensemble, data).

    Cached on disk like the baselines, one file per group of arms trained together
    (:func:`treated_paths`), so the longitudinal chapter reuses the treatment chapter's states and
    a call that changes one arm recomputes only that arm's group. ``workers``: the baselines not
    cached train in ``workers`` processes side by side, a part of the seeds each, on one share of
    the cores (:func:`~.base.baseline`; one thread on a two-core machine; the same bits as in one
    process on every core), and the courses in ``workers`` processes side by side (:func:`treat`).
    ``scheduler``: where :func:`treat` sends the courses (not part of the key: a one-thread Dask
    worker computes the same bits as a one-thread local process); the baselines then train here on
    every thread, as nothing else runs here meanwhile.
    """
    workers = parallel.resolve_workers(workers, run.device, scheduler)
    base, data = baseline(run, baseline_config, network, cache=cache, workers=1 if scheduler else workers)
    paths = treated_paths(run, cfgs, baseline_config, prune_config, network, workers)
    states: dict[str, EnsembleMLP] = {}
    for group, path in paths.items() if cache else ():
        saved = load_state(
            path, functools.partial(_check_treated, names=list(group), seeds=run.seeds, sizes=network.sizes)
        )
        if saved is not None:
            states.update({n: EnsembleMLP.from_state_dict(s, run.device) for n, s in saved.items()})
    todo = [group for group in paths if group[0] not in states]
    if todo:
        # a group's states do not depend on the other groups: treat() trains each group on its own
        fresh = treat(
            pruned(base, prune_config),
            data,
            {n: cfgs[n] for group in todo for n in group},
            progress=run.progress,
            workers=workers,
            scheduler=scheduler,
        )
        for group in todo if cache else ():
            save_state({n: fresh[n].to("cpu").state_dict() for n in group}, paths[group])
        states.update(fresh)
    return {n: states[n] for n in cfgs}, data


def _check_treated(saved, names: list, seeds, sizes) -> None:
    """A cached set of treated states: one state dict per arm, of these replicas and layer sizes."""
    if not isinstance(saved, dict) or list(saved) != names:
        what = list(saved) if isinstance(saved, dict) else type(saved).__name__
        raise ValueError(f"treated states of arms {names} expected; got {what}")
    for n, st in saved.items():
        check_state(st, f"the treated state of {n!r}", sizes, list(seeds))


def _protocol(cfg: Arm) -> dict:
    """An arm's fields that change its treated state: not its label and colour, nor what happens
    after the course (the off-drug test, the protection decay after discontinuation), nor the
    regrowth of an arm that regrows nothing, nor the course's learning rate and schedule when
    it has no course."""
    d = dataclasses.asdict(cfg)
    for k in ("label", "colour", "off_drug", "decay_rate"):
        d.pop(k)
    if not cfg.regrows:
        d.pop("regrow")
    if cfg.epochs == 0:
        for k in ("lr", "noise_start", "gain_start"):
            d.pop(k)
    return d


# --------------------------------------------------------------------------- evaluating
def joint(states: Mapping[str, EnsembleMLP], data: EnsembleData) -> tuple[EnsembleMLP, EnsembleData]:
    """All treatments' replicas as one ensemble (treatments in order) and its data."""
    nets = list(states.values())
    m = nets[0].n_replicas
    return EnsembleMLP.concat(nets), data.select(list(range(m)) * len(nets))


def evaluate_treatments(
    states: Mapping[str, EnsembleMLP], data: EnsembleData, tolerance_sigmas: Sequence[float] = TOLERANCE_SIGMAS
) -> pd.DataFrame:
    """Every chapter-5 measurement, tidy; columns add ``experiment``, ``treatment`` and ``drug``.

    experiments: ``efficacy`` (sparsity, kept weights, gain; clean, standard, combined),
    ``tolerance`` (standard set at each internal-noise SD), ``manic_risk`` (biased accuracy,
    activation magnitude, gain), ``acute_relapse`` (combined before and after the second pruning
    wave, the drop in points, the sparsity reached) and ``off_drug`` (each arm registered with
    ``off_drug=True``, the neurosteroid-like one in the studies: modulation reset, same weights).
    """
    net, d = joint(states, data)
    for meta in net.meta:
        meta["drug"] = "on" if meta["treatment"] != "untreated" else "none"
    frames = [
        _with(structure(net), "efficacy"),
        _with(evaluate(net, d, EFFICACY_CONDITIONS), "efficacy"),
        _with(tolerance(net, d, tolerance_sigmas), "tolerance"),
        _with(manic_risk(net, d), "manic_risk"),
        _with(acute_relapse(net, d), "acute_relapse"),
    ]
    for name, state in states.items():
        if name not in arms.names() or not arms.arm(name).off_drug:
            continue
        off = state.clone().reset_modulation()
        for meta in off.meta:
            meta["drug"] = "off"
        frames.append(_with(evaluate(off, data, OFF_DRUG_CONDITIONS), "off_drug"))
        frames.append(_with(manic_risk(off, data).query("metric != 'accuracy'"), "off_drug"))
    return pd.concat(frames, ignore_index=True)


def acute_relapse(net: EnsembleMLP, data: EnsembleData) -> pd.DataFrame:
    """The relapse challenge with the modulation on: combined accuracy (%) before and after,
    ``relapse_drop`` = before - after (points), and the weight sparsity (%) reached."""
    before = evaluate(net, data, ["combined"])
    hit = net.clone()
    relapse_challenge(hit)
    after = evaluate(hit, data, ["combined"])
    rows = before.assign(metric="accuracy_before")
    rows_after = after.assign(metric="accuracy_after")
    drop = after.assign(metric="relapse_drop", value=before["value"].to_numpy() - after["value"].to_numpy())
    sp = structure(hit).query("metric == 'weight_sparsity'").assign(condition="combined", metric="sparsity_after")
    return pd.concat([rows, rows_after, drop, sp], ignore_index=True)


def _with(df: pd.DataFrame, experiment: str) -> pd.DataFrame:
    out = df.copy()
    out.insert(0, "experiment", experiment)
    return out


def _check_data(net: EnsembleMLP, data: EnsembleData) -> None:
    check_network(net, "depressed")
    check_data(net, data)
