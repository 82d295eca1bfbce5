"""The reproduction scorecard: every claim of the studies, the paper's number, ours, a verdict.

Each claim id of ``paper_results.yaml`` (see :mod:`pruneplast.paper`) that a chapter covers has a
function here, registered with ``@claim(claim_id, notebook=...)``. It receives the chapter's tidy
results (``results/<profile>/<notebook>.csv`` as a DataFrame) and returns a dict with ``mean``,
``ci_low``, ``ci_high``, ``n`` (replicate seeds), ``verdict`` and a short ``note``; it may add
``ours`` (a display string) when the claim has more than one number.

Default rule for a single value (:func:`verdict_single`), in percentage points of accuracy or
sparsity: **reproduced** if the paper's value lies inside our 95% CI or within 2 points of our
mean; **partly** if within 10 points of our mean; else **not reproduced**. Qualitative or
multi-number claims state their own rule in their docstring. A claim whose notebook has no results
yet, or that no function covers, is listed as **not yet covered**.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from . import paper
from .results import load_results, t_ci

REPRODUCED, PARTLY, NOT_REPRODUCED, NOT_COVERED = "reproduced", "partly", "not reproduced", "not yet covered"
VERDICT_ORDER = (REPRODUCED, PARTLY, NOT_REPRODUCED)
CLOSE, NEAR = 2.0, 10.0  # points: "within 2" reproduces, "within 10" partly


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


# --------------------------------------------------------------------------- helpers
def stats(values) -> dict:
    """Mean, 95% Student-t CI and n of per-replicate values (CI nan for n < 2)."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        raise ValueError("no values to summarise: the results hold no rows for this claim")
    lo, hi = t_ci(v)
    return {"mean": float(v.mean()), "ci_low": float(lo), "ci_high": float(hi), "n": int(len(v))}


def verdict_single(paper_value: float, mean: float, ci_low: float = math.nan, ci_high: float = math.nan) -> str:
    """The default rule (module docstring): CI or 2 points -> reproduced; 10 points -> partly."""
    inside = not math.isnan(ci_low) and ci_low <= paper_value <= ci_high
    gap = abs(paper_value - mean)
    if inside or gap <= CLOSE:
        return REPRODUCED
    if gap <= NEAR:
        return PARTLY
    return NOT_REPRODUCED


def worst(*verdicts: str) -> str:
    return max(verdicts, key=VERDICT_ORDER.index)


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


def fmt(mean: float, lo: float = math.nan, hi: float = math.nan, digits: int = 1) -> str:
    if math.isnan(lo):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _single(values, paper_value: float, note: str) -> dict:
    s = stats(values)
    return {**s, "verdict": verdict_single(paper_value, s["mean"], s["ci_low"], s["ci_high"]), "note": note}


# --------------------------------------------------------------------------- study A, chapter 2
@claim("A1_pruned_combined", notebook="02_pruning_cliff")
def a1_pruned_combined(df: pd.DataFrame) -> dict:
    """Combined-stress accuracy (%) of the 95%-pruned network (main experiment, stage 'pruned'); default rule."""
    v = per_seed(df, experiment="main", stage="pruned", condition="combined", metric="accuracy")
    return _single(v, paper.claim("A1_pruned_combined")["value"], "main experiment, stage 'pruned'")


def _sweep_curve(df: pd.DataFrame) -> pd.DataFrame:
    """Per sparsity level (%): mean combined accuracy over seeds, sorted by level."""
    sw = select(df, experiment="sweep", condition="combined", metric="accuracy").copy()
    level = sw["sparsity_target"].astype(float)
    sw["level"] = (level * 100 if level.max() <= 1.0 else level).round(6)
    return sw.groupby("level")["value"].mean().sort_index().reset_index()


def steepest_drop(df: pd.DataFrame) -> tuple[float, float, float]:
    """The sweep segment with the steepest fall of mean combined accuracy per point of sparsity.

    Returns (from level %, to level %, drop in points over the segment).
    """
    curve = _sweep_curve(df)
    if len(curve) < 2:
        raise ValueError("the sweep needs at least two sparsity levels to locate a drop")
    lv, acc = curve["level"].to_numpy(), curve["value"].to_numpy()
    slope = (acc[:-1] - acc[1:]) / np.diff(lv)
    i = int(np.argmax(slope))
    return float(lv[i]), float(lv[i + 1]), float(acc[i] - acc[i + 1])


