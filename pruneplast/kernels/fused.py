"""A compiled training step for sparse phases: forward, backward and Adam in one operator.

On by default (``PRUNEPLAST_FUSED`` unset or ``1``; ``0`` keeps every phase on the standard path):
:func:`pruneplast.operators.train` trains each replica whose every layer the engine would multiply
as CSR (kept fraction below :data:`~pruneplast.kernels.layers.SPARSE_BELOW`: the 95%-sparse
replicas) with the C++ operator of ``fused.cpp``, each replica on one task of torch's thread pool;
the other replicas of the ensemble train on the standard path beside them, as an ensemble of their
own. On the CPU a replica gets the same bits whichever replicas share its ensemble, on either
path: the operator takes each replica alone, CSR products sum each row's kept weights, and the
dense products of a compact block (padded to the ensemble's largest count of live units) run over
each replica's own units where every replica of the block is dense
(:func:`~pruneplast.kernels.compact.ragged_linear`; :class:`~pruneplast.kernels.compact.CompactLayer`
names the exceptions; on a GPU they stay batched). The operator computes what the engine computes
(the live units, the constant-unit fold, ReLU or tanh, internal noise drawn from the same
random streams, damping, the capped gain and the protection shift, Adam with one learning rate per
replica) in another order of floating-point sums, so its results differ from the standard path's
in the last bits: cached states trained with it have their own keys (:func:`cache_tag`), and every
result records the path (:func:`path`, part of the bitwise key in :mod:`pruneplast.machine`). The
same operator holds the pointwise kernels that :mod:`.pointwise` gives the standard path of the
other replicas while it is on (their fold sums in another order too: the same key covers them).

The operator is compiled once per machine (``torch.utils.cpp_extension``, about half a minute) at
the first use or by ``python -m pruneplast.kernels.fused`` (``make install`` runs it), into
``$XDG_CACHE_HOME/pruneplast/fused/`` (``~/.cache/pruneplast/fused/``), and reused while its
source, torch and the processor stay the same. Processes that need it at the same time build it
once: one builds (under a lock the system releases if the process dies) into a temporary folder
that is renamed into place when complete; the others wait for it and load it. Where it is not built
and cannot be (no compiler), or with ``PRUNEPLAST_NO_COMPILE=1``, training takes the standard path
after one warning line saying so. Tested in ``tests/kernels/test_fused.py``.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..modulation import PROTECTION_SHIFT, effective_gain
from .layers import SPARSE_BELOW, kept_counts
from .roles import unit_roles

SOURCE = Path(__file__).with_name("fused.cpp")
#: ``1`` or unset: sparse replicas train with the fused step where it can be built; ``0``: the standard path.
ENV = "PRUNEPLAST_FUSED"
#: ``1``: never compile (the fused step falls back to the standard path).
NO_COMPILE_ENV = "PRUNEPLAST_NO_COMPILE"
#: Compiler flags: the machine's vector units, no contraction into fused multiply-adds (a result
#: does not depend on the instruction set), square roots without errno (vectorised).
FLAGS = ("-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno")

_loaded: dict = {}  # "module": the compiled module or None (fallen back), once per process


def _switch(name: str, default: str = "0") -> bool:
    value = os.environ.get(name, default).strip() or default
    if value not in ("0", "1"):
        raise ValueError(f"{name} must be 0 or 1; got {value!r}")
    return value == "1"


def requested() -> bool:
    """Whether the fused step is asked for: ``PRUNEPLAST_FUSED`` unset or ``1`` (the default), not
    ``0`` (``ValueError`` for another value)."""
    return _switch(ENV, "1")


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


def build_root() -> Path:
    """Where compiled operators are kept, once per machine and user: ``$XDG_CACHE_HOME/pruneplast/fused``,
    else ``~/.cache/pruneplast/fused`` (not under ``$PRUNEPLAST_CACHE``, which a run may point at a
    fresh folder: the operator would be compiled again for every such run)."""
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(base) if base else Path.home() / ".cache") / "pruneplast" / "fused"


def _import(name: str, library: Path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, library)
    if spec is None or spec.loader is None:
        raise ImportError(f"{library} is not a loadable module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _build(name: str):
    """The compiled module ``name``: loaded from :func:`build_root` where built, else built there.

    One process builds at a time (an ``flock`` on ``<name>.lock``, released by the system if the
    process dies); it builds in a temporary folder that is renamed to ``<name>`` only when complete,
    so a folder named ``<name>`` always holds a whole build, and the processes that waited load it."""
    import fcntl

    root = build_root()
    final = root / name
    library = final / f"{name}.so"
    if library.exists():
        return _import(name, library)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # waits while another process builds
        try:
            if library.exists():
                return _import(name, library)
            for stale in root.glob(f".{name}.*.tmp"):  # left by a build that was killed
                shutil.rmtree(stale, ignore_errors=True)
            tmp = root / f".{name}.{os.getpid()}.tmp"
            tmp.mkdir()
            from torch.utils.cpp_extension import load as compile_and_load

            try:
                module = compile_and_load(
                    name, [str(SOURCE)], extra_cflags=list(FLAGS), build_directory=str(tmp), verbose=False
                )
                shutil.rmtree(final, ignore_errors=True)  # a folder without its library: not a build
                os.replace(tmp, final)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            return module
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def load():
    """The compiled operator, built at first use; None (after one warning line) where it cannot be
    built or where ``PRUNEPLAST_FUSED=0`` keeps it off."""
    if "module" in _loaded:
        return _loaded["module"]
    if not requested():
        return None  # not cached: the switch may be set later in this process
    module, reason = None, f"{NO_COMPILE_ENV}=1" if _switch(NO_COMPILE_ENV) else None
    if reason is None:
        name = _build_name()
        try:
            if (build_root() / name / f"{name}.so").exists():  # built for this source, torch and processor
                module = _import(name, build_root() / name / f"{name}.so")
            else:
                reason = why_not_compiled()
                if reason is None:
                    module = _build(name)
        except Exception as exc:  # a compiler that fails, a folder that cannot be written
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            reason = f"the operator could not be built in {build_root()} ({type(exc).__name__}: {first})"
    if module is None:
        print(
            f"warning: the compiled sparse training step is unavailable: {reason}; training takes the standard path",
            file=sys.stderr,
            flush=True,
        )
    _loaded["module"] = module
    return module


def active() -> bool:
    """Whether sparse replicas train with the fused step: asked for (the default) and built."""
    return requested() and load() is not None


def cache_tag() -> str:
    """Part of a cached state's key: empty on the standard path; with the fused step, a name for it
    and a hash of its source (its results differ from the standard path's in the last bits)."""
    if not active():
        return ""
    return "fused:" + hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]


