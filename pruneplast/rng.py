"""Seeded random streams, one per replica and purpose.

Every random draw after initialisation (shuffling, internal and input noise, regrowth choices and
new weights) comes from a ``torch.Generator`` seeded by a hash of the replica's seed and a tag
naming the phase (for example ``("consolidation",)``). Results therefore do not depend on the
order in which experiments run or on which other replicas share the ensemble, and conditions that
branch from the same state use the same stream: common random numbers, which sharpen paired
comparisons between conditions.
"""

from __future__ import annotations

import hashlib
from typing import Iterable

import torch


def stream_seed(seed: int, *tags) -> int:
    """A 63-bit seed derived from a replicate seed and tags (stable across runs and machines)."""
    text = repr((int(seed),) + tuple(str(t) for t in tags)).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") & ((1 << 63) - 1)


def generator(seed: int, *tags, device="cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(stream_seed(seed, *tags))
    return g


def replica_generators(meta: Iterable[dict], tags: tuple, device="cpu") -> list[torch.Generator]:
    """One generator per replica, keyed on the replica's seed and ``tags``."""
    return [generator(int(d["seed"]), *tags, device=device) for d in meta]
