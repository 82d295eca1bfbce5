"""Freed memory kept in the process, so that a training step does not fault its tensors in anew.

A training step allocates tensors of megabytes and frees them before the next step: the weight
gradients of a 10-replica 512 x 512 layer are 10 MB, the activations of a batch 2.6 MB a layer.
glibc's allocator serves blocks above its mmap threshold from fresh mappings and returns the top
of its heap to the system once more than its trim threshold lies free there; both thresholds
adapt as blocks come and go, and with the engine's pattern of sizes it kept giving memory back.
Each step then faulted its new tensors in page by page (the kernel zeroes every 4 KiB page it
hands back): about 900 minor page faults and 1.3-1.6 ms of system time per step of the dense
10-replica kind on one thread of an AMD EPYC (a 41-45 ms step), 400-600 faults and 0.6-0.9 ms
for the 47.5% kind, with the zeroed pages pushing the step's own data out of the caches.

:func:`keep` fixes both thresholds (``mallopt``): blocks up to 32 MiB (glibc's largest mmap
threshold) come from the heap, and the heap keeps up to :data:`TRIM_BYTES` free at its top. After
the first steps a training step faults (almost) nothing in: 0-50 pages a step in the test,
those left once per epoch. The arithmetic is unchanged (torch aligns
every tensor to 64 bytes either way, the alignment its math libraries' results depend on):
trained weights are the same bits with and without, which the tests check. The engine calls it
where it computes (:func:`pruneplast.operators.train`, :meth:`pruneplast.network.EnsembleMLP.forward`),
once per process; where the C library has no ``mallopt`` (not glibc), nothing changes.
"""

from __future__ import annotations

import ctypes
import threading

#: glibc's ``mallopt`` parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: Blocks up to this size come from the heap: glibc's largest mmap threshold on 64-bit systems.
MMAP_BYTES = 32 << 20
#: Free memory the heap keeps at its top before it returns any to the system.
TRIM_BYTES = 512 << 20

_lock = threading.Lock()
_state: dict = {}  # "kept": bool, once tried


def keep() -> bool:
    """Fix the allocator's thresholds in this process (once); True where they are set."""
    if "kept" not in _state:
        with _lock:
            if "kept" not in _state:
                _state["kept"] = _mallopt(_M_MMAP_THRESHOLD, MMAP_BYTES) and _mallopt(_M_TRIM_THRESHOLD, TRIM_BYTES)
    return _state["kept"]


def kept() -> bool:
    """Whether :func:`keep` has set the thresholds in this process."""
    return bool(_state.get("kept"))


def _mallopt(param: int, value: int) -> bool:
    try:
        fn = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):  # TypeError: Windows' ctypes takes no None
        return False
    fn.argtypes, fn.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return fn(param, value) == 1
