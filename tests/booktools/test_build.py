"""The build pipeline: parameters, the rerun command, stamps, toc, atomic results.

Notebook executions here use tiny throw-away notebooks in a temporary folder (a few seconds each:
mostly kernel start-up); the chapters themselves are exercised in ``test_notebooks.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from conftest import MYST_HEADER

from pruneplast import booktools, chapters, results

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "pruneplast.cli"]

TINY = MYST_HEADER + textwrap.dedent("""\
    # Tiny

    ```{code-cell} ipython3
    :tags: [parameters]

    profile = "paper"
    sparsity = 0.95
    seeds = [0, 1]
    ```

    ```{code-cell} ipython3
    import pandas as pd
    from pruneplast.config import check_real, check_seeds
    from pruneplast.results import save_results

    check_real("sparsity", sparsity, 0.0, 1.0)
    check_seeds("seeds", seeds)
    df = pd.DataFrame({"experiment": "t", "condition": "c", "seed": seeds, "metric": "m",
                       "value": [sparsity * (s + 1) for s in seeds]})
    print(save_results(df, "tiny", profile, {"sparsity": sparsity, "seeds": seeds}))
    ```
    """)


def _bare_page(title: str, code: str) -> str:
    """A page whose content does not matter: a parameters cell and ``code`` (no imports, so its
    kernel only starts and runs ``code``)."""
    head = TINY.split("# Tiny")[0]
    return (
        head
        + f'# {title}\n\n```{{code-cell}} ipython3\n:tags: [parameters]\n\nprofile = "paper"\n```\n\n'
        + (f"```{{code-cell}} ipython3\n{code}\n```\n")
    )


FAILS = "raise ValueError('this page fails')"
# a cell that says it runs (a file running-<kernel pid> in the page's folder), then sleeps
SLOW = "import os, time\nopen(f'running-{os.getpid()}', 'w').close()\ntime.sleep(120)"
# a cell that fails once a SLOW cell beside it runs (or after two minutes)
FAILS_BESIDE_SLOW = (
    "import glob, time\nt0 = time.time()\nwhile not glob.glob('running-*') and time.time() - t0 < 120:\n"
    "    time.sleep(0.1)\n" + FAILS
)


@pytest.fixture()
def tiny(tmp_path) -> Path:
    p = tmp_path / "tiny.md"
    p.write_text(TINY, encoding="utf-8")
    return p


# --------------------------------------------------------------------------- parameters
@pytest.mark.parametrize(
    "text, value",
    [
        ("0.9", 0.9),
        ("[0, 1]", [0, 1]),
        ("1e-3", 0.001),
        ("7", 7),
        ("abc", "abc"),
        ("true", True),
        ("cpu", "cpu"),
        ("[0.5, 0.9]", [0.5, 0.9]),
    ],
)
def test_parse_value_yaml_literals(text, value):
    assert booktools.parse_value(text) == value
    assert type(booktools.parse_value(text)) is type(value)


def _first_chapter() -> Path:
    present = booktools.chapter_sources()
    if not present:
        pytest.skip("no chapter notebook present yet")
    return present[0]


def test_unknown_parameter_lists_valid_names():
    path = _first_chapter()
    with pytest.raises(booktools.ParameterError) as exc:
        booktools.parameters_for(path, "quick", {"sparsty": 0.9})
    msg = str(exc.value)
    assert "unknown parameter 'sparsty'" in msg
    for name, p in chapters.chapter(path.stem).all_params.items():
        assert name in msg and p.kind in msg and repr(p.default) in msg


@pytest.mark.parametrize(
    "name, value, expect",
    [
        ("seeds", "abc", "seeds must be a non-empty list"),
        ("seeds", [], "at least 1"),
        ("profile", "paper", "use --profile"),
    ],
)
def test_bad_values_fail_with_engine_message(name, value, expect):
    path = _first_chapter()
    with pytest.raises(booktools.ParameterError, match=expect):
        booktools.parameters_for(path, "quick", {name: value})


def test_sparsity_out_of_range_fails_for_every_chapter_that_has_it():
    for path in booktools.chapter_sources():
        if "sparsity" in chapters.chapter(path.stem).all_params:
            with pytest.raises(booktools.ParameterError, match=r"sparsity must be in \[0.0, 1.0\); got 1.5"):
                booktools.parameters_for(path, "quick", {"sparsity": 1.5})


def test_profile_values_and_overrides_for_chapters():
    for path in booktools.chapter_sources():
        ch = chapters.chapter(path.stem)
        quick = booktools.parameters_for(path, "quick")
        assert quick == chapters.validate(path.stem, chapters.profile_values(path.stem, "quick"))
        assert quick["profile"] == "quick"
        paper = booktools.parameters_for(path, "paper")
        assert paper == {k: p.default for k, p in ch.all_params.items()}
        assert booktools.parameters_for(path, "quick", {"seeds": [3]})["seeds"] == [3]


@pytest.mark.slow
def test_parameters_of_a_plain_notebook_come_from_its_cell(tiny):
    info = booktools.parameter_info(tiny)
    assert list(info) == ["profile", "sparsity", "seeds"]
    assert info["sparsity"].kind == "float" and info["sparsity"].default == 0.95
    assert booktools.parameters_for(tiny, "quick") == {"profile": "quick", "sparsity": 0.95, "seeds": [0, 1]}
    with pytest.raises(booktools.ParameterError, match="valid parameters"):
        booktools.parameters_for(tiny, "quick", {"nope": 1})


def test_find_notebook_by_name_prefix_and_path(tiny):
    path = _first_chapter()
    assert booktools.find_notebook(path.stem) == path
    assert booktools.find_notebook(path.stem[:2]) == path
    assert booktools.find_notebook(tiny) == tiny.resolve()
    with pytest.raises(booktools.ParameterError, match="matches no notebook"):
        booktools.find_notebook("zz_not_a_chapter")


# --------------------------------------------------------------------------- the rerun command
def test_a_run_finds_its_notebook_and_checks_its_values_once(tmp_path, monkeypatch, capsys):
    """``pruneplast run 02 -p sparsity 0.9``: the notebook found once, the value read and checked
    once (:func:`booktools.request`), and the checked values are what the execution gets."""
    from pruneplast import cli
    from pruneplast.booktools import notebooks, outputs

    found: list = []
    checked: list = []
    executed: list = []
    find, validate = notebooks.find_notebook, chapters.validate
    monkeypatch.setattr(notebooks, "find_notebook", lambda *a, **k: found.append(a[0]) or find(*a, **k))
    monkeypatch.setattr(chapters, "validate", lambda *a, **k: checked.append(a[0]) or validate(*a, **k))
    monkeypatch.setattr(outputs, "execute", lambda path, out, params, **kw: executed.append((path, params)))
    monkeypatch.setenv("PRUNEPLAST_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(ROOT)
    assert cli.main(["run", "02", "-p", "sparsity", "0.9", "--out", str(tmp_path / "run")]) == 0
    assert found == ["02"] and checked == ["02_pruning_cliff"]
    ((path, params),) = executed
    want = chapters.validate(
        "02_pruning_cliff", {**chapters.profile_values("02_pruning_cliff", "quick"), "sparsity": 0.9}
    )
    assert path == ROOT / "notebooks" / "02_pruning_cliff.md" and params == want
    assert "running 02_pruning_cliff at profile 'quick' with sparsity=0.9" in capsys.readouterr().out


def test_cli_unknown_parameter_fails_before_running(tmp_path):
    path = _first_chapter()
    out = tmp_path / "never"
    t0 = time.perf_counter()
    proc = subprocess.run(
        CLI + ["run", path.stem, "-p", "no_such_param", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 2, proc.stderr
    assert "unknown parameter 'no_such_param'" in proc.stderr
    for name in chapters.chapter(path.stem).all_params:
        assert name in proc.stderr
    assert not out.exists(), "nothing may run (or be written) for an unknown parameter"
    assert time.perf_counter() - t0 < 60


@pytest.mark.slow
def test_cli_bad_value_fails_before_running(tmp_path):
    path = _first_chapter()
    out = tmp_path / "never"
    proc = subprocess.run(
        CLI + ["run", path.stem, "-p", "seeds", "abc", "--out", str(out)], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 2 and "seeds must be a non-empty list" in proc.stderr
    assert not out.exists()


def test_cli_list_shows_every_chapter_and_parameter():
    proc = subprocess.run(CLI + ["list"], capture_output=True, text=True, cwd=ROOT, check=True)
    for name, ch in chapters.CHAPTERS.items():
        assert name in proc.stdout
        for k in ch.all_params:
            assert k in proc.stdout


@pytest.mark.slow
def test_cli_run_writes_notebook_and_results(tiny, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        CLI + ["run", str(tiny), "-p", "sparsity", "0.5", "-p", "seeds", "[2, 3]", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert (out / "tiny.ipynb").exists() and str(out / "tiny.ipynb") in proc.stdout
    df = pd.read_csv(out / "quick" / "tiny.csv")
    assert list(df["seed"]) == [2, 3] and list(df["value"]) == [1.5, 2.0]
    assert str(out / "quick" / "tiny.csv") in proc.stdout
    assert not list(out.glob("*.partial.ipynb"))


@pytest.mark.slow
def test_bad_papermill_override_fails_first_cell(tiny, tmp_path):
    """Bypassing our checks, papermill itself injects a bad value: the first cell raises ValueError."""
    import papermill as pm

    for params, message in (({"sparsity": 1.5}, "sparsity must be in"), ({"seeds": "abc"}, "seeds must be")):
        with pytest.raises(pm.PapermillExecutionError) as exc:
            booktools.execute(tiny, tmp_path / "bad.ipynb", {"profile": "quick", **params}, results_root=tmp_path)
        assert exc.value.ename == "ValueError" and message in exc.value.evalue
        assert not (tmp_path / "bad.ipynb").exists() and (tmp_path / "bad.failed.ipynb").exists()
        assert not (tmp_path / "quick" / "tiny.csv").exists()
        kept = nbformat.read(tmp_path / "bad.failed.ipynb", as_version=4)
        assert any(o.get("ename") == "ValueError" for c in kept.cells for o in c.get("outputs", [])), (
            "the kept notebook lacks the error"
        )


@pytest.mark.slow
def test_a_page_is_saved_while_it_runs_at_most_every_save_interval(tiny, tmp_path, monkeypatch):
    """Papermill saves a running page's partial notebook at its start, then at most every
    SAVE_EVERY_S seconds, and at its end; not at the start and end of every cell (each save
    serialises the whole notebook)."""
    import papermill.engines as engines

    from pruneplast.booktools import execution

    saves = []
    real = engines.write_ipynb
    monkeypatch.setattr(engines, "write_ipynb", lambda nb, path: (saves.append(path), real(nb, path)))
    booktools.execute(tiny, tmp_path / "ok.ipynb", {"profile": "quick"}, results_root=tmp_path)
    assert len(saves) == 2, f"{len(saves)} saves (want start, end) of a page shorter than {execution.SAVE_EVERY_S} s"
    monkeypatch.setattr(execution, "SAVE_EVERY_S", 0.0)
    saves.clear()
    booktools.execute(tiny, tmp_path / "ok.ipynb", {"profile": "quick"}, results_root=tmp_path)
    assert len(saves) > 2 * len(nbformat.read(tmp_path / "ok.ipynb", as_version=4).cells) - 2


def test_execution_waits_for_late_outputs_of_a_cell(tiny, tmp_path, monkeypatch):
    """A busy machine may deliver a cell's last outputs seconds after its "done" reply: the kernel
    client waits IOPUB_TIMEOUT for them (Jupyter's 4 s would drop them with a logged warning)."""
    import papermill as pm

    seen = {}

    def fake(nb, output, **kwargs):
        seen.update(kwargs)
        raise RuntimeError("stop here")

    monkeypatch.setattr(pm, "execute_notebook", fake)
    with pytest.raises(RuntimeError, match="stop here"):
        booktools.execute(tiny, tmp_path / "out.ipynb", {"profile": "quick"}, results_root=tmp_path)
    assert seen["iopub_timeout"] == booktools.IOPUB_TIMEOUT >= 60


CONNECTION = (
    "import json, os\nfrom ipykernel.connect import get_connection_info\n"
    "open(os.environ['CONNECTION_OUT'], 'w').write(get_connection_info())"
)


@pytest.mark.skipif(os.name != "posix", reason="Unix-domain sockets")
def test_kernels_listen_on_sockets_in_folders_of_their_own(tmp_path, monkeypatch):
    """A page's kernel listens on Unix-domain sockets in a private folder under $TMPDIR, removed
    when it ends (no TCP ports, which jupyter_client picks before the kernel binds them, so that
    two kernels started at once could be handed the same); where no such folder can be made, TCP
    as before."""
    from pruneplast.booktools import kernel

    page = tmp_path / "conn.md"
    page.write_text(_bare_page("Connection", CONNECTION))
    out = tmp_path / "conn.json"
    monkeypatch.setenv("CONNECTION_OUT", str(out))
    import tempfile

    scratch = Path(tempfile.mkdtemp(prefix="pp-", dir="/tmp"))  # short: pytest's own paths may not be
    monkeypatch.setenv("TMPDIR", str(scratch))
    try:
        booktools.execute(page, tmp_path / "conn.ipynb", {"profile": "quick"}, results_root=tmp_path)
    finally:
        monkeypatch.delenv("TMPDIR")
        leftovers = list(scratch.iterdir())
        shutil.rmtree(scratch, ignore_errors=True)
    assert leftovers == []
    info = json.loads(out.read_text())
    folder = Path(info["ip"]).parent
    assert info["transport"] == "ipc" and folder.name.startswith("pruneplast-kernel-"), info
    assert folder.parent == scratch and len(os.fsencode(info["ip"] + "-99999")) <= kernel.IPC_PATH_MAX
    assert not folder.exists(), "the kernel's socket folder outlived it"
    monkeypatch.setattr(kernel, "_ipc_folder", lambda: None)
    booktools.execute(page, tmp_path / "conn.ipynb", {"profile": "quick"}, results_root=tmp_path)
    assert json.loads(out.read_text())["transport"] == "tcp"


@pytest.mark.skipif(os.name != "posix", reason="Unix-domain sockets")
def test_socket_folders_where_the_temporary_folder_cannot_hold_them(tmp_path, monkeypatch):
    """A $TMPDIR whose path is too long for a socket's address: the folder goes to /tmp."""
    from pruneplast.booktools import kernel

    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    monkeypatch.setenv("TMPDIR", str(deep))
    folder = kernel._ipc_folder()
    try:
        assert folder is not None and Path(folder).parent == Path("/tmp")
        assert list(deep.iterdir()) == [], "the folder it could not use was left behind"
    finally:
        if folder is not None:
            os.rmdir(folder)


@pytest.mark.skipif(os.name != "posix", reason="Unix-domain sockets")
def test_two_kernels_given_the_same_ports_both_start():
    """The race a side-by-side build met: two kernels started at once, handed the same ports.
    Each binds its own socket files (its ports are only their names), so both answer and live (on
    TCP the second could not bind, and died)."""
    import asyncio

    from pruneplast.booktools.kernel import _ipc_folder, kernel_manager

    probe = _ipc_folder()
    if probe is None:
        pytest.skip("no folder here can hold Unix-domain sockets")
    os.rmdir(probe)

    async def both():
        managers = [kernel_manager()(kernel_name="python3") for _ in range(2)]
        for km in managers:
            km.cache_ports = False  # keep the ports given here
            for i, name in enumerate(("shell", "iopub", "stdin", "control", "hb")):
                setattr(km, f"{name}_port", 40001 + i)
        clients = []
        try:
            await asyncio.gather(*(km.start_kernel() for km in managers))
            assert [km.transport for km in managers] == ["ipc", "ipc"]
            clients = [km.client() for km in managers]
            for kc in clients:
                kc.start_channels()
            await asyncio.gather(*(kc.wait_for_ready(timeout=60) for kc in clients))
            await asyncio.sleep(1)
            assert all([await km.is_alive() for km in managers]), "a kernel died"
            return [km.ip for km in managers]
        finally:
            for kc in clients:
                kc.stop_channels()
            await asyncio.gather(*(km.shutdown_kernel(now=True) for km in managers if km.has_kernel))

    ips = asyncio.run(both())
    assert len(set(ips)) == 2 and not any(Path(ip).parent.exists() for ip in ips)


# --------------------------------------------------------------------------- stamps and the book
def test_stamp_depends_on_notebook_package_parameters_and_extras(tiny, tmp_path, monkeypatch):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "mod.py").write_text("x = 1\n")
    (pkg / "style.mplstyle").write_text("lines.linewidth: 1\n")
    monkeypatch.setattr(booktools.stamps, "PACKAGE_DIR", pkg)
    s0 = booktools.stamp(tiny, {"a": 1})
    assert booktools.stamp(tiny, {"a": 1}) == s0
    assert booktools.stamp(tiny, {"a": 2}) != s0
    (pkg / "style.mplstyle").write_text("lines.linewidth: 2\n")  # a non-Python package file counts
    s1 = booktools.stamp(tiny, {"a": 1})
    assert s1 != s0
    (pkg / "mod.py").write_text("x = 2\n")
    assert booktools.stamp(tiny, {"a": 1}) != s1
    extra = tmp_path / "r.csv"
    extra.write_text("1\n")
    s2 = booktools.stamp(tiny, {"a": 1}, [extra], tmp_path)
    extra.write_text("2\n")
    assert booktools.stamp(tiny, {"a": 1}, [extra], tmp_path) != s2
    s3 = booktools.stamp(tiny, {"a": 1})
    tiny.write_text(TINY.replace("# Tiny", "# Tiny, edited"))
    assert booktools.stamp(tiny, {"a": 1}) != s3


