"""The precomputed grid of knob settings shown by the static book."""

from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import dataclass
from typing import Callable

import pandas as pd

from .. import arms
from ..arms import STUDY_ARMS
from ..config import (
    check_choice,
    check_distinct,
    check_fractions,
)
from .drawing import figure, png
from .engine import Explorer
from .knobs import Knobs


# --------------------------------------------------------------------------- the precomputed grid
@dataclass(frozen=True)
class GridSpec:
    """The knob values precomputed for the static book (every combination), other knobs fixed."""

    sparsities: tuple[float, ...] = (0.9, 0.95, 0.97)  # pruning levels
    regrow_fractions: tuple[float, ...] = (0.0, 0.25, 0.5)  # regrowth fractions
    treatments: tuple[str, ...] = STUDY_ARMS  # treatment arms (the studies')
    base: Knobs = Knobs()  # the remaining knobs

    def __post_init__(self) -> None:
        object.__setattr__(self, "sparsities", check_fractions("grid sparsities", self.sparsities, 0.0, 0.99))
        object.__setattr__(
            self, "regrow_fractions", check_fractions("grid regrow_fractions", self.regrow_fractions, 0.0, 1.0)
        )
        if isinstance(self.treatments, str) or not self.treatments:
            raise ValueError(
                f"grid treatments must be a non-empty list of {list(arms.names())}; got {self.treatments!r}"
            )
        object.__setattr__(
            self, "treatments", tuple(check_choice("grid treatments", t, arms.names()) for t in self.treatments)
        )
        for name in ("sparsities", "regrow_fractions", "treatments"):
            check_distinct(f"grid {name}", getattr(self, name))
        if not isinstance(self.base, Knobs):
            raise ValueError(f"grid base must be a Knobs; got {type(self.base).__name__}")

    @property
    def axes(self) -> tuple[tuple, ...]:
        return (self.sparsities, self.regrow_fractions, self.treatments)

    def __len__(self) -> int:
        return len(self.sparsities) * len(self.regrow_fractions) * len(self.treatments)

    def points(self) -> list[tuple[tuple[int, int, int], Knobs]]:
        """((i, j, k), knobs) for every grid point, sparsity slowest, treatment fastest."""
        out = []
        for (i, s), (j, f), (k, t) in itertools.product(*(list(enumerate(a)) for a in self.axes)):
            out.append(((i, j, k), dataclasses.replace(self.base, sparsity=s, regrow_fraction=f, treatment=t)))
        return out


@dataclass
class Grid:
    """Precomputed grid points: tidy ``table`` (grid indices added), PNG ``images`` and ``captions``."""

    spec: GridSpec
    table: pd.DataFrame
    images: dict  # (i, j, k) -> PNG bytes
    captions: dict  # (i, j, k) -> HTML: the setting and its key numbers
    seconds: float

    @property
    def nbytes(self) -> int:
        """Bytes of the rendered figures (what the grid adds to a page, before base64)."""
        return sum(len(b) for b in self.images.values())


def precompute_grid(
    explorer: Explorer,
    spec: GridSpec = GridSpec(),
    dpi: int = 80,
    on_point: Callable[[int, int, Knobs], None] | None = None,
) -> Grid:
    """Compute and draw every point of ``spec``; ``on_point(done, total, knobs)`` after each."""
    t0 = time.perf_counter()
    frames, images, captions = [], {}, {}
    pts = spec.points()
    for n, (idx, knobs) in enumerate(pts, 1):
        res = explorer.compute(knobs)
        frames.append(
            res.table.assign(sparsity=knobs.sparsity, regrow_fraction=knobs.regrow_fraction, treatment=knobs.treatment)
        )
        images[idx] = png(figure(res, dpi=dpi), dpi=dpi)
        captions[idx] = f"<b>{knobs.describe()}</b><br>{res.headline()}"
        if on_point is not None:
            on_point(n, len(pts), knobs)
    table = pd.concat(frames, ignore_index=True)
    return Grid(spec, table, images, captions, time.perf_counter() - t0)


def grid_results(grid: Grid) -> pd.DataFrame:
    """The grid's explored-stage measurements as tidy results (experiment, condition, seed, metric, value)."""
    t = grid.table[grid.table.stage == "explored"].copy()
    t["experiment"] = "explorer_" + t["experiment"]
    return t.drop(columns=["stage"])
