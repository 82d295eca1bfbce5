"""The book's chapters and their papermill parameters, in one registry.

Each chapter notebook ``notebooks/<name>.md`` has one cell tagged ``parameters`` whose literals are
the ``paper`` values below (a test checks that they agree). The ``quick`` profile overrides some
of them so that every chapter runs in about a minute on two CPU cores through the same code path.
:func:`validate` checks a set of values (types and ranges) before anything runs; the first code
cell of every chapter calls it, so a bad papermill override fails early with a clear message.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from . import arms
from .config import (
    COUNT,
    DATA_SETS,
    DECAY_RATE,
    EXPLORER_SPARSITY,
    FRACTION,
    LEARNING_RATE,
    PERCENT,
    POSITIVE_COUNT,
    PRUNE_SCOPES,
    REGIMEN_FRACTION,
    SEED,
    SPARSITY,
    SWEEP_LEVEL,
    MaintenanceConfig,
    ModelChoices,
    NetworkConfig,
    Range,
    check_choice,
    check_device,
    check_distinct,
    check_distinct_atlas_regimens,
    check_distinct_regimens,
    check_increasing,
    check_memory,
    check_scheduler,
    check_seeds,
)

PROFILES = ("paper", "quick")
PAPER_SEEDS = list(range(10))


@dataclass(frozen=True)
class Param:
    """One notebook parameter: its kind, paper default, quick value and meaning."""

    kind: str  # 'seeds', 'int', 'float', 'fraction', 'fractions', 'ints', 'str', 'device', 'bool', 'address'
    default: Any  # the studies' value (the notebook's literal)
    help: str  # one line for `pruneplast list`
    quick: Any = None  # the quick profile's value (None: same as default)
    choices: tuple = ()  # allowed strings for kind 'str'
    range: Range | None = None  # the engine's range for the value (each entry of a list); see below
    rule: Any = None  # a further check of the whole value, rule(name, value), from the engine
    rule_help: str = ""  # what the rule asks, for `pruneplast list`
    empty_ok: bool = False  # a list kind that may be empty (the atlas: [] leaves a choice out)
    distinct: bool = True  # a list kind whose entries are levels: no value twice (check_distinct)

    def value(self, profile: str) -> Any:
        return self.default if profile == "paper" or self.quick is None else self.quick

    @property
    def allowed(self) -> Range | None:
        """The engine's range of the value (of each entry, for list kinds); None for text kinds."""
        if self.range is not None:
            return self.range
        return {"seeds": SEED, "int": COUNT, "ints": COUNT, "fraction": FRACTION, "fractions": FRACTION}.get(self.kind)

    def describe_range(self) -> str:
        if self.kind == "str":
            return "one of " + ", ".join(map(repr, self.choices))
        if self.kind == "bool":
            return "true or false"
        if self.kind == "address":
            return "'' or a reachable Dask scheduler address 'tcp://host:port' or 'tls://host:port'"
        if self.kind == "device":
            return "'cpu' or an available 'cuda' device"
        r = self.allowed
        text = str(r)
        if self.kind == "seeds":
            return f"distinct integers in {text}"
        if self.kind in ("ints", "fractions"):
            text = f"list, each {text}" if text.startswith(">=") else f"list, each in {text}"
            if self.distinct:
                text += ", no value twice"
            if self.empty_ok:
                text += " ([] leaves it out)"
        return text + (f", {self.rule_help}" if self.rule_help else "")


COMMON = {
    "profile": Param(
        "str", "paper", "results profile: 'paper' (10 seeds, full epochs) or 'quick'", quick="quick", choices=PROFILES
    ),
    "device": Param("device", "cpu", "torch device: 'cpu' or 'cuda'"),
}


@dataclass(frozen=True)
class Chapter:
    name: str  # notebook file stem
    title: str
    params: dict = field(default_factory=dict)  # name -> Param, after COMMON
    #: checks of several parameters together, check(values) with the validated values, from the
    #: engine (a combination the engine would refuse fails here, before any work)
    checks: tuple = ()

    @property
    def all_params(self) -> dict:
        return {**COMMON, **self.params}


CHAPTERS: dict[str, Chapter] = {}


def register(chapter: Chapter) -> Chapter:
    CHAPTERS[chapter.name] = chapter
    return chapter


