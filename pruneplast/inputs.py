"""What an operator is given, checked before it runs: one helper for every operator and loader.

An operator (:mod:`pruneplast.operators`, :mod:`pruneplast.stress`) takes an ensemble, often its
data, sometimes per-layer tensors built for it (regrowth scores, grown sets). Each must belong to
the others: the same replicas (count and seeds), shapes that chain, the engine's dtypes (float32
weights and inputs, bool masks, int64 labels) and one device. A mismatch is a ``ValueError``
naming the argument and what it holds, raised before any work, instead of a torch error deep in
a batched product or, worse, a silent result for data built for other replicas.

A cached state read back from disk (:func:`check_state`) is checked the same way, so a file that
loads but holds something else is reported and recomputed rather than failing with ``KeyError``.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from .data import SPLITS, EnsembleData

FLOAT = torch.float32  # the engine's weights, biases, inputs and modulation values
MODULATION_DTYPES = {"gain": FLOAT, "damping": FLOAT, "tanh": torch.bool, "protection": FLOAT}
STATE_KEYS = ("weights", "biases", "masks", "meta", *MODULATION_DTYPES)
ENSEMBLE_PARTS = ("weights", "biases", "masks", "meta", "modulation")  # an EnsembleMLP's attributes


def _fail(name: str, what: str) -> ValueError:
    return ValueError(f"{name}: {what}")


def _tensor(name: str, t: Any, dtype: torch.dtype, shape: tuple, device: torch.device | None) -> None:
    if not isinstance(t, torch.Tensor):
        raise _fail(name, f"must be a tensor; got {type(t).__name__}")
    if t.dtype != dtype:
        raise _fail(
            name,
            f"has dtype {t.dtype}, but the engine computes in {dtype} (convert it with .to({dtype}); "
            "float64 networks are not supported)"
            if dtype == FLOAT
            else f"has dtype {t.dtype}; expected {dtype}",
        )
    if tuple(t.shape) != tuple(shape):
        raise _fail(name, f"has shape {tuple(t.shape)}; expected {tuple(shape)}")
    if device is not None and t.device != device:
        raise _fail(name, f"is on {t.device} but the network is on {device}; move it with .to({str(device)!r})")


def _check_parts(
    name: str,
    weights: Any,
    biases: Any,
    masks: Any,
    meta: Any,
    modulation: dict,
    sizes: Sequence[int] | None = None,
    seeds: Sequence[int] | None = None,
    same_device: bool = True,
) -> None:
    """The tensors of an ensemble (or of its state dict) fit together; see :func:`check_network`."""
    if not isinstance(meta, list) or not all(isinstance(d, dict) and "seed" in d for d in meta):
        raise _fail(f"{name} meta", "must be a list of one dict per replica, each with its 'seed'")
    m = len(meta)
    if m < 1:
        raise _fail(name, "holds 0 replicas; an ensemble needs at least 1 (seeds must not be empty)")
    for what, ts in (("weights", weights), ("biases", biases), ("masks", masks)):
        if not isinstance(ts, (list, tuple)) or len(ts) < 1:
            raise _fail(f"{name} {what}", "must be a non-empty list of tensors, one per layer")
    if not (len(weights) == len(biases) == len(masks)):
        counts = f"{len(weights)} weight, {len(biases)} bias and {len(masks)} mask tensors"
        raise _fail(name, f"has {counts}; one each per layer")
    if not isinstance(weights[0], torch.Tensor) or weights[0].dim() != 3:
        raise _fail(f"{name}.weights[0]", "must be a (replicas, out, in) tensor")
    device = weights[0].device if same_device else None
    width = weights[0].shape[2]
    for i, (w, b, k) in enumerate(zip(weights, biases, masks)):
        if not isinstance(w, torch.Tensor) or w.dim() != 3:
            raise _fail(f"{name}.weights[{i}]", "must be a (replicas, out, in) tensor")
        out = w.shape[1]
        _tensor(f"{name}.weights[{i}]", w, FLOAT, (m, out, width), device)
        _tensor(f"{name}.biases[{i}]", b, FLOAT, (m, out), device)
        _tensor(f"{name}.masks[{i}]", k, torch.bool, (m, out, width), device)
        width = out
    for f, dtype in MODULATION_DTYPES.items():
        _tensor(f"{name} {f}", modulation.get(f), dtype, (m,), device)
    if sizes is not None:
        got = (weights[0].shape[2], *(w.shape[1] for w in weights))
        if tuple(got) != tuple(sizes):
            raise _fail(name, f"has layer sizes {tuple(got)}; expected {tuple(sizes)}")
    if seeds is not None:
        got_seeds = [d["seed"] for d in meta]  # compared as given: a seed of another type is another seed
        if got_seeds != list(seeds):
            raise _fail(name, f"holds replicas of seeds {got_seeds}; expected {list(seeds)}")


def check_network(net: Any, name: str = "net") -> None:
    """``net`` is an :class:`~pruneplast.network.EnsembleMLP` with at least one replica whose
    tensors fit together: (M, out, in) float32 weights chaining layer to layer, (M, out) float32
    biases, bool masks of the weights' shapes, (M,) modulation values, all on one device.

    The ensemble is recognised by its parts (this module imports no model module, so that
    :mod:`pruneplast.network` can check the states it loads here); the parts are then checked."""
    if not all(hasattr(net, part) for part in ENSEMBLE_PARTS):
        raise _fail(name, f"must be an EnsembleMLP; got {type(net).__name__}")
    _check_parts(name, net.weights, net.biases, net.masks, net.meta, net.modulation.state())


def check_data(net: Any, data: Any, name: str = "data") -> None:
    """``data`` is the :class:`~pruneplast.data.EnsembleData` of ``net``'s replicas: the same
    seeds in the same order, (M, N, inputs) float32 inputs and (M, N) int64 labels with N >= 1,
    on the network's device."""
    if not isinstance(data, EnsembleData):
        raise _fail(name, f"must be an EnsembleData; got {type(data).__name__}")
    if data.n_replicas != net.n_replicas or list(data.seeds) != net.seeds:
        raise ValueError(
            f"{name} holds replicas {list(data.seeds)} but the network holds {net.seeds}; "
            "build the data for the network's seeds (EnsembleData.for_replicas(net.seeds))"
        )
    m, d = net.n_replicas, net.weights[0].shape[2]
    for split in SPLITS:
        x, y = data.x.get(split), data.y.get(split)
        if not isinstance(x, torch.Tensor) or x.dim() != 3:
            raise _fail(f"{name}.x[{split!r}]", "must be a (replicas, samples, inputs) tensor")
        n = x.shape[1]
        if n < 1:
            raise _fail(f"{name}.x[{split!r}]", "holds 0 samples; every split needs at least 1")
        _tensor(f"{name}.x[{split!r}]", x, FLOAT, (m, n, d), net.device)
        _tensor(f"{name}.y[{split!r}]", y, torch.int64, (m, n), net.device)


