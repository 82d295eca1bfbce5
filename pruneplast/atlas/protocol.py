"""The atlas's settings and its compact protocol: the studies' choices with one changed at a time.

Both studies rest every conclusion on one architecture (2-512-512-256-4), one task (class spread
0.8), one pruning rule (a threshold per weight matrix), one set of learning rates, one
initialisation of regrown weights (SD 0.03) and one data-set scheme per study. The atlas changes
one of these choices at a time (a :class:`Setting`), reruns a compact form of both studies'
protocols under it with every replicate seed, and recomputes each headline conclusion
(:data:`CONCLUSIONS`) as a per-seed quantity with a 95% confidence interval and a verdict:

* **holds**: the interval lies wholly on the side of the bound the conclusion claims (inside the
  band, for the cliff's location);
* **reverses**: it lies wholly on the other side (outside the band);
* **weakens**: it straddles the bound.

Every setting runs on study B's data-set scheme (a data set per replicate, so that the intervals
include the variation between data sets) except the data-set setting, which puts every replicate
on study A's one data set. Per setting and replicate seed, the compact protocol (Methods sections
1-9; the chapters that run each part in full are named) is:

* the trained baseline and its 95%-pruned network, shared by both parts;
* study A (chapters 2-4): the sparsity sweep (combined-stress accuracy at every level, no
  regrowth); from the pruned network, the regimens of :mod:`pruneplast.protocols.regimens` with
  common random numbers: one 50% regrowth then 15 epochs (evaluated right after regrowth and after
  consolidation, each with the relapse challenge), acute moderate (60%, 15 epochs) and long
  chronic (10 x (40%, 5 epochs));
* study B (chapters 5-6): the four arms of :mod:`pruneplast.arms` from the pruned network,
  evaluated drug on (clean, standard, combined, internal noise SD 2.5, biased); then every treated
  arm's discontinuation and the biased-stress relapse test at the protection the arm has left,
  after ``maintenance_epochs`` of maintenance at lr 1e-6 (default none: the studies maintained for
  25-300 epochs, which chapter 6 finds changes the biased-stress accuracy by a few points at most).

Each setting's results form a *cell*. :func:`run` splits the cells into tasks (:func:`tasks`):
the baselines; study A's sweep and each training group of its regimens (a group expected to take
longer than :data:`PART_MINUTES` on one thread in parts of whole cycles, :func:`regimen_parts`,
each resuming from the training ensemble the part before left); each group of study B's arms
trained together; study B's measurements. Each task is keyed on exactly the fields of a
setting that change what it computes (:func:`state_keys`), so settings that share a state share
its task (the regrowth-scale settings reuse the reference's baselines, sweep, pruned network and
the arms that regrow nothing). Tasks run in waves (:data:`WAVES`; a part of a regimen group one
wave after the part before), each after the tasks whose states it reads, in worker processes on
this machine (:func:`pruneplast.parallel.run_jobs`) or, given a Dask scheduler's address, on that
cluster; every task runs on one thread, so its numbers do not depend on where it ran, and a cell
assembled from its tasks equals, bit for bit, the cell computed as one task (:func:`cell`).
Baselines and treated networks come from, and go to, the engine's cache
(:mod:`pruneplast.protocols.base`).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd
import torch

from .. import arms, parallel
from ..config import (
    BASELINE,
    CONSOLIDATION,
    REGIMEN_FRACTION,
    MaintenanceConfig,
    NetworkConfig,
    PruneConfig,
    RegrowConfig,
    RelapseConfig,
    RunConfig,
    TaskConfig,
    TrainConfig,
    check_choice,
    check_distinct,
    check_distinct_atlas_regimens,
    check_int,
    check_real,
)
from ..operators import prune_to

#: The studies' hidden layers.
HIDDEN = NetworkConfig().sizes[1:-1]
#: The choices the atlas changes, in the order of its map, with what readers see.
CHOICES = {
    "reference": "the studies' choices",
    "width": "hidden width",
    "depth": "hidden depth",
    "task_noise": "task difficulty",
    "prune_scope": "pruning scope",
    "learning_rates": "learning rates",
    "regrowth_init": "regrowth initial scale",
    "data_sets": "data-set scheme",
}
PARTS = ("A", "B")


# --------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class Setting:
    """The studies' choices with (at most) one of them changed: one column of the atlas."""

    name: str  # identifier in the results ('width_x0.5')
    choice: str  # key of CHOICES
    level: str  # what readers see ('x0.5: 256-256-128')
    hidden: tuple[int, ...] = HIDDEN  # hidden-layer widths
    task_sigma: float = TaskConfig().sigma  # class spread of the task
    prune_scope: str = PruneConfig().scope  # 'layer' or 'global' threshold
    lr_factor: float = 1.0  # every learning rate times this
    regrow_init_std: float = RegrowConfig().init_std  # SD of regrown weights
    data_sets: str = "per_replicate"  # both studies' parts: 'per_replicate' or 'shared' (study A's one set)

    def __post_init__(self) -> None:
        check_choice("choice", self.choice, tuple(CHOICES))
        NetworkConfig((2, *self.hidden, 4))
        TaskConfig(sigma=self.task_sigma, data_sets=self.data_sets)
        PruneConfig(scope=self.prune_scope)
        RegrowConfig(init_std=self.regrow_init_std)

    @property
    def network(self) -> NetworkConfig:
        return NetworkConfig((2, *self.hidden, 4))

    @property
    def label(self) -> str:
        """The setting in words, on one line: the changed choice and its level ('hidden width
        (\u00d70.5: 256-256-128)'); the reference is 'the studies' choices'."""
        if self.choice == "reference":
            return CHOICES[self.choice]
        level = "\u00d7" + self.level[1:] if self.level.startswith("x") else self.level
        return f"{CHOICES[self.choice]} ({level})"

    @property
    def arch(self) -> str:
        """The network as readers see it: '2-512-512-256-4'."""
        return "-".join(map(str, self.network.sizes))


