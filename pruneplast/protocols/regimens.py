"""Study A: one large regrowth or many small ones (Methods sections 5, 7, 8).

A regimen is ``cycles`` x (gradient-guided regrowth of ``fraction`` of the *still-pruned* weights
of every layer, then ``epochs`` of masked Adam at lr 5e-4, a fresh optimiser per cycle), started
from the replicate's 95%-pruned network. The study's five regimens, and the control it lacked:

=================  ======  ========  ================  =============
regimen            cycles  fraction  epochs per cycle  total epochs
=================  ======  ========  ================  =============
acute_moderate     1       60%       15                15
short_chronic      3       40%       5                 15
moderate_chronic   6       40%       5                 30
long_chronic       10      40%       5                 50
full_acute         1       100%      20                20
epochs_matched     1       60%       50                50 (control)
=================  ======  ========  ================  =============

The control keeps acute-moderate's single 60% regrowth but trains as long as the long chronic
regimen, separating "more cycles" from "more training".

Shared work is done once. Cycle ``k`` uses the random streams tagged ``f"cycle{k}"`` in every
regimen (regrowth scores, new weights, shuffling), so regimens share common random numbers; a
regimen whose cycles are a prefix of a longer one's (3 and 6 chronic cycles of the 10-cycle run;
acute moderate = the control's state after 15 epochs) is a checkpoint of that run, and runs with
the same epoch schedule train together as one ensemble. :func:`plan` makes these groupings;
:func:`run` executes them and evaluates every checkpoint, including the relapse challenge on a
copy. A long run can be split by cycles (``start_cycle``, ``end_cycle``): each part resumes
from the ensemble the previous part ended with, and the parts' rows, one after another, are the
unsplit run's, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pandas as pd
import torch

from .. import parallel
from ..config import (
    CONSOLIDATION,
    REGIMEN_FRACTION,
    RegrowConfig,
    RelapseConfig,
    TrainConfig,
    check_distinct_regimens,
    check_increasing,
    check_int,
    check_real,
)
from ..config import POSITIVE_COUNT as CHRONIC_CYCLES
from ..data import EnsembleData
from ..inputs import check_network
from ..network import EnsembleMLP
from ..operators import regrow, train
from .base import relapse_probe

#: Conditions of the study's regimen table.
CONDITIONS = ("clean", "standard", "internal_extreme", "combined")
CHRONIC_NAMES = ("short_chronic", "moderate_chronic", "long_chronic")
#: Where :func:`run` with ``keep_states`` and an ``end_cycle`` puts the training ensemble after its
#: last cycle: the ``start`` of the run that resumes from that cycle.
RESUME = "resume"


@dataclass(frozen=True)
class Regimen:
    """``cycles`` x (regrow ``fraction`` of the still-pruned weights, then ``epochs`` of training)."""

    name: str  # label in the results
    cycles: int  # regrowth cycles
    fraction: float  # fraction of each layer's currently pruned weights regrown per cycle
    epochs: int  # consolidation epochs after each regrowth (lr 5e-4)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or self.name in ("-", "pruned", RESUME):
            raise ValueError(
                f"regimen name must be a non-empty string other than '-', 'pruned' and {RESUME!r}; got {self.name!r}"
            )
        check_int(f"{self.name}.cycles", self.cycles, 1)
        REGIMEN_FRACTION.check(f"{self.name}.fraction", self.fraction)
        check_int(f"{self.name}.epochs", self.epochs, 0)

    @property
    def total_epochs(self) -> int:
        return self.cycles * self.epochs

    def is_checkpoint_of(self, other: Regimen) -> bool:
        """True if this regimen's end state occurs during ``other`` (same streams, same steps)."""
        return (
            self.fraction == other.fraction
            and self.cycles <= other.cycles
            and (self.epochs == other.epochs or (self.cycles == 1 and self.epochs <= other.epochs))
        )


