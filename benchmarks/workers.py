"""Independent runs in one process and in one worker process per core (``make bench``, :mod:`bench`):
chapter 6's maintenance and chapter 5's treatment courses, as :mod:`pruneplast.parallel` runs them.
"""

from __future__ import annotations

import math
import time

from setups import BATCH, EPOCH_STEPS, MAINTENANCE, maintenance_replicas, max_weight_diff, replicas

from pruneplast import parallel
from pruneplast.config import MaintenanceConfig, TaskConfig
from pruneplast.protocols import longitudinal, treatments


def worker_startup(workers: int, trials: int = 2) -> float:
    """Seconds to start ``workers`` processes and hand each a trivial job (the fixed cost of a run)."""
    best = math.inf
    for _ in range(trials):
        t = time.perf_counter()
        parallel.run_jobs(abs, [(0,)] * workers, workers)
        best = min(best, time.perf_counter() - t)
    return best


def _ratio(x: float | None) -> str:
    return "not measured (start-up timed longer than the run)" if x is None else f"{x:.2f}x"


def one_process_vs_workers(run, workers: int, trials: int = 2) -> tuple[dict, dict]:
    """Time ``run(1)`` and ``run(workers)`` interleaved (best of ``trials`` each) and the workers'
    start-up (best of as many).

    Returns (the timing fields of a benchmark row, {1: run(1), workers: run(workers)} of the last trials).
    """
    times, out = {}, {}
    for w in (1, workers) * trials:
        t = time.perf_counter()
        out[w] = run(w)
        times[w] = min(times.get(w, math.inf), time.perf_counter() - t)
    startup = worker_startup(workers, trials)
    # The start-up is timed apart from the runs, so on a busy machine it can come out longer than the
    # run that includes it; then the ratio without it is not measured (None) rather than made up.
    after = times[1] / (times[workers] - startup) if times[workers] > startup else None
    return {
        "workers": workers,
        "one_process_s": times[1],
        "workers_s": times[workers],
        "speedup": times[1] / times[workers],
        "startup_s": startup,
        "speedup_after_startup": after,
    }, out


def bench_maintenance_workers(epochs: int, m: int = 10, trials: int = 2) -> dict | None:
    """Chapter 6's maintenance of all three treatments in one process and in one worker per core.

    The same networks as :func:`bench_maintenance`, ``epochs`` epochs at lr 1e-6 through
    :func:`pruneplast.protocols.longitudinal.maintain` with ``workers=1`` (one ensemble after the
    other, every core on each) and ``workers=0`` (one process per core, the ketamine-like ensemble
    and, on the compiled sparse step, the 95%-sparse ones split between them), each timed best of
    ``trials`` (:func:`one_process_vs_workers`). Wall times include starting the worker processes.
    The floating-point change is the largest weight difference between the two after an lr-1e-3
    run of the same length (an lr that moves the weights). None on a single core.
    """
    workers = parallel.usable_cores()
    if workers < 2:
        print("  maintenance workers: one core here, nothing to compare", flush=True)
        return None
    task = TaskConfig(n_train=EPOCH_STEPS * BATCH, n_standard=100, n_clean=100)
    states, data = {}, None
    for name in MAINTENANCE:
        net, data = maintenance_replicas(name, m, task)
        for d in net.meta:
            d["treatment"] = name
        states[name] = net
    timing, _ = one_process_vs_workers(
        lambda w: longitudinal.maintain(states, data, MaintenanceConfig(durations=(epochs,), lr=1e-6), workers=w),
        workers,
        trials,
    )
    fast = {
        w: longitudinal.maintain(states, data, MaintenanceConfig(durations=(epochs,), lr=1e-3), workers=w)[0][epochs]
        for w in (1, workers)
    }
    diff = max_weight_diff(fast[1], fast[workers])
    row = {"replicas_per_treatment": m, "epochs": epochs, **timing, "max_abs_diff_lr_1e-3": diff}
    print(
        f"  maintenance of the three treatments, {epochs} epochs: one process {row['one_process_s']:.1f} s, "
        f"{workers} workers {row['workers_s']:.1f} s ({row['speedup']:.2f}x; starting the workers takes "
        f"{row['startup_s']:.1f} s, {_ratio(row['speedup_after_startup'])} without it); "
        f"max |weight difference| after an lr-1e-3 run {diff:.1e}",
        flush=True,
    )
    return row


def bench_treatment_workers(epochs: dict, m: int = 10, trials: int = 2) -> dict | None:
    """Chapter 5's treatment courses in one process and in one worker per core.

    ``treatments.treat`` on M 95%-pruned initialisations (the pruned state's shape), every treatment
    with the given epochs (the SSRI-like schedule compressed to its course), ``workers=1`` against
    ``workers=0``; the ketamine-like ensemble (47.5% sparse after regrowth), the noisy SSRI-like
    one and, on the compiled sparse step, the neurosteroid-like one are split between the
    processes; each timed best of ``trials``. Wall times include the regrowth scores (in the
    calling process) and starting the workers; the floating-point change is the largest weight
    difference per treatment between the two. None on a single core.
    """
    workers = parallel.usable_cores()
    if workers < 2:
        print("  treatment workers: one core here, nothing to compare", flush=True)
        return None
    net, data = replicas(m, 0.95, TaskConfig(n_train=EPOCH_STEPS * BATCH, n_standard=100, n_clean=100))
    cfgs = treatments.configs(epochs=epochs)
    timing, states = one_process_vs_workers(lambda w: treatments.treat(net, data, cfgs, workers=w), workers, trials)
    diff = {n: max_weight_diff(states[1][n], states[workers][n]) for n in cfgs}
    row = {"replicas": m, "epochs": dict(epochs), **timing, "max_abs_diff": diff}
    print(
        f"  treatment courses ({', '.join(f'{k} {v}' for k, v in epochs.items())} epochs): one process "
        f"{row['one_process_s']:.1f} s, {workers} workers {row['workers_s']:.1f} s ({row['speedup']:.2f}x; "
        f"{_ratio(row['speedup_after_startup'])} without starting the workers); max |weight "
        f"difference| " + ", ".join(f"{k} {v:.1e}" for k, v in diff.items()),
        flush=True,
    )
    return row
