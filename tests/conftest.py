"""Shared fixtures and independent reference implementations for the engine tests.

The references here are deliberately written without the package's code paths: plain
``numpy`` for data and forward passes, plain ``torch.nn`` modules for training and gradients.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from pruneplast.config import NetworkConfig, TaskConfig
from pruneplast.data import EnsembleData
from pruneplast.network import EnsembleMLP
from pruneplast.progress import set_progress

# The processes the tests start (chapter kernels, papermill, worker pools, Dask workers) run torch on
# one thread unless a test asks for more (torch.set_num_threads, as the tests that compare thread
# counts do): make test runs two pytest processes on two cores, and a two-thread process among
# them spins at every synchronisation while it waits for the other core (chapter 1's one-epoch
# baseline took 5.4 s of CPU instead of 0.4 that way). The book's pages side by side run the same
# way (booktools.book.SIDE_BY_SIDE_ENV). This process's own torch is pinned per test below.
for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

#: The front matter of a jupytext MyST notebook, the book's chapter format, for the tests' tiny pages.
MYST_HEADER = textwrap.dedent("""\
    ---
    jupytext:
      text_representation:
        extension: .md
        format_name: myst
    kernelspec:
      display_name: Python 3
      language: python
      name: python3
    ---

""")

FULL = NetworkConfig()  # 2 -> 512 -> 512 -> 256 -> 4
SMALL_NET = NetworkConfig(sizes=(2, 48, 48, 24, 4))  # same depth, cheap
SMALL_TASK = TaskConfig(n_train=512, n_standard=1000, n_clean=200)
SCORE_TASK = TaskConfig(n_train=30 * 128 + 64, n_standard=1000, n_clean=200)  # >= 30 batches


#: The test files that take longest under ``make test`` (wall seconds on two quiet cores, the quick
#: book executed), longest first. They are handed out first, so that the two pytest processes
#: (``--dist loadfile --no-loadscope-reorder``: a file stays in one process, files go out in this
#: order) finish together; by default pytest-xdist hands out the files with the most tests first,
#: which leaves the long files of one or two tests (a chapter under another float path, the
#: browser, the full task end to end) to the end, one process working while the other waits.
LONGEST_FIRST = (
    "tests/booktools/test_build.py",
    "tests/book/test_float_paths.py",
    "tests/book/test_browser.py",
    "tests/test_faults.py",
    "tests/book/test_notebooks.py",
    "tests/benchmarks/test_bench.py",
    "tests/atlas/test_atlas.py",
    "tests/test_sweep.py",
    "tests/book/test_end_to_end.py",
    "tests/protocols/test_longitudinal.py",
    "tests/book/test_prose_follows_run.py",
    "tests/explorer/test_explorer.py",
)


def pytest_collection_modifyitems(session, config, items):
    """The files of :data:`LONGEST_FIRST` first, in its order; the others after them as collected
    (a stable sort: every file's tests stay together and in their order)."""
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


@pytest.fixture(autouse=True, scope="session")
def _no_progress_bars():
    set_progress(False)
    yield
    set_progress(None)


def small_trained(task: TaskConfig, epochs: int, seeds=(0, 1), sparsity: float | None = 0.95):
    """Small replicas (``SMALL_NET``) trained briefly at lr 3e-3 (one thread), then pruned.

    Returns ``(net, data)``; with ``sparsity=None`` the trained network is returned unpruned.
    Module-scoped fixtures are set up before the autouse one-thread fixture, hence the pinning here.
    """
    from pruneplast.config import TrainConfig
    from pruneplast.operators import prune, train

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        data = EnsembleData.build(list(seeds), task)
        net = EnsembleMLP.init(list(seeds), SMALL_NET)
        train(net, data, TrainConfig(epochs=epochs, lr=3e-3), tag="baseline")
    finally:
        torch.set_num_threads(n)
    return (net if sparsity is None else prune(net, sparsity)), data


@pytest.fixture(autouse=True)
def _fixed_threads():
    # Results must not depend on thread count; keep the suite light on shared cores.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def assert_same_ensemble(a: EnsembleMLP, b: EnsembleMLP, atol: float = 1e-6) -> None:
    """The same replicas in the same order, equal masks and modulation, weights and biases within atol."""
    assert a.meta == b.meta
    for x, y in zip(a.weights + a.biases, b.weights + b.biases):
        assert torch.allclose(x, y, atol=atol)
    for x, y in zip(a.masks, b.masks):
        assert torch.equal(x, y)
    for attr in ("gain", "damping", "tanh", "protection"):
        assert torch.equal(getattr(a, attr), getattr(b, attr))


def reference_module(net: EnsembleMLP, m: int) -> nn.Sequential:
    """Replica ``m`` as a plain ``nn.Sequential`` of ``nn.Linear`` + ReLU, with explicit zeros."""
    layers: list[nn.Module] = []
    n = len(net.weights)
    for i, (w, b) in enumerate(zip(net.weights, net.biases)):
        lin = nn.Linear(w.shape[2], w.shape[1])
        with torch.no_grad():
            lin.weight.copy_(w[m])
            lin.bias.copy_(b[m])
        layers.append(lin)
        if i < n - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def linears(model: nn.Sequential) -> list[nn.Linear]:
    return [mod for mod in model if isinstance(mod, nn.Linear)]


def numpy_forward(ws, bs, x, act="relu", gain=1.0, damping=1.0, protection=0.0, bias=0.0):
    """The forward pass of the methods' section 2, by hand in numpy (float64), no noise.

    Per hidden layer: h = act(W h + b); h = h + bias; h = h * damping * g_eff; h = h - 0.15 p.
    """
    if protection > 0:
        g_eff = min(gain, max(1.05, 1.05 + (1 - protection) * (gain - 1.05)))
    else:
        g_eff = gain
    h = np.asarray(x, dtype=np.float64)
    for w, b in zip(ws[:-1], bs[:-1]):
        z = h @ np.asarray(w, np.float64).T + np.asarray(b, np.float64)
        h = np.tanh(z) if act == "tanh" else np.maximum(z, 0.0)
        h = h + bias
        h = h * damping * g_eff
        h = h - 0.15 * protection
    return h @ np.asarray(ws[-1], np.float64).T + np.asarray(bs[-1], np.float64)


@pytest.fixture(scope="session")
def full_net() -> EnsembleMLP:
    """One freshly initialised full-size replica (seed 0), never modified by tests (clone it)."""
    return EnsembleMLP.init([0], FULL)


@pytest.fixture(scope="session")
def score_data() -> EnsembleData:
    return EnsembleData.build([0, 1], SCORE_TASK)


# --------------------------------------------------------------------------- Dask clusters
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        args,
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"},
    )


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM a process group started by :func:`start_dask_cluster` (SIGKILL after 20 s)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def start_dask_cluster(logs: Path, workers: int = 2, cache: Path | None = None) -> tuple[str, list[subprocess.Popen]]:
    """A scheduler and ``workers`` one-thread workers as separate processes (the ``dask scheduler``
    and ``dask worker`` commands) on 127.0.0.1: (address, [scheduler, worker, ...]), workers up.
    ``cache``: the workers' engine cache (``$PRUNEPLAST_CACHE``; default this process's)."""
    from distributed import Client

    dask = str(Path(sys.executable).with_name("dask"))
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [
        _start(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], logs / "scheduler.log"
        )
    ]
    try:
        for k in range(workers):
            procs.append(
                _start(
                    [dask, "worker", address, "--nworkers", "1", "--nthreads", "1", "--host", "127.0.0.1"]
                    + ["--no-dashboard", "--name", f"w{k}"],
                    logs / f"worker{k}.log",
                    None if cache is None else {"PRUNEPLAST_CACHE": str(cache)},
                )
            )
        with Client(address, timeout="60s") as c:
            c.wait_for_workers(workers, timeout=60)
    except BaseException:
        for p in procs:
            stop_process(p)
        raise
    return address, procs


@pytest.fixture(scope="session")
def dask_scheduler(tmp_path_factory):
    """The address of a scheduler with two one-thread workers, separate processes on 127.0.0.1,
    started once per test process for every test that takes it. The workers' engine cache is a
    folder of their own, empty when they start (never the project's, nor a test's)."""
    logs = tmp_path_factory.mktemp("dask")
    address, procs = start_dask_cluster(logs, workers=2, cache=logs / "worker-cache")
    yield address
    for p in procs:
        stop_process(p)
