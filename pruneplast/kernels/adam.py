"""The optimiser side of masked training: fused Adam on stacked tensors, and the trainable tensors.

:class:`Trainables` cuts the tensors a training phase updates out of an ensemble's weights (one
set per layer plan: dense groups, CSR entries, folded weights) and writes them back; :class:`Adam`
updates them with ``torch.optim.Adam``'s arithmetic, one learning rate per replica.
"""

from __future__ import annotations

from typing import Sequence

import torch

from .layers import Layer, LayerParts

#: Floats in the widest vector torch's CPU kernels use (AVX-512; a multiple of AVX2's 8): its fused
#: Adam updates a tensor in blocks of this many and its last ``numel % width`` entries in a scalar
#: loop that rounds otherwise.
VECTOR_FLOATS = 16


def _leading(p: torch.Tensor, owner: torch.Tensor | None) -> bool:
    """Whether every slice of ``p`` along its leading axis belongs to one replica (``owner``: the
    replica of every entry), as in a stacked ensemble tensor."""
    if owner is None:
        return True
    if owner.shape != p.shape:
        return False
    rows = owner.reshape(p.shape[0], -1)
    return bool((rows == rows[:, :1]).all())


def _pieces(p: torch.Tensor, owner: torch.Tensor | None) -> list[int] | None:
    """The lengths (along the leading axis) of ``p``'s pieces of one replica each, where its
    replicas must be updated one at a time (see :class:`Adam`); None where the whole tensor may be.

    A stacked tensor (M, ...) whose entries per replica are not a multiple of
    :data:`VECTOR_FLOATS`: one slice a replica. A flat tensor of several replicas' entries (the
    kept weights of CSR layers, replica after replica): one run of each replica's entries, where a
    run is not a multiple of :data:`VECTOR_FLOATS` long (never one piece an entry)."""
    if p.dim() == 0 or p.shape[0] < 2:
        return None
    if p.dim() >= 2:
        if p[0].numel() % VECTOR_FLOATS != 0 and _leading(p, owner):
            return [1] * p.shape[0]
        return None
    if owner is None or owner.shape != p.shape:
        return None
    _, runs = torch.unique_consecutive(owner, return_counts=True)
    if len(runs) < 2 or len(runs) > len(torch.unique(owner)) or not bool((runs % VECTOR_FLOATS).any()):
        return None  # one replica, or replicas' entries interleaved, or every run in whole blocks
    return runs.tolist()


class Trainables:
    """The tensors one training phase updates, for fixed masks (``plans``: one per layer).

    ``layers``: (plan, trainable parts, bias) per layer for the forward pass; ``params``, ``owners``
    (replica of every entry) and ``grad_masks`` (None or a mask applied to the gradient) run
    parallel, weights first and biases last.
    """

    def __init__(self, plans: Sequence[Layer], weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor]):
        self.plans = list(plans)
        self.parts = [
            tuple(None if t is None else t.detach().clone().requires_grad_(True) for t in p.split(w))
            for p, w in zip(self.plans, weights)
        ]
        self.biases = [b.detach().clone().requires_grad_(True) for b in biases]
        self.layers: list[LayerParts] = [(p, wt, b) for p, wt, b in zip(self.plans, self.parts, self.biases)]
        self.params: list[torch.Tensor] = []
        self.owners: list[torch.Tensor] = []
        self.grad_masks: list[torch.Tensor | None] = []
        for p, pt in zip(self.plans, self.parts):
            for t, own, gm in p.trainables(pt):
                self.params.append(t)
                self.owners.append(own)
                self.grad_masks.append(gm)
        self.params += self.biases
        self.owners += [torch.arange(b.shape[0], device=b.device).view(-1, 1).expand(b.shape) for b in self.biases]
        self.grad_masks += [None] * len(self.biases)

    def write_back(self, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor]) -> None:
        """Copy the trained tensors into the ensemble's weights and biases, in place."""
        for p, w, pt in zip(self.plans, weights, self.parts):
            p.merge(w, *pt)
        for b, t in zip(biases, self.biases):
            b.copy_(t.detach())


