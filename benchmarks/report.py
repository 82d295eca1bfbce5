"""What a bench run reports beyond its rows (``make bench``, :mod:`bench`): every fraction against
one limit, the paper-scale estimate, whole chapters and book builds, and the results file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from setups import BATCH, FLOP_PER_SAMPLE, LARGE_LAYERS, N_WEIGHTS
from steps import set_floor

from pruneplast.results import atomic_write


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
        if row.get("threads", 0) != 1:  # one-thread rows keep one thread's limit
            row["flop_floor_ms"] = row["flops_per_step"] / limit / 1e6
            set_floor(row)


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


def write_results(res: dict, out: Path) -> None:
    atomic_write(out, json.dumps(res, indent=1))
    print(f"written {out}")
