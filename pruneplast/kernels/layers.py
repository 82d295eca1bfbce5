"""How one masked layer of an ensemble is multiplied: the layer protocol and the dense/CSR plan.

Every layer the model multiplies (:meth:`pruneplast.network.EnsembleMLP.forward`) follows
:class:`Layer`: ``split`` cuts the trainable tensors out of the (M, out, in) weights, ``forward_layer``
multiplies with them, ``merge`` writes them back, ``trainables`` names the replica of every entry
(for per-replica learning rates) and its gradient mask. :class:`LayerPlan` holds every unit;
:class:`pruneplast.kernels.compact.CompactLayer` only the units that can change the logits. Both
give the model's arithmetic up to the order of floating-point sums (tested in
``tests/test_network.py`` against plain ``torch.nn`` references).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Protocol

import torch

# CSR products are used only in the forms tested here; torch's "beta" notice would repeat in every run.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")

#: The trainable tensors of one layer, as :meth:`Layer.split` returns them.
Parts = tuple[torch.Tensor | None, ...]
#: (tensor, replica of every entry, gradient mask or None), one per trainable tensor of a layer.
Trainable = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]


class Layer(Protocol):
    """What the model and the optimiser need of a layer's multiplication plan.

    ``split(w) -> parts`` cuts the trainable tensors out of the weights (M, out, in);
    ``merge(w, *parts)`` writes them back in place; ``trainables(parts)`` gives (tensor, replica of
    every entry, gradient mask or None) per part (None: the gradient needs no mask, or the layer's
    products mask it themselves); ``forward_layer(h, parts, b, hc=None)`` returns
    (W h + b for the units the layer computes, the pre-activations of its constant units or None);
    ``forward_activated(h, parts, b, hc, scale, shift)`` the same with the hidden layer's
    ``relu(.) * scale - shift`` taken with the products in place of W h + b, or None where the
    plan does not (the caller then applies it to ``forward_layer``'s result).
    """

    shape: tuple  # (M, out, in) of the layer's weights
    rows: torch.Tensor | None  # (M, R) output units the layer computes, or None for all

    # Read-only members, so a plan's methods (each with its own number of parts) satisfy them.
    @property
    def split(self) -> Callable[[torch.Tensor], Parts]: ...

    @property
    def merge(self) -> Callable[..., None]: ...

    @property
    def trainables(self) -> Callable[[Parts], list[Trainable]]: ...

    @property
    def forward_layer(self) -> Callable[..., tuple[torch.Tensor, torch.Tensor | None]]: ...

    @property
    def forward_activated(self) -> Callable[..., tuple[torch.Tensor, torch.Tensor | None] | None]: ...


#: (plan, its trainable tensors, bias) of one layer, as the model's forward pass takes them.
LayerParts = tuple[Layer, Parts, torch.Tensor]


def kept_counts(mask: torch.Tensor) -> torch.Tensor:
    """(M,) int64: the kept entries of each replica's layer in ``mask`` (M, ...) bool, counted as
    bytes into 32-bit sums (three times faster than summing the bools; exact below 2**31 entries
    per replica)."""
    flat = mask.reshape(mask.shape[0], -1)
    if mask.dtype != torch.bool or flat.shape[1] >= 2**31:
        return flat.sum(1, dtype=torch.int64)
    return flat.view(torch.uint8).sum(1, dtype=torch.int32).long()


#: A replica's layer whose kept weights fill less than this fraction of its matrix is multiplied
#: as a sparse (CSR) matrix; denser ones as dense batched products. Measured on this engine's
#: masked training step (``benchmarks/``): CSR pays below ~20% density at batch 128.
SPARSE_BELOW = 0.15


class LayerPlan:
    """How one masked layer of the ensemble is multiplied while its mask stays fixed.

    Built from a mask (M, out, in). Each replica's layer goes to one of two groups:

    * dense (kept fraction >= :data:`SPARSE_BELOW`): its (out, in) matrix is multiplied by
      ``torch.baddbmm``; pruned entries are exactly zero and their gradients are masked out, so
      Adam (with fresh state) never moves them;
    * sparse (below): only its kept entries exist, as a flat vector in (replica, row, column)
      order; the sparse replicas are multiplied together as one block-diagonal CSR matrix, and
      forward, input gradient and weight gradient (``sampled_addmm``) touch kept entries only.

    :meth:`split` gives the trainable tensors of both groups, :meth:`linear` multiplies with
    them and :meth:`merge` writes them back. Gradients and optimiser state therefore exist only
    where they can matter, and no re-masking is needed after an optimiser step.
    """

    rows: torch.Tensor | None = None  # every output unit (compact layers hold a subset)

    def __init__(self, mask: torch.Tensor | None, shape: tuple[int, int, int] | None = None):
        self.shape: tuple[int, ...] = tuple(mask.shape) if mask is not None else tuple(shape or ())
        m, out, inn = self.shape
        per = out * inn
        dev = mask.device if mask is not None else None
        counts = kept_counts(mask) if mask is not None else torch.full((m,), per)  # (M,) kept
        is_sparse = counts < SPARSE_BELOW * per
        self.dense_ids = (~is_sparse).nonzero().squeeze(1).to(dev)  # replicas of the dense group
        self.sparse_ids = is_sparse.nonzero().squeeze(1).to(dev)  # replicas of the sparse group
        self.all_dense = len(self.sparse_ids) == 0
        self.all_sparse = len(self.dense_ids) == 0
        partial = mask is not None and bool((counts[self.dense_ids] < per).any())
        # (Md, out, in) float mask applied to the dense group's weight gradients, or None
        self.grad_mask = None
        if partial and mask is not None:
            self.grad_mask = (mask if self.all_dense else mask[self.dense_ids]).to(torch.float32)
        self.ms = len(self.sparse_ids)
        if self.ms and mask is not None:  # (a plan without a mask is all dense)
            sub = mask if self.all_sparse else mask[self.sparse_ids]
            self.idx = sub.reshape(-1).nonzero().squeeze(1)  # kept flat positions in sub, order (r, i, k)
            r, i, k = self.idx // per, (self.idx // inn) % out, self.idx % inn
            rows, cols = r * out + i, r * inn + k  # block-diagonal coordinates
            self.crow, self.col = _crow(rows, self.ms * out), cols
            self.perm_t = torch.argsort(cols * (self.ms * out) + rows)  # CSR order of the transpose
            self.crow_t, self.col_t = _crow(cols[self.perm_t], self.ms * inn), rows[self.perm_t]
            if self.idx.device.type == "cuda" and self.ms * per < 2**31:
                # cuSPARSE's sampled product (the weight gradient) takes 32-bit indices; the CPU
                # kernels take either, and the indices do not change the arithmetic
                self.crow, self.col, self.crow_t, self.col_t = (
                    t.to(torch.int32) for t in (self.crow, self.col, self.crow_t, self.col_t)
                )
            self.owner = self.sparse_ids[r]  # (nnz,) replica of each kept entry

    @classmethod
    def dense(cls, shape) -> LayerPlan:
        """A plan that treats every position as trainable (regrowth scores need all gradients)."""
        return cls(None, shape)

    def split(self, w: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(dense group's (Md, out, in) matrices, sparse group's (nnz,) kept entries); None if empty.

        With a single group the dense part is ``w`` itself (no copy).
        """
        wd = w if self.all_dense else (None if self.all_sparse else w[self.dense_ids])
        ws = None
        if self.ms:
            ws = (w if self.all_sparse else w[self.sparse_ids]).reshape(-1)[self.idx]
        return wd, ws

    def merge(self, w: torch.Tensor, wd: torch.Tensor | None, ws: torch.Tensor | None) -> None:
        """Write the groups' tensors back into w (M, out, in), in place."""
        with torch.no_grad():
            if wd is not None and wd is not w:
                if self.all_dense:
                    w.copy_(wd)
                else:
                    w[self.dense_ids] = wd
            if ws is not None:
                sub = torch.zeros((self.ms,) + self.shape[1:], dtype=w.dtype, device=w.device)
                sub.view(-1)[self.idx] = ws
                if self.all_sparse:
                    w.copy_(sub)
                else:
                    w[self.sparse_ids] = sub

    def trainables(self, parts) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        """(tensor, replica of every entry, gradient mask or None) for each trainable part of :meth:`split`."""
        wd, ws = parts[:2]
        out = []
        if wd is not None:
            out.append((wd, self.dense_ids.view(-1, 1, 1).expand(wd.shape), self.grad_mask))
        if ws is not None:
            out.append((ws, self.owner, None))
        return out

    def forward_layer(self, h, parts, b, hc=None):
        """(W h + b, None): the layer as :meth:`EnsembleMLP.forward` calls it (no constant units)."""
        return self.linear(h, *parts, b), None

    def forward_activated(self, h, parts, b, hc, scale, shift):
        """None: this plan's products do not take the activation (the caller applies it)."""
        return None

    def linear(
        self, h: torch.Tensor, wd: torch.Tensor | None, ws: torch.Tensor | None, b: torch.Tensor
    ) -> torch.Tensor:
        """z = W h + b for h (M, B, in); returns (M, B, out).

        Products are taken as W @ h^T, so activations are stored feature-major ((M, out, B) in
        memory) and dense weight gradients come out contiguous.
        """
        if self.all_dense:
            assert wd is not None
            return torch.baddbmm(b.unsqueeze(2), wd, h.transpose(1, 2)).transpose(1, 2)
        if self.all_sparse:
            return SparseLinear.apply(ws, h, self) + b.unsqueeze(1)
        assert wd is not None
        zd = torch.bmm(wd, h[self.dense_ids].transpose(1, 2)).transpose(1, 2)
        zs = SparseLinear.apply(ws, h[self.sparse_ids], self)
        z = torch.zeros(self.shape[0], h.shape[1], self.shape[1], dtype=h.dtype, device=h.device)
        z = z.index_put((self.dense_ids,), zd).index_put((self.sparse_ids,), zs)
        return z + b.unsqueeze(1)


def _crow(rows: torch.Tensor, n_rows: int) -> torch.Tensor:
    """CSR row pointer (n_rows + 1,) for row indices sorted ascending."""
    return torch.cat([rows.new_zeros(1), torch.cumsum(torch.bincount(rows, minlength=n_rows), 0)])


class SparseLinear(torch.autograd.Function):
    """W h for the sparse group of a :class:`LayerPlan`: kept (nnz,), h (Ms, B, in) -> (Ms, B, out).

    Forward and input gradient are CSR x dense products on the block-diagonal matrix of all
    sparse replicas; the weight gradient is computed only at kept positions
    (``torch.sparse.sampled_addmm``).
    """

    @staticmethod
    def forward(ctx, kept, h, plan):
        ms, bsz = plan.ms, h.shape[1]
        _, out, inn = plan.shape
        w = torch.sparse_csr_tensor(plan.crow, plan.col, kept, (ms * out, ms * inn), check_invariants=False)
        ht = h.transpose(1, 2).reshape(ms * inn, bsz)  # (Ms*in, B)
        ctx.save_for_backward(kept, ht)
        ctx.plan = plan
        return (w @ ht).view(ms, out, bsz).transpose(1, 2)

    @staticmethod
    def backward(ctx, gz):
        kept, ht = ctx.saved_tensors
        plan = ctx.plan
        ms, bsz = plan.ms, gz.shape[1]
        _, out, inn = plan.shape
        gzt = gz.transpose(1, 2).reshape(ms * out, bsz)  # (Ms*out, B)
        g_kept = g_h = None
        if ctx.needs_input_grad[0]:
            pattern = torch.sparse_csr_tensor(plan.crow, plan.col, kept, (ms * out, ms * inn), check_invariants=False)
            g_kept = torch.sparse.sampled_addmm(pattern, gzt, ht.t(), beta=0.0).values()
        if ctx.needs_input_grad[1]:
            wt = torch.sparse_csr_tensor(
                plan.crow_t, plan.col_t, kept[plan.perm_t], (ms * inn, ms * out), check_invariants=False
            )
            g_h = (wt @ gzt).view(ms, inn, bsz).transpose(1, 2)
        return g_kept, g_h, None