def check_like(name: str, tensors: Any, net: Any, dtype: torch.dtype) -> None:
    """One tensor per layer with the shape of that layer's weights (M, out, in), ``dtype``, on the
    network's device: regrowth scores (float32) and grown sets (bool) built for ``net``."""
    n = len(net.weights)
    if not isinstance(tensors, (list, tuple)) or len(tensors) != n:
        got = len(tensors) if isinstance(tensors, (list, tuple)) else type(tensors).__name__
        raise _fail(name, f"must be a list of one tensor per layer ({n}); got {got}")
    for i, (t, w) in enumerate(zip(tensors, net.weights)):
        _tensor(f"{name}[{i}]", t, dtype, tuple(w.shape), net.device)


def check_state(state: Any, name: str = "state", sizes=None, seeds=None) -> None:
    """``state`` is an ensemble's :meth:`~pruneplast.network.EnsembleMLP.state_dict` (optionally of
    the given layer sizes and replica seeds); else ``ValueError`` saying what it holds instead."""
    if not isinstance(state, dict):
        raise _fail(name, f"is a {type(state).__name__}, not a network's state dict")
    missing = [k for k in STATE_KEYS if k not in state]
    if missing:
        raise _fail(name, f"is not a network's state dict (no {', '.join(map(repr, missing))})")
    _check_parts(
        name,
        state["weights"],
        state["biases"],
        state["masks"],
        state["meta"],
        {f: state[f] for f in MODULATION_DTYPES},
        sizes,
        seeds,
    )
