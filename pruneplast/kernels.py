"""The sparse product of the engine on CPU: a CSR matrix times a dense matrix, compiled with Numba.

``torch``'s CSR x dense product on CPU (MKL) sums every output element over the row's kept
entries in order, the same as :func:`csr_matmul` below; it also converts the index arrays, zeroes
its output and builds a library handle on every call. At the engine's sizes (a block-diagonal
5,120 x 5,120 matrix with 5% of entries kept, times 5,120 x 128) this kernel takes 55-65% of
its time, and on this machine its results are bit-identical to torch's (``make bench``,
``sparse_products``; tested to float32 rounding). On other devices the engine uses torch's product.
"""

from __future__ import annotations

import numba
import numpy as np
import torch


@numba.njit(parallel=True, cache=True)
def _csr_matmul(crow, col, val, x, out):  # pragma: no cover - compiled
    n, b = out.shape
    for i in numba.prange(n):
        acc = np.zeros(b, dtype=out.dtype)
        for j in range(crow[i], crow[i + 1]):
            v = val[j]
            r = col[j]
            for k in range(b):
                acc[k] += v * x[r, k]
        for k in range(b):
            out[i, k] = acc[k]


def csr_matmul(crow: np.ndarray, col: np.ndarray, values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A @ x for the CSR matrix A = (crow, col, values) with len(crow) - 1 rows; x (n_cols, B) on CPU.

    ``crow`` and ``col`` are int32 NumPy arrays; ``values`` and ``x`` float tensors (not tracked
    by autograd here). Returns a new (n_rows, B) tensor. Runs on ``torch.get_num_threads()``
    threads.
    """
    x = x.detach().contiguous()
    out = torch.empty(len(crow) - 1, x.shape[1], dtype=x.dtype)
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))
    _csr_matmul(crow, col, values.detach().contiguous().numpy(), x.numpy(), out.numpy())
    return out
