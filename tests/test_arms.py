"""The treatment registry: an arm declared once runs through both study-B protocols and tables."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import small_trained

from pruneplast import arms, chapters, paper, plotting
from pruneplast.config import MaintenanceConfig, TaskConfig
from pruneplast.protocols import longitudinal, treatments

ROOT = Path(__file__).resolve().parent.parent
TASK = TaskConfig(n_train=512, n_standard=400, n_clean=100)


@pytest.fixture
def lithium():
    """A new arm from existing mechanisms (a plain course, damping and a gain): one registry entry."""
    arm = arms.register(
        arms.Arm(
            "lithium",
            label="lithium-like",
            colour="#44AA99",
            gain=1.1,
            damping=0.9,
            epochs=2,
            lr=5e-4,
            decay_rate=0.004,
            off_drug=True,
        )
    )
    yield arm
    arms.unregister("lithium")


def test_a_registered_arm_runs_both_protocols_and_shows_in_the_tables(lithium):
    net, data = small_trained(TASK, epochs=2)
    cfgs = treatments.configs(epochs={"ketamine": 1, "ssri": 2, "neurosteroid": 1, "lithium": 2})
    assert list(cfgs) == ["untreated", "ketamine", "ssri", "neurosteroid", "lithium"]
    states = treatments.treat(net, data, cfgs)
    lith = states["lithium"]
    assert lith.gain.tolist() == pytest.approx([1.1, 1.1]) and lith.damping.tolist() == pytest.approx([0.9, 0.9])
    df = treatments.evaluate_treatments(states, data)
    study = paper.paper_results()["study_B"]["tables"]

    table = treatments.comparison_table(df, study)
    assert "lithium, ours" in table.columns and "lithium, study" in table.columns
    assert set(table["lithium, study"]) == {"—"}
    assert all(re.match(r"^-?\d", v) for v in table["lithium, ours"])
    assert table.loc["combined", "ketamine, study"] == "97.2 ± 0.2"  # the study's own columns unchanged
    # off drug, because the entry says so; with no study value
    off = treatments.off_drug_table(df, study["neurosteroid_off_drug"], name="lithium")
    assert set(off["off drug, study"]) == {"—"}
    assert (df[df.experiment == "off_drug"].treatment.unique().tolist()) == ["neurosteroid", "lithium"]

    rows, _ = longitudinal.longitudinal(
        states, data, cfgs, MaintenanceConfig(durations=(1, 2)), protections=(0.0, 1.0), thresholds=(60,)
    )
    assert "lithium" in set(rows.treatment)
    prob = longitudinal.probability_table(rows, study["manic_relapse_probability"])
    assert list(prob.index) == ["ketamine-like", "SSRI-like", "neurosteroid-like", "lithium-like"]
    assert prob.loc["lithium-like", "study"] == "—" and prob.loc["SSRI-like", "study"] == "95.0 ± 15.0"
    assert prob.loc["lithium-like", "protection at test"] == f"{1 - 50 * 0.004:.2f}"
    by = longitudinal.by_duration_table(rows, study["relapse_rate_by_maintenance"])
    assert set(by.loc["lithium-like", "study"]) == {"—"}
    assert plotting.colour("lithium") == "#44AA99" and plotting.LABELS["lithium"] == "lithium-like"


def test_registry_refuses_duplicates_and_keeps_the_studies_arms(lithium):
    with pytest.raises(ValueError, match="already registered"):
        arms.register(arms.Arm("lithium"))
    with pytest.raises(ValueError, match="studies' arms"):
        arms.unregister("ssri")
    assert arms.names()[:4] == arms.STUDY_ARMS


def test_chapter_parameters_and_parameter_cells_come_from_the_registry():
    """Registry defaults = chapter parameters = the literals of chapters 5 and 6's parameter cells."""
    for nb in ("05_treatments", "06_longitudinal_relapse"):
        params = chapters.CHAPTERS[nb].params
        cell = (ROOT / "notebooks" / f"{nb}.md").read_text()
        for name in arms.STUDY_ARMS[1:]:
            a = arms.arm(name)
            assert params[f"{name}_epochs"].default == a.epochs
            assert re.search(rf"^{name}_epochs = {a.epochs}$", cell, re.M)
            if nb == "06_longitudinal_relapse":
                assert params[f"{name}_decay"].default == a.decay_rate
                assert re.search(rf"^{name}_decay = {a.decay_rate}$", cell, re.M)
        assert params["regrow_fraction"].default == arms.arm("ketamine").regrow_fraction


def test_each_colour_keeps_one_meaning():
    """Across states, arms, conditions, regimens, data sets, relapse phases and classes, two names
    share a colour only when plotting.SAME says they mean the same thing."""
    names = {
        **{n: plotting.colour(n) for n in arms.names()},
        **plotting.STATES,
        **plotting.STUDY,
        **plotting.CONDITIONS,
        **plotting.REGIMENS,
        **plotting.DATA_SETS,
        **plotting.RELAPSE,
        **{f"class {k}": c for k, c in enumerate(plotting.CLASSES)},
        **{f"chapter {k}": c for k, c in plotting.CHAPTER_COLOURS.items()},
    }
    by_colour: dict[str, set[str]] = {}
    for n, c in names.items():
        by_colour.setdefault(c.upper(), set()).add(n)
    for c, group in by_colour.items():
        if len(group) > 1:
            assert any(group <= same for same in plotting.SAME), f"{c} means {sorted(group)}"
