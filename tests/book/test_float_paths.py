"""The notebook checks hold under another float path and still catch a broken operator.

Another CPU kind gives other trained weights from the same seeds (its matrix kernels round
differently and training is chaotic). One machine can imitate that: on Intel CPUs with AVX-512, a
narrower instruction set (``MKL_ENABLE_INSTRUCTIONS=AVX2``: the kernels of a CPU without AVX-512),
or elsewhere MKL's conditional numerical reproducibility switch (``MKL_CBWR=COMPATIBLE``) makes the
matrix products take other code paths. The narrower instruction set is tried first: it is the
cheaper change (chapter 2 at the quick profile took 54 s under it and 94 s under
``MKL_CBWR=COMPATIBLE`` on an Intel Xeon), and either proves the same thing, that the checks hold
for trained weights that differ from the reference's. The 95%-sparse replicas, which the book
trains with the compiled step by default (:mod:`pruneplast.kernels.fused`, no MKL inside), take the
standard step there (``PRUNEPLAST_FUSED=0``), so every phase trains on another float path.

* :func:`changed_float_path` finds such a setting on this machine and proves that it changes one
  epoch's trained weights (otherwise the tests below would prove nothing and are skipped, saying so).
* Chapter 2, whose checked accuracies move most under such a change (the cliff), is executed under
  it (and ``PRUNEPLAST_FUSED=0``) and must pass the same checks as ``make test``'s quick book
  (``make test-float-path`` does it for every chapter).
* Each of two deliberately broken operators, injected into the chapter's kernel at start-up, makes
  chapter 2's checks fail, on the quantities that measure what was broken. Both are injected into
  one run of the chapter: each is required to fail quantities that the other cannot change (the
  broken regrowth touches only the gradient-guided arm, which the stress tests do not compute;
  the broken stress tests touch no regrowth score), so the one run proves for each what a run of
  its own would, at the cost of one chapter instead of two.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pruneplast import booktools

#: Every test here executes a chapter or trains in a subprocess: make test runs them, make check does not.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

#: Settings tried in turn; the first that changes one epoch's weights on this machine is used.
CANDIDATES = ({"MKL_ENABLE_INSTRUCTIONS": "AVX2"}, {"MKL_CBWR": "COMPATIBLE"})
#: Chapters executed under the changed float path in ``make test`` (``make test-float-path``: all).
FLOAT_PATH_CHAPTERS = tuple(os.environ.get("PRUNEPLAST_FLOAT_PATH_CHAPTERS", "02_pruning_cliff").split())

_HASH = textwrap.dedent("""
    import hashlib, torch
    from pruneplast.config import TaskConfig, TrainConfig
    from pruneplast.data import EnsembleData
    from pruneplast.network import EnsembleMLP
    from pruneplast.operators import train
    from pruneplast.progress import set_progress
    set_progress(False)
    torch.set_num_threads(1)
    data = EnsembleData.build([0, 1], TaskConfig(n_train=3000))
    net = EnsembleMLP.init([0, 1])
    train(net, data, TrainConfig(epochs=1, lr=1e-3))
    print(hashlib.sha256(b"".join(w.detach().numpy().tobytes() for w in net.weights)).hexdigest())
""")


@functools.cache
def _cached_hash(env_items: frozenset) -> str:
    return _weights_hash(dict(env_items))


def _weights_hash(env_changes: dict) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS")}
    env.update(env_changes)
    out = subprocess.run([sys.executable, "-c", _HASH], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


@functools.lru_cache(maxsize=1)
def changed_float_path() -> dict | None:
    """The first of :data:`CANDIDATES` that changes one epoch's weights here, or None."""
    plain = _cached_hash(frozenset())
    for env in CANDIDATES:
        if _cached_hash(frozenset(env.items())) != plain:
            return env
    return None


def _need_path() -> dict:
    env = changed_float_path()
    if env is None:
        pytest.skip(f"none of {CANDIDATES} changes the trained weights on this machine (no MKL kernels to switch)")
    return env


def other_path(env: dict) -> dict:
    """The changed MKL setting ``env``, and the sparse replicas on the standard step instead of the
    compiled one the book takes by default."""
    return {**env, "PRUNEPLAST_FUSED": "0"}


def test_a_changed_float_path_changes_trained_weights():
    env = _need_path()
    plain = _cached_hash(frozenset())  # each hash below is a process of its own, trained from scratch
    assert _cached_hash(frozenset(env.items())) != plain
    assert _weights_hash({}) == plain, "one epoch is not even reproducible on one path"