register(
    Chapter(
        "01_model_and_task",
        "The model and the task",
        {
            "seeds": Param("seeds", [0, 1], "replicate seeds shown in the decision-region figure", quick=[0]),
            "baseline_epochs": Param("int", 20, "baseline training epochs (lr 1e-3)", quick=10),
            "sparsity": Param("fraction", 0.95, "pruning level shown beside the trained network", range=SPARSITY),
        },
    )
)

#: The start of every experiment chapter: replicate seeds, their trained baselines, the pruned state.
_DEPRESSED_STATE = {
    "seeds": Param("seeds", PAPER_SEEDS, "replicate seeds", quick=[0, 1]),
    "baseline_epochs": Param("int", 20, "baseline training epochs (lr 1e-3)", quick=10),
    "sparsity": Param("fraction", 0.95, "pruning level of the depressed state", range=SPARSITY),
}

#: The atlas's ranges: multipliers of the hidden widths and of every learning rate, changes of the
#: hidden depth (at least one hidden layer stays), class spreads of the task, regrowth SDs.
_FACTOR = Range(0.1, 4.0)
_SPREAD = Range(0.05, 3.0)
_INIT_STD = Range(0.0, 1.0, lo_open=True)
_WIDTH = Range(1, 4096, integer=True)


def _model_choices(regrowth: bool = True) -> dict:
    """The choices the studies fixed and the atlas changes (:class:`~pruneplast.config.ModelChoices`),
    as parameters of a reproduction chapter; their defaults are the studies'."""
    c = ModelChoices()
    out = {
        "hidden": Param(
            "ints",
            list(c.hidden),
            "hidden-layer widths (the network is 2-<hidden>-4)",
            range=_WIDTH,
            distinct=False,  # layer widths, not levels: [512, 512, 256]
            rule=lambda n, v: check_memory(NetworkConfig((2, *v, 4)), 1, name=n),
            rule_help="one replica training within this machine's memory",
        ),
        "task_sigma": Param(
            "float", c.task_sigma, "class spread of the task's training and standard sets", range=_SPREAD
        ),
        "prune_scope": Param(
            "str",
            c.prune_scope,
            "pruning threshold: one per layer ('layer', the studies') or one over all weights ('global')",
            choices=PRUNE_SCOPES,
        ),
        "lr_factor": Param("float", c.lr_factor, "every learning rate of the chapter times this", range=_FACTOR),
    }
    if regrowth:
        out["regrow_init_std"] = Param("float", c.regrow_init_std, "SD of regrown weights", range=_INIT_STD)
    return out


#: Study A's chapters run on its one data set (the comparison with the study); chapter 2 also
#: runs every replicate on its own data set, to measure how much the data set matters.
_STUDY_A_DATA = Param(
    "str",
    "shared",
    "data sets: 'shared' (every replicate on study A's one data set, "
    "as the study) or 'per_replicate' (replicate s on its own, as study B)",
    choices=DATA_SETS,
)

#: Study A's chapters train in one-thread processes side by side; the results do not depend on it.
_STUDY_A_WORKERS = Param(
    "int",
    0,
    "processes the training runs go to side by side, one share of the CPU cores each: 0 = one per "
    "CPU core (1 on a GPU), 1 = one after the other in the notebook's process on every core",
)

register(
    Chapter(
        "02_pruning_cliff",
        "The pruning cliff",
        {
            **_DEPRESSED_STATE,
            "data_sets": Param(
                "str",
                "both",
                "data sets: 'both' (study A's one data set, the comparison, and a "
                "data set per replicate beside it), 'shared' or 'per_replicate'",
                quick="shared",
                choices=("both", *DATA_SETS),
            ),
            "regrow_fraction": Param("fraction", 0.5, "fraction of pruned weights regrown"),
            "consolidation_epochs": Param("int", 15, "fine-tuning epochs after regrowth (lr 5e-4)", quick=5),
            "sweep_levels": Param(
                "fractions",
                [0.0, 0.5, 0.7, 0.8, 0.85, 0.88, 0.9, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97, 0.99],
                "sparsity levels of the sweep",
                quick=[0.0, 0.5, 0.8, 0.9, 0.93, 0.95, 0.99],
                range=SWEEP_LEVEL,
                rule=lambda n, v: check_increasing(n, v, at_least=2),
                rule_help="at least 2, increasing",
            ),
            **_model_choices(),
            "workers": _STUDY_A_WORKERS,
        },
    )
)

