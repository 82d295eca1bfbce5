"""The catalogue of bad inputs and faults that the tests try, and what a user gets for each.

``tests/test_faults.py`` runs every entry (a test there checks that each :data:`FAULTS` entry names
one of its tests and that each of its tests is listed here); the book's *Bad input and faults*
page is generated from this catalogue: it runs the command-line cases live, timing each, and lists
the others with the behaviour their test asserts.

* :data:`CLI_CASES`: ``pruneplast`` invocations that must fail before anything runs, with the exit
  code and a pattern of the message; :func:`run_cli` runs one in this process.
* :data:`FAULTS`: every other case: its area, what it tries, what the user gets, and its test.
* :data:`GUARANTEES`: what each command promises, whatever goes wrong.
"""

from __future__ import annotations

import io
import os
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
    env: tuple[tuple[str, str], ...] = ()  # environment variables set for the command

    @property
    def command(self) -> str:
        """The command line as a user types it (environment first, empty values quoted)."""
        words = [f"{k}={v!r}" if not v else f"{k}={v}" for k, v in self.env] + ["pruneplast"]
        return " ".join(words + [a if a and " " not in a else repr(a) for a in self.argv])


#: What each command promises whatever goes wrong (the cases below are the tests of it).
GUARANTEES: list[tuple[str, str]] = [
    (
        "every command",
        "Every check comes before any work: parameter names and values (the engine's ranges, repeated "
        "levels, combinations the engine would refuse), a scheduler address (its form, and that a Dask "
        "scheduler answers there within 3 s), every folder the command will write and the cache folder. "
        "A failed check is one line naming the parameter, option or path, and no kernel, worker or cell "
        "has started.",
    ),
    (
        "pruneplast run",
        "The executed notebook appears only when the run has finished; results files already in "
        "<out>/<profile> are neither deleted nor replaced before the run has written complete new ones, and "
        "a run that fails or is stopped leaves them as they were. Each file is written whole (a "
        "temporary name, then a rename), so nothing is ever half-written. One run per output folder.",
    ),
    (
        "pruneplast sweep",
        "Cells are validated one by one before the first is submitted; a cell is marked done only "
        "when its execution has finished, in its own attempt folder; the merged table is written whole. "
        "One sweep per output folder.",
    ),
    (
        "pruneplast book",
        "A chapter's results files stay in place until it has written their replacement (a chapter that "
        "fails leaves the previous results and no stamp); the HTML book is built beside the old one and "
        "swapped in by renaming, so the old book stays whole until the new one is complete.",
    ),
    (
        "pruneplast explore",
        "The app notebook's path, the cache and the port are checked before any work; Voila serves on the "
        "port given or not at all, so the address printed is the one served.",
    ),
    (
        "papermill",
        "The first code cell validates every injected value with the same checks; a run filed under a "
        "profile with other values says so on the page and records it in its results file "
        "(differs_from_profile).",
    ),
]


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
    # ----------------------------------------------------------------- every folder checked before work
    CliCase("output", "an empty output folder (--out '')", _run("--out", ""), 1, r"output folder \(--out\) is empty"),
    CliCase(
        "output",
        "an output folder below a file (--out README.md/x)",
        _run("--out", "README.md/x"),
        1,
        r"output folder \(--out\) .*README\.md/x cannot be created: .*README\.md is a file",
    ),
    CliCase(
        "output",
        "an empty cache folder ($PRUNEPLAST_CACHE set to '')",
        _run("--out", "_build/faults-run"),
        1,
        r"\$PRUNEPLAST_CACHE is set but empty",
        env=(("PRUNEPLAST_CACHE", ""),),
    ),
    CliCase(
        "output",
        "a cache folder that is a file ($PRUNEPLAST_CACHE=pyproject.toml)",
        _run("--out", "_build/faults-run"),
        1,
        r"cache folder \(\$PRUNEPLAST_CACHE\) .*pyproject\.toml exists and is not a folder",
        env=(("PRUNEPLAST_CACHE", "pyproject.toml"),),
    ),
    CliCase(
        "book",
        "a build folder that is a file (--build-dir pyproject.toml)",
        ("book", "--build-dir", "pyproject.toml"),
        1,
        r"build folder \(--build-dir\) .*pyproject\.toml exists and is not a folder",
    ),
    CliCase(
        "book",
        "a build folder that cannot be created (--build-dir /proc/pruneplast-book)",
        ("book", "--build-dir", "/proc/pruneplast-book"),
        1,
        r"build folder \(--build-dir\) /proc/pruneplast-book cannot be written",
    ),
    CliCase("book", "an empty build folder (--build-dir '')", ("book", "--build-dir", ""), 1, r"is empty; give a path"),
    CliCase(
        "book",
        "no page at a time (--jobs 0)",
        ("book", "--profile", "quick", "--build-dir", "_build/faults-book", "--jobs", "0"),
        2,
        r"--jobs must be an integer >= 1; got 0",
    ),
    CliCase(
        "book",
        "a results folder below a file ($PRUNEPLAST_RESULTS=pyproject.toml)",
        ("book", "--profile", "quick", "--build-dir", "_build/faults-book"),
        1,
        r"results folder \(\$PRUNEPLAST_RESULTS/<profile>\) .*pyproject\.toml/quick cannot be created: "
        r".*pyproject\.toml is a file",
        env=(("PRUNEPLAST_RESULTS", "pyproject.toml"),),
    ),
    CliCase(
        "book",
        "an empty $PRUNEPLAST_RESULTS",
        ("book", "--profile", "quick", "--build-dir", "_build/faults-book"),
        1,
        r"\$PRUNEPLAST_RESULTS is set but empty",
        env=(("PRUNEPLAST_RESULTS", ""),),
    ),
    CliCase(
        "book",
        "an empty cache folder ($PRUNEPLAST_CACHE set to '')",
        ("book", "--profile", "quick", "--build-dir", "_build/faults-book"),
        1,
        r"\$PRUNEPLAST_CACHE is set but empty",
        env=(("PRUNEPLAST_CACHE", ""),),
    ),
    CliCase(
        "sweep",
        "an output folder that is a file (--out pyproject.toml)",
        ("sweep", "02", "-g", "sparsity", "[0.9]", "--out", "pyproject.toml"),
        1,
        r"output folder \(--out\) .*pyproject\.toml exists and is not a folder",
    ),
    CliCase(
        "sweep",
        "an output folder that cannot be created (--out /proc/pruneplast-sweep)",
        ("sweep", "02", "-g", "sparsity", "[0.9]", "--out", "/proc/pruneplast-sweep"),
        1,
        r"output folder \(--out\) /proc/pruneplast-sweep cannot be written",
    ),
    CliCase(
        "sweep",
        "an empty output folder (--out '')",
        ("sweep", "02", "-g", "sparsity", "[0.9]", "--out", ""),
        1,
        r"output folder \(--out\) is empty",
    ),
    CliCase(
        "sweep",
        "an empty cache folder ($PRUNEPLAST_CACHE set to '')",
        ("sweep", "02", "-g", "sparsity", "[0.9]", "--out", "_build/faults-sweep"),
        1,
        r"\$PRUNEPLAST_CACHE is set but empty",
        env=(("PRUNEPLAST_CACHE", ""),),
    ),
    CliCase(
        "explore",
        "an app notebook path that is a folder (--out notebooks)",
        ("explore", "--out", "notebooks"),
        1,
        r"app notebook \(--out\) .*notebooks is a folder; give the path of a file \(\.ipynb\)",
    ),
    CliCase(
        "explore",
        "an app notebook that is not an .ipynb (--out app.txt)",
        ("explore", "--out", "_build/faults-app.txt"),
        1,
        r"must end in \.ipynb",
    ),
    CliCase("explore", "an empty app notebook path (--out '')", ("explore", "--out", ""), 1, r"is empty; give a path"),
    CliCase(
        "explore",
        "an app notebook in a folder that cannot be created (--out /proc/x/app.ipynb)",
        ("explore", "--out", "/proc/pruneplast-explore/app.ipynb"),
        1,
        r"the folder of app notebook \(--out\) /proc/pruneplast-explore cannot be written",
    ),
    CliCase(
        "explore",
        "an empty cache folder ($PRUNEPLAST_CACHE set to '')",
        ("explore", "--out", "_build/faults-app.ipynb"),
        1,
        r"\$PRUNEPLAST_CACHE is set but empty",
        env=(("PRUNEPLAST_CACHE", ""),),
    ),
    CliCase(
        "explore",
        "the same parameter twice (-p seeds [0] -p seeds [1])",
        ("explore", "-p", "seeds", "[0]", "-p", "seeds", "[1]"),
        2,
        r"parameter 'seeds' given twice",
    ),
    CliCase(
        "explore",
        "port 70000 (--serve 70000)",
        ("explore", "--serve", "70000"),
        2,
        r"port must be an integer \[1, 65535\]",
    ),
    # ----------------------------------------------------------------- scheduler addresses
    CliCase(
        "scheduler",
        "a scheduler address without tcp:// (-p scheduler localhost:8786)",
        _run("-p", "scheduler", "localhost:8786", chapter="05"),
        2,
        r"scheduler must be '' or a Dask scheduler address 'tcp://host:port' or 'tls://host:port'",
    ),
    CliCase(
        "scheduler",
        "a scheduler address without a port (-p scheduler tcp://127.0.0.1)",
        _run("-p", "scheduler", "tcp://127.0.0.1", chapter="06"),
        2,
        r"scheduler must be '' or a Dask scheduler address",
    ),
    CliCase(
        "scheduler",
        "a scheduler port out of range (-p scheduler tcp://127.0.0.1:99999)",
        _run("-p", "scheduler", "tcp://127.0.0.1:99999", chapter="07"),
        2,
        r"scheduler must be '' or a Dask scheduler address",
    ),
    CliCase(
        "scheduler",
        "an unreachable scheduler (-p scheduler tcp://127.0.0.1:1)",
        _run("-p", "scheduler", "tcp://127.0.0.1:1", chapter="05"),
        1,
        r"scheduler: could not reach the Dask scheduler at 'tcp://127\.0\.0\.1:1' within 3 s \(Connection refused\)",
    ),
    CliCase(
        "scheduler",
        "a scheduler host that does not resolve (-p scheduler tcp://no-such-host.invalid:8786)",
        _run("-p", "scheduler", "tcp://no-such-host.invalid:8786", chapter="07"),
        1,
        r"scheduler: could not reach the Dask scheduler at 'tcp://no-such-host\.invalid:8786'",
    ),
    CliCase(
        "scheduler",
        "sweep --scheduler without tcp:// (--scheduler localhost:8786)",
        ("sweep", "02", "-g", "sparsity", "[0.9]", "--scheduler", "localhost:8786"),
        2,
        r"--scheduler must be '' or a Dask scheduler address",
    ),
    CliCase(
        "scheduler",
        "sweep --scheduler unreachable (--scheduler tcp://127.0.0.1:1)",
        (
            "sweep",
            "02",
            "-g",
            "sparsity",
            "[0.9]",
            "--scheduler",
            "tcp://127.0.0.1:1",
            "--out",
            "_build/faults-sweep",
        ),
        1,
        r"--scheduler: could not reach the Dask scheduler at 'tcp://127\.0\.0\.1:1' within 3 s",
    ),
    CliCase(
        "scheduler",
        "a sweep whose chapter is sent to an unreachable scheduler (sweep 05 -p scheduler tcp://127.0.0.1:1)",
        ("sweep", "05", "-p", "scheduler", "tcp://127.0.0.1:1", "-g", "ssri_epochs", "[1, 2]"),
        1,
        r"scheduler: could not reach the Dask scheduler",
    ),
    # ----------------------------------------------------------------- repeated levels
    *(
        CliCase(
            "repeated levels",
            f"an atlas level list repeating a value (-p {name} {value})",
            _run("-p", name, value, chapter="07"),
            2,
            rf"{name} must not repeat a value; got .* \(.* are the same level\)",
        )
        for name, value in (
            ("width_factors", "[0.5, 0.5]"),
            ("depth_changes", "[1, 1]"),
            ("task_sigmas", "[0.4, 0.40]"),
            ("lr_factors", "[2, 2.0]"),
            ("init_stds", "[0.01, 0.0100000001]"),
        )
    ),
    CliCase(
        "repeated levels",
        "an explorer grid repeating a pruning level (-p grid_sparsities [0.9, 0.9])",
        _run("-p", "grid_sparsities", "[0.9, 0.9]", chapter="explorer"),
        2,
        r"grid_sparsities must not repeat a value",
    ),
    CliCase(
        "repeated levels",
        "an explorer grid repeating a regrowth fraction (-p grid_regrow_fractions [0, 0.0])",
        _run("-p", "grid_regrow_fractions", "[0, 0.0]", chapter="explorer"),
        2,
        r"grid_regrow_fractions must not repeat a value",
    ),
    CliCase(
        "repeated levels",
        "pruneplast explore with a repeated grid level",
        ("explore", "-p", "grid_sparsities", "[0.9, 0.9]"),
        2,
        r"grid_sparsities must not repeat a value",
    ),
    CliCase(
        "repeated levels",
        "a maintenance duration twice (-p durations [1, 1])",
        _run("-p", "durations", "[1, 1]", chapter="06"),
        2,
        r"durations must not repeat a value",
    ),
    CliCase(
        "repeated levels",
        "a sensitivity threshold twice (-p sensitivity_thresholds [40, 40])",
        _run("-p", "sensitivity_thresholds", "[40, 40]", chapter="06"),
        2,
        r"sensitivity_thresholds must not repeat a value",
    ),
    CliCase(
        "repeated levels",
        "a sensitivity protection twice (-p sensitivity_protections [0.5, 0.5])",
        _run("-p", "sensitivity_protections", "[0.5, 0.5]", chapter="06"),
        2,
        r"sensitivity_protections must not repeat a value",
    ),
    CliCase(
        "repeated levels",
        "a sweep over atlas level lists, one repeating a level",
        ("sweep", "07", "-g", "width_factors", "[[0.5], [2.0, 2.0]]"),
        2,
        r"grid value width_factors\[1\] .*width_factors must not repeat a value",
    ),
    CliCase(
        "parameters",
        "an atlas with no single regrowth (-p regrow_fraction 0): its regimen regrows something",
        _run("-p", "regrow_fraction", "0", chapter="07"),
        2,
        r"regrow_fraction must be in \(0\.0, 1\.0\]; got 0\.0",
    ),
    CliCase(
        "parameters",
        "an atlas without consolidation (-p consolidation_epochs 0): the consolidated regimen would be the regrown one",
        _run("-p", "consolidation_epochs", "0", chapter="07"),
        2,
        r"consolidation_epochs must be an integer >= 1",
    ),
    CliCase(
        "parameters",
        "an atlas whose single regrowth equals its acute regimen (-p regrow_fraction 0.6)",
        _run("-p", "regrow_fraction", "0.6", "--profile", "paper", chapter="07"),
        2,
        r"acute_epochs=15, acute_fraction=0\.6, consolidation_epochs=15, regrow_fraction=0\.6 make the "
        r"consolidated and acute moderate regimens the same experiment",
    ),
    CliCase(
        "parameters",
        "an acute regimen fraction of 1.0 at the quick profile (the same experiment as full acute)",
        _run("-p", "acute_fraction", "1.0", chapter="04"),
        2,
        r"make the acute moderate and full acute regimens the same experiment",
    ),
]