def path() -> str:
    """Which step trains sparse replicas here: ``standard``, or ``fused:<hash of its source>``
    (recorded with every result as part of its bitwise key, :mod:`pruneplast.machine`)."""
    return cache_tag() or "standard"


def sparse_layers(masks: Sequence[torch.Tensor]) -> torch.Tensor:
    """(M, L) bool: which layers of each replica keep below :data:`SPARSE_BELOW` of their weights
    (those the engine multiplies as CSR)."""
    return torch.stack([kept_counts(mk) < SPARSE_BELOW * mk[0].numel() for mk in masks], 1)


def replicas(
    weights: Sequence[torch.Tensor], masks: Sequence[torch.Tensor], compact: bool, sparse: torch.Tensor | None = None
) -> list[int]:
    """The replicas of a phase that train with the fused step: where it is on and built, for
    compact float32 layers on the CPU, those whose every layer keeps below :data:`SPARSE_BELOW` of
    its weights (the engine multiplies them as CSR); the others take the standard path.
    ``sparse``: :func:`sparse_layers` of ``masks``, where the caller has it."""
    if not compact or not requested():
        return []
    if any(w.device.type != "cpu" or w.dtype != torch.float32 for w in weights):
        return []
    if sparse is None:
        sparse = sparse_layers(masks)
    index = sparse.cpu().all(1).nonzero()[:, 0].tolist()
    if not index or load() is None:
        return []
    return index


