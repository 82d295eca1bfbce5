"""The interactive explorer: the model's main knobs, recomputed on a small ensemble of replicates.

Given a set of :class:`Knobs` (pruning sparsity, regrowth method and fraction, consolidation
epochs, the internal and input noise of a custom stress test, a treatment class with its gain,
damping and activation, and mood-stabiliser protection), :meth:`Explorer.compute` takes each
replicate's trained baseline (disk-cached, see :func:`pruneplast.protocols.base.baseline`) through

    prune (per layer, magnitude) -> drug modulation on -> regrowth -> consolidation (lr 5e-4)

and measures, on every replicate: accuracy (%) under each stress condition of the methods'
section 6 plus the custom test and the biased (manic-risk) test, the graded noise tolerance
curve, the weight sparsity of each layer (%), and the decision regions of the first replicate.
The trained baseline and the pruned, untreated network are measured under the same tests as
references. Results are tidy tables; :func:`figure` draws them (mean and SD over replicates).

Defaults are sized for interaction on two CPU cores: three replicates; regrowth scores and
consolidation on the first ``train_subset`` (2,000 of 12,000) training samples of each replicate,
for 3 epochs instead of the studies' 15; tests on the first ``eval_samples`` (1,000 of 4,000)
points of the standard set. Everything else is the studies' protocol. States are
cached in memory (the pruned state per sparsity, the trained state per training knobs), so a
change of the noise or protection knobs only re-evaluates.

Simplifications, stated on the explorer page: the treatment knob switches on the drug's
modulation (gain, damping, activation) during regrowth scoring (gain forced to 1.0 as in the
studies), consolidation and testing; its own training course (the SSRI-like 100 epochs at
lr 1e-5 with a noise taper) is replaced by the explorer's regrowth and consolidation knobs.
Protection is the mood stabiliser left at test: it acts on every test of the treated network and
not during training.

:func:`precompute_grid` evaluates a small grid of knob settings and renders every grid point's
figure, for the static book; :func:`static_explorer` and :func:`live_explorer` build the
ipywidgets front ends (the first switches between precomputed results in the browser, without a
kernel; the second recomputes with one).
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch

from .config import (
    BASELINE,
    EXPLORER_SPARSITY,
    REGROWTH_METHODS,
    RegrowConfig,
    RunConfig,
    TaskConfig,
    TrainConfig,
    check_choice,
    check_fractions,
    check_int,
    check_real,
    check_seeds,
)
from . import arms, plotting
from .arms import STUDY_ARMS
from .data import EnsembleData
from .network import EnsembleMLP
from .operators import prune, regrow, train
from .stress import MAIN_CONDITIONS, Condition, evaluate, structure, tolerance

#: Stress conditions shown, in order: the main battery, extreme internal noise, the custom test
#: (the noise knobs) and the biased (manic-risk) test.
CONDITIONS = MAIN_CONDITIONS + ("internal_extreme", "custom", "biased")
#: Internal-noise SDs of the explorer's tolerance curve.
TOLERANCE_SIGMAS = (0.0, 0.3, 0.5, 1.0, 1.5, 2.0, 2.5)
#: Tolerance points that are tests of the stress battery already (standard set, internal noise).
TOLERANCE_FROM_STRESS = {0.0: "standard", 0.3: "internal_mild", 0.5: "internal_moderate",
                         1.0: "internal_high", 1.5: "internal_severe", 2.5: "internal_extreme"}
#: Learning rate of consolidation after regrowth (the studies' value).
CONSOLIDATION_LR = 5e-4
STAGES = ("baseline", "pruned", "explored")
STAGE_LABELS = {"baseline": "trained baseline", "pruned": "pruned, untreated", "explored": "your setting"}
STAGE_COLOURS = {stage: plotting.colour(stage) for stage in STAGES}


# --------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class Knobs:
    """One setting of the explorer's knobs; the studies' values (and the explorer's) as defaults."""

    sparsity: float = 0.95  # fraction of each weight matrix pruned, in [0, 0.99]
    regrow_method: str = "gradient"  # 'gradient' (top accumulated |dL/dW|) or 'random'
    regrow_fraction: float = 0.5  # fraction of the pruned positions regrown, per layer
    consolidation_epochs: int = 3  # masked Adam epochs at lr 5e-4 (studies: 15)
    sigma_int: float = 0.5  # internal noise SD of the custom stress test
    input_sigma: float = 1.0  # input noise SD of the custom stress test
    treatment: str = "untreated"  # drug modulation: 'untreated', 'ketamine', 'ssri', 'neurosteroid'
    protection: float = 0.0  # mood-stabiliser protection p at test, in [0, 1]

    def __post_init__(self) -> None:
        object.__setattr__(self, "sparsity", EXPLORER_SPARSITY.check("sparsity", self.sparsity))
        check_choice("regrow_method", self.regrow_method, REGROWTH_METHODS)
        object.__setattr__(self, "regrow_fraction", check_real("regrow_fraction", self.regrow_fraction, 0.0, 1.0))
        check_int("consolidation_epochs", self.consolidation_epochs, 0, 100)
        object.__setattr__(self, "sigma_int", check_real("sigma_int", self.sigma_int, 0.0, 5.0))
        object.__setattr__(self, "input_sigma", check_real("input_sigma", self.input_sigma, 0.0, 5.0))
        check_choice("treatment", self.treatment, arms.names())
        object.__setattr__(self, "protection", check_real("protection", self.protection, 0.0, 1.0))

    @property
    def training(self) -> tuple:
        """The knobs that decide the explored network's weights (the rest only change tests)."""
        return (self.sparsity, self.regrow_method, self.regrow_fraction, self.consolidation_epochs,
                self.treatment)

    def describe(self) -> str:
        t = arms.arm(self.treatment)
        drug = "no drug" if self.treatment == "untreated" else (
            f"{arms.label(self.treatment)}: gain {t.gain:g}, damping {t.damping:g}, {t.activation}")
        return (f"pruned to {100 * self.sparsity:.0f}%, {100 * self.regrow_fraction:.0f}% "
                f"{self.regrow_method} regrowth, {self.consolidation_epochs} "
                f"epoch{'' if self.consolidation_epochs == 1 else 's'}; {drug}; "
                f"protection {self.protection:g}; custom test: input SD {self.input_sigma:g}, "
                f"internal SD {self.sigma_int:g}")


@dataclass(frozen=True)
class ExplorerConfig:
    """Sizes of the explorer's computation (what makes one recompute take a few seconds)."""

    seeds: tuple[int, ...] = (0, 1, 2)  # replicate seeds of the ensemble
    baseline_epochs: int = 20  # baseline training epochs at lr 1e-3 (disk-cached per seed)
    train_subset: int = 2000  # training samples per replicate used for scores and consolidation
    eval_samples: int = 1000  # standard-set samples per test (of 4,000; clean set: all 2,000)
    region_points: int = 121  # decision-region grid points per axis
    tolerance_sigmas: tuple[float, ...] = TOLERANCE_SIGMAS  # internal-noise SDs of the curve
    device: str = "cpu"  # torch device

    def __post_init__(self) -> None:
        object.__setattr__(self, "seeds", check_seeds("seeds", self.seeds))
        check_int("baseline_epochs", self.baseline_epochs, 1)
        check_int("train_subset", self.train_subset, 128, TaskConfig().n_train)
        check_int("eval_samples", self.eval_samples, 100, TaskConfig().n_standard)
        check_int("region_points", self.region_points, 11, 401)
        object.__setattr__(self, "tolerance_sigmas",
                           check_fractions("tolerance_sigmas", self.tolerance_sigmas, 0.0, 5.0))


# --------------------------------------------------------------------------- results
@dataclass
class Result:
    """One computed setting.

    ``table`` is tidy: columns ``experiment`` ('stress', 'tolerance', 'structure'), ``stage``
    ('baseline', 'pruned', 'explored'), ``seed``, ``condition``, ``metric`` and ``value``
    (accuracy in %, weight sparsity in %, kept weights as counts). ``net`` is the explored
    ensemble (one replica per seed); ``seconds`` the wall time of the computation.
    """

    knobs: Knobs
    table: pd.DataFrame
    net: EnsembleMLP
    seconds: float
    regions: np.ndarray | None = None  # (n, n) predicted class of the first replicate
    pruned_regions: np.ndarray | None = None  # the same for the pruned, untreated network

    def summary(self) -> pd.DataFrame:
        """Accuracy (%) per condition and stage: mean and SD (ddof 0) over replicates."""
        acc = self.table[(self.table.experiment == "stress")]
        g = acc.groupby(["condition", "stage"], sort=False)["value"]
        out = pd.DataFrame({"mean": g.mean(), "sd": g.std(ddof=0)}).unstack("stage")
        return out.reindex(list(CONDITIONS))

    def layer_sparsity(self) -> pd.DataFrame:
        """Weight sparsity (%) of each layer per stage: mean and SD over replicates."""
        s = self.table[(self.table.experiment == "structure") & (self.table.metric == "layer_sparsity")]
        g = s.groupby(["condition", "stage"], sort=False)["value"]
        return pd.DataFrame({"mean": g.mean(), "sd": g.std(ddof=0)}).unstack("stage")

    def headline(self) -> str:
        """One line of the explored network's key numbers (mean ± SD over replicates)."""
        s = self.summary()
        parts = []
        for cond in ("standard", "combined", "custom", "biased"):
            m, sd = s.loc[cond, ("mean", "explored")], s.loc[cond, ("sd", "explored")]
            parts.append(f"{cond} {m:.1f} ± {sd:.1f}%")
        sp = self.table[(self.table.stage == "explored") & (self.table.metric == "weight_sparsity")]["value"]
        return f"weight sparsity {sp.mean():.1f}%; accuracy: " + ", ".join(parts)


# --------------------------------------------------------------------------- the engine
class Explorer:
    """Recomputes :class:`Knobs` settings on a small ensemble, caching states in memory.

    The baseline is loaded (or trained once and cached on disk) on first use. Pruned states are
    kept per sparsity, trained states per :attr:`Knobs.training` (least recently used first out),
    and reference evaluations per sparsity and noise knobs.
    """

    def __init__(self, config: ExplorerConfig = ExplorerConfig(), max_states: int = 8,
                 progress: bool | None = False,
                 start: tuple[EnsembleMLP, EnsembleData] | None = None):
        """``start``: a trained ensemble and its data to use instead of the cached baselines
        (e.g. a smaller network in tests); its seeds must be ``config.seeds``."""
        if not isinstance(config, ExplorerConfig):
            raise ValueError(f"config must be an ExplorerConfig; got {type(config).__name__}")
        self.config = config
        self.progress = progress
        self.max_states = check_int("max_states", max_states, 1)
        self._base: EnsembleMLP | None = None
        self._data: EnsembleData | None = None
        self.trainings = 0  # how many explored states were trained (cache misses)
        if start is not None:
            base, data = start
            if base.seeds != list(config.seeds) or list(data.seeds) != list(config.seeds):
                raise ValueError(f"start holds seeds {base.seeds} / {list(data.seeds)}; "
                                 f"config.seeds is {list(config.seeds)}")
            self._set(base, data)
        self._pruned: OrderedDict = OrderedDict()
        self._states: OrderedDict = OrderedDict()
        self._refs: OrderedDict = OrderedDict()  # measurements (references; explored fixed tests)
        self._results: OrderedDict = OrderedDict()  # (knobs, regions) -> Result

    # ------------------------------------------------------------------ shared states
    def _load(self) -> None:
        if self._base is not None:
            return
        from .protocols.base import baseline

        cfg = self.config
        run = RunConfig(seeds=cfg.seeds, device=cfg.device, progress=self.progress)
        self._set(*baseline(run, TrainConfig(epochs=cfg.baseline_epochs, lr=BASELINE.lr)))

    def _set(self, base: EnsembleMLP, data: EnsembleData) -> None:
        n, k = self.config.train_subset, self.config.eval_samples
        x, y = dict(data.x), dict(data.y)
        x["train"], y["train"] = x["train"][:, :n], y["train"][:, :n]
        x["standard"], y["standard"] = x["standard"][:, :k], y["standard"][:, :k]
        self._base, self._data = base, EnsembleData(data.seeds, x, y)

    @property
    def baseline(self) -> EnsembleMLP:
        self._load()
        return self._base

    @property
    def data(self) -> EnsembleData:
        """Each replicate's data, training set cut to ``train_subset``, standard set to ``eval_samples``."""
        self._load()
        return self._data

    def pruned(self, sparsity: float) -> EnsembleMLP:
        """The baseline pruned per layer to ``sparsity`` (cached; do not modify it)."""
        key = round(float(sparsity), 6)
        if key not in self._pruned:
            self._pruned[key] = prune(self.baseline.clone(), float(sparsity))
            _trim(self._pruned, self.max_states)
        self._pruned.move_to_end(key)
        return self._pruned[key]

    def trained(self, knobs: Knobs) -> EnsembleMLP:
        """The explored network for ``knobs``: pruned, drug on, regrown, consolidated (cached)."""
        key = knobs.training
        if key not in self._states:
            net = self.pruned(knobs.sparsity).clone()
            t = arms.arm(knobs.treatment)
            net.set_modulation(gain=t.gain, damping=t.damping, activation=t.activation)
            if knobs.regrow_fraction > 0:  # gradient scores are taken at gain 1.0
                regrow(net, self.data, RegrowConfig(fraction=knobs.regrow_fraction,
                                                    method=knobs.regrow_method), tag="regrow")
            if knobs.consolidation_epochs > 0:
                train(net, self.data, TrainConfig(epochs=knobs.consolidation_epochs, lr=CONSOLIDATION_LR),
                      tag="consolidation", progress=self.progress, desc="consolidation")
            self._states[key] = net
            self.trainings += 1
            _trim(self._states, self.max_states)
        self._states.move_to_end(key)
        return self._states[key]

    # ------------------------------------------------------------------ measuring
    def _measure(self, net: EnsembleMLP, knobs: Knobs, stage: str, fixed: bool = True,
                 custom: bool = True) -> pd.DataFrame:
        """Measurements of ``net`` labelled with ``stage``: ``fixed`` = every test but the custom
        one, the tolerance curve and the structure; ``custom`` = the custom test of ``knobs``.

        Tolerance points whose internal-noise SD is one of the stress battery's reuse that test
        (same noise draws); only the other SDs are evaluated again.
        """
        frames = []
        if fixed:
            conds = [c for c in CONDITIONS if c != "custom"]
            stress_df = evaluate(net, self.data, conds).assign(experiment="stress")
            frames.append(stress_df)
            extra = [s for s in self.config.tolerance_sigmas if s not in TOLERANCE_FROM_STRESS]
            if extra:
                frames.append(tolerance(net, self.data, extra).assign(experiment="tolerance"))
            for s in self.config.tolerance_sigmas:
                if s in TOLERANCE_FROM_STRESS:
                    rows = stress_df[stress_df.condition == TOLERANCE_FROM_STRESS[s]]
                    frames.append(rows.assign(experiment="tolerance", condition=f"sigma_{s:g}"))
            frames.append(_structure(net).assign(experiment="structure"))
        if custom:
            cond = Condition("custom", input_sigma=knobs.input_sigma, sigma_int=knobs.sigma_int)
            frames.append(evaluate(net, self.data, [cond]).assign(experiment="stress"))
        df = pd.concat(frames, ignore_index=True)
        df["stage"] = stage
        return df

    def references(self, knobs: Knobs) -> pd.DataFrame:
        """The trained baseline and the pruned, untreated network under the same tests (cached:
        the fixed tests per sparsity, the custom test per sparsity and noise knobs)."""
        sp = round(knobs.sparsity, 6)
        nets = (("baseline", self.baseline), ("pruned", self.pruned(knobs.sparsity)))
        parts = []
        for key, fixed in (((sp,), True), ((sp, knobs.sigma_int, knobs.input_sigma), False)):
            if key not in self._refs:
                self._refs[key] = pd.concat([self._measure(n, knobs, st, fixed=fixed, custom=not fixed)
                                             for st, n in nets], ignore_index=True)
                _trim(self._refs, 4 * self.max_states)
            self._refs.move_to_end(key)
            parts.append(self._refs[key])
        return pd.concat(parts, ignore_index=True)

    def compute(self, knobs: Knobs = Knobs(), regions: bool = True) -> Result:
        """Every measurement of one setting (see :class:`Result`); ``regions``: also the decision maps.

        The explored network's fixed tests are cached per training knobs and protection, so a
        change of the custom test's noise evaluates that test only; whole results are cached too.
        """
        if not isinstance(knobs, Knobs):
            raise ValueError(f"knobs must be a Knobs; got {type(knobs).__name__}")
        if (knobs, regions) in self._results:
            self._results.move_to_end((knobs, regions))
            return self._results[(knobs, regions)]
        t0 = time.perf_counter()
        net = self.trained(knobs).clone()
        net.set_modulation(protection=knobs.protection)
        fkey = ("explored", knobs.training, knobs.protection)
        if fkey not in self._refs:
            self._refs[fkey] = self._measure(net, knobs, "explored", fixed=True, custom=False)
            _trim(self._refs, 4 * self.max_states)
        table = pd.concat([self.references(knobs), self._refs[fkey],
                           self._measure(net, knobs, "explored", fixed=False, custom=True)], ignore_index=True)
        order = {c: i for i, c in enumerate(CONDITIONS)}
        table["_o"] = table.condition.map(order).fillna(len(order))
        table["_s"] = table.stage.map({s: i for i, s in enumerate(STAGES)})
        table = table.sort_values(["_s", "experiment", "_o"], kind="stable")
        table = table[["experiment", "stage", "seed", "condition", "metric", "value"]].reset_index(drop=True)
        reg = pre = None
        if regions:
            reg = region_map(net, 0, n=self.config.region_points)
            pre = region_map(self.pruned(knobs.sparsity), 0, n=self.config.region_points)
        res = Result(knobs, table, net, time.perf_counter() - t0, reg, pre)
        self._results[(knobs, regions)] = res
        _trim(self._results, 4 * self.max_states)
        return res


def _trim(cache: OrderedDict, n: int) -> None:
    while len(cache) > n:
        cache.popitem(last=False)


def _structure(net: EnsembleMLP) -> pd.DataFrame:
    """Weight sparsity (%) overall and per layer, and kept weights per layer."""
    s = structure(net)
    s = s[s.metric.isin(["weight_sparsity", "kept_weights"])].copy()
    sizes = [m[0].numel() for m in net.masks]
    kept = s[s.metric == "kept_weights"].copy()
    layer = kept["condition"].str.removeprefix("layer_").astype(int) - 1
    kept["value"] = 100.0 * (1.0 - kept["value"].to_numpy() / np.asarray(sizes)[layer.to_numpy()])
    kept["metric"] = "layer_sparsity"
    return pd.concat([s, kept], ignore_index=True)


@torch.no_grad()
def region_map(net: EnsembleMLP, replica: int = 0, lim: float = 6.5, n: int = 121) -> np.ndarray:
    """(n, n) predicted class over [-lim, lim]^2 (rows: x2 ascending), no noise, modulation on."""
    xs = torch.linspace(-lim, lim, n)
    gx, gy = torch.meshgrid(xs, xs, indexing="xy")
    grid = torch.stack([gx.flatten(), gy.flatten()], 1).to(net.device)
    return net.select([replica]).forward(grid.unsqueeze(0)).argmax(-1)[0].reshape(n, n).cpu().numpy()


# --------------------------------------------------------------------------- drawing
def figure(result: Result, dpi: int = 80):
    """Five panels: accuracy per stress test, sparsity per layer, tolerance curve, and the decision
    regions of the first replicate pruned (untreated) and in your setting.

    Bars and lines are means over replicates; error bars and bands are ± 1 SD.
    """
    import matplotlib as mpl
    import matplotlib.pyplot as plt

    from . import plotting

    plotting.use_style()
    fig = plt.figure(figsize=(10.0, 6.6), dpi=dpi, layout="constrained")
    gs = fig.add_gridspec(2, 3, width_ratios=[1.2, 1.0, 1.0], height_ratios=[1.0, 1.05])
    ax_acc, ax_sp = fig.add_subplot(gs[0, :2]), fig.add_subplot(gs[0, 2])
    ax_tol, ax_rp, ax_re = fig.add_subplot(gs[1, 0]), fig.add_subplot(gs[1, 1]), fig.add_subplot(gs[1, 2])
    t = result.table

    # accuracy under every stress test
    s = result.summary()
    x = np.arange(len(CONDITIONS))
    w = 0.27
    for k, stage in enumerate(STAGES):
        ax_acc.bar(x + (k - 1) * w, s[("mean", stage)], w, yerr=s[("sd", stage)], capsize=1.5,
                   color=STAGE_COLOURS[stage], label=STAGE_LABELS[stage], error_kw={"lw": 0.8})
    ax_acc.set_xticks(x, [c.replace("internal_", "int. ").replace("input_", "input ") for c in CONDITIONS],
                      rotation=30, ha="right")
    ax_acc.set(ylim=(0, 104), ylabel="accuracy (%)", title="accuracy under each stress test")
    ax_acc.axhline(25, color="0.6", lw=0.8, ls=":")

    # weight sparsity per layer
    ls = result.layer_sparsity()
    y = np.arange(len(ls.index))
    for k, stage in enumerate(("pruned", "explored")):
        ax_sp.barh(y + (k - 0.5) * 0.38, ls[("mean", stage)], 0.38, xerr=ls[("sd", stage)],
                   color=STAGE_COLOURS[stage])
    sizes = result.net.sizes
    ax_sp.set_yticks(y, [f"{a}→{b}" for a, b in zip(sizes[:-1], sizes[1:])])
    ax_sp.invert_yaxis()
    ax_sp.set(xlim=(0, 100), xlabel="weights pruned (%)", title="sparsity per layer")

    # tolerance curve
    tol = t[t.experiment == "tolerance"].copy()
    tol["sigma"] = tol["condition"].str.removeprefix("sigma_").astype(float)
    for stage in STAGES:
        g = tol[tol.stage == stage].groupby("sigma")["value"]
        m, sd = g.mean(), g.std(ddof=0)
        ax_tol.plot(m.index, m, marker="o", ms=3, color=STAGE_COLOURS[stage])
        ax_tol.fill_between(m.index, m - sd, m + sd, color=STAGE_COLOURS[stage], alpha=0.2, lw=0)
    ax_tol.set(xlabel="internal noise SD", ylabel="standard accuracy (%)", ylim=(0, 104),
               title="noise tolerance")

    # decision regions of the first replicate, pruned and explored
    cmap = mpl.colors.ListedColormap(list(plotting.CLASSES))
    seed = result.net.seeds[0]
    for ax, reg, title in ((ax_rp, result.pruned_regions, f"pruned, untreated (seed {seed})"),
                           (ax_re, result.regions, f"your setting (seed {seed})")):
        if reg is None:
            ax.set_axis_off()
            continue
        ax.imshow(reg, origin="lower", extent=(-6.5, 6.5, -6.5, 6.5), cmap=cmap, alpha=0.45,
                  vmin=-0.5, vmax=3.5, interpolation="nearest")
        ax.plot([-3, 3, -3, 3], [-3, 3, 3, -3], "k+", ms=6)
        ax.set(xlabel="$x_1$", ylabel="$x_2$", aspect="equal", title=title)
        ax.grid(False)
    n = len(result.net.seeds)
    handles = [mpl.patches.Patch(color=STAGE_COLOURS[st], label=STAGE_LABELS[st]) for st in STAGES]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize="small", frameon=False)
    fig.suptitle(f"{result.knobs.describe()}\nmeans over {n} replicate{'s' if n > 1 else ''}, bars ± 1 SD; "
                 "dotted line: chance (25%); + class centres", fontsize="medium")
    return fig


