"""The studies' published numbers (a copy of the reproduction's yardstick, shipped as data)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

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
