"""A compiled training step for sparse phases: forward, backward and Adam in one operator.

Opt-in: with ``PRUNEPLAST_FUSED=1``, :func:`pruneplast.operators.train` trains a phase whose every
layer the engine would multiply as CSR (each replica's kept fraction below
:data:`~pruneplast.kernels.layers.SPARSE_BELOW`: the 95%-sparse phases) with the C++ operator of
``fused.cpp``, each replica on one task of torch's thread pool. It computes what the engine
computes (the live units, the constant-unit fold, ReLU or tanh, internal noise drawn from the same
random streams, damping, the capped gain and the protection shift, Adam with one learning rate
per replica) in another order of floating-point sums, so its results differ from the standard
path's in the last bits: cached states trained with it have their own keys (:func:`cache_tag`),
and every result records the switch (:data:`pruneplast.machine.FLOAT_PATH_VARIABLES`, part of the
bitwise key). It is not the default: a phase is fused only where every replica of the ensemble is
sparse, so on this path a replica's bits would depend on which replicas share its ensemble (a
47.5%-sparse ketamine-like replica beside it sends the whole ensemble down the standard path).

The operator is compiled at first use (``torch.utils.cpp_extension``, about half a minute) into
``<cache>/fused/`` (``$PRUNEPLAST_CACHE``) and reused while its source, torch and the processor
stay the same. Where it cannot be built (no compiler, or ``PRUNEPLAST_NO_COMPILE=1``), training
takes the standard path after one warning line saying so. Tested in ``tests/kernels/test_fused.py``.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import sys
from pathlib import Path
from typing import Sequence

import torch

from ..modulation import PROTECTION_SHIFT, effective_gain
from .compact import unit_roles
from .layers import SPARSE_BELOW

SOURCE = Path(__file__).with_name("fused.cpp")
#: ``1`` selects the fused step for sparse phases; ``0`` or unset, the standard path.
ENV = "PRUNEPLAST_FUSED"
#: ``1``: never compile (the fused step falls back to the standard path).
NO_COMPILE_ENV = "PRUNEPLAST_NO_COMPILE"
#: Compiler flags: the machine's vector units, no contraction into fused multiply-adds (a result
#: does not depend on the instruction set), square roots without errno (vectorised).
FLAGS = ("-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno")

_loaded: dict = {}  # "module": the compiled module or None (fallen back), once per process


def _switch(name: str) -> bool:
    value = os.environ.get(name, "0").strip()
    if value not in ("", "0", "1"):
        raise ValueError(f"{name} must be 0 or 1; got {value!r}")
    return value == "1"


def requested() -> bool:
    """Whether ``PRUNEPLAST_FUSED=1`` asks for the fused step (``ValueError`` for another value)."""
    return _switch(ENV)


def _processor() -> str:
    """What the compiled code depends on besides its source: the processor's model and flags."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    lines = [ln for ln in text.splitlines() if ln.startswith(("model name", "flags"))]
    return "\n".join(dict.fromkeys(lines))


def _build_name() -> str:
    h = hashlib.sha256()
    for part in (SOURCE.read_bytes(), torch.__version__.encode(), " ".join(FLAGS).encode(), _processor().encode()):
        h.update(part)
        h.update(b"\0")
    return "pruneplast_fused_" + h.hexdigest()[:16]


def why_not_compiled() -> str | None:
    """Why the operator cannot be built here (a line), or None where it can."""
    if _switch(NO_COMPILE_ENV):
        return f"{NO_COMPILE_ENV}=1"
    cxx = os.environ.get("CXX", "c++")
    if shutil.which(cxx) is None:
        return f"no C++ compiler ({cxx}) was found"
    from torch.utils.cpp_extension import is_ninja_available

    if not is_ninja_available():
        return "ninja, which torch uses to compile operators, was not found"
    return None


def load():
    """The compiled operator, built at first use; None (after one warning line) where it cannot be."""
    if "module" in _loaded:
        return _loaded["module"]
    module, reason = None, why_not_compiled()
    if reason is None:
        from torch.utils.cpp_extension import load as build

        from ..results import cache_root

        name = _build_name()
        where = cache_root() / "fused" / name
        try:
            where.mkdir(parents=True, exist_ok=True)
            module = build(name, [str(SOURCE)], extra_cflags=list(FLAGS), build_directory=str(where), verbose=False)
        except Exception as exc:  # a compiler that fails, a folder that cannot be written
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            reason = f"the operator could not be built in {where} ({type(exc).__name__}: {first})"
    if module is None:
        print(f"warning: {ENV}=1 but {reason}; training takes the standard path", file=sys.stderr, flush=True)
    _loaded["module"] = module
    return module


