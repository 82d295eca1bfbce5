"""The masked MLP with an ensemble axis (Methods section 2).

One :class:`EnsembleMLP` holds M independent replicas of the 2 -> 512 -> 512 -> 256 -> 4
network. Weights are stacked as (M, out, in), biases as (M, out), masks as (M, out, in) bools;
all replicas run in lockstep through batched matrix products (``torch.baddbmm``). Each replica
carries its own modulation state:

* ``gain``, ``damping`` (M,): hidden activations are multiplied by ``damping * g_eff``;
* ``tanh`` (M,) bool: tanh instead of ReLU (neurosteroid-like drug on);
* ``protection`` (M,): mood-stabiliser protection ``p``; it caps the effective gain and
  subtracts ``0.15 * p`` from every hidden activation.

Per hidden layer, in this order::

    h = act(W h + b)                 # (M, B, H)
    h = h + sigma_int * noise        # only for replicas with sigma_int > 0
    h = h * damping * g_eff
    h = h - 0.15 * p
    g_eff = gain if p == 0 else min(gain, max(1.05, 1.05 + (1 - p) * (gain - 1.05)))
"""

from __future__ import annotations

import copy
import warnings
from typing import Sequence

import torch
import torch.nn as nn

from .config import NetworkConfig, check_choice, check_real
from .rng import replica_generators

# CSR products are used only in the forms tested here; torch's "beta" notice would repeat in every run.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")

PROTECTION_SHIFT = 0.15  # activation subtracted per unit of mood-stabiliser protection


def effective_gain(gain: torch.Tensor, protection: torch.Tensor) -> torch.Tensor:
    """Gain after the mood stabiliser's cap; (M,) -> (M,)."""
    capped = torch.minimum(gain, torch.clamp(1.05 + (1 - protection) * (gain - 1.05), min=1.05))
    return torch.where(protection > 0, capped, gain)


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

    rows = None  # every output unit (compact layers hold a subset)

    def __init__(self, mask: torch.Tensor | None, shape: tuple[int, int, int] | None = None):
        self.shape = tuple(mask.shape) if mask is not None else tuple(shape)
        m, out, inn = self.shape
        per = out * inn
        dev = mask.device if mask is not None else None
        counts = mask.reshape(m, -1).sum(1) if mask is not None else torch.full((m,), per)  # (M,) kept
        is_sparse = counts < SPARSE_BELOW * per
        self.dense_ids = (~is_sparse).nonzero().squeeze(1).to(dev)  # replicas of the dense group
        self.sparse_ids = is_sparse.nonzero().squeeze(1).to(dev)  # replicas of the sparse group
        self.all_dense = len(self.sparse_ids) == 0
        self.all_sparse = len(self.dense_ids) == 0
        partial = mask is not None and bool((counts[self.dense_ids] < per).any())
        # (Md, out, in) float mask applied to the dense group's weight gradients, or None
        self.grad_mask = None
        if partial:
            self.grad_mask = (mask if self.all_dense else mask[self.dense_ids]).to(torch.float32)
        self.ms = len(self.sparse_ids)
        if self.ms:
            sub = mask if self.all_sparse else mask[self.sparse_ids]
            self.idx = sub.reshape(-1).nonzero().squeeze(1)  # kept flat positions in sub, order (r, i, k)
            r, i, k = self.idx // per, (self.idx // inn) % out, self.idx % inn
            rows, cols = r * out + i, r * inn + k  # block-diagonal coordinates
            self.crow, self.col = _crow(rows, self.ms * out), cols
            self.perm_t = torch.argsort(cols * (self.ms * out) + rows)  # CSR order of the transpose
            self.crow_t, self.col_t = _crow(cols[self.perm_t], self.ms * inn), rows[self.perm_t]
            self.owner = self.sparse_ids[r]  # (nnz,) replica of each kept entry

    @classmethod
    def dense(cls, shape) -> "LayerPlan":
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

    def linear(self, h: torch.Tensor, wd: torch.Tensor | None, ws: torch.Tensor | None,
               b: torch.Tensor) -> torch.Tensor:
        """z = W h + b for h (M, B, in); returns (M, B, out).

        Products are taken as W @ h^T, so activations are stored feature-major ((M, out, B) in
        memory) and dense weight gradients come out contiguous.
        """
        if self.all_dense:
            return torch.baddbmm(b.unsqueeze(2), wd, h.transpose(1, 2)).transpose(1, 2)
        if self.all_sparse:
            return _SparseLinear.apply(ws, h, self) + b.unsqueeze(1)
        zd = torch.bmm(wd, h[self.dense_ids].transpose(1, 2)).transpose(1, 2)
        zs = _SparseLinear.apply(ws, h[self.sparse_ids], self)
        z = torch.zeros(self.shape[0], h.shape[1], self.shape[1], dtype=h.dtype, device=h.device)
        z = z.index_put((self.dense_ids,), zd).index_put((self.sparse_ids,), zs)
        return z + b.unsqueeze(1)


