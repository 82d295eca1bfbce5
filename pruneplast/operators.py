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

import functools
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
from .kernels import fused
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

    sigma_int: internal-noise SD during training, or a function epoch -> SD (SSRI-like taper).
    gain: a function epoch -> gain applied to every replica during that epoch (SSRI-like).
    lr: overrides ``config.lr``; a float or one learning rate per replica.
    on_epoch_end(epoch, net): called after each epoch (1-based), e.g. to evaluate checkpoints.
    compact: multiply only the live units (:func:`~pruneplast.kernels.compact.compact_plans`; with internal
        noise, the units that reach a logit), which gives the same training up to the order of
        floating-point sums (the default); False multiplies every kept weight.
    """
    check_network(net)
    check_data(net, data)
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
    gens_shuffle = net.generators(tag, "shuffle")
    gens_noise = net.generators(tag, "noise")
    if fused.applies(net.weights, net.masks, compact):  # opt-in compiled step (pruneplast.kernels.fused)
        step = fused.FusedStep(net, rate, noise=not noise_free, batch_size=bsz)
        write_back = functools.partial(step.write_back, net.weights, net.biases)
    else:
        step = None
        tr = Trainables(net.plans(compact=compact, noise=not noise_free), net.weights, net.biases)
        layers, params, grad_masks = tr.layers, tr.params, tr.grad_masks
        opt = Adam(params, rate, owners=tr.owners)
        write_back = functools.partial(tr.write_back, net.weights, net.biases)

    bar = progress_bar(total=config.epochs * n_batches, desc=desc or tag, enabled=progress, unit="batch")
    try:
        for epoch in range(config.epochs):
            sig = sigma_int(epoch) if callable(sigma_int) else sigma_int
            check_real("sigma_int", sig, 0.0, 100.0)
            if gain is not None:
                net.set_modulation(gain=float(gain(epoch)))
            order = shuffle_order(gens_shuffle, n, net.device)  # (M, N)
            for k in range(n_batches):
                x, y = minibatch(data, order[:, k * bsz : (k + 1) * bsz])
                if step is not None:
                    step(x, y, sig, net.hidden_noise(x.shape[1], gens_noise) if sig > 0 else None)
                    bar.update(1)
                    continue
                logits = net.forward(x, sigma_int=sig if sig > 0 else None, generators=gens_noise, layers=layers)
                grads = torch.autograd.grad(ensemble_loss(logits, y), params)
                for g, gm in zip(grads, grad_masks):
                    if gm is not None:
                        g.mul_(gm)
                opt.step(grads)
                bar.update(1)
            write_back()
            net.check_finite(f"after epoch {epoch + 1} of {desc or tag}")
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1, net)
    finally:
        bar.close()
    return net


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