@claim("A2_cliff", notebook="02_pruning_cliff")
def a2_cliff(df: pd.DataFrame) -> dict:
    """The cliff: combined accuracy (%) at 90% and 93% sparsity, and where the steepest drop is.

    Rule: *reproduced* if both values pass the default rule against the paper's 79.0 and 37.1 and
    the steepest segment of the sweep (largest fall of mean combined accuracy per point of
    sparsity between adjacent levels) lies within 90-95% sparsity; *partly* if that segment lies
    within 85-97% (a cliff in the same region, values aside); else *not reproduced*.
    """
    c = paper.claim("A2_cliff")
    s90 = stats(per_seed(df, experiment="sweep", condition="combined", metric="accuracy", sparsity_target=_lv(df, 90)))
    s93 = stats(per_seed(df, experiment="sweep", condition="combined", metric="accuracy", sparsity_target=_lv(df, 93)))
    lo, hi, drop = steepest_drop(df)
    values_ok = all(verdict_single(p, s["mean"], s["ci_low"], s["ci_high"]) == REPRODUCED
                    for p, s in ((c["at_90"], s90), (c["at_93"], s93)))
    if values_ok and lo >= 90 and hi <= 95:
        verdict = REPRODUCED
    elif lo >= 85 and hi <= 97:
        verdict = PARTLY
    else:
        verdict = NOT_REPRODUCED
    return {**s93, "verdict": verdict,
            "ours": f"{fmt(s90['mean'], s90['ci_low'], s90['ci_high'])} at 90%; "
                    f"{fmt(s93['mean'], s93['ci_low'], s93['ci_high'])} at 93%",
            "note": f"steepest drop between {lo:g}% and {hi:g}% sparsity ({drop:.1f} points)"}


def _lv(df: pd.DataFrame, percent: float) -> float:
    """The sweep's ``sparsity_target`` value for ``percent`` (stored as a fraction or in %)."""
    if "sparsity_target" not in df.columns:
        raise ValueError("results have no column 'sparsity_target' (the sweep's levels)")
    levels = df["sparsity_target"].dropna().astype(float)
    return percent / 100 if levels.max() <= 1.0 else float(percent)


@claim("A3_recovered_combined", notebook="02_pruning_cliff")
def a3_recovered_combined(df: pd.DataFrame) -> dict:
    """Combined accuracy (%) after 50% gradient-guided regrowth + consolidation, with the sparsity left.

    Rule: the default rule on combined accuracy (paper 97.0), downgraded to *partly* if our mean
    weight sparsity differs from the paper's 47.5% by more than 1 point.
    """
    acc = per_seed(df, experiment="main", stage="recovered", regrowth="gradient", condition="combined",
                   metric="accuracy")
    sp = per_seed(df, experiment="main", stage="recovered", regrowth="gradient", metric="weight_sparsity")
    out = _single(acc, paper.claim("A3_recovered_combined")["value"], "")
    if abs(sp.mean() - 47.5) > 1.0:
        out["verdict"] = worst(out["verdict"], PARTLY)
    out["note"] = f"weight sparsity left {sp.mean():.1f}% (paper ~47.5%)"
    return out


# --------------------------------------------------------------------------- the table
def paper_value(c: dict) -> str:
    """The paper's number(s) of a claim as display text."""
    if "value" in c:
        return f"{c['value']:g}"
    if "mean" in c:
        return f"{c['mean']:g} ± {c['sd']:g}" if "sd" in c else f"{c['mean']:g}"
    nums = {k: v for k, v in c.items() if k != "text" and isinstance(v, (int, float))}
    if nums:
        return "; ".join(f"{k}: {v:g}" for k, v in nums.items())
    return "qualitative"


def all_claims() -> list[tuple[str, str, dict]]:
    """(study, claim id, claim) for every claim of the paper, in file order."""
    data = paper.paper_results()
    return [(study[-1], cid, c) for study in ("study_A", "study_B") for cid, c in data[study]["claims"].items()]


def evaluate(claim_id: str, df: pd.DataFrame) -> dict:
    """Run one registered claim on a results DataFrame."""
    return CLAIMS[claim_id].func(df)


def collect(profile: str, root=None) -> pd.DataFrame:
    """The scorecard at ``profile``: one row per claim id of the paper, covered or not.

    Columns: claim, study, statement, notebook, paper, ours, n, verdict, note.
    """
    cache: dict[str, pd.DataFrame | None] = {}
    rows = []
    for study, cid, c in all_claims():
        row = {"claim": cid, "study": study, "statement": c.get("text", ""), "notebook": "",
               "paper": paper_value(c), "ours": "", "n": 0, "verdict": NOT_COVERED, "note": ""}
        reg = CLAIMS.get(cid)
        if reg is not None:
            row["notebook"] = reg.notebook
            if reg.notebook not in cache:
                try:
                    cache[reg.notebook] = load_results(reg.notebook, profile, root)
                except FileNotFoundError:
                    cache[reg.notebook] = None
            df = cache[reg.notebook]
            if df is None:
                row["note"] = f"no results for {reg.notebook} at profile {profile!r}"
            else:
                r = reg.func(df)
                row.update(ours=r.get("ours") or fmt(r["mean"], r["ci_low"], r["ci_high"]), n=r["n"],
                           verdict=r["verdict"], note=r.get("note", ""))
        rows.append(row)
    return pd.DataFrame(rows)


def counts(table: pd.DataFrame) -> dict:
    """How many claims got each verdict (including 'not yet covered')."""
    return {v: int((table["verdict"] == v).sum()) for v in (*VERDICT_ORDER, NOT_COVERED)}