def png(fig, dpi: int = 80) -> bytes:
    """A figure as PNG bytes (the figure is closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


# --------------------------------------------------------------------------- the precomputed grid
@dataclass(frozen=True)
class GridSpec:
    """The knob values precomputed for the static book (every combination), other knobs fixed."""

    sparsities: tuple[float, ...] = (0.9, 0.95, 0.97)  # pruning levels
    regrow_fractions: tuple[float, ...] = (0.0, 0.25, 0.5)  # regrowth fractions
    treatments: tuple[str, ...] = STUDY_ARMS  # treatment arms (the studies')
    base: Knobs = Knobs()  # the remaining knobs

    def __post_init__(self) -> None:
        object.__setattr__(self, "sparsities", check_fractions("grid sparsities", self.sparsities, 0.0, 0.99))
        object.__setattr__(self, "regrow_fractions",
                           check_fractions("grid regrow_fractions", self.regrow_fractions, 0.0, 1.0))
        if isinstance(self.treatments, str) or not self.treatments:
            raise ValueError(f"grid treatments must be a non-empty list of {list(arms.names())}; "
                             f"got {self.treatments!r}")
        object.__setattr__(self, "treatments",
                           tuple(check_choice("grid treatments", t, arms.names()) for t in self.treatments))
        for name in ("sparsities", "regrow_fractions", "treatments"):
            v = getattr(self, name)
            if len(set(v)) != len(v):
                raise ValueError(f"grid {name} must not repeat a value; got {list(v)}")
        if not isinstance(self.base, Knobs):
            raise ValueError(f"grid base must be a Knobs; got {type(self.base).__name__}")

    @property
    def axes(self) -> tuple[tuple, ...]:
        return (self.sparsities, self.regrow_fractions, self.treatments)

    def __len__(self) -> int:
        return len(self.sparsities) * len(self.regrow_fractions) * len(self.treatments)

    def points(self) -> list[tuple[tuple[int, int, int], Knobs]]:
        """((i, j, k), knobs) for every grid point, sparsity slowest, treatment fastest."""
        out = []
        for (i, s), (j, f), (k, t) in itertools.product(*(list(enumerate(a)) for a in self.axes)):
            out.append(((i, j, k), dataclasses.replace(self.base, sparsity=s, regrow_fraction=f, treatment=t)))
        return out


@dataclass
class Grid:
    """Precomputed grid points: tidy ``table`` (grid indices added), PNG ``images`` and ``captions``."""

    spec: GridSpec
    table: pd.DataFrame
    images: dict  # (i, j, k) -> PNG bytes
    captions: dict  # (i, j, k) -> HTML: the setting and its key numbers
    seconds: float

    @property
    def nbytes(self) -> int:
        """Bytes of the rendered figures (what the grid adds to a page, before base64)."""
        return sum(len(b) for b in self.images.values())


def precompute_grid(explorer: Explorer, spec: GridSpec = GridSpec(), dpi: int = 80,
                    on_point: Callable[[int, int, Knobs], None] | None = None) -> Grid:
    """Compute and draw every point of ``spec``; ``on_point(done, total, knobs)`` after each."""
    t0 = time.perf_counter()
    frames, images, captions = [], {}, {}
    pts = spec.points()
    for n, (idx, knobs) in enumerate(pts, 1):
        res = explorer.compute(knobs)
        frames.append(res.table.assign(sparsity=knobs.sparsity, regrow_fraction=knobs.regrow_fraction,
                                       treatment=knobs.treatment))
        images[idx] = png(figure(res, dpi=dpi), dpi=dpi)
        captions[idx] = f"<b>{knobs.describe()}</b><br>{res.headline()}"
        if on_point is not None:
            on_point(n, len(pts), knobs)
    table = pd.concat(frames, ignore_index=True)
    return Grid(spec, table, images, captions, time.perf_counter() - t0)


def grid_results(grid: Grid) -> pd.DataFrame:
    """The grid's explored-stage measurements as tidy results (experiment, condition, seed, metric, value)."""
    t = grid.table[grid.table.stage == "explored"].copy()
    t["experiment"] = "explorer_" + t["experiment"]
    return t.drop(columns=["stage"])


