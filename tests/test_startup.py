"""Start-up of the processes that run notebooks: what importing the package changes (pruneplast/__init__.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def test_the_package_keeps_jsonschema_from_compiling_iri_parsers():
    """After ``import pruneplast``, nbformat (through jsonschema) no longer imports rfc3987_syntax
    and its parser library, and still reads and validates a notebook; without the package first,
    jsonschema does import it here (else this test would prove nothing), and a process that
    imported it first keeps it."""
    probe = """
        import sys
        {first}
        import nbformat
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
        nbformat.validate(nbformat.reads(nbformat.writes(nb), as_version=4))
        print(sys.modules.get("rfc3987_syntax") is not None, "lark" in sys.modules)
    """
    assert _run(probe.format(first="import pruneplast")) == "False False"
    without = _run(probe.format(first=""))
    if without == "False False":
        pytest.skip("rfc3987_syntax is not installed here: jsonschema never imports it")
    assert without == "True True"
    assert _run(probe.format(first="import rfc3987_syntax, pruneplast")).startswith("True")