def _arch(hidden: Sequence[int]) -> str:
    return "-".join(str(h) for h in hidden)


def deeper(k: int) -> tuple[int, ...]:
    """The studies' hidden layers with ``k`` more (k > 0: 512-unit layers added in front) or fewer
    (k < 0: the 512-unit layers removed first); at least one hidden layer stays."""
    check_int("depth change", k, 1 - len(HIDDEN), 8)
    if k >= 0:
        return (HIDDEN[0],) * k + HIDDEN
    return HIDDEN[-k:]


def labels(parameters: Mapping[str, Any]) -> dict[str, str]:
    """Each setting's identifier in the results -> its :attr:`Setting.label`, for the settings the
    atlas chapter builds from ``parameters`` (a results file's parameters: its level lists)."""
    keys = ("width_factors", "depth_changes", "task_sigmas", "global_scope", "lr_factors", "init_stds",
            "shared_data_set")  # fmt: skip
    return {s.name: s.label for s in settings(**{k: parameters[k] for k in keys if k in parameters})}


def settings(
    width_factors: Sequence[float] = (0.5, 2.0),
    depth_changes: Sequence[int] = (-1, 1),
    task_sigmas: Sequence[float] = (0.4, 1.6),
    global_scope: bool = True,
    lr_factors: Sequence[float] = (0.5, 2.0),
    init_stds: Sequence[float] = (0.01, 0.1),
    shared_data_set: bool = True,
) -> list[Setting]:
    """The reference and every changed choice, in the order of the map (no level twice)."""
    for name, levels in (
        ("width_factors", width_factors), ("depth_changes", depth_changes), ("task_sigmas", task_sigmas),
        ("lr_factors", lr_factors), ("init_stds", init_stds),
    ):  # fmt: skip
        check_distinct(name, levels)
    out = [Setting("reference", "reference", "the studies' choices")]
    for f in width_factors:
        hidden = tuple(max(1, round(h * f)) for h in HIDDEN)
        out.append(Setting(f"width_x{f:g}", "width", f"x{f:g}: {_arch(hidden)}", hidden=hidden))
    for k in depth_changes:
        hidden = deeper(k)
        word = "more" if k > 0 else "fewer"
        n = abs(k)
        out.append(
            Setting(f"depth_{k:+d}", "depth", f"{n} layer{'s' * (n > 1)} {word}: {_arch(hidden)}", hidden=hidden)
        )
    for s in task_sigmas:
        out.append(Setting(f"spread_{s:g}", "task_noise", f"class spread {s:g}", task_sigma=float(s)))
    if global_scope:
        out.append(Setting("scope_global", "prune_scope", "one global threshold", prune_scope="global"))
    for f in lr_factors:
        out.append(Setting(f"lr_x{f:g}", "learning_rates", f"x{f:g}", lr_factor=float(f)))
    for s in init_stds:
        out.append(Setting(f"init_{s:g}", "regrowth_init", f"SD {s:g}", regrow_init_std=float(s)))
    if shared_data_set:
        out.append(
            Setting("data_shared", "data_sets", "study A's one data set for every replicate", data_sets="shared")
        )
    names = [s.name for s in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"the atlas's settings repeat a level: {', '.join(dup)}")
    return out


