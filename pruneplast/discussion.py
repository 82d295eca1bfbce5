"""The numbers and sentences of the book's abstract and Discussion, read from a profile's results.

Everything here is computed from the results files the chapters wrote (``results/<profile>/``):
the scorecard's verdicts (:func:`pruneplast.scorecard.collect`), every published table value set
against ours (:func:`pruneplast.published.compare`), chapter 2's data-set comparison and the
robustness atlas's map. A part whose chapter has not run at the profile, or ran without what the
part needs (chapter 2 on one data-set scheme only), says so instead of a number. Sentences agree
with their counts ("1 claim", "2 claims") and print numbers through :mod:`pruneplast.typeset`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from . import published, scorecard
from .results import load_results, results_dir
from .typeset import listing, number, plural


def claim_label(cid: str) -> str:
    """A claim as readers meet it in the scorecard: its short id (``A3``)."""
    return cid.split("_")[0]


@dataclass
class Tally:
    """The scorecard's verdicts at a profile."""

    claims: int
    covered: int
    reproduced: int
    consistent: int
    differs: int
    unstable: int
    table: pd.DataFrame = field(repr=False)

    def sentence(self) -> str:
        if self.covered == 0:
            return f"None of the studies' {plural(self.claims, 'headline claim')} is covered at this profile."
        return (
            f"Of the studies' {plural(self.claims, 'headline claim')}, {self.covered} "
            f"{'is' if self.covered == 1 else 'are'} covered by this build: {self.reproduced} reproduced, "
            f"{self.consistent} consistent with the study (our interval too wide to decide) and "
            f"{self.differs} {'differs' if self.differs == 1 else 'differ'}."
        )


def tally(profile: str, root=None) -> Tally:
    table = scorecard.collect(profile, root, bootstrap=0)
    n = scorecard.counts(table)
    return Tally(
        claims=len(table),
        covered=len(table) - n[scorecard.NOT_COVERED],
        reproduced=n[scorecard.REPRODUCED],
        consistent=n[scorecard.CONSISTENT],
        differs=n[scorecard.DIFFERS],
        unstable=n["unstable"],
        table=table,
    )


@dataclass
class TableShare:
    """The studies' table values set against ours."""

    values: int
    compared: int
    inside: int
    share: float  # NaN when nothing is compared
    compare: pd.DataFrame = field(repr=False)

    def sentence(self) -> str:
        if not self.compared:
            return f"None of the studies' {self.values} table values is covered at this profile."
        return (
            f"Of the {self.values} numbers in the studies' tables, {self.compared} are covered and "
            f"{self.inside} ({number(100 * self.share, 0)}%) lie inside our 95% prediction interval of a rerun "
            "of the study."
        )


def table_share(profile: str, root=None) -> TableShare:
    every = published.compare(profile, root)
    s = published.summary(every)
    return TableShare(s["values"], s["compared"], s["inside"], s["share"], every)


def differing(t: Tally) -> list[dict[str, Any]]:
    """The covered claims that are not reproduced, in the scorecard's order."""
    rows = t.table[t.table["verdict"].isin([scorecard.DIFFERS, scorecard.CONSISTENT])]
    return [
        {
            "claim": claim_label(r.claim),
            "statement": r.statement,
            "study": r.paper,
            "ours": r.ours,
            "verdict": r.verdict,
        }
        for r in rows.itertuples()
    ]


def published_row(every: pd.DataFrame, table: str, row: str, column: str) -> dict[str, Any] | None:
    """One published table value against ours, or None where this profile did not compute it."""
    hit = every[(every["table"] == table) & (every["row"] == row) & (every["column"] == column)]
    if hit.empty or pd.isna(hit.iloc[0]["ours"]):
        return None
    return hit.iloc[0].to_dict()


def ketamine_biased_sentence(every: pd.DataFrame) -> str:
    """The ketamine-like arm's accuracy under biased stress, ours against study B's."""
    r = published_row(every, "treatments", "biased_accuracy", "ketamine")
    if r is None:
        return (
            "Chapter 5 has not run at this profile, so the ketamine-like arm's biased-stress accuracy is not compared."
        )
    diff = float(r["ours"]) - float(r["paper"])
    return (
        f"Under biased stress the ketamine-like network scores {number(r['ours'])}% in our runs "
        f"(mean of {plural(int(r['n']), 'seed')}) against the study's {number(r['paper'])} ± "
        f"{number(r['paper_sd'])}%, a difference of {number(diff, signed=True)} points ({r['verdict']})."
    )


