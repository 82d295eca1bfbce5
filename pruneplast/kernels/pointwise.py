"""Pointwise work of the standard training path in one pass each way, with the compiled operator.

Where the compiled operator of :mod:`.fused` is on and built, a training pass on the CPU in float32
takes two pieces of elementwise work around the dense products from it:

* :func:`relu_modulate`: a hidden layer's ReLU, damping x gain and protection shift,
  ``max(z, 0) * scale - shift``, one pass forward and one backward where torch takes three and two.
  The same roundings in the same order: the same bits as torch's operators. (After a ragged compact
  block the operator takes the same arithmetic with the block's products instead:
  :func:`.compact.ragged_linear`'s ``act``.)
* :func:`fold`: the constant-unit fold of a dense block (:class:`~.compact._Fold`), the sums
  ``t @ c`` and both gradients (the weights' masked) in one pass each. Its sums run in another order
  than torch's, so its results differ in the last bits; cached states trained with the operator
  have keys of their own (:func:`.fused.cache_tag`).

Elsewhere (no compiler, ``PRUNEPLAST_FUSED=0``, a GPU, float64, tanh, internal noise) the model's
own torch operators run. Tested in ``tests/kernels/test_pointwise.py``.
"""

from __future__ import annotations

import torch

from . import fused


def module(*tensors: torch.Tensor):
    """The compiled operator when it serves these tensors (CPU, float32, training with it on), else None."""
    if not torch.is_grad_enabled() or any(t.device.type != "cpu" or t.dtype != torch.float32 for t in tensors):
        return None
    return fused.load() if fused.requested() else None


def _replica_major(t: torch.Tensor) -> bool:
    """Whether each replica's block of ``t`` (M, ...) is one contiguous run of memory, with no gaps."""
    return t.dim() == 3 and (t.is_contiguous() or t.transpose(1, 2).is_contiguous())


class _ReluModulate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, scale, shift, op):
        ctx.save_for_backward(z, scale)
        ctx.op = op
        return op.relu_modulate(z, scale, shift)

    @staticmethod
    def backward(ctx, g):
        z, scale = ctx.saved_tensors
        if g.stride() != z.stride():
            g = torch.empty_like(z).copy_(g)
        return ctx.op.relu_modulate_backward(g, z, scale), None, None, None


def relu_modulate(z: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor | None:
    """``relu(z) * scale - shift`` (scale, shift: (M, 1, 1), no gradient) in one pass, or None where
    the compiled operator does not serve ``z`` (then the caller takes torch's operators)."""
    op = module(z, scale, shift)
    if op is None or scale.requires_grad or shift.requires_grad or not _replica_major(z):
        return None
    return _ReluModulate.apply(z, scale.reshape(-1).contiguous(), shift.reshape(-1).contiguous(), op)


class _Fold(torch.autograd.Function):
    @staticmethod
    def forward(ctx, t, c, mask, op):
        ctx.save_for_backward(t, c, mask)
        ctx.op = op
        return op.fold_forward(t, c)

    @staticmethod
    def backward(ctx, g):
        t, c, mask = ctx.saved_tensors
        gt, gc = ctx.op.fold_backward(g.contiguous(), t, c, mask)
        return gt, gc, None, None


def fold(t: torch.Tensor, c: torch.Tensor, mask: torch.Tensor) -> torch.Tensor | None:
    """``(t * c).sum(2)`` for t (M, R, C), c (M, 1, C), with the gradient at ``t`` zero where ``mask``
    (M, R, C) bool is False, in one pass each way; None where the compiled operator does not serve them."""
    op = module(t, c)
    if op is None or not t.is_contiguous():
        return None
    return _Fold.apply(t, c.reshape(c.shape[0], -1).contiguous(), mask.contiguous(), op)
