"""The masked MLP with an ensemble axis (Methods section 2).

One :class:`EnsembleMLP` holds M independent replicas of the 2 -> 512 -> 512 -> 256 -> 4
network. Weights are stacked as (M, out, in), biases as (M, out), masks as (M, out, in) bools;
all replicas run in lockstep through batched matrix products. Each replica carries its own gain,
damping, activation (ReLU, or tanh while the neurosteroid-like drug is on) and mood-stabiliser
protection ``p``: one :class:`~pruneplast.modulation.Modulation`. How a layer is multiplied
(dense, CSR, or only the units that can change the logits) is :mod:`pruneplast.kernels`' business;
this module is the model itself. Per hidden layer, in this order::

    h = act(W h + b)                 # (M, B, H)
    h = h + sigma_int * noise        # only for replicas with sigma_int > 0
    h = h * damping * g_eff
    h = h - 0.15 * p
    g_eff = gain if p == 0 else min(gain, max(1.05, 1.05 + (1 - p) * (gain - 1.05)))
"""

from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from .config import NetworkConfig, check_memory, check_seeds
from .inputs import check_state
from .kernels import LayerParts, denormals, dense_layers, heap, plans_for, pointwise
from .kernels.layers import kept_counts
from .modulation import PROTECTION_SHIFT, Modulation, effective_gain
from .rng import normal_blocks, replica_generators


