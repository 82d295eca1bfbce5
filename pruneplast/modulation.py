"""The drug and mood-stabiliser state of an ensemble's replicas (Methods sections 2, 6 and 9).

A replica's hidden activations are multiplied by ``damping * g_eff`` and shifted by
``-0.15 * p``, where ``p`` is the mood-stabiliser protection and ``g_eff`` the gain after its cap::

    g_eff = gain if p == 0 else min(gain, max(1.05, 1.05 + (1 - p) * (gain - 1.05)))

:class:`Modulation` holds the four per-replica values of an ensemble and moves them together when
replicas are selected, concatenated, copied or sent to a device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .config import check_choice, check_real

PROTECTION_SHIFT = 0.15  # activation subtracted per unit of mood-stabiliser protection


def effective_gain(gain: torch.Tensor, protection: torch.Tensor) -> torch.Tensor:
    """Gain after the mood stabiliser's cap; (M,) -> (M,)."""
    capped = torch.minimum(gain, torch.clamp(1.05 + (1 - protection) * (gain - 1.05), min=1.05))
    return torch.where(protection > 0, capped, gain)


@dataclass
class Modulation:
    """The drug and mood-stabiliser state of M replicas: four (M,) tensors, moved together."""

    gain: torch.Tensor  # excitability gain
    damping: torch.Tensor  # tonic damping
    tanh: torch.Tensor  # bool: tanh instead of ReLU
    protection: torch.Tensor  # mood-stabiliser protection p in [0, 1]

    FIELDS = ("gain", "damping", "tanh", "protection")

    @classmethod
    def neutral(cls, m: int, device="cpu") -> Modulation:
        """No drug: gain 1, damping 1, ReLU, no protection."""
        return cls(
            gain=torch.ones(m, device=device),
            damping=torch.ones(m, device=device),
            tanh=torch.zeros(m, dtype=torch.bool, device=device),
            protection=torch.zeros(m, device=device),
        )

    def _map(self, fn) -> Modulation:
        return Modulation(**{f: fn(getattr(self, f)) for f in self.FIELDS})

    def clone(self) -> Modulation:
        return self._map(lambda t: t.clone())

    def select(self, idx: torch.Tensor) -> Modulation:
        return self._map(lambda t: t[idx].clone())

    def to(self, device) -> Modulation:
        return self._map(lambda t: t.to(device))

    @staticmethod
    def concat(mods: Sequence[Modulation]) -> Modulation:
        return Modulation(**{f: torch.cat([getattr(m, f) for m in mods]) for f in Modulation.FIELDS})

    def set(self, gain=None, damping=None, activation=None, protection=None, index=None) -> None:
        """Set values for every replica, or those at ``index``; each a scalar or one per replica,
        checked against its range (gain and damping (0, 10], protection [0, 1], 'relu' / 'tanh')."""
        idx = slice(None) if index is None else torch.as_tensor(list(index), dtype=torch.long)
        dev = self.gain.device
        if gain is not None:
            self.gain[idx] = as_param("gain", gain, 0.0, 10.0, dev, lo_open=True)
        if damping is not None:
            self.damping[idx] = as_param("damping", damping, 0.0, 10.0, dev, lo_open=True)
        if protection is not None:
            self.protection[idx] = as_param("protection", protection, 0.0, 1.0, dev)
        if activation is not None:
            names = [activation] if isinstance(activation, str) else list(activation)
            tanh = [check_choice("activation", a, ("relu", "tanh")) == "tanh" for a in names]
            self.tanh[idx] = tanh[0] if isinstance(activation, str) else torch.as_tensor(tanh, device=dev)

    def state(self) -> dict:
        return {f: getattr(self, f) for f in self.FIELDS}


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