#: Compact blocks are padded to a multiple of this many units (padded slots are masked); matrix
#: products on such shapes ran up to 10% faster than on odd ones.
PAD_TO = 16


def _padded(sel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the True entries of each row of ``sel`` (M, N), padded to the longest row.

    Returns (index (M, K) long, valid (M, K) bool); padded slots repeat the row's first index (or
    0) and are invalid.
    """
    counts = sel.sum(1)
    k = min(sel.shape[1], -(-max(1, int(counts.max())) // PAD_TO) * PAD_TO)
    order = torch.argsort((~sel).to(torch.int8), dim=1, stable=True)[:, :k]  # True entries first, in order
    valid = torch.arange(k, device=sel.device).unsqueeze(0) < counts.unsqueeze(1)
    return torch.where(valid, order, order[:, :1]), valid


def _take_cols(t: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """t (M, R, in) at each replica's columns ``cols`` (M, K): (M, R, K)."""
    return t.gather(2, cols.unsqueeze(1).expand(t.shape[0], t.shape[1], -1))


def _kept_positions(block: torch.Tensor, rows: torch.Tensor | None, cols: torch.Tensor | None, out: int, inn: int):
    """Where the kept entries of ``block`` (M, R, K), cut from an (M, out, in) matrix, sit.

    rows (M, R) / cols (M, K): the block's units in the matrix (None: all). Returns (flat positions
    in the block, flat positions in the matrix, (replica, block row, block column) of each entry).
    """
    _, r_, k_ = block.shape
    kept = block.reshape(-1).nonzero().squeeze(1)
    rr, ii, kk = kept // (r_ * k_), (kept // k_) % r_, kept % k_
    ri = ii if rows is None else rows[rr, ii]
    ck = kk if cols is None else cols[rr, kk]
    return kept, (rr * out + ri) * inn + ck, (rr, ii, kk)


class _Block:
    """The (rows, cols) block of a masked layer (M, out, in), multiplied by a :class:`LayerPlan`.

    rows, cols: (M, out) / (M, in) bool selections of units, or None for all; each replica's
    selected units are padded to the largest count (padded entries masked). ``keep`` (M, out, in)
    limits which kept weights belong to the block.
    """

    def __init__(self, keep: torch.Tensor, rows: torch.Tensor | None, cols: torch.Tensor | None):
        self.shape = tuple(keep.shape)
        m, out, inn = self.shape
        self.rows = self.cols = None
        block = keep
        if rows is not None and not bool(rows.all()):
            self.rows, valid = _padded(rows)
            block = block[torch.arange(m, device=keep.device).view(m, 1), self.rows] & valid.unsqueeze(2)
        if cols is not None and not bool(cols.all()):
            self.cols, valid = _padded(cols)
            block = _take_cols(block, self.cols) & valid.unsqueeze(1)
        self.mask = block  # (M, R, K) the block's kept entries
        self.plan = LayerPlan(block)
        self.block_kept, self.full_kept, _ = _kept_positions(block, self.rows, self.cols, out, inn)

    def split(self, w: torch.Tensor):
        if self.rows is None and self.cols is None:
            return self.plan.split(w)  # the whole matrix (pruned entries are zero)
        m = self.shape[0]
        if self.rows is not None:
            w = w[torch.arange(m, device=w.device).view(m, 1), self.rows]
        if self.cols is not None:
            w = _take_cols(w, self.cols)
        return self.plan.split(w * self.mask)

    def merge(self, w: torch.Tensor, wd, ws) -> None:
        if self.rows is None and self.cols is None:
            return self.plan.merge(w, wd, ws)
        block = torch.zeros(self.mask.shape, dtype=w.dtype, device=w.device)
        self.plan.merge(block, wd, ws)
        with torch.no_grad():
            w.view(-1)[self.full_kept] = block.view(-1)[self.block_kept]


