"""The catalogue of bad inputs and faults that the tests try, and what a user gets for each.

``tests/test_faults.py`` runs every entry; the book's *Bad input and faults* page is generated from
this catalogue: it runs the command-line cases live (they fail before any work, in well under a
second each) and lists the others with the behaviour their test asserts.

* :data:`CLI_CASES`: ``pruneplast`` invocations that must fail before anything runs, with the exit
  code and a pattern of the message.
* :func:`fault` registers a test function with its area, what it tries and what the user gets.
"""

from __future__ import annotations

import io
import re
import time
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass


@dataclass(frozen=True)
class CliCase:
    area: str
    tried: str  # what a user typed, in words or as the command
    argv: tuple[str, ...]
    code: int  # the exit status
    message: str  # a regular expression the error message must match


def _run(*extra: str, chapter: str = "02") -> tuple[str, ...]:
    return ("run", chapter, *extra)


CLI_CASES: list[CliCase] = [
    CliCase("command line", "a chapter that does not exist", _run(chapter="99"), 2, r"matches no notebook"),
    CliCase("command line", "an ambiguous chapter prefix", _run(chapter="0"), 2, r"is ambiguous"),
    CliCase(
        "command line",
        "a path to a markdown file that is not a notebook",
        ("run", "README.md"),
        2,
        r"not a jupytext notebook",
    ),
    CliCase(
        "command line", "a path to a notebook that does not exist", ("run", "/nonexistent/x.md"), 2, r"does not exist"
    ),
    CliCase(
        "command line",
        "a misspelled parameter",
        _run("-p", "sedes", "[0]"),
        2,
        r"unknown parameter 'sedes'.*valid parameters",
    ),
    CliCase(
        "command line",
        "the same parameter twice",
        _run("-p", "sparsity", "0.9", "-p", "sparsity", "0.8"),
        2,
        r"given twice",
    ),
    CliCase("command line", "the profile given as a parameter", _run("-p", "profile", "paper"), 2, r"use --profile"),
    CliCase(
        "parameters",
        "sparsity 1.0 (nothing left)",
        _run("-p", "sparsity", "1.0"),
        2,
        r"sparsity must be in \[0\.0, 1\.0\)",
    ),
    CliCase("parameters", "negative sparsity", _run("-p", "sparsity", "-0.1"), 2, r"sparsity must be in"),
    CliCase("parameters", "sparsity NaN", _run("-p", "sparsity", ".nan"), 2, r"sparsity must be a number"),
    CliCase(
        "parameters",
        "a sweep level of 100%",
        _run("-p", "sweep_levels", "[0.5, 1.0]"),
        2,
        r"sweep_levels\[1\] must be in \[0\.0, 0\.999\]",
    ),
    CliCase(
        "parameters",
        "a sweep of one level",
        _run("-p", "sweep_levels", "[0.5]"),
        2,
        r"sweep_levels must hold at least 2",
    ),
    CliCase(
        "parameters",
        "sweep levels out of order",
        _run("-p", "sweep_levels", "[0.9, 0.5]"),
        2,
        r"sweep_levels must be strictly increasing",
    ),
    CliCase("parameters", "no seeds", _run("-p", "seeds", "[]"), 2, r"at least 1 replicate seed"),
    CliCase("parameters", "a repeated seed", _run("-p", "seeds", "[0, 0]"), 2, r"must not repeat a seed"),
    CliCase(
        "parameters", "a negative seed", _run("-p", "seeds", "[-1]"), 2, r"seeds\[0\] must be an integer \[0, 4294966\]"
    ),
    CliCase(
        "parameters",
        "a seed whose data seed overflows numpy (s*1000+300 >= 2**32)",
        _run("-p", "seeds", "[4294967]"),
        2,
        r"\[0, 4294966\]",
    ),
    CliCase("parameters", "seeds as text", _run("-p", "seeds", "abc"), 2, r"seeds must be a non-empty list"),
    CliCase("parameters", "a fractional seed", _run("-p", "seeds", "[1.5]"), 2, r"seeds\[0\] must be an integer"),
    CliCase(
        "parameters",
        "negative epochs",
        _run("-p", "baseline_epochs", "-1"),
        2,
        r"baseline_epochs must be an integer >= 0",
    ),
    CliCase(
        "parameters",
        "fractional epochs",
        _run("-p", "baseline_epochs", "2.5"),
        2,
        r"baseline_epochs must be an integer",
    ),
    CliCase(
        "parameters",
        "epochs given as true",
        _run("-p", "consolidation_epochs", "true"),
        2,
        r"consolidation_epochs must be an integer",
    ),
    CliCase(
        "parameters",
        "a regrowth fraction above 1",
        _run("-p", "regrow_fraction", "1.5"),
        2,
        r"regrow_fraction must be in \[0\.0, 1\.0\]",
    ),
    CliCase("devices", "device 'mps' (not supported)", _run("-p", "device", "mps"), 2, r"runs on 'cpu' or 'cuda'"),
    CliCase("devices", "device 'meta'", _run("-p", "device", "meta"), 2, r"runs on 'cpu' or 'cuda'"),
    CliCase(
        "devices",
        "device 'gpu' (not a torch device)",
        _run("-p", "device", "gpu"),
        2,
        r"device must be 'cpu' or 'cuda'",
    ),
    CliCase("devices", "device 'cpu:1'", _run("-p", "device", "cpu:1"), 2, r"one CPU device"),
    CliCase(
        "parameters",
        "no consolidation epochs in chapter 3",
        _run("-p", "max_epochs", "0", chapter="03"),
        2,
        r"max_epochs must be an integer >= 1",
    ),
    CliCase(
        "parameters",
        "two chronic cycle counts instead of three",
        _run("-p", "chronic_cycles", "[1, 2]", chapter="04"),
        2,
        r"chronic_cycles must hold exactly 3",
    ),
    CliCase(
        "parameters",
        "chronic cycle counts decreasing",
        _run("-p", "chronic_cycles", "[3, 2, 1]", chapter="04"),
        2,
        r"chronic_cycles must be strictly increasing",
    ),
    CliCase(
        "parameters",
        "an acute regimen that regrows nothing",
        _run("-p", "acute_fraction", "0", chapter="04"),
        2,
        r"acute_fraction must be in \(0\.0, 1\.0\]",
    ),
    CliCase(
        "parameters",
        "SSRI-like course of 0 epochs",
        _run("-p", "ssri_epochs", "0", chapter="05"),
        2,
        r"ssri_epochs must be an integer >= 1",
    ),
    CliCase(
        "parameters", "workers -1", _run("-p", "workers", "-1", chapter="05"), 2, r"workers must be an integer >= 0"
    ),
    CliCase(
        "parameters",
        "maintenance learning rate 0",
        _run("-p", "maintenance_lr", "0", chapter="06"),
        2,
        r"maintenance_lr must be in \(0\.0, 1\.0\]",
    ),
    CliCase(
        "parameters",
        "maintenance learning rate 2",
        _run("-p", "maintenance_lr", "2", chapter="06"),
        2,
        r"maintenance_lr must be in \(0\.0, 1\.0\]",
    ),
    CliCase(
        "parameters",
        "a maintenance duration of 0 epochs",
        _run("-p", "durations", "[0, 1]", chapter="06"),
        2,
        r"durations\[0\] must be an integer >= 1",
    ),
    CliCase(
        "parameters",
        "a relapse threshold of 120%",
        _run("-p", "threshold", "120", chapter="06"),
        2,
        r"threshold must be in \[0\.0, 100\.0\]",
    ),
    CliCase(
        "parameters",
        "a sensitivity threshold of 150%",
        _run("-p", "sensitivity_thresholds", "[40, 150]", chapter="06"),
        2,
        r"sensitivity_thresholds\[1\] must be an integer \[0, 100\]",
    ),
    CliCase(
        "parameters",
        "a protection decay rate of 1.5 per step",
        _run("-p", "ketamine_decay", "1.5", chapter="06"),
        2,
        r"ketamine_decay must be in \[0\.0, 1\.0\]",
    ),
    CliCase(
        "parameters",
        "an explorer grid at 99.5% sparsity",
        _run("-p", "grid_sparsities", "[0.995]", chapter="explorer"),
        2,
        r"grid_sparsities\[0\] must be in \[0\.0, 0\.99\]",
    ),
    CliCase(
        "parameters",
        "an explorer training subset of 50 samples",
        _run("-p", "train_subset", "50", chapter="explorer"),
        2,
        r"train_subset must be an integer \[128, 12000\]",
    ),
    CliCase(
        "output",
        "an output folder inside /proc (cannot be created)",
        _run("--out", "/proc/pruneplast-out"),
        1,
        r"output folder \(--out\) /proc/pruneplast-out cannot be written",
    ),
    CliCase(
        "output", "an output folder that is a file", _run("--out", "pyproject.toml"), 1, r"exists and is not a folder"
    ),
    CliCase(
        "sweep",
        "the same grid parameter twice (-g sparsity ... -g sparsity ...)",
        ("sweep", "02", "-g", "sparsity", "[0.9]", "-g", "sparsity", "[0.8]"),
        2,
        r"grid parameter 'sparsity' given twice",
    ),
    CliCase(
        "sweep",
        "the same fixed parameter twice (-p seeds ... -p seeds ...)",
        ("sweep", "02", "-p", "seeds", "[0]", "-p", "seeds", "[1]", "-g", "sparsity", "[0.9]"),
        2,
        r"parameter 'seeds' given twice",
    ),
    CliCase(
        "sweep",
        "a parameter both fixed and swept (-p sparsity 1.5 -g sparsity [0.9])",
        ("sweep", "02", "-p", "sparsity", "1.5", "-g", "sparsity", "[0.9]"),
        2,
        r"'sparsity' is given both fixed \(-p\) and as a grid \(-g\)",
    ),
    CliCase(
        "sweep",
        "a grid value out of range (-g sparsity [0.9, 1.0])",
        ("sweep", "02", "-g", "sparsity", "[0.9, 1.0]"),
        2,
        r"grid value sparsity\[1\] = 1\.0 \(-g sparsity\): sparsity must be in \[0\.0, 1\.0\)",
    ),
    CliCase(
        "sweep",
        "a grid value written twice (-g sparsity [0.9, 0.90])",
        ("sweep", "02", "-g", "sparsity", "[0.9, 0.90]"),
        2,
        r"grid values of 'sparsity' repeat a value",
    ),
    CliCase(
        "sweep",
        "a grid of seed lists, one repeating a seed",
        ("sweep", "02", "-g", "seeds", "[[0], [1, 1]]"),
        2,
        r"grid value seeds\[1\] .*must not repeat a seed",
    ),
]


def run_cli(case: CliCase) -> tuple[int, str, float]:
    """Run one case in this process; returns (exit status, stderr, seconds)."""
    from pruneplast import cli

    err, out = io.StringIO(), io.StringIO()
    t0 = time.perf_counter()
    with redirect_stderr(err), redirect_stdout(out):
        try:
            code = cli.main(list(case.argv))
        except SystemExit as exc:  # argparse
            code = int(exc.code or 0)
    return code, err.getvalue().strip(), time.perf_counter() - t0


def matches(case: CliCase, message: str) -> bool:
    return re.search(case.message, message, re.S) is not None


@dataclass(frozen=True)
class Fault:
    area: str
    tried: str
    gets: str
    test: str


FAULTS: list[Fault] = []


def fault(area: str, tried: str, gets: str):
    """Register the decorated test in :data:`FAULTS` (what it tries, what the user gets)."""

    def wrap(fn):
        FAULTS.append(Fault(area, tried, gets, fn.__name__))
        return fn

    return wrap
