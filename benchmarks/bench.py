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
* ``fused_step``: the compiled step (the default; ``PRUNEPLAST_FUSED=0``: off) against the standard path,
  10 replicas at 95% on one thread, without and with internal noise: ms per step, each path's
  time over the kind's one-thread floor (with noise, the noise draw counted in the floor) and the
  largest weight difference between the two paths;
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
* ``denormals``: one epoch of a nearly dense network late in a chronic regimen, one thread, with
  denormal floats kept and flushed to zero (the engine's mode, :mod:`pruneplast.kernels.denormals`):
  the share of gradients that are denormal, each time, the speed-up and the weight difference;
* ``chapters`` (only with ``--chapters quick|paper``): wall time and peak memory of
  ``pruneplast run <chapter>`` for every registered chapter;
* ``book``: the wall time and peak memory of each page and of the whole build, copied from the
  latest ``make book`` / ``make test`` of this checkout (``_build/**/timings-<profile>.json``, written
  by ``pruneplast book``), with the date and load average of that build: a paper-scale book takes
  tens of minutes, so it is timed when it is built rather than built again here.

Usage: ``python benchmarks/bench.py [--quick] [--chapters quick|paper] [--out FILE]``.

The rows are measured by the modules beside this one: :mod:`limit` (the limit and how anything is
timed), :mod:`steps` (training steps, their floors, the fused step, maintenance steps, stress
tests, the floating-point change), :mod:`workers` (one process against one worker per core) and
:mod:`report` (every fraction against one limit, the paper-scale estimate, chapters and book
builds, the results file); :mod:`setups` holds the networks they measure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from busy import bench_busy  # noqa: E402
from limit import matmul_limit, quiet_limit  # noqa: E402
from report import bench_chapters, book_timings, paper_estimate, refer_to_limit, write_results  # noqa: E402
from setups import BATCH, EPOCH_STEPS, FLOP_PER_SAMPLE, SHORT_STEPS  # noqa: E402
from steps import (  # noqa: E402
    bench_ceiling,
    bench_denormals,
    bench_fp_change,
    bench_fused_step,
    bench_maintenance,
    bench_step_kinds,
    bench_stress,
    bench_train,
)
from workers import bench_maintenance_workers, bench_treatment_workers  # noqa: E402

from pruneplast.progress import set_progress  # noqa: E402


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
        write_results(res, out)
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
    # one thread, as the book's worker processes train, against one thread's limit
    res["step_kinds"] = bench_step_kinds(steps, trials, res["limit"]["threads_1"]["best_gflops"], threads=1)
    res["fused_step"] = bench_fused_step(steps, trials, limit_1=res["limit"]["threads_1"]["best_gflops"])
    res["maintenance"] = bench_maintenance(steps, trials)
    res["maintenance_workers"] = bench_maintenance_workers(2 if args.quick else 8)
    res["treatment_workers"] = bench_treatment_workers(
        {"ketamine": 1, "ssri": 2, "neurosteroid": 1} if args.quick else {"ketamine": 3, "ssri": 10, "neurosteroid": 2}
    )
    res["busy"] = bench_busy(epochs=1, n_train=1024 if args.quick else 12_000, trials=1 if args.quick else 2)
    res["paper_estimate"] = paper_estimate(res["train"], res["maintenance"], workers=res["maintenance_workers"])
    res["stress"] = bench_stress(10, sparsities, trials, limit)
    res["fp_change"] = bench_fp_change(sparsities, 1)
    res["denormals"] = bench_denormals(
        trials,
        cycles=3 if args.quick else 10,
        epochs_per_cycle=1 if args.quick else 2,
        baseline_epochs=4 if args.quick else 20,
    )
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
    write_results(res, out)
    return res


if __name__ == "__main__":
    main()
