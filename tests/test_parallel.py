"""Jobs in worker processes: the same results, in job order, as running them here; errors surface."""

from __future__ import annotations

import math

import pytest
import torch

from pruneplast import parallel


@pytest.mark.slow
def test_jobs_in_processes_return_what_they_return_here_in_job_order():
    jobs = [(torch.arange(n, dtype=torch.float64),) for n in (5, 1, 3)]
    here = parallel.run_jobs(torch.sum, jobs, workers=1)
    there = parallel.run_jobs(torch.sum, jobs, workers=2)
    assert [float(t) for t in here] == [float(t) for t in there] == [10.0, 0.0, 3.0]


@pytest.mark.slow
def test_a_jobs_error_is_raised_in_the_caller():
    with pytest.raises(ValueError, match="math domain error"):
        parallel.run_jobs(math.sqrt, [(4.0,), (-1.0,)], workers=2)
    with pytest.raises(ValueError, match="math domain error"):
        parallel.run_jobs(math.sqrt, [(4.0,), (-1.0,)], workers=1)


def test_workers_are_checked_and_resolved():
    with pytest.raises(ValueError, match=r"workers must be an integer >= 0"):
        parallel.resolve_workers(-1)
    with pytest.raises(ValueError, match="workers must be an integer"):
        parallel.resolve_workers(1.5)
    assert parallel.resolve_workers(0) == parallel.usable_cores() >= 1
    assert parallel.resolve_workers(3) == 3
    with pytest.raises(ValueError, match=r"workers must be an integer >= 1"):
        parallel.run_jobs(math.sqrt, [(1.0,)], workers=0)


def test_reports_reach_the_progress_count_here():
    seen = []
    previous = parallel._report
    parallel._report = seen.append
    try:
        parallel.report(3)
    finally:
        parallel._report = previous
    assert seen == [3]
    parallel.report(1)  # no bar: nothing happens


def test_parts_are_contiguous_nearly_equal_and_cover_every_index():
    assert parallel.parts(10, 2) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert parallel.parts(5, 2) == [[0, 1], [2, 3, 4]]
    assert parallel.parts(2, 4) == [[0], [1]]
    assert parallel.parts(3, 1) == [[0, 1, 2]]
    with pytest.raises(ValueError, match="workers"):
        parallel.parts(3, 0)


# --------------------------------------------------------------------------- on a Dask cluster
@pytest.mark.slow
def test_jobs_on_a_dask_cluster_come_back_in_job_order(dask_scheduler):
    jobs = [(torch.arange(n, dtype=torch.float64),) for n in (5, 1, 3)]
    there = parallel.run_jobs(torch.sum, jobs, workers=1, scheduler=dask_scheduler)
    assert [float(t) for t in there] == [10.0, 0.0, 3.0]
    # the workers' threads decide the split of an ensemble when workers=0
    assert parallel.resolve_workers(0, "cpu", dask_scheduler) == 2
    assert parallel.resolve_workers(3, "cpu", dask_scheduler) == 3


@pytest.mark.slow
def test_a_jobs_error_on_a_dask_cluster_is_raised_in_the_caller(dask_scheduler):
    with pytest.raises(ValueError, match="math domain error"):
        parallel.run_jobs(math.sqrt, [(4.0,), (-1.0,)], workers=1, scheduler=dask_scheduler)


def test_a_bad_scheduler_address_is_refused_before_any_work():
    with pytest.raises(ValueError, match=r"scheduler must be '' or a Dask scheduler address 'tcp://host:port'"):
        parallel.run_jobs(math.sqrt, [(4.0,)], scheduler="localhost:8786")
    with pytest.raises(ValueError, match="units must give one count per job"):
        parallel.run_jobs(math.sqrt, [(4.0,)], units=[1, 2])


def test_an_unreachable_scheduler_is_a_clear_error():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RuntimeError, match="could not reach the Dask scheduler"):
        parallel.run_jobs(math.sqrt, [(4.0,)], scheduler=f"tcp://127.0.0.1:{port}")


def test_phases_run_on_one_share_of_the_cores():
    """A lone phase runs here on cores // workers threads, workers=1 on the threads this process
    has; the thread count is restored after, also when the phase fails."""
    with parallel.threads(2):
        assert parallel.run_phases(torch.get_num_threads, [()], workers=1) == [2]
        assert parallel.run_phases(torch.get_num_threads, [()], workers=2) == [parallel.share(2)]
        assert parallel.share(2) == max(1, parallel.usable_cores() // 2)
        with parallel.on_share(0):
            assert torch.get_num_threads() == parallel.share(parallel.resolve_workers(0))
        with parallel.on_share(1):
            assert torch.get_num_threads() == 2
        with pytest.raises(ValueError, match="math domain"):
            parallel.run_phases(math.sqrt, [(-1.0,)], workers=2)
        assert torch.get_num_threads() == 2
    with pytest.raises(ValueError, match=r"workers must be an integer >= 1"):
        parallel.run_phases(abs, [(1,)], workers=0)
    with pytest.raises(ValueError, match=r"threads must be an integer >= 1"):
        parallel.threads(0)


@pytest.mark.slow
def test_phases_side_by_side_run_on_one_share_each():
    assert parallel.run_phases(torch.get_num_threads, [(), ()], workers=2) == [parallel.share(2)] * 2


def test_parts_cost_their_epochs_replicas_kept_weights_and_activation():
    """Parts are handed out longest first: a tanh ensemble (chapter 6's neurosteroid-like
    maintenance) ahead of a ReLU one with the same kept weights, which it outlasts about twice."""
    from pruneplast.network import EnsembleMLP
    from pruneplast.operators import prune

    net = prune(EnsembleMLP.init([0, 1, 2, 3]), 0.95)
    relu = parallel.part_cost(net, 10, 4)
    assert relu == 10 * 4 * float(net.kept_per_layer().sum(1).max()) > 0
    assert parallel.part_cost(net, 20, 2) == relu
    net.set_modulation(activation="tanh")
    assert parallel.part_cost(net, 10, 4) == parallel.TANH_COST * relu > relu