# --------------------------------------------------------------------------- widgets
def _fmt_pct(v: float) -> str:
    return f"{100 * v:g}%"


def static_explorer(grid: Grid):
    """Widgets that switch between the precomputed grid points in the browser, with no kernel.

    Nested ``Stack`` widgets (sparsity > regrowth fraction > treatment) hold every point's figure
    and caption; each control's ``index`` is ``jslink``-ed to the ``selected_index`` of every
    stack at its level, so the links live in the page's embedded widget state.
    """
    import ipywidgets as W

    spec = grid.spec
    s_ctl = W.SelectionSlider(options=[(_fmt_pct(s), i) for i, s in enumerate(spec.sparsities)],
                              value=min(range(len(spec.sparsities)), key=lambda i: abs(spec.sparsities[i] - 0.95)),
                              description="sparsity", continuous_update=True)
    f_ctl = W.SelectionSlider(options=[(_fmt_pct(f), j) for j, f in enumerate(spec.regrow_fractions)],
                              value=len(spec.regrow_fractions) - 1, description="regrowth")
    t_ctl = W.Dropdown(options=[(t, k) for k, t in enumerate(spec.treatments)], value=0,
                       description="treatment")
    links, level2, level3 = [], [], []
    outer_children = []
    for i in range(len(spec.sparsities)):
        mid_children = []
        for j in range(len(spec.regrow_fractions)):
            leaves = []
            for k in range(len(spec.treatments)):
                img = W.Image(value=grid.images[(i, j, k)], format="png",
                              layout=W.Layout(width="100%", max_width="840px", height="auto"))
                cap = W.HTML(f'<div class="explorer-caption">{grid.captions[(i, j, k)]}</div>')
                leaves.append(W.VBox([cap, img]))
            st3 = W.Stack(leaves, selected_index=t_ctl.index)
            level3.append(st3)
            mid_children.append(st3)
        st2 = W.Stack(mid_children, selected_index=f_ctl.index)
        level2.append(st2)
        outer_children.append(st2)
    outer = W.Stack(outer_children, selected_index=s_ctl.index)
    links.append(W.jslink((s_ctl, "index"), (outer, "selected_index")))
    links += [W.jslink((f_ctl, "index"), (st, "selected_index")) for st in level2]
    links += [W.jslink((t_ctl, "index"), (st, "selected_index")) for st in level3]
    box = W.VBox([W.HBox([s_ctl, f_ctl, t_ctl]), outer])
    box.add_class("pruneplast-static-explorer")
    box._links = links  # keep the link widgets referenced
    return box