def _tiny_project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "book").mkdir(parents=True)
    (root / "book" / "intro.md").write_text("# Intro\n")
    (root / "book" / "tiny.md").write_text(TINY)
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/tiny\n")
    (root / "_config.yml").write_text("title: t\n")
    return root


@pytest.mark.slow
def test_execute_book_skips_only_on_matching_stamp(tmp_path, monkeypatch, capsys):
    """A page is executed again exactly when its stamp no longer matches: after a results file of
    its profile, the benchmark results or the notebook changed, and for another profile.

    The first execution and that of the edited notebook are real (the second's page shows the
    edit); the others, where the test is which pages the stamps send to execution and not what
    an execution writes, go to a stand-in that writes the page as the last real execution did."""
    from pruneplast.booktools import book

    root = _tiny_project(tmp_path)
    monkeypatch.setenv("PRUNEPLAST_RESULTS", str(tmp_path / "res"))
    assert booktools.toc_files(root) == ["book/intro", "book/tiny"]
    first = booktools.execute_book("quick", tmp_path / "b", root)
    assert [r["executed"] for r in first] == [True]
    executed = tmp_path / "b" / "exec" / "quick" / "book" / "tiny.ipynb"
    assert executed.exists()
    assert [r["executed"] for r in booktools.execute_book("quick", tmp_path / "b", root)] == [False]
    assert "up to date" in capsys.readouterr().out
    real, ran = book.execute, []

    def stand_in(src, out, params, **kw):
        ran.append((Path(src).name, params["profile"]))
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_bytes(executed.read_bytes())

    monkeypatch.setattr(book, "execute", stand_in)
    # a results file of the profile changed: a non-chapter page that may read it re-executes
    (tmp_path / "res" / "quick" / "other.csv").write_text("x\n1\n")
    assert [r["executed"] for r in booktools.execute_book("quick", tmp_path / "b", root)] == [True]
    # new benchmark results (make bench): a non-chapter page that may render them re-executes
    (root / "benchmarks").mkdir()
    (root / "benchmarks" / "results.json").write_text("{}")
    assert [r["executed"] for r in booktools.execute_book("quick", tmp_path / "b", root)] == [True]
    assert ran == [("tiny.md", "quick")] * 2
    # an edited notebook re-executes (for real: the page shows the edit); so does another profile
    monkeypatch.setattr(book, "execute", real)
    (root / "book" / "tiny.md").write_text(TINY.replace("# Tiny", "# Tiny, edited"))
    assert [r["executed"] for r in booktools.execute_book("quick", tmp_path / "b", root)] == [True]
    assert "# Tiny, edited" in executed.read_text()
    monkeypatch.setattr(book, "execute", stand_in)
    assert [r["executed"] for r in booktools.execute_book("paper", tmp_path / "b", root)] == [True]
    assert ran[-1] == ("tiny.md", "paper")
    assert [r["executed"] for r in booktools.execute_book("quick", tmp_path / "b", root)] == [False]
    stage = booktools.stage_book("quick", tmp_path / "b", root)
    assert (stage / "book" / "tiny.ipynb").exists() and not (stage / "book" / "tiny.md").exists()
    assert (stage / "book" / "intro.md").exists() and (stage / "_toc.yml").exists()


