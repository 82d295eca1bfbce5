"""The facts that decide whether two runs can be bitwise equal, recorded with every result.

Training is chaotic: a different rounding of one matrix product grows, over a few hundred Adam
steps, into other trained weights. Results are bitwise reproducible when all of these agree: the
CPU model (its vector units decide which kernels the math libraries pick), PyTorch's CPU capability
(the ATen kernels it dispatches to), the BLAS and its settings (MKL's instruction set and
conditional-reproducibility switches), the number of threads, the library versions, and which
step trains the sparse replicas: the compiled one (the default where it can be built) or the
standard one (``PRUNEPLAST_FUSED=0``, or no compiler), :mod:`pruneplast.kernels.fused`, and
whether denormal floats are flushed to zero (:mod:`pruneplast.kernels.denormals`).
:func:`facts` collects them; :func:`key` is the part that must match for bit-identity.
"""

from __future__ import annotations

import os
import platform
import re
import sys

#: Environment variables that change the float kernels without changing the machine (the last two:
#: the compiled training step of sparse replicas, :mod:`pruneplast.kernels.fused`, on by default,
#: kept off; the step actually taken is the fact ``sparse_training_step``, since unset means on
#: where a compiler builds it and the standard path where none does).
FLOAT_PATH_VARIABLES = (
    "MKL_ENABLE_INSTRUCTIONS",
    "MKL_CBWR",
    "ATEN_CPU_CAPABILITY",
    "MKL_DEBUG_CPU_TYPE",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "PRUNEPLAST_FUSED",
    "PRUNEPLAST_NO_COMPILE",
)


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas() -> str:
    """The BLAS PyTorch was built with, from its build configuration (``'mkl'``, ``'openblas'``...)."""
    import torch

    m = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    if m:
        return m.group(1)
    return "mkl" if torch.backends.mkl.is_available() else "unknown"


def vector_extensions() -> list[str]:
    """The CPU's SIMD extensions that the kernels choose between (AVX2, AVX-512 parts, AMX)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return sorted(
                        f
                        for f in flags
                        if f
                        in (
                            "avx2",
                            "fma",
                            "avx512f",
                            "avx512bw",
                            "avx512vl",
                            "avx512_vnni",
                            "avx512_bf16",
                            "amx_tile",
                            "amx_bf16",
                        )
                    )
    except OSError:
        pass
    return []


def facts() -> dict:
    """Machine and library facts for a results file (JSON-able)."""
    import numpy as np
    import torch

    from . import __version__
    from .kernels import denormals, fused

    out = {
        "cpu_model": cpu_model(),
        "cpu_vector_extensions": vector_extensions(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "os": platform.platform(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "blas": blas(),
        "mkl_available": bool(torch.backends.mkl.is_available()),
        "torch_threads": torch.get_num_threads(),
        "python_version": sys.version.split()[0],
        "pruneplast_version": __version__,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "float_path_environment": {k: os.environ[k] for k in FLOAT_PATH_VARIABLES if k in os.environ},
        "sparse_training_step": fused.path(),
        "denormals": denormals.mode(),
    }
    try:
        import pandas as pd

        out["pandas_version"] = pd.__version__
    except ImportError:  # pragma: no cover - pandas is a dependency
        pass
    return out


#: The entries of :func:`facts` that must agree for two runs to be bitwise equal.
BITWISE_KEYS = (
    "cpu_model",
    "cpu_vector_extensions",
    "torch_cpu_capability",
    "blas",
    "torch_threads",
    "torch_version",
    "numpy_version",
    "pruneplast_version",
    "float_path_environment",
    "sparse_training_step",
    "denormals",
)


def key(f: dict | None = None) -> dict:
    f = facts() if f is None else f
    return {k: f.get(k) for k in BITWISE_KEYS}
