"""The machine's limit, and how the bench times anything (``make bench``, :mod:`bench`).

Timings interleave the variants being compared and keep the best of several trials of each (the
trial least disturbed by other processes); the limit is the fp32 rate of large square products,
taken as the best of many trials spread over time, each with the share of the CPU that other
processes used meanwhile.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch


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


def memory_rate(mib: float = 8.0, trials: int = 20) -> float:
    """GB/s of an elementwise pass (read two, write one float32 tensor) over ``mib`` MiB per tensor:
    about the size a step of a small sparse ensemble keeps in cache."""
    n = int(mib * 2**20 / 4)
    a, b, c = torch.randn(n), torch.randn(n), torch.empty(n)
    torch.add(a, b, out=c)
    t = best_times({"add": lambda: torch.add(a, b, out=c)}, trials)["add"]
    return 3 * 4 * n / t / 1e9
