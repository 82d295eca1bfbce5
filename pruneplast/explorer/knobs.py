"""The explorer's knobs, its sizes and the result of one recompute."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import arms, plotting
from ..config import (
    CONSOLIDATION,
    EXPLORER_SPARSITY,
    REGROWTH_METHODS,
    TaskConfig,
    check_choice,
    check_fractions,
    check_int,
    check_real,
    check_seeds,
)
from ..network import EnsembleMLP
from ..stress import MAIN_CONDITIONS
from ..tables import plain

#: Stress conditions shown, in order: the main battery, extreme internal noise, the custom test
#: (the noise knobs) and the biased (manic-risk) test.
CONDITIONS = MAIN_CONDITIONS + ("internal_extreme", "custom", "biased")
#: Internal-noise SDs of the explorer's tolerance curve.
TOLERANCE_SIGMAS = (0.0, 0.3, 0.5, 1.0, 1.5, 2.0, 2.5)
#: Tolerance points that are tests of the stress battery already (standard set, internal noise).
TOLERANCE_FROM_STRESS = {
    0.0: "standard",
    0.3: "internal_mild",
    0.5: "internal_moderate",
    1.0: "internal_high",
    1.5: "internal_severe",
    2.5: "internal_extreme",
}
#: Learning rate of consolidation after regrowth (the studies' value).
CONSOLIDATION_LR = CONSOLIDATION.lr
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
        return (self.sparsity, self.regrow_method, self.regrow_fraction, self.consolidation_epochs, self.treatment)

    def describe(self) -> str:
        t = arms.arm(self.treatment)
        drug = (
            "no drug"
            if self.treatment == "untreated"
            else (f"{plain(self.treatment)}: gain {t.gain:g}, damping {t.damping:g}, {t.activation}")
        )
        return (
            f"pruned to {100 * self.sparsity:.0f}%, {100 * self.regrow_fraction:.0f}% "
            f"{self.regrow_method} regrowth, {self.consolidation_epochs} "
            f"epoch{'' if self.consolidation_epochs == 1 else 's'}; {drug}; "
            f"protection {self.protection:g}; custom test: input SD {self.input_sigma:g}, "
            f"internal SD {self.sigma_int:g}"
        )


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
        object.__setattr__(
            self, "tolerance_sigmas", check_fractions("tolerance_sigmas", self.tolerance_sigmas, 0.0, 5.0)
        )


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
