"""Operators on an :class:`~pruneplast.network.EnsembleMLP`: prune, regrow, train, relapse.

* Pruning (Methods section 4): magnitude, one shot, per weight matrix (or one global threshold).
  The threshold is the ``sparsity``-quantile (linear interpolation) of |W| over the whole matrix,
  existing zeros included; weights with |W| >= threshold are kept. Masks only shrink.
* Regrowth (section 5) is split into *scoring* (which pruned connections promise most) and
  *growing* (how many, how initialised): :func:`gradient_scores` accumulates |dL/dW| over the
  first 30 shuffled training mini-batches; :func:`regrow` reinstates per layer
  k = max(1, floor(f * n_pruned)) pruned positions with the highest score (random scores for the
  control) and draws their weights from N(0, 0.03^2). Kept positions are never chosen.
* Masked training (section 3): cross-entropy, a fresh Adam (default betas and eps) per phase,
  mini-batches of 128 reshuffled every epoch, the mask re-applied after every step.
  Adam is element-wise, so one Adam over the stacked (M, ...) tensors is exactly M Adams.
* The relapse challenge (section 7): prune every layer to min(s + 0.4 (1 - s), 0.99).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from .config import (
    LEARNING_RATE,
    PruneConfig,
    RegrowConfig,
    RelapseConfig,
    TrainConfig,
    check_int,
    check_real,
)
from .data import EnsembleData
from .inputs import check_data, check_like, check_network
from .kernels import denormals, fused, heap
from .kernels.adam import Adam, Trainables
from .network import EnsembleMLP
from .progress import progress_bar


# --------------------------------------------------------------------------- pruning
def quantile_threshold(absw: torch.Tensor, q: float) -> torch.Tensor:
    """Linear-interpolation q-quantile of each row of ``absw`` (M, N) -> (M,), as numpy/torch."""
    n = absw.shape[1]
    pos = q * (n - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    k = max(1, n - lo)  # the largest n-lo values contain both order statistics lo and hi
    top = torch.topk(absw, k, dim=1, largest=True, sorted=True).values  # descending
    v_lo = top[:, n - 1 - lo]
    v_hi = top[:, n - 1 - hi]
    return v_lo + (pos - lo) * (v_hi - v_lo)


def prune(net: EnsembleMLP, config: PruneConfig | float = PruneConfig()) -> EnsembleMLP:
    """Magnitude-prune every weight matrix of every replica in place; returns ``net``."""
    check_network(net)
    cfg = config if isinstance(config, PruneConfig) else PruneConfig(sparsity=config)
    prune_to(net, torch.full((net.n_replicas,), cfg.sparsity, dtype=torch.float64), cfg.scope)
    return net


def prune_to(net: EnsembleMLP, sparsity: torch.Tensor, scope: str = "layer") -> None:
    """Prune replica m to sparsity[m] (per layer, or globally over all weights)."""
    with torch.no_grad():
        if scope == "global":
            absw = torch.cat([w.abs().flatten(1) for w in net.weights], dim=1)
            thr = torch.stack([quantile_threshold(absw[i : i + 1], float(s))[0] for i, s in enumerate(sparsity)])
            thrs = [thr] * len(net.weights)
        else:
            thrs = []
            for w in net.weights:
                absw = w.abs().flatten(1)
                thrs.append(
                    torch.stack([quantile_threshold(absw[i : i + 1], float(s))[0] for i, s in enumerate(sparsity)])
                )
        for w, m, t in zip(net.weights, net.masks, thrs):
            m &= w.abs() >= t.view(-1, 1, 1)
        net.apply_masks()


def relapse_challenge(net: EnsembleMLP, config: RelapseConfig = RelapseConfig()) -> torch.Tensor:
    """Second pruning wave, in place. Returns the (M,) target sparsities that were applied."""
    check_network(net)
    s = net.weight_sparsity()
    target = torch.clamp(s + config.fraction * (1 - s), max=config.max_sparsity)
    prune_to(net, target, "layer")
    return target


# --------------------------------------------------------------------------- regrowth
def shuffle_order(gens: Sequence[torch.Generator], n: int, device) -> torch.Tensor:
    """(M, n) one random permutation per replica."""
    return torch.stack([torch.randperm(n, generator=g, device=device) for g in gens])


def minibatch(data: EnsembleData, idx: torch.Tensor):
    """Gather per-replica mini-batches: idx (M, B) -> x (M, B, 2), y (M, B)."""
    x = torch.gather(data.x["train"], 1, idx.unsqueeze(-1).expand(-1, -1, data.x["train"].shape[-1]))
    y = torch.gather(data.y["train"], 1, idx)
    return x, y


def ensemble_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Sum over replicas of each replica's mean cross-entropy (so each gets its own gradient)."""
    m, b, c = logits.shape
    return F.cross_entropy(logits.reshape(m * b, c), y.reshape(m * b), reduction="sum") / b