def study_regimens(
    acute_fraction: float = 0.6,
    acute_epochs: int = 15,
    chronic_fraction: float = 0.4,
    chronic_epochs: int = 5,
    chronic_cycles: Sequence[int] = (3, 6, 10),
    full_epochs: int = 20,
    control: bool = True,
) -> tuple[Regimen, ...]:
    """The study's five regimens (and the epochs-matched control), with its values as defaults.

    ``chronic_cycles`` gives the short, moderate and long chronic cycle counts (increasing); the
    control trains one ``acute_fraction`` regrowth for the long chronic regimen's total epochs.
    """
    cyc = list(CHRONIC_CYCLES.check_list("chronic_cycles", chronic_cycles))
    check_increasing("chronic_cycles (short, moderate, long)", cyc, count=3)
    check_distinct_regimens(acute_fraction, acute_epochs, chronic_fraction, chronic_epochs, cyc, full_epochs, control)
    out = [Regimen("acute_moderate", 1, acute_fraction, acute_epochs)]
    out += [Regimen(n, c, chronic_fraction, chronic_epochs) for n, c in zip(CHRONIC_NAMES, cyc)]
    out.append(Regimen("full_acute", 1, 1.0, full_epochs))
    if control:
        out.append(Regimen("epochs_matched", 1, acute_fraction, cyc[2] * chronic_epochs))
    return tuple(out)


# --------------------------------------------------------------------------- planning
@dataclass(frozen=True)
class Run:
    """One training schedule: the longest regimen of a group, and the regimens ending inside it."""

    schedule: Regimen  # the longest regimen; its name labels the run
    checkpoints: tuple  # ((cycle, epoch_in_cycle), regimen name), sorted


def plan(regimens: Sequence[Regimen]) -> list[list[Run]]:
    """Group regimens into runs (a regimen that is a checkpoint of a longer one joins its run),
    and runs into ensembles (runs with the same cycles x epochs schedule train together).
    """
    names = [r.name for r in regimens]
    if len(set(names)) != len(names):
        raise ValueError(f"regimen names must be distinct; got {names}")
    shapes = [(r.cycles, r.fraction, r.epochs) for r in regimens]
    if len(set(shapes)) != len(shapes):
        raise ValueError(f"two regimens have the same cycles, fraction and epochs: {list(zip(names, shapes))}")
    runs: list[tuple[Regimen, list[Regimen]]] = []
    for r in sorted(regimens, key=lambda r: (-r.total_epochs, -r.cycles, r.name)):
        host = next((h for h, _ in runs if r.is_checkpoint_of(h)), None)
        if host is None:
            runs.append((r, [r]))
        else:
            next(m for h, m in runs if h is host).append(r)
    built = [Run(h, tuple(sorted(((m.cycles, m.epochs), m.name) for m in members))) for h, members in runs]
    groups: dict[tuple, list[Run]] = {}
    for run_ in built:
        groups.setdefault((run_.schedule.cycles, run_.schedule.epochs), []).append(run_)
    return list(groups.values())


# --------------------------------------------------------------------------- execution
def _regrow_by_schedule(
    net: EnsembleMLP, data: EnsembleData, fractions: Sequence[float], base: RegrowConfig, tag: str
) -> None:
    """Regrow replica m by ``fractions[m]`` in place (replicas sharing a fraction together)."""
    for f in sorted(set(fractions)):
        idx = [m for m, x in enumerate(fractions) if x == f]
        cfg = RegrowConfig(fraction=f, method=base.method, score_batches=base.score_batches, init_std=base.init_std)
        if len(idx) == net.n_replicas:
            regrow(net, data, cfg, tag=tag)
            continue
        sub = net.select(idx)
        regrow(sub, data.select(idx), cfg, tag=tag)
        for mine, theirs in ((net.weights, sub.weights), (net.masks, sub.masks)):
            for t, s in zip(mine, theirs):
                t[idx] = s


