"""Bad input and faults: every case of ``tests/faults.py``, and what the user gets.

Command-line cases must fail before any work, in under a few seconds, naming the parameter and
the range the engine enforces. The registered tests below cover the Python API, papermill, the
caches, signals, disk and concurrency; the book's *Bad input and faults* page lists them all.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from faults import CLI_CASES, fault, matches, run_cli

from pruneplast import build

ROOT = Path(__file__).resolve().parent.parent
EXE = Path(sys.executable).with_name("pruneplast")


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.tried for c in CLI_CASES])
def test_cli_case_fails_early_with_a_clear_message(case, monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("PRUNEPLAST_CACHE", str(tmp_path / "cache"))
    code, message, seconds = run_cli(case)
    assert code == case.code, f"exit {code}, expected {case.code}: {message}"
    assert matches(case, message), f"message {message!r} does not match {case.message!r}"
    assert "Traceback" not in message
    assert seconds < 5, f"took {seconds:.1f} s: something ran before the check"
    assert not (ROOT / "runs" / "02_pruning_cliff-quick" / "02_pruning_cliff.partial.ipynb").exists()


def test_list_shows_every_parameter_with_the_engine_range(capsys):
    from pruneplast import chapters, cli

    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for ch in chapters.CHAPTERS.values():
        for k in ch.all_params:
            line = next(ln for ln in out.splitlines() if ln.strip().startswith(k + " ") and ch.name in out)
            assert "allowed:" in line, line
    assert "sweep_levels" in out and "[0, 0.999]" in out and "[0, 4294966]" in out


# --------------------------------------------------------------------------- the Python API
def _tiny():
    from pruneplast.config import NetworkConfig, TaskConfig
    from pruneplast.data import EnsembleData
    from pruneplast.network import EnsembleMLP

    data = EnsembleData.build([0], TaskConfig(n_train=256, n_standard=200, n_clean=40))
    return EnsembleMLP.init([0], NetworkConfig(sizes=(2, 8, 8, 4, 4))), data


@fault(
    "Python API",
    "operators.train(..., lr=-1e-3) (a negative learning rate)",
    "ValueError: lr must be in (0.0, 1.0]; got -0.001 - before the first step",
)
def test_train_rejects_a_negative_learning_rate():
    from pruneplast.config import TrainConfig
    from pruneplast.operators import train

    net, data = _tiny()
    with pytest.raises(ValueError, match=r"lr must be in \(0\.0, 1\.0\]; got -0\.001"):
        train(net, data, TrainConfig(epochs=1), lr=-1e-3)


@fault("Python API", "operators.train(..., lr=nan)", "ValueError: lr must be a number in (0.0, 1.0]; got nan")
def test_train_rejects_a_nan_learning_rate():
    from pruneplast.config import TrainConfig
    from pruneplast.operators import train

    net, data = _tiny()
    with pytest.raises(ValueError, match=r"lr must be a number"):
        train(net, data, TrainConfig(epochs=1), lr=float("nan"))


@fault(
    "Python API",
    "operators.train with one learning rate per replica, but the wrong count",
    "ValueError: lr must be one learning rate or one per replica (1); got 2",
)
def test_train_rejects_a_per_replica_lr_of_the_wrong_length():
    from pruneplast.config import TrainConfig
    from pruneplast.operators import train

    net, data = _tiny()
    with pytest.raises(ValueError, match=r"one per replica \(1\); got 2"):
        train(net, data, TrainConfig(epochs=1), lr=[1e-3, 1e-3])


@fault(
    "Python API",
    "training that diverges (weights become inf or NaN)",
    "FloatingPointError naming the replicas and the epoch: 'non-finite weights (NaN or inf) in 1 of 1 "
    "replicas (seed 0) after epoch 1 of train; training diverged: lower the learning rate ...'",
)
def test_training_stops_on_non_finite_weights():
    from pruneplast.config import TrainConfig
    from pruneplast.operators import train

    net, data = _tiny()
    with torch.no_grad():
        net.weights[1][0, 0, 0] = float("inf")
    with pytest.raises(FloatingPointError, match=r"non-finite weights .*seed 0\) after epoch 1"):
        train(net, data, TrainConfig(epochs=3, lr=1e-3))


@fault(
    "Python API",
    "stress.evaluate on a network with NaN weights",
    "FloatingPointError: non-finite weights ... (found before evaluating), instead of a finite accuracy",
)
def test_evaluation_refuses_non_finite_weights():
    from pruneplast.stress import evaluate

    net, data = _tiny()
    with torch.no_grad():
        net.weights[0][0, 0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="found before evaluating"):
        evaluate(net, data, ["standard"])


@fault(
    "Python API",
    "RunConfig(seeds=[5_000_000]) (its data seed would overflow numpy)",
    "ValueError: seeds[0] must be an integer [0, 4294966]; got 5000000",
)
def test_seed_whose_data_seed_overflows_is_rejected():
    from pruneplast.config import MAX_SEED, RunConfig
    from pruneplast.data import replicate_sets

    with pytest.raises(ValueError, match=r"seeds\[0\] must be an integer \[0, 4294966\]"):
        RunConfig(seeds=[5_000_000])
    replicate_sets(MAX_SEED, RunConfig(seeds=[MAX_SEED]).task)  # the largest allowed seed builds its data


@fault(
    "Python API",
    "check_device('cuda:7') / 'xpu' / 'meta'",
    "ValueError naming the device: not available here, or the engine runs on 'cpu' or 'cuda' only",
)
def test_devices_that_cannot_be_used_are_rejected():
    from pruneplast.config import check_device

    for bad in ("xpu", "meta", "cuda:7", "cpu:1"):
        with pytest.raises(ValueError, match="device"):
            check_device("device", bad)
    assert check_device("device", "cpu") == "cpu"


# --------------------------------------------------------------------------- papermill
def _papermill(tmp_path, *params: str) -> subprocess.CompletedProcess:
    nb = tmp_path / "ch.ipynb"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "jupytext",
            "--to",
            "ipynb",
            "-o",
            str(nb),
            str(ROOT / "notebooks" / "01_model_and_task.md"),
        ],
        check=True,
        capture_output=True,
    )
    env = dict(os.environ, PRUNEPLAST_RESULTS=str(tmp_path / "results"), PRUNEPLAST_CACHE=str(tmp_path / "cache"))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "papermill",
            str(nb),
            str(tmp_path / "out.ipynb"),
            "--cwd",
            str(ROOT / "notebooks"),
            *params,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@fault(
    "papermill",
    "papermill -p profile quick and nothing else (paper-scale values under the quick label)",
    "the first code cell fails: 'profile is quick but seeds, baseline_epochs all hold their paper values, so "
    "this would run the paper-scale experiment and file it as quick results ...'",
)
@pytest.mark.slow
def test_papermill_quick_label_on_paper_values_fails_in_the_first_cell(tmp_path):
    out = _papermill(tmp_path, "-p", "profile", "quick")
    assert out.returncode != 0
    assert "would run the paper-scale experiment" in out.stderr + out.stdout
    assert not (tmp_path / "results").exists()


@fault(
    "papermill",
    "papermill -p sedes '[0]' (a misspelled parameter name)",
    "the first code cell fails: \"unknown parameter 'sedes' injected; valid parameters: profile, device, ...\"",
)
@pytest.mark.slow
def test_papermill_misspelled_parameter_fails(tmp_path):
    out = _papermill(
        tmp_path, "-p", "profile", "quick", "-y", "seeds: [0]", "-p", "baseline_epochs", "1", "-y", "sedes: [0]"
    )
    assert out.returncode != 0
    assert "unknown parameter 'sedes' injected" in out.stderr + out.stdout


@fault(
    "command line",
    "pruneplast run on a jupytext-converted .ipynb of chapter 2 under another name",
    "runs as chapter 2: the chapter's parameters, ranges and quick values apply (found by its NOTEBOOK line)",
)
@pytest.mark.slow
def test_converted_chapter_under_another_name_is_that_chapter(tmp_path):
    nb = tmp_path / "my_copy.ipynb"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "jupytext",
            "--to",
            "ipynb",
            "-o",
            str(nb),
            str(ROOT / "notebooks" / "02_pruning_cliff.md"),
        ],
        check=True,
        capture_output=True,
    )
    assert build.chapter_name(nb) == "02_pruning_cliff"
    params = build.parameters_for(nb, "quick")
    assert params["seeds"] == [0, 1]
    with pytest.raises(build.ParameterError, match=r"sweep_levels\[1\]"):
        build.parameters_for(nb, "quick", {"sweep_levels": [0.5, 1.0]})


@fault(
    "command line",
    "pruneplast run on a file named .ipynb that is not JSON",
    "error: ... is not a readable Jupyter notebook (NotJSONError: ...), exit 2",
)
def test_non_json_ipynb_is_a_clear_error(tmp_path, capsys):
    from pruneplast import cli

    bad = tmp_path / "bad.ipynb"
    bad.write_text("{not json")
    assert cli.main(["run", str(bad)]) == 2
    assert "not a readable Jupyter notebook" in capsys.readouterr().err


# --------------------------------------------------------------------------- caches and files
@fault(
    "cache",
    "a truncated or empty cached baseline (a full disk, a killed copy)",
    "warning: cache file <path> is unreadable (...); recomputing it - the recomputed state equals the lost one",
)
def test_damaged_baseline_cache_is_reported_and_recomputed(tmp_path, monkeypatch, capsys):
    from pruneplast.config import RunConfig, TaskConfig, TrainConfig
    from pruneplast.protocols import base

    monkeypatch.setenv("PRUNEPLAST_CACHE", str(tmp_path))
    run = RunConfig(seeds=(0,), task=TaskConfig(n_train=256, n_standard=200, n_clean=40))
    cfg = TrainConfig(epochs=1, lr=1e-3)
    first, _ = base.baseline(run, cfg)
    (path,) = (tmp_path / "baselines").glob("*.pt")
    for damage in (lambda b: b[: len(b) // 2], lambda b: b""):
        path.write_bytes(damage(path.read_bytes()))
        again, _ = base.baseline(run, cfg)
        assert f"cache file {path} is unreadable" in capsys.readouterr().err
        assert all(torch.equal(a, b) for a, b in zip(first.weights, again.weights))
        assert base.load_state(path) is not None  # rewritten whole


@fault(
    "cache",
    "a damaged cached set of treated states (chapters 5 and 6)",
    "the same warning with the file's path; the states are recomputed and the file rewritten",
)
def test_damaged_treated_cache_is_recomputed(tmp_path, monkeypatch, capsys):
    from pruneplast.protocols import base

    monkeypatch.setenv("PRUNEPLAST_CACHE", str(tmp_path))
    path = tmp_path / "treated" / "x.pt"
    base.save_state({"a": torch.ones(3)}, path)
    path.write_bytes(path.read_bytes()[:10])
    assert base.load_state(path) is None and not path.exists()
    assert "is unreadable" in capsys.readouterr().err


@fault(
    "files",
    "results and cache files under the usual umask 022",
    "files readable by others like any new file (0644), not 0600",
)
def test_results_and_cache_files_get_the_umask_mode(tmp_path):
    import pandas as pd

    from pruneplast import results
    from pruneplast.protocols import base

    old = os.umask(0o022)
    try:
        df = pd.DataFrame(
            {"experiment": ["e"], "condition": ["c"], "seed": [0], "metric": ["accuracy"], "value": [1.0]}
        )
        csv = results.save_results(df, "nb", "quick", {}, tmp_path)
        base.save_state({"x": torch.zeros(1)}, tmp_path / "c.pt")
        for p in (csv, csv.with_suffix(".json"), tmp_path / "c.pt"):
            assert (p.stat().st_mode & 0o777) == 0o644, (p, oct(p.stat().st_mode))
    finally:
        os.umask(old)


@fault(
    "files",
    "every results .json",
    "records the machine facts that decide bitwise equality (machine: CPU "
    "model, vector extensions, torch CPU capability, BLAS, threads, versions)",
)
def test_results_json_records_the_machine(tmp_path):
    import pandas as pd

    from pruneplast import machine, results

    df = pd.DataFrame({"experiment": ["e"], "condition": ["c"], "seed": [0], "metric": ["accuracy"], "value": [1.0]})
    meta = json.loads(results.save_results(df, "nb", "quick", {}, tmp_path).with_suffix(".json").read_text())
    for k in machine.BITWISE_KEYS:
        assert k in meta["machine"], k
    assert meta["machine"]["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()


@fault(
    "disk",
    "the disk fills up while papermill writes the partly executed notebook",
    "the error, and no half-written .failed.ipynb (only a readable one is kept)",
)
def test_a_cut_short_partial_notebook_is_not_kept(tmp_path, monkeypatch):
    import errno

    import papermill

    def full_disk(nb, path, **kw):
        Path(path).write_text('{"cells": [')  # what a full disk leaves
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(papermill, "execute_notebook", full_disk)
    with pytest.raises(OSError, match="No space left"):
        build.execute(
            ROOT / "notebooks" / "01_model_and_task.md",
            tmp_path / "x.ipynb",
            build.parameters_for(ROOT / "notebooks" / "01_model_and_task.md", "quick"),
        )
    assert list(tmp_path.iterdir()) == []


@fault(
    "output",
    "an output folder that cannot be written (read-only)",
    "error: output folder (--out) <path> cannot be written (Permission denied) - before anything runs, exit 1",
)
def test_read_only_output_folder_fails_before_running(tmp_path, capsys):
    from pruneplast import cli

    if os.geteuid() == 0:
        pytest.skip("root can write into read-only folders; the /proc case of CLI_CASES covers this as root")
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    assert cli.main(["run", "02", "--out", str(ro)]) == 1
    assert "cannot be written" in capsys.readouterr().err


@fault(
    "output",
    "a cache folder ($PRUNEPLAST_CACHE) that cannot be created",
    "error: cache folder ($PRUNEPLAST_CACHE) <path> cannot be written (...) - before anything runs, exit 1",
)
def test_unusable_cache_folder_fails_before_running(tmp_path, monkeypatch, capsys):
    from pruneplast import cli

    monkeypatch.setenv("PRUNEPLAST_CACHE", "/proc/pruneplast-cache")
    t0 = time.perf_counter()
    assert cli.main(["run", "02", "--out", str(tmp_path / "out")]) == 1
    assert "cache folder ($PRUNEPLAST_CACHE) /proc/pruneplast-cache cannot be written" in capsys.readouterr().err
    assert time.perf_counter() - t0 < 5


# --------------------------------------------------------------------------- signals and concurrency
def _start(tmp_path, chapter: str, out: Path, *extra: str) -> subprocess.Popen:
    env = dict(
        os.environ, PRUNEPLAST_CACHE=str(tmp_path / "cache"), TMPDIR=str(tmp_path / "tmp"), PRUNEPLAST_PROGRESS="0"
    )
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return subprocess.Popen(
        [str(EXE), "run", chapter, "--profile", "quick", "--out", str(out), *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _workers(pid: int) -> list:
    import psutil

    try:
        kids = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [k for k in kids if "spawn_main" in " ".join(k.cmdline())]


@fault(
    "signals",
    "SIGTERM to pruneplast run while chapter 5 trains in worker processes",
    "'terminated (SIGTERM): the run was stopped and its kernel and worker processes have ended ...', "
    "exit 143; no worker process left, no temporary folder left, no executed notebook written",
)
@pytest.mark.slow
def test_sigterm_ends_kernel_and_workers_and_leaves_no_temporary_folder(tmp_path):
    import psutil

    proc = _start(tmp_path, "05", tmp_path / "out", "-p", "workers", "2")
    workers = []
    deadline = time.time() + 240
    while time.time() < deadline and not workers and proc.poll() is None:
        time.sleep(0.5)
        workers = _workers(proc.pid)
    assert workers, "chapter 5 never started its worker processes"
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert "terminated (SIGTERM)" in err and "Traceback" not in err
    time.sleep(2.0)
    alive = [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"worker processes outlived the run: {[w.pid for w in alive]}"
    assert list((tmp_path / "tmp").iterdir()) == [], "the run left temporary files behind"
    assert not (tmp_path / "out" / "05_treatments.ipynb").exists()


@fault(
    "signals",
    "Ctrl-C (SIGINT) during a run",
    "one short message 'interrupted (Ctrl-C): the run was stopped ...' instead of 66-174 lines of tracebacks, exit 130",
)
@pytest.mark.slow
def test_ctrl_c_prints_a_short_message(tmp_path):
    proc = _start(tmp_path, "02", tmp_path / "out")
    time.sleep(8.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted (Ctrl-C)" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 8, err


@fault(
    "concurrency",
    "a second pruneplast run into the same --out while the first is running",
    "the second stops at once: 'output folder <path> is in use by another pruneplast run (pid N); wait for it "
    "to finish or choose another --out', exit 1; once the first has ended the folder is free again",
)
def test_concurrent_runs_into_one_output_folder(tmp_path):
    import contextlib
    import io

    from pruneplast import cli

    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen(  # a run in progress: another process holding the folder's lock
        [
            sys.executable,
            "-c",
            "import sys, time; from pruneplast import build\n"
            f"with build.run_lock({str(out)!r}):\n    print('locked', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        err = io.StringIO()
        t0 = time.perf_counter()
        with contextlib.redirect_stderr(err):
            code = cli.main(["run", "01", "--out", str(out), "-p", "seeds", "[0]"])
        assert code == 1 and "is in use by another pruneplast run (pid" in err.getvalue(), err.getvalue()
        assert time.perf_counter() - t0 < 5
    finally:
        holder.kill()
        holder.wait()
    with build.run_lock(out):  # released when its holder died
        pass
    assert not list(out.glob("*.ipynb"))


@fault(
    "Python API",
    "two build.execute calls into one folder at once (the Python API, no lock)",
    "each writes its own partial notebook (named with its process id); neither publishes the other's",
)
def test_partial_notebooks_are_per_process(tmp_path, monkeypatch):
    import papermill

    seen = []

    def record(nb, path, **kw):
        seen.append(Path(path).name)
        raise RuntimeError("stop here")

    monkeypatch.setattr(papermill, "execute_notebook", record)
    src = ROOT / "notebooks" / "01_model_and_task.md"
    with pytest.raises(RuntimeError, match="stop here"):
        build.execute(src, tmp_path / "x.ipynb", build.parameters_for(src, "quick"))
    assert seen == [f"x.{os.getpid()}.partial.ipynb"]


# --------------------------------------------------------------------------- sweeps
def _fake_cell(path, profile, overrides, folder):
    """A sweep cell without a notebook: one results file in an attempt folder, then done.json."""
    import pandas as pd

    from pruneplast import sweep

    attempt = Path(folder) / f"attempt-{os.getpid()}-{time.time_ns()}"
    (attempt / profile).mkdir(parents=True)
    pd.DataFrame({"experiment": ["e"], "seed": [0], "metric": ["m"], "value": [1.0]}).to_csv(
        attempt / profile / f"{Path(path).stem}.csv", index=False
    )
    record = {"overrides": overrides, "profile": profile, "notebook": Path(path).stem, "attempt": attempt.name}
    record["results"] = [f"{profile}/{Path(path).stem}.csv"]
    sweep.atomic_write(Path(folder) / "done.json", json.dumps(record))
    return record


class _InlineClient:
    """A Dask client stand-in that runs each submitted cell at once (no worker processes)."""

    def submit(self, fn, *args, **kw):
        class Done:
            def __init__(self):
                try:
                    self.value, self.error = fn(*args), None
                except Exception as exc:  # noqa: BLE001 - handed to the sweep like a Dask future would
                    self.value, self.error = None, exc

            def result(self):
                if self.error is not None:
                    raise self.error
                return self.value

        return Done()

    def close(self):
        pass


@fault(
    "sweep",
    "a sweep cell's done.json that is not JSON, not a cell record, or the record of another cell",
    "warning: sweep record <path> is not readable JSON (...) / not a cell record (...) / the record of other "
    "parameters; running the cell again - the rerun recomputes that cell only, the merged table is whole",
)
def test_a_damaged_sweep_record_is_reported_and_the_cell_rerun(tmp_path, monkeypatch, capsys):
    import dask.distributed
    import pandas as pd

    from pruneplast import cli, sweep

    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sweep, "_client", lambda scheduler, workers: (_InlineClient(), None))
    monkeypatch.setattr(dask.distributed, "as_completed", lambda futures: list(futures))
    ran: list[dict] = []

    def cell(path, profile, overrides, folder):
        ran.append(overrides)
        return _fake_cell(path, profile, overrides, folder)

    monkeypatch.setattr(sweep, "run_cell", cell)
    out = tmp_path / "sw"
    argv = ["sweep", "02", "-g", "sparsity", "[0.9, 0.95]", "--out", str(out)]
    assert cli.main(argv) == 0 and len(ran) == 2
    _, cells = sweep.plan("02", {"sparsity": [0.9, 0.95]}, "quick", out)
    other = json.loads(cells[1].done_file.read_text())
    for damage, says in (
        ("{not json", "is not readable JSON"),
        ("[1, 2]", "is not a cell record (a JSON list"),
        ('{"attempt": "x"}', "is not a cell record (no overrides"),
        (json.dumps(other), "is the record of other parameters"),
        ("csv", "is the record of a damaged results file"),
    ):
        ran.clear()
        capsys.readouterr()
        if damage == "csv":  # the record is right, the results file it names is not
            rec = json.loads(cells[0].done_file.read_text())
            (cells[0].folder / rec["attempt"] / rec["results"][0]).write_bytes(b"")  # emptied
        else:
            cells[0].done_file.write_text(damage)
        assert cli.main(argv) == 0, capsys.readouterr().err
        err = capsys.readouterr().err
        assert f"sweep record {cells[0].done_file} {says}" in err and "running the cell again" in err, err
        assert "Traceback" not in err
        assert ran == [{"sparsity": 0.9}]  # only the damaged cell ran again
        table = pd.read_csv(out / "02_pruning_cliff-sweep.csv")
        assert sorted(table.sparsity) == [0.9, 0.95]
        assert cells[0].done()


@fault(
    "concurrency",
    "a second pruneplast sweep into the same --out while the first is running",
    "the second stops before any cell: 'output folder <path> is in use by another pruneplast sweep or run "
    "(pid N); wait for it to finish or choose another --out', exit 1",
)
def test_a_second_sweep_into_one_folder_is_refused(tmp_path, capsys, monkeypatch):
    from pruneplast import cli

    monkeypatch.chdir(ROOT)
    out = tmp_path / "sw"
    out.mkdir()
    t0 = time.perf_counter()
    with build.run_lock(out):  # the first sweep holds the folder (flock: also within one process)
        code = cli.main(["sweep", "02", "-g", "sparsity", "[0.9, 0.95]", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "is in use by another pruneplast sweep or run (pid" in err, err
    assert "Traceback" not in err and time.perf_counter() - t0 < 5
    assert not (out / "cells").exists()


# --------------------------------------------------------------------------- stored state
@fault(
    "cache",
    "a cached baseline file that loads but holds another object (a table, a dict of other keys, the state of "
    "another seed or of other layer sizes or dtypes)",
    "warning: cache file <path> does not hold what it should (baseline: ...); recomputing it - instead of "
    "KeyError: 'gain' on every later run; the recomputed state equals the lost one",
)
def test_a_cache_file_holding_another_object_is_reported_and_recomputed(tmp_path, monkeypatch, capsys):
    import pandas as pd

    from pruneplast.config import RunConfig, TaskConfig, TrainConfig
    from pruneplast.protocols import base

    monkeypatch.setenv("PRUNEPLAST_CACHE", str(tmp_path))
    task = TaskConfig(n_train=256, n_standard=200, n_clean=40)
    cfg = TrainConfig(epochs=1, lr=1e-3)
    first, _ = base.baseline(RunConfig(seeds=(0,), task=task), cfg)
    (path,) = (tmp_path / "baselines").glob("*.pt")
    good = torch.load(path, weights_only=False)
    other, _ = base.baseline(RunConfig(seeds=(1,), task=task), cfg)
    doubled = {**good, "weights": [w.double() for w in good["weights"]]}
    for wrong, says in (
        (pd.DataFrame({"a": [1]}), "baseline: is a DataFrame, not a network's state dict"),
        ({"weights": good["weights"]}, "no 'biases'"),
        (other.state_dict(), "holds replicas of seeds [1]; expected [0]"),
        ({**good, "weights": good["weights"][:2]}, "2 weight, 4 bias and 4 mask tensors"),
        (doubled, "baseline.weights[0]: has dtype torch.float64"),
    ):
        base.save_state(wrong, path)
        again, _ = base.baseline(RunConfig(seeds=(0,), task=task), cfg)
        err = capsys.readouterr().err
        assert f"warning: cache file {path} does not hold what it should" in err and says in err, err
        assert err.count("\n") == 1, err  # one line
        assert all(torch.equal(a, b) for a, b in zip(first.weights, again.weights))
        assert base.load_state(path) is not None  # rewritten whole


@fault(
    "cache",
    "a cached set of treated states, or an atlas cell, that loads but is another object",
    "the same one-line warning naming the file and what it holds; the entry is deleted and recomputed",
)
def test_cached_treated_states_and_atlas_cells_are_checked(tmp_path, capsys):
    from pruneplast.atlas import protocol
    from pruneplast.protocols import base, treatments

    net, _ = _tiny()
    path = tmp_path / "treated.pt"
    for saved, says in (
        ({"ssri": net.state_dict()}, "treated states of arms ['ketamine', 'ssri'] expected; got ['ssri']"),
        ({"ketamine": {"a": 1}, "ssri": net.state_dict()}, "the treated state of 'ketamine': is not a network"),
    ):
        base.save_state(saved, path)
        check = lambda st: treatments._check_treated(st, ["ketamine", "ssri"], [0], net.sizes)  # noqa: E731
        assert base.load_state(path, check) is None and not path.exists()
        err = capsys.readouterr().err
        assert f"cache file {path} does not hold what it should" in err and says in err, err
    base.save_state({"not": "a table"}, path)
    assert base.load_state(path, protocol._check_cell) is None and not path.exists()
    assert "a cell's table expected; got a dict" in capsys.readouterr().err


@fault(
    "Python API",
    "EnsembleMLP.from_state_dict of something that is not a network's state dict",
    "ValueError: state: is not a network's state dict (no 'gain', ...) instead of KeyError: 'gain'",
)
def test_from_state_dict_says_what_is_missing():
    from pruneplast.network import EnsembleMLP

    net, _ = _tiny()
    st = {k: v for k, v in net.state_dict().items() if k != "gain"}
    with pytest.raises(ValueError, match=r"state: is not a network's state dict \(no 'gain'\)"):
        EnsembleMLP.from_state_dict(st)


# --------------------------------------------------------------------------- operator inputs
def _operators():
    """Every operator that takes an ensemble and its data, as (name, call(net, data))."""
    from pruneplast import operators, stress
    from pruneplast.config import RegrowConfig, TrainConfig

    return [
        ("regrow", lambda n, d: operators.regrow(n, d, RegrowConfig(fraction=0.5, score_batches=1))),
        ("gradient_scores", lambda n, d: operators.gradient_scores(n, d, RegrowConfig(score_batches=1))),
        ("train", lambda n, d: operators.train(n, d, TrainConfig(epochs=1))),
        ("evaluate", lambda n, d: stress.evaluate(n, d, ["standard"])),
        ("accuracy", lambda n, d: stress.accuracy(n, d, "standard")),
        ("tolerance", lambda n, d: stress.tolerance(n, d, [0.5])),
        ("manic_risk", lambda n, d: stress.manic_risk(n, d)),
        ("activation_magnitude", lambda n, d: stress.activation_magnitude(n, d)),
    ]


def _pruned_pair(seeds=(0,)):
    from pruneplast.config import NetworkConfig, TaskConfig
    from pruneplast.network import EnsembleMLP
    from pruneplast.operators import prune

    task = TaskConfig(n_train=256, n_standard=200, n_clean=40)
    return prune(EnsembleMLP.init(list(seeds), NetworkConfig(sizes=(2, 8, 8, 4, 4))), 0.5), task


@fault(
    "Python API",
    "operators.regrow (and every other operator) given data built for other seeds or another replica count",
    "ValueError before any work: 'data holds replicas [1] but the network holds [0]; build the data for the "
    "network's seeds (EnsembleData.for_replicas(net.seeds))' - regrow used to go on with the wrong data",
)
def test_every_operator_refuses_data_of_other_replicas():
    from pruneplast.data import EnsembleData

    net, task = _pruned_pair((0,))
    for data, says in (
        (EnsembleData.build([1], task), r"data holds replicas \[1\] but the network holds \[0\]"),
        (EnsembleData.build([0, 1], task), r"data holds replicas \[0, 1\] but the network holds \[0\]"),
    ):
        for name, call in _operators():
            before = [m.clone() for m in net.masks], [w.clone() for w in net.weights]
            with pytest.raises(ValueError, match=says):
                call(net, data)
            assert all(torch.equal(a, b) for a, b in zip(before[0], net.masks)), name  # nothing done
            assert all(torch.equal(a, b) for a, b in zip(before[1], net.weights)), name


@fault(
    "Python API",
    "operators and stress tests given data of another dtype, shape or device or with no samples, or a network "
    "in float64 or of no replicas",
    "ValueError naming the argument and what it holds: data.x['train']: has dtype torch.float64 ...; "
    "net.weights[0]: has dtype torch.float64, but the engine computes in torch.float32 ...; holds 0 samples",
)
def test_every_operator_checks_dtype_shape_and_samples():
    from pruneplast.data import EnsembleData
    from pruneplast.operators import prune, relapse_challenge
    from pruneplast.stress import structure

    net, task = _pruned_pair((0,))
    good = EnsembleData.build([0], task)
    as64 = EnsembleData(good.seeds, {**good.x, "train": good.x["train"].double()}, good.y)
    as3 = EnsembleData(good.seeds, {**good.x, "standard": torch.zeros(1, 5, 3)}, good.y)
    empty = EnsembleData(good.seeds, {**good.x, "clean": good.x["clean"][:, :0]}, good.y)
    elsewhere = EnsembleData(good.seeds, {**good.x, "train": good.x["train"].to("meta")}, good.y)
    net64 = net.clone()
    net64.weights = [w.double() for w in net64.weights]
    for _name, call in _operators():
        with pytest.raises(ValueError, match=r"data\.x\['train'\]: has dtype torch\.float64"):
            call(net, as64)
        with pytest.raises(ValueError, match=r"data\.x\['standard'\]: has shape \(1, 5, 3\); expected \(1, 5, 2\)"):
            call(net, as3)
        with pytest.raises(ValueError, match=r"data\.x\['clean'\]: holds 0 samples"):
            call(net, empty)
        with pytest.raises(ValueError, match=r"data\.x\['train'\]: is on meta but the network is on cpu"):
            call(net, elsewhere)
        with pytest.raises(ValueError, match=r"net\.weights\[0\]: has dtype torch\.float64, but the engine"):
            call(net64, good)
    for op in (prune, relapse_challenge, structure):
        with pytest.raises(ValueError, match=r"net\.weights\[0\]: has dtype torch\.float64"):
            op(net64)
        with pytest.raises(ValueError, match=r"net: holds 0 replicas"):
            op(net.select([]))


@fault(
    "Python API",
    "regrow(..., scores=...) or regrowth_selectivity(..., grown) with tensors built for another network",
    "ValueError: scores[0]: has shape (2, 8, 2); expected (1, 8, 2) (or another dtype, or another layer count)",
)
def test_regrowth_tensors_must_fit_the_network():
    from pruneplast.config import RegrowConfig
    from pruneplast.data import EnsembleData
    from pruneplast.operators import gradient_scores, regrow
    from pruneplast.stress import regrowth_selectivity

    net, task = _pruned_pair((0,))
    two, _ = _pruned_pair((0, 1))
    data = EnsembleData.build([0], task)
    cfg = RegrowConfig(score_batches=1)
    theirs = gradient_scores(two, EnsembleData.build([0, 1], task), cfg)
    with pytest.raises(ValueError, match=r"scores\[0\]: has shape \(2, 8, 2\); expected \(1, 8, 2\)"):
        regrow(net.clone(), None, cfg, scores=theirs)
    with pytest.raises(ValueError, match=r"scores: must be a list of one tensor per layer \(4\); got 3"):
        regrow(net.clone(), None, cfg, scores=gradient_scores(net, data, cfg)[:3])
    grown = regrow(net.clone(), data, cfg)
    with pytest.raises(ValueError, match=r"grown\[0\]: has dtype torch\.float32; expected torch\.bool"):
        regrowth_selectivity(net, [g.float() for g in grown], data, cfg)
    assert len(regrowth_selectivity(net, grown, data, cfg)) == 1  # what fits is accepted


# --------------------------------------------------------------------------- sizes and seeds of the API
@fault(
    "Python API",
    "seeds as a numpy array (np.arange(2)) or of numpy integers, in RunConfig, EnsembleData and EnsembleMLP",
    "accepted as the same seeds: the same data and the same weights as the list [0, 1]",
)
def test_numpy_seeds_are_accepted_as_the_same_seeds():
    import numpy as np

    from pruneplast.config import NetworkConfig, RunConfig, TaskConfig
    from pruneplast.data import EnsembleData
    from pruneplast.network import EnsembleMLP

    task = TaskConfig(n_train=64, n_standard=20, n_clean=20)
    small = NetworkConfig(sizes=(2, 4, 4))
    for seeds in (np.arange(2), np.array([0, 1], dtype=np.uint32), [np.int64(0), np.int64(1)], torch.arange(2)):
        assert RunConfig(seeds=seeds).seeds == (0, 1)
        assert EnsembleData.build(seeds, task).x["train"].equal(EnsembleData.build([0, 1], task).x["train"])
        net, ref = EnsembleMLP.init(seeds, small), EnsembleMLP.init([0, 1], small)
        assert net.seeds == [0, 1] and all(torch.equal(a, b) for a, b in zip(net.weights, ref.weights))
    with pytest.raises(ValueError, match=r"seeds\[0\] must be an integer"):
        RunConfig(seeds=np.array([0.5, 1.0]))


@fault(
    "Python API",
    "EnsembleMLP.init with no seeds, or with a seed twice",
    "ValueError: seeds must contain at least 1 replicate seed; got 0 / seeds must not repeat a seed; got [0, 0]",
)
def test_init_rejects_no_seeds_and_repeated_seeds():
    from pruneplast.config import NetworkConfig
    from pruneplast.network import EnsembleMLP

    small = NetworkConfig(sizes=(2, 4, 4))
    with pytest.raises(ValueError, match=r"seeds must contain at least 1 replicate seed; got 0"):
        EnsembleMLP.init([], small)
    with pytest.raises(ValueError, match=r"seeds must not repeat a seed; got \[0, 0\]"):
        EnsembleMLP.init([0, 0], small)
    with pytest.raises(ValueError, match=r"net must be a NetworkConfig; got tuple"):
        EnsembleMLP.init([0], (2, 4, 4))


_ABSURD = (2,) + (4096,) * 2000 + (4,)  # about 134 GB of float32 weights per replica


@fault(
    "Python API",
    "EnsembleMLP.init / ModelChoices with 2,000 hidden layers of 4,096 units (~134 GB of weights per replica)",
    "ValueError before allocating: 'net: a network of 2000 hidden layers of up to 4,096 units (33,537,679,360 "
    "weights per replica) needs about 704.5 GB to train 1 replica (...), but this machine has N GB'",
)
def test_a_network_larger_than_the_machine_is_refused_with_the_estimate():
    from pruneplast.config import ModelChoices, NetworkConfig, memory_limit
    from pruneplast.network import EnsembleMLP

    limit = memory_limit()[0] / 1e9
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"net: a network of 2000 hidden layers .* needs about 704\.5 GB") as exc:
        EnsembleMLP.init([0], NetworkConfig(sizes=_ABSURD))
    assert f"this machine has {limit:,.1f} GB" in str(exc.value)
    with pytest.raises(ValueError, match=r"hidden: a network of 2000 hidden layers"):
        ModelChoices(hidden=_ABSURD[1:-1])
    assert time.perf_counter() - t0 < 2  # refused from the arithmetic, nothing allocated


@fault(
    "command line",
    "pruneplast run 02 -p hidden '[4096, 4096, ... (2,000 layers)]'",
    "error: hidden: a network of 2000 hidden layers ... needs about 704.5 GB ..., but this machine has N GB; "
    "use fewer or narrower layers - exit 2, before anything runs",
)
def test_cli_refuses_hidden_layers_larger_than_the_machine(capsys, monkeypatch):
    from pruneplast import cli

    monkeypatch.chdir(ROOT)
    assert cli.main(["run", "02", "-p", "hidden", str(list(_ABSURD[1:-1]))]) == 2
    err = capsys.readouterr().err
    assert "hidden: a network of 2000 hidden layers" in err and "needs about 704.5 GB" in err, err
    assert "Traceback" not in err


@fault(
    "files",
    "a chapter's results CSV that is empty, not a table or lacks the tidy columns (a results file cannot be "
    "recomputed from the cache)",
    "DamagedResults: results file <path> is not a readable table / not a tidy results table (no column value); "
    "rerun the notebook to write it again (pruneplast run <notebook> --profile <profile>)",
)
def test_a_damaged_results_file_is_refused_with_its_path_and_the_fix(tmp_path):
    from pruneplast import results

    path = results.results_dir("quick", tmp_path) / "02_pruning_cliff.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    for text, says in (
        ("", "is not a readable table (EmptyDataError"),
        ("experiment,condition,seed,metric\ne,c,0,m\n", "is not a tidy results table (no column value)"),
        ("experiment,condition,seed,metric,value\ne,c,0,m,abc\n", "holds values that are not numbers"),
    ):
        path.write_text(text)
        with pytest.raises(results.DamagedResults) as exc:
            results.load_results("02_pruning_cliff", "quick", tmp_path)
        assert f"results file {path} {says}" in str(exc.value)
        assert "pruneplast run 02_pruning_cliff --profile quick" in str(exc.value)
    path.write_text("experiment,condition,seed,metric,value\ne,c,0,m,1.5\n")
    assert results.load_results("02_pruning_cliff", "quick", tmp_path)["value"].tolist() == [1.5]