class _Fold:
    """Kept weights from constant units, folded into the next layer's bias: b + W[:, const] c.

    keep (M, out, in): the kept weights into the output units that matter; cols (M, in): the
    constant input units (padded per replica as in :class:`_Block`). Held as a dense (M, out, C)
    block with masked gradients when at least :data:`SPARSE_BELOW` of it is kept, else as the flat
    kept entries. Its input is one value per replica and unit, so the product is an elementwise
    multiply-and-sum (a batched matrix-vector product runs far below memory speed).
    """

    def __init__(self, keep: torch.Tensor, cols: torch.Tensor):
        _, out, inn = keep.shape
        self.cols, valid = _padded(cols)
        block = _take_cols(keep, self.cols) & valid.unsqueeze(1)
        c = block.shape[2]
        self.mask = block
        self.dense = bool(block.sum() >= SPARSE_BELOW * block.numel())
        self.kept, self.full_kept, (r, i, k) = _kept_positions(block, None, self.cols, out, inn)
        self.owner = r
        self.seg, self.src = r * out + i, r * c + k  # sparse form: output and input of every entry

    def split(self, w: torch.Tensor) -> torch.Tensor:
        block = _take_cols(w, self.cols) * self.mask
        return block if self.dense else block.reshape(-1)[self.kept]

    def merge(self, w: torch.Tensor, t: torch.Tensor) -> None:
        with torch.no_grad():
            w.view(-1)[self.full_kept] = t.reshape(-1)[self.kept] if self.dense else t

    def trainables(self, t: torch.Tensor):
        if self.dense:
            own = torch.arange(t.shape[0], device=t.device).view(-1, 1, 1).expand(t.shape)
            return [(t, own, self.mask.to(t.dtype))]
        return [(t, self.owner, None)]

    def add_to(self, b: torch.Tensor, t: torch.Tensor, hc: torch.Tensor) -> torch.Tensor:
        """b (M, out) plus the folded input of the constant units, hc (M, 1, in) their values."""
        c = hc.gather(2, self.cols.unsqueeze(1))  # (M, 1, C)
        if self.dense:
            return b + (t * c).sum(2)
        m, out = b.shape
        return b + torch.zeros(m * out, dtype=b.dtype, device=b.device).index_add(
            0, self.seg, t * c.reshape(-1)[self.src]).view(m, out)


class CompactLayer:
    """One masked layer restricted to the units that can change the logits.

    A unit with no kept path to a logit cannot change the loss (its incoming weights get exactly
    zero gradient, so a fresh Adam never moves them). Without internal noise, a hidden unit with
    no kept weight from a unit that varies with the sample also outputs the same value for every
    sample (a *constant unit*). :func:`unit_roles` finds both per replica from the masks. This
    layer multiplies only the *live* units (varying and reaching a logit): the block of live
    output and live input units, padded to the largest count over the replicas (padded entries
    masked to zero), multiplied by a :class:`LayerPlan` as usual (dense or CSR by the block's
    density). The constant input units are folded into the bias (:class:`_Fold`: their kept
    weights into the units that matter times their values ``hc``, one per replica and unit). The
    layer also returns its own constant units' pre-activations (the folded bias), from which the
    next layer's constants follow. Every other kept weight is left as it is.
    """

    def __init__(self, mask: torch.Tensor, rows: torch.Tensor | None, cols: torch.Tensor | None,
                 in_const: torch.Tensor | None, out_const: torch.Tensor | None):
        self.shape = tuple(mask.shape)
        self.main = _Block(mask, rows, cols)
        self.rows = self.main.rows
        self.fold = None
        if in_const is not None and bool(in_const.any()):
            target = mask if rows is None else mask & (rows | out_const).unsqueeze(2)
            self.fold = _Fold(target, in_const)
        self.has_const_out = out_const is not None and bool(out_const.any())

    def split(self, w: torch.Tensor):
        """(main block's dense part, its sparse part, the folded weights or None)."""
        return self.main.split(w) + (self.fold.split(w) if self.fold is not None else None,)

    def merge(self, w: torch.Tensor, wd, ws, wf) -> None:
        """Write the trained entries back into w (M, out, in), in place."""
        self.main.merge(w, wd, ws)
        if self.fold is not None:
            self.fold.merge(w, wf)

    def trainables(self, parts):
        out = self.main.plan.trainables(parts[:2])
        return out + (self.fold.trainables(parts[2]) if self.fold is not None else [])

    def forward_layer(self, h, parts, b, hc=None):
        """(live units' W h + b (M, B, R), constant units' pre-activations (M, 1, out) or None).

        ``hc`` (M, 1, in): the previous layer's constant units after activation and modulation.
        """
        if self.fold is not None:
            b = self.fold.add_to(b, parts[2], hc)
        z = self.main.plan.linear(h, parts[0], parts[1], b if self.rows is None else b.gather(1, self.rows))
        return z, (b.unsqueeze(1).clone() if self.has_const_out else None)  # a copy: activations may run in place