def run(
    start: EnsembleMLP,
    data: EnsembleData,
    regimens: Sequence[Regimen] = study_regimens(),
    lr: float = CONSOLIDATION.lr,
    eval_every: int | None = None,
    conditions: Sequence[str] = CONDITIONS,
    relapse: RelapseConfig = RelapseConfig(),
    regrow_config: RegrowConfig = RegrowConfig(),
    keep_states: bool = False,
    progress: bool | None = None,
    start_cycle: int = 0,
    end_cycle: int | None = None,
    workers: int = 1,
):
    """Every regimen from the pruned ensemble ``start`` (left unchanged); tidy results.

    Checkpoints are evaluated at the end of every regimen, at the end of every cycle of every run
    (the sparsity path), and, if ``eval_every`` is set, every ``eval_every`` epochs within a cycle.
    Rows carry ``schedule`` (the run), ``cycle`` (cycles begun), ``epochs`` (total training
    epochs so far), ``regimen`` (the regimen ending there, or '-') and ``phase`` (see
    :func:`~pruneplast.protocols.base.relapse_probe`); the pruned start is ``regimen='pruned'``.
    ``regrow_config`` sets the method, scoring batches and initialisation (its fraction is ignored).
    ``workers``: processes the training groups of :func:`plan` (independent ensembles) run in side
    by side, one share of the cores each (:func:`pruneplast.parallel.run_phases`; 0: one per CPU
    core, always 1 on a GPU); the results equal, bit for bit, a run in this process.

    ``start_cycle`` and ``end_cycle`` run only cycles ``start_cycle + 1`` to ``end_cycle`` (None: the
    last) of regimens that train as one ensemble (one group of :func:`plan`). From ``start_cycle``
    > 0, ``start`` is the training ensemble after that cycle, as a run with ``end_cycle=start_cycle``
    and ``keep_states`` ended with (its ``states[RESUME]``), and the pruned start's rows belong to
    the part that begins at cycle 0. The parts' rows, one part after another, are the unsplit
    run's rows, and their states its states, bit for bit.

    Returns the DataFrame, or ``(DataFrame, {regimen: EnsembleMLP})`` when ``keep_states`` (with
    an ``end_cycle``, also the training ensemble after it, under :data:`RESUME`).
    """
    check_real("lr", lr, 0.0, 1.0, lo_open=True)
    if eval_every is not None:
        check_int("eval_every", eval_every, 1)
    if len(regimens) == 0:
        raise ValueError("regimens must name at least one regimen")
    groups = plan(regimens)
    first, last = _cycle_range(groups, start_cycle, end_cycle)
    if first > 0:
        _check_resumed(start, data, groups[0], first)
    workers = parallel.resolve_workers(workers, str(start.device))
    frames = []
    states: dict[str, EnsembleMLP] = {}
    if first == 0:
        labels = {"schedule": "pruned", "cycle": 0, "epochs": 0, "regimen": "pruned"}
        frames.append(relapse_probe(start, data, conditions, relapse, extra=labels))
        if keep_states:
            states["pruned"] = start.clone()
    shown = progress if workers == 1 or len(groups) == 1 else False  # bars of worker processes would interleave
    resume = keep_states and end_cycle is not None
    settings = (lr, eval_every, conditions, relapse, regrow_config, keep_states, shown, first, last, resume)
    jobs = [(start, data, group, *settings) for group in groups]
    for group_frames, group_states in parallel.run_phases(_group, jobs, workers, "regimen groups", progress=False):
        frames += group_frames
        states.update(group_states)
    df = pd.concat(frames, ignore_index=True)
    df.insert(0, "experiment", "regimens")
    return (df, states) if keep_states else df