def gradient_scores(
    net: EnsembleMLP, data: EnsembleData, config: RegrowConfig = RegrowConfig(), tag="regrow", batch_size: int = 128
) -> list[torch.Tensor]:
    """Accumulated |dL/dW| at pruned positions over the first ``score_batches`` shuffled batches.

    Internal noise off, gain forced to 1.0; returns one (M, out, in) tensor per layer, zero at
    kept positions.
    """
    check_network(net)
    check_data(net, data)
    check_int("batch_size", batch_size, 1)
    gens = net.generators(tag, "scores")
    order = shuffle_order(gens, data.x["train"].shape[1], net.device)
    scores = [torch.zeros_like(w) for w in net.weights]
    params = [w.detach().clone().requires_grad_(True) for w in net.weights]
    work = EnsembleMLP(
        weights=params,
        biases=[b.detach() for b in net.biases],
        masks=net.masks,
        meta=net.meta,
        modulation=net.modulation,
    )
    n_batches = min(config.score_batches, math.ceil(order.shape[1] / batch_size))
    for k in range(n_batches):
        x, y = minibatch(data, order[:, k * batch_size : (k + 1) * batch_size])
        loss = ensemble_loss(work.forward(x, gain=1.0), y)
        grads = torch.autograd.grad(loss, params)
        for s, g, m in zip(scores, grads, net.masks):
            s.add_(g.abs() * (~m))
    return scores


def regrow(
    net: EnsembleMLP,
    data: EnsembleData | None,
    config: RegrowConfig = RegrowConfig(),
    tag="regrow",
    scores: list[torch.Tensor] | None = None,
) -> list[torch.Tensor]:
    """Reinstate pruned connections in place. Returns the boolean (M, out, in) grown sets.

    For ``method='gradient'`` scores come from :func:`gradient_scores` (or ``scores``); for
    ``'random'`` every pruned position gets an independent uniform score. New weights are drawn
    from N(0, init_std^2); grown positions are always a subset of the pruned ones. ``data`` and
    ``scores`` must be built for ``net`` (its replicas, layer shapes, dtype and device).
    """
    check_network(net)
    if data is not None:
        check_data(net, data)
    if scores is not None:
        check_like("scores", scores, net, net.weights[0].dtype)
    gens = net.generators(tag, "grow")
    if scores is None:
        if config.method == "gradient":
            if data is None:
                raise ValueError("gradient-guided regrowth needs the training data (data=...)")
            scores = gradient_scores(net, data, config, tag)
        else:
            scores = [
                torch.stack([torch.rand(w.shape[1:], generator=g, device=net.device) for g in gens])
                for w in net.weights
            ]
    grown = []
    with torch.no_grad():
        for w, m, s in zip(net.weights, net.masks, scores):
            pruned = ~m
            n_pruned = pruned.flatten(1).sum(1)  # (M,)
            flat = torch.where(pruned, s, torch.full_like(s, -math.inf)).flatten(1)
            g_mask = torch.zeros_like(m)
            for r in range(net.n_replicas):
                npr = int(n_pruned[r])
                if npr == 0 or config.fraction == 0:
                    continue
                k = max(1, int(math.floor(config.fraction * npr + 1e-9)))
                top = torch.topk(flat[r], k, sorted=False).indices
                g_mask[r].view(-1)[top] = True
                new = torch.randn(k, generator=gens[r], device=net.device) * config.init_std
                w[r].view(-1)[top] = new.to(w.dtype)
            assert not bool((g_mask & m).any()), "regrowth chose a kept position"
            m |= g_mask
            grown.append(g_mask)
    return grown


# --------------------------------------------------------------------------- training
Schedule = Callable[[int], float]