@pytest.mark.slow
def test_a_build_that_stops_keeps_the_timings_it_measured(tmp_path, monkeypatch):
    """The page before the failing one is measured and kept in the timings file; what either page
    holds does not matter here (bare pages: the one a statement, the other a raise)."""
    root = _tiny_project(tmp_path)
    (root / "book" / "tiny.md").write_text(_bare_page("Tiny", "x = 1"))
    monkeypatch.setenv("PRUNEPLAST_RESULTS", str(tmp_path / "res"))
    (root / "book" / "bad.md").write_text(_bare_page("Bad", FAILS))
    (root / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nchapters:\n  - file: book/tiny\n  - file: book/bad\n"
    )
    with pytest.raises(RuntimeError, match="bad"):
        booktools.execute_book("quick", tmp_path / "b", root)
    rec = json.loads((tmp_path / "b" / "timings-quick.json").read_text())
    assert [p["page"] for p in rec["pages"]] == ["book/tiny"] and rec["pages"][0]["seconds"] > 0
    assert rec["complete"] is False and rec["failed_page"] == "book/bad" and rec["html_s"] is None
    assert not list((tmp_path / "b").glob("*.tmp"))


@pytest.mark.slow
def test_pages_side_by_side_execute_and_stop_at_the_first_failure(tmp_path, monkeypatch):
    """``jobs=2``: every page executed, in a process of its own with one torch thread, the
    records in toc order; pages that are not chapters side by side, then checked again one at a
    time (the second's stamp covers the first's results file, so it is executed again where it
    started before that file was written, and a second build finds every stamp matching); a
    failing page stops the page beside it (its kernel ends, nothing is written for it), on the
    build's SIGINT even where the build was started with SIGINT ignored, and is named in the
    error and in the timings; Ctrl-C ends every page and kernel.

    Every page is bare (a parameters cell and one cell, nothing imported that the check does not
    need): the first writes a results file, the second checks its torch threads; the failing
    build runs a cell that sleeps and one that raises once the sleeping cell beside it runs, so
    the page it stops is executing a cell then; the interrupted build has two sleeping pages
    only, and is interrupted once both cells run, so every page it started is running then."""
    # two threads by default here, as outside the tests: the pages' one thread must come from the build
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setenv("MKL_NUM_THREADS", "2")
    root = _tiny_project(tmp_path)
    monkeypatch.setenv("PRUNEPLAST_RESULTS", str(tmp_path / "res"))
    mark = f"side-by-side-{os.getpid()}"
    monkeypatch.setenv("PRUNEPLAST_TEST_MARK", mark)
    # the first page writes a results file (plainly: what it holds does not matter), the second
    # checks its torch threads
    writes = "import os, pathlib\nd = pathlib.Path(os.environ['PRUNEPLAST_RESULTS'], 'quick')\n"
    writes += "d.mkdir(parents=True, exist_ok=True)\n(d / 'tiny.csv').write_text('x\\n1\\n')"
    (root / "book" / "tiny.md").write_text(_bare_page("Tiny", writes))
    threads = "import torch\nassert torch.get_num_threads() == 1, torch.get_num_threads()"
    (root / "book" / "tiny2.md").write_text(_bare_page("Tiny two", threads))
    toc = "format: jb-book\nroot: book/intro\nchapters:\n  - file: book/tiny\n  - file: book/tiny2\n"
    (root / "_toc.yml").write_text(toc)
    with pytest.raises(ValueError, match="jobs"):
        booktools.execute_book("quick", tmp_path / "b", root, jobs=0)
    first = booktools.execute_book("quick", tmp_path / "b", root, jobs=2)
    assert [r["page"] for r in first] == ["book/tiny", "book/tiny2"] and all(r["executed"] for r in first)
    rec = json.loads((tmp_path / "b" / "timings-quick.json").read_text())
    assert rec["jobs"] == 2 and rec["threads"] == 1
    assert [r["executed"] for r in booktools.execute_book("quick", tmp_path / "b", root, jobs=2)] == [False, False]
    # a slow page beside a failing one (both taken for chapters, which run side by side): the
    # failure stops it
    taken = types.SimpleNamespace(reuses=())
    fake = types.SimpleNamespace(CHAPTERS={"slow": taken, "bad": taken}, chapter=lambda name: taken)
    monkeypatch.setattr(booktools.book, "chapters", fake)
    (root / "book" / "slow.md").write_text(_bare_page("Slow", SLOW))
    (root / "book" / "bad.md").write_text(_bare_page("Bad", FAILS_BESIDE_SLOW))
    (root / "_toc.yml").write_text(toc.replace("book/tiny2\n", "book/tiny2\n  - file: book/slow\n  - file: book/bad\n"))
    # (built with SIGINT ignored, as in the background of a script, which the pages inherit: they
    # still stop on the SIGINT the build sends them, not only when it kills them a minute later)
    t0 = time.perf_counter()
    with pytest.raises(booktools.PageFailed, match="this page fails") as exc, _sigint_ignored():
        booktools.execute_book("quick", tmp_path / "b", root, jobs=2)
    assert exc.value.page == "book/bad" and time.perf_counter() - t0 < 55, "the slow page was not stopped"
    rec = json.loads((tmp_path / "b" / "timings-quick.json").read_text())
    assert rec["failed_page"] == "book/bad" and rec["complete"] is False
    assert not (tmp_path / "b" / "exec" / "quick" / "book" / "slow.ipynb").exists()
    assert not _marked(mark), "a page's process or kernel outlived the build"
    # Ctrl-C of a side-by-side build (in a process of its own) of two slow pages, once both
    # cells run: every page and kernel ends
    for f in (root / "book").glob("running-*"):
        f.unlink()
    (root / "book" / "slow2.md").write_text(_bare_page("Slow two", SLOW))
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/slow\nchapters:\n  - file: book/slow2\n")
    code = (  # SIGINT as at a terminal, even where these tests run with it ignored
        "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from pathlib import Path; from pruneplast import booktools\n"
        f"booktools.execute_book('quick', Path({str(tmp_path / 'c')!r}), Path({str(root)!r}), jobs=2)\n"
    )
    build = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and build.poll() is None and len(list((root / "book").glob("running-*"))) < 2:
        time.sleep(0.2)
    assert build.poll() is None, build.communicate()[0][-2000:]
    assert len(_kernels(mark)) == 2, "the two pages' cells never ran side by side"
    build.send_signal(signal.SIGINT)
    out = build.communicate(timeout=120)[0]
    assert build.returncode != 0 and "KeyboardInterrupt" in out, out[-2000:]
    deadline = time.time() + 5  # a process still there 5 s after the build ended has outlived it
    while _marked(mark) and time.time() < deadline:
        time.sleep(0.1)
    assert not _marked(mark), f"processes outlived an interrupted build: {[p.cmdline() for p in _marked(mark)]}"


