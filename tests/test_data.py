"""The four-class task is bit-identical to the numpy RandomState recipe (methods section 1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pruneplast.config import TaskConfig
from pruneplast.data import EnsembleData

CENTRES = np.array([[-3.0, -3.0], [3.0, 3.0], [-3.0, 3.0], [3.0, -3.0]])  # labels 0..3


def recipe(seed: int, n: int, sigma: float):
    """The studies' generator, restated: labels first, then noise, from one RandomState."""
    rs = np.random.RandomState(seed)
    labels = rs.randint(0, 4, n)
    points = CENTRES[labels] + rs.randn(n, 2) * sigma
    return points.astype(np.float32), labels


@pytest.mark.parametrize("seeds", [[0], [3, 1]])
def test_sets_are_bit_identical_to_the_recipe(seeds):
    task = TaskConfig(n_train=3000, n_standard=1500, n_clean=500)
    data = EnsembleData.build(seeds, task)
    assert data.seeds == tuple(seeds)
    for m, s in enumerate(seeds):
        for split, offset, n, sigma in [
            ("train", 100, 3000, 0.8),
            ("standard", 200, 1500, 0.8),
            ("clean", 300, 500, 0.0),
        ]:
            x_ref, y_ref = recipe(s * 1000 + offset, n, sigma)
            x, y = data.x[split][m].numpy(), data.y[split][m].numpy()
            assert x.dtype == np.float32 and x.shape == (n, 2)
            assert np.array_equal(y, y_ref), (s, split)
            assert np.array_equal(x.view(np.uint32), x_ref.view(np.uint32)), (s, split)


def test_full_size_train_set_matches_recipe():
    data = EnsembleData.build([2])
    x_ref, y_ref = recipe(2100, 12_000, 0.8)
    assert data.x["train"].shape == (1, 12_000, 2)
    assert data.x["standard"].shape == (1, 4_000, 2)
    assert data.x["clean"].shape == (1, 2_000, 2)
    assert np.array_equal(data.x["train"][0].numpy(), x_ref)
    assert np.array_equal(data.y["train"][0].numpy(), y_ref)


def test_labels_drawn_before_noise():
    # The same seed with noise drawn first would give different labels: guard the order.
    rs = np.random.RandomState(100)
    rs.randn(50, 2)
    wrong = rs.randint(0, 4, 50)
    data = EnsembleData.build([0], TaskConfig(n_train=50, n_standard=10, n_clean=10))
    assert not np.array_equal(data.y["train"][0].numpy(), wrong)


def test_clean_set_is_exactly_the_centres():
    data = EnsembleData.build([0, 1], TaskConfig(n_clean=2000))
    for m in range(2):
        x, y = data.x["clean"][m].numpy(), data.y["clean"][m].numpy()
        assert np.array_equal(x, CENTRES[y].astype(np.float32))
        assert set(np.unique(y)) == {0, 1, 2, 3}


def test_replicas_see_their_own_data_and_repeats_share_it():
    task = TaskConfig(n_train=200, n_standard=100, n_clean=50)
    a = EnsembleData.build([0, 1], task)
    b = EnsembleData.for_replicas([1, 0, 1], task)
    assert b.seeds == (1, 0, 1)
    assert not np.array_equal(a.x["train"][0].numpy(), a.x["train"][1].numpy())
    for split in a.x:
        assert np.array_equal(b.x[split][0].numpy(), a.x[split][1].numpy())
        assert np.array_equal(b.x[split][1].numpy(), a.x[split][0].numpy())
        assert np.array_equal(b.x[split][2].numpy(), a.x[split][1].numpy())
        assert np.array_equal(b.y[split][2].numpy(), a.y[split][1].numpy())


def test_shared_data_sets_are_study_a_s_one_data_set():
    small = dict(n_train=64, n_standard=32, n_clean=8)
    shared = EnsembleData.build([0, 3, 7], TaskConfig(data_sets="shared", **small))
    per = EnsembleData.build([0, 3], TaskConfig(**small))
    for split in ("train", "standard", "clean"):
        x, y = shared.x[split], shared.y[split]
        assert torch.equal(x[0], x[1]) and torch.equal(x[0], x[2]) and torch.equal(y[0], y[2])
        assert torch.equal(x[0], per.x[split][0])  # replicate 0's own data is study A's data set
        assert not torch.equal(per.x[split][0], per.x[split][1]) or split == "clean"
    from pruneplast.data import data_seed

    assert [data_seed(5, s, "shared") for s in ("train", "standard", "clean")] == [100, 200, 300]
    assert [data_seed(5, s) for s in ("train", "standard", "clean")] == [5100, 5200, 5300]


def test_data_sets_scheme_is_validated():
    with pytest.raises(ValueError, match="data_sets='study_a' must be one of 'shared', 'per_replicate'"):
        TaskConfig(data_sets="study_a")