# --------------------------------------------------------------------------- the protocol
@dataclass(frozen=True)
class Protocol:
    """The compact protocol's durations and fractions (the studies' values by default)."""

    seeds: tuple[int, ...] = tuple(range(10))
    baseline_epochs: int = BASELINE.epochs
    sparsity: float = PruneConfig().sparsity
    sweep_levels: tuple[float, ...] = (0.0, 0.8, 0.85, 0.88, 0.9, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97, 0.99)
    regrow_fraction: float = 0.5
    consolidation_epochs: int = 15
    acute_fraction: float = 0.6
    acute_epochs: int = 15
    chronic_fraction: float = 0.4
    chronic_epochs: int = 5
    chronic_cycles: int = 10
    treatment_epochs: tuple[tuple[str, int], ...] = ()  # (arm, epochs) overrides of the registry
    maintenance_epochs: int = 0  # the studies maintained 25-300 epochs; chapter 6: it changes little
    threshold: float = MaintenanceConfig().threshold
    device: str = "cpu"
    n_train: int = TaskConfig().n_train  # samples per replicate (smaller only in the tests)
    n_standard: int = TaskConfig().n_standard
    n_clean: int = TaskConfig().n_clean

    def __post_init__(self) -> None:
        RunConfig(seeds=self.seeds, device=self.device)
        TaskConfig(n_train=self.n_train, n_standard=self.n_standard, n_clean=self.n_clean)
        TrainConfig(epochs=self.baseline_epochs)
        PruneConfig(sparsity=self.sparsity)
        if 0.0 not in self.sweep_levels or len(self.sweep_levels) < 3:
            raise ValueError(
                f"sweep_levels must include 0.0 (the baseline) and two more levels; got {self.sweep_levels}"
            )
        from ..protocols.regimens import plan

        for name in ("regrow_fraction", "acute_fraction", "chronic_fraction"):  # named as chapter 7 names them
            REGIMEN_FRACTION.check(name, getattr(self, name))
        check_distinct_atlas_regimens(
            self.regrow_fraction, self.consolidation_epochs, self.acute_fraction, self.acute_epochs,
            self.chronic_fraction, self.chronic_epochs, self.chronic_cycles,
        )  # fmt: skip
        plan(self.regimens())
        MaintenanceConfig(durations=(max(1, self.maintenance_epochs),), threshold=self.threshold)
        check_int("maintenance_epochs", self.maintenance_epochs, 0)

    def regimens(self):
        from ..protocols.regimens import Regimen

        return (
            Regimen("regrown", 1, self.regrow_fraction, 0),
            Regimen("consolidated", 1, self.regrow_fraction, self.consolidation_epochs),
            Regimen("acute_moderate", 1, self.acute_fraction, self.acute_epochs),
            Regimen("long_chronic", self.chronic_cycles, self.chronic_fraction, self.chronic_epochs),
        )

    def arm_configs(self, setting: Setting) -> dict:
        """The studies' arms under ``setting``: epochs as given, learning rate scaled, regrowth SD."""
        from ..protocols.treatments import configs

        return configs(
            arms.STUDY_ARMS,
            epochs=dict(self.treatment_epochs),
            lr_factor=setting.lr_factor,
            regrow_init_std=setting.regrow_init_std,
        )


def _run_config(setting: Setting, protocol: Protocol) -> RunConfig:
    task = TaskConfig(
        n_train=protocol.n_train,
        n_standard=protocol.n_standard,
        n_clean=protocol.n_clean,
        sigma=setting.task_sigma,
        data_sets=setting.data_sets,
    )
    return RunConfig(seeds=protocol.seeds, device=protocol.device, progress=False, task=task)


def _baseline_config(setting: Setting, protocol: Protocol) -> TrainConfig:
    return TrainConfig(epochs=protocol.baseline_epochs, lr=BASELINE.lr * setting.lr_factor)


def _rows(frame: pd.DataFrame, quantity: str, **extra) -> pd.DataFrame:
    """Tidy rows (seed, value) of one quantity; its name ends in ':condition:metric' (the sweep's
    'sweep_combined' is combined accuracy)."""
    out = frame[["seed", "value"]].copy()
    out["quantity"] = quantity
    parts = quantity.split(":")
    out["condition"], out["metric"] = (parts[-2], parts[-1]) if len(parts) >= 3 else ("combined", "accuracy")
    for k, v in extra.items():
        out[k] = v
    return out


def _sweep(setting: Setting, protocol: Protocol) -> pd.DataFrame:
    """Study A's sparsity sweep: combined-stress accuracy of the baseline pruned to every level."""
    from ..protocols.base import baseline
    from ..stress import evaluate

    run = _run_config(setting, protocol)
    base, data = baseline(run, _baseline_config(setting, protocol), setting.network)
    levels = list(protocol.sweep_levels)
    sweep = base.repeat([{"sparsity_target": float(s)} for s in levels])
    sweep_data = data.select([i for i in range(data.n_replicas) for _ in levels])
    prune_to(sweep, torch.tensor(levels, dtype=torch.float64).repeat(base.n_replicas), setting.prune_scope)
    sw = evaluate(sweep, sweep_data, ("combined",))
    return _rows(sw, "sweep_combined", level=sw["sparsity_target"].astype(float) * 100)


def _regimens(
    setting: Setting, protocol: Protocol, names: Sequence[str] | None = None, cycles: tuple[int, int] | None = None
) -> pd.DataFrame:
    """Study A's regimens (those ``names``, every one where None) from the pruned network:
    :func:`pruneplast.protocols.regimens.run`'s rows, the pruned start's first.

    ``cycles`` (first, last): only cycles ``first + 1`` to ``last`` of one training group, one part
    of it (:func:`regimen_parts`), from the training ensemble after cycle ``first`` that the part
    before left in the cache (recomputed from the pruned network when it is not there); the
    ensemble after ``last`` is cached for the next part. The parts' rows, one after another, are
    the whole group's."""
    from ..protocols import regimens
    from ..protocols.base import baseline, pruned, save_state

    run = _run_config(setting, protocol)
    base, data = baseline(run, _baseline_config(setting, protocol), setting.network)
    start = pruned(base, PruneConfig(sparsity=protocol.sparsity, scope=setting.prune_scope))
    chosen = [r for r in protocol.regimens() if names is None or r.name in names]
    kw: dict[str, Any] = dict(
        lr=CONSOLIDATION.lr * setting.lr_factor,
        conditions=("internal_extreme", "combined"),
        relapse=RelapseConfig(),
        regrow_config=RegrowConfig(init_std=setting.regrow_init_std),
    )
    if cycles is None:
        return regimens.run(start, data, chosen, **kw)
    first, last = cycles
    group = tuple(r.name for r in chosen)
    if first > 0:
        path = _resume_path(setting, protocol, group, first)
        seeds = [s for _ in regimens.plan(chosen)[0] for s in run.seeds]
        state = _load_resume(path, setting.network, seeds, protocol.device)
        if state is None:  # a worker that does not share the cache: the cycles before, to the same bits
            state = regimens.run(start, data, chosen, end_cycle=first, keep_states=True, **kw)[1][regimens.RESUME]
            save_state(state.to("cpu").state_dict(), path)
        start = state
    df, states = regimens.run(start, data, chosen, start_cycle=first, end_cycle=last, keep_states=True, **kw)
    if last < max(r.cycles for r in chosen):
        save_state(states[regimens.RESUME].to("cpu").state_dict(), _resume_path(setting, protocol, group, last))
    return df