def unit_roles(masks: Sequence[torch.Tensor], noise: bool = False) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(live, constant): per hidden layer, (M, units) bools for masks (M, out, in) per layer.

    A hidden unit *reaches* the output if it has a kept weight to a unit that reaches (the logits
    reach). In a pass without internal noise a hidden unit *varies* with the sample if it has a
    kept weight from a unit that varies (the inputs vary); with noise (``noise=True``) every
    hidden unit varies. Live units vary and reach; constant units reach but do not vary. The
    others cannot change the logits.
    """
    n = len(masks)
    vary, prev = [], None
    for mk in masks[:-1]:
        if noise:
            prev = torch.ones(mk.shape[:2], dtype=torch.bool, device=mk.device)
        else:
            prev = mk.any(2) if prev is None else (mk & prev.unsqueeze(1)).any(2)
        vary.append(prev)
    reach, nxt = [None] * (n - 1), None
    for i in range(n - 2, -1, -1):
        mk = masks[i + 1]
        nxt = mk.any(1) if nxt is None else (mk & nxt.unsqueeze(2)).any(1)
        reach[i] = nxt
    return [v & r for v, r in zip(vary, reach)], [~v & r for v, r in zip(vary, reach)]


def compact_plans(masks: Sequence[torch.Tensor], noise: bool = False) -> list[CompactLayer]:
    """Per layer, the :class:`CompactLayer` of a pass (units from :func:`unit_roles`).

    noise: whether the pass adds internal noise (then no unit is constant and only the units
    that reach no logit are left out).
    """
    live, const = unit_roles(masks, noise)
    n = len(masks)
    return [CompactLayer(mk, live[i] if i < n - 1 else None, live[i - 1] if i > 0 else None,
                         const[i - 1] if i > 0 else None, const[i] if i < n - 1 else None)
            for i, mk in enumerate(masks)]


def _crow(rows: torch.Tensor, n_rows: int) -> torch.Tensor:
    """CSR row pointer (n_rows + 1,) for row indices sorted ascending."""
    return torch.cat([rows.new_zeros(1), torch.cumsum(torch.bincount(rows, minlength=n_rows), 0)])


class _SparseLinear(torch.autograd.Function):
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
            wt = torch.sparse_csr_tensor(plan.crow_t, plan.col_t, kept[plan.perm_t], (ms * inn, ms * out),
                                         check_invariants=False)
            g_h = (wt @ gzt).view(ms, inn, bsz).transpose(1, 2)
        return g_kept, g_h, None


class EnsembleMLP:
    """M independent masked MLP replicas trained and evaluated together.

    ``meta`` is one dict per replica (at least ``seed``), carried through :meth:`select` and
    :meth:`concat` so that results can be labelled by seed and condition.
    """

    def __init__(self, weights, biases, masks, meta, gain=None, damping=None, tanh=None, protection=None):
        self.weights: list[torch.Tensor] = weights  # each (M, out, in)
        self.biases: list[torch.Tensor] = biases  # each (M, out)
        self.masks: list[torch.Tensor] = masks  # each (M, out, in), bool
        self.meta: list[dict] = meta
        m, dev = len(meta), weights[0].device
        self.gain = gain if gain is not None else torch.ones(m, device=dev)
        self.damping = damping if damping is not None else torch.ones(m, device=dev)
        self.tanh = tanh if tanh is not None else torch.zeros(m, dtype=torch.bool, device=dev)
        self.protection = protection if protection is not None else torch.zeros(m, device=dev)

    # ------------------------------------------------------------------ construction
    @classmethod
    def init(cls, seeds: Sequence[int], net: NetworkConfig = NetworkConfig(), device="cpu", meta=None):
        """PyTorch's default ``nn.Linear`` initialisation, per replica, from ``torch.manual_seed(seed)``.

        Replica ``m`` gets exactly the weights of ``torch.manual_seed(seeds[m])`` followed by
        building the layers with ``nn.Linear`` in order; the global RNG state is restored after.
        """
        ws: list[list[torch.Tensor]] = [[] for _ in net.sizes[1:]]
        bs: list[list[torch.Tensor]] = [[] for _ in net.sizes[1:]]
        for s in seeds:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(s))
                layers = [nn.Linear(a, b) for a, b in zip(net.sizes[:-1], net.sizes[1:])]
            for i, lin in enumerate(layers):
                ws[i].append(lin.weight.detach())
                bs[i].append(lin.bias.detach())
        weights = [torch.stack(w).to(device) for w in ws]
        biases = [torch.stack(b).to(device) for b in bs]
        masks = [torch.ones_like(w, dtype=torch.bool) for w in weights]
        meta = meta if meta is not None else [{"seed": int(s)} for s in seeds]
        return cls(weights, biases, masks, [dict(d) for d in meta])

    # ------------------------------------------------------------------ properties
    @property
    def n_replicas(self) -> int:
        return len(self.meta)

    @property
    def seeds(self) -> list[int]:
        return [int(d["seed"]) for d in self.meta]

    @property
    def device(self) -> torch.device:
        return self.weights[0].device

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.weights[0].shape[2],) + tuple(w.shape[1] for w in self.weights)

    def n_parameters(self) -> int:
        """Parameters of one replica (weights + biases)."""
        return sum(w[0].numel() for w in self.weights) + sum(b[0].numel() for b in self.biases)

    def kept_per_layer(self) -> torch.Tensor:
        """(M, L) number of unmasked weights per layer."""
        return torch.stack([m.flatten(1).sum(1) for m in self.masks], dim=1)

    def check_finite(self, where: str = "") -> None:
        """Raise ``FloatingPointError`` naming the replicas whose weights or biases are not finite.

        Training checks after every epoch and evaluation before it starts, so a diverging run
        (too large a learning rate, say) stops with this message instead of reporting
        accuracies of NaN weights.
        """
        bad = torch.zeros(self.n_replicas, dtype=torch.bool, device=self.device)
        for t in (*self.weights, *self.biases):
            bad |= ~torch.isfinite(t.detach()).flatten(1).all(1)
        if bool(bad.any()):
            idx = bad.nonzero().flatten().tolist()
            who = ", ".join(f"seed {self.meta[i].get('seed', i)}" for i in idx[:5]) + (" ..." if len(idx) > 5 else "")
            raise FloatingPointError(
                f"non-finite weights (NaN or inf) in {len(idx)} of {self.n_replicas} replicas ({who})"
                + (f" {where}" if where else "")
                + "; training diverged: lower the learning rate or check the inputs")

    def weight_sparsity(self) -> torch.Tensor:
        """(M,) fraction of weight-matrix entries that are pruned (biases not counted)."""
        total = sum(m[0].numel() for m in self.masks)
        return 1.0 - self.kept_per_layer().sum(1).double() / total

    def parameter_sparsity(self) -> torch.Tensor:
        """(M,) fraction of all parameters (weights and biases) that are pruned."""
        n_bias = sum(b[0].numel() for b in self.biases)
        total = self.n_parameters()
        return 1.0 - (self.kept_per_layer().sum(1).double() + n_bias) / total

    # ------------------------------------------------------------------ copying
    def clone(self) -> "EnsembleMLP":
        """A deep copy (tensors cloned); experiments branch from shared states with this."""
        return EnsembleMLP(
            [w.clone() for w in self.weights],
            [b.clone() for b in self.biases],
            [m.clone() for m in self.masks],
            copy.deepcopy(self.meta),
            self.gain.clone(),
            self.damping.clone(),
            self.tanh.clone(),
            self.protection.clone(),
        )

    def select(self, index: Sequence[int]) -> "EnsembleMLP":
        """The replicas at ``index`` (copies), in that order; an index may repeat."""
        idx = torch.as_tensor(list(index), dtype=torch.long, device=self.device)
        return EnsembleMLP(
            [w[idx].clone() for w in self.weights],
            [b[idx].clone() for b in self.biases],
            [m[idx].clone() for m in self.masks],
            [copy.deepcopy(self.meta[i]) for i in idx.tolist()],
            self.gain[idx].clone(),
            self.damping[idx].clone(),
            self.tanh[idx].clone(),
            self.protection[idx].clone(),
        )

    def repeat(self, labels: Sequence[dict]) -> "EnsembleMLP":
        """Every replica once per label dict, labels varying fastest: (M * len(labels)) replicas.

        Used to run several conditions from the same states as one ensemble; each new replica's
        ``meta`` is its source's meta updated with the label.
        """
        idx = [i for i in range(self.n_replicas) for _ in labels]
        out = self.select(idx)
        for k, d in enumerate(out.meta):
            d.update(labels[k % len(labels)])
        return out

    @staticmethod
    def concat(nets: Sequence["EnsembleMLP"]) -> "EnsembleMLP":
        """Stack several ensembles into one (replicas in order)."""
        return EnsembleMLP(
            [torch.cat([n.weights[i] for n in nets]) for i in range(len(nets[0].weights))],
            [torch.cat([n.biases[i] for n in nets]) for i in range(len(nets[0].biases))],
            [torch.cat([n.masks[i] for n in nets]) for i in range(len(nets[0].masks))],
            [copy.deepcopy(d) for n in nets for d in n.meta],
            torch.cat([n.gain for n in nets]),
            torch.cat([n.damping for n in nets]),
            torch.cat([n.tanh for n in nets]),
            torch.cat([n.protection for n in nets]),
        )

    def to(self, device) -> "EnsembleMLP":
        out = self.clone()
        for name in ("weights", "biases", "masks"):
            setattr(out, name, [t.to(device) for t in getattr(out, name)])
        for name in ("gain", "damping", "tanh", "protection"):
            setattr(out, name, getattr(out, name).to(device))
        return out

    def state_dict(self) -> dict:
        return {
            "weights": self.weights, "biases": self.biases, "masks": self.masks, "meta": self.meta,
            "gain": self.gain, "damping": self.damping, "tanh": self.tanh, "protection": self.protection,
        }

    @classmethod
    def from_state_dict(cls, d: dict, device="cpu") -> "EnsembleMLP":
        return cls(d["weights"], d["biases"], d["masks"], d["meta"], d["gain"], d["damping"],
                   d["tanh"], d["protection"]).to(device)

    # ------------------------------------------------------------------ modulation
    def set_modulation(self, gain=None, damping=None, activation=None, protection=None, index=None):
        """Set modulation for all replicas, or those at ``index``; values are scalars or (M,)."""
        idx = slice(None) if index is None else torch.as_tensor(list(index), dtype=torch.long)
        if gain is not None:
            self.gain[idx] = as_param("gain", gain, 0.0, 10.0, self.device, lo_open=True)
        if damping is not None:
            self.damping[idx] = as_param("damping", damping, 0.0, 10.0, self.device, lo_open=True)
        if protection is not None:
            self.protection[idx] = as_param("protection", protection, 0.0, 1.0, self.device)
        if activation is not None:
            if isinstance(activation, str):
                self.tanh[idx] = check_choice("activation", activation, ("relu", "tanh")) == "tanh"
            else:
                self.tanh[idx] = torch.as_tensor(
                    [check_choice("activation", a, ("relu", "tanh")) == "tanh" for a in activation],
                    device=self.device,
                )
        return self

    def reset_modulation(self, index=None):
        """Drug off: gain 1.0, damping 1.0, ReLU (protection left as it is)."""
        return self.set_modulation(gain=1.0, damping=1.0, activation="relu", index=index)

    def apply_masks(self) -> None:
        """Set weights at pruned positions to exactly zero."""
        with torch.no_grad():
            for w, m in zip(self.weights, self.masks):
                w.mul_(m)

    # ------------------------------------------------------------------ forward
    def plans(self, compact: bool = False, noise: bool = False) -> list:
        """One :class:`LayerPlan` per layer for the current masks (cached until a mask changes).

        compact: the :class:`CompactLayer` of each layer instead (:func:`compact_plans`), for passes
        with internal noise if ``noise``; they give the logits and the training, not the
        activations of every unit.
        """
        key = (compact, compact and noise) + tuple((id(m), m._version) for m in self.masks)
        if getattr(self, "_plans_key", None) != key:
            self._plans = compact_plans(self.masks, noise) if compact else [LayerPlan(m) for m in self.masks]
            self._plans_key = key
        return self._plans

    def layers(self, compact: bool = False, noise: bool = False) -> list[tuple["LayerPlan", tuple, torch.Tensor]]:
        """(plan, plan.split(weights), bias) per layer, as :meth:`forward` multiplies them.

        While any weight tensor requires gradients (regrowth scores need them at pruned
        positions too) every layer is multiplied densely; otherwise only kept weights count, and
        with ``compact`` only the live units (see :meth:`plans`).
        """
        if any(w.requires_grad for w in self.weights):
            return [(LayerPlan.dense(w.shape), (w, None), b) for w, b in zip(self.weights, self.biases)]
        return [(p, p.split(w), b) for p, w, b in zip(self.plans(compact, noise), self.weights, self.biases)]

    def forward(
        self,
        x: torch.Tensor,
        sigma_int=None,
        generators=None,
        bias=None,
        gain=None,
        record: list | None = None,
        layers=None,
        noise: list | None = None,
    ) -> torch.Tensor:
        """Logits (M, B, C) for inputs ``x`` (M, B, D).

        sigma_int: None, a float, or (M,) internal-noise SDs added after each hidden activation;
            noise for replica m is drawn from ``generators[m]`` and only where sigma_int[m] > 0.
        bias: None or (M,) constant added with the noise (the biased-stress test).
        gain: override of the gain (M,) for this pass (regrowth scores use 1.0).
        record: if a list, the mean |h| of each hidden layer (M,) is appended to it.
        layers: (plan, (dense part, sparse part), bias) per layer to use instead of the
            network's own (training passes its trainable tensors here); default :meth:`layers`.
        noise: standard-normal noise per hidden layer from :meth:`hidden_noise`, used instead of
            drawing it here (evaluation shares one draw between several protection settings).
        """
        m = self.n_replicas
        sig = None
        if sigma_int is not None:
            sig = torch.as_tensor(sigma_int, dtype=x.dtype, device=x.device).expand(m)
            if not bool((sig > 0).any()):
                sig = None
        g = self.gain if gain is None else torch.as_tensor(gain, dtype=x.dtype, device=x.device).expand(m)
        scale = (self.damping * effective_gain(g, self.protection)).view(m, 1, 1)
        shift = (PROTECTION_SHIFT * self.protection).view(m, 1, 1)
        any_tanh, all_tanh = bool(self.tanh.any()), bool(self.tanh.all())
        any_shift = bool((self.protection > 0).any())
        any_scale = bool((scale != 1).any())  # multiplying by exactly 1.0 changes nothing
        layers = self.layers() if layers is None else layers
        # Without autograd every step below may overwrite the fresh activation tensor in place
        # (the same arithmetic, without a new allocation per step); training needs the copies.
        inplace = not torch.is_grad_enabled()

        def modulate(h, i, sig, rows=None):
            """Noise, bias, damping x gain and protection shift after layer i's activation.

            rows: the units of the layer that h holds (compact layers), or None for all; noise is
            drawn for every unit, as in the full pass, and taken at these.
            """
            if sig is not None:
                n = noise[i] if noise is not None else _noise(
                    (m, h.shape[1], layers[i][0].shape[1]), sig, generators, h.dtype, h.device)
                if rows is not None:
                    n = n.gather(2, rows.unsqueeze(1).expand(-1, h.shape[1], -1))
                n = sig.view(m, 1, 1) * n
                h = h.add_(n) if inplace else h + n
            if bias is not None:
                h = h.add_(bias.view(m, 1, 1)) if inplace else h + bias.view(m, 1, 1)
            if any_scale:
                h = h.mul_(scale) if inplace else h * scale
            if any_shift:
                h = h.sub_(shift) if inplace else h - shift
            return h

        def act(z):
            if all_tanh:
                return z.tanh_() if inplace else torch.tanh(z)
            if any_tanh:
                return torch.where(self.tanh.view(m, 1, 1), torch.tanh(z), torch.relu(z))
            return z.relu_() if inplace else torch.relu(z)

        if record is not None and any(p.rows is not None for p, _, _ in layers):
            raise ValueError("recorded activations need every unit: use the network's own layers, not compact ones")
        h, hc = x, None  # hc: constant units' values (compact layers only), one per replica and unit
        for i, (plan, w, b) in enumerate(layers[:-1]):
            z, zc = plan.forward_layer(h, w, b, hc)
            if zc is not None and sig is not None:
                raise ValueError("compact layers with constant units hold only for passes without internal noise "
                                 "(build them with noise=True)")
            h = modulate(act(z), i, sig, plan.rows)
            hc = None if zc is None else modulate(act(zc), i, None)
            if record is not None:
                record.append(h.detach().abs().mean(dim=(1, 2)))
        plan, w, b = layers[-1]
        return plan.forward_layer(h, w, b, hc)[0]

    __call__ = forward

    def hidden_noise(self, batch: int, generators) -> list[torch.Tensor]:
        """Standard-normal noise (M, batch, H) for every hidden layer, replica m from generators[m].

        Drawn in the order :meth:`forward` would draw it (layer by layer, one block per replica),
        so a forward pass given this noise equals one that draws its own.
        """
        on = torch.ones(self.n_replicas)
        return [_noise((self.n_replicas, batch, width), on, generators, device=self.device)
                for width in self.sizes[1:-1]]

    def with_protection(self, protection: torch.Tensor) -> "EnsembleMLP":
        """A view of this ensemble (same tensors, not copies) with another protection (M,)."""
        return EnsembleMLP(self.weights, self.biases, self.masks, self.meta, self.gain, self.damping,
                           self.tanh, torch.as_tensor(protection, dtype=torch.float32, device=self.device))

    def parameters(self) -> list[torch.Tensor]:
        return self.weights + self.biases

    def generators(self, *tags) -> list[torch.Generator]:
        """One independent random generator per replica, keyed by its meta and ``tags``."""
        return replica_generators(self.meta, tags, self.device)


def _noise(shape, sig: torch.Tensor, generators, dtype=torch.float32, device="cpu") -> torch.Tensor:
    """Standard normal noise of ``shape`` (M, B, H), replica m from generators[m] (zero if sig[m] == 0).

    Each replica's block is drawn as one contiguous ``randn(B, H)`` from its own generator, so its
    stream does not depend on the other replicas.
    """
    if generators is None or len(generators) != shape[0]:
        raise ValueError("internal noise needs one random generator per replica (generators=...)")
    out = torch.empty(shape, dtype=dtype, device=device)
    for k, (gen, s) in enumerate(zip(generators, sig.tolist())):
        if s > 0:
            out[k].normal_(generator=gen)
        else:
            out[k].zero_()
    return out


def as_param(name, value, lo, hi, device, lo_open=False):
    """A scalar or per-replica modulation value checked to lie in [lo, hi], as a float32 tensor."""
    if isinstance(value, torch.Tensor):
        vals = value.flatten().tolist()
    elif isinstance(value, (list, tuple)):
        vals = list(value)
    else:
        vals = [value]
    for v in vals:
        check_real(name, v, lo, hi, lo_open=lo_open)
    return torch.as_tensor(vals if len(vals) > 1 else vals[0], dtype=torch.float32, device=device)
