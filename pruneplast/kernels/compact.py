"""Compact layers: multiply only the units of a pruned network that can change its logits.

A 95%-pruned layer leaves many units with no kept path to a logit (they cannot change the loss)
or, without internal noise, with no input that varies with the sample (they output a constant).
:func:`~.roles.unit_roles` finds both from the masks; :class:`CompactLayer` multiplies the block of live
units with a :class:`~pruneplast.kernels.layers.LayerPlan` and folds the constant units into the
next layer's bias. The result equals the full pass up to the order of floating-point sums.
"""

from __future__ import annotations

from typing import Sequence

import torch

from . import fused, pointwise
from .layers import SPARSE_BELOW, LayerPlan
from .roles import unit_roles

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


def _block_positions(
    block: torch.Tensor, rows: torch.Tensor | None, cols: torch.Tensor | None, out: int, inn: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first two of :func:`_kept_positions` (where the kept entries sit in the block and in the
    matrix), from every cell's matrix position by broadcasting: no coordinates per entry."""
    m, r_, k_ = block.shape
    dev = block.device
    ri = torch.arange(r_, device=dev).expand(m, r_) if rows is None else rows
    ck = torch.arange(k_, device=dev).expand(m, k_) if cols is None else cols
    full = ((torch.arange(m, device=dev).view(m, 1) * out + ri) * inn).unsqueeze(2) + ck.unsqueeze(1)  # (M, R, K)
    kept = block.reshape(-1).nonzero().squeeze(1)
    return kept, full.reshape(-1)[kept]


def _kept_positions(block: torch.Tensor, rows: torch.Tensor | None, cols: torch.Tensor | None, out: int, inn: int):
    """Where the kept entries of ``block`` (M, R, K), cut from an (M, out, in) matrix, sit.

    rows (M, R) / cols (M, K): the block's units in the matrix (None: all). Returns (flat positions
    in the block, flat positions in the matrix, (replica, block row, block column) of each entry).
    """
    _, r_, k_ = block.shape
    rr, ii, kk = torch.nonzero(block, as_tuple=True)  # in flat order; no division of flat positions
    kept = (rr * r_ + ii) * k_ + kk
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
        # On the CPU a padded block whose replicas are all multiplied densely runs each replica's
        # products over its own units (ragged_linear), which mask their own gradient. (A block
        # with dense and CSR replicas keeps the plan's products: see CompactLayer.)
        padded = self.rows is not None or self.cols is not None
        self.ragged = padded and self.plan.all_dense and keep.device.type == "cpu"
        self.extent: tuple[tuple[int, ...], tuple[int, ...]] | None = None  # each replica's (rows, columns)
        if self.ragged:
            self.extent = (
                tuple(rows.sum(1).tolist()) if rows is not None and self.rows is not None else (block.shape[1],) * m,
                tuple(cols.sum(1).tolist()) if cols is not None and self.cols is not None else (block.shape[2],) * m,
            )
        # the ragged products' gradient mask (M, R, K) bool, where some entry of the block is pruned
        self.ragged_mask = block.contiguous() if self.ragged and self.plan.grad_mask is not None else None
        self._positions: tuple[torch.Tensor, torch.Tensor] | None = None  # found at the first merge

    def positions(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(flat positions of the kept entries in the block, the same entries' in the matrix), for
        a block of some units only (a whole matrix is written back by its plan); found once, at the
        first :meth:`merge` (a pass without training never needs them)."""
        if self._positions is None:
            _, out, inn = self.shape
            self._positions = _block_positions(self.mask, self.rows, self.cols, out, inn)
        return self._positions

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
        block_kept, full_kept = self.positions()
        with torch.no_grad():
            w.view(-1)[full_kept] = block.view(-1)[block_kept]


class _RaggedLinear(torch.autograd.Function):
    """zt = W h^T + b over each replica's own block (see :func:`ragged_linear`); ``op``: the compiled
    operator, which runs the same products from C++, or None (Python loops); ``act``: None, or
    (scale, shift) (M,) for the compiled operator to return the hidden layer's output
    ``relu(zt) * scale - shift`` instead (the same bits as :func:`.pointwise.relu_modulate` after it)."""

    @staticmethod
    def forward(ctx, w, ht, b, extent, mask, op, act):
        rows, cols = extent
        ctx.extent, ctx.mask, ctx.op = extent, mask, op
        if op is not None:
            zt, hn = op.ragged_forward(w, ht, b, list(rows), list(cols), *(act or (None, None)))
            if act is None:
                ctx.save_for_backward(w, ht)
                return zt
            ctx.save_for_backward(w, ht, zt, act[0])
            return hn
        if act is not None:
            raise ValueError("the activation is taken with the products only by the compiled operator")
        ctx.save_for_backward(w, ht)
        m, r_, _ = w.shape
        zt = torch.empty(m, r_, ht.shape[2], dtype=w.dtype, device=w.device)
        for i, (r, k) in enumerate(zip(rows, cols)):
            torch.addmm(b[i, :r].unsqueeze(1), w[i, :r, :k], ht[i, :k], out=zt[i, :r])
            if r < r_:
                zt[i, r:].copy_(b[i, r:].unsqueeze(1))
        return zt

    @staticmethod
    def backward(ctx, gzt):
        w, ht, *act = ctx.saved_tensors
        rows, cols = ctx.extent
        need_w, need_h, need_b = ctx.needs_input_grad[:3]
        mask = ctx.mask
        if ctx.op is not None:  # act: (zt, scale); gzt is then the gradient at the layer's output
            gh, gw, gb = ctx.op.ragged_backward(
                gzt, w, ht, list(rows), list(cols), need_h, need_w, need_b, mask, *(act or (None, None))
            )
            return gw, gh, gb, None, None, None, None
        gh = gw = gb = None
        m, r_, k_ = w.shape
        if need_b:  # each replica's row sums over its own block (a whole-tensor sum may split rows between threads)
            gb = torch.empty(m, r_, dtype=gzt.dtype, device=gzt.device)
            for i in range(m):
                torch.sum(gzt[i], 1, out=gb[i])
        if need_h:
            gh = torch.empty_like(ht)
            for i, (r, k) in enumerate(zip(rows, cols)):
                torch.mm(w[i, :r, :k].t(), gzt[i, :r], out=gh[i, :k])
                if k < k_:
                    gh[i, k:].fill_(0)
        if need_w:
            gw = torch.empty_like(w)
            for i, (r, k) in enumerate(zip(rows, cols)):
                torch.mm(gzt[i, :r], ht[i, :k].t(), out=gw[i, :r, :k])
                if mask is not None:
                    gw[i, :r, :k].mul_(mask[i, :r, :k])
                if r < r_:
                    gw[i, r:].fill_(0)
                if k < k_:
                    gw[i, :r, k:].fill_(0)
        return gw, gh, gb, None, None, None, None


def ragged_linear(
    h: torch.Tensor,
    w: torch.Tensor,
    b: torch.Tensor,
    extent,
    mask: torch.Tensor | None = None,
    act: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """z = W h + b (M, B, R) for a padded dense block w (M, R, K), h (M, B, K), b (M, R), each
    replica's product over its own ``extent`` (rows, columns per replica) only; the gradient at w
    multiplied by ``mask`` (M, R, K) bool (contiguous) where one is given, its entries as 0.0 or 1.0
    (each replica's block just after its product, while it is in cache: the same bits as multiplying
    the whole gradient by a float mask afterwards; the compiled operator reads a byte an entry).

    A block padded to the ensemble's largest replica, multiplied as one batched product, sums each
    replica's inputs over the padded length: the library's sums then depend on that length, so a
    replica's weights trained in one ensemble differed in the last bits from the same replica's
    trained in another (a worker's share of the replicas, say). Over its own units a replica's sums
    depend on its own block alone. Padded rows of z hold their bias; the gradients are zero at
    padded inputs and padded weights; each replica's bias gradient is the row sums of its own
    block. The compiled operator runs the same products and sums from C++ (fewer Python calls, the
    mask read a byte an entry); without it, Python loops: the same bits.

    ``act``: (scale, shift) (M,), for the compiled operator only (the caller checks that it serves
    the tensors, :func:`.pointwise.module`): the hidden layer's output ``relu(z) * scale - shift``
    is returned instead of z, each replica's block taken right after its product, and its gradient
    at z right before the replica's backward products (the same bits as :func:`.pointwise.relu_modulate`
    applied to z, one pass less over the activations each way).
    """
    # the operator while training (a pass without gradients never builds it; its loops give the same bits)
    op = fused.load() if torch.is_grad_enabled() and fused.requested() and w.dtype == torch.float32 else None
    zt = _RaggedLinear.apply(w, h.transpose(1, 2), b, extent, mask, op, act)
    return zt.transpose(1, 2)


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
        # each replica's own constant units (the CPU's fallback fold sums over them)
        self.counts = cols.sum(1).tolist() if cols.device.type == "cpu" else []
        block = _take_cols(keep, self.cols) & valid.unsqueeze(1)
        c = block.shape[2]
        self.mask = block
        self.dense = bool(block.sum() >= SPARSE_BELOW * block.numel())
        self.masked_in_kernel = False  # set by trainables
        if self.dense:  # written back through the flat positions only
            self.kept, self.full_kept = _block_positions(block, None, self.cols, out, inn)
        else:  # sparse form: the replica, output and input of every entry too
            self.kept, self.full_kept, (r, i, k) = _kept_positions(block, None, self.cols, out, inn)
            self.owner = r
            self.seg, self.src = r * out + i, r * c + k

    def split(self, w: torch.Tensor) -> torch.Tensor:
        block = _take_cols(w, self.cols) * self.mask
        return block if self.dense else block.reshape(-1)[self.kept]

    def merge(self, w: torch.Tensor, t: torch.Tensor) -> None:
        with torch.no_grad():
            w.view(-1)[self.full_kept] = t.reshape(-1)[self.kept] if self.dense else t

    def trainables(self, t: torch.Tensor):
        if self.dense:
            own = torch.arange(t.shape[0], device=t.device).view(-1, 1, 1).expand(t.shape)
            # the compiled fold masks its gradient itself (pruneplast.kernels.pointwise)
            self.masked_in_kernel = pointwise.module(t) is not None and t.is_contiguous()
            return [(t, own, None if self.masked_in_kernel else self.mask.to(t.dtype))]
        return [(t, self.owner, None)]

    def add_to(self, b: torch.Tensor, t: torch.Tensor, hc: torch.Tensor) -> torch.Tensor:
        """b (M, out) plus the folded input of the constant units, hc (M, 1, in) their values."""
        c = hc.gather(2, self.cols.unsqueeze(1))  # (M, 1, C)
        if self.dense:
            s = pointwise.fold(t, c, self.mask) if t.requires_grad else None
            if s is None:
                if t.requires_grad and self.masked_in_kernel:
                    raise RuntimeError("the fold's gradient mask was left to the compiled operator, which is off")
                if t.device.type == "cpu":
                    # each replica's sum over its own constant units: a sum over the padded length
                    # would depend on the ensemble's largest replica (see ragged_linear)
                    s = torch.stack([(t[i, :, :n] * c[i, :, :n]).sum(1) for i, n in enumerate(self.counts)])
                else:  # a GPU sums the padded block at once
                    s = (t * c).sum(2)
            return b + s
        m, out = b.shape
        return b + torch.zeros(m * out, dtype=b.dtype, device=b.device).index_add(
            0, self.seg, t * c.reshape(-1)[self.src]
        ).view(m, out)


class CompactLayer:
    """One masked layer restricted to the units that can change the logits.

    A unit with no kept path to a logit cannot change the loss (its incoming weights get exactly
    zero gradient, so a fresh Adam never moves them). Without internal noise, a hidden unit with
    no kept weight from a unit that varies with the sample also outputs the same value for every
    sample (a *constant unit*). :func:`unit_roles` finds both per replica from the masks. This
    layer multiplies only the *live* units (varying and reaching a logit): the block of live
    output and live input units, padded to the largest count over the replicas (padded entries
    masked to zero), held in a :class:`LayerPlan` as usual (dense or CSR by each replica's density
    in the padded block); on the CPU a block whose replicas are all dense is multiplied over each
    replica's own units (:func:`ragged_linear`), so that a replica's sums do not depend on the
    replicas beside it. Two cases keep the ensemble's padding in a replica's bits: a replica whose
    density in the padded block falls below :data:`SPARSE_BELOW` while its own block's does not
    (it is then multiplied as CSR beside the others, densely alone), and a block with both dense
    and CSR replicas (its dense replicas take one batched product over the padded block). The
    47.5%-sparse ensembles of the book, whose blocks are dense in every replica, meet neither.
    The constant input units are folded into the bias (:class:`_Fold`: their kept weights into the
    units that matter times their values ``hc``, one per replica and unit). The layer also returns
    its own constant units' pre-activations (the folded bias), from which the next layer's
    constants follow. Every other kept weight is left as it is.
    """

    def __init__(
        self,
        mask: torch.Tensor,
        rows: torch.Tensor | None,
        cols: torch.Tensor | None,
        in_const: torch.Tensor | None,
        out_const: torch.Tensor | None,
    ):
        self.shape = tuple(mask.shape)
        self.main = _Block(mask, rows, cols)
        self.rows = self.main.rows
        self.fold = None
        if in_const is not None and bool(in_const.any()):
            target = mask if rows is None or out_const is None else mask & (rows | out_const).unsqueeze(2)
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
        if self.main.ragged:  # its products mask the weights' gradient themselves (ragged_linear)
            out = [(t, own, None) for t, own, _ in out]
        return out + (self.fold.trainables(parts[2]) if self.fold is not None else [])

    def forward_layer(self, h, parts, b, hc=None):
        """(live units' W h + b (M, B, R), constant units' pre-activations (M, 1, out) or None).

        ``hc`` (M, 1, in): the previous layer's constant units after activation and modulation.
        """
        return self._forward(h, parts, b, hc, None)

    def forward_activated(self, h, parts, b, hc, scale, shift):
        """(``relu(W h + b) * scale - shift`` of the live units, constant units' pre-activations or
        None), the activation taken with the products (:func:`ragged_linear`), where the compiled
        operator serves this pass and the block is ragged; else None (the caller applies it).
        ``scale``, ``shift``: (M, 1, 1), no gradient."""
        if not self.main.ragged or scale.requires_grad or shift.requires_grad:
            return None
        if pointwise.module(h, scale, shift) is None:
            return None
        return self._forward(h, parts, b, hc, (scale.reshape(-1).contiguous(), shift.reshape(-1).contiguous()))

    def _forward(self, h, parts, b, hc, act):
        if self.fold is not None:
            b = self.fold.add_to(b, parts[2], hc)
        bias = b if self.rows is None else b.gather(1, self.rows)
        plan = self.main.plan
        if self.main.ragged:
            z = ragged_linear(h, parts[0], bias, self.main.extent, self.main.ragged_mask, act)
        else:
            z = plan.linear(h, parts[0], parts[1], bias)
        return z, (b.unsqueeze(1).clone() if self.has_const_out else None)  # a copy: activations may run in place


def compact_plans(masks: Sequence[torch.Tensor], noise: bool = False) -> list[CompactLayer]:
    """Per layer, the :class:`CompactLayer` of a pass (units from :func:`unit_roles`).

    noise: whether the pass adds internal noise (then no unit is constant and only the units
    that reach no logit are left out).
    """
    live, const = unit_roles(masks, noise)
    n = len(masks)
    return [
        CompactLayer(
            mk,
            live[i] if i < n - 1 else None,
            live[i - 1] if i > 0 else None,
            const[i - 1] if i > 0 else None,
            const[i] if i < n - 1 else None,
        )
        for i, mk in enumerate(masks)
    ]
