"""The studies' published numbers (a copy of the reproduction's yardstick, shipped as data)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

from .config import MaintenanceConfig

PATH = Path(__file__).with_name("data") / "paper_results.yaml"


@lru_cache(maxsize=1)
def paper_results() -> dict:
    """The parsed ``paper_results.yaml``: ``study_A`` / ``study_B`` -> ``claims`` / ``tables``."""
    with open(PATH, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def claim(claim_id: str) -> dict:
    for study in ("study_A", "study_B"):
        claims = paper_results()[study]["claims"]
        if claim_id in claims:
            return claims[claim_id]
    raise KeyError(f"unknown claim id {claim_id!r}")


def table(study: str, name: str):
    return paper_results()[f"study_{study}"]["tables"][name]


# --------------------------------------------------------------------------- quoting in prose
_A_CONSOLIDATION = ("clean", "combined", "extreme", "post", "drop")
_A_REGIMENS = ("sparsity", "clean", "standard", "extreme", "combined", "drop", "post_sparsity")
#: Study A's main table's columns: the stages of the main experiment (:mod:`pruneplast.protocols.cliff`).
A_STAGES = ("baseline", "pruned", "recovered")


def _name(*parts) -> str:
    return "_".join(str(p) for p in parts).replace(".", "p").replace("-", "_")


def numbers() -> dict[str, float]:
    """Every number the studies report, by a name the chapters quote it with.

    ``{glue:text}`study_<name>:.1f``` in a chapter's prose shows the number from this data file
    (:func:`glue_numbers` glues them all), so no study number is typed by hand; a test checks
    that the prose quotes none. Names: a claim id (its value or mean; ``<id>_sd`` and its other
    fields as ``<id>_<field>``); ``A_main_<condition>_<stage>``, ``A_gradient_<condition>`` and
    ``A_random_<condition>``, ``A_sweep_<level>``, ``A_consolidation_<epochs>_<column>``
    (clean, combined, extreme, post, drop), ``A_regimen_<name>_<column>`` (sparsity, clean,
    standard, extreme, combined, drop, post_sparsity), ``A_path_<cycle>``; ``B_<table>_<arm>``
    (mean; ``_sd``), ``B_off_drug_<condition>`` (``_sd``), ``B_relapse_rate_<arm>_<duration>``
    and ``B_biased_<arm>_<duration>``. Dots become ``p`` (``sigma_2p5``).
    """
    out: dict[str, float] = {}
    r = paper_results()
    for study in ("study_A", "study_B"):
        for cid, c in r[study]["claims"].items():
            for k, v in c.items():
                if k == "text" or not isinstance(v, (int, float)):
                    continue
                out[cid if k in ("value", "mean") else _name(cid, k)] = float(v)
    a = r["study_A"]["tables"]
    for cond, vals in a["main"].items():
        for stage, v in zip(A_STAGES, vals):
            out[_name("A_main", cond, stage)] = float(v)
    for cond, (g, rnd) in a["regrowth_gradient_vs_random"].items():
        out[_name("A_gradient", cond)], out[_name("A_random", cond)] = float(g), float(rnd)
    for level, v in a["sparsity_sweep_combined"].items():
        out[_name("A_sweep", level)] = float(v)
    for ep, vals in a["consolidation"].items():
        for col, v in zip(_A_CONSOLIDATION, vals):
            out[_name("A_consolidation", ep, col)] = float(v)
    for name, vals in a["regimens"].items():
        for col, v in zip(_A_REGIMENS, vals):
            out[_name("A_regimen", name, col)] = float(v)
    for k, v in enumerate(a["chronic_sparsity_path"]):
        out[_name("A_path", k)] = float(v)
    b = r["study_B"]["tables"]
    durations = MaintenanceConfig().durations  # the study's, the columns of its by-duration tables
    for table, row in b.items():
        if table == "neurosteroid_off_drug":
            for cond, (m, sd) in row.items():
                out[_name("B_off_drug", cond)], out[_name("B_off_drug", cond, "sd")] = float(m), float(sd)
        elif table in ("relapse_rate_by_maintenance", "biased_accuracy_by_maintenance"):
            short = "relapse_rate" if table.startswith("relapse") else "biased"
            for arm, vals in row.items():
                for d, v in zip(durations, vals):
                    out[_name("B", short, arm, d)] = float(v)
        else:
            for arm, cell in row.items():
                if cell is not None:
                    out[_name("B", table, arm)], out[_name("B", table, arm, "sd")] = float(cell[0]), float(cell[1])
    return out


def glue_numbers() -> None:
    """Glue every number of :func:`numbers` as ``study_<name>`` (hidden), for a chapter's prose."""
    from myst_nb import glue

    for k, v in numbers().items():
        glue(f"study_{k}", v, display=False)