def train(
    net: EnsembleMLP,
    data: EnsembleData,
    config: TrainConfig = TrainConfig(),
    tag="train",
    sigma_int: float | Schedule = 0.0,
    gain: Schedule | None = None,
    lr=None,
    on_epoch_end: Callable[[int, EnsembleMLP], None] | None = None,
    progress: bool | None = None,
    desc: str | None = None,
    compact: bool = True,
) -> EnsembleMLP:
    """Masked Adam training of every replica in lockstep, in place; returns ``net``.

    Replicas sparse in every layer (below :data:`~pruneplast.kernels.layers.SPARSE_BELOW` kept)
    train with the compiled step of :mod:`pruneplast.kernels.fused` where it is on (the default) and
    built, the others on the standard path; replicas multiplied differently train as separate
    ensembles; on the CPU a replica's result does not depend on which others share ``net`` (the
    dense products of its compact blocks, padded to the largest count of live units among the
    replicas it trains with, run over its own units: :func:`~pruneplast.kernels.compact.ragged_linear`).

    sigma_int: internal-noise SD during training, or a function epoch -> SD (SSRI-like taper).
    gain: a function epoch -> gain applied to every replica during that epoch (SSRI-like).
    lr: overrides ``config.lr``; a float or one learning rate per replica.
    on_epoch_end(epoch, net): called after each epoch (1-based), e.g. to evaluate checkpoints; it
        reads ``net`` and must not change it (replicas trained as a separate set would not see it).
    compact: multiply only the live units (:func:`~pruneplast.kernels.compact.compact_plans`; with internal
        noise, the units that reach a logit), which gives the same training up to the order of
        floating-point sums (the default); False multiplies every kept weight.
    """
    check_network(net)
    check_data(net, data)
    denormals.ensure()
    heap.keep()
    n = data.x["train"].shape[1]
    bsz = config.batch_size
    n_batches = math.ceil(n / bsz)
    # The masks are fixed during a phase. Dense-group weights get their gradients masked (Adam with
    # fresh state then never moves a pruned weight off zero); sparse-group layers train their kept
    # entries only. Either way pruned weights stay exactly zero without re-masking. Only the live
    # units are multiplied (compact layers, see pruneplast.kernels.compact): the kept weights
    # left out have zero gradient.
    net.apply_masks()
    if not isinstance(compact, bool):
        raise ValueError(f"compact must be True or False; got {compact!r}")
    noise_free = not callable(sigma_int) and sigma_int == 0
    rate = config.lr if lr is None else _check_lr(lr, net.n_replicas)
    # The replicas are trained in sets, each as an ensemble of its own: those whose layers the engine
    # multiplies alike (as CSR or dense, layer by layer), and among them those sparse in every layer
    # with the compiled step (pruneplast.kernels.fused). Every replica's random streams are its own
    # (keyed by its meta), and no layer mixes CSR and dense replicas, so a replica's bits do not
    # depend on a replica of the other kind sharing its ensemble.
    sparse = fused.sparse_layers(net.masks)
    sets = _path_sets(sparse)
    on_fused = set(fused.replicas(net.weights, net.masks, compact, sparse))
    if len(sets) == 1:
        groups = [_Phase(net, data, rate, tag, bsz, noise_free, compact, fused_step=bool(on_fused))]
    else:
        groups = [
            _Phase(
                net.select(idx),
                data.select(idx),
                _lr_of(rate, idx),
                tag,
                bsz,
                noise_free,
                compact,
                idx[0] in on_fused,
                idx,
            )
            for idx in sets
        ]

    # one tick per mini-batch of each set
    bar = progress_bar(total=config.epochs * n_batches * len(groups), desc=desc or tag, enabled=progress, unit="batch")
    try:
        for epoch in range(config.epochs):
            sig = sigma_int(epoch) if callable(sigma_int) else sigma_int
            check_real("sigma_int", sig, 0.0, 100.0)
            g = None if gain is None else float(gain(epoch))
            if g is not None:
                net.set_modulation(gain=g)
            for group in groups:
                group.epoch(sig, g, n_batches, bar)
                group.write_back(net)
            net.check_finite(f"after epoch {epoch + 1} of {desc or tag}")
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1, net)
    finally:
        bar.close()
    return net