def _start(stem: str, folder: Path, env_changes: dict, pythonpath: Path | None = None) -> subprocess.Popen:
    """``pruneplast run <stem> --profile quick`` into ``folder``, one torch thread, its own cache."""
    env = {k: v for k, v in os.environ.items() if k not in ("MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "PRUNEPLAST_FUSED")}
    env.update(
        env_changes,
        PRUNEPLAST_CACHE=str(folder / "cache"),
        PRUNEPLAST_PROGRESS="0",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
    )
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), os.environ.get("PYTHONPATH")]))
    exe = Path(sys.executable).with_name("pruneplast")
    return subprocess.Popen(
        [str(exe), "run", stem, "--profile", "quick", "--out", str(folder / "out")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _failures(stem: str, folder: Path, proc: subprocess.Popen) -> list[str]:
    import nbformat

    log = proc.communicate(timeout=900)[0]
    assert proc.returncode == 0, f"{stem} failed to run:\n{log[-3000:]}"
    nb = nbformat.read(folder / "out" / f"{stem}.ipynb", as_version=4)
    return booktools.check_against_reference(ROOT / "notebooks" / f"{stem}.md", nb, ROOT)


#: Broken operators, all patched into the kernel of one run by a ``sitecustomize`` module before the
#: chapter imports the package, each with the check that must catch it and the rows of that check
#: it must fail: rows the other broken operators cannot change. Gradient-guided regrowth choosing
#: random positions changes only the gradient-guided arm (the random arm draws the same positions
#: either way, and the baseline and pruned stages come before any regrowth), so the stress tests'
#: failures must show in those rows; the stress tests do not enter the regrowth selectivity (the
#: share of gradient score the regrown connections capture).
MUTATIONS = {
    "gradient regrowth chooses random positions": (
        """
        import dataclasses
        import pruneplast.operators as op
        _regrow = op.regrow
        def regrow(net, data, config=op.RegrowConfig(), tag="regrow", scores=None):
            if config.method == "gradient":
                config, scores = dataclasses.replace(config, method="random"), None
            return _regrow(net, data, config, tag, scores)
        op.regrow = regrow
        """,
        "regrowth selectivity",
        ("regrowth selectivity | gradient ",),
    ),
    "stress tests use internal-noise SDs 20% too large": (
        """
        import dataclasses
        import pruneplast.stress as stress
        _resolve = stress.resolve
        def resolve(condition):
            c = _resolve(condition)
            return dataclasses.replace(c, sigma_int=1.2 * c.sigma_int)
        stress.resolve = resolve
        """,
        "accuracy",
        ("accuracy | baseline / ", "accuracy | pruned / ", "accuracy | recovered / random / "),
    ),
}


@pytest.fixture(scope="module")
def chapter_runs(tmp_path_factory):
    """Chapter 2 under the changed float path and under the broken operators, side by side.

    Each run is a separate ``pruneplast run`` process with one torch thread (the thread count is a
    further change of the float path for the first; it does not matter for the broken ones).
    Returns {"float path": (folder, process), "broken": (folder, process)}; the float-path
    chapters after the first run in the test.
    """
    env = changed_float_path()
    runs = {}
    if env is not None:
        folder = tmp_path_factory.mktemp("float-path")
        runs["float path"] = (folder, _start("02_pruning_cliff", folder, other_path(env)))
    folder = tmp_path_factory.mktemp("broken")
    site = folder / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("".join(textwrap.dedent(code) for code, _, _ in MUTATIONS.values()))
    runs["broken"] = (folder, _start("02_pruning_cliff", folder, {}, pythonpath=site))
    yield runs
    for _, proc in runs.values():
        if proc.poll() is None:
            proc.kill()


@pytest.fixture(scope="module")
def broken_failures(chapter_runs) -> list[str]:
    """The failed checks of chapter 2 run with every broken operator of :data:`MUTATIONS`."""
    folder, proc = chapter_runs["broken"]
    return _failures("02_pruning_cliff", folder, proc)


@pytest.mark.parametrize("stem", FLOAT_PATH_CHAPTERS)
def test_checks_pass_under_a_changed_float_path(stem, chapter_runs, tmp_path):
    env = _need_path()
    if stem == "02_pruning_cliff":
        folder, proc = chapter_runs["float path"]
    else:
        folder, proc = tmp_path, _start(stem, tmp_path, other_path(env))
    failures = _failures(stem, folder, proc)
    assert not failures, f"{stem} under {env} (one thread):\n" + "\n".join(failures)


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_a_broken_operator_fails_the_checks(mutation, broken_failures):
    """The broken operator fails its check on rows no other broken operator of the run can change
    (:data:`MUTATIONS`), so the failure is its own, as in a run where it alone is broken."""
    _, caught_by, rows = MUTATIONS[mutation]
    assert all(r.startswith(caught_by + " | ") for r in rows)
    mine = [f for f in broken_failures if f.startswith(rows)]
    assert mine, (
        f"{mutation}: expected the {caught_by!r} check to fail on rows starting {rows}; failures:\n"
        + "\n".join(broken_failures)
    )
    print(f"{mutation}: {len(mine)} failed quantities of its own, e.g.\n  " + "\n  ".join(mine[:4]))
