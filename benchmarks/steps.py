"""The engine's steps, measured (``make bench``, :mod:`bench`): training steps against the limit,
their floors and the common way, the compiled fused step, chapter 6's maintenance step, the
stress tests' evaluation, and the floating-point change against the plain path.
"""

from __future__ import annotations

import functools
import math
import os
import time

import torch
import torch.nn.functional as F
from limit import best_times, memory_rate
from reference import replica_module, train_reference
from setups import (
    BATCH,
    EPOCH_STEPS,
    FLOP_PER_SAMPLE,
    LARGE_LAYERS,
    MAINTENANCE,
    N_WEIGHTS,
    SHORT_STEPS,
    maintenance_replicas,
    max_weight_diff,
    pruned_init,
    replicas,
)

from pruneplast import rng
from pruneplast.config import TaskConfig, TrainConfig
from pruneplast.data import EnsembleData
from pruneplast.kernels import fused
from pruneplast.kernels.compact import unit_roles
from pruneplast.network import EnsembleMLP
from pruneplast.operators import Adam, train
from pruneplast.stress import CONDITIONS, evaluate


def step_work(net: EnsembleMLP, noise: bool) -> dict:
    """The arithmetic and memory a training step of ``net`` cannot avoid, per step of BATCH samples.

    Multiplied weights: without internal noise the engine multiplies live units only (compact
    layers), with it every unit that reaches a logit; per layer and replica the block of those
    output and input units, its kept weights counted as CSR (below 15% density) or the whole block
    as a dense product (at or above). FLOPs: 6 per multiplied weight and sample (forward 2, input
    and weight gradients 2 each). Trainable: what the engine trains, every kept weight and bias
    that can change a logit: the block's kept weights and its output units' biases, and without
    noise also the constant units' biases and the kept weights from constant units into the units
    that reach a logit, which the engine folds into the next layer's bias (once per step, not per
    sample, so not among the FLOPs; :func:`pruneplast.kernels.compact.unit_roles`). Memory: every
    trainable entry read and written with its gradient and Adam's two moments (7 float32 passes),
    plus the hidden activations of the batch stored and read back (4 passes), plus the noise drawn
    (1 pass) when there is noise.
    """
    live, const = unit_roles(net.masks, noise=noise)
    m = net.n_replicas
    ones_in = torch.ones(m, net.masks[0].shape[2], dtype=torch.bool)
    ones_out = torch.ones(m, net.masks[-1].shape[1], dtype=torch.bool)
    rows_of = [*live, ones_out]
    cols_of = [ones_in, *live]
    reach_of = [*(v | c for v, c in zip(live, const)), ones_out]  # units whose inputs are trained
    const_in = [None, *const]  # each layer's constant input units (the inputs vary)
    multiplied, trainable = 0, 0
    for mk, r, c, reach, fold in zip(net.masks, rows_of, cols_of, reach_of, const_in):
        for k in range(m):
            block = mk[k][r[k]][:, c[k]]
            kept = int(block.sum())
            cells = block.numel()
            multiplied += kept if kept < 0.15 * max(cells, 1) else cells
            trainable += kept + int(r[k].sum())  # kept weights and the biases of the block's units
            if fold is not None:  # kept weights from constant units, folded into the bias
                trainable += int(mk[k][reach[k]][:, fold[k]].sum())
    trainable += sum(int(v.sum()) for v in const)  # the constant units' biases
    units = sum(int(v.sum()) for v in live)
    flops = 6 * multiplied * BATCH
    nbytes = 4 * (7 * trainable + 4 * units * BATCH + (units * BATCH if noise else 0))
    return {"multiplied_weights": multiplied, "trainable": trainable, "flops_per_step": flops, "bytes_per_step": nbytes}


def set_floor(row: dict) -> None:
    row["floor_ms"] = max(row["flop_floor_ms"], row["memory_floor_ms"])
    row["bound"] = "FLOP" if row["flop_floor_ms"] >= row["memory_floor_ms"] else "memory"
    row["times_floor"] = row["ms_per_step"] / row["floor_ms"]


#: The step kinds of the book (10 replicas each): dense baselines, the ketamine-like 47.5%-sparse
#: networks, 95%-sparse networks without noise (consolidation, maintenance), the same with the
#: SSRI-like course's internal noise.
STEP_KINDS = (("dense", 0.0, False), ("47.5%", 0.475, False), ("95%", 0.95, False), ("noisy", 0.95, True))