class _Phase:
    """The replicas of a training phase that take one path: the compiled step or the standard one.

    ``net`` is the whole ensemble (``index`` None) or a copy of the replicas at ``index``, trained
    on ``data`` (the same replicas) with their own random streams (keyed by each replica's meta).
    """

    def __init__(self, net, data, rate, tag, bsz, noise_free, compact, fused_step, index=None):
        self.net, self.data, self.bsz, self.index = net, data, bsz, index
        self.n = data.x["train"].shape[1]
        self.gens_shuffle = net.generators(tag, "shuffle")
        self.gens_noise = net.generators(tag, "noise")
        if fused_step:
            self.step: fused.FusedStep | None = fused.FusedStep(net, rate, noise=not noise_free, batch_size=bsz)
            self._write_back = self.step.write_back
        else:
            self.step = None
            tr = Trainables(net.plans(compact=compact, noise=not noise_free), net.weights, net.biases)
            self.layers, self.params, self.grad_masks = tr.layers, tr.params, tr.grad_masks
            self.opt = Adam(self.params, rate, owners=tr.owners)
            self._write_back = tr.write_back

    def epoch(self, sig: float, gain: float | None, n_batches: int, bar) -> None:
        """One epoch: a fresh shuffle per replica, then every mini-batch."""
        net, bsz = self.net, self.bsz
        if gain is not None and self.index is not None:
            net.set_modulation(gain=gain)
        order = shuffle_order(self.gens_shuffle, self.n, net.device)  # (M, N)
        xs, ys = minibatch(self.data, order)  # the epoch's samples in its order, gathered at once
        for k in range(n_batches):
            x, y = xs[:, k * bsz : (k + 1) * bsz].contiguous(), ys[:, k * bsz : (k + 1) * bsz].contiguous()
            if self.step is not None:
                self.step(x, y, sig, net.hidden_noise(x.shape[1], self.gens_noise) if sig > 0 else None)
            else:
                logits = net.forward(
                    x, sigma_int=sig if sig > 0 else None, generators=self.gens_noise, layers=self.layers
                )
                grads = torch.autograd.grad(ensemble_loss(logits, y), self.params)
                for g, gm in zip(grads, self.grad_masks):
                    if gm is not None:
                        g.mul_(gm)
                self.opt.step(grads)
            bar.update(1)

    def write_back(self, whole: EnsembleMLP) -> None:
        """The trained entries into this set's weights, and those into the whole ensemble's."""
        self._write_back(self.net.weights, self.net.biases)
        if self.index is not None:
            idx = torch.as_tensor(self.index, dtype=torch.long, device=whole.device)
            with torch.no_grad():
                for mine, theirs in zip(self.net.weights + self.net.biases, whole.weights + whole.biases):
                    theirs[idx] = mine


def _path_sets(sparse: torch.Tensor) -> list[list[int]]:
    """The replicas grouped by which of their layers keep below :data:`SPARSE_BELOW` of their weights
    (``sparse``: :func:`~pruneplast.kernels.fused.sparse_layers`, the layers
    :class:`~pruneplast.kernels.layers.LayerPlan` multiplies as CSR), in order of first appearance."""
    sets: dict[tuple, list[int]] = {}
    for r, kinds in enumerate(sparse.tolist()):
        sets.setdefault(tuple(kinds), []).append(r)
    return list(sets.values())


def _lr_of(rate, index: Sequence[int]):
    """The learning rates of the replicas at ``index``: one for all, or one per replica."""
    if isinstance(rate, torch.Tensor):
        return rate.flatten()[torch.as_tensor(list(index), dtype=torch.long, device=rate.device)]
    if isinstance(rate, (list, tuple)):
        return [rate[i] for i in index]
    return rate


def _check_lr(lr, n_replicas: int):
    """``lr`` of :func:`train`: one learning rate in (0, 1], or one per replica."""
    if isinstance(lr, torch.Tensor):
        vals = lr.flatten().tolist()
    elif isinstance(lr, (list, tuple)):
        vals = list(lr)
    else:
        LEARNING_RATE.check("lr", lr)
        return lr
    if len(vals) != n_replicas:
        raise ValueError(f"lr must be one learning rate or one per replica ({n_replicas}); got {len(vals)}")
    for i, v in enumerate(vals):
        LEARNING_RATE.check(f"lr[{i}]", v)
    return lr
