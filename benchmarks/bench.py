"""``make bench``: the engine's speed on this machine, measured against its limit and the common way.

Everything is measured in one run, so that ratios hold on a shared, noisy machine: timings
interleave the variants being compared and keep the best of several trials of each (the trial
least disturbed by other processes). Printed, and written to ``benchmarks/results.json``:

* ``matmul``: fp32 rate of large square products (``torch.mm``, 2048 and 3072): the limit;
* ``train``: the engine's masked training step (forward, backward, Adam, masks kept) at 1, 10 and
  30 replicas, 0% and 95% sparsity, over one epoch of the book's training set (94 steps of 128
  samples) and in a 16-step phase; samples/s and dense-equivalent FLOP/s as a fraction of the
  limit. FLOPs are counted dense: 6 x 395,264 per sample (forward 2, backward 4 per weight),
  whatever the sparsity, so a sparse network can exceed "100%";
* ``reference``: the same work done the common way (``benchmarks/reference.py``) and the ratio;
* ``ceiling``: the parts a dense 10-replica step cannot avoid (the two large layers' six products
  and Adam over every weight), timed alone: the fastest such a step could be, and its ratio to the
  reference;
* ``fused_step``: the opt-in compiled step (``PRUNEPLAST_FUSED=1``) against the standard path,
  10 replicas at 95% on one thread, without and with internal noise: ms per step and the largest
  weight difference between the two paths;
* ``maintenance``: chapter 6's maintenance step per treatment (drug and mood stabiliser on) on the
  live units (the engine) and on every unit, and the implied time of its 300 epochs;
* ``maintenance_workers``: chapter 6's maintenance of the three treatments in one process and in
  one worker process per core (as the book runs it), the speed-up and the floating-point change;
* ``treatment_workers``: chapter 5's treatment courses (short courses) in one process and in one
  worker process per core, the speed-up and the floating-point change per treatment;
* ``busy``: a chapter-2-like training phase (both data-set schemes) on two cores, in one two-thread
  process and in two one-thread worker processes, with and without a process spinning on one of
  the cores (``benchmarks/busy.py``): how much the busy core slows each down;
* ``paper_estimate``: the paper-scale training at these rates, engine and reference;
* ``stress``: evaluation throughput, every stress condition for every replica (dense, 95% sparse,
  and a mixed 30-replica ensemble as chapter 6 evaluates);
* ``fp_change``: how far the engine's results are from the plain path on the same run
  (max |weight difference| after training, max |accuracy difference| in points);
* ``chapters`` (only with ``--chapters quick|paper``): wall time and peak memory of
  ``pruneplast run <chapter>`` for every registered chapter;
* ``book``: the wall time and peak memory of each page and of the whole build, copied from the
  latest ``make book`` / ``make test`` of this checkout (``_build/**/timings-<profile>.json``, written
  by ``pruneplast book``), with the date and load average of that build: a paper-scale book takes
  tens of minutes, so it is timed when it is built rather than built again here.

Usage: ``python benchmarks/bench.py [--quick] [--chapters quick|paper] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from busy import bench_busy  # noqa: E402
from reference import replica_module, train_reference  # noqa: E402

from pruneplast import parallel, rng  # noqa: E402
from pruneplast.config import MaintenanceConfig, RegrowConfig, TaskConfig, TrainConfig  # noqa: E402
from pruneplast.data import EnsembleData  # noqa: E402
from pruneplast.kernels import fused  # noqa: E402
from pruneplast.kernels.compact import unit_roles  # noqa: E402
from pruneplast.network import EnsembleMLP  # noqa: E402
from pruneplast.operators import Adam, prune, regrow, train  # noqa: E402
from pruneplast.progress import set_progress  # noqa: E402
from pruneplast.protocols import longitudinal, treatments  # noqa: E402
from pruneplast.results import atomic_write  # noqa: E402
from pruneplast.stress import CONDITIONS, evaluate  # noqa: E402

N_WEIGHTS = 395_264  # weights of one replica (2-512-512-256-4)
FLOP_PER_SAMPLE = 6 * N_WEIGHTS  # dense forward (2) + backward (4) per weight and sample
BATCH = 128
EPOCH_STEPS = -(-12_000 // BATCH)  # mini-batches in one epoch of the book's training set (94)
SHORT_STEPS = 16  # a short phase: its set-up weighs about 6x more per step than in a full epoch


def best_times(fns: dict, trials: int) -> dict:
    """Best wall time (s) of each callable over ``trials`` rounds, the callables interleaved."""
    best = {k: float("inf") for k in fns}
    for _ in range(trials):
        for k, f in fns.items():
            t = time.perf_counter()
            f()
            best[k] = min(best[k], time.perf_counter() - t)
    return best


def matmul_limit(trials: int) -> dict:
    """fp32 GFLOP/s of square products; the larger of the two sizes is the limit."""
    out = {}
    for n in (2048, 3072):
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b
        t = best_times({"mm": lambda: a @ b}, trials)["mm"]
        out[f"gflops_{n}"] = 2 * n**3 / t / 1e9
    out["limit_gflops"] = max(out.values())
    return out


# --------------------------------------------------------------------------- the limit, taken honestly
def _machine_jiffies() -> tuple[int, int]:
    """(busy, total) CPU time of the whole machine since boot, in clock ticks (``/proc/stat``);
    (0, 0) where it cannot be read (not Linux)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _own_ticks() -> float:
    t = os.times()
    return (t.user + t.system) * os.sysconf("SC_CLK_TCK")


def timed_with_others(fn) -> tuple[float, float | None]:
    """(wall time of ``fn()`` in s, share of the machine's CPU time that *other* processes used
    meanwhile: 0 = quiet, 0.5 = one of two cores busy elsewhere; None where unknown)."""
    b0, t0, o0 = *_machine_jiffies(), _own_ticks()
    start = time.perf_counter()
    fn()
    wall = time.perf_counter() - start
    b1, t1, o1 = *_machine_jiffies(), _own_ticks()
    if t1 <= t0:
        return wall, None
    return wall, min(1.0, max(0.0, ((b1 - b0) - (o1 - o0)) / (t1 - t0)))


#: Trials with less than this share of the CPU used by other processes count as quiet.
QUIET_SHARE = 0.05


