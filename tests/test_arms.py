"""The treatment registry: an arm declared once runs through both study-B protocols and tables."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import small_trained

from pruneplast import arms, chapters, paper, plotting, tables
from pruneplast.config import MaintenanceConfig, TaskConfig
from pruneplast.protocols import longitudinal, treatment_tables, treatments

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


@pytest.mark.slow
def test_a_registered_arm_runs_both_protocols_and_shows_in_the_tables(lithium):
    net, data = small_trained(TASK, epochs=2)
    cfgs = treatments.configs(epochs={"ketamine": 1, "ssri": 2, "neurosteroid": 1, "lithium": 2})
    assert list(cfgs) == ["untreated", "ketamine", "ssri", "neurosteroid", "lithium"]
    states = treatments.treat(net, data, cfgs)
    lith = states["lithium"]
    assert lith.gain.tolist() == pytest.approx([1.1, 1.1]) and lith.damping.tolist() == pytest.approx([0.9, 0.9])
    df = treatments.evaluate_treatments(states, data)
    study = paper.paper_results()["study_B"]["tables"]

    table = treatment_tables.comparison_table(df, study)
    assert "lithium, ours" in table.columns and "lithium, study" in table.columns
    assert set(table["lithium, study"]) == {"—"}
    assert all(re.match(r"^[-\u2212]?\d", v) for v in table["lithium, ours"]), list(table["lithium, ours"])
    assert table.loc["combined", "ketamine, study"] == "97.2 ± 0.2"  # the study's own columns unchanged
    # off drug, because the entry says so; with no study value
    off = treatment_tables.off_drug_table(df, study["neurosteroid_off_drug"], name="lithium")
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
    assert plotting.colour("lithium") == "#44AA99" and tables.plain("lithium") == "lithium-like"


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
        assert params["regrow_fraction"].default == arms.arm("ketamine").regrow.fraction


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
    }
    by_colour: dict[str, set[str]] = {}
    for n, c in names.items():
        by_colour.setdefault(c.upper(), set()).add(n)
    for c, group in by_colour.items():
        if len(group) > 1:
            assert any(group <= same for same in plotting.SAME), f"{c} means {sorted(group)}"


def _lab(hex_colour: str) -> tuple[float, float, float]:
    """CIE L*a*b* (D65) of an sRGB colour, written out from the standard's formulas."""
    rgb = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [((c + 0.055) / 1.055) ** 2.4 if c > 0.04045 else c / 12.92 for c in rgb]
    m = ((0.4124, 0.3576, 0.1805), (0.2126, 0.7152, 0.0722), (0.0193, 0.1192, 0.9505))
    white = (0.95047, 1.0, 1.08883)
    xyz = [sum(a * b for a, b in zip(row, lin)) / w for row, w in zip(m, white)]
    f = [t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116 for t in xyz]
    return 116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])


def test_colours_of_different_meanings_are_told_apart():
    """Lines and markers of different meanings differ by at least 12 CIE76 units (a step a reader
    sees side by side), so that no colour reads as another meaning's near twin: the relapse
    phases are no arm's green, the stress conditions no shade of the studies' grey. The task's
    class tints (region fills of chapter 1's task figure only) are left out."""
    families = {
        "arm": {n: plotting.colour(n) for n in arms.names()},
        "state": plotting.STATES,
        "study": plotting.STUDY,
        "condition": plotting.CONDITIONS,
        "regimen": plotting.REGIMENS,
        "data set": plotting.DATA_SETS,
        "relapse": plotting.RELAPSE,
        "gathered": {"gathered": plotting.GATHERED},
        "atlas-setting": plotting.ATLAS_CHOICES,
    }
    items = [(f"{fam} {n}", c) for fam, d in families.items() for n, c in d.items()]
    close = []
    for i, (a, ca) in enumerate(items):
        for b, cb in items[i + 1 :]:
            if a.split()[0] == b.split()[0] or ca.upper() == cb.upper():
                continue
            d = sum((x - y) ** 2 for x, y in zip(_lab(ca), _lab(cb))) ** 0.5
            if d < 12:
                close.append(f"{a} {ca} ~ {b} {cb} ({d:.1f})")
    assert not close, close


def test_every_atlas_choice_has_its_colour():
    """The atlas's cliff figure draws each changed choice in its own colour from plotting's table."""
    from pruneplast.atlas.protocol import CHOICES

    assert set(plotting.ATLAS_CHOICES) == set(CHOICES) - {"reference"}


def test_lab_conversion_against_known_values():
    """The conversion the colour test relies on: white, black and sRGB red's published L*a*b*."""
    assert _lab("#FFFFFF") == pytest.approx((100.0, 0.0, 0.0), abs=0.02)
    assert _lab("#000000") == pytest.approx((0.0, 0.0, 0.0), abs=0.01)
    assert _lab("#FF0000") == pytest.approx((53.24, 80.09, 67.20), abs=0.05)