@contextlib.contextmanager
def _sigint_ignored():
    """SIGINT ignored in this process (and so in the processes it starts) for the block."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _kernels(mark: str) -> list:
    """The kernels among the processes :func:`_marked` with ``mark``."""
    import psutil

    found = []
    for p in _marked(mark):
        try:
            if "ipykernel" in " ".join(p.cmdline()):
                found.append(p)
        except psutil.Error:  # it ended meanwhile
            pass
    return found


def _marked(mark: str) -> list:
    """Processes started with ``$PRUNEPLAST_TEST_MARK`` = ``mark`` (kernels included, even when
    their parent is gone), other than this one."""
    import psutil

    found = []
    for p in psutil.process_iter():
        try:
            if p.pid != os.getpid() and p.environ().get("PRUNEPLAST_TEST_MARK") == mark:
                found.append(p)
        except psutil.Error:
            pass
    return found


def test_a_chapter_reuses_only_chapters_before_it_in_the_book():
    """Side by side, a chapter waits for those whose cached states it reuses: each must be a
    chapter of the book that comes earlier (otherwise the build would wait for ever or for
    nothing); chapter 6 reuses chapter 5's treated networks."""
    order = [Path(p).name for p in booktools.toc_files(ROOT)]
    assert chapters.chapter("06_longitudinal_relapse").reuses == ("05_treatments",)
    for name, ch in chapters.CHAPTERS.items():
        for earlier in ch.reuses:
            assert earlier in chapters.CHAPTERS and order.index(earlier) < order.index(name), (name, earlier)


