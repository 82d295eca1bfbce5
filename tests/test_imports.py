"""The package's import graph: no loops, and no module reaching into another's private names.

Every module under ``pruneplast/`` is parsed (``ast``, nothing imported). An import counts wherever
it stands: at module level, inside a function (a deferred import still makes the two modules
depend on each other) or under ``if TYPE_CHECKING:``. ``from .a import b`` is an edge to the
submodule ``a.b`` when there is one, else to ``a``; the parent packages that Python initialises on
the way are not edges (a package's ``__init__`` importing its own submodules is not a loop).

A private name is one with a single leading underscore (``_x``; dunders such as ``__version__``
are not private). A module may not import another pruneplast module's private name nor use one
as an attribute of a module it imported (``operators._prune_to``); a private module
(``build/_common.py``) may be imported only from its own package. The scripts of ``benchmarks/``
keep the same rule: what they need of the package has a public name.
"""

from __future__ import annotations

import ast
import functools
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import pruneplast

ROOT = Path(pruneplast.__file__).resolve().parent.parent


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


@dataclass
class Graph:
    modules: dict[str, Path]
    edges: dict[str, set[str]] = field(default_factory=dict)
    private: list[str] = field(default_factory=list)  # "importer: target.name" for each private use


def _modules(root: Path, package: str) -> dict[str, Path]:
    out = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _absolute(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute module of a (possibly relative) ``from ... import``."""
    if not level:
        return name or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _use(g: Graph, edges: set[str], importer: str, target: str) -> None:
    """Record ``importer`` importing ``target``; a private module counts only from its own package."""
    edges.add(target)
    parts = target.split(".")
    first = next((i for i, p in enumerate(parts) if _private(p)), None)
    if first is not None:
        owner = ".".join(parts[:first])
        if not (importer == owner or importer.startswith(owner + ".")):
            g.private.append(f"{importer}: {target}")


def _scan(g: Graph, module: str, path: Path, package: str) -> set[str]:
    """The ``package`` modules that ``module`` (the file ``path``) imports; its uses of another
    module's private names go to ``g.private``."""
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), str(path))
    edges: set[str] = set()
    bound: dict[str, str] = {}  # local name -> the pruneplast module it names

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == package:
                    _use(g, edges, module, alias.name)
                    if alias.asname:
                        bound[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(module, is_package, node.level, node.module)
            if source.split(".")[0] != package:
                continue
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                if sub in g.modules:
                    _use(g, edges, module, sub)
                    bound[alias.asname or alias.name] = sub
                    continue
                _use(g, edges, module, source)
                if _private(alias.name) and source != module:
                    g.private.append(f"{module}: {source}.{alias.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            target = bound.get(node.value.id)
            if target and target != module and _private(node.attr):
                g.private.append(f"{module}: {target}.{node.attr}")
    return edges


def import_graph(root: Path, package: str, scripts: Sequence[Path] = ()) -> Graph:
    """The import edges among ``package``'s modules under ``root``, and the private names used across
    them and by ``scripts`` (files outside the package, named ``<folder>.<stem>``; no edges)."""
    g = Graph(_modules(root, package))
    for module, path in g.modules.items():
        edges = _scan(g, module, path, package)
        g.edges[module] = {e for e in edges if e in g.modules and e != module}
    for path in scripts:
        _scan(g, f"{path.parent.name}.{path.stem}", path, package)
    return g


def cycles(g: Graph) -> list[list[str]]:
    """The import loops: each strongly connected set of two or more modules, sorted (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(g.edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(g.modules):
        if v not in index:
            visit(v)
    return sorted(found)


# --------------------------------------------------------------------------- the package
@functools.cache
def _pruneplast() -> Graph:
    return import_graph(ROOT, "pruneplast")


def test_the_graph_sees_the_whole_package():
    g = _pruneplast()
    assert len(g.modules) >= 60 and "pruneplast.claims.registry" in g.modules
    # known edges, one module-level and one inside a function
    assert "pruneplast.claims" in g.edges["pruneplast.scorecard"]
    assert "pruneplast.explorer.app" in g.edges["pruneplast.cli"]


def test_no_import_loop_in_the_package():
    assert cycles(_pruneplast()) == []


def test_no_private_name_of_another_module_is_used():
    assert _pruneplast().private == []


def test_the_benchmarks_use_no_private_name_of_the_package():
    scripts = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py"))
    assert len(scripts) >= 5
    assert import_graph(ROOT, "pruneplast", scripts).private == []


def test_scorecard_reads_the_claims_and_not_the_reverse():
    g = _pruneplast()
    claims = [m for m in g.modules if m.startswith("pruneplast.claims")]
    assert all("pruneplast.scorecard" not in g.edges[m] for m in claims)
    assert "pruneplast.cli" not in g.edges["pruneplast.explorer.app"]


# --------------------------------------------------------------------------- the checks themselves
def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path


def test_a_deliberate_loop_is_found_even_inside_a_function(tmp_path):
    root = _package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "from . import b\n",
            "b.py": "def f():\n    from .sub.c import g\n    return g\n",
            "sub/__init__.py": "from .c import g\n",  # a package importing its own module: no loop
            "sub/c.py": "import pkg.a\n\ndef g():\n    return 1\n",
            "d.py": "from .a import b\n",  # outside the loop
        },
    )
    g = import_graph(root, "pkg")
    assert g.edges["pkg.b"] == {"pkg.sub.c"} and g.edges["pkg.d"] == {"pkg.a"}
    assert cycles(g) == [["pkg.a", "pkg.b", "pkg.sub.c"]]
    (root / "pkg" / "sub" / "c.py").write_text("def g():\n    return 1\n")
    assert cycles(import_graph(root, "pkg")) == []


def test_a_private_name_used_across_modules_is_found(tmp_path):
    root = _package(
        tmp_path,
        {
            "__init__.py": "__version__ = '0'\n",
            "a.py": "def _helper():\n    return 1\n\ndef public():\n    return _helper()\n",
            "b.py": "from .a import _helper\n",
            "c.py": "from . import a\n\ndef f():\n    return a._helper() + a.public()\n",
            "d.py": "import pkg.a as m\nfrom . import __version__\n\nx = m._helper\n",
            "tools/__init__.py": "",
            "tools/_common.py": "def log():\n    pass\n",
            "tools/e.py": "from ._common import log\n",  # a private module, from its own package
            "f.py": "from .tools._common import log\n",  # ... and from outside it
        },
    )
    assert sorted(import_graph(root, "pkg").private) == [
        "pkg.b: pkg.a._helper",
        "pkg.c: pkg.a._helper",
        "pkg.d: pkg.a._helper",
        "pkg.f: pkg.tools._common",
    ]
    script = root / "bench" / "run.py"  # a script beside the package
    script.parent.mkdir()
    script.write_text("import pkg.a as a\nfrom pkg.a import _helper, public\n\nx = a._helper, a.public\n")
    assert sorted(import_graph(root, "pkg", [script]).private) == sorted(
        import_graph(root, "pkg").private + ["bench.run: pkg.a._helper"] * 2
    )
