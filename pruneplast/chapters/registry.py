"""The chapters' registry: a parameter (:class:`Param`), a chapter (:class:`Chapter`), and the
checks of a set of values.

The chapters themselves are declared in the modules beside this one (``study_a``, ``study_b``,
``robustness``, ``explore``), each :func:`register`-ing its chapters. :func:`validate` checks a set
of values (names, types, the engine's ranges, the checks of several values together); the
command line calls it once before anything runs and the first code cell of every chapter calls it
again, so a bad papermill override fails early with a clear message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..config import (
    COUNT,
    FRACTION,
    SEED,
    Range,
    check_choice,
    check_device,
    check_distinct,
    check_scheduler,
    check_seeds,
)

PROFILES = ("paper", "quick")


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
    #: chapters whose cached states this one starts from (chapter 6 from chapter 5's treated
    #: networks): a book that executes pages side by side starts it after them
    reuses: tuple[str, ...] = ()

    @property
    def all_params(self) -> dict:
        return {**COMMON, **self.params}


CHAPTERS: dict[str, Chapter] = {}


def register(chapter: Chapter) -> Chapter:
    CHAPTERS[chapter.name] = chapter
    return chapter


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