def test_expected_seconds_come_from_the_last_build_then_the_bench(tmp_path):
    from pruneplast.booktools.book import expected_seconds

    root, build = tmp_path / "proj", tmp_path / "b"
    (root / "benchmarks").mkdir(parents=True)
    build.mkdir()
    bench = {"book": {"quick": {"pages": [{"page": "a", "executed": True, "seconds": 5.0},
                                          {"page": "b", "executed": True, "seconds": 7.0},
                                          {"page": "c", "executed": False, "seconds": 0.0}]}}}  # fmt: skip
    (root / "benchmarks" / "results.json").write_text(json.dumps(bench))
    assert expected_seconds("quick", build, root) == {"a": 5.0, "b": 7.0}
    assert expected_seconds("paper", build, root) == {}
    (build / "timings-quick.json").write_text(json.dumps({"pages": [{"page": "b", "executed": True, "seconds": 9.0}]}))
    assert expected_seconds("quick", build, root) == {"a": 5.0, "b": 9.0}
    (build / "timings-quick.json").write_text("{not json")
    assert expected_seconds("quick", build, root) == {"a": 5.0, "b": 7.0}


def test_missing_toc_page_is_an_error(tmp_path):
    root = _tiny_project(tmp_path)
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/gone\n")
    with pytest.raises(FileNotFoundError, match="book/gone"):
        booktools.execute_book("quick", tmp_path / "b", root)