def _resume_path(setting: Setting, protocol: Protocol, group: tuple[str, ...], cycle: int) -> Path:
    """Where a split regimen group's training ensemble after ``cycle`` is cached: keyed as the
    group's rows are (:func:`_part_path`), and on the cycle."""
    from ..protocols.base import cache_dir, cache_key

    computed = {k: getattr(setting, k) for k in COMPUTED}
    key = cache_key("regimens state", list(group), cycle, computed, protocol, _METHOD)
    return cache_dir() / "atlas" / "states" / f"{key}.pt"


def _load_resume(path: Path, network: NetworkConfig, seeds: list[int], device: str):
    """The cached training ensemble at ``path`` (on ``device``), or None when it is missing or damaged."""
    import functools

    from ..inputs import check_state
    from ..network import EnsembleMLP
    from ..protocols.base import load_state

    state = load_state(path, functools.partial(check_state, name="regimen state", sizes=network.sizes, seeds=seeds))
    return None if state is None else EnsembleMLP.from_state_dict(state, device)


def _regimen_rows(df: pd.DataFrame) -> list[pd.DataFrame]:
    """The atlas's quantities among the regimens' rows: each regimen's accuracies and relapse drops."""
    df = df[df["regimen"] != "-"]
    frames = []
    for (regimen, phase, condition, metric), g in df.groupby(["regimen", "phase", "condition", "metric"]):
        if metric == "accuracy" or metric == "relapse_drop":
            frames.append(_rows(g, f"{regimen}:{phase}:{condition}:{metric}"))
    return frames


def _study_a(setting: Setting, protocol: Protocol) -> pd.DataFrame:
    return pd.concat([_sweep(setting, protocol), *_regimen_rows(_regimens(setting, protocol))], ignore_index=True)


def _study_b(setting: Setting, protocol: Protocol) -> pd.DataFrame:
    from ..protocols.longitudinal import biased_after_discontinuation, maintain, relapses
    from ..protocols.treatments import joint, treated
    from ..stress import evaluate, tolerance_condition

    run = _run_config(setting, protocol)
    cfgs = protocol.arm_configs(setting)
    states, data = treated(
        run,
        cfgs,
        _baseline_config(setting, protocol),
        PruneConfig(sparsity=protocol.sparsity, scope=setting.prune_scope),
        setting.network,
        workers=1,
    )
    net, d = joint(states, data)
    ev = evaluate(net, d, ("clean", "standard", "combined", tolerance_condition(2.5), "biased"))
    frames = [_rows(g, f"{t}:on:{c}:accuracy") for (t, c), g in ev.groupby(["treatment", "condition"], sort=False)]
    followed = {n: s for n, s in states.items() if n != "untreated"}
    maint = MaintenanceConfig(
        durations=(max(1, protocol.maintenance_epochs),),
        lr=MaintenanceConfig().lr * setting.lr_factor,
        threshold=protocol.threshold,
    )
    if protocol.maintenance_epochs > 0:
        checkpoints, dm = maintain(followed, data, maint, progress=False, workers=1)
    else:
        joined, dm = joint(followed, data)
        checkpoints = {0: joined}
    own = biased_after_discontinuation(checkpoints, dm, cfgs, maint)
    rel = relapses(own, [protocol.threshold])
    for t, g in rel.groupby("treatment", sort=False):
        frames.append(_rows(g, f"{t}:off:biased:relapse"))
    return pd.concat(frames, ignore_index=True)


#: The fields of a setting that change a result (its name and label do not).
COMPUTED = ("hidden", "task_sigma", "prune_scope", "lr_factor", "regrow_init_std", "data_sets")
#: The fields that change study A's sparsity sweep (no regrowth in it).
SWEEP_COMPUTED = tuple(f for f in COMPUTED if f != "regrow_init_std")


def _method() -> str:
    """SHA-256 of the source of the functions that compute a cell: part of a cached cell's key."""
    import inspect

    parts = (
        _run_config,
        _baseline_config,
        _rows,
        _sweep,
        _regimens,
        _regimen_rows,
        _study_a,
        _study_b,
        _assemble,
        Protocol.regimens,
        Protocol.arm_configs,
    )
    return hashlib.sha256("".join(inspect.getsource(f) for f in parts).encode()).hexdigest()


def cell_path(setting: Setting, protocol: Protocol) -> Path:
    """Where a finished cell is cached: keyed by what the setting changes, the protocol, the
    engine's source (:func:`pruneplast.keys.state_hash`) and the source of the functions that
    compute a cell (as loaded when this module was imported)."""
    from ..protocols.base import cache_dir, cache_key

    computed = {k: getattr(setting, k) for k in COMPUTED}
    return cache_dir() / "atlas" / f"{cache_key(computed, protocol, _METHOD)}.pt"


