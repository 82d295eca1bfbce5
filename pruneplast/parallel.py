"""Independent jobs side by side in worker processes, one share of the CPU cores each.

A training step of a small ensemble is a few large matrix products, which use every core, and
many small operations (gathers, masks, activations, the optimiser), which barely get faster with
more threads. Independent ensembles (chapter 5's treatment courses, chapter 6's maintenance
runs) therefore finish sooner as separate processes, each on its own core, than one after the
other on all cores: the small operations of one run overlap those of the other. :func:`run_jobs`
runs a list of jobs either here, in order (``workers=1``), or in ``workers`` spawned processes
with ``cores // workers`` torch threads each, and returns the results in job order either way;
:func:`run_ensembles` first splits the ensembles that gain from it (:func:`splits_well`) into one
part per worker. :func:`run_phases` runs whole ensembles (independent training phases) side by
side on one share of the cores each, and :func:`on_share` puts a lone phase on one share: a step
on one thread keeps its speed when another process runs on the other core, a step on two threads
does not.

Given a Dask scheduler's address (``scheduler='tcp://host:8786'``), the same jobs go to that
cluster's workers instead, as one task each (``pruneplast sweep`` and the atlas use the same
scheduler): each task runs with as many torch threads as its worker has threads, and a task whose
worker is lost is run again on another one (its result is collected once, by job index).

Arguments and results cross the process boundary as ``torch.save`` bytes (no shared-memory file
descriptors). Each job is a pure function of its arguments, so the results do not depend on which
process runs it; they can differ from a run in one process in the last bits of floating-point
sums, where the thread count changes the order of a reduction (``make bench`` shows the size).
A job on a one-thread Dask worker gives the same bits as on a one-thread local worker process.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import io
import multiprocessing as mp
import os
import queue
from typing import TYPE_CHECKING, Any, Callable, Sequence

import torch

from .config import check_int, check_scheduler
from .kernels import fused
from .kernels.layers import SPARSE_BELOW
from .progress import progress_bar

if TYPE_CHECKING:
    from .data import EnsembleData
    from .network import EnsembleMLP


#: Cores a process is given, when it shares the machine with others started beside it (a book
#: that executes pages side by side gives each page its share); at most those it may run on.
CORES_ENV = "PRUNEPLAST_CORES"


def usable_cores() -> int:
    """CPU cores this process may run on (fewer where ``$PRUNEPLAST_CORES`` says so)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    given = os.environ.get(CORES_ENV, "")
    if given.isdigit() and int(given) >= 1:
        return min(cores, int(given))
    return cores


def resolve_workers(workers: int, device: str = "cpu", scheduler: str = "") -> int:
    """The number of worker processes: ``workers``, or if 0 one per usable core (with a Dask
    ``scheduler``: one per worker thread of that cluster); always 1 off the CPU."""
    workers = check_int("workers", workers, 0)
    if torch.device(device).type != "cpu":
        return 1  # a GPU runs one ensemble's products at a time; processes would only compete for it
    if workers == 0 and scheduler:
        return cluster_threads(scheduler)
    return usable_cores() if workers == 0 else workers


def _client(scheduler: str):
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise RuntimeError("a Dask scheduler was given but the 'distributed' package is not installed") from exc
    try:
        return Client(check_scheduler("scheduler", scheduler), timeout="30s")
    except OSError as exc:
        raise RuntimeError(f"could not reach the Dask scheduler at {scheduler!r} within 30 s: {exc}") from None


def cluster_threads(scheduler: str) -> int:
    """Worker threads of the Dask cluster at ``scheduler`` (at least 1)."""
    with _client(scheduler) as client:
        return max(1, sum(client.nthreads().values()))


