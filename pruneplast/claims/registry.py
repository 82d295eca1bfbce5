"""The claims' registry and the helpers every claim uses.

Each claim id of ``paper_results.yaml`` (see :mod:`pruneplast.paper`) that a chapter covers has a
function in :mod:`.study_a` or :mod:`.study_b`, registered with ``@claim(claim_id, notebook=...)``.
It receives the chapter's tidy results (``results/<profile>/<notebook>.csv`` as a DataFrame) and
returns a dict made by :func:`result`: ``tests`` (one or more rule results of
:mod:`pruneplast.verdicts`, by the kind of the published value), the claim's ``verdict`` (the
least favourable of its tests), ``mean`` and ``n`` (replicate seeds), ``ours`` (display text) and
a short ``note``. :mod:`pruneplast.scorecard` turns the registry into the book's table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from .. import paper
from ..results import fmt_number
from ..verdicts import single_replicate, worst

STUDY_B_SEEDS = 10  # study B's replicates (paper_results.yaml: study_B.replicates)


@dataclass(frozen=True)
class Claim:
    id: str
    notebook: str
    func: Callable[[pd.DataFrame], dict]


CLAIMS: dict[str, Claim] = {}


def claim(claim_id: str, notebook: str):
    """Register ``func(results: DataFrame) -> dict`` as the check of ``claim_id`` on ``notebook``'s results."""

    def deco(func):
        paper.claim(claim_id)  # KeyError for an id the paper does not have
        if claim_id in CLAIMS:
            raise ValueError(f"claim {claim_id!r} is registered twice")
        CLAIMS[claim_id] = Claim(claim_id, notebook, func)
        return func

    return deco


def evaluate(claim_id: str, df: pd.DataFrame) -> dict:
    """Run one registered claim on a results DataFrame."""
    return CLAIMS[claim_id].func(df)


# --------------------------------------------------------------------------- selecting rows
def select(df: pd.DataFrame, **where) -> pd.DataFrame:
    """Rows matching every ``column=value``; a missing column or no match raises ValueError."""
    out = df
    for col, val in where.items():
        if col not in out.columns:
            raise ValueError(f"results have no column {col!r} (columns: {list(df.columns)})")
        out = out[np.isclose(out[col].astype(float), val)] if isinstance(val, float) else out[out[col] == val]
    if out.empty:
        raise ValueError(f"results hold no rows with {where}")
    return out


def per_seed(df: pd.DataFrame, **where) -> pd.Series:
    """One value per replicate seed (the mean if a seed has several rows)."""
    return select(df, **where).groupby("seed")["value"].mean()


def like_with_like(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Study A's rows on its own data set when the results hold them, and a note saying which."""
    if "data_sets" in df.columns and df["data_sets"].notna().any():
        have = set(df["data_sets"].dropna())
        use = "shared" if "shared" in have else sorted(have)[0]
        keep = df["data_sets"].isna() | (df["data_sets"] == use)
        return df[keep], ("study A's data set" if use == "shared" else "per-replicate data sets (not study A's)")
    return df, "per-replicate data sets (not study A's)"


def relapse_outcomes(df: pd.DataFrame, treatment: str) -> np.ndarray:
    """Seeds x maintenance durations of 0/1 relapse outcomes (main relapse experiment)."""
    sel = select(df, experiment="relapse", treatment=treatment, metric="relapse")
    if "sweep" in sel.columns:
        sel = sel[sel["sweep"].isna()]
    wide = sel.pivot_table(index="seed", columns="duration", values="value", aggfunc="first")
    return (wide.to_numpy() / 100.0).round()


# --------------------------------------------------------------------------- a claim's result
def result(tests: list[dict], ours: str, note: str, mean: float, n: int) -> dict:
    """A claim's result: its tests, the least favourable of their verdicts, our value as text, a note."""
    return {
        "tests": tests,
        "verdict": worst(*(t["verdict"] for t in tests)),
        "ours": ours,
        "note": note,
        "mean": float(mean),
        "n": int(n),
    }


def single(values: pd.Series, study: float, kind: str = "accuracy") -> dict:
    """A study's single replicate against the prediction interval of a new replicate of ours
    (:func:`pruneplast.verdicts.single_replicate`), from one value per seed."""
    return single_replicate(study, values.to_numpy(), kind)


def pi_text(t: dict) -> str:
    """``mean (PI low to high)`` of a :func:`single` test."""
    return f"{fmt_number(t['mean'])} (PI {fmt_number(t['low'])} to {fmt_number(t['high'])})"
