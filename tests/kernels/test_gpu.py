"""The engine on a CUDA device: these run only where a GPU is present (skipped elsewhere, saying so).

A GPU draws other random streams and sums in another order than the CPU, so its results are its
own result set: compared here with the CPU's within loose bounds, not bit for bit. What is checked
is what is known to break on a device: the fused Adam's step counter (it must live on the
tensors' device), the CSR products of the sparse group (index dtypes), the per-replica noise, and
host synchronisations in a forward pass (one read-back per pass).
"""

from __future__ import annotations

import warnings

import pytest
import torch

from pruneplast.config import NetworkConfig, PruneConfig, RegrowConfig, TaskConfig, TrainConfig
from pruneplast.data import EnsembleData
from pruneplast.kernels.adam import Adam
from pruneplast.network import EnsembleMLP
from pruneplast.operators import prune, regrow, train
from pruneplast.stress import evaluate

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")

NET = NetworkConfig(sizes=(2, 64, 64, 32, 4))
TASK = TaskConfig(n_train=512, n_standard=500, n_clean=100)


def test_adam_keeps_its_step_counter_on_the_device():
    p = torch.zeros(3, 4, device="cuda")
    opt = Adam([p], lr=1e-3)
    assert opt.step_count.device == p.device
    opt.step([torch.ones_like(p)])
    assert float(opt.step_count) == 1.0 and bool((p < 0).all())


@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.95])  # dense, mixed and CSR (sparse) groups
def test_training_on_the_device_matches_the_cpu_loosely(sparsity):
    seeds = [0, 1]
    out = {}
    for dev in ("cpu", "cuda"):
        data = EnsembleData.build(seeds, TASK, device=dev)
        net = EnsembleMLP.init(seeds, NET, device=dev)
        train(net, data, TrainConfig(epochs=2, lr=3e-3), tag="baseline")
        if sparsity > 0:
            prune(net, sparsity)
            regrow(net, data, RegrowConfig(fraction=0.5), tag="regrow")
            train(net, data, TrainConfig(epochs=1, lr=5e-4), tag="consolidation", sigma_int=0.5)
        acc = evaluate(net, data, ("clean", "standard"))
        out[dev] = acc[acc.metric == "accuracy"].value.to_numpy()
        assert all(bool(torch.isfinite(w).all()) for w in net.weights)
    assert abs(out["cpu"] - out["cuda"]).max() < 15  # percentage points: other streams, same model


def test_a_forward_pass_reads_back_from_the_device_once():
    data = EnsembleData.build([0, 1], TASK, device="cuda")
    net = prune(EnsembleMLP.init([0, 1], NET, device="cuda"), 0.9)
    x = data.x["standard"][:, :64]
    net(x, sigma_int=0.5, generators=net.generators("eval"))  # warm-up
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            with torch.no_grad():
                net(x, sigma_int=0.5, generators=net.generators("eval"))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in seen if "synchroniz" in str(w.message)]
    assert len(syncs) <= 1, [str(w.message) for w in syncs]


def test_pruning_on_the_device_keeps_the_cpu_masks():
    cpu = EnsembleMLP.init([0, 1], NET)
    gpu = cpu.to("cuda")
    prune(cpu, 0.9)
    prune(gpu, 0.9)
    for a, b in zip(cpu.masks, gpu.masks):
        assert torch.equal(a, b.cpu())
    assert PruneConfig().scope == "layer"


def test_sparse_plans_on_the_device_use_32_bit_indices():
    from pruneplast.kernels.layers import LayerPlan

    net = prune(EnsembleMLP.init([0, 1], NET, device="cuda"), 0.95)
    plan = LayerPlan(net.masks[1])
    assert plan.ms == 2 and plan.crow.dtype == plan.col.dtype == torch.int32
    cpu = LayerPlan(net.masks[1].cpu())
    assert cpu.crow.dtype == torch.int64 and torch.equal(plan.crow.cpu().long(), cpu.crow)


def test_data_on_another_device_is_refused_by_every_operator():
    """A network on the GPU and its data on the CPU: a ValueError naming the argument, not a torch error."""
    net = prune(EnsembleMLP.init([0], NET, device="cuda"), 0.5)
    data = EnsembleData.build([0], TASK)  # on the CPU
    for call in (
        lambda: train(net, data, TrainConfig(epochs=1)),
        lambda: regrow(net, data, RegrowConfig(score_batches=1)),
        lambda: evaluate(net, data, ["standard"]),
    ):
        with pytest.raises(ValueError, match=r"data\.x\['train'\]: is on cpu but the network is on cuda:0"):
            call()
