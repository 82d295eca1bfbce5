"""End to end on the full task: one baseline replicate through the pruning cliff and back.

Seed 0, full data (12,000 training points) and the full 2-512-512-256-4 network: 20 epochs of
baseline training, 95% per-layer pruning, 50% gradient-guided regrowth and 15 epochs of
consolidation, with the accuracies the studies report as the shape of the result.
"""

from __future__ import annotations

import pytest

from pruneplast.config import BASELINE, CONSOLIDATION, PruneConfig, RegrowConfig
from pruneplast.data import EnsembleData
from pruneplast.network import EnsembleMLP
from pruneplast.operators import prune, regrow, train
from pruneplast.stress import accuracy


@pytest.mark.slow
def test_baseline_cliff_and_recovery_on_the_full_task(record_property):
    data = EnsembleData.build([0])
    net = EnsembleMLP.init([0])
    train(net, data, BASELINE, tag="baseline")
    figures = {
        "baseline_standard": float(accuracy(net, data, "standard")[0]),
        "baseline_combined": float(accuracy(net, data, "combined")[0]),
    }
    prune(net, PruneConfig(sparsity=0.95))
    figures["pruned_weight_sparsity"] = 100 * float(net.weight_sparsity()[0])
    figures["pruned_combined"] = float(accuracy(net, data, "combined")[0])
    regrow(net, data, RegrowConfig(fraction=0.5, method="gradient"))
    train(net, data, CONSOLIDATION, tag="consolidation")
    figures["recovered_weight_sparsity"] = 100 * float(net.weight_sparsity()[0])
    figures["recovered_standard"] = float(accuracy(net, data, "standard")[0])
    figures["recovered_combined"] = float(accuracy(net, data, "combined")[0])
    for k, v in figures.items():
        record_property(k, round(v, 2))
    print("end-to-end figures:", {k: round(v, 2) for k, v in figures.items()})
    assert figures["baseline_standard"] >= 99.0
    assert round(figures["pruned_weight_sparsity"], 1) == 95.0
    assert figures["pruned_combined"] < 45.0
    assert round(figures["recovered_weight_sparsity"], 1) == 47.5
    assert figures["recovered_combined"] > 95.0