class Adam:
    """Adam with ``torch.optim.Adam``'s update and defaults, fused, on stacked ensemble tensors.

    ``params`` are tensors whose entries each belong to one replica; ``owners[j]`` is a long
    tensor shaped like ``params[j]`` naming the replica of every entry (``None``: the leading
    axis is the replica axis). ``lr`` is a float or one value per replica (M,). Adam is
    element-wise, so one Adam over the stacked tensors is exactly M separate Adams; replicas that
    share a learning rate are updated by one fused kernel call.

    The fused kernel updates a tensor's entries in vector blocks and its last ``numel % width`` (16
    floats with AVX-512) in a scalar loop whose second moment rounds differently, so an entry's bits depend
    on its position: the same entries laid out otherwise (only the kept ones of a masked layer,
    say) update alike only while every entry stays in the vector blocks. Updating only the kept
    entries (gathered and scattered back by index) was also slower at one thread than masking the
    gradient and updating whole tensors, for the 47.5%-sparse phase's masked tensors (26-89% kept).

    So that a replica's update does not depend on the replicas beside it, a tensor with a leading
    replica axis whose entries per replica are not a multiple of :data:`VECTOR_FLOATS` (the output
    layer's four biases) is updated one replica at a time, and a flat tensor of several replicas'
    entries (CSR kept weights) one replica's run at a time (:func:`_pieces`): each replica's entries
    then fall in the vector blocks or the tail alike in any ensemble. (In one stacked tensor the tail is its last
    entries, the last replicas' biases: which replica landed there, and so its bits, followed the
    ensemble it trained in; a seed's baseline trained with nine others differed from the same seed
    trained with four others.) Replicas that share a learning rate among several
    (``owners`` selections) are updated together, and their bits follow their group.
    """

    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-8, owners=None):
        self.params = list(params)
        self.b1, self.b2 = betas
        self.eps = eps
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        # the step counter lives with the tensors: the fused kernel reads it on their device (on a GPU
        # a CPU counter is refused, or costs a host-to-device copy every step)
        dev = self.params[0].device if self.params else torch.device("cpu")
        self.step_count = torch.zeros((), dtype=torch.float32, device=dev)
        lrs = torch.as_tensor(lr, dtype=torch.float64).flatten()
        values = sorted(set(lrs.tolist()))
        owners = owners or [None] * len(self.params)
        # tensors updated one replica at a time (see the class's docstring): their pieces' lengths
        self.pieces = [_pieces(p, o) for p, o in zip(self.params, owners)]
        if len(values) == 1:
            self.groups = [(values[0], None)]  # one learning rate: whole tensors
        else:  # entries of each learning rate, per parameter (boolean selections)
            self.groups = []
            for v in values:
                sel = []
                for p, o in zip(self.params, owners):
                    r = torch.arange(p.shape[0]).view((-1,) + (1,) * (p.dim() - 1)).expand(p.shape) if o is None else o
                    sel.append((lrs[r.reshape(-1).cpu()] == v).to(p.device))
                self.groups.append((v, sel))

    @torch.no_grad()
    def step(self, grads) -> None:
        self.step_count += 1
        grads = [g.contiguous() for g in grads]  # the fused kernel assumes contiguous gradients
        for lr, sel in self.groups:
            if sel is None:
                split = self._split
                self._fused(split(self.params), split(grads), split(self.exp_avg), split(self.exp_avg_sq), lr)
                continue
            parts = [
                [t.view(-1)[s] for t, s in zip(ts, sel)] for ts in (self.params, grads, self.exp_avg, self.exp_avg_sq)
            ]
            p, g, ea, eas = parts
            self._fused(p, g, ea, eas, lr)
            for ts, new in zip((self.params, self.exp_avg, self.exp_avg_sq), (parts[0], parts[2], parts[3])):
                for t, s, v in zip(ts, sel, new):
                    t.view(-1)[s] = v

    def _split(self, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
        """``tensors`` (parallel to the parameters), those updated per replica as one view a replica."""
        if not any(n is not None for n in self.pieces):
            return tensors
        out: list[torch.Tensor] = []
        for t, sizes in zip(tensors, self.pieces):
            out.extend((t,) if sizes is None else t.split(sizes, 0))
        return out

    def _fused(self, params, grads, exp_avg, exp_avg_sq, lr) -> None:
        torch._fused_adam_(
            params,
            grads,
            exp_avg,
            exp_avg_sq,
            [],
            [self.step_count] * len(params),
            lr=lr,
            beta1=self.b1,
            beta2=self.b2,
            weight_decay=0.0,
            eps=self.eps,
            amsgrad=False,
            maximize=False,
        )