def _group(
    start: EnsembleMLP,
    data: EnsembleData,
    group: list[Run],
    lr: float,
    eval_every: int | None,
    conditions: Sequence[str],
    relapse: RelapseConfig,
    regrow_config: RegrowConfig,
    keep_states: bool,
    progress: bool | None,
    first: int,
    last: int | None,
    resume: bool,
) -> tuple[list[pd.DataFrame], dict[str, EnsembleMLP]]:
    """One training group of :func:`plan` (runs of the same schedule as one ensemble), cycles
    ``first + 1`` to ``last`` (None: every cycle) from ``start``: its checkpoints' rows in the
    order they were taken, and (``keep_states``) its regimens' states, with ``resume`` also the
    training ensemble after its last cycle (:data:`RESUME`)."""
    m0 = data.n_replicas if first > 0 else start.n_replicas
    frames: list[pd.DataFrame] = []
    states: dict[str, EnsembleMLP] = {}
    cycles, epochs = group[0].schedule.cycles, group[0].schedule.epochs
    if first > 0:
        net = start.clone()
    else:
        net = EnsembleMLP.concat([start.repeat([{"schedule": r.schedule.name}]) for r in group])
    d = data.select(list(range(m0)) * len(group))
    fractions = [r.schedule.fraction for r in group for _ in range(m0)]
    ends = {cp: name for r in group for cp, name in r.checkpoints}
    for k in range(first + 1, (last or cycles) + 1):

        def probe(e: int, state: EnsembleMLP, k=k) -> None:
            named = {r.schedule.name: dict(r.checkpoints).get((k, e), "-") for r in group}
            if e != epochs and (k, e) not in ends and not (eval_every and e % eval_every == 0 and e > 0):
                return
            df = relapse_probe(state, d, conditions, relapse, extra={"cycle": k, "epochs": (k - 1) * epochs + e})
            df.insert(df.columns.get_loc("epochs") + 1, "regimen", df.schedule.map(named))  # as the pruned rows
            frames.append(df)
            if keep_states:
                for i, r in enumerate(group):
                    if named[r.schedule.name] != "-":
                        with torch.no_grad():
                            states[named[r.schedule.name]] = state.select(range(i * m0, (i + 1) * m0))

        _regrow_by_schedule(net, d, fractions, regrow_config, tag=f"cycle{k}")
        if epochs == 0 or (k, 0) in ends:
            probe(0, net)
        if epochs > 0:
            train(
                net,
                d,
                TrainConfig(epochs=epochs, lr=lr),
                tag=f"cycle{k}",
                on_epoch_end=probe,
                progress=progress,
                desc=f"{'/'.join(r.schedule.name for r in group)} cycle {k}/{cycles}",
            )
    if resume:
        states[RESUME] = net
    parallel.report()
    return frames, states


def _cycle_range(groups: list[list[Run]], start_cycle: int, end_cycle: int | None) -> tuple[int, int | None]:
    """(first cycle done, last cycle to run or None for every cycle) of :func:`run`, checked."""
    check_int("start_cycle", start_cycle, 0)
    if start_cycle == 0 and end_cycle is None:
        return 0, None
    if len(groups) != 1:
        runs = [[r.schedule.name for r in g] for g in groups]
        raise ValueError(
            "start_cycle and end_cycle split regimens that train as one ensemble; "
            f"these train as {len(groups)} ensembles: {runs}"
        )
    cycles = groups[0][0].schedule.cycles
    check_int("start_cycle", start_cycle, 0, cycles - 1)
    if end_cycle is None:
        return start_cycle, cycles
    return start_cycle, check_int("end_cycle", end_cycle, start_cycle + 1, cycles)


def _check_resumed(start: EnsembleMLP, data: EnsembleData, group: list[Run], start_cycle: int) -> None:
    """``start`` is the training ensemble of ``group``'s runs on ``data``'s replicas: one replica per
    run and seed, runs outermost (as :func:`run` trains them)."""
    check_network(start, "start")
    want = [(r.schedule.name, int(s)) for r in group for s in data.seeds]
    have = [(d.get("schedule"), d.get("seed")) for d in start.meta]
    if have != want:
        raise ValueError(
            f"start must be the training ensemble after cycle {start_cycle} (states[{RESUME!r}] of a run "
            f"with end_cycle={start_cycle}): replicas (schedule, seed) {want}; got {have}"
        )