def cell(setting: Setting, protocol: Protocol, cache: bool = True) -> pd.DataFrame:
    """One setting, both studies' parts, as one task on one thread: tidy rows (experiment 'atlas',
    setting, part 'A' or 'B', quantity, condition, metric, seed, value; ``level`` for the sweep;
    ``cell_seconds``, the wall time the cell took when it was computed, and ``cached``, whether this
    call loaded it). A pure function of its arguments; the two parts share the setting's baseline
    through the engine's cache. A finished cell is cached (:func:`cell_path`), so a rerun, or a run
    that was stopped, recomputes only the cells it lacks. :func:`run` computes the same rows, bit
    for bit, from smaller tasks (:func:`tasks`)."""
    from ..protocols.base import load_state, save_state

    path = cell_path(setting, protocol)
    saved = load_state(path, _check_cell) if cache else None
    if saved is not None:
        parallel.report(1)
        return saved.assign(setting=setting.name, cached=True)
    t0 = time.perf_counter()
    with parallel.threads(1):
        a, b = _study_a(setting, protocol), _study_b(setting, protocol)
    seconds = time.perf_counter() - t0
    out = _assemble(setting, a, b, seconds, seconds, seconds)
    if cache:
        save_state(out, path)
    parallel.report(1)
    return out.assign(cached=False)


def _assemble(
    setting: Setting, a: pd.DataFrame, b: pd.DataFrame, seconds: float, longest: float, path: float
) -> pd.DataFrame:
    """A cell's table from its study A and study B rows, with its times: ``cell_seconds`` (its work
    on one thread), ``longest_task_seconds`` (its longest task) and ``path_seconds`` (its waves'
    longest tasks one after another: its wall time given a worker per task)."""
    frames = []
    for part, df in (("A", a), ("B", b)):
        df = df.copy()
        df.insert(0, "part", part)
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    out.insert(0, "setting", setting.name)
    out.insert(0, "experiment", "atlas")
    out["cell_seconds"] = seconds
    out["longest_task_seconds"] = longest
    out["path_seconds"] = path
    return out


def _check_cell(saved) -> None:
    """A cached cell: a table with the columns :func:`cell` writes."""
    need = {"experiment", "setting", "part", "metric", "seed", "value", "cell_seconds"}
    if not isinstance(saved, pd.DataFrame):
        raise ValueError(f"a cell's table expected; got a {type(saved).__name__}")
    if not need <= set(saved.columns):
        raise ValueError(f"a cell's table lacks the columns {sorted(need - set(saved.columns))}")


# --------------------------------------------------------------------------- tasks
#: The kinds of task a cell is split into, by wave: a wave's tasks start once the previous wave's
#: have ended, so that they find the states those computed in the engine's cache. A regimen group
#: split by cycles (:func:`regimen_parts`) runs its first part in the regimens' wave and each
#: further part one wave later than the part before, so that it finds that part's state.
WAVES = (("baseline",), ("sweep", "regimens", "arms"), ("study_b",))
#: CPU seconds on one thread per unit of a regimen group's cost (:func:`tasks`), from
#: ``benchmarks/atlas_tasks.py width_x2 --cycles`` on Intel Xeon: the width x2 setting's long
#: chronic regimen, of cost 4.02e8 at the studies' durations and ten seeds, took 877 s (14.6 min).
REGIMEN_SECONDS_PER_COST = 2.18e-6
#: The longest a regimen task is expected to take (minutes on one thread): a regimen group expected
#: to take longer is split by cycles into parts of at most this (:func:`regimen_parts`). At the
#: studies' durations none is (the widest network's long chronic regimen is expected at about a
#: third of it); a wider network or a longer regimen is.
PART_MINUTES = 40.0


@dataclass(frozen=True)
class Task:
    """A piece of one or more cells, run as one job (:func:`run_task`).

    kinds: 'baseline' (the setting's trained baselines, cached by the engine), 'sweep' (study A's
    sparsity sweep), 'regimens' (one training group of study A's regimens, ``names``, or the
    ``cycles`` (first, last) of one, its ``step``-th part), 'arms' (one group of study B's arms
    trained together, ``names``; their treated states, cached by the engine) and 'study_b' (study
    B's measurements, from the cached treated states). ``key`` names what the task computes: two
    cells that need the same state or rows share one task.
    """

    kind: str
    setting: Setting
    names: tuple[str, ...]
    key: str
    cost: float  # a proxy of its time, to hand out the longest first
    cycles: tuple[int, int] | None = None  # a part of a regimen group: cycles first + 1 to last
    step: int = 0  # the parts of its group before it

    @property
    def wave(self) -> int:
        return next(i for i, kinds in enumerate(WAVES) if self.kind in kinds) + self.step

    @property
    def label(self) -> str:
        """The task as :func:`state_keys` names it: 'regimens:long_chronic', 'regimens:long_chronic:1-5'."""
        cycles = f":{self.cycles[0] + 1}-{self.cycles[1]}" if self.cycles else ""
        return self.kind + (":" + "+".join(self.names) if self.names else "") + cycles


def _regimen_groups(protocol: Protocol) -> list[tuple[str, ...]]:
    """Study A's regimens as they train (:func:`pruneplast.protocols.regimens.plan`): one tuple of
    regimen names per ensemble, in the order :func:`~pruneplast.protocols.regimens.run` trains them."""
    from ..protocols.regimens import plan

    return [tuple(name for r in group for _, name in r.checkpoints) for group in plan(protocol.regimens())]


