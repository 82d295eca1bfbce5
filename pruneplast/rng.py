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


def normal_blocks(shape, sig: torch.Tensor, generators, dtype=torch.float32, device="cpu") -> torch.Tensor:
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
