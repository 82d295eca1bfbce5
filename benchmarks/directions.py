"""Directions measured: spare CPU for the noise or a second job (adopted: ``pruneplast.parallel``); a compiled kernel.

``python benchmarks/directions.py [--quick] [--out FILE]`` (written to
``benchmarks/directions.json``). Every comparison is made in one run, variants interleaved, best
of several trials (as in ``bench.py``, :func:`limit.best_times`). The rows:

* ``noise_draw``: torch draws a CPU generator's normal numbers on one thread. Each replica has its
  own generator, so the replicas' blocks can be drawn on both cores and stay bit-identical. How
  much faster is the draw alone, for a training batch (128) and a test batch (1,000)?
* ``noisy_step``: what internal noise costs a 10-replica training step (the SSRI-like treatment
  draws it every step), and whether drawing the next step's noise on a second thread while the
  step computes hides that cost;
* ``stress_battery``: the whole stress battery of 10 replicas with the engine's serial draw and
  with the replicas' noise drawn on both cores (results checked identical);
* ``side_by_side``: chapter 6's ketamine-like (47.5%, dense products) and SSRI-like (95%, sparse
  products) maintenance steps, one after the other at two threads against two processes at one
  thread each at the same time: how much throughput is left over when one job uses both cores;
* ``sparse_kernel`` (needs Numba: ``pip install -e '.[bench]'``, which ``make bench-directions``
  does): a compiled CSR x dense kernel (rows in parallel, each output summed over the row's kept
  weights in order) against torch's CSR product, per product and inside 95%-sparse maintenance
  steps, with the results compared bit for bit.

The parallel draw (:func:`parallel_fill`) and the kernel are the script's own; the engine draws
serially and multiplies with torch's CSR product (``benchmarks/README.md`` says why). Training
phases without internal noise run on the live units only (``pruneplast.kernels.compact.compact_plans``);
``bench.py``'s maintenance rows (``steps.py``) measure that against multiplying every kept weight.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from limit import best_times  # noqa: E402
from setups import BATCH, MAINTENANCE, replicas  # noqa: E402

import pruneplast.kernels.layers as layers  # noqa: E402
import pruneplast.network as network  # noqa: E402
from pruneplast import rng  # noqa: E402
from pruneplast.config import TaskConfig, TrainConfig  # noqa: E402
from pruneplast.operators import Adam, ensemble_loss, minibatch, shuffle_order, train  # noqa: E402
from pruneplast.progress import set_progress  # noqa: E402
from pruneplast.results import atomic_write  # noqa: E402
from pruneplast.stress import evaluate  # noqa: E402

HIDDEN = (512, 512, 256)
_pool: ThreadPoolExecutor | None = None


def serial_fill(blocks) -> None:
    """Each (tensor, generator) pair filled with N(0, 1) in order, on this thread (the engine's way)."""
    for t, g in blocks:
        t.normal_(generator=g)


def parallel_fill(blocks, threads: int = 2) -> None:
    """The same draws split over ``threads`` threads (round robin); each block gets the same numbers."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=max(1, threads - 1))
    parts = [blocks[i::threads] for i in range(threads)]
    futures = [_pool.submit(serial_fill, p) for p in parts[1:]]
    serial_fill(parts[0])
    for f in futures:
        f.result()


def _gens(m: int, tag: str = "noise") -> list[torch.Generator]:
    return [rng.generator(s, tag) for s in range(m)]


def noise_draw(m: int, batches, trials: int) -> list[dict]:
    """Rate (M samples/s) of drawing one batch's internal noise, serially and on two threads."""
    rows = []
    for b in batches:
        outs = [torch.empty(m, b, w) for w in HIDDEN]
        gs, gp = _gens(m), _gens(m)
        ser = lambda: [serial_fill(list(zip(o, gs))) for o in outs]  # noqa: E731
        par = lambda: [parallel_fill(list(zip(o, gp))) for o in outs]  # noqa: E731
        t = best_times({"serial": ser, "parallel": par}, trials)
        # identical numbers: both generator sets have made the same draws, so their next must agree
        a, c = [torch.empty(m, b, w) for w in HIDDEN], [torch.empty(m, b, w) for w in HIDDEN]
        [serial_fill(list(zip(o, gs))) for o in a]
        [parallel_fill(list(zip(o, gp))) for o in c]
        n = m * b * sum(HIDDEN)
        row = {
            "replicas": m,
            "batch": b,
            "samples": n,
            "serial_ms": t["serial"] * 1e3,
            "parallel_ms": t["parallel"] * 1e3,
            "serial_msamples_per_s": n / t["serial"] / 1e6,
            "parallel_msamples_per_s": n / t["parallel"] / 1e6,
            "speedup": t["serial"] / t["parallel"],
            "identical": all(torch.equal(x, y) for x, y in zip(a, c)),
        }
        rows.append(row)
        print(
            f"  noise draw M={m} batch {b:5d}: serial {row['serial_msamples_per_s']:5.0f} M/s, two threads "
            f"{row['parallel_msamples_per_s']:5.0f} M/s ({row['speedup']:.2f}x), identical: {row['identical']}",
            flush=True,
        )
    return rows


def noisy_step(m: int, sparsities, steps: int, trials: int) -> list[dict]:
    """ms per 10-replica training step: no noise, noise drawn in the step, next step's noise prefetched."""
    rows = []
    pool = ThreadPoolExecutor(max_workers=1)
    for s in sparsities:
        net, data = replicas(m, s, TaskConfig(n_train=steps * BATCH, n_standard=100, n_clean=100))
        net.set_modulation(**MAINTENANCE["ssri"][1])  # SSRI-like gain, mood stabiliser on
        plans = net.plans()
        parts = [
            [None if t is None else t.detach().clone().requires_grad_(True) for t in p.split(w)]
            for p, w in zip(plans, net.weights)
        ]
        biases = [b.detach().clone().requires_grad_(True) for b in net.biases]
        layers = [(p, tuple(wt), b) for p, wt, b in zip(plans, parts, biases)]
        params = [t for pt in parts for t in pt if t is not None] + biases
        opt = Adam(params, 1e-5)
        order = shuffle_order(net.generators("bench", "shuffle"), steps * BATCH, net.device)
        batches = [minibatch(data, order[:, k * BATCH : (k + 1) * BATCH]) for k in range(steps)]

        def run(mode: str) -> None:
            gens = net.generators("bench", "noise")
            nxt = pool.submit(net.hidden_noise, BATCH, gens) if mode == "prefetched" else None
            for k, (x, y) in enumerate(batches):
                if mode == "prefetched":
                    noise = nxt.result()
                    if k + 1 < steps:
                        nxt = pool.submit(net.hidden_noise, BATCH, gens)
                    logits = net.forward(x, sigma_int=0.5, layers=layers, noise=noise)
                elif mode == "in the step":
                    logits = net.forward(x, sigma_int=0.5, generators=gens, layers=layers)
                else:
                    logits = net.forward(x, layers=layers)
                opt.step(torch.autograd.grad(ensemble_loss(logits, y), params))

        t = best_times({k: (lambda k=k: run(k)) for k in ("no noise", "in the step", "prefetched")}, trials)
        row = {"replicas": m, "sparsity": s, "steps": steps, **{f"{k}_ms": v / steps * 1e3 for k, v in t.items()}}
        rows.append(row)
        print(
            f"  noisy step M={m} sparsity {s:4.0%}: no noise {row['no noise_ms']:5.1f} ms, noise drawn in the "
            f"step {row['in the step_ms']:5.1f} ms, next step's noise on a second thread "
            f"{row['prefetched_ms']:5.1f} ms",
            flush=True,
        )
    pool.shutdown()
    return rows


@contextmanager
def parallel_noise():
    """The engine's hidden-noise draw replaced by :func:`parallel_fill` (same numbers per replica)."""
    original = network.normal_blocks

    def drawn(shape, sig, generators, dtype=torch.float32, device="cpu"):
        out = torch.empty(shape, dtype=dtype, device=device)
        todo = []
        for k, (g, v) in enumerate(zip(generators, sig.tolist())):
            if v > 0:
                todo.append((out[k], g))
            else:
                out[k].zero_()
        parallel_fill(todo)
        return out

    network.normal_blocks = drawn
    try:
        yield
    finally:
        network.normal_blocks = original


def stress_battery(m: int, sparsities, n_test: int, trials: int) -> list[dict]:
    """Seconds for every condition of the main battery, serial vs two-thread noise; results compared."""
    rows = []
    for s in sparsities:
        net, data = replicas(m, s, TaskConfig(n_train=BATCH, n_standard=n_test, n_clean=n_test // 2))
        res = {}

        def par():
            with parallel_noise():
                res["parallel"] = evaluate(net, data)

        def ser():
            res["serial"] = evaluate(net, data)

        t = best_times({"serial": ser, "parallel": par}, trials)
        row = {
            "replicas": m,
            "sparsity": s,
            "test_samples": n_test,
            "serial_s": t["serial"],
            "parallel_s": t["parallel"],
            "speedup": t["serial"] / t["parallel"],
            "identical": res["serial"].equals(res["parallel"]),
        }
        rows.append(row)
        print(
            f"  stress battery M={m} sparsity {s:4.0%}: serial noise {row['serial_s']:.2f} s, two threads "
            f"{row['parallel_s']:.2f} s ({row['speedup']:.2f}x), identical: {row['identical']}",
            flush=True,
        )
    return rows


#: The side-by-side pair: dense-product and sparse-product maintenance.
SIDE_BY_SIDE = ("ketamine", "ssri")


def maintenance_ms(name: str, steps: int, seconds: float, start: float | None = None) -> float:
    """ms per maintenance step of 10 replicas (as bench.py's maintenance row) at the current threads.

    Epochs of ``steps`` steps are trained one after another from ``start`` (a ``time.time()``;
    the jobs of a side-by-side run wait for the same moment) until ``seconds`` have passed.
    """
    s, mod = MAINTENANCE[name]
    net, data = replicas(10, s, TaskConfig(n_train=steps * BATCH, n_standard=100, n_clean=100))
    net.set_modulation(**mod)
    train(net.clone(), data, TrainConfig(epochs=1, lr=1e-6), progress=False)  # warm
    if start is not None:
        time.sleep(max(0.0, start - time.time()))
    t0, done = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        train(net.clone(), data, TrainConfig(epochs=1, lr=1e-6), progress=False)
        done += steps
    return (time.perf_counter() - t0) / done * 1e3


def side_by_side(steps: int, seconds: float) -> dict:
    """Maintenance throughput: one job at two threads after the other, vs two one-thread jobs at once.

    Each variant trains for ``seconds``; the two one-thread jobs start at the same moment (after
    both have built their networks) and run for the same time, so they overlap throughout.
    """
    seq = {name: maintenance_ms(name, steps, seconds) for name in SIDE_BY_SIDE}
    start = time.time() + (15.0 if seconds < 10 else 30.0)  # for both jobs to start and build their networks
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    procs = {
        name: subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--one",
                name,
                "--steps",
                str(steps),
                "--seconds",
                str(seconds),
                "--start",
                str(start),
            ],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name in SIDE_BY_SIDE
    }
    par = {}
    for name, p in procs.items():
        out, _ = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"side-by-side job {name} failed (exit {p.returncode})")
        par[name] = float(out.strip().splitlines()[-1])
    # the same work both ways: in the time of one one-thread ketamine-like step, the other job
    # makes r SSRI-like steps; at two threads, one after the other, that work takes k + r s
    r = par["ketamine"] / par["ssri"]
    row = {
        "seconds_each": seconds,
        "two_threads_ms": seq,
        "one_thread_side_by_side_ms": par,
        "ssri_steps_per_ketamine_step": r,
        "throughput_gain": (seq["ketamine"] + r * seq["ssri"]) / par["ketamine"],
    }
    print(
        f"  side by side: two threads, one after the other, {seq['ketamine']:.1f} / {seq['ssri']:.1f} ms/step; "
        f"one thread each at the same time {par['ketamine']:.1f} / {par['ssri']:.1f} ms/step: "
        f"{row['throughput_gain']:.2f}x the throughput",
        flush=True,
    )
    return row


def _numba_kernel():
    """The compiled kernel (Numba, parallel over rows), or None without Numba."""
    try:
        import numba
    except ImportError:
        return None, None

    @numba.njit(parallel=True, cache=False)
    def csr_rows(crow, col, val, x, out):  # pragma: no cover - compiled
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

    def matmul(crow, col, values, x):
        x = x.detach().contiguous()
        out = torch.empty(len(crow) - 1, x.shape[1], dtype=x.dtype)
        csr_rows(crow, col, values.detach().contiguous().numpy(), x.numpy(), out.numpy())
        return out

    return numba, matmul


@contextmanager
def kernel_products(matmul):
    """The engine's sparse forward and input-gradient products replaced by ``matmul`` (CPU)."""
    cls = layers.SparseLinear
    original = cls.forward, cls.backward

    def index(plan):
        if not hasattr(plan, "_int32"):
            plan._int32 = [t.to(torch.int32).numpy() for t in (plan.crow, plan.col, plan.crow_t, plan.col_t)]
        return plan._int32

    def forward(ctx, kept, h, plan):
        ms, bsz = plan.ms, h.shape[1]
        _, out, inn = plan.shape
        ht = h.transpose(1, 2).reshape(ms * inn, bsz)
        ctx.save_for_backward(kept, ht)
        ctx.plan = plan
        c, k, _, _ = index(plan)
        return matmul(c, k, kept, ht).view(ms, out, bsz).transpose(1, 2)

    def backward(ctx, gz):
        kept, ht = ctx.saved_tensors
        plan = ctx.plan
        ms, bsz = plan.ms, gz.shape[1]
        _, out, inn = plan.shape
        gzt = gz.transpose(1, 2).reshape(ms * out, bsz)
        g_kept = g_h = None
        if ctx.needs_input_grad[0]:
            pattern = torch.sparse_csr_tensor(plan.crow, plan.col, kept, (ms * out, ms * inn), check_invariants=False)
            g_kept = torch.sparse.sampled_addmm(pattern, gzt, ht.t(), beta=0.0).values()
        if ctx.needs_input_grad[1]:
            _, _, ct, kt = index(plan)
            g_h = matmul(ct, kt, kept[plan.perm_t], gzt).view(ms, inn, bsz).transpose(1, 2)
        return g_kept, g_h, None

    cls.forward, cls.backward = staticmethod(forward), staticmethod(backward)
    try:
        yield
    finally:
        cls.forward, cls.backward = (staticmethod(f) for f in original)


def sparse_kernel(m: int, batches, steps: int, trials: int) -> dict:
    """The compiled CSR kernel against torch's CSR product: per product, and in maintenance steps."""
    numba, matmul = _numba_kernel()
    if numba is None:
        print("  sparse kernel: skipped (Numba is not installed; pip install -e '.[bench]')", flush=True)
        return {"skipped": "Numba is not installed"}
    net = replicas(m, 0.95, TaskConfig(n_train=BATCH, n_standard=100, n_clean=100))[0]
    products = []
    for li in (1, 2):
        plan = net.plans()[li]
        _, out, inn = plan.shape
        _, kept = plan.split(net.weights[li])
        w = torch.sparse_csr_tensor(plan.crow, plan.col, kept, (m * out, m * inn), check_invariants=False)
        wt = torch.sparse_csr_tensor(
            plan.crow_t, plan.col_t, kept[plan.perm_t], (m * inn, m * out), check_invariants=False
        )
        c, k, ct, kt = (t.to(torch.int32).numpy() for t in (plan.crow, plan.col, plan.crow_t, plan.col_t))
        for b in batches:
            g = torch.Generator().manual_seed(b)
            x, y = torch.randn(m * inn, b, generator=g), torch.randn(m * out, b, generator=g)
            fns = {
                "torch": lambda: (w @ x, wt @ y),
                "kernel": lambda: (matmul(c, k, kept, x), matmul(ct, kt, kept[plan.perm_t], y)),
            }
            fns["kernel"]()  # compile
            t = best_times(fns, trials)
            diff = max(float((a - b_).abs().max()) for a, b_ in zip(fns["torch"](), fns["kernel"]()))
            row = {
                "layer": f"{out}x{inn}",
                "replicas": m,
                "batch": b,
                "torch_ms": t["torch"] * 1e3,
                "kernel_ms": t["kernel"] * 1e3,
                "speedup": t["torch"] / t["kernel"],
                "max_abs_diff": diff,
            }
            products.append(row)
            print(
                f"  sparse kernel {row['layer']} x {b:4d} (forward + transposed): torch {row['torch_ms']:.2f} ms, "
                f"kernel {row['kernel_ms']:.2f} ms ({row['speedup']:.2f}x), max |diff| {diff:.1e}",
                flush=True,
            )
    in_steps = []
    for name in ("ssri", "neurosteroid"):
        s, mod = MAINTENANCE[name]
        net, data = replicas(m, s, TaskConfig(n_train=steps * BATCH, n_standard=100, n_clean=100))
        net.set_modulation(**mod)
        out = {}

        def engine():
            out["torch"] = train(net.clone(), data, TrainConfig(epochs=1, lr=1e-3), progress=False)

        def kernel():
            with kernel_products(matmul):
                out["kernel"] = train(net.clone(), data, TrainConfig(epochs=1, lr=1e-3), progress=False)

        t = best_times({"torch": engine, "kernel": kernel}, trials)
        row = {
            "treatment": name,
            "replicas": m,
            "steps": steps,
            "torch_ms_per_step": t["torch"] / steps * 1e3,
            "kernel_ms_per_step": t["kernel"] / steps * 1e3,
            "speedup": t["torch"] / t["kernel"],
            "identical_weights": all(torch.equal(a, b) for a, b in zip(out["torch"].weights, out["kernel"].weights)),
        }
        in_steps.append(row)
        print(
            f"  sparse kernel in {name}-like maintenance steps: torch {row['torch_ms_per_step']:.1f} ms, kernel "
            f"{row['kernel_ms_per_step']:.1f} ms ({row['speedup']:.2f}x), identical weights: "
            f"{row['identical_weights']}",
            flush=True,
        )
    return {
        "numba": numba.__version__,
        "threading_layer": numba.threading_layer(),
        "products": products,
        "maintenance_steps": in_steps,
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer trials and steps (a smoke run)")
    ap.add_argument("--out", default=str(HERE / "directions.json"))
    ap.add_argument("--one", choices=SIDE_BY_SIDE, help=argparse.SUPPRESS)  # a side-by-side job
    ap.add_argument("--steps", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--start", type=float, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
    set_progress(False)
    trials, steps, seconds = (2, 4, 2.0) if args.quick else (5, 40, 30.0)
    steps, seconds = args.steps or steps, args.seconds or seconds
    if args.one:
        print(maintenance_ms(args.one, steps, seconds, args.start))
        return {}
    t0 = time.perf_counter()
    print(f"threads: {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}", flush=True)
    res = {"threads": torch.get_num_threads(), "load_average_at_start": os.getloadavg()}
    res["noise_draw"] = noise_draw(10, (BATCH, 1000), trials + 5)
    res["noisy_step"] = noisy_step(10, (0.0, 0.95), steps, trials)
    res["stress_battery"] = stress_battery(10, (0.0, 0.95), 1000 if args.quick else 4000, trials)
    res["side_by_side"] = side_by_side(steps, seconds)
    res["sparse_kernel"] = sparse_kernel(10, (BATCH, 1000), steps, trials)
    res["load_average_at_end"] = os.getloadavg()
    res["seconds"] = time.perf_counter() - t0
    print(f"took {res['seconds']:.0f} s", flush=True)
    if not args.quick or args.out != str(HERE / "directions.json"):
        atomic_write(Path(args.out), json.dumps(res, indent=1))
        print(f"written {args.out}")
    return res


if __name__ == "__main__":
    main()