register(
    Chapter(
        "03_consolidation",
        "How long to consolidate",
        {
            **_DEPRESSED_STATE,
            "data_sets": _STUDY_A_DATA,
            "regrow_fraction": Param("fraction", 0.5, "fraction of pruned weights regrown (gradient-guided)"),
            "max_epochs": Param(
                "int", 20, "consolidation epochs (lr 5e-4), evaluated after every epoch", quick=5, range=POSITIVE_COUNT
            ),
            "relapse_fraction": Param("fraction", 0.4, "share of remaining weights removed by the relapse challenge"),
            **_model_choices(),
            "workers": _STUDY_A_WORKERS,
        },
    )
)

register(
    Chapter(
        "04_regimens",
        "One large regrowth or many small ones",
        {
            **_DEPRESSED_STATE,
            "data_sets": _STUDY_A_DATA,
            "acute_fraction": Param(
                "fraction", 0.6, "regrowth fraction of the acute moderate regimen (and control)", range=REGIMEN_FRACTION
            ),
            "acute_epochs": Param("int", 15, "consolidation epochs of the acute moderate regimen", quick=2),
            "chronic_fraction": Param(
                "fraction",
                0.4,
                "fraction of the still-pruned weights regrown per chronic cycle",
                range=REGIMEN_FRACTION,
            ),
            "chronic_epochs": Param("int", 5, "consolidation epochs per chronic cycle", quick=1, range=POSITIVE_COUNT),
            "chronic_cycles": Param(
                "ints",
                [3, 6, 10],
                "cycles of the short, moderate and long chronic regimens",
                quick=[1, 2, 3],
                range=POSITIVE_COUNT,
                rule=lambda n, v: check_increasing(n, v, count=3),
                rule_help="3, increasing",
            ),
            "full_epochs": Param("int", 20, "consolidation epochs of the full acute (100%) regimen", quick=2),
            "relapse_fraction": Param("fraction", 0.4, "share of remaining weights removed by the relapse challenge"),
            **_model_choices(),
            "workers": _STUDY_A_WORKERS,
        },
        checks=(
            lambda v: check_distinct_regimens(
                v["acute_fraction"],
                v["acute_epochs"],
                v["chronic_fraction"],
                v["chronic_epochs"],
                v["chronic_cycles"],
                v["full_epochs"],
            ),
        ),  # fmt: skip
    )
)


#: Treatment epochs of the studies' treated arms in the quick profile.
_QUICK_ARM_EPOCHS = {"ketamine": 3, "ssri": 5, "neurosteroid": 2}


def _modulation(a: arms.Arm) -> str:
    parts = [f"gain {a.gain:g}"] if a.gain_start is None else [f"gain {a.gain_start:g} to {a.gain:g}"]
    if a.damping != 1.0:
        parts.append(f"damping {a.damping:g}")
    if a.activation != "relu":
        parts.append(a.activation)
    if a.noise_start > 0:
        parts.append(f"noise taper from SD {a.noise_start:g}")
    return ", ".join(parts)


def _arm_params(field_name: str) -> dict[str, Param]:
    """One parameter per treated arm of the studies, its default from the arm's registry entry."""
    out = {}
    for name in arms.STUDY_TREATED:
        a = arms.arm(name)
        if field_name == "epochs":
            out[f"{name}_epochs"] = Param(
                "int",
                a.epochs,
                f"{a.shown}: treatment epochs at lr {a.lr:g} ({_modulation(a)})",
                quick=_QUICK_ARM_EPOCHS[name],
                range=POSITIVE_COUNT if a.course == "scheduled" else None,
            )
        else:
            out[f"{name}_decay"] = Param(
                "float", a.decay_rate, f"{a.shown}: protection lost per step", range=DECAY_RATE
            )
    return out


