"""Bad input and faults: every case of the catalogue ``pruneplast/faults.py``, and what the user gets.

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

from pruneplast import booktools
from pruneplast.faults import CLI_CASES, FAULTS, matches, run_cli

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


def test_train_rejects_a_negative_learning_rate():
    from pruneplast.config import TrainConfig
    from pruneplast.operators import train

    net, data = _tiny()
    with pytest.raises(ValueError, match=r"lr must be in \(0\.0, 1\.0\]; got -0\.001"):
        train(net, data, TrainConfig(epochs=1), lr=-1e-3)


def test_train_rejects_a_nan_learning_rate():
    from pruneplast.config import TrainConfig
    from pruneplast.operators import train

    net, data = _tiny()
    with pytest.raises(ValueError, match=r"lr must be a number"):
        train(net, data, TrainConfig(epochs=1), lr=float("nan"))


def test_train_rejects_a_per_replica_lr_of_the_wrong_length():
    from pruneplast.config import TrainConfig
    from pruneplast.operators import train

    net, data = _tiny()
    with pytest.raises(ValueError, match=r"one per replica \(1\); got 2"):
        train(net, data, TrainConfig(epochs=1), lr=[1e-3, 1e-3])


def test_training_stops_on_non_finite_weights():
    from pruneplast.config import TrainConfig
    from pruneplast.operators import train

    net, data = _tiny()
    with torch.no_grad():
        net.weights[1][0, 0, 0] = float("inf")
    with pytest.raises(FloatingPointError, match=r"non-finite weights .*seed 0\) after epoch 1"):
        train(net, data, TrainConfig(epochs=3, lr=1e-3))


def test_evaluation_refuses_non_finite_weights():
    from pruneplast.stress import evaluate

    net, data = _tiny()
    with torch.no_grad():
        net.weights[0][0, 0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="found before evaluating"):
        evaluate(net, data, ["standard"])


def test_seed_whose_data_seed_overflows_is_rejected():
    from pruneplast.config import MAX_SEED, RunConfig
    from pruneplast.data import replicate_sets

    with pytest.raises(ValueError, match=r"seeds\[0\] must be an integer \[0, 4294966\]"):
        RunConfig(seeds=[5_000_000])
    replicate_sets(MAX_SEED, RunConfig(seeds=[MAX_SEED]).task)  # the largest allowed seed builds its data


def test_devices_that_cannot_be_used_are_rejected():
    from pruneplast.config import check_device

    for bad in ("xpu", "meta", "cuda:7", "cpu:1"):
        with pytest.raises(ValueError, match="device"):
            check_device("device", bad)
    assert check_device("device", "cpu") == "cpu"


# --------------------------------------------------------------------------- papermill
def _papermill(tmp_path, *params: str) -> subprocess.CompletedProcess:
    """Chapter 1 converted to ``.ipynb`` (as ``jupytext --to ipynb`` writes it, in this process) and
    run by papermill's own command line with ``params``; its kernel on one thread, as a page of a
    side-by-side build (a test beside it has the other core; the thread count changes no check)."""
    import jupytext

    from pruneplast.booktools.book import SIDE_BY_SIDE_ENV

    nb = tmp_path / "ch.ipynb"
    jupytext.write(jupytext.read(ROOT / "notebooks" / "01_model_and_task.md"), nb)
    env = dict(
        os.environ,
        **SIDE_BY_SIDE_ENV,
        PRUNEPLAST_RESULTS=str(tmp_path / "results"),
        PRUNEPLAST_CACHE=str(tmp_path / "cache"),
    )
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


@pytest.mark.slow
def test_papermill_quick_label_on_paper_values_fails_in_the_first_cell(tmp_path):
    out = _papermill(tmp_path, "-p", "profile", "quick")
    assert out.returncode != 0
    assert "would run the paper-scale experiment" in out.stderr + out.stdout
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_papermill_misspelled_parameter_fails(tmp_path):
    out = _papermill(
        tmp_path, "-p", "profile", "quick", "-y", "seeds: [0]", "-p", "baseline_epochs", "1", "-y", "sedes: [0]"
    )
    assert out.returncode != 0
    assert "unknown parameter 'sedes' injected" in out.stderr + out.stdout


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
    assert booktools.chapter_name(nb) == "02_pruning_cliff"
    params = booktools.parameters_for(nb, "quick")
    assert params["seeds"] == [0, 1]
    with pytest.raises(booktools.ParameterError, match=r"sweep_levels\[1\]"):
        booktools.parameters_for(nb, "quick", {"sweep_levels": [0.5, 1.0]})


def test_non_json_ipynb_is_a_clear_error(tmp_path, capsys):
    from pruneplast import cli

    bad = tmp_path / "bad.ipynb"
    bad.write_text("{not json")
    assert cli.main(["run", str(bad)]) == 2
    assert "not a readable Jupyter notebook" in capsys.readouterr().err


# --------------------------------------------------------------------------- caches and files
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


def test_damaged_treated_cache_is_recomputed(tmp_path, monkeypatch, capsys):
    from pruneplast.protocols import base

    monkeypatch.setenv("PRUNEPLAST_CACHE", str(tmp_path))
    path = tmp_path / "treated" / "x.pt"
    base.save_state({"a": torch.ones(3)}, path)
    path.write_bytes(path.read_bytes()[:10])
    assert base.load_state(path) is None and not path.exists()
    assert "is unreadable" in capsys.readouterr().err


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


def test_results_json_records_the_machine(tmp_path):
    import pandas as pd

    from pruneplast import machine, results

    df = pd.DataFrame({"experiment": ["e"], "condition": ["c"], "seed": [0], "metric": ["accuracy"], "value": [1.0]})
    meta = json.loads(results.save_results(df, "nb", "quick", {}, tmp_path).with_suffix(".json").read_text())
    for k in machine.BITWISE_KEYS:
        assert k in meta["machine"], k
    assert meta["machine"]["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()


def test_a_cut_short_partial_notebook_is_not_kept(tmp_path, monkeypatch):
    import errno

    import papermill

    def full_disk(nb, path, **kw):
        Path(path).write_text('{"cells": [')  # what a full disk leaves
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(papermill, "execute_notebook", full_disk)
    with pytest.raises(OSError, match="No space left"):
        booktools.execute(
            ROOT / "notebooks" / "01_model_and_task.md",
            tmp_path / "x.ipynb",
            booktools.parameters_for(ROOT / "notebooks" / "01_model_and_task.md", "quick"),
        )
    assert list(tmp_path.iterdir()) == []


def test_read_only_output_folder_fails_before_running(tmp_path, capsys):
    from pruneplast import cli

    if os.geteuid() == 0:
        pytest.skip("root can write into read-only folders; the /proc case of CLI_CASES covers this as root")
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    assert cli.main(["run", "02", "--out", str(ro)]) == 1
    assert "cannot be written" in capsys.readouterr().err


def test_unusable_cache_folder_fails_before_running(tmp_path, monkeypatch, capsys):
    from pruneplast import cli

    monkeypatch.setenv("PRUNEPLAST_CACHE", "/proc/pruneplast-cache")
    t0 = time.perf_counter()
    assert cli.main(["run", "02", "--out", str(tmp_path / "out")]) == 1
    assert "cache folder ($PRUNEPLAST_CACHE) /proc/pruneplast-cache cannot be written" in capsys.readouterr().err
    assert time.perf_counter() - t0 < 5


# --------------------------------------------------------------------------- signals and concurrency
def _start(tmp_path, chapter: str, out: Path, *extra: str) -> subprocess.Popen:
    """``pruneplast run`` of ``chapter`` at the quick profile, its kernel on one torch thread as a
    page of a side-by-side build (what a signal must end does not depend on the thread count)."""
    from pruneplast.booktools.book import SIDE_BY_SIDE_ENV

    env = dict(
        os.environ,
        **SIDE_BY_SIDE_ENV,
        PRUNEPLAST_CACHE=str(tmp_path / "cache"),
        TMPDIR=str(tmp_path / "tmp"),
        PRUNEPLAST_PROGRESS="0",
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


@pytest.mark.slow
def test_sigterm_ends_kernel_and_workers_and_leaves_no_temporary_folder(tmp_path):
    """SIGTERM while chapter 5's treatment courses run in worker processes: the run exits with
    143 and one line, its kernel and every worker end, and no temporary file or notebook is left.

    The chapter runs one replicate seed with one baseline epoch: the signal is sent as soon as
    the workers are up, and what it must end (the kernel, the worker processes, the temporary
    folder) is the same at any size; only the training before the workers start is shorter. The
    courses keep the quick profile's epochs, so the workers are still training when it arrives.
    The workers are then watched until they have ended (at most 30 s), not for a fixed time.
    """
    proc = _start(
        tmp_path, "05", tmp_path / "out", "-p", "workers", "2", "-p", "seeds", "[0]", "-p", "baseline_epochs", "1"
    )
    workers: list = []
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
    alive = _alive(workers)
    deadline = time.time() + 30  # a worker that has not ended 30 s after its run has outlived it
    while alive and time.time() < deadline:
        time.sleep(0.1)
        alive = _alive(workers)
    assert not alive, f"worker processes outlived the run: {[w.pid for w in alive]}"
    assert list((tmp_path / "tmp").iterdir()) == [], "the run left temporary files behind"
    assert not (tmp_path / "out" / "05_treatments.ipynb").exists()


def _alive(procs: list) -> list:
    import psutil

    alive = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
        except psutil.NoSuchProcess:
            pass
    return alive


def _kernel_running_torch(pid: int):
    """The kernel that process ``pid`` started, once it has loaded torch (it is executing the
    chapter's code, past its start-up); None before."""
    import psutil

    try:
        kernels = [k for k in psutil.Process(pid).children(recursive=True) if "ipykernel" in " ".join(k.cmdline())]
        return next((k for k in kernels if any("libtorch" in m.path for m in k.memory_maps())), None)
    except psutil.Error:
        return None


@pytest.mark.slow
def test_ctrl_c_prints_a_short_message(tmp_path):
    """Ctrl-C while the chapter's code runs in its kernel: exit 130 and a few lines, no traceback.

    The signal is sent as soon as the kernel has loaded torch (the chapter's first code cell is
    running), not after a fixed wait."""
    proc = _start(tmp_path, "02", tmp_path / "out")
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and _kernel_running_torch(proc.pid) is None:
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    assert _kernel_running_torch(proc.pid) is not None, "the chapter's kernel never loaded torch"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted (Ctrl-C)" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 8, err


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
            "import sys, time; from pruneplast import booktools\n"
            f"with booktools.run_lock({str(out)!r}):\n    print('locked', flush=True); time.sleep(60)",
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
    with booktools.run_lock(out):  # released when its holder died
        pass
    assert not list(out.glob("*.ipynb"))


def test_partial_notebooks_are_per_process(tmp_path, monkeypatch):
    import papermill

    seen = []

    def record(nb, path, **kw):
        seen.append(Path(path).name)
        raise RuntimeError("stop here")

    monkeypatch.setattr(papermill, "execute_notebook", record)
    src = ROOT / "notebooks" / "01_model_and_task.md"
    with pytest.raises(RuntimeError, match="stop here"):
        booktools.execute(src, tmp_path / "x.ipynb", booktools.parameters_for(src, "quick"))
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


def test_a_damaged_sweep_record_is_reported_and_the_cell_rerun(tmp_path, monkeypatch, capsys):
    import dask.distributed
    import pandas as pd

    from pruneplast import cli, sweep

    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sweep, "_client", lambda scheduler, workers: (_InlineClient(), None))
    monkeypatch.setattr(dask.distributed, "as_completed", lambda futures: list(futures))
    ran: list[dict] = []

    def cell(request, folder):
        ran.append(request.overrides)
        return _fake_cell(request.path, request.profile, request.overrides, folder)

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