def bench_step_kinds(
    steps: int, trials: int, limit: float, m: int = 10, noise_sd: float = 0.5, threads: int | None = None
) -> list[dict]:
    """Each step kind's time per step against its own floor: the FLOP floor (its multiplied weights
    at the limit) or the memory floor (its unavoidable passes at :func:`memory_rate`), whichever is
    larger (:func:`step_work`). Trained over ``steps`` mini-batches, best of ``trials``, at
    ``threads`` torch threads (None: the run's); ``limit`` is the product rate at that many threads."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _step_kinds(steps, trials, limit, m, noise_sd)
    finally:
        torch.set_num_threads(before)


def _step_kinds(steps: int, trials: int, limit: float, m: int, noise_sd: float) -> list[dict]:
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
            "threads": torch.get_num_threads(),
            "limit_gflops": limit,
            "sparsity": float(net.weight_sparsity().mean()),
            "noise_sd": noise_sd if noisy else 0.0,
            "ms_per_step": t[name] / steps * 1e3,
            **work,
            "flop_floor_ms": work["flops_per_step"] / limit / 1e6,
            "memory_gb_per_s": rate,
            "memory_floor_ms": work["bytes_per_step"] / rate / 1e6,
        }
        set_floor(row)
        rows.append(row)
        print(
            f"  step {name:6s} M={m}, {row['threads']} thread(s): {row['ms_per_step']:6.2f} ms; "
            f"floor {row['floor_ms']:.2f} ms "
            f"({row['bound']}-bound: {row['multiplied_weights'] / m:,.0f} multiplied weights per replica at "
            f"{limit:.0f} GFLOP/s -> {row['flop_floor_ms']:.2f} ms, {row['bytes_per_step'] / 1e6:.1f} MB at "
            f"{rate:.0f} GB/s -> {row['memory_floor_ms']:.2f} ms): {row['times_floor']:.1f}x the floor",
            flush=True,
        )
    return rows


def bench_fused_step(
    steps: int, trials: int, m: int = 10, noise_sd: float = 0.5, check_steps: int = 8, limit_1: float | None = None
) -> dict:
    """The fused step (the default, :mod:`pruneplast.kernels.fused`) against the
    standard path: 10 replicas at 95%, one thread, without and with internal noise, ms per step over
    ``steps`` mini-batches (phase set-up included, best of ``trials``), and how far the two paths'
    weights are apart after ``check_steps`` and after ``steps`` steps (max |dW|, summation order),
    with the load average while it ran (other processes share the cores).

    Each kind's floor at one thread, as :func:`bench_step_kinds` takes it (:func:`step_work`):
    ``limit_1`` GFLOP/s (one thread's product rate; timed here when None) and the one-thread
    :func:`memory_rate`; with noise, plus the time of drawing the noise of a step from the random
    streams (``noise_draw_ms``, timed in the same rounds: both paths draw the same numbers).
    ``*_times_floor``: each path's time per step over that floor."""
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
        if limit_1 is None:
            a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
            limit_1 = 2 * 2048**3 / best_times({"mm": lambda: a @ b}, trials + 1)["mm"] / 1e9
        rate_1 = memory_rate()
        cpu: dict = {}
        gens = net.generators("bench", "noise")

        def timed(key, fn):
            c = time.process_time()
            fn()
            cpu[key] = min(cpu.get(key, math.inf), time.process_time() - c)

        fns = {
            (p, k): functools.partial(timed, (p, k), functools.partial(run, p, sd))
            for k, sd in kinds.items()
            for p in ("standard", "fused")
        }
        fns["draw"] = lambda: [net.hidden_noise(BATCH, gens) for _ in range(steps)]
        t = best_times(fns, trials)
        draw_ms = t["draw"] / steps * 1e3
        rows = []
        for kind, sd in kinds.items():
            work = step_work(net, sd > 0)
            floor = max(work["flops_per_step"] / limit_1 / 1e6, work["bytes_per_step"] / rate_1 / 1e6)
            floor += draw_ms if sd > 0 else 0.0
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
            row.update(
                limit_1_thread_gflops=limit_1,
                memory_1_thread_gb_per_s=rate_1,
                noise_draw_ms=draw_ms if sd > 0 else 0.0,
                floor_ms=floor,
                standard_times_floor=row["standard_ms_per_step"] / floor,
                fused_times_floor=row["fused_ms_per_step"] / floor,
            )
            rows.append(row)
            print(
                f"  fused step {kind:5s} M={m}, 1 thread: {row['standard_ms_per_step']:6.2f} -> "
                f"{row['fused_ms_per_step']:6.2f} ms ({row['speedup']:.1f}x; CPU time "
                f"{row['standard_cpu_ms_per_step']:.2f} -> {row['fused_cpu_ms_per_step']:.2f} ms); floor "
                f"{floor:.2f} ms{f' (noise draw {draw_ms:.2f} ms included)' if sd > 0 else ''}: "
                f"{row['standard_times_floor']:.1f}x -> {row['fused_times_floor']:.1f}x; max |dW| "
                f"{diffs[0]:.1e} after {check_steps} steps, {diffs[1]:.1e} after {steps}",
                flush=True,
            )
    finally:
        torch.set_num_threads(threads)
        if before is None:
            os.environ.pop(fused.ENV, None)
        else:
            os.environ[fused.ENV] = before
    return {"rows": rows, "load_average": [*load, *os.getloadavg()]}


def bench_train(
    counts, sparsities, steps: int, trials: int, limit: float, short_steps: int = SHORT_STEPS, matmul_n: int = 3072
) -> list[dict]:
    """Engine step vs reference, per replica count and sparsity.

    The step is timed over ``steps`` mini-batches (by default one epoch of the book's 12,000-sample
    training set, the shortest phase any chapter trains): the per-phase set-up (layer plans,
    optimiser state, random streams, writing the weights back) is then spread over as many steps as
    in the book. The engine is also timed on a ``short_steps`` phase, whose set-up weighs
    ``steps / short_steps`` times more per step (``engine_short_*``: what a 16-step run reports).

    A square product of side ``matmul_n`` (3072) is timed in the same rounds as the variants
    (interleaved), and each row's fraction of the limit is taken against the larger of that
    interleaved rate and ``limit`` (the rate at the start of the run): the machine's speed drifts
    between minutes, and the larger limit gives the smaller, more conservative fraction.
    """
    task = TaskConfig(n_train=steps * BATCH, n_standard=100, n_clean=100)
    short = TaskConfig(n_train=short_steps * BATCH, n_standard=100, n_clean=100)
    n = matmul_n
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


def _denormal_share(net: EnsembleMLP, data: EnsembleData) -> float:
    """Share of the nonzero weight gradients of one mini-batch that are denormal, denormals kept."""
    from pruneplast.operators import ensemble_loss, minibatch

    probe = net.clone()
    for w in probe.weights:
        w.requires_grad_(True)
    idx = torch.arange(BATCH).expand(probe.n_replicas, BATCH)
    x, y = minibatch(data, idx)
    ensemble_loss(probe.forward(x), y).backward()
    grads = torch.cat([w.grad.flatten() for w in probe.weights])
    nonzero = grads[grads != 0].abs()
    return float((nonzero < torch.finfo(torch.float32).tiny).float().mean()) if nonzero.numel() else 0.0


def bench_denormals(
    trials: int,
    m: int = 2,
    cycles: int = 10,
    epochs_per_cycle: int = 2,
    baseline_epochs: int = 20,
    task: TaskConfig | None = None,
) -> dict:
    """Denormals flushed (the engine's mode) against kept, late in the chronic regimen.

    ``m`` replicas trained ``baseline_epochs`` epochs dense (on ``task``, the book's by default),
    pruned to 95%, then regrown by 40% of the still-pruned weights and trained
    ``epochs_per_cycle`` epochs per cycle for ``cycles`` cycles, denormals flushed: a nearly dense
    network late in training, as the chronic regimen's last cycles. From
    that state one more epoch is timed with denormals kept and flushed (interleaved, best of
    ``trials``), one thread; the row gives each step time, the speed-up, the share of denormal
    gradients, and the largest weight difference between the two epochs' results."""
    from pruneplast.config import RegrowConfig
    from pruneplast.kernels import denormals
    from pruneplast.operators import prune, regrow

    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        task = task or TaskConfig()
        net, data = replicas(m, 0.0, task)
        train(net, data, TrainConfig(epochs=baseline_epochs, lr=1e-3), tag="base", progress=False)
        prune(net, 0.95)
        for k in range(1, cycles + 1):
            regrow(net, data, RegrowConfig(fraction=0.4, init_std=0.03), tag=f"cycle{k}")
            train(net, data, TrainConfig(epochs=epochs_per_cycle, lr=1e-3), tag=f"cycle{k}", progress=False)
        kept_fraction = float(sum(mk.sum() for mk in net.masks) / sum(mk.numel() for mk in net.masks))
        cfg = TrainConfig(epochs=1, lr=1e-3)
        results = {}

        def run(mode):
            out = net.clone()
            if mode == "kept":
                with denormals.kept():
                    train(out, data, cfg, tag="timed", progress=False)
            else:
                train(out, data, cfg, tag="timed", progress=False)
            results[mode] = out

        best = best_times({"kept": lambda: run("kept"), "flushed": lambda: run("flushed")}, trials)
        with denormals.kept():
            share = _denormal_share(net, data)
    finally:
        torch.set_num_threads(prev)
    steps = math.ceil(task.n_train / BATCH)
    row = {
        "replicas": m,
        "threads": 1,
        "kept_fraction_of_weights": kept_fraction,
        "denormal_share_of_gradients": share,
        "steps": steps,
        "kept_ms_per_step": 1e3 * best["kept"] / steps,
        "flushed_ms_per_step": 1e3 * best["flushed"] / steps,
        "speedup": best["kept"] / best["flushed"],
        "max_abs_weight_diff_after_epoch": max_weight_diff(results["kept"], results["flushed"]),
    }
    print(
        f"  denormals: {kept_fraction:.1%} of weights kept, {share:.2%} of gradients denormal; one epoch "
        f"{row['kept_ms_per_step']:.1f} ms/step kept, {row['flushed_ms_per_step']:.1f} flushed "
        f"({row['speedup']:.2f}x); max |dW| {row['max_abs_weight_diff_after_epoch']:.1e}",
        flush=True,
    )
    return row
