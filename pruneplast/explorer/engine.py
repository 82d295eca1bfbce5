"""The explorer's engine: prune, modulate, regrow, consolidate and test a small ensemble, with states cached."""

from __future__ import annotations

import time
from collections import OrderedDict

import numpy as np
import pandas as pd
import torch

from .. import arms, parallel
from ..config import (
    BASELINE,
    RegrowConfig,
    RunConfig,
    TrainConfig,
    check_int,
)
from ..data import EnsembleData
from ..network import EnsembleMLP
from ..operators import prune, regrow, train
from ..stress import Condition, evaluate, structure, tolerance
from .knobs import CONDITIONS, CONSOLIDATION_LR, STAGES, TOLERANCE_FROM_STRESS, ExplorerConfig, Knobs, Result

#: Torch threads a setting is computed on (see :class:`Explorer`).
THREADS = 1


# --------------------------------------------------------------------------- the engine
class Explorer:
    """Recomputes :class:`Knobs` settings on a small ensemble, caching states in memory.

    The baseline is loaded (or trained once and cached on disk) on first use. Pruned states are
    kept per sparsity, trained states per :attr:`Knobs.training` (least recently used first out),
    and reference evaluations per sparsity and noise knobs.

    A setting is computed on :data:`THREADS` torch thread: one small ensemble trained for a few
    epochs is no work to split between processes (starting one costs more than a recompute), and
    on one thread its time holds while other programs use the other cores. Measured on two
    cores under a load average of 17 (the default knobs, three replicas, three epochs), a
    recompute took 11-13 s on one thread and 68-74 s on two, with the same numbers bit for bit.
    """

    def __init__(
        self,
        config: ExplorerConfig = ExplorerConfig(),
        max_states: int = 8,
        progress: bool | None = False,
        start: tuple[EnsembleMLP, EnsembleData] | None = None,
    ):
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
                raise ValueError(
                    f"start holds seeds {base.seeds} / {list(data.seeds)}; config.seeds is {list(config.seeds)}"
                )
            self._set(base, data)
        self._pruned: OrderedDict = OrderedDict()
        self._states: OrderedDict = OrderedDict()
        self._refs: OrderedDict = OrderedDict()  # measurements (references; explored fixed tests)
        self._results: OrderedDict = OrderedDict()  # (knobs, regions) -> Result

    # ------------------------------------------------------------------ shared states
    def _load(self) -> None:
        if self._base is not None:
            return
        from ..protocols.base import baseline

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
        assert self._base is not None
        return self._base

    @property
    def data(self) -> EnsembleData:
        """Each replicate's data, training set cut to ``train_subset``, standard set to ``eval_samples``."""
        self._load()
        assert self._data is not None
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
            with parallel.threads(THREADS):
                net = self._train(knobs)
            self._states[key] = net
            self.trainings += 1
            _trim(self._states, self.max_states)
        self._states.move_to_end(key)
        return self._states[key]

    def _train(self, knobs: Knobs) -> EnsembleMLP:
        """A fresh explored network for ``knobs`` (not cached)."""
        net = self.pruned(knobs.sparsity).clone()
        t = arms.arm(knobs.treatment)
        net.set_modulation(gain=t.gain, damping=t.damping, activation=t.activation)
        if knobs.regrow_fraction > 0:  # gradient scores are taken at gain 1.0
            regrow(
                net,
                self.data,
                RegrowConfig(fraction=knobs.regrow_fraction, method=knobs.regrow_method),
                tag="regrow",
            )
        if knobs.consolidation_epochs > 0:
            train(
                net,
                self.data,
                TrainConfig(epochs=knobs.consolidation_epochs, lr=CONSOLIDATION_LR),
                tag="consolidation",
                progress=self.progress,
                desc="consolidation",
            )
        return net

    # ------------------------------------------------------------------ measuring
    def _measure(
        self, net: EnsembleMLP, knobs: Knobs, stage: str, fixed: bool = True, custom: bool = True
    ) -> pd.DataFrame:
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
                self._refs[key] = pd.concat(
                    [self._measure(n, knobs, st, fixed=fixed, custom=not fixed) for st, n in nets], ignore_index=True
                )
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
        with parallel.threads(THREADS):
            return self._compute(knobs, regions)

    def _compute(self, knobs: Knobs, regions: bool) -> Result:
        t0 = time.perf_counter()
        net = self.trained(knobs).clone()
        net.set_modulation(protection=knobs.protection)
        fkey = ("explored", knobs.training, knobs.protection)
        if fkey not in self._refs:
            self._refs[fkey] = self._measure(net, knobs, "explored", fixed=True, custom=False)
            _trim(self._refs, 4 * self.max_states)
        table = pd.concat(
            [self.references(knobs), self._refs[fkey], self._measure(net, knobs, "explored", fixed=False, custom=True)],
            ignore_index=True,
        )
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
