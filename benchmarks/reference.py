"""The common way to train masked replicas, as the reference the engine is measured against.

One ``nn.Module`` per replica, a ``DataLoader`` that reshuffles every epoch, ``torch.optim.Adam``
with its defaults, and the pruning mask multiplied into the weights after every optimiser step;
replicas are trained one after the other. This is how the studies' own notebooks train, written
once here so that ``benchmarks/bench.py`` can time the same work both ways.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from pruneplast.network import EnsembleMLP


def replica_module(net: EnsembleMLP, m: int) -> nn.Sequential:
    """Replica ``m`` of ``net`` as ``nn.Sequential`` of ``nn.Linear`` + ReLU (explicit zeros)."""
    layers: list[nn.Module] = []
    for i, (w, b) in enumerate(zip(net.weights, net.biases)):
        lin = nn.Linear(w.shape[2], w.shape[1])
        with torch.no_grad():
            lin.weight.copy_(w[m])
            lin.bias.copy_(b[m])
        layers.append(lin)
        if i < len(net.weights) - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def train_reference(
    net: EnsembleMLP,
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    lr: float = 1e-3,
    batch_size: int = 128,
    seed: int = 0,
) -> list[nn.Sequential]:
    """Train every replica of ``net`` for ``steps`` mini-batches, one replica at a time.

    x: (M, N, 2) float32 training inputs, y: (M, N) int64 labels (replica m trains on x[m]).
    Returns the trained modules; ``net`` itself is not changed.
    """
    models = []
    for m in range(net.n_replicas):
        model = replica_module(net, m)
        masks = [mk[m].to(torch.float32) for mk in net.masks]
        linears = [mod for mod in model if isinstance(mod, nn.Linear)]
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        loader = DataLoader(
            TensorDataset(x[m], y[m]),
            batch_size=batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(seed + m),
        )
        done = 0
        while done < steps:
            for xb, yb in loader:
                opt.zero_grad()
                F.cross_entropy(model(xb), yb).backward()
                opt.step()
                with torch.no_grad():
                    for lin, mk in zip(linears, masks):
                        lin.weight.mul_(mk)
                done += 1
                if done == steps:
                    break
        models.append(model)
    return models
