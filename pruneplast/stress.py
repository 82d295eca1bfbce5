"""Stress tests and metrics (Methods sections 6 and 9), returned as tidy records.

Every function returns a :class:`pandas.DataFrame` with one row per replica x condition x
metric: the replica's ``meta`` columns (``seed`` and any condition labels), then ``condition``,
``metric`` and ``value``. Accuracies are in percent; sparsities are fractions of weights
(``weight_sparsity``) or of all parameters (``parameter_sparsity``) in percent.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from .config import check_choice, check_real
from .data import EnsembleData
from .network import EnsembleMLP


@dataclass(frozen=True)
class Condition:
    """One stress condition: which test set, extra input noise, internal noise, bias."""

    name: str
    split: str = "standard"  # 'standard' or 'clean'
    input_sigma: float = 0.0  # SD of Gaussian noise added to the inputs
    sigma_int: float = 0.0  # SD of internal noise after each hidden activation
    biased: bool = False  # biased-stress test: N(0,1) + b after each hidden activation

    def __post_init__(self) -> None:
        check_choice("split", self.split, ("standard", "clean", "train"))
        check_real("input_sigma", self.input_sigma, 0.0, 100.0)
        check_real("sigma_int", self.sigma_int, 0.0, 100.0)


CONDITIONS: dict[str, Condition] = {
    c.name: c
    for c in [
        Condition("clean", split="clean"),
        Condition("standard"),
        Condition("input_1.0", input_sigma=1.0),
        Condition("input_2.0", input_sigma=2.0),
        Condition("internal_mild", sigma_int=0.3),
        Condition("internal_moderate", sigma_int=0.5),
        Condition("internal_high", sigma_int=1.0),
        Condition("internal_severe", sigma_int=1.5),
        Condition("internal_extreme", sigma_int=2.5),
        Condition("combined", input_sigma=1.0, sigma_int=0.5),
        Condition("biased", sigma_int=1.0, biased=True),
    ]
}
#: The stress battery of study A's main table (section 6), in table order.
MAIN_CONDITIONS = ("clean", "standard", "input_1.0", "input_2.0", "internal_mild",
                   "internal_moderate", "internal_high", "internal_severe", "combined")
#: Internal-noise SDs of the graded tolerance curve.
TOLERANCE_SIGMAS = (0.0, 0.5, 1.0, 1.5, 2.5)


def tolerance_condition(sigma: float) -> Condition:
    return Condition(f"sigma_{float(sigma):g}", sigma_int=float(sigma))


def resolve(condition) -> Condition:
    if isinstance(condition, Condition):
        return condition
    return CONDITIONS[check_choice("condition", condition, tuple(CONDITIONS))]


def _records(net: EnsembleMLP, condition: str, metric: str, values: torch.Tensor, extra=None) -> list[dict]:
    rows = []
    for d, v in zip(net.meta, values.tolist()):
        row = dict(d)
        row.update(extra or {})
        row.update(condition=condition, metric=metric, value=float(v))
        rows.append(row)
    return rows


@torch.no_grad()
def accuracy(
    net: EnsembleMLP,
    data: EnsembleData,
    condition="standard",
    tag="eval",
    batch_size: int = 1000,
    bias: float = 1.0,
) -> torch.Tensor:
    """(M,) accuracy in % of every replica under one condition; noise drawn fresh per batch.

    For the biased test the constant added with the N(0, 1) noise is
    ``bias * (1 - 0.3 * protection)`` per replica.
    """
    cond = resolve(condition)
    x_all, y_all = data.x[cond.split], data.y[cond.split]
    gens = net.generators(tag, cond.name)
    b = bias * (1 - 0.3 * net.protection) if cond.biased else None
    correct = torch.zeros(net.n_replicas, device=net.device)
    n = x_all.shape[1]
    for start in range(0, n, batch_size):
        x = x_all[:, start : start + batch_size]
        if cond.input_sigma > 0:
            noise = torch.stack([torch.randn(x.shape[1:], generator=g, device=x.device) for g in gens])
            x = x + cond.input_sigma * noise
        logits = net.forward(x, sigma_int=cond.sigma_int if cond.sigma_int > 0 else None, generators=gens, bias=b)
        correct += (logits.argmax(-1) == y_all[:, start : start + batch_size]).sum(1)
    return 100.0 * correct / n


def evaluate(net: EnsembleMLP, data: EnsembleData, conditions=MAIN_CONDITIONS, tag="eval",
             batch_size: int = 1000, extra: dict | None = None) -> pd.DataFrame:
    """Accuracy (%) under each condition, one row per replica x condition."""
    _check_data(net, data)
    rows = []
    for c in conditions:
        cond = resolve(c)
        rows += _records(net, cond.name, "accuracy", accuracy(net, data, cond, tag, batch_size), extra)
    return pd.DataFrame(rows)


def tolerance(net: EnsembleMLP, data: EnsembleData, sigmas=TOLERANCE_SIGMAS, tag="eval",
              batch_size: int = 1000, extra: dict | None = None) -> pd.DataFrame:
    """Graded noise tolerance: standard-set accuracy (%) at each internal-noise SD."""
    _check_data(net, data)
    rows = []
    for s in sigmas:
        c = tolerance_condition(check_real("sigma", s, 0.0, 100.0))
        rows += _records(net, c.name, "accuracy", accuracy(net, data, c, tag, batch_size), extra)
    return pd.DataFrame(rows)


@torch.no_grad()
def activation_magnitude(net: EnsembleMLP, data: EnsembleData, batch_size: int = 1000) -> torch.Tensor:
    """(M,) mean |h| over the three hidden layers (after damping x gain), standard set, no noise.

    Each layer's mean |h| is averaged over the set's batches, then the three layers are averaged.
    """
    x_all = data.x["standard"]
    n = x_all.shape[1]
    total = torch.zeros(net.n_replicas, device=net.device)
    n_batches = 0
    for start in range(0, n, batch_size):
        rec: list[torch.Tensor] = []
        net.forward(x_all[:, start : start + batch_size], record=rec)
        total += torch.stack(rec).mean(0)
        n_batches += 1
    return total / n_batches


def structure(net: EnsembleMLP, extra: dict | None = None) -> pd.DataFrame:
    """Sparsity (% of weights; % of all parameters), kept weights per layer, and gain."""
    rows = _records(net, "-", "weight_sparsity", 100 * net.weight_sparsity(), extra)
    rows += _records(net, "-", "parameter_sparsity", 100 * net.parameter_sparsity(), extra)
    kept = net.kept_per_layer()
    for i in range(kept.shape[1]):
        rows += _records(net, f"layer_{i + 1}", "kept_weights", kept[:, i], extra)
    rows += _records(net, "-", "gain", net.gain, extra)
    return pd.DataFrame(rows)


def manic_risk(net: EnsembleMLP, data: EnsembleData, tag="eval", batch_size: int = 1000,
               bias: float = 1.0, extra: dict | None = None) -> pd.DataFrame:
    """Manic-risk proxies: biased-stress accuracy (%), activation magnitude, gain."""
    _check_data(net, data)
    rows = _records(net, "biased", "accuracy", accuracy(net, data, "biased", tag, batch_size, bias), extra)
    rows += _records(net, "-", "activation_magnitude", activation_magnitude(net, data, batch_size), extra)
    rows += _records(net, "-", "gain", net.gain, extra)
    return pd.DataFrame(rows)


def _check_data(net: EnsembleMLP, data: EnsembleData) -> None:
    if list(data.seeds) != net.seeds:
        raise ValueError(
            f"data holds replicas {list(data.seeds)} but the network holds {net.seeds}; "
            "build the data for the network's seeds (EnsembleData.for_replicas(net.seeds))"
        )