def live_explorer(explorer: Explorer, knobs: Knobs = Knobs(), dpi: int = 80):
    """Widgets for every knob; a change recomputes (needs a running kernel).

    Returns the widget box; its ``status`` HTML names the computation count and its wall time.
    """
    import ipywidgets as W

    style = {"description_width": "135px"}
    ctl = {
        "sparsity": W.FloatSlider(value=knobs.sparsity, min=0.0, max=0.99, step=0.01, readout_format=".2f",
                                  description="pruning sparsity"),
        "regrow_method": W.Dropdown(options=list(REGROWTH_METHODS), value=knobs.regrow_method,
                                    description="regrowth method"),
        "regrow_fraction": W.FloatSlider(value=knobs.regrow_fraction, min=0.0, max=1.0, step=0.05,
                                         description="regrowth fraction"),
        "consolidation_epochs": W.IntSlider(value=knobs.consolidation_epochs, min=0, max=15,
                                            description="consolidation epochs"),
        "treatment": W.Dropdown(options=list(arms.names()), value=knobs.treatment, description="treatment"),
        "protection": W.FloatSlider(value=knobs.protection, min=0.0, max=1.0, step=0.05,
                                    description="mood-stabiliser p"),
        "sigma_int": W.FloatSlider(value=knobs.sigma_int, min=0.0, max=3.0, step=0.1,
                                   description="custom: internal SD"),
        "input_sigma": W.FloatSlider(value=knobs.input_sigma, min=0.0, max=3.0, step=0.1,
                                     description="custom: input SD"),
    }
    for w in ctl.values():
        w.style, w.layout = style, W.Layout(width="auto", min_width="0")
        if hasattr(w, "continuous_update"):
            w.continuous_update = False
    drug = W.HTML()
    status = W.HTML()
    status.add_class("explorer-status")
    image = W.Image(format="png", layout=W.Layout(width="100%", max_width="840px", height="auto"))
    count = {"n": 0}

    def show_drug(name: str) -> None:
        t = arms.arm(name)
        drug.value = (f"<small>{name}: gain {t.gain:g}, damping {t.damping:g}, activation "
                      f"{t.activation}</small>")

    def recompute(*_: Any) -> None:
        try:
            k = Knobs(**{name: w.value for name, w in ctl.items()})
        except ValueError as exc:
            status.value = f"<b>invalid setting:</b> {exc}"
            return
        show_drug(k.treatment)
        status.value = "<i>computing…</i>"
        res = explorer.compute(k)
        image.value = png(figure(res, dpi=dpi), dpi=dpi)
        count["n"] += 1
        status.value = (f'<span class="explorer-result">result {count["n"]}: {res.headline()} '
                        f"(computed in {res.seconds:.1f} s)</span>")

    for w in ctl.values():
        w.observe(recompute, names="value")
    recompute()
    controls = W.GridBox(list(ctl.values()), layout=W.Layout(
        grid_template_columns="repeat(auto-fit, minmax(300px, 1fr))", grid_gap="2px 16px", width="100%"))
    box = W.VBox([controls, drug, status, image])
    box.add_class("pruneplast-live-explorer")
    box.controls, box.status, box.image, box.recompute = ctl, status, image, recompute
    return box


