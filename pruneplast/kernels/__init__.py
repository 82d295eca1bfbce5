"""Compute kernels behind the model: how masked layers are multiplied and trained.

* :mod:`.layers`: the :class:`~.layers.Layer` protocol and :class:`~.layers.LayerPlan` (each
  replica's layer dense or as CSR by its density);
* :mod:`.roles` and :mod:`.compact`: which units can change the logits, and compact layers that
  multiply only those;
* :mod:`.adam`: the trainable tensors of a phase and a fused Adam over stacked replicas;
* :mod:`.denormals`: denormal floats flushed to zero on every thread that computes (the engine's
  mode: much faster late in training, where gradients and Adam's moments hold denormals);
* :mod:`.heap`: freed memory kept in the process, so that a step does not fault its tensors in anew;
* :mod:`.fused`: the compiled step of sparse replicas (on by default; ``PRUNEPLAST_FUSED=0``: off): forward,
  backward and Adam in one C++ operator (``fused.cpp``), built once per machine (at install or first use);
* :mod:`.pointwise`: the same operator's pointwise kernels for the other replicas (the ReLU with
  damping and shift, the constant-unit fold of dense blocks), one pass each way.

None of these changes a result beyond the order of floating-point sums (and values below
1.2e-38, which :mod:`.denormals` flushes to zero); the model
(:mod:`pruneplast.network`) reads as the Methods section without them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .compact import compact_plans
from .layers import LayerParts, LayerPlan

__all__ = ["LayerParts", "LayerPlan", "compact_plans", "dense_layers", "plans_for"]


def plans_for(masks: Sequence[torch.Tensor], compact: bool, noise: bool, cache: tuple | None = None) -> tuple:
    """(key, plans) for ``masks``: one :class:`LayerPlan` per layer, or with ``compact`` the
    :func:`compact_plans` of a pass with internal noise if ``noise``. ``cache`` is a previous
    return value, reused while no mask has changed (same tensors, same version counters)."""
    key = (compact, compact and noise) + tuple((id(m), m._version) for m in masks)
    if cache is not None and cache[0] == key:
        return cache
    return key, (compact_plans(masks, noise) if compact else [LayerPlan(m) for m in masks])


def dense_layers(weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor]) -> list[LayerParts]:
    """Every layer multiplied densely, every position trainable (regrowth scores need them all)."""
    out: list[LayerParts] = []
    for w, b in zip(weights, biases):
        out.append((LayerPlan.dense(w.shape), (w, None), b))
    return out