def _regimen_cost(names: Sequence[str], protocol: Protocol) -> float:
    """A regimen group's cost per weight and seed: its runs' epochs (the regimens that end inside
    another's run add none) and cycles."""
    regimens = {r.name: r for r in protocol.regimens()}
    runs = [r for r in names if not any(regimens[r].is_checkpoint_of(regimens[o]) for o in names if o != r)]
    return sum(0.5 * regimens[r].total_epochs + 0.05 * regimens[r].cycles for r in runs)


def _cycle_shares(group) -> list[float]:
    """Each cycle's expected share of a training group's time: equal. With denormal floats flushed
    (:mod:`pruneplast.kernels.denormals`) a cycle of the long chronic regimen takes about as long as
    any other, however much of the network it has regrown (``benchmarks/atlas_tasks.py --cycles``,
    Intel Xeon, ten seeds: the width x2 setting's ten cycles took 8.5% to 11.2% of its time each,
    the reference's 8.8% to 10.5%)."""
    cycles = group[0].schedule.cycles
    return [1.0 / cycles] * cycles


def regimen_parts(
    setting: Setting, protocol: Protocol, part_minutes: float = PART_MINUTES
) -> dict[tuple[str, ...], list[tuple[int, int]]]:
    """Each training group of study A's regimens (:func:`_regimen_groups`) -> its parts' cycles,
    (first, last) each: one part ``(0, cycles)`` for a group expected to take at most
    ``part_minutes`` on one thread (:data:`REGIMEN_SECONDS_PER_COST`), else the fewest parts of
    whole cycles expected to take at most that each (a cycle expected to take longer alone), each
    part as many cycles as fit (:func:`_cycle_shares`)."""
    from ..protocols.regimens import plan

    check_real("part_minutes", part_minutes, 0.0, lo_open=True)
    weights = float(setting.network.n_weights) * len(protocol.seeds)
    out = {}
    for names, group in zip(_regimen_groups(protocol), plan(protocol.regimens())):
        cycles = group[0].schedule.cycles
        minutes = weights * _regimen_cost(names, protocol) * REGIMEN_SECONDS_PER_COST / 60
        if minutes <= part_minutes:
            out[names] = [(0, cycles)]
            continue
        parts, first, spent = [], 0, 0.0
        for k, share in enumerate(_cycle_shares(group)):
            if k > first and spent + share * minutes > part_minutes:
                parts.append((first, k))
                first, spent = k, 0.0
            spent += share * minutes
        out[names] = parts + [(first, cycles)]
    return out


def _part_path(
    kind: str,
    setting: Setting,
    protocol: Protocol,
    names: tuple[str, ...] = (),
    cycles: tuple[int, int] | None = None,
) -> Path:
    """Where a task's rows are cached: keyed by the fields of the setting that change them, the
    protocol, the source of the functions that compute a cell and, for a part of a regimen group,
    its cycles."""
    from ..protocols.base import cache_dir, cache_key

    fields = SWEEP_COMPUTED if kind == "sweep" else COMPUTED
    computed = {k: getattr(setting, k) for k in fields}
    part = [] if cycles is None else [list(cycles)]
    return cache_dir() / "atlas" / "parts" / f"{cache_key(kind, list(names), computed, protocol, _METHOD, *part)}.pt"


def _treated_paths(setting: Setting, protocol: Protocol) -> dict[tuple[str, ...], Path]:
    from ..protocols.treatments import treated_paths

    return treated_paths(
        _run_config(setting, protocol),
        protocol.arm_configs(setting),
        _baseline_config(setting, protocol),
        PruneConfig(sparsity=protocol.sparsity, scope=setting.prune_scope),
        setting.network,
        workers=1,
    )


def _chosen_parts(
    setting: Setting, protocol: Protocol, part_minutes: float, parts: Mapping[tuple[str, ...], Sequence] | None
) -> dict[tuple[str, ...], list[tuple[int, int]]]:
    """:func:`regimen_parts`, or ``parts`` (of the same form) checked: every group's cycles, whole,
    one part after another."""
    planned = regimen_parts(setting, protocol, part_minutes)
    if parts is None:
        return planned
    out = {}
    for names, whole in planned.items():
        given = [tuple(p) for p in parts.get(names, whole)]
        ends = [0] + [b for _, b in given]
        if [a for a, _ in given] != ends[:-1] or ends[-1] != whole[-1][1] or any(a >= b for a, b in given):
            raise ValueError(
                f"parts[{names}] must be (first, last) cycles, one part after another from 0 to "
                f"{whole[-1][1]}; got {given}"
            )
        out[names] = given
    return out


