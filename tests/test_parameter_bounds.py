"""Every chapter parameter at, just inside and just outside the ends of its range.

For each parameter registered with a range in :mod:`pruneplast.chapters`, the expected verdict of
each probe is worked out here from the range's ends alone (plain arithmetic, not the package's
checks); then three paths must give it:

* the command line's validation (``pruneplast run NN -p NAME VALUE``): the value written as the
  YAML text a user types, read and checked by :func:`pruneplast.booktools.request`, the one
  function ``run`` calls before anything runs;
* papermill's: :func:`pruneplast.chapters.validate` as the first code cell calls it, with the
  notebook's globals (``In`` present);
* the engine's: the configuration or protocol the value ends up in (its ``__post_init__``). Every
  value the first two accept, the engine accepts; every value outside the range the engine refuses
  too, except where the chapter deliberately narrows what the engine allows (:data:`NARROWER`).

No chapter is executed; two command-line spot checks run ``pruneplast`` as a user would.
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pruneplast import arms, atlas, booktools, chapters, parallel
from pruneplast.config import (
    MaintenanceConfig,
    ModelChoices,
    PruneConfig,
    RegrowConfig,
    RelapseConfig,
    RunConfig,
    TrainConfig,
)
from pruneplast.explorer.grid import GridSpec
from pruneplast.explorer.knobs import ExplorerConfig, Knobs
from pruneplast.protocols import cliff
from pruneplast.protocols.regimens import Regimen, study_regimens

ROOT = Path(__file__).resolve().parent.parent
PROFILE = "paper"  # the studies' values around the probe (the quick profile's combinations differ)


def _tiny():
    """A trained-size-free network and its data, for the one engine call that needs them."""
    from pruneplast.config import NetworkConfig, TaskConfig
    from pruneplast.data import EnsembleData
    from pruneplast.network import EnsembleMLP

    return EnsembleMLP.init([0], NetworkConfig(sizes=(2, 8, 4))), EnsembleData.build(
        [0], TaskConfig(n_train=32, n_standard=16, n_clean=16)
    )


def _epochs(v):
    return TrainConfig(epochs=v)


def _keyword(make, name: str):
    return lambda v: make(**{name: v})


def _arm(name: str, field: str):
    return lambda v: dataclasses.replace(arms.arm(name), **{field: v})


ATLAS_LEVELS = ("width_factors", "depth_changes", "task_sigmas", "lr_factors", "init_stds")
#: The engine's constructor that each parameter's value reaches (per chapter where it differs).
ENGINE = {
    "seeds": lambda v: RunConfig(seeds=v),
    "baseline_epochs": _epochs,
    "consolidation_epochs": _epochs,
    "max_epochs": _epochs,
    "acute_epochs": _epochs,
    "full_epochs": _epochs,
    "maintenance_epochs": _epochs,
    "sparsity": lambda v: PruneConfig(sparsity=v),
    "regrow_fraction": lambda v: RegrowConfig(fraction=v),
    "relapse_fraction": lambda v: RelapseConfig(fraction=v),
    "acute_fraction": lambda v: Regimen("acute moderate", 1, v, 15),
    "chronic_fraction": lambda v: Regimen("long chronic", 10, v, 5),
    "chronic_epochs": lambda v: Regimen("long chronic", 10, 0.4, v),
    "chronic_cycles": lambda v: study_regimens(chronic_cycles=v),
    "sweep_levels": lambda v: cliff.sparsity_sweep(*_tiny(), v, conditions=["standard"]),
    "hidden": lambda v: ModelChoices(hidden=tuple(v)),
    "task_sigma": lambda v: ModelChoices(task_sigma=v),
    "lr_factor": lambda v: ModelChoices(lr_factor=v),
    "regrow_init_std": lambda v: ModelChoices(regrow_init_std=v),
    "workers": lambda v: parallel.resolve_workers(v),
    "durations": lambda v: MaintenanceConfig(durations=v),
    "maintenance_lr": lambda v: MaintenanceConfig(lr=v),
    "protection": lambda v: MaintenanceConfig(protection=v),
    "decay_steps": lambda v: MaintenanceConfig(decay_steps=v),
    "threshold": lambda v: MaintenanceConfig(threshold=v),
    "sensitivity_protections": lambda v: [MaintenanceConfig(protection=p) for p in v],
    "sensitivity_thresholds": lambda v: [MaintenanceConfig(threshold=t) for t in v],
    **{f"{a}_epochs": _arm(a, "epochs") for a in ("ketamine", "ssri", "neurosteroid")},
    **{f"{a}_decay": _arm(a, "decay_rate") for a in ("ketamine", "ssri", "neurosteroid")},
    **{k: _keyword(atlas.settings, k) for k in ATLAS_LEVELS},
    "train_subset": lambda v: ExplorerConfig(train_subset=v),
    "grid_sparsities": lambda v: GridSpec(sparsities=tuple(v)),
    "grid_regrow_fractions": lambda v: GridSpec(regrow_fractions=tuple(v)),
}
#: Chapter 7's values go to the atlas's protocol; the explorer's consolidation epochs to its knobs.
PER_CHAPTER = {
    ("07_robustness_atlas", k): _keyword(atlas.Protocol, k)
    for k in ("acute_fraction", "acute_epochs", "chronic_fraction", "chronic_epochs", "chronic_cycles",
              "consolidation_epochs", "maintenance_epochs", "threshold", "regrow_fraction", "sparsity")
}  # fmt: skip
PER_CHAPTER[("explorer", "consolidation_epochs")] = lambda v: Knobs(consolidation_epochs=v)

#: Parameters whose chapter range is narrower than what the engine takes, and why: a value just
#: outside the chapter's range is refused by the command line and papermill, the engine allows it.
NARROWER = {
    "max_epochs": "chapter 3 consolidates at least one epoch; a training run of 0 epochs is valid",
    "ssri_epochs": "the SSRI-like arm's course is at least one epoch in the chapters; an arm may have 0",
    "chronic_epochs": "a chronic cycle trains at least one epoch in the chapters; a regimen may train 0",
    "baseline_epochs": "the explorer trains its baselines for at least one epoch; a training run may have 0",
    "regrow_init_std": "the chapters' regrowth SD is in (0, 1]; RegrowConfig takes up to 10",
    "init_stds": "the atlas's regrowth SDs are in (0, 1]; RegrowConfig takes up to 10",
    "sweep_levels": "the cliff's levels stop at 99.9%; a pruning level may be anything below 100%",
    "grid_sparsities": "the explorer's grid stops at 99%; a pruning level may be anything below 100%",
    "sensitivity_thresholds": "the sensitivity panel takes whole percentages; a threshold may be fractional",
    "consolidation_epochs": "the explorer consolidates at most 100 epochs; a training run may have more",
    "train_subset": "the explorer's subset is [128, 12000]; its config takes any subset up to the data set",
    "hidden": "the chapters take layers of up to 4,096 units; ModelChoices takes any size that fits in memory",
    "task_sigma": "the atlas's studied spreads, [0.05, 3]; the task takes any spread up to 100",
    "lr_factor": "the atlas's studied factors, [0.1, 4]; ModelChoices takes any positive factor",
    "width_factors": "the atlas's studied factors, [0.1, 4]; a setting takes any positive factor",
    "depth_changes": "the atlas changes at most 3 layers; a setting may add up to 8",
    "task_sigmas": "the atlas's studied spreads, [0.05, 3]; a setting takes any spread up to 100",
    "lr_factors": "the atlas's studied factors, [0.1, 4]; a setting takes any positive factor",
}


def _probes(r) -> list[tuple[float, bool, str]]:
    """(value, inside the range?, where) at, just inside and just outside each finite end of ``r``,
    from the ends alone."""
    step = (lambda x: 1) if r.integer else (lambda x: 1e-6 * max(1.0, abs(x)))
    out = []
    if math.isfinite(r.lo):
        lo = int(r.lo) if r.integer else float(r.lo)
        out += [(lo, not r.lo_open, "at the low end"), (lo + step(lo), True, "just inside the low end")]
        out += [(lo - step(lo), False, "just below the low end")]
    if math.isfinite(r.hi):
        hi = int(r.hi) if r.integer else float(r.hi)
        out += [(hi, not r.hi_open, "at the high end"), (hi - step(hi), True, "just inside the high end")]
        out += [(hi + step(hi), False, "just above the high end")]
    return out


def _as_value(name: str, p: chapters.Param, v):
    """The parameter's value holding the probe ``v`` where it is a list kind (satisfying the
    list's own rules: the cliff's levels start at 0 and increase, three increasing cycle counts)."""
    if p.kind not in ("seeds", "ints", "fractions"):
        return v
    if name == "sweep_levels":
        return [0.0, v] if v > 0 else [v, 0.5]
    if name == "chronic_cycles":  # (not 3 x 5 epochs = the acute regimen's 15: the control would equal it)
        return [v, v + 1, v + 3]
    return [v]


def _cases():
    for ch in chapters.CHAPTERS.values():
        for name, p in ch.all_params.items():
            r = p.allowed
            if r is None or p.kind not in ("int", "float", "fraction", "seeds", "ints", "fractions"):
                continue
            for v, inside, where in _probes(r):
                yield pytest.param(ch.name, name, _as_value(name, p, v), inside, id=f"{ch.name}-{name}-{where}")


CASES = list(_cases())


def _engine(chapter: str, name: str):
    return PER_CHAPTER.get((chapter, name)) or ENGINE[name]


def test_every_ranged_parameter_has_probes_and_an_engine():
    named = {(c.values[0], c.values[1]) for c in CASES}
    assert len(named) >= 90 and len(CASES) >= 400
    missing = sorted(n for ch, n in named if (ch, n) not in PER_CHAPTER and n not in ENGINE)
    assert not missing, missing


def _verdict(fn) -> str | None:
    """None when ``fn()`` accepts; else its message."""
    try:
        fn()
    except (ValueError, RuntimeError) as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("chapter, name, value, inside", CASES)
def test_command_line_papermill_and_engine_agree(chapter, name, value, inside):
    path = ROOT / "notebooks" / f"{chapter}.md"
    text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...")
    typed = booktools.parse_value(text)
    assert typed == value, (typed, value)  # what the user types reads back as the value
    cli = _verdict(lambda: booktools.request(path, PROFILE, pairs=[(name, text)]))
    values = {**chapters.profile_values(chapter, PROFILE), name: value, "In": []}
    kernel = _verdict(lambda: chapters.validate(chapter, values))
    engine = _verdict(lambda: _engine(chapter, name)(value))
    assert (cli is None) == inside, f"command line: {cli}"
    assert (kernel is None) == inside, f"papermill: {kernel}"
    if inside:
        assert engine is None, f"the command line accepts {name}={value!r}, the engine refuses: {engine}"
    else:
        assert name in cli and name in kernel and "Traceback" not in cli  # names the parameter
        if name not in NARROWER:
            assert engine is not None, f"{name}={value!r} is outside the chapter's range but the engine takes it"


@pytest.mark.parametrize(
    "argv, says",
    [
        (["run", "06", "-p", "maintenance_lr", "0"], r"maintenance_lr must be in (0.0, 1.0]; got 0.0"),
        (["run", "07", "-p", "width_factors", "[4.000004]"], r"width_factors[0] must be in [0.1, 4.0]; got 4.000004"),
    ],
)
def test_the_command_itself_refuses_a_value_just_outside(argv, says):
    exe = Path(sys.executable).with_name("pruneplast")
    done = subprocess.run([str(exe), *argv], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and says in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