class FusedStep:
    """The trainable entries of one phase (fixed masks) and their Adam state, stepped by the operator.

    Per replica and layer the computed rows are the live units, then the constant units (with
    ``noise``, every unit that reaches a logit is live); their kept weights are stored row by row,
    those from live units first, and those from live units are indexed column by column too
    (``colptr``, ``csc_e``, ``csc_r``: rows in order within a column) for the backward pass.
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
        # the layout is built with numpy (a few microseconds an operation where torch's take ten:
        # a phase of one epoch has about a hundred steps)
        kept = [mk.cpu().numpy() for mk in masks]
        units, n_live = [], []  # per layer, per replica: computed units (live first) and the live count
        for i, mk in enumerate(kept):
            if i < n_layers - 1:
                lv, cn = live[i].cpu().numpy(), const[i].cpu().numpy()
                units.append([np.concatenate([lv[r].nonzero()[0], cn[r].nonzero()[0]]) for r in range(m)])
                n_live.append([int(lv[r].sum()) for r in range(m)])
            else:
                units.append([np.arange(mk.shape[1])] * m)
                n_live.append([mk.shape[1]] * m)
        cols, rowptr, mids, unit_list, desc = [], [], [], [], []
        colptrs, csc_e, csc_r = [], [], []  # the entries from live units, column by column
        n_csc = n_cptr = 0
        w_pos: list[list[np.ndarray]] = [[] for _ in masks]  # per layer: the entries' flat positions
        w_param: list[list[np.ndarray]] = [[] for _ in masks]  # and their indices among the entries
        b_row: list[list[np.ndarray]] = [[] for _ in masks]
        b_pos: list[list[np.ndarray]] = [[] for _ in masks]
        n_ent = n_rows_all = n_ptr = n_ws = 0
        for r in range(m):
            xt_off = n_ws
            n_ws += d * batch_size
            for i, mk in enumerate(kept):
                out, inn = mk.shape[1:]
                u = units[i][r]
                row, k = np.divmod(np.flatnonzero(mk[r][u]), inn)  # rows in order, inputs ascending
                if i > 0:  # columns: the previous layer's computed units, live first, in order
                    prev = units[i - 1][r]
                    pos = np.full(inn, -1, dtype=np.int64)
                    pos[prev] = np.arange(len(prev))
                    col = pos[k]
                    if bool((col < 0).any()):
                        raise AssertionError("a kept weight from a unit that is not computed")
                    # in each row, the live inputs, then the constant ones (each part ascending)
                    order = np.argsort(2 * row + (col >= n_live[i - 1][r]), kind="stable")
                    row, k, col = row[order], k[order], col[order]
                else:
                    col = k
                cols.append(col)
                counts = np.bincount(row, minlength=len(u))
                start = n_ent + np.concatenate([[0], np.cumsum(counts)])
                rowptr.append(start)
                n_prev_live = d if i == 0 else n_live[i - 1][r]
                from_live = col < n_prev_live
                mids.append(start[:-1] + np.bincount(row[from_live], minlength=len(u)))
                live_at = from_live.nonzero()[0]  # rows in order; sorted by column, stably
                by_col = live_at[np.argsort(col[live_at], kind="stable")]
                csc_e.append(n_ent + by_col)
                csc_r.append(row[by_col])
                per_col = np.bincount(col[live_at], minlength=n_prev_live)
                colptrs.append(n_csc + np.concatenate([[0], np.cumsum(per_col)]))
                unit_list.append(u)
                w_param[i].append(np.arange(n_ent, n_ent + len(k)))
                w_pos[i].append((r * out + u[row]) * inn + k)
                b_row[i].append(np.arange(n_rows_all, n_rows_all + len(u)))
                b_pos[i].append(r * out + u)
                nl, nr = n_live[i][r], len(u)
                desc.append([n_rows_all, nl, nr, n_ptr, n_ws, out, xt_off, n_cptr])
                n_csc += len(live_at)
                n_cptr += n_prev_live + 1
                n_ws += 3 * nl * batch_size + 3 * (nr - nl)
                n_ent += len(k)
                n_rows_all += nr
                n_ptr += nr + 1

        def joined(parts) -> torch.Tensor:
            return torch.from_numpy(np.concatenate(parts).astype(np.int64))

        self.n_entries = n_ent
        self.cols = joined(cols)
        self.rowptr = joined(rowptr)
        self.mid = joined(mids)  # per computed row: where its entries from constant units begin
        self.units = joined(unit_list)
        self.desc = torch.tensor(desc, dtype=torch.long).view(m, n_layers, 8)
        self.colptr = joined(colptrs)
        self.csc_e = joined(csc_e)
        self.csc_r = joined(csc_r)
        self.work = torch.zeros(n_ws)
        self.w_param = [joined(t) for t in w_param]
        self.w_pos = [joined(t) for t in w_pos]
        self.b_param = [n_ent + joined(t) for t in b_row]
        self.b_pos = [joined(t) for t in b_pos]
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
        self._sigma: tuple | None = None  # ((replicas, sigma), its tensor), for the last sigma

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
        if self._sigma is None or self._sigma[0] != (m, float(sigma)):
            self._sigma = ((m, float(sigma)), torch.full((m,), float(sigma)))
        sig = self._sigma[1]
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
            self.colptr,
            self.csc_e,
            self.csc_r,
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
        return loss

    def write_back(self, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor]) -> None:
        """Copy the trained entries into the ensemble's weights and biases, in place."""
        with torch.no_grad():
            for i, (w, bias) in enumerate(zip(weights, biases)):
                w.view(-1)[self.w_pos[i]] = self.params[self.w_param[i]]
                bias.view(-1)[self.b_pos[i]] = self.params[self.b_param[i]]


if __name__ == "__main__":  # python -m pruneplast.kernels.fused: build it now (make install does)
    if not requested():
        print(f"{ENV}=0: the compiled sparse training step is off; nothing built")
    elif load() is not None:
        print(f"the compiled sparse training step is ready in {build_root() / _build_name()}")