# --------------------------------------------------------------------------- the project's own book
def test_toc_lists_every_chapter_and_pages_exist():
    pages = booktools.toc_files(ROOT)
    for page in pages:
        assert (ROOT / f"{page}.md").exists() or (ROOT / f"{page}.ipynb").exists(), page
    for nb in (ROOT / "notebooks").glob("*.md"):
        assert f"notebooks/{nb.stem}" in pages, f"{nb.name} is not in _toc.yml"
    assert pages[0] == "book/intro"
    for page in ("book/methods", "book/scorecard", "book/references"):
        assert page in pages


def test_chapter_parameter_cells_hold_the_paper_defaults():
    from papermill.inspection import _infer_parameters

    for path in booktools.chapter_sources():
        nb = booktools.read_notebook(path)
        cell = {p.name: booktools.notebooks._literal(p.default) for p in _infer_parameters(nb, "python3", "python")}
        assert cell == chapters.profile_values(path.stem, "paper"), path.name
        first_code = [c for c in nb.cells if c.cell_type == "code"][0]
        assert "parameters" in first_code.metadata.get("tags", []), (
            f"{path.name}: first code cell must be the parameters cell"
        )


def test_every_notebook_registered_or_a_page():
    for nb in (ROOT / "notebooks").glob("*.md"):
        assert nb.stem in chapters.CHAPTERS, f"{nb.name} is not registered in pruneplast/chapters/"


