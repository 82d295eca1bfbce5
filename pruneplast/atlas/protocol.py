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

Settings are independent tasks (*cells*): :func:`run` sends them to worker processes on this
machine (:func:`pruneplast.parallel.run_jobs`) or, given a Dask scheduler's address, to that
cluster. Each cell runs on one thread, so its numbers do not depend on where it ran. Baselines and
treated networks come from, and go to, the engine's cache (:mod:`pruneplast.protocols.base`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

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
)
from ..operators import _prune_to

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
    sigma: float = TaskConfig().sigma  # class spread of the task
    scope: str = PruneConfig().scope  # 'layer' or 'global' threshold
    lr_factor: float = 1.0  # every learning rate times this
    init_std: float = RegrowConfig().init_std  # SD of regrown weights
    shared_data: bool = False  # every replicate on study A's one data set (else one per replicate)

    def __post_init__(self) -> None:
        check_choice("choice", self.choice, tuple(CHOICES))
        NetworkConfig((2, *self.hidden, 4))
        TaskConfig(sigma=self.sigma)
        PruneConfig(scope=self.scope)
        RegrowConfig(init_std=self.init_std)

    @property
    def data_sets(self) -> str:
        """The data-set scheme of both studies' parts in this setting (see the module)."""
        return "shared" if self.shared_data else "per_replicate"

    @property
    def network(self) -> NetworkConfig:
        return NetworkConfig((2, *self.hidden, 4))

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
        out.append(Setting(f"spread_{s:g}", "task_noise", f"class spread {s:g}", sigma=float(s)))
    if global_scope:
        out.append(Setting("scope_global", "prune_scope", "one global threshold", scope="global"))
    for f in lr_factors:
        out.append(Setting(f"lr_x{f:g}", "learning_rates", f"x{f:g}", lr_factor=float(f)))
    for s in init_stds:
        out.append(Setting(f"init_{s:g}", "regrowth_init", f"SD {s:g}", init_std=float(s)))
    if shared_data_set:
        out.append(Setting("data_shared", "data_sets", "study A's one data set for every replicate", shared_data=True))
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

        cfgs = configs(arms.STUDY_ARMS, epochs=dict(self.treatment_epochs))
        return {
            n: dataclasses.replace(c, lr=c.lr * setting.lr_factor, regrow_init_std=setting.init_std)
            for n, c in cfgs.items()
        }