def data_set_effect(profile: str, root=None) -> dict[str, float] | None:
    """Chapter 2's paired difference of combined-stress accuracy, study A's one data set minus a data
    set per replicate, at the 95%-pruned and the recovered state; None where chapter 2 ran on one
    scheme only (or not at all)."""
    from .results import paired_difference

    try:
        df = load_results("02_pruning_cliff", profile, root)
    except FileNotFoundError:
        return None
    if "data_sets" not in df.columns or set(df["data_sets"].dropna()) != {"shared", "per_replicate"}:
        return None
    main = df[(df["experiment"] == "main") & (df["metric"] == "accuracy") & (df["condition"] == "combined")]
    main = main[main["regrowth"].isin(["none", "gradient"])]
    out: dict[str, float] = {}
    for stage in ("pruned", "recovered"):
        d = paired_difference(main[main["stage"] == stage], "data_sets", "shared", "per_replicate")
        if len(d):
            out[stage] = float(d.iloc[0]["mean"])
            out[f"{stage}_lo"] = float(d.iloc[0]["ci_low"])
            out[f"{stage}_hi"] = float(d.iloc[0]["ci_high"])
    return out or None


def data_set_sentence(effect: dict[str, float] | None) -> str:
    if effect is None or "pruned" not in effect:
        return (
            "This build ran chapter 2 on one data-set scheme only, so the data set's effect is not measured "
            'here (`data_sets="both"`, the paper profile\'s default, measures it).'
        )
    return (
        "Pruned to 95%, a network on study A's one data set scores "
        f"{number(effect['pruned'], signed=True)} points (95% CI {number(effect['pruned_lo'])} to "
        f"{number(effect['pruned_hi'])}) on combined stress against the same seeds trained on a data set of "
        "their own"
        + (
            f"; after recovery the difference is {number(effect['recovered'], signed=True)} points."
            if "recovered" in effect
            else "."
        )
    )


@dataclass
class AtlasSummary:
    settings: int  # changed settings
    robust: list[str]  # claim ids holding under the reference and every changed setting
    fragile: list[tuple[str, int, str]]  # (claim id, settings where it holds, reference verdict)

    def sentence(self) -> str:
        n = self.settings
        parts = []
        if self.robust:
            parts.append(
                f"{listing(self.robust)} {'holds' if len(self.robust) == 1 else 'hold'} under the studies' choices and "
                f"under every one of the atlas's {plural(n, 'changed setting')}"
            )
        if self.fragile:
            parts.append(
                listing([f"{c} (holds in {k} of {n}; reference: {v})" for c, k, v in self.fragile])
                + f" {'does' if len(self.fragile) == 1 else 'do'} not hold everywhere"
            )
        return "; ".join(parts) + "." if parts else "The atlas computed no conclusion."


def atlas_summary(profile: str, root=None) -> AtlasSummary | None:
    """Which conclusions the robustness atlas finds robust and which fragile; None where chapter 7
    has not run at ``profile``."""
    import json

    from . import atlas

    try:
        df = load_results("07_robustness_atlas", profile, root)
    except FileNotFoundError:
        return None
    p = json.loads((results_dir(profile, root) / "07_robustness_atlas.json").read_text(encoding="utf-8"))["parameters"]
    cells = atlas.settings(
        p["width_factors"], p["depth_changes"], p["task_sigmas"], p["global_scope"], p["lr_factors"], p["init_stds"],
        p["shared_data_set"],
    )  # fmt: skip
    m = atlas.atlas_map(df, cells)
    changed = m[m["choice"] != "reference"]
    n = len(cells) - 1
    robust, fragile = [], []
    for c in atlas.CONCLUSIONS:
        ref = m[(m["claim"] == c.claim) & (m["choice"] == "reference")].iloc[0]
        held = int((changed[changed["claim"] == c.claim]["verdict"] == atlas.HOLDS).sum())
        if ref["verdict"] == atlas.HOLDS and held == n:
            robust.append(claim_label(c.claim))
        else:
            fragile.append((claim_label(c.claim), held, str(ref["verdict"])))
    return AtlasSummary(n, robust, fragile)


def abstract_results(t: Tally, share: TableShare, atlas: AtlasSummary | None) -> str:
    """The results sentences of the front page's abstract (plain text, glued across pages)."""
    parts = [t.sentence(), share.sentence()]
    if atlas is None:
        parts.append("The robustness atlas has not run at this profile.")
    else:
        parts.append(
            f"Changing one modelling choice at a time ({plural(atlas.settings, 'setting')}), "
            + (f"{listing(atlas.robust)} {'holds' if len(atlas.robust) == 1 else 'hold'} everywhere"
               if atlas.robust else "no conclusion holds everywhere")
            + (f", while {listing([c for c, _, _ in atlas.fragile])} "
               f"{'does' if len(atlas.fragile) == 1 else 'do'} not." if atlas.fragile else ".")
        )  # fmt: skip
    return " ".join(parts)