class EnsembleMLP:
    """M independent masked MLP replicas trained and evaluated together.

    ``meta`` is one dict per replica (at least ``seed``), carried through :meth:`select` and
    :meth:`concat` so that results can be labelled by seed and condition.
    """

    def __init__(
        self,
        *,
        weights: list[torch.Tensor],
        biases: list[torch.Tensor],
        masks: list[torch.Tensor],
        meta: list[dict],
        modulation: Modulation | None = None,
    ):
        self.weights = weights  # each (M, out, in)
        self.biases = biases  # each (M, out)
        self.masks = masks  # each (M, out, in), bool
        self.meta = meta  # one dict per replica, at least its seed
        self.modulation = modulation if modulation is not None else Modulation.neutral(len(meta), weights[0].device)

    # the modulation's tensors, read and written in place as the network's
    gain = property(lambda self: self.modulation.gain)
    damping = property(lambda self: self.modulation.damping)
    tanh = property(lambda self: self.modulation.tanh)
    protection = property(lambda self: self.modulation.protection)

    # ------------------------------------------------------------------ construction
    @classmethod
    def init(cls, seeds: Sequence[int], net: NetworkConfig = NetworkConfig(), device="cpu", meta=None):
        """PyTorch's default ``nn.Linear`` initialisation, per replica, from ``torch.manual_seed(seed)``.

        Replica ``m`` gets exactly the weights of ``torch.manual_seed(seeds[m])`` followed by
        building the layers with ``nn.Linear`` in order; the global RNG state is restored after.
        ``seeds``: distinct integers (a list, range or integer array); the ensemble's memory is
        estimated first and refused above what the device has (:func:`pruneplast.config.check_memory`).
        """
        seeds = check_seeds("seeds", seeds)
        if not isinstance(net, NetworkConfig):
            raise ValueError(f"net must be a NetworkConfig; got {type(net).__name__}")
        check_memory(net, len(seeds), str(device), name="net")
        ws: list[list[torch.Tensor]] = [[] for _ in net.sizes[1:]]
        bs: list[list[torch.Tensor]] = [[] for _ in net.sizes[1:]]
        for s in seeds:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(s))
                layers = [nn.Linear(a, b) for a, b in zip(net.sizes[:-1], net.sizes[1:])]
            for i, lin in enumerate(layers):
                ws[i].append(lin.weight.detach())
                bs[i].append(lin.bias.detach())
        weights = [torch.stack(w).to(device) for w in ws]
        biases = [torch.stack(b).to(device) for b in bs]
        masks = [torch.ones_like(w, dtype=torch.bool) for w in weights]
        meta = meta if meta is not None else [{"seed": int(s)} for s in seeds]
        return cls(weights=weights, biases=biases, masks=masks, meta=[dict(d) for d in meta])

    # ------------------------------------------------------------------ properties
    @property
    def n_replicas(self) -> int:
        return len(self.meta)

    @property
    def seeds(self) -> list[int]:
        return [int(d["seed"]) for d in self.meta]

    @property
    def device(self) -> torch.device:
        return self.weights[0].device

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.weights[0].shape[2],) + tuple(w.shape[1] for w in self.weights)

    def n_parameters(self) -> int:
        """Parameters of one replica (weights + biases)."""
        return sum(w[0].numel() for w in self.weights) + sum(b[0].numel() for b in self.biases)

    def kept_per_layer(self) -> torch.Tensor:
        """(M, L) number of unmasked weights per layer."""
        return torch.stack([kept_counts(m) for m in self.masks], dim=1)

    def check_finite(self, where: str = "") -> None:
        """Raise ``FloatingPointError`` naming the replicas whose weights or biases are not finite.

        Training checks after every epoch and evaluation before it starts, so a diverging run
        (too large a learning rate, say) stops with this message instead of reporting
        accuracies of NaN weights.
        """
        # A sum is finite only if every term is (inf and NaN never sum back to a finite value), and
        # a sum costs a twentieth of a test per entry: only where a replica's sums are not all finite
        # (NaN, inf, or finite weights whose sum overflows) are its entries tested one by one.
        tensors = [t.detach().flatten(1) for t in (*self.weights, *self.biases)]
        bad = torch.zeros(self.n_replicas, dtype=torch.bool, device=self.device)
        for t in tensors:
            bad |= ~torch.isfinite(t.sum(1))
        if bool(bad.any()):
            bad = torch.zeros_like(bad)
            for t in tensors:
                bad |= ~torch.isfinite(t).all(1)
        if bool(bad.any()):
            idx = bad.nonzero().flatten().tolist()
            who = ", ".join(f"seed {self.meta[i].get('seed', i)}" for i in idx[:5]) + (" ..." if len(idx) > 5 else "")
            raise FloatingPointError(
                f"non-finite weights (NaN or inf) in {len(idx)} of {self.n_replicas} replicas ({who})"
                + (f" {where}" if where else "")
                + "; training diverged: lower the learning rate or check the inputs"
            )

    def weight_sparsity(self) -> torch.Tensor:
        """(M,) fraction of weight-matrix entries that are pruned (biases not counted)."""
        total = sum(m[0].numel() for m in self.masks)
        return 1.0 - self.kept_per_layer().sum(1).double() / total

    def parameter_sparsity(self) -> torch.Tensor:
        """(M,) fraction of all parameters (weights and biases) that are pruned."""
        n_bias = sum(b[0].numel() for b in self.biases)
        total = self.n_parameters()
        return 1.0 - (self.kept_per_layer().sum(1).double() + n_bias) / total

    # ------------------------------------------------------------------ copying
    def clone(self) -> EnsembleMLP:
        """A deep copy (tensors cloned); experiments branch from shared states with this."""
        return EnsembleMLP(
            weights=[w.clone() for w in self.weights],
            biases=[b.clone() for b in self.biases],
            masks=[m.clone() for m in self.masks],
            meta=copy.deepcopy(self.meta),
            modulation=self.modulation.clone(),
        )

    def select(self, index: Sequence[int]) -> EnsembleMLP:
        """The replicas at ``index`` (copies), in that order; an index may repeat."""
        idx = torch.as_tensor(list(index), dtype=torch.long, device=self.device)
        return EnsembleMLP(
            weights=[w[idx].clone() for w in self.weights],
            biases=[b[idx].clone() for b in self.biases],
            masks=[m[idx].clone() for m in self.masks],
            meta=[copy.deepcopy(self.meta[i]) for i in idx.tolist()],
            modulation=self.modulation.select(idx),
        )

    def repeat(self, labels: Sequence[dict]) -> EnsembleMLP:
        """Every replica once per label dict, labels varying fastest: (M * len(labels)) replicas.

        Used to run several conditions from the same states as one ensemble; each new replica's
        ``meta`` is its source's meta updated with the label.
        """
        idx = [i for i in range(self.n_replicas) for _ in labels]
        out = self.select(idx)
        for k, d in enumerate(out.meta):
            d.update(labels[k % len(labels)])
        return out

    @staticmethod
    def concat(nets: Sequence[EnsembleMLP]) -> EnsembleMLP:
        """Stack several ensembles into one (replicas in order)."""

        def cat(attr: str) -> list[torch.Tensor]:
            return [torch.cat([getattr(n, attr)[i] for n in nets]) for i in range(len(nets[0].weights))]

        return EnsembleMLP(
            weights=cat("weights"),
            biases=cat("biases"),
            masks=cat("masks"),
            meta=[copy.deepcopy(d) for n in nets for d in n.meta],
            modulation=Modulation.concat([n.modulation for n in nets]),
        )

    def to(self, device) -> EnsembleMLP:
        out = self.clone()
        for name in ("weights", "biases", "masks"):
            setattr(out, name, [t.to(device) for t in getattr(out, name)])
        out.modulation = out.modulation.to(device)
        return out

    def state_dict(self) -> dict:
        return {
            "weights": self.weights,
            "biases": self.biases,
            "masks": self.masks,
            "meta": self.meta,
            **self.modulation.state(),
        }

    @classmethod
    def from_state_dict(cls, d: dict, device="cpu") -> EnsembleMLP:
        """The ensemble of a :meth:`state_dict`, on ``device``; ``ValueError`` saying what ``d``
        holds instead when it is not one (:func:`pruneplast.inputs.check_state`)."""
        check_state(d, "state")
        mod = Modulation(**{f: d[f] for f in Modulation.FIELDS})
        return cls(weights=d["weights"], biases=d["biases"], masks=d["masks"], meta=d["meta"], modulation=mod).to(
            device
        )

    # ------------------------------------------------------------------ modulation
    def set_modulation(self, gain=None, damping=None, activation=None, protection=None, index=None):
        """Set modulation for all replicas, or those at ``index``; values are scalars or (M,)."""
        self.modulation.set(gain, damping, activation, protection, index)
        return self

    def reset_modulation(self, index=None):
        """Drug off: gain 1.0, damping 1.0, ReLU (protection left as it is)."""
        return self.set_modulation(gain=1.0, damping=1.0, activation="relu", index=index)

    def apply_masks(self) -> None:
        """Set weights at pruned positions to exactly zero (each weight times its mask's 0 or 1).

        On the CPU numpy multiplies (it converts the bool mask in vector blocks; torch's mixed-type
        ``mul_`` took three times as long on the book's 10-replica layers): the same bits. Its write
        is not an in-place operation that autograd sees: call it where no graph holds the weights
        (as training does, before its first step).
        """
        with torch.no_grad():
            for w, m in zip(self.weights, self.masks):
                if w.device.type == "cpu" and m.device.type == "cpu" and m.dtype == torch.bool:
                    a = w.detach().numpy()
                    with np.errstate(invalid="ignore"):  # inf x 0 is NaN, silently, as in torch
                        np.multiply(a, m.numpy(), out=a)
                else:
                    w.mul_(m)

    # ------------------------------------------------------------------ forward
    def plans(self, compact: bool = False, noise: bool = False) -> list:
        """One layer plan per layer for the current masks (:class:`~pruneplast.kernels.layers.LayerPlan`,
        or with ``compact`` the :class:`~pruneplast.kernels.compact.CompactLayer` of a pass with
        internal noise if ``noise``); cached until a mask changes."""
        self._plans_cache = plans_for(self.masks, compact, noise, getattr(self, "_plans_cache", None))
        return self._plans_cache[1]

    def layers(self, compact: bool = False, noise: bool = False) -> list[LayerParts]:
        """(plan, plan.split(weights), bias) per layer, as :meth:`forward` multiplies them (every
        layer dense while any weight requires gradients: regrowth scores need them everywhere)."""
        if any(w.requires_grad for w in self.weights):
            return dense_layers(self.weights, self.biases)
        return [(p, p.split(w), b) for p, w, b in zip(self.plans(compact, noise), self.weights, self.biases)]

    def forward(
        self,
        x: torch.Tensor,
        sigma_int=None,
        generators=None,
        bias=None,
        gain=None,
        record: list | None = None,
        layers=None,
        noise: list | None = None,
    ) -> torch.Tensor:
        """Logits (M, B, C) for inputs ``x`` (M, B, D).

        sigma_int: None, a float, or (M,) internal-noise SDs added after each hidden activation;
            noise for replica m is drawn from ``generators[m]`` and only where sigma_int[m] > 0.
        bias: None or (M,) constant added with the noise (the biased-stress test).
        gain: override of the gain (M,) for this pass (regrowth scores use 1.0).
        record: if a list, the mean |h| of each hidden layer (M,) is appended to it.
        layers: (plan, (dense part, sparse part), bias) per layer to use instead of the
            network's own (training passes its trainable tensors here); default :meth:`layers`.
        noise: standard-normal noise per hidden layer from :meth:`hidden_noise`, used instead of
            drawing it here (evaluation shares one draw between several protection settings).
        """
        denormals.ensure()
        heap.keep()
        m = self.n_replicas
        sig = None
        if sigma_int is not None:
            sig = torch.as_tensor(sigma_int, dtype=x.dtype, device=x.device).expand(m)
        g = self.gain if gain is None else torch.as_tensor(gain, dtype=x.dtype, device=x.device).expand(m)
        scale = (self.damping * effective_gain(g, self.protection)).view(m, 1, 1)
        shift = (PROTECTION_SHIFT * self.protection).view(m, 1, 1)
        # which steps the pass needs, read back in one transfer (on a GPU every read-back waits for
        # the device, so five separate ones would stall each pass five times)
        tests = [self.tanh.any(), self.tanh.all(), (self.protection > 0).any(), (scale != 1).any()]
        if sig is not None:
            tests.append((sig > 0).any())
        flags = torch.stack(tests).tolist()
        any_tanh, all_tanh, any_shift = flags[0], flags[1], flags[2]
        any_scale = flags[3]  # multiplying by exactly 1.0 changes nothing
        if sig is not None and not flags[4]:
            sig = None
        layers = self.layers() if layers is None else layers
        # Without autograd every step below may overwrite the fresh activation tensor in place
        # (the same arithmetic, without a new allocation per step); training needs the copies.
        inplace = not torch.is_grad_enabled()

        def modulate(h, i, sig, rows=None):
            """Noise, bias, damping x gain and protection shift after layer i's activation.

            rows: the units of the layer that h holds (compact layers), or None for all; noise is
            drawn for every unit, as in the full pass, and taken at these.
            """
            if sig is not None:
                n = (
                    noise[i]
                    if noise is not None
                    else normal_blocks((m, h.shape[1], layers[i][0].shape[1]), sig, generators, h.dtype, h.device)
                )
                if rows is not None:
                    n = n.gather(2, rows.unsqueeze(1).expand(-1, h.shape[1], -1))
                n = sig.view(m, 1, 1) * n
                h = h.add_(n) if inplace else h + n
            if bias is not None:
                h = h.add_(bias.view(m, 1, 1)) if inplace else h + bias.view(m, 1, 1)
            if any_scale:
                h = h.mul_(scale) if inplace else h * scale
            if any_shift:
                h = h.sub_(shift) if inplace else h - shift
            return h

        def act(z):
            if all_tanh:
                return z.tanh_() if inplace else torch.tanh(z)
            if any_tanh:
                return torch.where(self.tanh.view(m, 1, 1), torch.tanh(z), torch.relu(z))
            return z.relu_() if inplace else torch.relu(z)

        if record is not None and any(p.rows is not None for p, _, _ in layers):
            raise ValueError("recorded activations need every unit: use the network's own layers, not compact ones")
        h, hc = x, None  # hc: constant units' values (compact layers only), one per replica and unit
        for i, (plan, w, b) in enumerate(layers[:-1]):
            # the compiled operator's one-pass activation: with the layer's products, else after them
            one_pass = sig is None and bias is None and not any_tanh and (any_scale or any_shift)
            done = plan.forward_activated(h, w, b, hc, scale, shift) if one_pass else None
            if done is not None:
                h, zc = done
            else:
                z, zc = plan.forward_layer(h, w, b, hc)
                if zc is not None and sig is not None:
                    raise ValueError(
                        "compact layers with constant units hold only for passes without internal noise "
                        "(build them with noise=True)"
                    )
                fast = pointwise.relu_modulate(z, scale, shift) if one_pass else None  # None: operator off
                h = modulate(act(z), i, sig, plan.rows) if fast is None else fast
            hc = None if zc is None else modulate(act(zc), i, None)
            if record is not None:
                record.append(h.detach().abs().mean(dim=(1, 2)))
        plan, w, b = layers[-1]
        return plan.forward_layer(h, w, b, hc)[0]

    __call__ = forward

    def hidden_noise(self, batch: int, generators) -> list[torch.Tensor]:
        """Standard-normal noise (M, batch, H) for every hidden layer, replica m from generators[m].

        Drawn in the order :meth:`forward` would draw it (layer by layer, one block per replica),
        so a forward pass given this noise equals one that draws its own.
        """
        on = torch.ones(self.n_replicas)
        return [
            normal_blocks((self.n_replicas, batch, width), on, generators, device=self.device)
            for width in self.sizes[1:-1]
        ]

    def with_protection(self, protection: torch.Tensor) -> EnsembleMLP:
        """A view of this ensemble (same tensors, not copies) with another protection (M,)."""
        mod = Modulation(
            gain=self.gain,
            damping=self.damping,
            tanh=self.tanh,
            protection=torch.as_tensor(protection, dtype=torch.float32, device=self.device),
        )
        return EnsembleMLP(weights=self.weights, biases=self.biases, masks=self.masks, meta=self.meta, modulation=mod)

    def parameters(self) -> list[torch.Tensor]:
        return self.weights + self.biases

    def generators(self, *tags) -> list[torch.Generator]:
        """One independent random generator per replica, keyed by its meta and ``tags``."""
        return replica_generators(self.meta, tags, self.device)
