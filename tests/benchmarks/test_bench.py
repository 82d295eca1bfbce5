"""The bench (``benchmarks/bench.py`` and the modules beside it): its rows at a tiny size and its
bookkeeping (its timings are measured by ``make bench``, not here)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
#: Mini-batches in a worker row's "epoch" here (``make bench``: one epoch of the book's training set).
TINY_EPOCH_STEPS = 4


def _bench(name: str):
    """``benchmarks/NAME.py``, imported as ``bench.py`` imports it (the folder first on the path)."""
    if sys.path[0] != str(BENCH):
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)


def _timings(path: Path, total: float, mtime: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"profile": path.stem.split("-")[1], "total_s": total, "peak_rss_mib": 100.0, "pages": []})
    )
    os.utime(path, (mtime, mtime))


def test_book_timings_take_the_newest_build_of_each_profile(tmp_path):
    report = _bench("report")
    a, b = tmp_path / "a", tmp_path / "b"
    _timings(a / "timings-quick.json", 100.0, 1_000_000)
    _timings(b / "test" / "timings-quick.json", 200.0, 2_000_000)  # newer, in a subfolder
    _timings(a / "timings-paper.json", 3000.0, 1_500_000)
    out = report.book_timings([a, b])
    assert out["quick"]["total_s"] == 200.0
    assert out["paper"]["total_s"] == 3000.0
    assert out["quick"]["built_at"]


def test_book_timings_keep_the_previous_record_when_no_build_is_found(tmp_path):
    report = _bench("report")
    previous = {"paper": {"total_s": 7000.0, "built_at": "2026-11-23 18:49"}}
    out = report.book_timings([tmp_path / "none"], previous)
    assert out == {"paper": previous["paper"]}
    _timings(tmp_path / "new" / "timings-paper.json", 4000.0, 3_000_000)
    assert report.book_timings([tmp_path / "new"], previous)["paper"]["total_s"] == 4000.0


def test_book_only_refreshes_the_book_section_and_keeps_the_rest(tmp_path):
    bench = _bench("bench")
    out = tmp_path / "results.json"
    out.write_text(json.dumps({"matmul": {"limit_gflops": 100.0}, "book": {}}))
    _timings(tmp_path / "b" / "timings-quick.json", 250.0, 2_000_000)
    res = bench.main(["--book-only", "--out", str(out), "--build-dir", str(tmp_path / "b")])
    saved = json.loads(out.read_text())
    assert saved == res and saved["matmul"] == {"limit_gflops": 100.0}
    assert saved["book"]["quick"]["total_s"] == 250.0


def test_make_book_wall_is_recorded_and_kept_for_the_same_build(tmp_path):
    bench = _bench("bench")
    out = tmp_path / "results.json"
    out.write_text(json.dumps({"book": {}}))
    _timings(tmp_path / "b" / "timings-paper.json", 3000.0, 2_000_000)
    args = ["--book-only", "--out", str(out), "--build-dir", str(tmp_path / "b")]
    assert bench.main(args + ["--make-book-wall", "paper=3441"])["book"]["paper"]["make_book_wall_s"] == 3441.0
    assert bench.main(args)["book"]["paper"]["make_book_wall_s"] == 3441.0  # same build: kept
    _timings(tmp_path / "b" / "timings-paper.json", 2900.0, 3_000_000)  # a newer build: not its time
    assert "make_book_wall_s" not in bench.main(args)["book"]["paper"]
    for bad in ("paper=-1", "paper", "draft=10"):
        with pytest.raises(SystemExit):
            bench.main(args + ["--make-book-wall", bad])


@pytest.mark.slow
def test_train_rows_time_a_full_phase_and_a_short_one():
    """The train rows: each variant's rate, all fractions against one row limit, the ratio.

    Three-step phases and a 1024 square product as the interleaved product (``make bench``: a
    3072 one, 27 times the work and three quarters of these rows' time at this size): its rate is
    still what the row limit is taken from when the limit given is smaller, which is what is checked.
    """
    steps = _bench("steps")
    setups = _bench("setups")
    rows = steps.bench_train([2], [0.0, 0.95], steps=3, trials=1, limit=1.0, short_steps=1, matmul_n=1024)
    assert [(r["replicas"], r["sparsity"]) for r in rows] == [(2, 0.0), (2, 0.95)]
    for r in rows:
        assert (r["steps"], r["short_steps"]) == (3, 1)
        for k in ("engine", "engine_short", "reference"):
            assert r[f"{k}_samples_per_s"] > 0
            # every fraction is taken against the same row limit
            assert r[f"{k}_fraction_of_limit"] == pytest.approx(
                r[f"{k}_samples_per_s"] * setups.FLOP_PER_SAMPLE / 1e9 / r["limit_gflops"]
            )
        assert r["limit_gflops"] > 1.0  # the interleaved product, not the (too small) limit given
        ratio = r["engine_samples_per_s"] / r["reference_samples_per_s"]
        assert r["speedup_vs_reference"] == pytest.approx(ratio)


@pytest.mark.slow
def test_stress_rows_include_a_mixed_ensemble_like_a_chapter_6_checkpoint():
    steps = _bench("steps")
    rows = steps.bench_stress(1, [0.95], trials=1, limit=100.0)
    assert [r["replicas"] for r in rows] == [1, 3]
    assert rows[0]["sparsity"] == 0.95 and rows[1]["sparsity"] is None
    assert rows[1]["networks"].startswith("mixed: 1 at 47.5% + 2 at 95%")
    assert all(r["seconds"] > 0 and r["conditions"] == len(steps.CONDITIONS) for r in rows)


def test_time_split_charges_nested_calls_to_the_innermost_timed_function():
    """On a clock that advances only when the fake work 'sleeps' (real sleeps overshoot on a busy
    machine), nested calls are charged to the innermost timed function, exactly."""
    spec = importlib.util.spec_from_file_location("time_split", ROOT / "benchmarks" / "time_split.py")
    ts = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ts)
    import types

    clock = [0.0]

    def sleep(s):
        clock[0] += s

    ts.time = types.SimpleNamespace(perf_counter=lambda: clock[0])
    mod = types.SimpleNamespace()
    mod.evaluate = lambda: sleep(0.05)
    mod.train = lambda: (sleep(0.1), mod.evaluate(), mod.evaluate())  # looks evaluate up at call time
    timers = ts.Timers()
    timers.wrap(mod, "evaluate", "stress tests")
    timers.wrap(mod, "train", "train")
    mod.train()
    mod.evaluate()
    assert timers.seconds["stress tests"] == pytest.approx(0.15, abs=1e-9)
    assert timers.seconds["train"] == pytest.approx(0.10, abs=1e-9)
    assert sum(timers.seconds.values()) == pytest.approx(clock[0], abs=1e-9)
    assert mod.train.__wrapped__ is not None and mod.train.__name__ == "<lambda>"


def _directions():
    spec = importlib.util.spec_from_file_location("directions", ROOT / "benchmarks" / "directions.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_parallel_noise_draw_gives_every_replica_its_serial_numbers():
    import torch

    d = _directions()
    a, b = torch.empty(5, 7, 48), torch.empty(5, 7, 48)
    d.serial_fill(list(zip(a, d._gens(5))))
    d.parallel_fill(list(zip(b, d._gens(5))), threads=3)
    assert torch.equal(a, b)
    assert not torch.equal(a[0], a[1])  # each replica its own stream


def test_directions_rows_compare_variants_of_the_same_work():
    d = _directions()
    (draw,) = d.noise_draw(3, [16], trials=1)
    assert draw["identical"] and draw["samples"] == 3 * 16 * sum(d.HIDDEN)
    assert draw["speedup"] == pytest.approx(draw["serial_ms"] / draw["parallel_ms"])
    (step,) = d.noisy_step(2, [0.95], steps=2, trials=1)
    assert all(step[f"{k}_ms"] > 0 for k in ("no noise", "in the step", "prefetched"))
    (battery,) = d.stress_battery(2, [0.0], n_test=200, trials=1)
    assert battery["identical"]  # the parallel draw changes no accuracy


def test_sparse_kernel_row_is_skipped_without_numba_and_says_so(monkeypatch):
    d = _directions()
    monkeypatch.setattr(d, "_numba_kernel", lambda: (None, None))
    assert d.sparse_kernel(2, [4], steps=1, trials=1) == {"skipped": "Numba is not installed"}


def test_sparse_kernel_swaps_the_products_and_restores_them():
    pytest.importorskip("numba")
    d = _directions()
    before = (d.layers.SparseLinear.forward, d.layers.SparseLinear.backward)
    res = d.sparse_kernel(2, [4], steps=2, trials=1)
    assert (d.layers.SparseLinear.forward, d.layers.SparseLinear.backward) == before
    assert [r["batch"] for r in res["products"]] == [4, 4]
    assert all(r["max_abs_diff"] < 1e-5 for r in res["products"])
    assert all(r["identical_weights"] for r in res["maintenance_steps"])


def test_maintenance_rows_time_live_units_against_every_unit():
    steps = _bench("steps")
    rows = steps.bench_maintenance(steps=2, trials=1, m=2)
    assert [r["treatment"] for r in rows] == ["ketamine", "ssri", "neurosteroid"]
    assert rows[0]["sparsity"] == pytest.approx(0.475, abs=1e-3)  # 95% pruned, half regrown
    assert all(r["sparsity"] == pytest.approx(0.95, abs=1e-3) for r in rows[1:])
    for r in rows:
        assert r["live_units_speedup"] == pytest.approx(r["all_units_ms_per_step"] / r["ms_per_step"])
        assert r["max_abs_diff_after_epoch"] < 1e-4  # the same training up to summation order
        assert len(r["live_units"]) == len(r["constant_units"]) == 3
        assert all(0 <= lo <= hi <= 512 for lo, hi in r["live_units"] + r["constant_units"])
    assert all(r["live_units"][0][1] <= 52 for r in rows[1:])  # 52 kept input weights at 95%


def test_paper_estimate_adds_maintenance_at_its_step_times_and_the_rest_at_the_training_rates():
    report = _bench("report")
    train_rows = [
        {"replicas": 10, "sparsity": 0.0, "engine_samples_per_s": 50_000.0, "reference_samples_per_s": 25_000.0},
        {"replicas": 10, "sparsity": 0.95, "engine_samples_per_s": 200_000.0, "reference_samples_per_s": 20_000.0},
    ]
    maint = [
        {"sparsity": 0.475, "maintenance_300_epochs_s": 600.0},
        {"sparsity": 0.95, "maintenance_300_epochs_s": 150.0},
        {"sparsity": 0.95, "maintenance_300_epochs_s": 180.0},
    ]
    est = report.paper_estimate(train_rows, maint)
    work = report.PAPER_REPLICA_EPOCHS
    assert sum(work.values()) == 12_500
    rest = work["sparse_95"] * 12_000 / 200_000 + work["dense"] * 12_000 / 50_000
    assert est["engine_s"] == pytest.approx(930.0 + rest)
    ref = 3_000 * 12_000 / 25_000 + 6_000 * 12_000 / 20_000  # ketamine-like at the dense rate, the others at 95%
    assert est["maintenance_reference_s"] == pytest.approx(ref)
    assert est["reference_s"] == pytest.approx(
        ref + work["sparse_95"] * 12_000 / 20_000 + work["dense"] * 12_000 / 25_000
    )
    assert "engine_in_workers_s" not in est
    with_workers = report.paper_estimate(
        train_rows, maint, workers={"workers": 2, "speedup": 1.1, "speedup_after_startup": 1.25}
    )
    assert with_workers["maintenance_in_workers_s"] == pytest.approx(930.0 / 1.25)
    assert with_workers["engine_in_workers_s"] == pytest.approx(930.0 / 1.25 + rest)
    unmeasured = report.paper_estimate(
        train_rows, maint, workers={"workers": 2, "speedup": 1.1, "speedup_after_startup": None}
    )
    assert unmeasured["maintenance_in_workers_s"] == pytest.approx(930.0 / 1.1)  # the ratio with the start-up


@pytest.mark.slow
def test_maintenance_workers_row_compares_one_process_with_one_per_core(monkeypatch):
    """The maintenance row: its timings, their ratios, and the same training in one process and
    in one worker per core (up to summation order).

    An "epoch" here is :data:`TINY_EPOCH_STEPS` mini-batches instead of the book's 94, and each
    variant is timed once (``trials=1``) instead of best of two: the row starts the same worker
    processes, splits the same ensembles between them and compares the same weights, so every
    field is computed as in ``make bench``; only each phase is shorter, and each time is one
    measurement rather than the smaller of two (a second trial adds no field and no check).
    """
    workers = _bench("workers")
    monkeypatch.setattr(workers, "EPOCH_STEPS", TINY_EPOCH_STEPS)
    monkeypatch.setattr(workers.parallel, "usable_cores", lambda: 2)
    row = workers.bench_maintenance_workers(epochs=1, m=2, trials=1)
    assert row["workers"] == 2 and row["epochs"] == 1 and row["replicas_per_treatment"] == 2
    assert row["speedup"] == pytest.approx(row["one_process_s"] / row["workers_s"])
    assert row["startup_s"] > 0
    # the start-up is timed apart from the run, so on a busy machine it may exceed it: then no ratio
    if row["startup_s"] < row["workers_s"]:
        want = row["one_process_s"] / (row["workers_s"] - row["startup_s"])
        assert row["speedup_after_startup"] == pytest.approx(want)
    else:
        assert row["speedup_after_startup"] is None
    assert 0 <= row["max_abs_diff_lr_1e-3"] < 1e-4  # the same training up to summation order
    monkeypatch.setattr(workers.parallel, "usable_cores", lambda: 1)
    assert workers.bench_maintenance_workers(epochs=1, m=2) is None


def test_ceiling_bounds_the_dense_step_by_its_products_and_adam():
    steps = _bench("steps")
    setups = _bench("setups")
    row = {
        "replicas": 2,
        "sparsity": 0.0,
        "limit_gflops": 100.0,
        "engine_samples_per_s": 1_000.0,
        "reference_samples_per_s": 500.0,
        "speedup_vs_reference": 2.0,
    }
    c = steps.bench_ceiling(row, trials=1, reps=1)
    assert c["products_flop_share"] == pytest.approx(6 * (512 * 512 + 256 * 512) / setups.FLOP_PER_SAMPLE)
    assert c["best_step_ms"] == pytest.approx(c["products_ms"] + c["adam_ms"])
    assert c["best_samples_per_s"] == pytest.approx(2 * setups.BATCH / c["best_step_ms"] * 1e3)
    assert c["max_speedup_vs_reference"] == pytest.approx(c["best_samples_per_s"] / 500.0)
    assert c["products_max_speedup"] > c["max_speedup_vs_reference"] > 0  # Adam takes time too
    assert c["engine_step_ms"] == pytest.approx(2 * setups.BATCH / 1_000.0 * 1e3)
    flops = 2 * setups.BATCH * 6 * (512 * 512 + 256 * 512)
    assert c["products_fraction_of_limit"] == pytest.approx(flops / (c["products_ms"] / 1e3) / 100e9)


@pytest.mark.slow
def test_treatment_workers_row_compares_one_process_with_one_per_core(monkeypatch):
    """The treatment row: its timings, their ratios, and the same courses in one process and in
    one worker per core (up to summation order), with an "epoch" of :data:`TINY_EPOCH_STEPS`
    mini-batches (the regrowth scores then read that many batches instead of 30), each variant
    timed once (``trials=1``, ``make bench`` takes the best of two): the same workers, split and
    comparison as in ``make bench``, on shorter courses."""
    workers = _bench("workers")
    monkeypatch.setattr(workers, "EPOCH_STEPS", TINY_EPOCH_STEPS)
    monkeypatch.setattr(workers.parallel, "usable_cores", lambda: 2)
    row = workers.bench_treatment_workers({"ketamine": 1, "ssri": 1, "neurosteroid": 1}, m=2, trials=1)
    assert row["workers"] == 2 and row["replicas"] == 2
    assert row["speedup"] == pytest.approx(row["one_process_s"] / row["workers_s"])
    assert set(row["max_abs_diff"]) == {"untreated", "ketamine", "ssri", "neurosteroid"}
    assert row["max_abs_diff"]["untreated"] == 0.0  # untrained: the same tensors
    assert all(0 <= v < 1e-4 for v in row["max_abs_diff"].values())
    monkeypatch.setattr(workers.parallel, "usable_cores", lambda: 1)
    assert workers.bench_treatment_workers({"ketamine": 1}, m=2) is None


def test_step_work_counts_what_a_step_must_multiply():
    steps = _bench("steps")
    setups = _bench("setups")
    from pruneplast.network import EnsembleMLP
    from pruneplast.operators import prune

    dense = EnsembleMLP.init([0])
    w = steps.step_work(dense, noise=False)
    assert w["multiplied_weights"] == setups.N_WEIGHTS  # every weight, as dense products
    assert w["flops_per_step"] == setups.FLOP_PER_SAMPLE * setups.BATCH
    assert w["trainable"] == setups.N_WEIGHTS + 512 + 512 + 256 + 4
    sparse = prune(EnsembleMLP.init([0, 1]), 0.95)
    kept = int(sum(int(m.sum()) for m in sparse.masks))
    quiet, noisy = steps.step_work(sparse, noise=False), steps.step_work(sparse, noise=True)
    # CSR counts kept weights only; live units only without noise, every reaching unit with it
    assert quiet["multiplied_weights"] <= noisy["multiplied_weights"] <= kept
    assert noisy["bytes_per_step"] > quiet["bytes_per_step"]


def test_step_work_trains_every_weight_and_bias_that_can_change_a_logit():
    """At 95% the trainable entries include the constant units (no kept input from a varying
    unit): their biases and their kept weights into units that reach a logit. Reference: the kept
    weights into, and the biases of, the units with a kept path to a logit (and the logits)."""
    import numpy as np

    steps = _bench("steps")
    from pruneplast.kernels.compact import unit_roles
    from pruneplast.network import EnsembleMLP
    from pruneplast.operators import prune

    sparse = prune(EnsembleMLP.init([0, 1]), 0.95)
    want = 0
    for k in range(sparse.n_replicas):
        masks = [mk[k].numpy() for mk in sparse.masks]  # (out, in) per layer
        reach = np.ones(masks[-1].shape[0], dtype=bool)  # the logits
        for mk in reversed(masks):
            want += int(mk[reach].sum()) + int(reach.sum())  # kept weights into reaching units, their biases
            reach = mk[reach].any(0)  # the inputs with a kept weight into a reaching unit
    assert any(bool(c.any()) for c in unit_roles(sparse.masks, noise=False)[1])  # constant units at 95%
    for noise in (False, True):
        assert steps.step_work(sparse, noise=noise)["trainable"] == want, noise


def test_fractions_are_referred_to_one_limit():
    report = _bench("report")
    setups = _bench("setups")
    res = {
        "train": [{"limit_gflops": 100.0, "engine_samples_per_s": 1e4, "reference_samples_per_s": 5e3}],
        "step_kinds": [{"flops_per_step": 2e9, "memory_floor_ms": 1.0, "ms_per_step": 20.0}],
    }
    report.refer_to_limit(res, 200.0)
    row = res["train"][0]
    assert row["interleaved_gflops"] == 100.0 and row["limit_gflops"] == 200.0
    assert row["engine_fraction_of_limit"] == 1e4 * setups.FLOP_PER_SAMPLE / 1e9 / 200.0
    kind = res["step_kinds"][0]
    assert kind["flop_floor_ms"] == 10.0 and kind["bound"] == "FLOP" and kind["times_floor"] == 2.0


def test_other_processes_share_is_a_fraction_or_unknown():
    limit = _bench("limit")
    wall, others = limit.timed_with_others(lambda: sum(range(200_000)))
    assert wall > 0 and (others is None or 0.0 <= others <= 1.0)


def test_quiet_limit_keeps_the_best_trial_and_says_how_quiet_it_was():
    limit = _bench("limit")
    out = limit.quiet_limit(trials=3, pause=0.0, n=256, reps=1)
    top = out[f"threads_{out['threads']}"]
    assert out["limit_gflops"] == top["best_gflops"] >= top["median_gflops"] > 0
    assert 0 <= top["quiet_trials"] <= 3 and out["threads_1"]["best_gflops"] > 0


def test_every_step_kind_is_set_against_its_floor():
    steps = _bench("steps")
    before = torch.get_num_threads()
    rows = steps.bench_step_kinds(steps=2, trials=1, limit=100.0, m=2, threads=1)
    assert torch.get_num_threads() == before  # the run's threads are put back
    assert [r["kind"] for r in rows] == [k for k, _, _ in steps.STEP_KINDS]
    for r in rows:
        assert r["threads"] == 1 and r["limit_gflops"] == 100.0
        assert r["floor_ms"] == max(r["flop_floor_ms"], r["memory_floor_ms"]) > 0
        assert r["times_floor"] == r["ms_per_step"] / r["floor_ms"]
    dense, half, sparse, noisy = rows
    assert dense["multiplied_weights"] > half["multiplied_weights"] > sparse["multiplied_weights"]
    assert noisy["noise_sd"] > 0 and noisy["multiplied_weights"] >= sparse["multiplied_weights"]


def test_a_start_up_timed_longer_than_the_run_gives_no_ratio_without_it(monkeypatch):
    workers = _bench("workers")
    monkeypatch.setattr(workers, "worker_startup", lambda n, trials: 1e6)
    timing, out = workers.one_process_vs_workers(lambda w: w * 10, 2)
    assert out == {1: 10, 2: 20} and timing["startup_s"] == 1e6
    assert timing["speedup_after_startup"] is None
    monkeypatch.setattr(workers, "worker_startup", lambda n, trials: 0.0)
    timing, _ = workers.one_process_vs_workers(lambda w: w, 2)
    assert timing["speedup_after_startup"] == pytest.approx(timing["speedup"])
    calls: list = []
    workers.one_process_vs_workers(lambda w: calls.append(w), 2, trials=3)
    assert calls == [1, 2] * 3  # interleaved, as many trials of each


def test_fused_step_row_compares_the_paths_or_says_why_not(monkeypatch):
    steps = _bench("steps")
    monkeypatch.setattr(steps.fused, "why_not_compiled", lambda: "no C++ compiler (c++) was found")
    assert steps.bench_fused_step(steps=2, trials=1, m=2) == {
        "skipped": "the fused step cannot be built here: no C++ compiler (c++) was found"
    }
    monkeypatch.undo()
    if steps.fused.why_not_compiled() is not None or steps.fused.load() is None:
        pytest.skip("the fused step cannot be built here")
    before = os.environ.get(steps.fused.ENV)
    res = steps.bench_fused_step(steps=2, trials=1, m=2, check_steps=1)
    assert os.environ.get(steps.fused.ENV) == before  # the switch is restored
    assert [r["kind"] for r in res["rows"]] == ["95%", "noisy"]
    for r in res["rows"]:
        assert r["standard_ms_per_step"] > 0 and r["fused_ms_per_step"] > 0
        assert 0 < r["max_abs_dw_after_1_steps"] < 1e-5 and 0 < r["max_abs_dw_after_2_steps"] < 1e-5
        assert r["floor_ms"] > r["noise_draw_ms"] >= 0 and (r["noise_draw_ms"] > 0) == (r["kind"] == "noisy")
        assert r["fused_times_floor"] == pytest.approx(r["fused_ms_per_step"] / r["floor_ms"])


@pytest.mark.slow
def test_busy_row_times_both_paths_quiet_and_busy_with_the_same_results():
    """The busy row: its four timings and their ratios, the cores and threads restored, and the
    same results, bit for bit, from one two-thread process and from two one-thread workers, quiet
    and with a busy core.

    The phase is chapter 2's two schemes on the full network at a tiny size (one seed, one
    mini-batch per epoch, 100 test samples) with its sparsity sweep at 95% only (``make bench``:
    unpruned, 90% and 95%): the unpruned network's evaluation is the main experiment's baseline
    stage, and a 90%-pruned replica takes the path of the 95% one, so every kind of step the
    comparison covers is still in it; what the row does not check here is any timing's size (the
    busy core's slowdown is ``make bench``'s to measure).
    """
    busy = _bench("busy")
    if len(os.sched_getaffinity(0)) < 2:
        assert busy.bench_busy(epochs=1, n_train=256, seeds=(0,), trials=1) is None
        return
    threads, cores, cache = busy.torch.get_num_threads(), os.sched_getaffinity(0), os.environ.get("PRUNEPLAST_CACHE")
    row = busy.bench_busy(epochs=1, n_train=128, seeds=(0,), trials=1, n_test=100, levels=(0.95,))
    assert busy.torch.get_num_threads() == threads and os.sched_getaffinity(0) == cores  # restored
    assert os.environ.get("PRUNEPLAST_CACHE") == cache
    assert len(row["cores"]) == 2 and row["busy_core"] in row["cores"]
    for key in ("one_process_s", "workers_s", "busy_one_process_s", "busy_workers_s"):
        assert row[key] > 0
    assert row["slowdown_workers"] == pytest.approx(row["busy_workers_s"] / row["workers_s"])
    assert row["busy_speedup"] == pytest.approx(row["busy_one_process_s"] / row["busy_workers_s"])
    assert row["same_results"] is True


def test_busy_row_says_why_not_on_one_core(monkeypatch):
    busy = _bench("busy")
    monkeypatch.setattr(busy.os, "sched_getaffinity", lambda pid: {0})
    assert busy.bench_busy(epochs=1, n_train=256, seeds=(0,), trials=1) is None


def test_denormal_share_counts_the_gradients_a_saturated_network_makes_denormal():
    """Logits far apart make the softmax's small probabilities, and so the gradients, denormal:
    the share counts them with denormals kept, and is 0 for a network at its initialisation."""
    steps = _bench("steps")
    from pruneplast.config import TaskConfig
    from pruneplast.kernels import denormals

    net, data = steps.replicas(1, 0.0, TaskConfig(n_train=256, n_standard=128, n_clean=128))
    with denormals.kept():
        assert steps._denormal_share(net, data) == 0.0
        net.weights[-1].mul_(1000.0)  # logit gaps of hundreds: some probabilities between e^-104 and e^-87
        assert steps._denormal_share(net, data) > 0.0


def test_denormals_row_times_one_epoch_kept_and_flushed():
    steps = _bench("steps")
    from pruneplast.config import TaskConfig

    task = TaskConfig(n_train=256, n_standard=128, n_clean=128)
    row = steps.bench_denormals(1, m=1, cycles=2, epochs_per_cycle=1, baseline_epochs=2, task=task)
    assert row["steps"] == 2 and row["threads"] == 1
    assert 0.05 < row["kept_fraction_of_weights"] < 1.0  # 95% pruned, then two cycles of 40% regrown
    assert row["speedup"] == pytest.approx(row["kept_ms_per_step"] / row["flushed_ms_per_step"])
    assert 0.0 <= row["denormal_share_of_gradients"] < 1.0
    assert row["max_abs_weight_diff_after_epoch"] >= 0.0


def test_cycles_of_the_long_chronic_regimen_are_timed_one_by_one(tmp_path, monkeypatch):
    """``atlas_tasks.py --cycles`` at a tiny protocol: the baselines and each cycle timed, the shares
    measured and expected (equal) summing to 1, the seconds per unit of cost positive; the cache it
    used is gone and the caller's is not written."""
    tasks_mod = _bench("atlas_tasks")
    from pruneplast import atlas

    monkeypatch.setenv("PRUNEPLAST_CACHE", str(tmp_path / "mine"))
    tiny = atlas.Protocol(
        baseline_epochs=1, consolidation_epochs=1, acute_epochs=1, chronic_epochs=1, chronic_cycles=3,
        treatment_epochs=(("ketamine", 1), ("ssri", 1), ("neurosteroid", 1)), maintenance_epochs=1,
        n_train=2 * 128, n_standard=128, n_clean=128,
    )  # fmt: skip
    small = atlas.Setting("reference", "reference", "reference", hidden=(32, 32, 16))
    out = tasks_mod.time_cycles(small, 2, tiny)
    assert out["seeds"] == 2 and out["baseline_s"] > 0 and len(out["cycle_s"]) == 3
    assert all(c >= 0 for c in out["cycle_s"]) and sum(out["cycle_s"]) > 0 and out["seconds_per_cost"] > 0
    assert sum(out["measured_shares"]) == pytest.approx(1.0, abs=1e-3)
    assert out["expected_shares"] == [pytest.approx(1 / 3, abs=1e-4)] * 3
    assert not (tmp_path / "mine").exists()
    import os

    assert os.environ["PRUNEPLAST_CACHE"] == str(tmp_path / "mine")  # the caller's, put back