def parts(n: int, workers: int) -> list[list[int]]:
    """Indices 0..n-1 in ``min(workers, n)`` contiguous parts of (nearly) equal size."""
    k = max(1, min(check_int("workers", workers, 1), n))
    return [list(range(i * n // k, (i + 1) * n // k)) for i in range(k)]


def _to_bytes(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _from_bytes(data: bytes) -> Any:
    return torch.load(io.BytesIO(data), weights_only=False)  # written by this module, in this run


_report: Callable[[int], None] | None = None  # where report() sends progress in this process


def report(n: int = 1) -> None:
    """Count ``n`` units of work done towards the progress bar of :func:`run_jobs` (if any)."""
    if _report is not None:
        _report(n)


def die_with_parent(sig: int | None = None) -> None:
    """Ask Linux to send this process ``sig`` (default SIGTERM) when its parent exits (a killed
    notebook kernel, say), so that worker processes never outlive the run that started them. A
    no-op elsewhere."""
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM if sig is None else sig)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent is already gone (died before the request took effect)
        os._exit(1)


def _init_worker(threads: int, progress: mp.Queue) -> None:
    global _report
    die_with_parent()
    torch.set_num_threads(threads)
    _report = progress.put


def _call_packed(fn: Callable, packed: bytes) -> bytes:
    return _to_bytes(fn(*_from_bytes(packed)))


def _drain(q: mp.Queue, bar) -> None:
    while True:
        try:
            bar.update(q.get_nowait())
        except queue.Empty:
            return


def _call_on_dask_worker(fn: Callable, packed: bytes) -> bytes:
    """A job on a Dask worker: as many torch threads as the worker has, arguments and result as bytes."""
    from distributed import get_worker

    torch.set_num_threads(max(1, int(get_worker().state.nthreads)))
    return _to_bytes(fn(*_from_bytes(packed)))


def _run_dask(fn: Callable, jobs: Sequence[tuple], scheduler: str, desc: str, bar, units: Sequence[int] | None) -> list:
    """The jobs as tasks on the Dask cluster at ``scheduler``; results in job order."""
    import uuid

    from distributed import as_completed

    tag = uuid.uuid4().hex[:8]
    with _client(scheduler) as client:
        futures = [
            client.submit(
                _call_on_dask_worker,
                fn,
                _to_bytes(tuple(job)),
                key=f"{desc.replace(' ', '-')}-{tag}-{k}",
                pure=False,
                retries=2,  # a lost worker's task runs again elsewhere; its result is kept once
                priority=len(jobs) - k,  # the longest (first) jobs first
            )
            for k, job in enumerate(jobs)
        ]
        index = {f.key: k for k, f in enumerate(futures)}
        results: list = [None] * len(jobs)
        try:
            for f in as_completed(futures):
                k = index[f.key]
                results[k] = _from_bytes(f.result())  # a job's exception is raised here
                bar.update(units[k] if units is not None else 1)
        except BaseException:
            client.cancel(futures)
            raise
        return results


def run_jobs(
    fn: Callable,
    jobs: Sequence[tuple],
    workers: int = 1,
    total: int | None = None,
    desc: str = "jobs",
    progress: bool | None = None,
    unit: str = "it",
    scheduler: str = "",
    units: Sequence[int] | None = None,
) -> list:
    """``[fn(*job) for job in jobs]``, here (``workers <= 1``), in ``workers`` processes, or as tasks
    on the Dask cluster at ``scheduler``.

    ``fn`` must be importable by name (a module-level function of this package). Jobs are handed
    out in the given order to whichever worker is free, so list the longest first; a job's
    arguments are packed only when it is handed out, and its result unpacked as soon as it is
    back. ``total``: the units of work that the jobs :func:`report`, for a progress bar (on a Dask
    cluster, where reports do not come back, the bar advances by ``units[k]`` when job ``k`` is
    back, or by one per job). A job's exception is raised here, after the other workers have been
    stopped (on Dask: the other tasks cancelled).
    """
    global _report
    workers = check_int("workers", workers, 1)
    if units is not None and len(units) != len(jobs):
        raise ValueError(f"units must give one count per job ({len(jobs)}); got {len(units)}")
    if check_scheduler("scheduler", scheduler):  # its form, and that it answers, before any job
        bar = progress_bar(
            total=total if units is not None else len(jobs), desc=desc, enabled=progress, unit=unit if units else "job"
        )
        try:
            return _run_dask(fn, jobs, scheduler, desc, bar, units)
        finally:
            bar.close()
    bar = progress_bar(total=total, desc=desc, enabled=progress, unit=unit)
    try:
        if workers == 1 or len(jobs) <= 1:
            previous, _report = _report, bar.update
            try:
                return [fn(*job) for job in jobs]
            finally:
                _report = previous
        workers = min(workers, len(jobs))
        threads = max(1, usable_cores() // workers)
        ctx = mp.get_context("spawn")  # a fresh interpreter: no threads or locks inherited from this one
        done = ctx.Queue()
        pool = cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(threads, done))
        finished = False
        results: list = [None] * len(jobs)
        todo = list(range(len(jobs)))[::-1]  # the next job is todo[-1]
        running: dict = {}  # future -> job index; at most one job per worker is packed and in flight

        def submit_next() -> None:
            k = todo.pop()
            running[pool.submit(_call_packed, fn, _to_bytes(tuple(jobs[k])))] = k

        try:
            for _ in range(workers):
                submit_next()
            while running:
                ended, _ = cf.wait(running, timeout=0.2, return_when=cf.FIRST_COMPLETED)
                for f in ended:
                    results[running.pop(f)] = _from_bytes(f.result())  # a job's exception is raised here
                    if todo:
                        submit_next()
                _drain(done, bar)
            _drain(done, bar)
            finished = True
            return results
        except cf.process.BrokenProcessPool as exc:
            raise RuntimeError(
                f"{desc}: a worker process died (out of memory?); rerun with workers=1 to run the jobs in this process"
            ) from exc
        finally:
            if not finished:  # an error or an interrupt: stop the other jobs instead of waiting for them
                for proc in list((getattr(pool, "_processes", None) or {}).values()):
                    proc.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
    finally:
        bar.close()


class threads:
    """Torch on ``n`` threads inside the block, on as many as before after it."""

    def __init__(self, n: int):
        self.n = check_int("threads", n, 1)

    def __enter__(self) -> None:
        self.previous = torch.get_num_threads()
        torch.set_num_threads(self.n)

    def __exit__(self, *exc) -> None:
        torch.set_num_threads(self.previous)


def share(workers: int) -> int:
    """Torch threads of one of ``workers`` jobs side by side: ``cores // workers``, at least 1."""
    return max(1, usable_cores() // check_int("workers", workers, 1))


def on_share(workers: int, device: str = "cpu") -> contextlib.AbstractContextManager:
    """A block on one of ``workers`` shares of the cores: torch on :func:`share` threads when
    ``workers`` (resolved by :func:`resolve_workers`: 0 = one per core) is above 1, else on as
    many threads as it has (every core, or one inside a worker process)."""
    w = resolve_workers(workers, device)
    return threads(share(w)) if w > 1 else contextlib.nullcontext()


def run_phases(
    fn: Callable, jobs: Sequence[tuple], workers: int, desc: str = "training phases", progress: bool | None = None
) -> list:
    """``[fn(*job) for job in jobs]`` for independent training phases, each on one share of the cores.

    With ``workers > 1`` every job runs on ``cores // workers`` torch threads (one on a two-core
    machine): side by side in ``min(workers, len(jobs))`` worker processes (:func:`run_jobs`), or,
    a lone job, here. A step on one thread keeps its speed when another process runs on the other
    core, where a step on two threads waits for the busy core at every synchronisation and can
    take ten times as long; and two one-thread processes side by side do more work than one
    two-thread process. With ``workers=1`` the jobs run here one after the other on every core.

    Unlike :func:`run_ensembles`, nothing is split: each job is a whole ensemble as a run in one
    process trains it. (On the CPU a replica's sums do not depend on which replicas share its
    ensemble, :func:`pruneplast.kernels.compact.ragged_linear`; chapter 3's lone consolidation run
    splits its replicas itself, :func:`pruneplast.protocols.consolidation.duration_curve`.) Study
    A's phases give the same bits on one thread as on two (``tests/protocols`` checks them against
    one-thread workers; the regrowth selectivity's sums, whose order followed the thread count, are
    exact for that), so the results equal a one-process run's bit for bit. ``fn`` reports one unit
    per job (:func:`report`) for the progress bar.
    """
    workers = check_int("workers", workers, 1)
    if workers == 1:
        return run_jobs(fn, jobs, 1, total=len(jobs), desc=desc, progress=progress, unit="phase")
    if len(jobs) <= 1:
        with on_share(workers):
            return run_jobs(fn, jobs, 1, total=len(jobs), desc=desc, progress=progress, unit="phase")
    return run_jobs(fn, jobs, workers, total=len(jobs), desc=desc, progress=progress, unit="phase")


def splits_well(net: EnsembleMLP, noisy: bool) -> bool:
    """Whether an ensemble's training goes faster split between worker processes.

    A step of a mostly kept network (the ketamine-like networks, 47.5% sparse) is dominated by
    dense products, a step with internal noise by drawing the noise, one replica after another on
    one thread, and a 95%-sparse step on the compiled step (:mod:`pruneplast.kernels.fused`) by
    each replica's own pass through its kept weights (ten replicas 0.93 ms a step, five 0.42 ms,
    on one thread of an AMD EPYC): each shrinks with the replicas a process holds. A 95%-sparse
    step without noise on the standard path (no compiler: CSR products) is mostly fixed per-step
    work, which does not, so such an ensemble stays whole. Split or whole, a replica trains to the
    same bits (its products, optimiser and streams are its own).
    """
    if noisy or float(1.0 - net.weight_sparsity().mean()) >= SPARSE_BELOW:
        return True
    return len(fused.replicas(net.weights, net.masks, compact=True)) == net.n_replicas


#: A training step of replicas that compute tanh (the neurosteroid-like drug on) against one of
#: ReLU replicas with the same kept weights: chapter 6's 300-epoch maintenance of ten 95%-sparse
#: replicas took 75 s with tanh and 36 s with ReLU (paper scale, one thread of an AMD EPYC).
TANH_COST = 2.0


def part_cost(net: EnsembleMLP, epochs: int, replicas: int) -> float:
    """The expected time of training ``replicas`` of ``net`` for ``epochs``, in arbitrary units, to
    hand out the longest part first: epochs x replicas x the kept weights of the ensemble's
    largest layer, x :data:`TANH_COST` where its replicas compute tanh."""
    cost = epochs * replicas * float(net.kept_per_layer().sum(1).max())
    return cost * (TANH_COST if bool(net.tanh.any()) else 1.0)


def run_ensembles(
    jobs: Sequence[tuple[EnsembleMLP, EnsembleData, bool, Callable[..., tuple]]],
    fn: Callable,
    workers: int,
    desc: str,
    epochs: Sequence[int],
    progress: bool | None = None,
    scheduler: str = "",
) -> list[list]:
    """``fn(net, data, *args(index))`` for every job's ensemble, split where :func:`splits_well` holds.

    jobs: (ensemble, its data, noisy (trains with internal noise), args(index) -> the arguments
    after (net, data) for the replicas at ``index``); ``epochs``: each job's training epochs. An
    ensemble that splits well runs as one contiguous part of its replicas per worker, any other
    whole. Returns, per job, the results of its parts in replica order. Parts are handed out
    largest first (:func:`part_cost`, a proxy for their time) to whichever worker is free;
    ``fn`` reports one unit per replica and epoch for the progress bar. ``scheduler``: a Dask
    scheduler's address to send the parts to (:func:`run_jobs`).
    """
    calls, owner, cost = [], [], []
    for j, ((net, data, noisy, args), ep) in enumerate(zip(jobs, epochs)):
        m = net.n_replicas
        for idx in parts(m, workers if splits_well(net, noisy) else 1):
            whole = len(idx) == m
            calls.append((net if whole else net.select(idx), data if whole else data.select(idx), *args(idx)))
            owner.append(j)
            cost.append(part_cost(net, ep, len(idx)))
    order = sorted(range(len(calls)), key=lambda k: -cost[k])
    units = [epochs[owner[k]] * len(calls[k][0].meta) for k in order]
    done = run_jobs(
        fn,
        [calls[k] for k in order],
        workers,
        total=sum(units),
        desc=desc,
        progress=progress,
        unit="replica-epoch",
        scheduler=scheduler,
        units=units,
    )
    results = dict(zip(order, done))
    return [[results[k] for k in range(len(calls)) if owner[k] == j] for j in range(len(jobs))]
