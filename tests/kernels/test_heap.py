"""Freed memory kept in the process (:mod:`pruneplast.kernels.heap`).

With the allocator's thresholds fixed, a training step of the book's dense 10-replica network
faults (almost) no page in, where glibc's adaptive thresholds faulted in hundreds per step; the
trained weights are the same bits either way. Each mode runs in a fresh process, since the
thresholds belong to a process and cannot be unset.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pruneplast.kernels import heap

_SCRIPT = r"""
import hashlib, json, resource, sys
import torch
from pruneplast.config import TaskConfig, TrainConfig
from pruneplast.data import EnsembleData
from pruneplast.kernels import heap
from pruneplast.network import EnsembleMLP
from pruneplast.operators import train

if sys.argv[1] == "off":
    heap._state["kept"] = False  # as where mallopt is missing: keep() sets nothing
torch.set_num_threads(1)
net = EnsembleMLP.init(list(range(10)))
data = EnsembleData.build(net.seeds, TaskConfig(n_train=16 * 128, n_standard=100, n_clean=100))
counts = []
net = train(
    net,
    data,
    TrainConfig(epochs=3, lr=1e-3, batch_size=128),
    progress=False,
    on_epoch_end=lambda epoch, current: counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt),
)
faults = (counts[2] - counts[0]) / 32  # the steps of epochs 2 and 3: the first filled the heap
h = hashlib.sha256()
for t in (*net.weights, *net.biases):
    h.update(t.detach().numpy().tobytes())
print(json.dumps({"kept": heap.kept(), "faults_per_step": faults, "bits": h.hexdigest()}))
"""


def _run(mode: str) -> dict:
    # glibc's own thresholds: none set through the environment, no other allocator preloaded
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "LD_PRELOAD"}
    env["OMP_NUM_THREADS"] = "1"
    out = subprocess.run([sys.executable, "-c", _SCRIPT, mode], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _huge_pages_always() -> bool:
    """Whether the kernel backs every large mapping with 2 MiB pages (fewer, larger faults)."""
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return "[always]" in f.read()
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
@pytest.mark.skipif(_huge_pages_always(), reason="transparent huge pages on for every mapping: other fault counts")
def test_steps_fault_no_pages_in_and_train_the_same_bits():
    on, off = _run("on"), _run("off")
    assert on["kept"] and not off["kept"]
    # measured: 0-50 faults per step kept (those left come once per epoch), 1,100-3,500 per step with
    # glibc's own thresholds
    assert off["faults_per_step"] > 200, off
    assert on["faults_per_step"] < off["faults_per_step"] / 10, (on, off)
    assert on["bits"] == off["bits"]


def test_keep_is_set_once_and_reported():
    first = heap.keep()
    assert heap.keep() is first and heap.kept() is first
    if sys.platform.startswith("linux"):
        assert first  # glibc has mallopt