def test_a_second_sweep_into_one_folder_is_refused(tmp_path, capsys, monkeypatch):
    from pruneplast import cli

    monkeypatch.chdir(ROOT)
    out = tmp_path / "sw"
    out.mkdir()
    t0 = time.perf_counter()
    with booktools.run_lock(out):  # the first sweep holds the folder (flock: also within one process)
        code = cli.main(["sweep", "02", "-g", "sparsity", "[0.9, 0.95]", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "is in use by another pruneplast sweep or run (pid" in err, err
    assert "Traceback" not in err and time.perf_counter() - t0 < 5
    assert not (out / "cells").exists()


# --------------------------------------------------------------------------- stored state
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


def test_cli_refuses_hidden_layers_larger_than_the_machine(capsys, monkeypatch):
    from pruneplast import cli

    monkeypatch.chdir(ROOT)
    assert cli.main(["run", "02", "-p", "hidden", str(list(_ABSURD[1:-1]))]) == 2
    err = capsys.readouterr().err
    assert "hidden: a network of 2000 hidden layers" in err and "needs about 704.5 GB" in err, err
    assert "Traceback" not in err


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


# --------------------------------------------------------------------------- the catalogue itself
def test_the_catalogue_names_these_tests_and_lists_each_of_them():
    import inspect

    here = {name for name, fn in globals().items() if name.startswith("test_") and inspect.isfunction(fn)}
    listed = [f.test for f in FAULTS]
    assert len(listed) == len(set(listed)), "a test is listed twice"
    assert set(listed) <= here, sorted(set(listed) - here)
    own = {
        "test_cli_case_fails_early_with_a_clear_message",
        "test_list_shows_every_parameter_with_the_engine_range",
        "test_the_catalogue_names_these_tests_and_lists_each_of_them",
        "test_the_catalogue_names_no_folder_of_the_machine_it_runs_on",
    }
    assert here - own == set(listed), sorted(here - own - set(listed))
    assert len(CLI_CASES) + len(FAULTS) >= 120


# --------------------------------------------------------------------------- nothing lost, checks before work
def _old_results(folder: Path, stem: str = "02_pruning_cliff") -> dict[Path, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {folder / f"{stem}.csv": b"experiment,condition,seed,metric,value\ne,c,0,m,1.0\n"}
    files[folder / f"{stem}.json"] = b'{"old": true}\n'
    for p, data in files.items():
        p.write_bytes(data)
    return files


def test_book_checks_every_folder_before_work_and_keeps_results(tmp_path, monkeypatch):
    from pruneplast.booktools import book

    monkeypatch.setenv("PRUNEPLAST_RESULTS", str(tmp_path / "res"))
    monkeypatch.setenv("PRUNEPLAST_CACHE", str(tmp_path / "cache"))
    old = _old_results(tmp_path / "res" / "quick")
    monkeypatch.setattr(book, "execute", lambda *a, **k: pytest.fail("a page ran before the checks"))
    (tmp_path / "file").write_text("x")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "exec").write_text("a file where the build expects a folder")
    for build_dir, says in (
        (tmp_path / "file", "exists and is not a folder"),
        (tmp_path / "b", "exec/quick cannot be created"),
        (tmp_path / "file" / "sub", "cannot be created"),
    ):
        with pytest.raises(booktools.OutputError, match=f"build folder \\(--build-dir\\) .*{says}"):
            booktools.build_book("quick", build_dir)
        assert all(p.read_bytes() == data for p, data in old.items())  # nothing deleted or replaced


def test_a_failing_chapter_keeps_the_results_it_would_have_replaced(tmp_path, monkeypatch):
    from pruneplast.booktools import book
    from pruneplast.results import atomic_write

    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    (root / "notebooks" / "02_pruning_cliff.md").write_text((ROOT / "notebooks" / "02_pruning_cliff.md").read_text())
    (root / "_toc.yml").write_text("format: jb-book\nroot: notebooks/02_pruning_cliff\n")
    res = tmp_path / "res"
    monkeypatch.setenv("PRUNEPLAST_RESULTS", str(res))
    old = _old_results(res / "quick")

    def fails_after_writing(src, out, params, results_root=None, progress=False):
        atomic_write(Path(results_root) / "quick" / "02_pruning_cliff.csv", "new, from a run that fails\n")
        raise RuntimeError("a cell failed")

    monkeypatch.setattr(book, "execute", fails_after_writing)
    with pytest.raises(RuntimeError) as exc:
        booktools.execute_book("quick", tmp_path / "b", root)
    assert "RuntimeError: a cell failed; the results files it had were kept" in str(exc.value)
    assert "no partly executed notebook" in str(exc.value)  # says so instead of naming a file that is not there
    assert all(p.read_bytes() == data for p, data in old.items())
    assert sorted(p.name for p in (res / "quick").iterdir()) == ["02_pruning_cliff.csv", "02_pruning_cliff.json"]

    def writes_the_table_only(src, out, params, results_root=None, progress=False):
        atomic_write(Path(results_root) / "quick" / "02_pruning_cliff.csv", "new\n")
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text("{}")

    monkeypatch.setattr(book, "execute", writes_the_table_only)
    booktools.execute_book("quick", tmp_path / "b", root)
    assert (res / "quick" / "02_pruning_cliff.csv").read_text() == "new\n"
    assert sorted(p.name for p in (res / "quick").iterdir()) == ["02_pruning_cliff.csv"]  # the stale .json went


def test_a_failing_run_keeps_the_results_in_its_output_folder(tmp_path, monkeypatch, capsys):
    from pruneplast import cli
    from pruneplast.booktools import outputs
    from pruneplast.results import atomic_write

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("PRUNEPLAST_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    old = _old_results(out / "quick")

    def fails_after_writing(path, ipynb, params, results_root=None, **kw):
        atomic_write(Path(results_root) / "quick" / "02_pruning_cliff.csv", "new, from a run that fails\n")
        raise RuntimeError("a cell failed")

    monkeypatch.setattr(outputs, "execute", fails_after_writing)
    assert cli.main(["run", "02", "--out", str(out)]) == 1
    assert "execution failed: RuntimeError: a cell failed" in capsys.readouterr().err
    assert all(p.read_bytes() == data for p, data in old.items())
    assert not list((out / "quick").glob(".*previous"))


def test_a_run_checks_each_of_its_folders_once_before_the_kernel(tmp_path, monkeypatch):
    from pruneplast import cli
    from pruneplast.booktools import outputs

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("PRUNEPLAST_CACHE", str(tmp_path / "cache"))
    checked: list[str] = []
    check = outputs.check_writable

    def counted(folder, what):
        checked.append(what)
        return check(folder, what)

    def executes(path, ipynb, params, **kw):
        checked.append("kernel")

    monkeypatch.setattr(outputs, "check_writable", counted)
    monkeypatch.setattr(outputs, "execute", executes)
    assert cli.main(["run", "01", "--out", str(tmp_path / "out")]) == 0
    assert checked == [
        "output folder (--out)",
        "results folder (<out>/<profile>)",
        "cache folder ($PRUNEPLAST_CACHE)",
        "kernel",
    ]
    with pytest.raises(TypeError, match="check_run_outputs"):  # a folder nobody checked is refused
        booktools.run(booktools.request("01", "quick"), tmp_path / "out")


def test_results_left_by_a_killed_run_are_put_back(tmp_path):
    folder = tmp_path / "quick"
    old = _old_results(folder)
    csv = folder / "02_pruning_cliff.csv"
    (folder / ".02_pruning_cliff.csv.previous").write_bytes(old[csv])  # what a killed run leaves
    csv.write_text("written by the run that was killed\n")
    with pytest.raises(KeyboardInterrupt), booktools.keep_results(folder, "02_pruning_cliff"):
        assert csv.read_bytes() == old[csv]
        raise KeyboardInterrupt
    assert all(p.read_bytes() == data for p, data in old.items())
    assert sorted(p.name for p in folder.iterdir()) == ["02_pruning_cliff.csv", "02_pruning_cliff.json"]


def test_the_html_book_is_swapped_in_whole(tmp_path, monkeypatch):
    import shutil

    new, dest = tmp_path / "new", tmp_path / "html"
    (new / "sub").mkdir(parents=True)
    (new / "index.html").write_text("new book")
    dest.mkdir()
    (dest / "index.html").write_text("old book")

    def fails_half_way(src, dst, **kw):
        Path(dst).mkdir()
        (Path(dst) / "index.html").write_text("half")
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(shutil, "copytree", fails_half_way)
        with pytest.raises(OSError, match="No space left"):
            booktools.replace_folder(new, dest)
    assert (dest / "index.html").read_text() == "old book"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["html", "new"]
    booktools.replace_folder(new, dest)
    assert (dest / "index.html").read_text() == "new book" and (dest / "sub").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["html", "new"]


def test_a_results_folder_that_is_a_file_fails_before_the_run(tmp_path, monkeypatch, capsys):
    from pruneplast import cli
    from pruneplast.booktools import outputs

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("PRUNEPLAST_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(outputs, "execute", lambda *a, **k: pytest.fail("the chapter ran before the checks"))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "quick").write_text("a file")
    assert cli.main(["run", "02", "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert f"results folder (<out>/<profile>) {tmp_path / 'out' / 'quick'} exists and is not a folder" in err
    assert err.count("\n") == 1, err


def test_a_relative_cache_folder_is_the_one_the_kernel_uses(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PRUNEPLAST_CACHE", "rel-cache")
    assert booktools.check_cache() == tmp_path / "rel-cache"
    assert os.environ["PRUNEPLAST_CACHE"] == str(tmp_path / "rel-cache")  # what the kernel inherits


def test_every_page_is_validated_before_the_first_runs(tmp_path, monkeypatch):
    from pruneplast.booktools import book

    root = tmp_path / "project"
    (root / "book").mkdir(parents=True)
    head = "---\njupytext:\n  text_representation:\n    format_name: myst\nkernelspec:\n  name: python3\n---\n"
    for name in ("a", "b"):
        (root / "book" / f"{name}.md").write_text(head + f"# {name}\n\n```{{code-cell}} ipython3\nx = 1\n```\n")
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/a\nchapters:\n  - file: book/b\n")
    monkeypatch.setenv("PRUNEPLAST_RESULTS", str(tmp_path / "res"))

    def params(src, profile):
        if Path(src).stem == "b":
            raise booktools.ParameterError("b: a bad value")
        return {}

    monkeypatch.setattr(book, "parameters_for", params)
    monkeypatch.setattr(book, "execute", lambda *a, **k: pytest.fail("page a ran before page b was validated"))
    with pytest.raises(booktools.ParameterError, match="b: a bad value"):
        booktools.execute_book("quick", tmp_path / "b", root)


# --------------------------------------------------------------------------- scheduler addresses
def _server(reply: bytes | None):
    """A listening socket on 127.0.0.1 that greets each connection with ``reply`` (None: silence)."""
    import socket
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    conns = []

    def serve():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            conns.append(conn)
            if reply is not None:
                conn.sendall(reply)

    threading.Thread(target=serve, daemon=True).start()
    return srv, srv.getsockname()[1]


def test_a_port_that_does_not_greet_like_a_dask_scheduler_is_refused_within_seconds():
    import struct

    from pruneplast.config import check_scheduler

    greeting = struct.pack("<QQQ", 58, 1, 42) + b"\x83\xabcompression"
    for reply, says in (
        (None, "connected, but no Dask greeting"),
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", "something answers there, but not a Dask scheduler"),
    ):
        srv, port = _server(reply)
        try:
            t0 = time.perf_counter()
            with pytest.raises(RuntimeError, match=f"scheduler: could not reach the Dask scheduler .* \\({says}\\)"):
                check_scheduler("scheduler", f"tcp://127.0.0.1:{port}")
            assert time.perf_counter() - t0 < 4.5
        finally:
            srv.close()
    srv, port = _server(greeting)
    try:
        assert check_scheduler("scheduler", f"tcp://127.0.0.1:{port}") == f"tcp://127.0.0.1:{port}"
    finally:
        srv.close()


def test_papermills_first_cell_refuses_an_unreachable_scheduler():
    from pruneplast import chapters

    for name in ("05_treatments", "06_longitudinal_relapse", "07_robustness_atlas"):
        values = {**chapters.profile_values(name, "quick"), "scheduler": "tcp://127.0.0.1:1", "In": []}
        t0 = time.perf_counter()
        with pytest.raises(RuntimeError, match=r"scheduler: could not reach the Dask scheduler at 'tcp://127"):
            chapters.validate(name, values)
        assert time.perf_counter() - t0 < 4
        with pytest.raises(ValueError, match=r"scheduler must be '' or a Dask scheduler address"):
            chapters.validate(name, {**values, "scheduler": "127.0.0.1:8786"})


# --------------------------------------------------------------------------- repeated levels, profiles, ports
def test_the_engine_refuses_repeated_levels_as_validation_does():
    from pruneplast import atlas
    from pruneplast.explorer.grid import GridSpec

    with pytest.raises(ValueError, match=r"width_factors must not repeat a value; .*\(0\.5 and 0\.5000001"):
        atlas.settings(width_factors=[0.5, 0.5000001])
    with pytest.raises(ValueError, match=r"depth_changes must not repeat a value"):
        atlas.settings(depth_changes=[1, 1])
    with pytest.raises(ValueError, match=r"grid sparsities must not repeat a value"):
        GridSpec(sparsities=(0.9, 0.90))
    with pytest.raises(booktools.ParameterError, match=r"width_factors must not repeat a value"):
        booktools.parameters_for(ROOT / "notebooks" / "07_robustness_atlas.md", "quick", {"width_factors": [0.5, 0.5]})


def test_a_run_filed_under_a_profile_with_other_values_says_so(tmp_path, capsys):
    import pandas as pd

    from pruneplast import chapters, results

    values = {**chapters.profile_values("01_model_and_task", "paper"), "seeds": [0], "baseline_epochs": 1}
    params = chapters.validate("01_model_and_task", {**values, "In": []})  # as the first cell calls it
    note = capsys.readouterr().out
    assert "Note: this run is filed under profile 'paper' but differs from it in seeds=[0]" in note
    assert "baseline_epochs=1 (profile: 20)" in note
    df = pd.DataFrame({"experiment": ["e"], "condition": ["c"], "seed": [0], "metric": ["accuracy"], "value": [1.0]})
    meta = json.loads(
        results.save_results(df, "01_model_and_task", "paper", params, tmp_path).with_suffix(".json").read_text()
    )
    assert meta["differs_from_profile"] == {
        "seeds": {"used": [0], "profile": [0, 1]},
        "baseline_epochs": {"used": 1, "profile": 20},
    }
    own = chapters.validate("01_model_and_task", {**chapters.profile_values("01_model_and_task", "paper"), "In": []})
    assert capsys.readouterr().out == ""  # the profile's own run: no note
    meta = json.loads(
        results.save_results(df, "01_model_and_task", "paper", own, tmp_path).with_suffix(".json").read_text()
    )
    assert meta["differs_from_profile"] == {}


def test_explore_on_a_busy_port_says_so_before_any_work(tmp_path, capsys, monkeypatch):
    import socket

    from pruneplast import cli
    from pruneplast.explorer import app

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("PRUNEPLAST_CACHE", str(tmp_path / "cache"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = tmp_path / "app.ipynb"
        assert cli.main(["explore", "--out", str(out), "--serve", str(port)]) == 1
        err = capsys.readouterr().err
        assert f"port {port} on 127.0.0.1 is in use" in err and "choose another with --serve PORT" in err, err
        assert app.serve(out, port=port) == 1  # python -m pruneplast.explorer: the same
        assert f"port {port} on 127.0.0.1 is in use" in capsys.readouterr().err
        assert not out.exists()
    assert "--Voila.port_retries=0" in app.VOILA_OPTIONS  # Voila serves on that port or not at all


@pytest.mark.slow  # executes chapter 1 (one replicate, one epoch): about 20-60 s
def test_a_tiny_papermill_run_under_the_paper_profile_is_marked_on_its_page_and_in_its_results(tmp_path):
    out = _papermill(tmp_path, "-y", "seeds: [0]", "-p", "baseline_epochs", "1")
    assert out.returncode == 0, out.stderr[-2000:]
    page = (tmp_path / "out.ipynb").read_text()
    assert "Note: this run is filed under profile 'paper' but differs from it in seeds=[0]" in page
    meta = json.loads((tmp_path / "results" / "paper" / "01_model_and_task.json").read_text())
    assert meta["differs_from_profile"]["baseline_epochs"] == {"used": 1, "profile": 20}


def test_the_catalogue_names_no_folder_of_the_machine_it_runs_on():
    """The faults page prints every case's command: an example folder is relative to the project
    (under the ignored _build/), never a path such as /tmp/... of the machine that built the book."""
    from pruneplast import faults

    absolute = [c.command for c in faults.CLI_CASES if any(a.startswith(("/tmp", "/work", "/home")) for a in c.argv)]
    assert not absolute, absolute