def timed_recompute(explorer: Explorer, settings: Sequence[Knobs]) -> pd.DataFrame:
    """Wall time (s) of computing, then drawing, each setting in turn, with what is cached then."""
    rows = []
    for k in settings:
        t0 = time.perf_counter()
        res = explorer.compute(k)
        t1 = time.perf_counter()
        png(figure(res))
        rows.append({"setting": k.describe(), "seconds": t1 - t0, "drawing_seconds": time.perf_counter() - t1})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- the web app
def app_notebook(out, profile: str = "paper", overrides: dict | None = None):
    """Write the explorer chapter as an ``.ipynb`` for Voila (``make explore``); returns its path.

    The jupytext source ``notebooks/explorer.md`` is converted and its parameters injected (the
    profile's values plus ``overrides``, validated; ``show_grid`` defaults to False here, since
    the app recomputes live and the grid exists for the static book).
    """
    from pathlib import Path

    import nbformat
    import papermill as pm

    from . import build

    src = build.find_notebook("explorer")
    values = {"show_grid": False, **dict(overrides or {})}
    params = build.parameters_for(src, profile, values)
    nb = pm.execute_notebook(build.read_notebook(src), None, parameters=params, prepare_only=True,
                             kernel_name="python3", language="python", progress_bar=False)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(out))
    return out


