"""The four-class Gaussian task (Methods section 1).

Every data set comes from its own ``numpy.random.RandomState``: labels first
(``randint(0, 4, n)``), then noise (``randn(n, 2) * sigma``); the arrays are bit-identical to that
recipe. Under the task's ``data_sets='per_replicate'`` (study B's scheme) replicate ``s`` draws its
train / standard / clean sets from the seeds ``s*1000+100``, ``s*1000+200`` and ``s*1000+300``;
under ``'shared'`` (study A's) every replicate uses the seeds 100, 200 and 300.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .config import DATA_SETS, TaskConfig, check_seeds

SPLITS = ("train", "standard", "clean")
SPLIT_OFFSETS = {"train": 100, "standard": 200, "clean": 300}


def class_centres(task: TaskConfig = TaskConfig()) -> np.ndarray:
    """Centres of labels 0..3: (-c,-c), (c,c), (-c,c), (c,-c); shape (4, 2)."""
    c = task.centre
    return np.array([[-c, -c], [c, c], [-c, c], [c, -c]], dtype=np.float64)


def make_blobs(data_seed: int, n: int, sigma: float, task: TaskConfig = TaskConfig()):
    """One data set: (X (n, 2) float32, y (n,) int64), from its own RandomState."""
    rs = np.random.RandomState(data_seed)
    y = rs.randint(0, 4, n)
    x = class_centres(task)[y] + rs.randn(n, 2) * sigma
    return x.astype(np.float32), y.astype(np.int64)


def data_seed(replicate: int, split: str, data_sets: str = "per_replicate") -> int:
    """The RandomState seed of a replicate's split under a data-set scheme (see ``DATA_SETS``)."""
    if data_sets not in DATA_SETS:
        raise ValueError(f"data_sets={data_sets!r} must be one of " + ", ".join(map(repr, DATA_SETS)))
    return SPLIT_OFFSETS[split] if data_sets == "shared" else replicate * 1000 + SPLIT_OFFSETS[split]


def replicate_sets(replicate: int, task: TaskConfig = TaskConfig()) -> dict:
    """{'train': (X, y), 'standard': (X, y), 'clean': (X, y)} as numpy arrays."""
    sizes = {"train": task.n_train, "standard": task.n_standard, "clean": task.n_clean}
    sigmas = {"train": task.sigma, "standard": task.sigma, "clean": 0.0}
    return {s: make_blobs(data_seed(replicate, s, task.data_sets), sizes[s], sigmas[s], task) for s in SPLITS}


@dataclass
class EnsembleData:
    """Every replica's data sets stacked along a leading replica axis.

    ``x[split]`` is (M, N, 2) float32 and ``y[split]`` is (M, N) int64; replica ``m`` holds the
    data of replicate seed ``seeds[m]``.
    """

    seeds: tuple[int, ...]
    x: dict
    y: dict

    @classmethod
    def build(cls, seeds, task: TaskConfig = TaskConfig(), device="cpu") -> EnsembleData:
        seeds = check_seeds("seeds", seeds)
        cache: dict[int, dict] = {}
        for s in set(seeds):
            cache[s] = replicate_sets(s, task)
        x = {sp: torch.from_numpy(np.stack([cache[s][sp][0] for s in seeds])).to(device) for sp in SPLITS}
        y = {sp: torch.from_numpy(np.stack([cache[s][sp][1] for s in seeds])).to(device) for sp in SPLITS}
        return cls(tuple(seeds), x, y)

    @classmethod
    def for_replicas(cls, seeds, task: TaskConfig = TaskConfig(), device="cpu") -> EnsembleData:
        """Like :meth:`build`, but a seed may appear several times (one replica per condition)."""
        seeds = tuple(int(s) for s in seeds)
        uniq = check_seeds("seeds", sorted(set(seeds)))
        base = cls.build(uniq, task, device)
        return base.select([uniq.index(s) for s in seeds])

    def select(self, index) -> EnsembleData:
        idx = torch.as_tensor(list(index), dtype=torch.long)
        dev = self.x["train"].device
        return EnsembleData(
            tuple(self.seeds[i] for i in idx.tolist()),
            {k: v[idx.to(dev)] for k, v in self.x.items()},
            {k: v[idx.to(dev)] for k, v in self.y.items()},
        )

    @property
    def n_replicas(self) -> int:
        return len(self.seeds)