def active() -> bool:
    """Whether sparse phases train with the fused step: asked for and built."""
    return requested() and load() is not None


def cache_tag() -> str:
    """Part of a cached state's key: empty on the standard path; with the fused step, a name for it
    and a hash of its source (its results differ from the standard path's in the last bits)."""
    if not active():
        return ""
    return "fused:" + hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]


def applies(weights: Sequence[torch.Tensor], masks: Sequence[torch.Tensor], compact: bool) -> bool:
    """Whether a phase trains with the fused step: asked for, built, compact, float32 on the CPU,
    every replica's every layer below :data:`SPARSE_BELOW` kept."""
    if not compact or not requested():
        return False
    if any(w.device.type != "cpu" or w.dtype != torch.float32 for w in weights):
        return False
    if not all(bool((m.flatten(1).sum(1) < SPARSE_BELOW * m[0].numel()).all()) for m in masks):
        return False
    return load() is not None


class FusedStep:
    """The trainable entries of one phase (fixed masks) and their Adam state, stepped by the operator.

    Per replica and layer the computed rows are the live units, then the constant units (with
    ``noise``, every unit that reaches a logit is live); their kept weights are stored row by row,
    those from live units first.
    ``lr``: one learning rate, or one per replica. :meth:`__call__` takes one step;
    :meth:`write_back` copies the trained entries into the ensemble's tensors.
    """

    def __init__(self, net, lr, noise: bool, batch_size: int, betas=(0.9, 0.999), eps: float = 1e-8):
        module = load()
        if module is None:
            raise RuntimeError("the fused step is not built (see the warning above)")
        self.module = module
        self.net = net
        masks = net.masks
        m, n_layers, d = net.n_replicas, len(masks), masks[0].shape[2]
        live, const = unit_roles(masks, noise)
        units, n_live = [], []  # per layer, per replica: computed units (live first) and the live count
        for i, mk in enumerate(masks):
            if i < n_layers - 1:
                units.append([torch.cat([live[i][r].nonzero()[:, 0], const[i][r].nonzero()[:, 0]]) for r in range(m)])
                n_live.append([int(live[i][r].sum()) for r in range(m)])
            else:
                units.append([torch.arange(mk.shape[1])] * m)
                n_live.append([mk.shape[1]] * m)
        cols, rowptr, mids, unit_list, desc = [], [], [], [], []
        w_param: list[list[torch.Tensor]] = [[] for _ in masks]  # per layer: entry indices, flat positions
        w_pos: list[list[torch.Tensor]] = [[] for _ in masks]
        b_row: list[list[int]] = [[] for _ in masks]
        b_pos: list[list[torch.Tensor]] = [[] for _ in masks]
        n_ent = n_rows_all = n_ptr = n_ws = 0
        for r in range(m):
            xt_off = n_ws
            n_ws += d * batch_size
            for i, mk in enumerate(masks):
                out, inn = mk.shape[1:]
                u = units[i][r]
                sub = mk[r][u]  # (rows, in)
                row, k = sub.nonzero(as_tuple=True)  # row-major: rows in order, columns ascending
                if i > 0:
                    pos = torch.full((inn,), -1, dtype=torch.long)
                    pos[units[i - 1][r]] = torch.arange(len(units[i - 1][r]))
                    col = pos[k]
                    if bool((col < 0).any()):
                        raise AssertionError("a kept weight from a unit that is not computed")
                else:
                    col = k
                order = torch.argsort(row * (inn + 1) + col)  # per row: live inputs, then constant ones
                row, k, col = row[order], k[order], col[order]
                cols.append(col)
                counts = torch.bincount(row, minlength=len(u))
                start = n_ent + torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(counts, 0)])
                rowptr.append(start)
                n_prev_live = d if i == 0 else n_live[i - 1][r]
                mids.append(start[:-1] + torch.bincount(row[col < n_prev_live], minlength=len(u)))
                unit_list.append(u)
                w_param[i].append(torch.arange(n_ent, n_ent + len(k)))
                w_pos[i].append((r * out + u[row]) * inn + k)
                b_row[i].extend(range(n_rows_all, n_rows_all + len(u)))
                b_pos[i].append(r * out + u)
                nl, nr = n_live[i][r], len(u)
                desc.append([n_rows_all, nl, nr, n_ptr, n_ws, out, xt_off])
                n_ws += 3 * nl * batch_size + 3 * (nr - nl)
                n_ent += len(k)
                n_rows_all += nr
                n_ptr += nr + 1
        self.n_entries = n_ent
        self.cols = torch.cat(cols).to(torch.long)
        self.rowptr = torch.cat(rowptr)
        self.mid = torch.cat(mids)  # per computed row: where its entries from constant units begin
        self.units = torch.cat(unit_list).to(torch.long)
        self.desc = torch.tensor(desc, dtype=torch.long).view(m, n_layers, 7)
        self.work = torch.zeros(n_ws)
        self.w_param = [torch.cat(t) for t in w_param]
        self.w_pos = [torch.cat(t) for t in w_pos]
        self.b_param = [n_ent + torch.tensor(t, dtype=torch.long) for t in b_row]
        self.b_pos = [torch.cat(t) for t in b_pos]
        with torch.no_grad():
            params = torch.zeros(n_ent + n_rows_all)
            for i, (w, b) in enumerate(zip(net.weights, net.biases)):
                params[self.w_param[i]] = w.reshape(-1)[self.w_pos[i]]
                params[self.b_param[i]] = b.reshape(-1)[self.b_pos[i]]
        self.params = params
        self.grads = torch.zeros_like(params)
        self.exp_avg = torch.zeros_like(params)
        self.exp_avg_sq = torch.zeros_like(params)
        self.lr = torch.as_tensor(lr, dtype=torch.float64).flatten().expand(m).contiguous()
        self.betas, self.eps = betas, eps
        self.steps = 0
        self.batch_size = batch_size
        self._mod: tuple | None = None

    def _modulation(self):
        """(tanh, scale, shift) per replica, as :meth:`EnsembleMLP.forward` computes them."""
        mod = self.net.modulation
        key = tuple((id(t), t._version) for t in (mod.gain, mod.damping, mod.tanh, mod.protection))
        if self._mod is None or self._mod[0] != key:
            scale = (mod.damping * effective_gain(mod.gain, mod.protection)).contiguous()
            shift = (PROTECTION_SHIFT * mod.protection).contiguous()
            self._mod = (key, (mod.tanh.contiguous(), scale, shift))
        return self._mod[1]

    def __call__(self, x: torch.Tensor, y: torch.Tensor, sigma: float = 0.0, noise=None) -> torch.Tensor:
        """One step on the mini-batch x (M, B, D), y (M, B); ``noise``: standard-normal noise per
        hidden layer (M, B, width) when ``sigma`` > 0. Returns each replica's mean cross-entropy (M,)
        before the step."""
        m, b = y.shape
        if b > self.batch_size:
            raise ValueError(f"batch of {b} samples; this step holds work space for {self.batch_size}")
        tanh, scale, shift = self._modulation()
        self.steps += 1
        sig = torch.full((m,), float(sigma))
        nz = [] if noise is None or sigma <= 0 else [t.contiguous() for t in noise]
        loss = self.module.step(
            self.params,
            self.grads,
            self.exp_avg,
            self.exp_avg_sq,
            self.rowptr,
            self.mid,
            self.cols,
            self.units,
            self.desc,
            self.work,
            x.contiguous(),
            y.contiguous(),
            nz,
            sig,
            tanh,
            scale,
            shift,
            self.lr,
            float(self.steps),
            float(self.betas[0]),
            float(self.betas[1]),
            float(self.eps),
            self.n_entries,
        )
        return (loss / b).to(torch.float32)

    def write_back(self, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor]) -> None:
        """Copy the trained entries into the ensemble's weights and biases, in place."""
        with torch.no_grad():
            for i, (w, bias) in enumerate(zip(weights, biases)):
                w.view(-1)[self.w_pos[i]] = self.params[self.w_param[i]]
                bias.view(-1)[self.b_pos[i]] = self.params[self.b_param[i]]
