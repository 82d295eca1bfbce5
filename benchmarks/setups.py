"""The networks the bench measures and the sizes it counts in (``make bench``, :mod:`bench`).

One replica is 2-512-512-256-4; the book trains mini-batches of 128 over a 12,000-sample training
set. Networks start from each seed's default initialisation, magnitude-pruned; chapter 6's
maintenance networks (:data:`MAINTENANCE`) have the drug and the mood stabiliser on.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

from pruneplast.config import RegrowConfig, TaskConfig
from pruneplast.data import EnsembleData
from pruneplast.network import EnsembleMLP
from pruneplast.operators import prune, regrow

N_WEIGHTS = 395_264  # weights of one replica (2-512-512-256-4)
FLOP_PER_SAMPLE = 6 * N_WEIGHTS  # dense forward (2) + backward (4) per weight and sample
BATCH = 128
EPOCH_STEPS = -(-12_000 // BATCH)  # mini-batches in one epoch of the book's training set (94)
SHORT_STEPS = 16  # a short phase: its set-up weighs about 6x more per step than in a full epoch


#: The two large layers (out, in) of a replica; the first (2 inputs) and last (4 outputs) are small.
LARGE_LAYERS = ((512, 512), (256, 512))


def pruned_init(seeds, sparsity: float) -> EnsembleMLP:
    """Replicas of ``seeds`` at their default initialisation, magnitude-pruned to ``sparsity``."""
    net = EnsembleMLP.init(list(seeds))
    if sparsity > 0:
        prune(net, sparsity)
    return net


def replicas(m: int, sparsity: float, task: TaskConfig) -> tuple[EnsembleMLP, EnsembleData]:
    """M replicas at their default initialisation, magnitude-pruned to ``sparsity``, and data."""
    net = pruned_init(range(m), sparsity)
    return net, EnsembleData.build(net.seeds, task)


#: Chapter 6's maintenance per treatment: (sparsity, modulation with the drug and mood stabiliser on).
MAINTENANCE = {
    "ketamine": (0.475, dict(gain=1.25, protection=1.0)),
    "ssri": (0.95, dict(gain=1.6, protection=1.0)),
    "neurosteroid": (0.95, dict(gain=0.85, damping=0.7, activation="tanh", protection=1.0)),
}


def maintenance_replicas(name: str, m: int, task: TaskConfig) -> tuple[EnsembleMLP, EnsembleData]:
    """M replicas shaped like chapter 6's networks of one treatment, drug and mood stabiliser on.

    95% magnitude-pruned initialisations; the ketamine-like ones then regrow half of their pruned
    weights by gradient (as the treatment does), which leaves 47.5% sparsity and the unit structure
    gradient regrowth produces (first-layer units without input stay without input).
    """
    net, data = replicas(m, 0.95, task)
    if name == "ketamine":
        regrow(net, data, RegrowConfig(fraction=0.5))
    return net.set_modulation(**MAINTENANCE[name][1]), data


def max_weight_diff(a: EnsembleMLP, b: EnsembleMLP) -> float:
    """Largest absolute difference between two ensembles' weights and biases."""
    return max(float((x - y).abs().max()) for x, y in zip(a.weights + a.biases, b.weights + b.biases))


@contextlib.contextmanager
def fresh_cache(prefix: str = "pruneplast-bench-"):
    """An empty engine cache for the block (``PRUNEPLAST_CACHE``, read by this process and by the
    workers it starts), removed after it; the caller's setting is put back."""
    before = os.environ.get("PRUNEPLAST_CACHE")
    with tempfile.TemporaryDirectory(prefix=prefix) as cache:
        os.environ["PRUNEPLAST_CACHE"] = cache
        try:
            yield cache
        finally:
            if before is None:
                os.environ.pop("PRUNEPLAST_CACHE", None)
            else:
                os.environ["PRUNEPLAST_CACHE"] = before
