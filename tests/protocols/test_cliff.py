"""The pruning cliff (study A): its data-set schemes in worker processes equal one process, bit for bit."""

from __future__ import annotations

import pandas as pd
import pytest

from pruneplast import parallel
from pruneplast.config import NetworkConfig, PruneConfig, RunConfig, TaskConfig, TrainConfig
from pruneplast.protocols import cliff

#: The book's network on a task of two training steps: products large enough to use two threads.
SIZES = {"n_train": 256, "n_standard": 200, "n_clean": 100}
TASK = TaskConfig(**SIZES)


def _experiments(workers: int) -> dict:
    runs = {s: RunConfig(seeds=(0,), task=TaskConfig(**SIZES, data_sets=s)) for s in ("shared", "per_replicate")}
    return cliff.experiments(
        runs,
        TrainConfig(epochs=1, lr=1e-3),
        NetworkConfig(),
        PruneConfig(sparsity=0.95),
        consolidation=TrainConfig(epochs=1, lr=5e-4),
        levels=(0.0, 0.95),
        workers=workers,
    )


@pytest.mark.slow
def test_schemes_in_worker_processes_equal_one_process_on_two_threads(tmp_path, monkeypatch):
    """Each scheme (baseline, main experiment, sweep) in a one-thread worker process gives the
    rows, bit for bit, of the schemes one after the other in this process on two threads."""
    monkeypatch.setenv("PRUNEPLAST_CACHE", str(tmp_path / "here"))
    with parallel.threads(2):
        here = _experiments(workers=1)
    monkeypatch.setenv("PRUNEPLAST_CACHE", str(tmp_path / "side"))  # the workers train afresh
    side = _experiments(workers=2)
    assert list(here) == list(side) == ["shared", "per_replicate"]
    for scheme in here:
        for a, b in zip(here[scheme], side[scheme]):
            pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert len(list((tmp_path / "side").rglob("*.pt"))) == 2  # one seed x two schemes, trained there


def test_a_bad_level_fails_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNEPLAST_CACHE", str(tmp_path))
    with pytest.raises(ValueError, match="levels"):
        cliff.experiments({"shared": RunConfig(seeds=(0,), task=TASK)}, levels=(0.5, 1.5), workers=2)
    assert not list(tmp_path.rglob("*.pt"))
