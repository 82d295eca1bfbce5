"""The atlas's tasks at paper scale, estimated from two short runs of each.

``python benchmarks/atlas_tasks.py [SETTING ...] [--seeds N] [--repeats N] [--only TASK,...] [--part-minutes M]
[--cycles] [--out FILE]`` (default: the reference and the widest setting, ``width_x2``; the paper's 10
seeds; each run once; every task; the atlas's limit on a regimen task,
:data:`pruneplast.atlas.PART_MINUTES`)

Every task of a setting (:func:`pruneplast.atlas.tasks`: its baselines; study A's sweep and its
regimen groups; study B's arm groups and its measurements) runs on one thread, one replicate seed,
twice: at short durations (run 1) and at longer ones (run 2), each in a fresh cache, in the
atlas's waves. A task's time is taken as ``fixed + per_epoch x epochs`` (the epochs that differ
between the runs: baseline epochs; the regimen groups' epochs per cycle, at the paper's ten
chronic cycles; each arm's course); the two runs give both terms, and the paper-scale estimate
is ``seeds x (fixed + per_epoch x paper epochs)``: on one thread a task's work grows with its
replicas, one after another. The sweep and study B's measurements train nothing; their run-1
time is scaled by the seeds alone. A regimen group that the atlas splits by cycles at the paper's
durations (:func:`pruneplast.atlas.regimen_parts`, with ``--part-minutes``; a large value keeps
every group whole) is split into the same parts in both runs, each part a task of its own
('regimens:long_chronic:1-5'), its epochs those of its cycles. Times are CPU seconds of the
one-thread process: on a quiet machine its wall time, and on a busy one what it would be with a
core to itself (more, where the other processes share the core's caches and execution units).
On a busy machine the difference of two short runs is noisy: check a task's per-epoch cost
against one epoch timed alone, the least of a few tries; ``--repeats`` keeps each task's least
time over repeated runs, and ``--only`` times the named tasks alone (with the baselines they
start from, and a named part's parts before it). Prints one row per task and the largest,
with the machine's load average before and after.

``--cycles`` times instead what the split of a regimen group is fitted to, at the paper's
durations themselves (:func:`time_cycles`): each setting's baselines and each cycle of its long
chronic regimen, one part of one cycle each, at ``--seeds`` seeds; the seconds per unit of cost
and each cycle's share of the regimen's time, beside the shares the atlas expects.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

#: Durations of the two short runs and of the paper: (baseline, chronic per cycle, consolidation
#: and acute, ketamine-like, SSRI-like, neurosteroid-like). The ketamine-like and neurosteroid-like
#: courses differ in length in every run, as at the paper's, so they never train as one ensemble.
RUNS = ((1, 1, 1, 2, 3, 1), (2, 2, 2, 4, 5, 3))


def _protocol(atlas, durations, seeds=(0,)):
    base, chronic, consolidation, ket, ssri, neuro = durations
    return atlas.Protocol(
        seeds=tuple(seeds),
        baseline_epochs=base,
        chronic_epochs=chronic,
        consolidation_epochs=consolidation,
        acute_epochs=consolidation,
        treatment_epochs=(("ketamine", ket), ("ssri", ssri), ("neurosteroid", neuro)),
    )


def _epochs(task, protocol) -> int:
    """The epochs of ``task`` that scale its time (0 for a task that trains nothing)."""
    if task.kind == "baseline":
        return protocol.baseline_epochs
    if task.kind == "regimens":  # a part of a group split by cycles: its cycles' epochs
        regimens = {r.name: r for r in protocol.regimens()}
        if task.cycles is not None:
            return (task.cycles[1] - task.cycles[0]) * max(regimens[n].epochs for n in task.names)
        return max(regimens[n].total_epochs for n in task.names)
    if task.kind == "arms":
        cfgs = protocol.arm_configs(task.setting)
        return sum(cfgs[n].epochs for n in task.names)
    return 0


def _needed(task, tasks, only: tuple[str, ...]) -> bool:
    """Whether ``task`` runs when ``only`` names the tasks to time: a baseline, a named task, or a
    part of a split regimen group before a named part (whose state that part resumes from)."""
    if not only or task.kind == "baseline" or task.label in only:
        return True
    return task.cycles is not None and any(
        t.label in only and t.names == task.names and t.cycles is not None and t.cycles[0] >= task.cycles[1]
        for t in tasks
    )


def measure(
    setting, durations, repeats: int = 1, only: tuple[str, ...] = (), parts=None
) -> dict[str, tuple[float, int]]:
    """label -> (seconds, epochs) of every task of ``setting`` at ``durations``, one seed, in a fresh
    cache; ``parts``: the regimen groups' parts to impose (:func:`pruneplast.atlas.regimen_parts`).
    The seconds are this process's CPU time (one thread), which other processes on a busy machine
    do not inflate as they do its wall time."""
    from setups import fresh_cache

    from pruneplast import atlas
    from pruneplast.atlas.protocol import run_task

    protocol = _protocol(atlas, durations)
    imposed = None if parts is None else {setting.name: parts}
    out: dict[str, tuple[float, int]] = {}
    for _ in range(repeats):
        with fresh_cache("pruneplast-atlas-tasks-"):
            todo = sorted(atlas.tasks([setting], protocol, parts=imposed), key=lambda t: t.wave)
            for task in todo:
                label = task.label
                if not _needed(task, todo, only):
                    continue
                t0 = time.process_time()
                run_task(task, protocol)
                seconds = time.process_time() - t0
                out[label] = (min(seconds, out.get(label, (seconds,))[0]), _epochs(task, protocol))
    return out


def estimate(
    setting, seeds: int, repeats: int = 1, only: tuple[str, ...] = (), part_minutes: float | None = None
) -> list[dict]:
    from pruneplast import atlas

    paper = atlas.Protocol()
    limit = atlas.PART_MINUTES if part_minutes is None else part_minutes
    parts = atlas.regimen_parts(setting, paper, limit)  # the paper's parts, timed in the short runs
    first, second = (measure(setting, d, repeats, only, parts) for d in RUNS)
    paper_epochs = {t.label: _epochs(t, paper) for t in atlas.tasks([setting], paper, limit)}
    rows = []
    for label, (s1, e1) in first.items():
        s2, e2 = second[label]
        per_epoch = max(0.0, (s2 - s1) / (e2 - e1)) if e2 != e1 else 0.0
        fixed = max(0.0, s1 - per_epoch * e1)
        ep = paper_epochs[label]
        rows.append(
            {
                "setting": setting.name,
                "task": label,
                "run1_s": round(s1, 2),
                "run2_s": round(s2, 2),
                "per_epoch_s": round(per_epoch, 3),
                "fixed_s": round(fixed, 2),
                "paper_epochs": ep,
                "paper_min": round(seeds * (fixed + per_epoch * ep) / 60, 1),
            }
        )
    return rows


def time_cycles(setting, seeds: int, protocol=None) -> dict:
    """CPU seconds of ``setting``'s baselines and of each cycle of its long chronic regimen, trained
    as the atlas's tasks with that regimen imposed in parts of one cycle each
    (:func:`pruneplast.atlas.tasks`, :func:`pruneplast.atlas.protocol.run_task`), at the paper's durations (or
    ``protocol``'s) and ``seeds`` seeds, in a fresh cache, one thread: what
    :data:`pruneplast.atlas.protocol.REGIMEN_SECONDS_PER_COST` and the cycles' shares are fitted to (the
    parts' costs are the atlas's expected shares)."""
    import dataclasses

    from setups import fresh_cache

    from pruneplast import atlas
    from pruneplast.atlas.protocol import run_task

    protocol = dataclasses.replace(protocol or atlas.Protocol(), seeds=tuple(range(seeds)))
    group = ("long_chronic",)
    cycles = next(r.cycles for r in protocol.regimens() if r.name == group[0])
    parts = {setting.name: {group: [(k, k + 1) for k in range(cycles)]}}
    todo = atlas.tasks([setting], protocol, parts=parts)
    base = next(t for t in todo if t.kind == "baseline")
    chronic = sorted((t for t in todo if t.kind == "regimens" and t.names == group), key=lambda t: t.cycles)
    out: dict = {"setting": setting.name, "seeds": seeds, "weights": setting.network.n_weights}
    with fresh_cache("pruneplast-atlas-cycles-"):
        t0 = time.process_time()
        run_task(base, protocol)
        out["baseline_s"] = round(time.process_time() - t0, 2)
        out["cycle_s"] = []
        for k, task in enumerate(chronic, 1):
            t0 = time.process_time()
            run_task(task, protocol)
            out["cycle_s"].append(round(time.process_time() - t0, 2))
            print(f"  {setting.name}: long chronic cycle {k} {out['cycle_s'][-1]:.1f} s", flush=True)
    cost = sum(t.cost for t in chronic)
    out["seconds_per_cost"] = sum(out["cycle_s"]) / cost
    out["measured_shares"] = [round(c / sum(out["cycle_s"]), 4) for c in out["cycle_s"]]
    out["expected_shares"] = [round(t.cost / cost, 4) for t in chronic]
    return out


def main(argv=None) -> int:
    import torch

    from pruneplast import atlas

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("settings", nargs="*", default=["reference", "width_x2"])
    ap.add_argument("--seeds", type=int, default=len(atlas.Protocol().seeds))
    ap.add_argument("--repeats", type=int, default=1, help="runs of each duration; each task's least time is kept")
    ap.add_argument("--only", default="", help="comma-separated tasks to time (as printed: 'regimens:long_chronic')")
    ap.add_argument(
        "--part-minutes",
        type=float,
        default=None,
        help="split a regimen group expected to take longer than this (default: the atlas's limit)",
    )
    ap.add_argument(
        "--cycles",
        action="store_true",
        help="time each cycle of the settings' long chronic regimen at the paper's durations instead "
        "(--repeats, --only and --part-minutes do not apply)",
    )
    ap.add_argument("--out", default="")
    args = ap.parse_args(argv)
    by_name = {s.name: s for s in atlas.settings()}
    unknown = [n for n in args.settings if n not in by_name]
    if unknown:
        print(f"error: unknown setting(s) {unknown}; known: {sorted(by_name)}", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    load0 = os.getloadavg()
    if args.repeats < 1:
        print(f"error: --repeats must be at least 1; got {args.repeats}", file=sys.stderr)
        return 2
    if args.part_minutes is not None and not args.part_minutes > 0:
        print(f"error: --part-minutes must be a number > 0; got {args.part_minutes}", file=sys.stderr)
        return 2
    if args.cycles:
        timed = [time_cycles(by_name[n], args.seeds) for n in args.settings]
        load1 = os.getloadavg()
        for t in timed:
            total = sum(t["cycle_s"])
            print(f"{t['setting']}: baselines {t['baseline_s']:.1f} s; long chronic {total:.1f} s at {t['seeds']} "
                  f"seeds ({t['seconds_per_cost']:.2e} s per unit of cost); cycles (s) {t['cycle_s']}; shares "
                  f"measured {t['measured_shares']}, expected {t['expected_shares']}")  # fmt: skip
        print(f"load average (1, 5, 15 min) before {load0}, after {load1}; {os.cpu_count()} CPUs")
        if args.out:
            report = {"cycles": timed, "load_before": load0, "load_after": load1}
            Path(args.out).write_text(json.dumps(report, indent=1))
        return 0
    only = tuple(t for t in args.only.split(",") if t)
    rows = [r for n in args.settings for r in estimate(by_name[n], args.seeds, args.repeats, only, args.part_minutes)]
    load1 = os.getloadavg()
    import pandas as pd

    df = pd.DataFrame(rows)
    print(df.to_string(index=False))
    for name, g in df.groupby("setting", sort=False):
        print(f"{name}: tasks {g['paper_min'].sum():.1f} min in all; longest {g['paper_min'].max():.1f} min "
              f"({g.loc[g['paper_min'].idxmax(), 'task']})")  # fmt: skip
    print(f"load average (1, 5, 15 min) before {load0}, after {load1}; {os.cpu_count()} CPUs")
    if args.out:
        Path(args.out).write_text(json.dumps({"rows": rows, "load_before": load0, "load_after": load1}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
