"""Denormal floats flushed to zero on every thread that computes.

Late in training, a nearly dense network's gradients, Adam moments and activations hold denormal
floats (nonzero, below 1.18e-38 in magnitude): in one measurement of the long chronic regimen's
last cycles at the paper's scale, about 1.5% of a layer's second moments and 0.3% of its
gradients (``make bench``'s ``denormals`` row measures the gradients' share). x86 processors
compute with them through a microcode assist, many times slower than with normal floats, so a step
slows with their count: with denormals kept, that regimen's 99.4%-kept last cycle took 57 s on one
thread of an Intel Xeon, against 7 s for its 43%-kept first cycle and 13 s with denormals flushed.

The engine therefore sets the processor's flush-to-zero and denormals-are-zero modes (MXCSR's FTZ
and DAZ bits, ``torch.set_flush_denormal``): a result that would be denormal is 0, and a denormal
input is read as 0. The modes belong to a thread, so :func:`ensure` sets them on the calling thread
and on every thread of torch's OpenMP pool that computes for it (libgomp's ``GOMP_parallel``, a
team of the current thread count, each thread setting its own), once per thread and thread count,
and checks them with a product that would be denormal on every thread. The engine calls it where
it computes (:func:`pruneplast.operators.train`, :meth:`pruneplast.network.EnsembleMLP.forward`),
in every process, the worker processes of :mod:`pruneplast.parallel` included.

A flushed value differs from the kept one by less than 1.2e-38, but training is chaotic: trained
weights differ from a run with denormals kept as they differ between two processors. The mode is a
fact of every result (:func:`mode`, :mod:`pruneplast.machine`). On a processor without the modes
(``torch.set_flush_denormal`` refuses), denormals are kept, and the mode says so.
"""

from __future__ import annotations

import ctypes
import os
import threading
import warnings

import torch

#: A float32 product that is denormal: 1e-30 x 1e-10.
_TINY, _SCALE = 1e-30, 1e-10
#: Enough elements that torch splits the product over every thread of its pool.
_PROBE_SIZE = 1 << 20

_lock = threading.Lock()
_state: dict = {}  # "gomp": libgomp (or None), "supported": bool, "warned": bool
#: per thread: .counts, the torch thread counts it has been set for; .keep, inside :class:`kept`
_local = threading.local()


#: OpenMP runtimes that provide libgomp's ``GOMP_parallel`` (GNU's; Intel's and LLVM's, for compatibility).
_OPENMP = ("libgomp", "libiomp5", "libomp")


def _openmp_path(maps: list[str], torch_dir: str) -> str | None:
    """The OpenMP runtime among the shared objects mapped into this process (lines of
    ``/proc/self/maps``): one under torch's own folder first (torch's wheels ship their libgomp
    there, ``torch/lib/libgomp.so.1``), else the first one loaded (a system or conda libgomp,
    ``libgomp.so.1.0.0``; Intel's or LLVM's runtime)."""
    paths = []
    for ln in maps:
        path = ln.split()[-1] if ln.split() else ""
        name = path.rsplit("/", 1)[-1]
        if path.startswith("/") and ".so" in name and name.startswith(_OPENMP) and path not in paths:
            paths.append(path)
    return next((p for p in paths if p.startswith(torch_dir)), paths[0] if paths else None)


def _libgomp():
    """The OpenMP runtime that torch computes with (loaded in this process), or None."""
    if "gomp" not in _state:
        lib = None
        try:
            with open("/proc/self/maps") as f:
                path = _openmp_path(f.readlines(), os.path.dirname(torch.__file__))
            if path is not None:
                lib = ctypes.CDLL(path)
                lib.GOMP_parallel.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
                lib.GOMP_parallel.restype = None
        except (OSError, AttributeError):
            lib = None
        _state["gomp"] = lib
    return _state["gomp"]


@ctypes.CFUNCTYPE(None, ctypes.c_void_p)
def _flush_this_thread(_data) -> None:  # pragma: no cover - runs on the pool's threads
    torch.set_flush_denormal(True)


@ctypes.CFUNCTYPE(None, ctypes.c_void_p)
def _keep_this_thread(_data) -> None:  # pragma: no cover - runs on the pool's threads
    torch.set_flush_denormal(False)


def _set_all(on: bool) -> None:
    """Set the modes on this thread and on every thread of its torch pool."""
    torch.set_flush_denormal(on)
    n = torch.get_num_threads()
    gomp = _libgomp() if n > 1 else None
    if gomp is not None:
        fn = _flush_this_thread if on else _keep_this_thread
        gomp.GOMP_parallel(ctypes.cast(fn, ctypes.c_void_p), None, n, 0)


def flushed() -> bool:
    """Whether a product that would be denormal is 0 on every thread torch computes on."""
    x = torch.full((_PROBE_SIZE,), _TINY)
    return not bool((x * _SCALE).any())


def supported() -> bool:
    """Whether this processor has the modes (``torch.set_flush_denormal`` accepts them)."""
    if "supported" not in _state:
        _state["supported"] = bool(torch.set_flush_denormal(True))
    return _state["supported"]


def ensure() -> None:
    """Flush denormals to zero on this thread and its torch pool, once per thread and thread
    count (nothing inside :func:`kept`, or on a processor without the modes). Warns once where
    some thread of the pool could not be set."""
    n = torch.get_num_threads()
    counts = _local.__dict__.setdefault("counts", set())
    if n in counts or getattr(_local, "keep", False):
        return
    with _lock:
        if not supported():
            return
        _set_all(True)
        counts.add(n)
        if not flushed() and not _state.get("warned"):
            _state["warned"] = True  # (mode() then says 'partial')
            warnings.warn(
                f"denormal floats could not be flushed on every one of torch's {n} threads; results "
                "computed on several threads may differ from one-thread runs",
                RuntimeWarning,
                stacklevel=2,
            )


def mode() -> str:
    """'flushed' where this processor flushes denormals to zero on every thread that computes (the
    engine's mode), 'partial' where some thread of torch's pool could not be set (:func:`ensure`
    warned), else 'kept'."""
    if not supported():
        return "kept"
    return "partial" if _state.get("warned") else "flushed"


class kept:
    """Denormals kept on this thread and its pool inside the block (to measure what flushing
    changes), flushed again after it."""

    def __enter__(self) -> kept:
        _local.keep = True
        _local.counts = set()
        with _lock:
            _set_all(False)
        return self

    def __exit__(self, *exc) -> None:
        _local.keep = False
        ensure()
