"""``busy``: a chapter-2-like training phase on two cores, with and without a busy process on one.

The phase is :func:`pruneplast.protocols.cliff.experiments` over both data-set schemes (each
scheme's baseline trained afresh, its main experiment and its sparsity sweep): once in one
process on two torch threads (``workers=1``) and once in two one-thread worker processes
(``workers=2``), the run confined to two cores. Each is timed on those cores as they are, then
with a process spinning on one of them: a step on two threads waits for the busy core at every
synchronisation, a step on one thread does not. The row gives the wall times, how much the busy
core slows each path down, and whether the four runs gave the same results, bit for bit.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time

import pandas as pd
import torch
from setups import fresh_cache

from pruneplast.config import NetworkConfig, PruneConfig, RunConfig, TaskConfig, TrainConfig
from pruneplast.protocols import cliff

SCHEMES = ("shared", "per_replicate")


def spinner(core: int) -> subprocess.Popen:
    """A Python process spinning on ``core`` until it is stopped (:func:`stop`) or this process ends."""
    code = f"import os\nos.sched_setaffinity(0, {{{core}}})\nwhile os.getppid() == {os.getpid()}:\n    pass\n"
    return subprocess.Popen([sys.executable, "-c", code])


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


#: The sparsity sweep's levels in the phase: unpruned, and two levels on the cliff.
LEVELS = (0.0, 0.9, 0.95)


def phase(workers: int, seeds, epochs: int, n_train: int, n_test: int = 1000, levels=LEVELS) -> dict:
    """Chapter 2's schemes at a small size, with fresh baselines (an empty cache of their own);
    ``n_test`` samples in each test set, the sparsity sweep at ``levels``."""
    task = {"n_train": n_train, "n_standard": n_test, "n_clean": n_test}
    runs = {s: RunConfig(seeds=tuple(seeds), progress=False, task=TaskConfig(**task, data_sets=s)) for s in SCHEMES}
    with fresh_cache("pruneplast-busy-"):
        return cliff.experiments(
            runs,
            TrainConfig(epochs=epochs, lr=1e-3),
            NetworkConfig(),
            PruneConfig(sparsity=0.95),
            consolidation=TrainConfig(epochs=epochs, lr=5e-4),
            levels=levels,
            workers=workers,
        )


def _same(a: dict, b: dict) -> bool:
    try:
        for s in SCHEMES:
            for x, y in zip(a[s], b[s]):
                pd.testing.assert_frame_equal(x, y, check_exact=True)
    except AssertionError:
        return False
    return True


def bench_busy(
    epochs: int = 1, n_train: int = 12_000, seeds=(0, 1), trials: int = 2, n_test: int = 1000, levels=LEVELS
) -> dict | None:
    """The ``busy`` row: one two-thread process against two one-thread workers, quiet and busy.

    The run is confined to two of this process's cores (and restored after); the busy process
    spins on the second. Each variant's best of ``trials`` wall times; every trial runs the four
    variants in turn, and the load average at the start and the end is recorded.
    """
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cores) < 2:
        print("  busy core: fewer than two cores here, nothing to compare", flush=True)
        return None
    pair, threads = set(cores[:2]), torch.get_num_threads()
    times: dict = {}
    results: dict = {}
    load = os.getloadavg()[0]
    os.sched_setaffinity(0, pair)  # the workers inherit it: one thread each
    torch.set_num_threads(2)
    try:
        for _ in range(trials):  # every trial times all four variants, so a change of load hits them alike
            for busy in (False, True):
                spin = spinner(cores[1]) if busy else None
                try:
                    for w in (1, 2):
                        t = time.perf_counter()
                        results[(busy, w)] = phase(w, seeds, epochs, n_train, n_test, levels)
                        times[(busy, w)] = min(times.get((busy, w), math.inf), time.perf_counter() - t)
                finally:
                    if spin is not None:
                        stop(spin)
    finally:
        torch.set_num_threads(threads)
        os.sched_setaffinity(0, set(cores))
    first = results[(False, 1)]
    row = {
        "cores": sorted(pair),
        "busy_core": cores[1],
        "replicas_per_scheme": len(seeds),
        "epochs": epochs,
        "n_train": n_train,
        "one_process_s": times[(False, 1)],
        "workers_s": times[(False, 2)],
        "busy_one_process_s": times[(True, 1)],
        "busy_workers_s": times[(True, 2)],
        "slowdown_one_process": times[(True, 1)] / times[(False, 1)],
        "slowdown_workers": times[(True, 2)] / times[(False, 2)],
        "speedup": times[(False, 1)] / times[(False, 2)],
        "busy_speedup": times[(True, 1)] / times[(True, 2)],
        "same_results": all(_same(first, r) for r in results.values()),
        "load_average_at_start": load,
        "load_average_at_end": os.getloadavg()[0],
    }
    print(
        f"  busy core: chapter 2's two schemes ({len(seeds)} seeds, {epochs} epochs): one two-thread process "
        f"{row['one_process_s']:.1f} s, two one-thread workers {row['workers_s']:.1f} s; with core {cores[1]} "
        f"busy {row['busy_one_process_s']:.1f} s ({row['slowdown_one_process']:.1f}x slower) and "
        f"{row['busy_workers_s']:.1f} s ({row['slowdown_workers']:.1f}x); "
        f"results {'the same' if row['same_results'] else 'DIFFERENT'} bit for bit",
        flush=True,
    )
    return row