def quiet_limit(trials: int, pause: float = 0.3, n: int = 3072, reps: int = 3) -> dict:
    """The fp32 rate of ``n`` x ``n`` products as the best of many trials spread over time.

    Each trial multiplies ``reps`` times and records the share of CPU time other processes used
    meanwhile (:func:`timed_with_others`); trials are ``pause`` s apart, so that quiet moments of a
    shared machine are among them. At the run's thread count and at one thread: the best rate
    (the limit), the other processes' share during that best trial, the median, and how many trials
    were quiet (others below :data:`QUIET_SHARE`).
    """
    a, b = torch.randn(n, n), torch.randn(n, n)
    threads = torch.get_num_threads()
    out: dict = {"size": n, "trials": trials, "quiet_share_below": QUIET_SHARE}
    try:
        for th in sorted({threads, 1}, reverse=True):
            torch.set_num_threads(th)
            a @ b
            got = []
            for _ in range(trials):
                wall, others = timed_with_others(lambda: [a @ b for _ in range(reps)])
                got.append((2 * n**3 * reps / wall / 1e9, others))
                time.sleep(pause)
            rates = sorted(r for r, _ in got)
            best = max(got, key=lambda r: r[0])
            out[f"threads_{th}"] = {
                "best_gflops": best[0],
                "others_share_at_best": best[1],
                "median_gflops": rates[len(rates) // 2],
                "quiet_trials": sum(1 for _, o in got if o is not None and o < QUIET_SHARE),
            }
    finally:
        torch.set_num_threads(threads)
    out["threads"] = threads
    out["limit_gflops"] = out[f"threads_{threads}"]["best_gflops"]
    best_run = out[f"threads_{threads}"]
    share = best_run["others_share_at_best"]
    print(
        f"  limit: best of {trials} trials of {n} products {out['limit_gflops']:.1f} GFLOP/s at {threads} threads "
        f"(other processes {'unknown' if share is None else f'{share:.0%}'} of the CPU then; median "
        f"{best_run['median_gflops']:.1f}; {best_run['quiet_trials']} quiet trials), "
        f"{out['threads_1']['best_gflops']:.1f} at one thread",
        flush=True,
    )
    return out


def refer_to_limit(res: dict, limit: float) -> None:
    """Every fraction of the results against one limit (the best rate seen in the run), in place;
    the rate timed beside each row is kept as ``interleaved_gflops``."""
    for row in res.get("train", []):
        row.setdefault("interleaved_gflops", row["limit_gflops"])
        row["limit_gflops"] = limit
        for k in ("engine", "engine_short", "reference"):
            if f"{k}_samples_per_s" in row:
                row[f"{k}_fraction_of_limit"] = row[f"{k}_samples_per_s"] * FLOP_PER_SAMPLE / 1e9 / limit
    c = res.get("ceiling")
    if c and "products_ms" in c:
        flops = c["replicas"] * BATCH * sum(6 * o * i for o, i in LARGE_LAYERS)
        c["products_fraction_of_limit"] = flops / (c["products_ms"] / 1e3) / 1e9 / limit
    for row in res.get("stress", []):
        if "samples_per_s" in row:
            row["fraction_of_limit"] = row["samples_per_s"] * 2 * N_WEIGHTS / 1e9 / limit
    for row in res.get("step_kinds", []):
        row["flop_floor_ms"] = row["flops_per_step"] / limit / 1e6
        _set_floor(row)


# --------------------------------------------------------------------------- step kinds and their floors
def memory_rate(mib: float = 8.0, trials: int = 20) -> float:
    """GB/s of an elementwise pass (read two, write one float32 tensor) over ``mib`` MiB per tensor:
    about the size a step of a small sparse ensemble keeps in cache."""
    n = int(mib * 2**20 / 4)
    a, b, c = torch.randn(n), torch.randn(n), torch.empty(n)
    torch.add(a, b, out=c)
    t = best_times({"add": lambda: torch.add(a, b, out=c)}, trials)["add"]
    return 3 * 4 * n / t / 1e9


def step_work(net: EnsembleMLP, noise: bool) -> dict:
    """The arithmetic and memory a training step of ``net`` cannot avoid, per step of BATCH samples.

    Multiplied weights: without internal noise the engine multiplies live units only (compact
    layers), with it every unit that reaches a logit; per layer and replica the block of those
    output and input units, its kept weights counted as CSR (below 15% density) or the whole block
    as a dense product (at or above). FLOPs: 6 per multiplied weight and sample (forward 2, input
    and weight gradients 2 each). Memory: every trainable weight and bias read and written with
    its gradient and Adam's two moments (7 float32 passes), plus the hidden activations of the
    batch stored and read back (4 passes), plus the noise drawn (1 pass) when there is noise.
    """
    live, _ = unit_roles(net.masks, noise=noise)
    m = net.n_replicas
    ones_in = torch.ones(m, net.masks[0].shape[2], dtype=torch.bool)
    ones_out = torch.ones(m, net.masks[-1].shape[1], dtype=torch.bool)
    rows_of = [*live, ones_out]
    cols_of = [ones_in, *live]
    multiplied, trainable = 0, 0
    for mk, r, c in zip(net.masks, rows_of, cols_of):
        for k in range(m):
            block = mk[k][r[k]][:, c[k]]
            kept = int(block.sum())
            cells = block.numel()
            multiplied += kept if kept < 0.15 * max(cells, 1) else cells
            trainable += kept + int(r[k].sum())  # kept weights and the biases of the block's units
    units = sum(int(v.sum()) for v in live)
    flops = 6 * multiplied * BATCH
    nbytes = 4 * (7 * trainable + 4 * units * BATCH + (units * BATCH if noise else 0))
    return {"multiplied_weights": multiplied, "trainable": trainable, "flops_per_step": flops, "bytes_per_step": nbytes}


def _set_floor(row: dict) -> None:
    row["floor_ms"] = max(row["flop_floor_ms"], row["memory_floor_ms"])
    row["bound"] = "FLOP" if row["flop_floor_ms"] >= row["memory_floor_ms"] else "memory"
    row["times_floor"] = row["ms_per_step"] / row["floor_ms"]


#: The step kinds of the book (10 replicas each): dense baselines, the ketamine-like 47.5%-sparse
#: networks, 95%-sparse networks without noise (consolidation, maintenance), the same with the
#: SSRI-like course's internal noise.
STEP_KINDS = (("dense", 0.0, False), ("47.5%", 0.475, False), ("95%", 0.95, False), ("noisy", 0.95, True))


def bench_step_kinds(steps: int, trials: int, limit: float, m: int = 10, noise_sd: float = 0.5) -> list[dict]:
    """Each step kind's time per step against its own floor: the FLOP floor (its multiplied weights
    at the limit) or the memory floor (its unavoidable passes at :func:`memory_rate`), whichever is
    larger (:func:`step_work`). Trained over ``steps`` mini-batches, best of ``trials``."""
    task = TaskConfig(n_train=steps * BATCH, n_standard=100, n_clean=100)
    rate = memory_rate()
    nets = {}
    for name, sparsity, noisy in STEP_KINDS:
        if sparsity == 0.475:
            net, data = maintenance_replicas("ketamine", m, task)  # drug on, as chapter 6 maintains it
        else:
            net, data = replicas(m, sparsity, task)
        nets[name] = (net, data, noisy)
    fns = {
        name: lambda net=net, data=data, noisy=noisy: train(
            net.clone(), data, TrainConfig(epochs=1, lr=1e-4), sigma_int=noise_sd if noisy else 0.0, progress=False
        )
        for name, (net, data, noisy) in nets.items()
    }
    t = best_times(fns, trials)
    rows = []
    for name, (net, _, noisy) in nets.items():
        work = step_work(net, noisy)
        row = {
            "kind": name,
            "replicas": m,
            "sparsity": float(net.weight_sparsity().mean()),
            "noise_sd": noise_sd if noisy else 0.0,
            "ms_per_step": t[name] / steps * 1e3,
            **work,
            "flop_floor_ms": work["flops_per_step"] / limit / 1e6,
            "memory_gb_per_s": rate,
            "memory_floor_ms": work["bytes_per_step"] / rate / 1e6,
        }
        _set_floor(row)
        rows.append(row)
        print(
            f"  step {name:6s} M={m}: {row['ms_per_step']:6.2f} ms; floor {row['floor_ms']:.2f} ms "
            f"({row['bound']}-bound: {row['multiplied_weights'] / m:,.0f} multiplied weights per replica at "
            f"{limit:.0f} GFLOP/s -> {row['flop_floor_ms']:.2f} ms, {row['bytes_per_step'] / 1e6:.1f} MB at "
            f"{rate:.0f} GB/s -> {row['memory_floor_ms']:.2f} ms): {row['times_floor']:.1f}x the floor",
            flush=True,
        )
    return rows


def bench_fused_step(steps: int, trials: int, m: int = 10, noise_sd: float = 0.5, check_steps: int = 8) -> dict:
    """The opt-in fused step (``PRUNEPLAST_FUSED=1``, :mod:`pruneplast.kernels.fused`) against the
    standard path: 10 replicas at 95%, one thread, without and with internal noise, ms per step over
    ``steps`` mini-batches (phase set-up included, best of ``trials``), and how far the two paths'
    weights are apart after ``check_steps`` and after ``steps`` steps (max |dW|, summation order),
    with the load average while it ran (other processes share the cores)."""
    if fused.why_not_compiled() is not None:
        return {"skipped": f"the fused step cannot be built here: {fused.why_not_compiled()}"}
    if fused.load() is None:
        return {"skipped": "the fused step could not be built (see the warning line)"}
    net, data = replicas(m, 0.95, TaskConfig(n_train=steps * BATCH, n_standard=100, n_clean=100))
    short = EnsembleData.build(net.seeds, TaskConfig(n_train=check_steps * BATCH, n_standard=100, n_clean=100))
    before, threads = os.environ.get(fused.ENV), torch.get_num_threads()

    def run(path: str, sigma: float, on: EnsembleData = data) -> EnsembleMLP:
        os.environ[fused.ENV] = "1" if path == "fused" else "0"
        return train(net.clone(), on, TrainConfig(epochs=1, lr=1e-3), sigma_int=sigma, progress=False)

    kinds = {"95%": 0.0, "noisy": noise_sd}
    torch.set_num_threads(1)
    try:
        load = os.getloadavg()
        cpu: dict = {}

        def timed(key, fn):
            c = time.process_time()
            fn()
            cpu[key] = min(cpu.get(key, math.inf), time.process_time() - c)

        fns = {
            (p, k): functools.partial(timed, (p, k), functools.partial(run, p, sd))
            for k, sd in kinds.items()
            for p in ("standard", "fused")
        }
        t = best_times(fns, trials)
        rows = []
        for kind, sd in kinds.items():
            diffs = [max_weight_diff(run("standard", sd, on), run("fused", sd, on)) for on in (short, data)]
            row = {
                "kind": kind,
                "replicas": m,
                "threads": 1,
                "noise_sd": sd,
                "standard_ms_per_step": t[("standard", kind)] / steps * 1e3,
                "fused_ms_per_step": t[("fused", kind)] / steps * 1e3,
                # this process's CPU time (one thread): what a step costs when other processes share the core
                "standard_cpu_ms_per_step": cpu[("standard", kind)] / steps * 1e3,
                "fused_cpu_ms_per_step": cpu[("fused", kind)] / steps * 1e3,
                f"max_abs_dw_after_{check_steps}_steps": diffs[0],
                f"max_abs_dw_after_{steps}_steps": diffs[1],
            }
            row["speedup"] = row["standard_ms_per_step"] / row["fused_ms_per_step"]
            rows.append(row)
            print(
                f"  fused step {kind:5s} M={m}, 1 thread: {row['standard_ms_per_step']:6.2f} -> "
                f"{row['fused_ms_per_step']:6.2f} ms ({row['speedup']:.1f}x; CPU time "
                f"{row['standard_cpu_ms_per_step']:.2f} -> {row['fused_cpu_ms_per_step']:.2f} ms); max |dW| "
                f"{diffs[0]:.1e} after "
                f"{check_steps} steps, {diffs[1]:.1e} after {steps}",
                flush=True,
            )
    finally:
        torch.set_num_threads(threads)
        if before is None:
            os.environ.pop(fused.ENV, None)
        else:
            os.environ[fused.ENV] = before
    return {"rows": rows, "load_average": [*load, *os.getloadavg()]}


def pruned_init(seeds, sparsity: float) -> EnsembleMLP:
    """Replicas of ``seeds`` at their default initialisation, magnitude-pruned to ``sparsity``."""
    net = EnsembleMLP.init(list(seeds))
    if sparsity > 0:
        prune(net, sparsity)
    return net


def replicas(m: int, sparsity: float, task: TaskConfig) -> tuple[EnsembleMLP, EnsembleData]:
    """M replicas at their default initialisation, magnitude-pruned to ``sparsity``, and data."""
    net = pruned_init(range(m), sparsity)
    return net, EnsembleData.build(net.seeds, task)


def bench_train(
    counts, sparsities, steps: int, trials: int, limit: float, short_steps: int = SHORT_STEPS
) -> list[dict]:
    """Engine step vs reference, per replica count and sparsity.

    The step is timed over ``steps`` mini-batches (by default one epoch of the book's 12,000-sample
    training set, the shortest phase any chapter trains): the per-phase set-up (layer plans,
    optimiser state, random streams, writing the weights back) is then spread over as many steps as
    in the book. The engine is also timed on a ``short_steps`` phase, whose set-up weighs
    ``steps / short_steps`` times more per step (``engine_short_*``: what a 16-step run reports).

    A 3072 square product is timed in the same rounds as the variants (interleaved), and
    each row's fraction of the limit is taken against the larger of that interleaved rate and
    ``limit`` (the rate at the start of the run): the machine's speed drifts between minutes, and
    the larger limit gives the smaller, more conservative fraction.
    """
    task = TaskConfig(n_train=steps * BATCH, n_standard=100, n_clean=100)
    short = TaskConfig(n_train=short_steps * BATCH, n_standard=100, n_clean=100)
    n = 3072
    a, b = torch.randn(n, n), torch.randn(n, n)
    rows = []
    for s in sparsities:
        for m in counts:
            net, data = replicas(m, s, task)
            data_short = EnsembleData.build(net.seeds, short)
            x, y = data.x["train"], data.y["train"]
            fns = {
                "engine": lambda: train(net.clone(), data, TrainConfig(epochs=1, lr=1e-4), progress=False),
                "engine_short": lambda: train(net.clone(), data_short, TrainConfig(epochs=1, lr=1e-4), progress=False),
                "reference": lambda: train_reference(net, x, y, steps, lr=1e-4),
                "matmul": lambda: a @ b,
            }
            t = best_times(fns, trials)
            row_limit = max(limit, 2 * n**3 / t.pop("matmul") / 1e9)
            row = {"replicas": m, "sparsity": s, "steps": steps, "short_steps": short_steps, "limit_gflops": row_limit}
            for k, v in t.items():
                samples = m * (short_steps if k == "engine_short" else steps) * BATCH
                row[f"{k}_samples_per_s"] = samples / v
                row[f"{k}_fraction_of_limit"] = samples / v * FLOP_PER_SAMPLE / 1e9 / row_limit
            row["speedup_vs_reference"] = row["engine_samples_per_s"] / row["reference_samples_per_s"]
            rows.append(row)
            print(
                f"  train  M={m:2d} sparsity {s:4.0%}: engine {row['engine_samples_per_s']:9.0f} samples/s "
                f"({row['engine_fraction_of_limit']:6.1%} of {row_limit:.0f} GFLOP/s; "
                f"{row['engine_short_fraction_of_limit']:6.1%} in a {short_steps}-step phase), reference "
                f"{row['reference_samples_per_s']:8.0f} samples/s, ratio {row['speedup_vs_reference']:5.2f}x",
                flush=True,
            )
    return rows


#: The two large layers (out, in) of a replica; the first (2 inputs) and last (4 outputs) are small.
LARGE_LAYERS = ((512, 512), (256, 512))


def bench_ceiling(row: dict, trials: int, reps: int = 10) -> dict:
    """The fastest a dense step of ``row["replicas"]`` replicas could be, from its unavoidable parts.

    Any fp32 training step of the dense network must take, per large layer, the forward product,
    the input gradient and the weight gradient (six products: 99.5% of the step's FLOPs), and update
    every weight and bias with Adam. Both are timed alone, with nothing between them: the products
    at the engine's shapes and memory layouts (activations feature-major: ``W @ H`` with ``H``
    (M, in, 128), the gradients through transposed views), Adam as the engine's fused update
    (:class:`pruneplast.kernels.adam.Adam`) of every parameter of M replicas. Their sum bounds a
    step's time from below (up to the few percent by which other layouts of the same products
    differ: batch-major activations ran 2% faster, a loop of per-replica products 1-8% slower), so
    ``row``'s reference rate over it bounds the engine's ratio to the reference
    (``max_speedup_vs_reference``); ``products_max_speedup`` leaves Adam out too.
    ``row`` is the dense row of :func:`bench_train` with the same replica count (same run).
    """
    m = row["replicas"]
    g = torch.Generator().manual_seed(0)
    ws = [torch.randn(m, o, i, generator=g) * i**-0.5 for o, i in LARGE_LAYERS]
    bs = [torch.randn(m, o, 1, generator=g) for o, _ in LARGE_LAYERS]
    hs = [torch.randn(m, i, BATCH, generator=g).relu() for _, i in LARGE_LAYERS]
    dzs = [torch.randn(m, o, BATCH, generator=g) for o, _ in LARGE_LAYERS]

    def products():
        for _ in range(reps):
            for w, b, h, dz in zip(ws, bs, hs, dzs):
                torch.baddbmm(b, w, h)  # forward
                torch.bmm(dz, h.transpose(1, 2))  # weight gradient
                torch.bmm(w.transpose(1, 2), dz)  # input gradient

    net = EnsembleMLP.init(list(range(m)))
    params = [t.clone() for t in (*net.weights, *net.biases)]
    grads = [torch.randn(p.shape, generator=g) * 1e-3 for p in params]
    opt = Adam(params, lr=1e-4)

    def adam():
        for _ in range(reps):
            opt.step(grads)

    t = best_times({"products": products, "adam": adam}, trials)
    flops = m * BATCH * sum(6 * o * i for o, i in LARGE_LAYERS)
    prod_s, adam_s = t["products"] / reps, t["adam"] / reps
    step_s = m * BATCH / row["engine_samples_per_s"]
    ref = row["reference_samples_per_s"]
    out = {
        "replicas": m,
        "sparsity": row["sparsity"],
        "products_ms": 1e3 * prod_s,
        "products_flop_share": flops / (m * BATCH * FLOP_PER_SAMPLE),
        "products_fraction_of_limit": flops / prod_s / 1e9 / row["limit_gflops"],
        "adam_ms": 1e3 * adam_s,
        "engine_step_ms": 1e3 * step_s,
        "best_step_ms": 1e3 * (prod_s + adam_s),
        "best_samples_per_s": m * BATCH / (prod_s + adam_s),
        "reference_samples_per_s": ref,
        "max_speedup_vs_reference": m * BATCH / (prod_s + adam_s) / ref,
        "products_max_speedup": m * BATCH / prod_s / ref,
        "engine_speedup_vs_reference": row["speedup_vs_reference"],
    }
    print(
        f"  ceiling M={m:2d} dense: six large products {out['products_ms']:.1f} ms "
        f"({out['products_fraction_of_limit']:.0%} of the limit) + Adam {out['adam_ms']:.1f} ms = "
        f"{out['best_step_ms']:.1f} ms per step (engine {out['engine_step_ms']:.1f} ms): at most "
        f"{out['max_speedup_vs_reference']:.2f}x the reference ({out['products_max_speedup']:.2f}x "
        f"without Adam; engine {out['engine_speedup_vs_reference']:.2f}x)",
        flush=True,
    )
    return out


def bench_stress(m: int, sparsities, trials: int, limit: float) -> list[dict]:
    """Every stress condition for every replica (standard 4,000 / clean 2,000 test samples).

    One row per sparsity for ``m`` replicas, and a mixed row as chapter 6 evaluates its
    checkpoints: ``m`` replicas at 47.5% sparsity (dense products) and ``2 m`` at 95% (sparse
    products) in one ensemble, which evaluation splits into homogeneous groups of at most 10.
    """
    task = TaskConfig(n_train=BATCH)
    setups = [(f"{s:.0%} sparse", m, [(s, list(range(m)))]) for s in sparsities]
    setups.append(
        (f"mixed: {m} at 47.5% + {2 * m} at 95%", 3 * m, [(0.475, list(range(m))), (0.95, list(range(m, 3 * m)))])
    )
    rows = []
    for label, total, groups in setups:
        net = EnsembleMLP.concat([pruned_init(seeds, s) for s, seeds in groups])
        data = EnsembleData.build(net.seeds, task)
        conds = list(CONDITIONS)
        samples = total * sum(data.x[CONDITIONS[c].split].shape[1] for c in conds)
        t = best_times({"eval": lambda: evaluate(net, data, conds)}, trials)["eval"]
        row = {
            "networks": label,
            "replicas": total,
            "sparsity": groups[0][0] if len(groups) == 1 else None,
            "conditions": len(conds),
            "seconds": t,
            "samples_per_s": samples / t,
            "fraction_of_limit": samples / t * 2 * N_WEIGHTS / 1e9 / limit,
        }
        rows.append(row)
        print(
            f"  stress M={total:2d} ({label}): {len(conds)} conditions in {t:.2f} s, "
            f"{row['samples_per_s']:.0f} samples/s",
            flush=True,
        )
    return rows


def plain_train(net: EnsembleMLP, data: EnsembleData, config: TrainConfig, tag: str) -> EnsembleMLP:
    """The plain path: per replica ``nn.Sequential`` + ``torch.optim.Adam`` + mask after each step,
    visiting the samples in the engine's order (same per-replica shuffling stream)."""
    out = net.clone()
    for m in range(net.n_replicas):
        model = replica_module(net, m)
        lins = [mod for mod in model if isinstance(mod, torch.nn.Linear)]
        opt = torch.optim.Adam(model.parameters(), lr=config.lr)
        gen = rng.generator(net.seeds[m], tag, "shuffle")
        x, y = data.x["train"][m], data.y["train"][m]
        n = x.shape[0]
        for _ in range(config.epochs):
            perm = torch.randperm(n, generator=gen)
            for k in range(0, n, config.batch_size):
                idx = perm[k : k + config.batch_size]
                opt.zero_grad()
                F.cross_entropy(model(x[idx]), y[idx]).backward()
                opt.step()
                with torch.no_grad():
                    for lin, mk in zip(lins, net.masks):
                        lin.weight.mul_(mk[m])
        with torch.no_grad():
            for i, lin in enumerate(lins):
                out.weights[i][m] = lin.weight
                out.biases[i][m] = lin.bias
    return out


def bench_fp_change(sparsities, epochs: int) -> list[dict]:
    """Engine vs plain path on the same run: 2 replicas, full training set, ``epochs`` epochs."""
    rows = []
    task = TaskConfig()
    for s in sparsities:
        net, data = replicas(2, s, task)
        cfg = TrainConfig(epochs=epochs, lr=1e-3)
        eng = train(net.clone(), data, cfg, tag="fp", progress=False)
        ref = plain_train(net, data, cfg, tag="fp")
        dw = max(float((a - b).abs().max()) for a, b in zip(eng.weights + eng.biases, ref.weights + ref.biases))
        conds = list(CONDITIONS)
        acc_e = evaluate(eng, data, conds)["value"].to_numpy()
        acc_r = evaluate(ref, data, conds)["value"].to_numpy()
        # the forward pass alone: engine kernels vs a dense nn.Linear stack on identical weights
        x = data.x["standard"]
        with torch.no_grad():
            logits_e = eng.forward(x)
            logits_r = torch.stack([replica_module(eng, m)(x[m]) for m in range(eng.n_replicas)])
        row = {
            "sparsity": s,
            "epochs": epochs,
            "max_abs_weight_diff": dw,
            "max_abs_accuracy_diff_points": float(abs(acc_e - acc_r).max()),
            "max_abs_logit_diff_same_weights": float((logits_e - logits_r).abs().max()),
        }
        rows.append(row)
        print(
            f"  fp     sparsity {s:4.0%}, {epochs} epoch(s): max |dW| {dw:.2e}, max |d accuracy| "
            f"{row['max_abs_accuracy_diff_points']:.2f} points, forward max |d logit| "
            f"{row['max_abs_logit_diff_same_weights']:.2e}",
            flush=True,
        )
    return rows


# Paper-scale training work in replica-epochs (12,000 samples each): chapter 6's maintenance
# (300 epochs x 10 seeds per treatment; the ketamine-like networks 47.5% sparse, the others 95%),
# the other 95%-sparse training (SSRI-like 100 epochs and neurosteroid-like 10 epochs x 10 seeds)
# and the rest (baselines, study A's regrown networks, the ketamine-like treatment), which is
# dense or nearly so.
PAPER_REPLICA_EPOCHS = {"maintenance": 3 * 10 * 300, "sparse_95": 10 * 100 + 10 * 10, "dense": 12_500 - 9_000 - 1_100}


def paper_estimate(
    train_rows: list[dict], maintenance_rows: list[dict], m: int = 10, workers: dict | None = None
) -> dict:
    """Training time of the paper-scale work at the measured M-replica rates (s), engine and reference.

    Maintenance at the maintenance rows' step times (networks shaped like chapter 6's); the other
    work at the 95% and dense training rows. The reference trains the maintenance networks at its
    dense (ketamine-like) and 95% rates. With a ``workers`` row (:func:`bench_maintenance_workers`)
    the maintenance is also given as the book runs it, in one process per core (its speed-up without
    the workers' start-up, which a 300-epoch run pays once).
    """
    rate = {r["sparsity"]: r["engine_samples_per_s"] for r in train_rows if r["replicas"] == m}
    ref = {r["sparsity"]: r["reference_samples_per_s"] for r in train_rows if r["replicas"] == m}
    n = 12_000
    per = PAPER_REPLICA_EPOCHS["maintenance"] // len(maintenance_rows)  # replica-epochs per treatment
    maint = sum(r["maintenance_300_epochs_s"] for r in maintenance_rows)
    maint_ref = sum(per * n / ref[0.0 if r["sparsity"] < 0.9 else 0.95] for r in maintenance_rows)
    rest = PAPER_REPLICA_EPOCHS["sparse_95"] * n / rate[0.95] + PAPER_REPLICA_EPOCHS["dense"] * n / rate[0.0]
    rest_ref = PAPER_REPLICA_EPOCHS["sparse_95"] * n / ref[0.95] + PAPER_REPLICA_EPOCHS["dense"] * n / ref[0.0]
    out = {
        "replica_epochs": PAPER_REPLICA_EPOCHS,
        "at_replicas": m,
        "engine_s": maint + rest,
        "reference_s": maint_ref + rest_ref,
        "maintenance_s": maint,
        "maintenance_reference_s": maint_ref,
        "other_s": rest,
        "other_reference_s": rest_ref,
    }
    if workers:  # a 300-epoch run starts its workers once: the speed-up without the start-up
        out["maintenance_in_workers_s"] = maint / (workers["speedup_after_startup"] or workers["speedup"])
        out["engine_in_workers_s"] = out["maintenance_in_workers_s"] + rest
    print(
        f"  paper-scale training ({sum(PAPER_REPLICA_EPOCHS.values())} replica-epochs) at M={m} rates: "
        f"engine {out['engine_s'] / 60:.1f} min (maintenance {maint / 60:.1f}), reference "
        f"{out['reference_s'] / 60:.1f} min (maintenance {maint_ref / 60:.1f}): "
        f"{out['reference_s'] / out['engine_s']:.1f}x",
        flush=True,
    )
    if workers:
        print(
            f"  with the maintenance in {workers['workers']} workers: maintenance "
            f"{out['maintenance_in_workers_s'] / 60:.1f} min, engine {out['engine_in_workers_s'] / 60:.1f} min "
            f"({out['reference_s'] / out['engine_in_workers_s']:.1f}x the reference)",
            flush=True,
        )
    return out


#: Chapter 6's maintenance per treatment: (sparsity, modulation with the drug and mood stabiliser on).
MAINTENANCE = {
    "ketamine": (0.475, dict(gain=1.25, protection=1.0)),
    "ssri": (0.95, dict(gain=1.6, protection=1.0)),
    "neurosteroid": (0.95, dict(gain=0.85, damping=0.7, activation="tanh", protection=1.0)),
}


def maintenance_replicas(name: str, m: int, task: TaskConfig) -> tuple[EnsembleMLP, EnsembleData]:
    """M replicas shaped like chapter 6's networks of one treatment, drug and mood stabiliser on.

    95% magnitude-pruned initialisations; the ketamine-like ones then regrow half of their pruned
    weights by gradient (as the treatment does), which leaves 47.5% sparsity and the unit structure
    gradient regrowth produces (first-layer units without input stay without input).
    """
    net, data = replicas(m, 0.95, task)
    if name == "ketamine":
        regrow(net, data, RegrowConfig(fraction=0.5))
    return net.set_modulation(**MAINTENANCE[name][1]), data


def bench_maintenance(steps: int, trials: int, m: int = 10) -> list[dict]:
    """Chapter 6's maintenance step per treatment: M replicas with the drug and the mood stabiliser on.

    Ketamine-like networks are 47.5% sparse (dense products), the others 95% (sparse products);
    modulation as in the study (gain, damping, tanh, protection p = 1.0), lr 1e-6. Maintenance has
    no internal noise, so the engine multiplies the live units only (compact layers); the same step
    multiplying every kept weight (``compact=False``) is timed beside it. Reported: ms per step of
    both, the implied time of the book's maintenance (300 epochs of 94 steps per treatment), the
    live and constant units per hidden layer (min-max over replicas), and after one epoch at lr
    1e-3 (an epoch that moves the weights) the largest weight difference between the two, how many
    weights differ by more than 1e-4, and the largest logit difference on the test set.
    """
    task = TaskConfig(n_train=steps * BATCH, n_standard=100, n_clean=100)
    nets = {name: maintenance_replicas(name, m, task) for name in MAINTENANCE}
    fns = {}
    for name, (net, data) in nets.items():
        for compact in (True, False):
            fns[(name, compact)] = lambda net=net, data=data, c=compact: train(
                net.clone(), data, TrainConfig(epochs=1, lr=1e-6), progress=False, compact=c
            )
    t = best_times(fns, trials)
    rows = []
    for name, (net, data) in nets.items():
        ms, full = t[(name, True)] / steps * 1e3, t[(name, False)] / steps * 1e3
        live, const = unit_roles(net.masks)
        a = train(net.clone(), data, TrainConfig(epochs=1, lr=1e-3), progress=False, compact=True)
        b = train(net.clone(), data, TrainConfig(epochs=1, lr=1e-3), progress=False, compact=False)
        diff = max_weight_diff(a, b)
        # Adam's first steps move a weight by about lr whatever its gradient's size, so a weight whose
        # gradient is at rounding level can take either sign in the two passes: count those
        n_far = sum(int(((x - y).abs() > 1e-4).sum()) for x, y in zip(a.weights, b.weights))
        with torch.no_grad():
            x = data.x["standard"]
            logit_diff = float((a.forward(x) - b.forward(x)).abs().max())
        row = {
            "treatment": name,
            "replicas": m,
            "sparsity": float(net.weight_sparsity().mean()),
            "ms_per_step": ms,
            "all_units_ms_per_step": full,
            "live_units_speedup": full / ms,
            "maintenance_300_epochs_s": 300 * EPOCH_STEPS * ms / 1e3,
            "live_units": [[int(v.sum(1).min()), int(v.sum(1).max())] for v in live],
            "constant_units": [[int(v.sum(1).min()), int(v.sum(1).max())] for v in const],
            "max_abs_diff_after_epoch": diff,
            "weights_differing_over_1e-4": n_far,
            "kept_weights": int(sum(int(mk.sum()) for mk in net.masks)),
            "max_abs_logit_diff_after_epoch": logit_diff,
        }
        rows.append(row)
        print(
            f"  maintenance {name:12s} M={m}: {ms:6.1f} ms/step ({full:.1f} on every unit, "
            f"{row['live_units_speedup']:.2f}x); 300 epochs: {row['maintenance_300_epochs_s'] / 60:.1f} min; "
            f"live units per layer {row['live_units']}; after an lr-1e-3 epoch: max |weight difference| {diff:.1e} "
            f"({n_far} of {row['kept_weights']} kept weights differ by > 1e-4), "
            f"max |logit difference| {logit_diff:.1e}",
            flush=True,
        )
    return rows


def max_weight_diff(a: EnsembleMLP, b: EnsembleMLP) -> float:
    """Largest absolute difference between two ensembles' weights and biases."""
    return max(float((x - y).abs().max()) for x, y in zip(a.weights + a.biases, b.weights + b.biases))


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


def one_process_vs_workers(run, workers: int) -> tuple[dict, dict]:
    """Time ``run(1)`` and ``run(workers)`` interleaved (best of two each) and the workers' start-up.

    Returns (the timing fields of a benchmark row, {1: run(1), workers: run(workers)} of the last trials).
    """
    times, out = {}, {}
    for w in (1, workers, 1, workers):
        t = time.perf_counter()
        out[w] = run(w)
        times[w] = min(times.get(w, math.inf), time.perf_counter() - t)
    startup = worker_startup(workers)
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


def bench_maintenance_workers(epochs: int, m: int = 10) -> dict | None:
    """Chapter 6's maintenance of all three treatments in one process and in one worker per core.

    The same networks as :func:`bench_maintenance`, ``epochs`` epochs at lr 1e-6 through
    :func:`pruneplast.protocols.longitudinal.maintain` with ``workers=1`` (one ensemble after the
    other, every core on each) and ``workers=0`` (one process per core, the ketamine-like ensemble
    split between them). Wall times include starting the worker processes. The floating-point
    change is the largest weight difference between the two after an lr-1e-3 run of the same
    length (an lr that moves the weights). None on a single core.
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


def bench_treatment_workers(epochs: dict, m: int = 10) -> dict | None:
    """Chapter 5's treatment courses in one process and in one worker per core.

    ``treatments.treat`` on M 95%-pruned initialisations (the pruned state's shape), every treatment
    with the given epochs (the SSRI-like schedule compressed to its course), ``workers=1`` against
    ``workers=0``; the ketamine-like ensemble (47.5% sparse after regrowth) and the noisy SSRI-like
    one are split between the processes. Wall times include the regrowth scores (in the calling
    process) and starting the workers; the floating-point change is the largest weight difference
    per treatment between the two. None on a single core.
    """
    workers = parallel.usable_cores()
    if workers < 2:
        print("  treatment workers: one core here, nothing to compare", flush=True)
        return None
    net, data = replicas(m, 0.95, TaskConfig(n_train=EPOCH_STEPS * BATCH, n_standard=100, n_clean=100))
    cfgs = treatments.configs(epochs=epochs)
    timing, states = one_process_vs_workers(lambda w: treatments.treat(net, data, cfgs, workers=w), workers)
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


def bench_chapters(profile: str) -> list[dict]:
    """Wall time and peak memory (max RSS of the run and its kernel) of every registered chapter."""
    from pruneplast.chapters import CHAPTERS

    exe = Path(sys.executable).with_name("pruneplast")
    rows = []
    for name in CHAPTERS:
        with tempfile.TemporaryDirectory() as out:
            t = time.perf_counter()
            proc = subprocess.Popen([str(exe), "run", name, "--profile", profile, "--out", out])
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t
        row = {
            "chapter": name,
            "profile": profile,
            "wall_s": wall,
            "peak_rss_mib": usage.ru_maxrss / 1024,
            "ok": os.waitstatus_to_exitcode(status) == 0,
        }
        rows.append(row)
        print(
            f"  chapter {name} ({profile}): {wall:.0f} s, peak {row['peak_rss_mib']:.0f} MiB"
            + ("" if row["ok"] else "  FAILED"),
            flush=True,
        )
    return rows


def book_timings(build_dirs: list[Path], previous: dict | None = None) -> dict:
    """The per-page timings of the latest book builds in ``build_dirs``, by profile (see module doc).

    A profile with no build in any of ``build_dirs`` keeps its record from ``previous`` (the
    ``book`` section of the results file being replaced), which carries its own ``built_at`` date.
    """
    out = {}
    for profile in ("quick", "paper"):
        found = sorted(
            (f for d in build_dirs for f in Path(d).glob(f"**/timings-{profile}.json")), key=lambda f: f.stat().st_mtime
        )
        if not found and previous and profile in previous:
            out[profile] = previous[profile]
            print(
                f"  book ({profile}): no build in {', '.join(map(str, build_dirs))}; keeping the record "
                f"built {previous[profile].get('built_at', '?')}",
                flush=True,
            )
        if found:  # the newest (make book writes _build/, make test _build/test/)
            f = found[-1]
            rec = json.loads(f.read_text())
            rec["built_at"] = time.strftime("%Y-%m-%d %H:%M", time.localtime(f.stat().st_mtime))
            old = (previous or {}).get(profile, {})
            if old.get("built_at") == rec["built_at"] and "make_book_wall_s" in old:
                rec["make_book_wall_s"] = old["make_book_wall_s"]  # the same build, timed from outside
            out[profile] = rec
            print(
                f"  book ({profile}, built {rec['built_at']}): {rec['total_s'] / 60:.1f} min, "
                f"peak {rec['peak_rss_mib']:.0f} MiB",
                flush=True,
            )
    return out


def _write_json(res: dict, out: Path) -> None:
    atomic_write(out, json.dumps(res, indent=1))
    print(f"written {out}")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer trials and steps (a smoke run)")
    ap.add_argument("--chapters", choices=("quick", "paper"), help="also time every chapter at this profile")
    ap.add_argument("--out", default=str(HERE / "results.json"))
    ap.add_argument(
        "--build-dir",
        nargs="+",
        default=[str(HERE.parent / "_build")],
        help="where `pruneplast book` left timings-<profile>.json (default: _build); "
        "several folders may be given, the newest build of each profile is used",
    )
    ap.add_argument(
        "--book-only",
        action="store_true",
        help="only refresh the book timings of an existing results file (measures nothing)",
    )
    ap.add_argument(
        "--make-book-wall",
        metavar="PROFILE=SECONDS",
        action="append",
        default=[],
        help="with --book-only: wall time of `make book` in a fresh clone (install included), "
        "timed outside the build, recorded with that profile's newest build",
    )
    args = ap.parse_args(argv)
    out = Path(args.out)
    walls = {}
    for item in args.make_book_wall:
        prof, _, sec = item.partition("=")
        try:
            walls[prof] = float(sec)
        except ValueError:
            ap.error(f"--make-book-wall takes PROFILE=SECONDS, e.g. paper=3441; got {item!r}")
        if prof not in ("quick", "paper") or walls[prof] <= 0:
            ap.error(f"--make-book-wall: profile must be quick or paper and seconds > 0; got {item!r}")
    if walls and not args.book_only:
        ap.error("--make-book-wall goes with --book-only")
    if args.book_only:
        if not out.exists():
            ap.error(f"--book-only needs an existing results file ({out}); run the benchmark first")
        res = json.loads(out.read_text())
        res["book"] = book_timings([Path(d) for d in args.build_dir], res.get("book"))
        for prof, sec in walls.items():
            if prof not in res["book"]:
                ap.error(f"--make-book-wall {prof}: no {prof} build found in {', '.join(args.build_dir)}")
            res["book"][prof]["make_book_wall_s"] = sec
        _write_json(res, out)
        return res
    warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
    set_progress(False)
    trials, steps = (2, 4) if args.quick else (5, EPOCH_STEPS)
    counts, sparsities = (1, 10, 30), (0.0, 0.95)

    res = {
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "load_average_at_start": os.getloadavg(),
        },
        "flop_per_sample": FLOP_PER_SAMPLE,
        "batch_size": BATCH,
    }
    t0 = time.perf_counter()
    print(f"threads: {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}", flush=True)
    res["matmul"] = matmul_limit(trials + 2)
    res["limit"] = quiet_limit(6 if args.quick else 40)
    limit = max(res["matmul"]["limit_gflops"], res["limit"]["limit_gflops"])
    print(f"  matmul fp32 limit: {limit:.1f} GFLOP/s", flush=True)
    res["train"] = bench_train(counts, sparsities, steps, trials, limit, short_steps=min(steps, SHORT_STEPS))
    dense10 = next(r for r in res["train"] if r["replicas"] == 10 and r["sparsity"] == 0.0)
    res["ceiling"] = bench_ceiling(dense10, 3 * trials)
    res["step_kinds"] = bench_step_kinds(steps, trials, limit)
    res["fused_step"] = bench_fused_step(steps, trials)
    res["maintenance"] = bench_maintenance(steps, trials)
    res["maintenance_workers"] = bench_maintenance_workers(2 if args.quick else 8)
    res["treatment_workers"] = bench_treatment_workers(
        {"ketamine": 1, "ssri": 2, "neurosteroid": 1} if args.quick else {"ketamine": 3, "ssri": 10, "neurosteroid": 2}
    )
    res["busy"] = bench_busy(epochs=1, n_train=1024 if args.quick else 12_000, trials=1 if args.quick else 2)
    res["paper_estimate"] = paper_estimate(res["train"], res["maintenance"], workers=res["maintenance_workers"])
    res["stress"] = bench_stress(10, sparsities, trials, limit)
    res["fp_change"] = bench_fp_change(sparsities, 1)
    if args.chapters:
        res["chapters"] = bench_chapters(args.chapters)
    previous = json.loads(out.read_text()).get("book") if out.exists() else None
    res["book"] = book_timings([Path(d) for d in args.build_dir], previous)
    res["matmul_end"] = matmul_limit(trials + 2)  # the limit again: how much the load moved
    # every fraction against the best rate any product reached in this run
    seen = [limit, res["matmul_end"]["limit_gflops"]] + [r["limit_gflops"] for r in res["train"]]
    res["limit"]["run_best_gflops"] = max(seen)
    refer_to_limit(res, max(seen))
    res["machine"]["load_average_at_end"] = os.getloadavg()
    res["seconds"] = time.perf_counter() - t0
    print(
        f"  matmul fp32 at the end: {res['matmul_end']['limit_gflops']:.1f} GFLOP/s; "
        f"benchmark took {res['seconds']:.0f} s",
        flush=True,
    )
    _write_json(res, out)
    return res


if __name__ == "__main__":
    main()
