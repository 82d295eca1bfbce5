"""Denormal floats flushed to zero on every thread that computes (:mod:`pruneplast.kernels.denormals`).

The modes belong to a thread: the checks run products that would be denormal on two torch threads,
in fresh interpreters where a thread's starting mode matters, and check that the engine's entry
points (training, the forward pass) set them before computing.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest
import torch

from pruneplast import machine
from pruneplast.kernels import denormals

pytestmark = pytest.mark.skipif(not denormals.supported(), reason="this processor has no flush-to-zero mode")


def _fresh(code: str) -> str:
    """``code`` in a fresh interpreter on two torch threads; its last printed line."""
    prelude = "import torch\ntorch.set_num_threads(2)\n"
    out = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_a_fresh_process_keeps_denormals_on_its_second_thread_until_ensure():
    """Without the engine, torch's second thread keeps denormals (the probe can fail); ensure()
    flushes them on both threads, products and sums alike."""
    last = _fresh(
        """
        from pruneplast.kernels import denormals
        before = denormals.flushed()
        denormals.ensure()
        a = torch.full((256, 256), 1e-20)
        mm = int((a @ a != 0).sum())
        print(before, denormals.flushed(), mm)
        """
    )
    assert last == "False True 0"


@pytest.mark.parametrize("entry", ["forward", "train"])
def test_the_engine_flushes_before_it_computes(entry):
    """A forward pass or a training phase in a fresh process, two threads: denormals flushed after."""
    call = {
        "forward": "net.forward(data.x['standard'])",
        "train": "train(net, data, TrainConfig(epochs=1, batch_size=64), progress=False)",
    }[entry]
    last = _fresh(
        f"""
        from pruneplast.config import NetworkConfig, TaskConfig, TrainConfig
        from pruneplast.data import EnsembleData
        from pruneplast.kernels import denormals
        from pruneplast.network import EnsembleMLP
        from pruneplast.operators import train
        net = EnsembleMLP.init([0], NetworkConfig(sizes=(2, 8, 4)))
        data = EnsembleData.build([0], TaskConfig(n_train=64, n_standard=64, n_clean=64))
        before = denormals.flushed()
        {call}
        print(before, denormals.flushed())
        """
    )
    assert last == "False True"


def test_kept_keeps_then_flushes_again():
    """Inside kept() the engine leaves denormals alone (ensure does nothing); after it they are
    flushed again, on every thread."""
    with denormals.kept():
        denormals.ensure()
        assert not denormals.flushed()
        x = torch.full((4,), 1e-30)
        assert bool((x * 1e-10 != 0).all())
    assert denormals.flushed()


def test_each_thread_is_set_on_its_own():
    """A thread that computes for the first time is set by ensure() on that thread."""
    seen = []

    def work():
        torch.set_flush_denormal(False)  # a new thread starts with its creator's modes
        seen.append(denormals.flushed())
        denormals.ensure()
        seen.append(denormals.flushed())

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert seen == [False, True]
    assert denormals.flushed()  # this thread untouched


def test_the_mode_is_a_fact_of_every_result():
    assert machine.facts()["denormals"] == "flushed"
    assert machine.key()["denormals"] == "flushed"
    assert "denormals" in machine.BITWISE_KEYS


def test_the_openmp_runtime_is_found_by_any_name_torch_s_own_first():
    """torch's wheel ships ``lib/libgomp.so.1`` in its own folder; a system or conda build links
    ``libgomp.so.1.0.0``; Intel's and LLVM's runtimes provide the same entry point. The one under
    torch's folder is taken first, else the first loaded; a process without one has none."""
    from pruneplast.kernels.denormals import _openmp_path

    def maps(*paths):
        return [f"7f00-7f01 r-xp 00000000 08:01 1 {p}\n" for p in paths] + ["7f02-7f03 rw-p 00000000 00:00 0\n"]

    torch_dir = "/env/lib/python3.11/site-packages/torch"
    wheel = f"{torch_dir}/lib/libgomp.so.1"
    system = "/usr/lib/x86_64-linux-gnu/libgomp.so.1"
    assert _openmp_path(maps("/usr/lib/libc.so.6", system, wheel), torch_dir) == wheel
    conda = "/opt/conda/lib/libgomp.so.1.0.0"
    assert _openmp_path(maps(conda), torch_dir) == conda
    ours = f"{torch_dir}/lib/libiomp5.so"
    assert _openmp_path(maps("/usr/lib/x86_64-linux-gnu/libgomp.so.1", ours), torch_dir) == ours
    assert _openmp_path(maps("/usr/lib/x86_64-linux-gnu/libomp.so.5"), torch_dir).endswith("libomp.so.5")
    assert _openmp_path(maps("/usr/lib/libc.so.6", "/usr/lib/libgompish.txt"), torch_dir) is None
    assert _openmp_path([], torch_dir) is None


def test_the_mode_says_partial_where_a_pool_thread_could_not_be_set(monkeypatch):
    """Where :func:`ensure` warned that some pool thread kept denormals, the mode (a bitwise key of
    every result, and part of the cache key) is 'partial', not 'flushed'."""
    from pruneplast.kernels import denormals

    if not denormals.supported():
        pytest.skip("this processor has no flush-to-zero mode")
    assert denormals.mode() == "flushed"
    monkeypatch.setitem(denormals._state, "warned", True)
    assert denormals.mode() == "partial"