# --------------------------------------------------------------------------- atomic results
def _frame(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {"experiment": "e", "condition": "c", "seed": range(n), "metric": "m", "value": [i * 0.5 for i in range(n)]}
    )


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        results.save_results(_frame(10), "nb", "quick", {}, root=tmp_path)
    assert list((tmp_path / "quick").iterdir()) == []  # neither the file nor a temporary


@pytest.mark.slow
def test_killed_writer_never_leaves_a_partial_results_file(tmp_path):
    """A process killed while rewriting its results: the results file is always whole.

    Each writer rewrites the same results in a loop; after its first complete write it is killed
    at one of several moments, most of them in the middle of a rewrite. The writers start side by
    side, each in its own results folder, and each waits after its first write until the test
    lets it rewrite, so it loops only for its own moment (not while the others are checked).
    """
    n = 200_000
    code = textwrap.dedent(f"""
        import sys
        import pandas as pd
        from pruneplast.results import save_results
        df = pd.DataFrame({{"experiment": "e", "condition": "c", "seed": range({n}), "metric": "m",
                           "value": [i * 0.5 for i in range({n})]}})
        save_results(df, "nb", "quick", {{}}, root=sys.argv[1])
        print("written", flush=True)
        sys.stdin.readline()
        while True:
            save_results(df, "nb", "quick", {{}}, root=sys.argv[1])
        """)
    delays = (0.0, 0.03, 0.1, 0.25)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path / f"w{k}")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for k in range(len(delays))
    ]
    for proc in procs:  # every writer's first complete write
        assert proc.stdout.readline().strip() == "written"
    for k, (proc, delay) in enumerate(zip(procs, delays)):
        proc.stdin.write("rewrite\n")  # a writer rewrites in a loop only from here to its kill
        proc.stdin.flush()
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdin.close()
        proc.stdout.close()
        csv = tmp_path / f"w{k}" / "quick" / "nb.csv"
        df = pd.read_csv(csv)
        assert len(df) == n and df["value"].iloc[-1] == (n - 1) * 0.5
        assert sorted(p.name for p in csv.parent.glob("nb.*")) == ["nb.csv", "nb.json"]