def _run_config(setting: Setting, protocol: Protocol) -> RunConfig:
    task = TaskConfig(
        n_train=protocol.n_train,
        n_standard=protocol.n_standard,
        n_clean=protocol.n_clean,
        sigma=setting.sigma,
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


def _study_a(setting: Setting, protocol: Protocol) -> pd.DataFrame:
    from ..protocols import regimens
    from ..protocols.base import baseline, pruned
    from ..stress import evaluate

    run = _run_config(setting, protocol)
    base, data = baseline(run, _baseline_config(setting, protocol), setting.network)
    levels = list(protocol.sweep_levels)
    sweep = base.repeat([{"sparsity_target": float(s)} for s in levels])
    sweep_data = data.select([i for i in range(data.n_replicas) for _ in levels])
    _prune_to(sweep, torch.tensor(levels, dtype=torch.float64).repeat(base.n_replicas), setting.scope)
    sw = evaluate(sweep, sweep_data, ("combined",))
    frames = [_rows(sw, "sweep_combined", level=sw["sparsity_target"].astype(float) * 100)]
    start = pruned(base, PruneConfig(sparsity=protocol.sparsity, scope=setting.scope))
    df = regimens.run(
        start,
        data,
        protocol.regimens(),
        lr=CONSOLIDATION.lr * setting.lr_factor,
        conditions=("internal_extreme", "combined"),
        relapse=RelapseConfig(),
        regrow_config=RegrowConfig(init_std=setting.init_std),
    )
    df = df[df["regimen"] != "-"]
    for (regimen, phase, condition, metric), g in df.groupby(["regimen", "phase", "condition", "metric"]):
        if metric == "accuracy" or metric == "relapse_drop":
            frames.append(_rows(g, f"{regimen}:{phase}:{condition}:{metric}"))
    return pd.concat(frames, ignore_index=True)


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
        PruneConfig(sparsity=protocol.sparsity, scope=setting.scope),
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
COMPUTED = ("hidden", "sigma", "scope", "lr_factor", "init_std", "shared_data")


def _method() -> str:
    """SHA-256 of the source of the functions that compute a cell: part of a cached cell's key."""
    import inspect

    parts = (_run_config, _baseline_config, _rows, _study_a, _study_b, Protocol.regimens, Protocol.arm_configs)
    return hashlib.sha256("".join(inspect.getsource(f) for f in parts).encode()).hexdigest()


def cell_path(setting: Setting, protocol: Protocol) -> Path:
    """Where a finished cell is cached: keyed by what the setting changes, the protocol, the
    engine's source (:func:`pruneplast.keys.state_hash`) and the source of the functions that
    compute a cell (as loaded when this module was imported)."""
    from ..protocols.base import _key, cache_dir

    computed = {k: getattr(setting, k) for k in COMPUTED}
    return cache_dir() / "atlas" / f"{_key(computed, protocol, _METHOD)}.pt"


def cell(setting: Setting, protocol: Protocol, cache: bool = True) -> pd.DataFrame:
    """One setting, both studies' parts, on one thread: tidy rows (experiment 'atlas', setting, part
    'A' or 'B', quantity, condition, metric, seed, value; ``level`` for the sweep; ``cell_seconds``,
    the wall time the cell took when it was computed, and ``cached``, whether this call loaded it).
    A pure function of its arguments; the two parts share the setting's baseline through the
    engine's cache. A finished cell is cached (:func:`cell_path`), so a rerun, or a run that was
    stopped, recomputes only the cells it lacks."""
    from ..protocols.base import load_state, save_state

    path = cell_path(setting, protocol)
    saved = load_state(path, _check_cell) if cache else None
    if saved is not None:
        parallel.report(1)
        return saved.assign(setting=setting.name, cached=True)
    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        frames = []
        for part, study in (("A", _study_a), ("B", _study_b)):
            df = study(setting, protocol)
            df.insert(0, "part", part)
            frames.append(df)
    finally:
        torch.set_num_threads(threads)
    out = pd.concat(frames, ignore_index=True)
    out.insert(0, "setting", setting.name)
    out.insert(0, "experiment", "atlas")
    out["cell_seconds"] = time.perf_counter() - t0
    if cache:
        save_state(out, path)
    parallel.report(1)
    return out.assign(cached=False)


def _check_cell(saved) -> None:
    """A cached cell: a table with the columns :func:`cell` writes."""
    need = {"experiment", "setting", "part", "metric", "seed", "value", "cell_seconds"}
    if not isinstance(saved, pd.DataFrame):
        raise ValueError(f"a cell's table expected; got a {type(saved).__name__}")
    if not need <= set(saved.columns):
        raise ValueError(f"a cell's table lacks the columns {sorted(need - set(saved.columns))}")


def _cost(setting: Setting) -> float:
    """A proxy of a cell's time, to hand out the longest first: weights per replica."""
    return float(setting.network.n_weights)


def run(
    cells_settings: Sequence[Setting],
    protocol: Protocol,
    workers: int = 0,
    scheduler: str = "",
    progress: bool | None = None,
) -> pd.DataFrame:
    """Every setting's cell; tidy rows of every cell, settings in the given order.

    ``workers``: processes on this machine (0: one per CPU core); ``scheduler``: the address of a
    running Dask scheduler ('tcp://host:8786') to send the cells to instead.
    """
    jobs = [(s, protocol) for s in cells_settings]
    order = sorted(range(len(jobs)), key=lambda k: -_cost(jobs[k][0]))
    w = 1 if scheduler else parallel.resolve_workers(workers, protocol.device)
    done = parallel.run_jobs(
        cell,
        [jobs[k] for k in order],
        w,
        total=len(jobs),
        desc="atlas cells",
        progress=progress,
        unit="cell",
        scheduler=scheduler,
        units=[1] * len(jobs),
    )
    by_job = dict(zip(order, done))
    return pd.concat([by_job[k] for k in range(len(jobs))], ignore_index=True)


_METHOD = _method()