def state_keys(
    setting: Setting,
    protocol: Protocol,
    part_minutes: float = PART_MINUTES,
    parts: Mapping[tuple[str, ...], Sequence] | None = None,
) -> dict[str, str]:
    """The cache key of every state a cell starts from or computes: its baselines ('baseline', one
    key over its seeds), the pruned network (the untreated arm's state: 'arms:untreated'), every
    group of study B's arms ('arms:ketamine', ...), and the rows of every other task ('sweep',
    'regimens:long_chronic', ..., 'study_b'; a regimen group split by cycles, :func:`regimen_parts`,
    by parts: 'regimens:long_chronic:1-5', 'regimens:long_chronic:6-10'). ``parts`` imposes the
    groups' parts instead (as :func:`regimen_parts` gives them)."""
    from ..protocols.base import baseline_paths

    base = baseline_paths(_run_config(setting, protocol), _baseline_config(setting, protocol), setting.network)
    out = {"baseline": hashlib.sha256("".join(p.stem for p in base.values()).encode()).hexdigest()[:20]}
    out["sweep"] = _part_path("sweep", setting, protocol).stem
    for names, group_parts in _chosen_parts(setting, protocol, part_minutes, parts).items():
        label = "regimens:" + "+".join(names)
        if len(group_parts) == 1:
            out[label] = _part_path("regimens", setting, protocol, names).stem
            continue
        for first, last in group_parts:
            out[f"{label}:{first + 1}-{last}"] = _part_path("regimens", setting, protocol, names, (first, last)).stem
    for names, path in _treated_paths(setting, protocol).items():
        out["arms:" + "+".join(names)] = path.stem
    out["study_b"] = _part_path("study_b", setting, protocol).stem
    return out


def tasks(
    cells_settings: Sequence[Setting],
    protocol: Protocol,
    part_minutes: float = PART_MINUTES,
    parts: Mapping[str, Mapping[tuple[str, ...], Sequence]] | None = None,
) -> list[Task]:
    """Every task the cells need, each once (cells that need the same state share its task).

    Per setting: its baselines; study A's sweep and one task per training group of its regimens
    (:func:`_regimen_groups`), or per part of a group expected to take longer than
    ``part_minutes`` on one thread (:func:`regimen_parts`; each part a wave after the part before);
    one task per group of study B's arms trained together
    (:func:`pruneplast.protocols.treatments.course_groups`); study B's measurements. A task is
    keyed on exactly the fields of the setting that change what it computes (:func:`state_keys`),
    so the regrowth-scale settings share the reference's baselines, sweep, pruned network and the
    treated states of the arms that regrow nothing. ``parts`` (setting name -> its groups' parts, as
    :func:`regimen_parts` gives them) imposes the parts of those settings: the same tasks at other
    durations (``benchmarks/atlas_tasks.py`` times the studies' parts in short runs).
    """
    from ..protocols.regimens import plan

    out: dict[str, Task] = {}
    for s in cells_settings:
        imposed = None if parts is None else parts.get(s.name)
        keys = state_keys(s, protocol, part_minutes, imposed)
        chosen = {"+".join(names): p for names, p in _chosen_parts(s, protocol, part_minutes, imposed).items()}
        shares = {"+".join(n): _cycle_shares(g) for n, g in zip(_regimen_groups(protocol), plan(protocol.regimens()))}
        w = float(s.network.n_weights) * len(protocol.seeds)
        cfgs = protocol.arm_configs(s)
        costs = {"baseline": 0.6 * protocol.baseline_epochs, "sweep": 0.02 * len(protocol.sweep_levels), "study_b": 1.0}
        for label, key in keys.items():
            kind, _, rest = label.partition(":")
            joined, _, span = rest.partition(":")
            names = tuple(joined.split("+")) if joined else ()
            cycles, step = None, 0
            if kind == "regimens":  # each training group's epochs, times the ensembles it trains
                cost = _regimen_cost(names, protocol)
                if span:
                    first = int(span.split("-")[0]) - 1
                    step, cycles = next((i, p) for i, p in enumerate(chosen[joined]) if p[0] == first)
                    cost *= sum(shares[joined][cycles[0] : cycles[1]])
            elif kind == "arms":  # per epoch: a mostly kept network > a noisy course > a 95%-sparse one
                cost = sum(
                    cfgs[n].epochs * (0.5 if cfgs[n].regrows else 0.3 if cfgs[n].noise_start > 0 else 0.1)
                    for n in names
                )
            else:
                cost = costs[kind]
            out.setdefault(kind + ":" + key, Task(kind, s, names, key, w * cost, cycles, step))
    return list(out.values())


def run_task(task: Task, protocol: Protocol) -> tuple[pd.DataFrame | None, float]:
    """One task on one thread: (its rows, or None for a task that computes cached states; the
    seconds it took when computed). A task whose rows are cached loads them."""
    from ..protocols.base import baseline, load_state, save_state
    from ..protocols.treatments import treated

    s = task.setting
    path = None
    if task.kind in ("sweep", "regimens", "study_b"):
        path = _part_path(task.kind, s, protocol, task.names, task.cycles)
    saved = load_state(path, _check_part) if path is not None else None
    if saved is not None:
        parallel.report(1)
        return saved["rows"], saved["seconds"]
    t0 = time.perf_counter()
    rows: pd.DataFrame | None = None
    with parallel.threads(1):
        if task.kind == "baseline":
            baseline(_run_config(s, protocol), _baseline_config(s, protocol), s.network)
        elif task.kind == "arms":
            cfgs = protocol.arm_configs(s)
            treated(
                _run_config(s, protocol),
                {n: cfgs[n] for n in task.names},
                _baseline_config(s, protocol),
                PruneConfig(sparsity=protocol.sparsity, scope=s.prune_scope),
                s.network,
                workers=1,
            )
        elif task.kind == "sweep":
            rows = _sweep(s, protocol)
        elif task.kind == "regimens":
            rows = _regimens(s, protocol, task.names, task.cycles)
        else:
            rows = _study_b(s, protocol)
    seconds = time.perf_counter() - t0
    if path is not None:
        save_state({"rows": rows, "seconds": seconds}, path)
    parallel.report(1)
    return rows, seconds