def test_glued_numpy_scalars_become_plain_numbers():
    import nbformat

    nb = nbformat.v4.new_notebook()
    glue_out = {
        "output_type": "display_data",
        "metadata": {"scrapbook": {"name": "x", "mime_prefix": "p/"}},
        "data": {"p/text/plain": "np.float64(97.79999923706055)"},
    }
    other = {"output_type": "display_data", "metadata": {}, "data": {"text/plain": "np.float64(1.5)"}}
    nb.cells.append(nbformat.v4.new_code_cell("glue('x', v)", outputs=[glue_out, other]))
    booktools.execution._plain_glue_numbers(nb)
    assert nb.cells[0].outputs[0]["data"]["p/text/plain"] == "97.79999923706055"
    assert nb.cells[0].outputs[1]["data"]["text/plain"] == "np.float64(1.5)"  # only glue outputs change


def test_peak_memory_counts_child_processes():
    """The build's per-chapter peak memory includes the kernel (a child process), not only itself."""
    import subprocess
    import sys

    code = "b = bytearray(400 * 2**20); import time; time.sleep(1.0)"
    with booktools.PeakMemory(interval=0.05) as alone:
        subprocess.run([sys.executable, "-c", "import time; time.sleep(1.0)"], check=True)
    with booktools.PeakMemory(interval=0.05) as mem:
        subprocess.run([sys.executable, "-c", code], check=True)
    assert mem.peak_mib > alone.peak_mib + 300