def run_cli(case: CliCase) -> tuple[int, str, float]:
    """Run one case in this process; returns (exit status, stderr, seconds)."""
    from pruneplast import cli

    err, out = io.StringIO(), io.StringIO()
    saved = {k: os.environ.get(k) for k, _ in case.env}
    os.environ.update(dict(case.env))
    t0 = time.perf_counter()
    try:
        with redirect_stderr(err), redirect_stdout(out):
            try:
                code = cli.main(list(case.argv))
            except SystemExit as exc:  # argparse
                code = int(exc.code or 0)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return code, err.getvalue().strip(), time.perf_counter() - t0


def matches(case: CliCase, message: str) -> bool:
    return re.search(case.message, message, re.S) is not None


@dataclass(frozen=True)
class Fault:
    area: str
    tried: str  # what a user did, in words
    gets: str  # what the user gets, as the test asserts it
    test: str  # the test function of tests/test_faults.py that checks it


FAULTS: list[Fault] = [
    Fault(
        "Python API",
        "operators.train(..., lr=-1e-3) (a negative learning rate)",
        "ValueError: lr must be in (0.0, 1.0]; got -0.001 - before the first step",
        "test_train_rejects_a_negative_learning_rate",
    ),
    Fault(
        "Python API",
        "operators.train(..., lr=nan)",
        "ValueError: lr must be a number in (0.0, 1.0]; got nan",
        "test_train_rejects_a_nan_learning_rate",
    ),
    Fault(
        "Python API",
        "operators.train with one learning rate per replica, but the wrong count",
        "ValueError: lr must be one learning rate or one per replica (1); got 2",
        "test_train_rejects_a_per_replica_lr_of_the_wrong_length",
    ),
    Fault(
        "Python API",
        "training that diverges (weights become inf or NaN)",
        "FloatingPointError naming the replicas and the epoch: 'non-finite weights (NaN or inf) in 1 "
        "of 1 replicas (seed 0) after epoch 1 of train; training diverged: lower the learning rate "
        "...'",
        "test_training_stops_on_non_finite_weights",
    ),
    Fault(
        "Python API",
        "stress.evaluate on a network with NaN weights",
        "FloatingPointError: non-finite weights ... (found before evaluating), instead of a finite accuracy",
        "test_evaluation_refuses_non_finite_weights",
    ),
    Fault(
        "Python API",
        "RunConfig(seeds=[5_000_000]) (its data seed would overflow numpy)",
        "ValueError: seeds[0] must be an integer [0, 4294966]; got 5000000",
        "test_seed_whose_data_seed_overflows_is_rejected",
    ),
    Fault(
        "Python API",
        "check_device('cuda:7') / 'xpu' / 'meta'",
        "ValueError naming the device: not available here, or the engine runs on 'cpu' or 'cuda' only",
        "test_devices_that_cannot_be_used_are_rejected",
    ),
    Fault(
        "papermill",
        "papermill -p profile quick and nothing else (paper-scale values under the quick label)",
        "the first code cell fails: 'profile is quick but seeds, baseline_epochs all hold their paper"
        " values, so this would run the paper-scale experiment and file it as quick results ...'",
        "test_papermill_quick_label_on_paper_values_fails_in_the_first_cell",
    ),
    Fault(
        "papermill",
        "papermill -p sedes '[0]' (a misspelled parameter name)",
        "the first code cell fails: \"unknown parameter 'sedes' injected; valid parameters: profile, device, ...\"",
        "test_papermill_misspelled_parameter_fails",
    ),
    Fault(
        "command line",
        "pruneplast run on a jupytext-converted .ipynb of chapter 2 under another name",
        "runs as chapter 2: the chapter's parameters, ranges and quick values apply (found by its NOTEBOOK line)",
        "test_converted_chapter_under_another_name_is_that_chapter",
    ),
    Fault(
        "command line",
        "pruneplast run on a file named .ipynb that is not JSON",
        "error: ... is not a readable Jupyter notebook (NotJSONError: ...), exit 2",
        "test_non_json_ipynb_is_a_clear_error",
    ),
    Fault(
        "cache",
        "a truncated or empty cached baseline (a full disk, a killed copy)",
        "warning: cache file <path> is unreadable (...); recomputing it - the recomputed state equals the lost one",
        "test_damaged_baseline_cache_is_reported_and_recomputed",
    ),
    Fault(
        "cache",
        "a damaged cached set of treated states (chapters 5 and 6)",
        "the same warning with the file's path; the states are recomputed and the file rewritten",
        "test_damaged_treated_cache_is_recomputed",
    ),
    Fault(
        "files",
        "results and cache files under the usual umask 022",
        "files readable by others like any new file (0644), not 0600",
        "test_results_and_cache_files_get_the_umask_mode",
    ),
    Fault(
        "files",
        "every results .json",
        "records the machine facts that decide bitwise equality (machine: CPU model, vector "
        "extensions, torch CPU capability, BLAS, threads, versions)",
        "test_results_json_records_the_machine",
    ),
    Fault(
        "disk",
        "the disk fills up while papermill writes the partly executed notebook",
        "the error, and no half-written .failed.ipynb (only a readable one is kept)",
        "test_a_cut_short_partial_notebook_is_not_kept",
    ),
    Fault(
        "output",
        "an output folder that cannot be written (read-only)",
        "error: output folder (--out) <path> cannot be written (Permission denied) - before anything runs, exit 1",
        "test_read_only_output_folder_fails_before_running",
    ),
    Fault(
        "output",
        "a cache folder ($PRUNEPLAST_CACHE) that cannot be created",
        "error: cache folder ($PRUNEPLAST_CACHE) <path> cannot be written (...) - before anything runs, exit 1",
        "test_unusable_cache_folder_fails_before_running",
    ),
    Fault(
        "signals",
        "SIGTERM to pruneplast run while chapter 5 trains in worker processes",
        "'terminated (SIGTERM): the run was stopped and its kernel and worker processes have ended "
        "...', exit 143; no worker process left, no temporary folder left, no executed notebook "
        "written",
        "test_sigterm_ends_kernel_and_workers_and_leaves_no_temporary_folder",
    ),
    Fault(
        "signals",
        "Ctrl-C (SIGINT) during a run",
        "one short message 'interrupted (Ctrl-C): the run was stopped ...' instead of 66-174 lines of"
        " tracebacks, exit 130",
        "test_ctrl_c_prints_a_short_message",
    ),
    Fault(
        "concurrency",
        "a second pruneplast run into the same --out while the first is running",
        "the second stops at once: 'output folder <path> is in use by another pruneplast run (pid N);"
        " wait for it to finish or choose another --out', exit 1; once the first has ended the folder"
        " is free again",
        "test_concurrent_runs_into_one_output_folder",
    ),
    Fault(
        "Python API",
        "two build.execute calls into one folder at once (the Python API, no lock)",
        "each writes its own partial notebook (named with its process id); neither publishes the other's",
        "test_partial_notebooks_are_per_process",
    ),
    Fault(
        "sweep",
        "a sweep cell's done.json that is not JSON, not a cell record, or the record of another cell",
        "warning: sweep record <path> is not readable JSON (...) / not a cell record (...) / the "
        "record of other parameters; running the cell again - the rerun recomputes that cell only, "
        "the merged table is whole",
        "test_a_damaged_sweep_record_is_reported_and_the_cell_rerun",
    ),
    Fault(
        "concurrency",
        "a second pruneplast sweep into the same --out while the first is running",
        "the second stops before any cell: 'output folder <path> is in use by another pruneplast "
        "sweep or run (pid N); wait for it to finish or choose another --out', exit 1",
        "test_a_second_sweep_into_one_folder_is_refused",
    ),
    Fault(
        "cache",
        "a cached baseline file that loads but holds another object (a table, a dict of other keys, "
        "the state of another seed or of other layer sizes or dtypes)",
        "warning: cache file <path> does not hold what it should (baseline: ...); recomputing it - "
        "instead of KeyError: 'gain' on every later run; the recomputed state equals the lost one",
        "test_a_cache_file_holding_another_object_is_reported_and_recomputed",
    ),
    Fault(
        "cache",
        "a cached set of treated states, or an atlas cell, that loads but is another object",
        "the same one-line warning naming the file and what it holds; the entry is deleted and recomputed",
        "test_cached_treated_states_and_atlas_cells_are_checked",
    ),
    Fault(
        "Python API",
        "EnsembleMLP.from_state_dict of something that is not a network's state dict",
        "ValueError: state: is not a network's state dict (no 'gain', ...) instead of KeyError: 'gain'",
        "test_from_state_dict_says_what_is_missing",
    ),
    Fault(
        "Python API",
        "operators.regrow (and every other operator) given data built for other seeds or another replica count",
        "ValueError before any work: 'data holds replicas [1] but the network holds [0]; build the "
        "data for the network's seeds (EnsembleData.for_replicas(net.seeds))' - regrow used to go on "
        "with the wrong data",
        "test_every_operator_refuses_data_of_other_replicas",
    ),
    Fault(
        "Python API",
        "operators and stress tests given data of another dtype, shape or device or with no samples, "
        "or a network in float64 or of no replicas",
        "ValueError naming the argument and what it holds: data.x['train']: has dtype torch.float64 "
        "...; net.weights[0]: has dtype torch.float64, but the engine computes in torch.float32 ...; "
        "holds 0 samples",
        "test_every_operator_checks_dtype_shape_and_samples",
    ),
    Fault(
        "Python API",
        "regrow(..., scores=...) or regrowth_selectivity(..., grown) with tensors built for another network",
        "ValueError: scores[0]: has shape (2, 8, 2); expected (1, 8, 2) (or another dtype, or another layer count)",
        "test_regrowth_tensors_must_fit_the_network",
    ),
    Fault(
        "Python API",
        "seeds as a numpy array (np.arange(2)) or of numpy integers, in RunConfig, EnsembleData and EnsembleMLP",
        "accepted as the same seeds: the same data and the same weights as the list [0, 1]",
        "test_numpy_seeds_are_accepted_as_the_same_seeds",
    ),
    Fault(
        "Python API",
        "EnsembleMLP.init with no seeds, or with a seed twice",
        "ValueError: seeds must contain at least 1 replicate seed; got 0 / seeds must not repeat a seed; got [0, 0]",
        "test_init_rejects_no_seeds_and_repeated_seeds",
    ),
    Fault(
        "Python API",
        "EnsembleMLP.init / ModelChoices with 2,000 hidden layers of 4,096 units (~134 GB of weights per replica)",
        "ValueError before allocating: 'net: a network of 2000 hidden layers of up to 4,096 units "
        "(33,537,679,360 weights per replica) needs about 704.5 GB to train 1 replica (...), but this"
        " machine has N GB'",
        "test_a_network_larger_than_the_machine_is_refused_with_the_estimate",
    ),
    Fault(
        "command line",
        "pruneplast run 02 -p hidden '[4096, 4096, ... (2,000 layers)]'",
        "error: hidden: a network of 2000 hidden layers ... needs about 704.5 GB ..., but this "
        "machine has N GB; use fewer or narrower layers - exit 2, before anything runs",
        "test_cli_refuses_hidden_layers_larger_than_the_machine",
    ),
    Fault(
        "files",
        "a chapter's results CSV that is empty, not a table or lacks the tidy columns (a results file"
        " cannot be recomputed from the cache)",
        "DamagedResults: results file <path> is not a readable table / not a tidy results table (no "
        "column value); rerun the notebook to write it again (pruneplast run <notebook> --profile "
        "<profile>)",
        "test_a_damaged_results_file_is_refused_with_its_path_and_the_fix",
    ),
    Fault(
        "book",
        "pruneplast book with a build folder that is a file, cannot be created or holds a file where a folder "
        "goes (exec/), with results of the profile already there",
        "error: build folder (--build-dir) <path> exists and is not a folder / cannot be created: <path> is a "
        "file - before any page runs, exit 1; the results files are untouched (they used to be deleted first)",
        "test_book_checks_every_folder_before_work_and_keeps_results",
    ),
    Fault(
        "book",
        "a chapter that fails in pruneplast book after writing new results",
        "the previous results files are put back as they were; one line 'executing <page> failed: RuntimeError: "
        "...; the results files it had were kept (no partly executed notebook)' instead of five chained "
        "tracebacks naming a file that is not there; a chapter that succeeds replaces them and removes the ones "
        "it did not rewrite",
        "test_a_failing_chapter_keeps_the_results_it_would_have_replaced",
    ),
    Fault(
        "output",
        "pruneplast run that fails after its chapter wrote new results into <out>/<profile>",
        "error: execution failed: ..., exit 1; the results files that were there before are as they were",
        "test_a_failing_run_keeps_the_results_in_its_output_folder",
    ),
    Fault(
        "output",
        "booktools.run(request, folder) with a folder that check_run_outputs did not check",
        "TypeError: folders must be check_run_outputs' RunFolders - before anything runs; pruneplast run "
        "checks its output, results and cache folders once each, before the kernel starts",
        "test_a_run_checks_each_of_its_folders_once_before_the_kernel",
    ),
    Fault(
        "output",
        "a run or book killed (SIGKILL) while a chapter runs",
        "the previous results files are kept under a second name and put back at the next start: a killed "
        "run's files never pass for a finished run's",
        "test_results_left_by_a_killed_run_are_put_back",
    ),
    Fault(
        "book",
        "the disk fills up while the HTML book is copied into place",
        "the previous HTML book stays whole (the new one is built beside it and swapped in by renaming); no "
        "half-copied folder is left",
        "test_the_html_book_is_swapped_in_whole",
    ),
    Fault(
        "output",
        "pruneplast run --out DIR where DIR/<profile> (the results folder) is a file",
        "error: results folder (<out>/<profile>) <path> exists and is not a folder - one line, before the "
        "chapter runs (it used to be found when saving, after the run), exit 1",
        "test_a_results_folder_that_is_a_file_fails_before_the_run",
    ),
    Fault(
        "output",
        "a relative $PRUNEPLAST_CACHE (the kernel runs in the notebook's folder)",
        "made absolute before the kernel starts: the folder checked is the folder written",
        "test_a_relative_cache_folder_is_the_one_the_kernel_uses",
    ),
    Fault(
        "book",
        "pruneplast book where a later page has a bad parameter value",
        "the error before the first page runs (every page's parameters are validated first)",
        "test_every_page_is_validated_before_the_first_runs",
    ),
    Fault(
        "scheduler",
        "a scheduler address where something accepts connections but stays silent, or answers as another server (HTTP)",
        "RuntimeError within about 3 s: 'scheduler: could not reach the Dask scheduler at <address> within 3 s "
        "(connected, but no Dask greeting / something answers there, but not a Dask scheduler)' (it used to "
        "hang for 30 s and fail in the kernel with 55 lines)",
        "test_a_port_that_does_not_greet_like_a_dask_scheduler_is_refused_within_seconds",
    ),
    Fault(
        "papermill",
        "papermill -p scheduler tcp://127.0.0.1:1 (or an address without tcp://) for chapters 5, 6 and 7",
        "the first code cell fails within seconds: 'scheduler: could not reach the Dask scheduler ...' or "
        "'scheduler must be '' or a Dask scheduler address 'tcp://host:port' or 'tls://host:port''",
        "test_papermills_first_cell_refuses_an_unreachable_scheduler",
    ),
    Fault(
        "Python API",
        "atlas.settings(width_factors=[0.5, 0.5000001]) or GridSpec(sparsities=(0.9, 0.90))",
        "ValueError: width_factors must not repeat a value; got [...] (0.5 and 0.5000001 are the same level) - "
        "the same check (config.check_distinct) as the command line and papermill",
        "test_the_engine_refuses_repeated_levels_as_validation_does",
    ),
    Fault(
        "papermill",
        "a tiny papermill run under the default (paper) profile: -y 'seeds: [0]' -p baseline_epochs 1",
        "the page says 'Note: this run is filed under profile 'paper' but differs from it in seeds=[0] "
        "(profile: [0, 1]), baseline_epochs=1 (profile: 20) ...', and its results .json records "
        "differs_from_profile (empty for the profile's own run)",
        "test_a_run_filed_under_a_profile_with_other_values_says_so",
    ),
    Fault(
        "explore",
        "pruneplast explore --serve PORT on a port already in use",
        "error: port PORT on 127.0.0.1 is in use ...; choose another with --serve PORT - before anything is "
        "written, exit 1; Voila serves on the port given or not at all, so the URL printed is the one served",
        "test_explore_on_a_busy_port_says_so_before_any_work",
    ),
    Fault(
        "papermill",
        "papermill notebooks/01 (converted) -y 'seeds: [0]' -p baseline_epochs 1, no profile given (paper)",
        "runs, and its executed notebook says 'Note: this run is filed under profile 'paper' but differs from "
        "it in seeds=[0] ...'; its results .json records differs_from_profile",
        "test_a_tiny_papermill_run_under_the_paper_profile_is_marked_on_its_page_and_in_its_results",
    ),
]