def _check_part(saved) -> None:
    """A cached task's rows: {'rows': a table, 'seconds': a number}."""
    if not isinstance(saved, dict) or set(saved) != {"rows", "seconds"} or not isinstance(saved["rows"], pd.DataFrame):
        what = sorted(saved) if isinstance(saved, dict) else type(saved).__name__
        raise ValueError(f"a task's rows and seconds expected; got {what}")


def _cell_from_tasks(
    setting: Setting, protocol: Protocol, done: dict[str, tuple], counted: set[str], part_minutes: float = PART_MINUTES
) -> pd.DataFrame:
    """A cell's table assembled from its tasks' rows: the same rows, bit for bit, as :func:`cell`.

    The regimen groups' rows join in training order (a split group's parts one after another),
    the pruned start's rows once (each group measured it), as
    :func:`~pruneplast.protocols.regimens.run` gives them for every regimen. ``cell_seconds``
    counts the tasks not in ``counted`` (shared tasks in the first cell that needs them), which
    are added to it."""
    keys = state_keys(setting, protocol, part_minutes)
    mine = {t.kind + ":" + t.key: t for t in tasks([setting], protocol, part_minutes)}
    seconds = sum(done[t][1] for t in sorted(set(mine) - counted))
    counted |= set(mine)
    longest = max(done[t][1] for t in mine)
    waves = [max(done[t][1] for t, task in mine.items() if task.wave == w) for w in {t.wave for t in mine.values()}]
    raw = []
    for k, (names, parts) in enumerate(regimen_parts(setting, protocol, part_minutes).items()):
        label = "regimens:" + "+".join(names)
        labels = [label] if len(parts) == 1 else [f"{label}:{a + 1}-{b}" for a, b in parts]
        df = pd.concat([done["regimens:" + keys[x]][0] for x in labels], ignore_index=True)
        raw.append(df if k == 0 else df[df["schedule"] != "pruned"])
    a = pd.concat(
        [done["sweep:" + keys["sweep"]][0], *_regimen_rows(pd.concat(raw, ignore_index=True))], ignore_index=True
    )
    return _assemble(setting, a, done["study_b:" + keys["study_b"]][0], seconds, longest, sum(waves))


def run(
    cells_settings: Sequence[Setting],
    protocol: Protocol,
    workers: int = 0,
    scheduler: str = "",
    progress: bool | None = None,
    part_minutes: float = PART_MINUTES,
) -> pd.DataFrame:
    """Every setting's cell; tidy rows of every cell, settings in the given order.

    Finished cells are loaded (:func:`cell_path`); the others are split into tasks (:func:`tasks`),
    which run in waves (:data:`WAVES`): the baselines, then study A's parts and study B's treated
    states, then study B's measurements, each task on one thread, the longest of a wave first; a
    regimen group expected to take longer than ``part_minutes`` on one thread runs in parts of
    whole cycles, one wave after another (:func:`regimen_parts`), to the same bits.
    ``workers``: processes on this machine (0: one per CPU core); ``scheduler``: the address of a
    running Dask scheduler ('tcp://host:8786') to send the tasks to instead. A task finds the
    states of an earlier wave in the engine's cache, or (a worker that does not share this
    machine's cache) computes them itself, to the same bits. A cell's ``cell_seconds`` is the sum
    of its tasks' times, a task shared by several cells counted in the first of them; its
    ``longest_task_seconds`` and ``path_seconds`` are its longest task and its critical path.
    """
    from ..protocols.base import load_state, save_state

    check_real("part_minutes", part_minutes, 0.0, lo_open=True)
    have: dict[int, pd.DataFrame] = {}
    for k, s in enumerate(cells_settings):
        saved = load_state(cell_path(s, protocol), _check_cell)
        if saved is not None:
            have[k] = saved.assign(setting=s.name, cached=True)
    todo = [s for k, s in enumerate(cells_settings) if k not in have]
    todo_tasks = tasks(todo, protocol, part_minutes)
    w = 1 if scheduler else parallel.resolve_workers(workers, protocol.device)
    done: dict[str, tuple] = {}
    for wave in sorted({t.wave for t in todo_tasks}):
        jobs = sorted((t for t in todo_tasks if t.wave == wave), key=lambda t: -t.cost)
        kinds = [k for ks in WAVES for k in ks if any(t.kind == k for t in jobs)]
        results = parallel.run_jobs(
            run_task,
            [(t, protocol) for t in jobs],
            w,
            total=len(jobs),
            desc=f"atlas {'/'.join(kinds)}",
            progress=progress,
            unit="task",
            scheduler=scheduler,
            units=[1] * len(jobs),
        )
        done.update({t.kind + ":" + t.key: r for t, r in zip(jobs, results)})
    counted: set[str] = set()
    for k, s in enumerate(cells_settings):
        if k in have:
            continue
        out = _cell_from_tasks(s, protocol, done, counted, part_minutes)
        save_state(out, cell_path(s, protocol))
        have[k] = out.assign(cached=False)
    return pd.concat([have[k] for k in range(len(cells_settings))], ignore_index=True)


_METHOD = _method()