#: Voila options of the app: local address only; JupyterLab extensions that need the full
#: JupyterLab (jupytext's) are not loaded, so the page has no JavaScript errors.
VOILA_OPTIONS = ("--no-browser", "--Voila.ip=127.0.0.1", "--NotebookClient.timeout=1800",
                 "--VoilaConfiguration.extension_denylist=jupyterlab-jupytext")


def voila_command(notebook, port: int) -> list[str]:
    """The command that serves ``notebook`` with Voila on http://127.0.0.1:``port``/."""
    import sys

    check_int("port", port, 1, 65535)
    return [sys.executable, "-m", "voila", str(notebook), f"--port={port}", *VOILA_OPTIONS]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pruneplast.explorer --out FILE [--profile P] [-p NAME VALUE ...] [--serve PORT]``."""
    import argparse

    from . import build, chapters

    ap = argparse.ArgumentParser(prog="python -m pruneplast.explorer",
                                 description="Prepare the explorer notebook for Voila.")
    ap.add_argument("--out", required=True, help="the .ipynb to write")
    ap.add_argument("--profile", default="paper", choices=chapters.PROFILES)
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    ap.add_argument("--serve", type=int, default=None, metavar="PORT",
                    help="then serve it with Voila on http://127.0.0.1:PORT/ until interrupted")
    args = ap.parse_args(argv)
    try:
        path = app_notebook(args.out, args.profile, {k: build.parse_value(v) for k, v in args.parameter})
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    print(f"explorer app notebook: {path}")
    if args.serve is None:
        return 0
    import subprocess

    print(f"== explorer at http://127.0.0.1:{args.serve}/ (Ctrl-C stops it) ==", flush=True)
    try:
        return subprocess.call(voila_command(path, args.serve))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