_TREATMENT_PARAMS = {  # shared by chapters 5 and 6, so chapter 6 reuses chapter 5's cached states
    **_DEPRESSED_STATE,
    "regrow_fraction": Param(
        "fraction", arms.arm("ketamine").regrow_fraction, "ketamine-like: fraction of pruned weights regrown"
    ),
    **_arm_params("epochs"),
    "workers": Param(
        "int",
        0,
        "processes the training runs go to side by side: 0 = one per CPU core "
        "(1 on a GPU), 1 = one after the other in the notebook's process",
    ),
    "scheduler": Param(
        "address",
        "",
        "a Dask scheduler's address (tcp://host:port) to send the training runs to; '' = this machine",
    ),
    "data_sets": Param(
        "str",
        "per_replicate",
        "data sets: 'per_replicate' (replicate s on its own, as study B) or 'shared' (study A's one data set)",
        choices=DATA_SETS,
    ),
    **_model_choices(),
}

register(Chapter("05_treatments", "Three routes out of the pruned state", dict(_TREATMENT_PARAMS)))

register(
    Chapter(
        "06_longitudinal_relapse",
        "Maintenance, discontinuation and manic relapse",
        {
            **_TREATMENT_PARAMS,
            "durations": Param(
                "ints",
                list(MaintenanceConfig().durations),
                "maintenance epochs tested (checkpoints of one run)",
                quick=[1, 2, 4],
                range=POSITIVE_COUNT,
            ),
            "maintenance_lr": Param("float", 1e-6, "maintenance learning rate (masked Adam)", range=LEARNING_RATE),
            "protection": Param("fraction", 1.0, "mood-stabiliser protection during maintenance"),
            "decay_steps": Param("int", 50, "protection decay steps after discontinuation"),
            **_arm_params("decay_rate"),
            "threshold": Param(
                "float", 60.0, "manic relapse if biased-stress accuracy (%) is below this", range=PERCENT
            ),
            "sensitivity_protections": Param(
                "fractions",
                [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
                "protection values left at test (sensitivity panel)",
            ),
            "sensitivity_thresholds": Param(
                "ints",
                [40, 45, 50, 55, 60, 65, 70, 75, 80],
                "relapse thresholds in % (sensitivity panel)",
                range=Range(0, 100, integer=True),
            ),
        },
    )
)

#: The quick profile's treatment epochs in the atlas (one epoch per arm, two for the scheduled one).
_ATLAS_QUICK_EPOCHS = {"ketamine_epochs": 1, "ssri_epochs": 2, "neurosteroid_epochs": 1}
_DEPTH = Range(-2, 3, integer=True)

register(
    Chapter(
        "07_robustness_atlas",
        "Do the conclusions survive?",
        {
            "seeds": Param("seeds", PAPER_SEEDS, "replicate seeds of every cell", quick=[0, 1]),
            "baseline_epochs": Param("int", 20, "baseline training epochs (lr 1e-3 x the lr factor)", quick=2),
            "sparsity": Param("fraction", 0.95, "pruning level of the depressed state", range=SPARSITY),
            "width_factors": Param(
                "fractions", [0.5, 2.0], "hidden widths times each factor", quick=[0.5], range=_FACTOR, empty_ok=True
            ),
            "depth_changes": Param(
                "ints",
                [-1, 1],
                "hidden layers fewer (-) or more (+): 512-unit layers removed or added",
                quick=[-1],
                range=_DEPTH,
                empty_ok=True,
            ),
            "task_sigmas": Param(
                "fractions",
                [0.4, 1.6],
                "class spreads of the task (the studies' 0.8)",
                quick=[1.6],
                range=_SPREAD,
                empty_ok=True,
            ),
            "global_scope": Param("bool", True, "include one global pruning threshold instead of one per layer"),
            "lr_factors": Param(
                "fractions",
                [0.5, 2.0],
                "every learning rate times each factor",
                quick=[2.0],
                range=_FACTOR,
                empty_ok=True,
            ),
            "init_stds": Param(
                "fractions",
                [0.01, 0.1],
                "SDs of regrown weights (the studies' 0.03)",
                quick=[0.1],
                range=_INIT_STD,
                empty_ok=True,
            ),
            "shared_data_set": Param(
                "bool", True, "include every replicate on study A's one data set (else one data set per replicate)"
            ),
            "regrow_fraction": Param(
                "fraction", 0.5, "study A's single regrowth (and the ketamine-like one)", range=REGIMEN_FRACTION
            ),
            "consolidation_epochs": Param(
                "int", 15, "consolidation epochs after it (lr 5e-4)", quick=1, range=POSITIVE_COUNT
            ),
            "acute_fraction": Param("fraction", 0.6, "regrowth of the acute moderate regimen", range=REGIMEN_FRACTION),
            "acute_epochs": Param("int", 15, "consolidation epochs of the acute moderate regimen", quick=1),
            "chronic_fraction": Param(
                "fraction", 0.4, "still-pruned weights regrown per long-chronic cycle", range=REGIMEN_FRACTION
            ),
            "chronic_epochs": Param("int", 5, "epochs per long-chronic cycle", quick=1, range=POSITIVE_COUNT),
            "chronic_cycles": Param("int", 10, "cycles of the long chronic regimen", quick=2, range=POSITIVE_COUNT),
            **{k: dataclasses.replace(p, quick=_ATLAS_QUICK_EPOCHS[k]) for k, p in _arm_params("epochs").items()},
            "maintenance_epochs": Param(
                "int", 0, "maintenance epochs (lr 1e-6) before discontinuation; 0: discontinued after the course"
            ),
            "threshold": Param(
                "float", 60.0, "manic relapse if biased-stress accuracy (%) is below this", range=PERCENT
            ),
            "workers": Param("int", 0, "processes the cells go to on this machine: 0 = one per CPU core"),
            "scheduler": Param(
                "address", "", "a Dask scheduler's address (tcp://host:port) to send the cells to; '' = this machine"
            ),
        },
        checks=(
            lambda v: check_distinct_atlas_regimens(
                v["regrow_fraction"],
                v["consolidation_epochs"],
                v["acute_fraction"],
                v["acute_epochs"],
                v["chronic_fraction"],
                v["chronic_epochs"],
                v["chronic_cycles"],
            ),
        ),  # fmt: skip
    )
)

register(
    Chapter(
        "explorer",
        "Explore the model",
        {
            "seeds": Param("seeds", [0, 1, 2], "replicate seeds of the explorer's ensemble", quick=[0, 1]),
            "baseline_epochs": Param("int", 20, "baseline training epochs (lr 1e-3)", quick=10, range=POSITIVE_COUNT),
            "train_subset": Param(
                "int",
                2000,
                "training samples per replicate for regrowth scores and consolidation",
                range=Range(128, 12000, integer=True),
            ),
            "consolidation_epochs": Param(
                "int",
                3,
                "consolidation epochs at the starting values and in the grid",
                quick=1,
                range=Range(0, 100, integer=True),
            ),
            "grid_sparsities": Param(
                "fractions",
                [0.9, 0.95, 0.97],
                "pruning levels of the precomputed grid",
                quick=[0.9, 0.95],
                range=EXPLORER_SPARSITY,
            ),
            "grid_regrow_fractions": Param(
                "fractions", [0.0, 0.25, 0.5], "regrowth fractions of the precomputed grid", quick=[0.0, 0.5]
            ),
            "show_grid": Param("bool", True, "precompute the grid for the static page (the live app skips it)"),
        },
    )
)


def chapter(name: str) -> Chapter:
    if name not in CHAPTERS:
        raise ValueError(f"unknown chapter {name!r}; chapters: {', '.join(CHAPTERS)}")
    return CHAPTERS[name]


def profile_values(name: str, profile: str) -> dict:
    """Every parameter's value at a profile (what the runner passes to papermill)."""
    check_choice("profile", profile, PROFILES)
    vals = {k: p.value(profile) for k, p in chapter(name).all_params.items()}
    vals["profile"] = profile
    return vals


def _check(name: str, p: Param, v: Any) -> Any:
    v = _check_kind(name, p, v)
    if p.rule is not None:
        p.rule(name, v)
    return v


def _check_kind(name: str, p: Param, v: Any) -> Any:
    if p.kind == "seeds":
        return list(check_seeds(name, v))
    allowed = p.allowed
    if p.kind in ("int", "float", "fraction") and allowed is not None:
        return allowed.check(name, v)
    if p.kind in ("fractions", "ints") and allowed is not None:
        if p.empty_ok and isinstance(v, (list, tuple)) and len(v) == 0:
            return []
        checked = list(allowed.check_list(name, v))
        return list(check_distinct(name, checked)) if p.distinct else checked
    if p.kind == "str":
        return check_choice(name, v, p.choices)
    if p.kind == "device":
        return check_device(name, v)
    if p.kind == "address":
        return check_scheduler(name, v)
    if p.kind == "bool":
        if not isinstance(v, bool):
            raise ValueError(f"{name} must be True or False; got {v!r}")
        return v
    raise AssertionError(f"unknown parameter kind {p.kind}")


def validate(name: str, values: dict) -> dict:
    """Check every parameter of chapter ``name`` found in ``values`` (e.g. ``globals()``).

    Returns the validated parameters as a dict; raises ``ValueError`` naming the first bad one.
    """
    ch = chapter(name)
    unknown = [k for k in injected_names(values) if k not in ch.all_params]
    if unknown:
        raise ValueError(
            f"chapter {name}: unknown parameter{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(map(repr, unknown))} injected; valid parameters: {', '.join(ch.all_params)}"
        )
    out = {}
    for k, p in ch.all_params.items():
        if k not in values:
            raise ValueError(f"chapter {name}: parameter {k!r} is missing")
        out[k] = _check(k, p, values[k])
    for check in ch.checks:
        try:
            check(out)
        except ValueError as exc:
            raise ValueError(f"chapter {name}: {exc}") from None
    if out["profile"] != "paper":
        scaled = [k for k, p in ch.params.items() if p.quick is not None and p.quick != p.default]
        if scaled and all(out[k] == ch.params[k].default for k in scaled):
            raise ValueError(
                f"chapter {name}: profile is {out['profile']!r} but {', '.join(scaled)} all hold their paper "
                f"values, so this would run the paper-scale experiment and file it as {out['profile']!r} "
                "results. Papermill's `-p profile quick` sets only the label: pass the quick values too "
                "(`pruneplast list` shows them) or use `pruneplast run --profile quick`."
            )
    if isinstance(values.get("In"), list):  # in a kernel (the notebook's globals()): the page says so
        note = profile_note(name, out)
        if note:
            print(note)
    return out


def differs_from_profile(name: str, values: dict) -> dict:
    """The parameters whose values differ from those of their profile (``values['profile']``):
    ``{name: {"used": value, "profile": the profile's value}}``; empty for a run of the profile."""
    ch = chapter(name)
    profile = values.get("profile", "paper")
    if profile not in PROFILES:
        return {}
    ref = profile_values(name, profile)
    plain = lambda v: json.dumps(v, sort_keys=True, default=str)  # noqa: E731 - [0, 1] == (0, 1)
    return {
        k: {"used": values[k], "profile": ref[k]}
        for k in ch.all_params
        if k in values
        and k != "profile"
        and plain(list(values[k]) if isinstance(values[k], tuple) else values[k]) != plain(ref[k])
    }


def profile_note(name: str, values: dict) -> str | None:
    """One line saying that a run's values are not its profile's, or None when they are."""
    diff = differs_from_profile(name, values)
    if not diff:
        return None
    shown = ", ".join(f"{k}={d['used']!r} (profile: {d['profile']!r})" for k, d in diff.items())
    return (
        f"Note: this run is filed under profile {values.get('profile')!r} but differs from it in {shown}; "
        "its results files record this (differs_from_profile), and it is not the profile's run."
    )


def injected_names(namespace: dict) -> list[str]:
    """Names assigned by papermill's injected-parameters cell, read from IPython's input history.

    Papermill appends a cell starting ``# Parameters`` after the notebook's parameters cell; in a
    kernel, ``In`` holds the sources run so far. Outside IPython (or before injection) this is empty.
    """
    import ast

    history = namespace.get("In")
    if not isinstance(history, list):
        return []
    names: list[str] = []
    for src in history:
        if isinstance(src, str) and src.lstrip().startswith("# Parameters"):
            try:
                tree = ast.parse(src)
            except SyntaxError:
                continue
            for node in tree.body:
                if isinstance(node, ast.Assign):
                    names += [t.id for t in node.targets if isinstance(t, ast.Name)]
    return list(dict.fromkeys(names))


def describe(name: str) -> str:
    """A table of a chapter's parameters: name, type, paper default, quick value, meaning."""
    ch = chapter(name)
    lines = [f"{ch.name}: {ch.title}"]
    for k, p in ch.all_params.items():
        q = "" if p.quick is None else f" (quick: {p.quick!r})"
        lines.append(f"  {k:<22} {p.kind:<9} default {p.default!r}{q}  {p.help}; allowed: {p.describe_range()}")
    return "\n".join(lines)
