"""Which hidden units of a pruned ensemble can change its logits: live and constant units.

:func:`unit_roles` reads them from the masks alone; :mod:`.compact` multiplies only those units, and
the compiled step (:mod:`.fused`) lays out its rows by them.
"""

from __future__ import annotations

from typing import Sequence

import torch


def _any(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``x.any(dim)`` of a bool tensor, as the largest of its bytes (several times faster on the CPU)."""
    return x.view(torch.uint8).amax(dim) > 0


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
            prev = _any(mk, 2) if prev is None else _any(mk & prev.unsqueeze(1), 2)
        vary.append(prev)
    reach: list[torch.Tensor] = []
    nxt: torch.Tensor | None = None
    for i in range(n - 2, -1, -1):
        mk = masks[i + 1]
        nxt = _any(mk, 1) if nxt is None else _any(mk & nxt.unsqueeze(2), 1)
        reach.insert(0, nxt)
    return [v & r for v, r in zip(vary, reach)], [~v & r for v, r in zip(vary, reach)]
