"""Stress tests and metrics (Methods sections 6 and 9), returned as tidy records.

Every function returns a :class:`pandas.DataFrame` with one row per replica x condition x
metric: the replica's ``meta`` columns (``seed`` and any condition labels), then ``condition``,
``metric`` and ``value``. Accuracies are in percent; sparsities are fractions of weights
(``weight_sparsity``) or of all parameters (``parameter_sparsity``) in percent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import torch

from .config import check_choice, check_int, check_real
from .data import EnsembleData
from .inputs import check_data, check_like, check_network
from .modulation import as_param
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
MAIN_CONDITIONS = (
    "clean",
    "standard",
    "input_1.0",
    "input_2.0",
    "internal_mild",
    "internal_moderate",
    "internal_high",
    "internal_severe",
    "combined",
)
#: What readers see for each condition in tables and figures (:func:`pruneplast.tables.plain`).
LABELS = {
    "clean": "clean",
    "standard": "standard",
    "input_1.0": "input noise SD 1.0",
    "input_2.0": "input noise SD 2.0",
    "internal_mild": "internal noise SD 0.3",
    "internal_moderate": "internal noise SD 0.5",
    "internal_high": "internal noise SD 1.0",
    "internal_severe": "internal noise SD 1.5",
    "internal_extreme": "internal noise SD 2.5",
    "combined": "combined (input 1.0 + internal 0.5)",
    "biased": "biased (manic-risk test)",
}


#: Internal-noise SDs of the graded tolerance curve.
TOLERANCE_SIGMAS = (0.0, 0.5, 1.0, 1.5, 2.5)


def tolerance_condition(sigma: float) -> Condition:
    return Condition(f"sigma_{float(sigma):g}", sigma_int=float(sigma))


def resolve(condition) -> Condition:
    if isinstance(condition, Condition):
        return condition
    return CONDITIONS[check_choice("condition", condition, tuple(CONDITIONS))]


#: Evaluation multiplies at most this many replicas at a time. With test batches of 1,000 an
#: activation tensor takes 2 MB per replica of a 512-unit layer; above about 16 replicas every
#: elementwise operation gets a fresh memory mapping from the allocator (its page faults cost
#: more than the arithmetic), so larger ensembles are evaluated in groups.
EVAL_GROUP = 10


def eval_groups(net: EnsembleMLP) -> list[list[int]] | None:
    """Replica groups in which :func:`accuracy` evaluates ``net``, or None for one pass over all.

    Replicas whose layers are multiplied the same way (dense or sparse products, see
    :class:`~pruneplast.kernels.layers.LayerPlan`) are grouped, in order of first appearance, and each
    group is cut into runs of at most :data:`EVAL_GROUP`. Every replica draws its noise from its
    own generator, so the grouping does not change any result (tested).
    """
    plans = net.plans()
    sparse = [set(p.sparse_ids.tolist()) for p in plans]
    kinds: dict[tuple, list[int]] = {}
    for r in range(net.n_replicas):
        kinds.setdefault(tuple(r in s for s in sparse), []).append(r)
    groups = [idx[i : i + EVAL_GROUP] for idx in kinds.values() for i in range(0, len(idx), EVAL_GROUP)]
    return None if len(groups) == 1 else groups


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
    protections=None,
) -> torch.Tensor:
    """(M,) accuracy in % of every replica under one condition; noise drawn fresh per batch.

    For the biased test the constant added with the N(0, 1) noise is
    ``bias * (1 - 0.3 * protection)`` per replica.

    protections: None, or P mood-stabiliser protections (each a scalar or one value per replica)
        to test in place of the network's own; returns (P, M). The noise of a batch is drawn once
        and shared by all P settings, so each row equals a separate call with that protection.
    """
    _check_data(net, data, finite=False)
    check_int("batch_size", batch_size, 1)
    cond = resolve(condition)
    grid = None if protections is None else protection_grid(protections, net.n_replicas).to(net.device)
    groups = eval_groups(net)
    if groups is not None:
        shape = (net.n_replicas,) if grid is None else (len(grid), net.n_replicas)
        out = torch.empty(shape, device=net.device)
        for idx in groups:
            out[..., idx] = accuracy(
                net.select(idx), data.select(idx), cond, tag, batch_size, bias, None if grid is None else grid[:, idx]
            )
        return out
    variants = [net] if grid is None else [net.with_protection(p) for p in grid]
    layers = net.layers()
    x_all, y_all = data.x[cond.split], data.y[cond.split]
    gens = net.generators(tag, cond.name)
    sig = cond.sigma_int if cond.sigma_int > 0 else None
    correct = torch.zeros(len(variants), net.n_replicas, device=net.device)
    n = x_all.shape[1]
    for start in range(0, n, batch_size):
        x = x_all[:, start : start + batch_size]
        if cond.input_sigma > 0:
            noise = torch.stack([torch.randn(x.shape[1:], generator=g, device=x.device) for g in gens])
            x = x + cond.input_sigma * noise
        hidden = net.hidden_noise(x.shape[1], gens) if sig is not None else None
        for k, v in enumerate(variants):
            b = bias * (1 - 0.3 * v.protection) if cond.biased else None
            logits = v.forward(x, sigma_int=sig, bias=b, layers=layers, noise=hidden)
            correct[k] += (logits.argmax(-1) == y_all[:, start : start + batch_size]).sum(1)
    out = 100.0 * correct / n
    return out[0] if grid is None else out


def protection_grid(protections, m: int) -> torch.Tensor:
    """(P, M) float tensor from P protections, each a scalar or M values in [0, 1]."""
    rows = []
    for p in protections:
        v = as_param("protection", p, 0.0, 1.0, "cpu").flatten()
        if v.numel() not in (1, m):
            raise ValueError(f"protections: each entry must be one value or one per replica ({m}); got {v.numel()}")
        rows.append(v.expand(m))
    if not rows:
        raise ValueError("protections must hold at least one value")
    return torch.stack(rows)


def evaluate(
    net: EnsembleMLP,
    data: EnsembleData,
    conditions=MAIN_CONDITIONS,
    tag="eval",
    batch_size: int = 1000,
    extra: dict | None = None,
) -> pd.DataFrame:
    """Accuracy (%) under each condition, one row per replica x condition."""
    _check_data(net, data)
    rows = []
    for c in conditions:
        cond = resolve(c)
        rows += _records(net, cond.name, "accuracy", accuracy(net, data, cond, tag, batch_size), extra)
    return pd.DataFrame(rows)


def tolerance(
    net: EnsembleMLP,
    data: EnsembleData,
    sigmas=TOLERANCE_SIGMAS,
    tag="eval",
    batch_size: int = 1000,
    extra: dict | None = None,
) -> pd.DataFrame:
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
    _check_data(net, data, finite=False)
    check_int("batch_size", batch_size, 1)
    groups = eval_groups(net)
    if groups is not None:
        out = torch.empty(net.n_replicas, device=net.device)
        for idx in groups:
            out[idx] = activation_magnitude(net.select(idx), data.select(idx), batch_size)
        return out
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
    check_network(net)
    rows = _records(net, "-", "weight_sparsity", 100 * net.weight_sparsity(), extra)
    rows += _records(net, "-", "parameter_sparsity", 100 * net.parameter_sparsity(), extra)
    kept = net.kept_per_layer()
    for i in range(kept.shape[1]):
        rows += _records(net, f"layer_{i + 1}", "kept_weights", kept[:, i], extra)
    rows += _records(net, "-", "gain", net.gain, extra)
    return pd.DataFrame(rows)


def regrowth_selectivity(
    before: EnsembleMLP, grown: list[torch.Tensor], data: EnsembleData, config, tag="regrow", extra: dict | None = None
) -> pd.DataFrame:
    """Share (%) of the attainable gradient score that the regrown connections capture.

    ``before`` is the state regrowth started from (same replicas and meta), ``grown`` the boolean
    sets :func:`~pruneplast.operators.regrow` returned. The accumulated gradient scores of
    ``before`` (:func:`~pruneplast.operators.gradient_scores`, same ``config`` and ``tag``) are
    summed over the regrown positions and divided by the sum over the k highest-scoring pruned
    positions, k the number regrown, per layer (each rounded once, from the exact sum, so the share
    does not depend on the thread count); both sums are taken over all layers. Gradient-guided
    regrowth captures 100% by definition; random regrowth about the regrown fraction of the
    pruned positions (many pruned positions score zero, so a share of positions would not tell the
    two apart). In a chapter it checks the operator where the weights depend on the machine.
    Replicas with nothing regrown, or no gradient at any pruned position, get no row.
    """
    from .operators import gradient_scores

    _check_data(before, data, "data", finite=False)
    check_like("grown", grown, before, torch.bool)
    scores = gradient_scores(before, data, config, tag)
    hit = torch.zeros(before.n_replicas, dtype=torch.float64)
    total = torch.zeros(before.n_replicas, dtype=torch.float64)
    for s, m, g in zip(scores, before.masks, grown):
        for r in range(before.n_replicas):
            k = int(g[r].sum())
            if k == 0:
                continue
            # summed exactly: a parallel sum's order, and so its last bits, follows the thread count
            hit[r] += math.fsum(s[r][g[r]].tolist())
            total[r] += math.fsum(torch.topk(s[r][~m[r]], k, sorted=False).values.tolist())
    share = 100 * hit / torch.where(total > 0, total, torch.ones_like(total))
    rows = [r for r, t in zip(_records(before, "-", "regrowth_selectivity", share, extra), total.tolist()) if t > 0]
    return pd.DataFrame(rows, columns=list(before.meta[0]) + list(extra or {}) + ["condition", "metric", "value"])


def manic_risk(
    net: EnsembleMLP,
    data: EnsembleData,
    tag="eval",
    batch_size: int = 1000,
    bias: float = 1.0,
    extra: dict | None = None,
) -> pd.DataFrame:
    """Manic-risk proxies: biased-stress accuracy (%), activation magnitude, gain."""
    _check_data(net, data)
    rows = _records(net, "biased", "accuracy", accuracy(net, data, "biased", tag, batch_size, bias), extra)
    rows += _records(net, "-", "activation_magnitude", activation_magnitude(net, data, batch_size), extra)
    rows += _records(net, "-", "gain", net.gain, extra)
    return pd.DataFrame(rows)


def _check_data(net: EnsembleMLP, data: EnsembleData, name: str = "data", finite: bool = True) -> None:
    """The network and its data fit together (:mod:`pruneplast.inputs`); its weights are finite."""
    check_network(net)
    check_data(net, data, name)
    if finite:
        net.check_finite("(found before evaluating)")
