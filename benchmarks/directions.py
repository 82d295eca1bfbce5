"""Directions measured and not adopted: is there spare CPU left for the random noise or a second job?

``python benchmarks/directions.py [--quick] [--out FILE]`` (written to
``benchmarks/directions.json``). Every comparison is made in one run, variants interleaved, best
of several trials (as in ``bench.py``). Three questions:

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
  thread each at the same time: how much throughput is left over when one job uses both cores.

The parallel draw here is the script's own (:func:`parallel_fill`); the engine draws serially.
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

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench import BATCH, best_times, replicas  # noqa: E402

import pruneplast.network as network  # noqa: E402
from pruneplast import rng  # noqa: E402
from pruneplast.config import TaskConfig, TrainConfig  # noqa: E402
from pruneplast.operators import Adam, _batch, _batch_order, _loss, train  # noqa: E402
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
        row = {"replicas": m, "batch": b, "samples": n, "serial_ms": t["serial"] * 1e3,
               "parallel_ms": t["parallel"] * 1e3, "serial_msamples_per_s": n / t["serial"] / 1e6,
               "parallel_msamples_per_s": n / t["parallel"] / 1e6, "speedup": t["serial"] / t["parallel"],
               "identical": all(torch.equal(x, y) for x, y in zip(a, c))}
        rows.append(row)
        print(f"  noise draw M={m} batch {b:5d}: serial {row['serial_msamples_per_s']:5.0f} M/s, two threads "
              f"{row['parallel_msamples_per_s']:5.0f} M/s ({row['speedup']:.2f}x), identical: {row['identical']}",
              flush=True)
    return rows


def noisy_step(m: int, sparsities, steps: int, trials: int) -> list[dict]:
    """ms per 10-replica training step: no noise, noise drawn in the step, next step's noise prefetched."""
    rows = []
    pool = ThreadPoolExecutor(max_workers=1)
    for s in sparsities:
        net, data = replicas(m, s, TaskConfig(n_train=steps * BATCH, n_standard=100, n_clean=100))
        net.set_modulation(gain=1.6, protection=1.0)
        plans = net.plans()
        parts = [[None if t is None else t.detach().clone().requires_grad_(True) for t in p.split(w)]
                 for p, w in zip(plans, net.weights)]
        biases = [b.detach().clone().requires_grad_(True) for b in net.biases]
        layers = [(p, tuple(wt), b) for p, wt, b in zip(plans, parts, biases)]
        params = [t for pt in parts for t in pt if t is not None] + biases
        opt = Adam(params, 1e-5)
        order = _batch_order(net.generators("bench", "shuffle"), steps * BATCH, net.device)
        batches = [_batch(data, order[:, k * BATCH:(k + 1) * BATCH]) for k in range(steps)]

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
                opt.step(torch.autograd.grad(_loss(logits, y), params))

        t = best_times({k: (lambda k=k: run(k)) for k in ("no noise", "in the step", "prefetched")}, trials)
        row = {"replicas": m, "sparsity": s, "steps": steps, **{f"{k}_ms": v / steps * 1e3 for k, v in t.items()}}
        rows.append(row)
        print(f"  noisy step M={m} sparsity {s:4.0%}: no noise {row['no noise_ms']:5.1f} ms, noise drawn in the "
              f"step {row['in the step_ms']:5.1f} ms, next step's noise on a second thread "
              f"{row['prefetched_ms']:5.1f} ms", flush=True)
    pool.shutdown()
    return rows


@contextmanager
def parallel_noise():
    """The engine's hidden-noise draw replaced by :func:`parallel_fill` (same numbers per replica)."""
    original = network._noise

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

    network._noise = drawn
    try:
        yield
    finally:
        network._noise = original


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
        row = {"replicas": m, "sparsity": s, "test_samples": n_test, "serial_s": t["serial"],
               "parallel_s": t["parallel"], "speedup": t["serial"] / t["parallel"],
               "identical": res["serial"].equals(res["parallel"])}
        rows.append(row)
        print(f"  stress battery M={m} sparsity {s:4.0%}: serial noise {row['serial_s']:.2f} s, two threads "
              f"{row['parallel_s']:.2f} s ({row['speedup']:.2f}x), identical: {row['identical']}", flush=True)
    return rows


MAINTENANCE = {"ketamine": (0.475, dict(gain=1.25, protection=1.0)), "ssri": (0.95, dict(gain=1.6, protection=1.0))}


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
    seq = {name: maintenance_ms(name, steps, seconds) for name in MAINTENANCE}
    start = time.time() + (15.0 if seconds < 10 else 30.0)  # for both jobs to start and build their networks
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    procs = {name: subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--one", name,
                                     "--steps", str(steps), "--seconds", str(seconds), "--start", str(start)],
                                    stdout=subprocess.PIPE, text=True, env=env)
             for name in MAINTENANCE}
    par = {}
    for name, p in procs.items():
        out, _ = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"side-by-side job {name} failed (exit {p.returncode})")
        par[name] = float(out.strip().splitlines()[-1])
    # the same work both ways: in the time of one one-thread ketamine-like step, the other job
    # makes r SSRI-like steps; at two threads, one after the other, that work takes k + r s
    r = par["ketamine"] / par["ssri"]
    row = {"seconds_each": seconds, "two_threads_ms": seq, "one_thread_side_by_side_ms": par,
           "ssri_steps_per_ketamine_step": r,
           "throughput_gain": (seq["ketamine"] + r * seq["ssri"]) / par["ketamine"]}
    print(f"  side by side: two threads, one after the other, {seq['ketamine']:.1f} / {seq['ssri']:.1f} ms/step; "
          f"one thread each at the same time {par['ketamine']:.1f} / {par['ssri']:.1f} ms/step: "
          f"{row['throughput_gain']:.2f}x the throughput", flush=True)
    return row


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer trials and steps (a smoke run)")
    ap.add_argument("--out", default=str(HERE / "directions.json"))
    ap.add_argument("--one", choices=tuple(MAINTENANCE), help=argparse.SUPPRESS)  # a side-by-side job
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
    res["load_average_at_end"] = os.getloadavg()
    res["seconds"] = time.perf_counter() - t0
    print(f"took {res['seconds']:.0f} s", flush=True)
    if not args.quick or args.out != str(HERE / "directions.json"):
        atomic_write(Path(args.out), json.dumps(res, indent=1))
        print(f"written {args.out}")
    return res


if __name__ == "__main__":
    main()
