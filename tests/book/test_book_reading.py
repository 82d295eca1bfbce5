"""How an executed page reads in the book: the parameters in view are those the page was built with,
and code is collapsed (:func:`pruneplast.booktools.execution._tag_injected`)."""

from __future__ import annotations

import nbformat

from pruneplast.booktools.execution import DEFAULTS_HEAD, INJECTED_HEAD, _tag_injected


def _nb():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A chapter"),
        nbformat.v4.new_code_cell('profile = "paper"\nseeds = [0, 1, 2]', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            '# Parameters\nprofile = "quick"\nseeds = [0]', metadata={"tags": ["injected-parameters", "hide-input"]}
        ),
        nbformat.v4.new_code_cell("run()"),
        nbformat.v4.new_code_cell("glue()", metadata={"tags": ["remove-cell"]}),
        nbformat.v4.new_code_cell("plot()", metadata={"tags": ["hide-output"]}),
    ]
    return nb


def test_the_parameters_in_view_are_those_used():
    nb = _nb()
    _tag_injected(nb)
    defaults, used, run, removed, plot = nb.cells[1:]
    assert used.source.startswith(INJECTED_HEAD) and 'profile = "quick"' in used.source
    assert "# Parameters" not in used.source and "hide-input" not in used.metadata["tags"]
    assert defaults.source.startswith(DEFAULTS_HEAD) and "hide-input" in defaults.metadata["tags"]
    assert run.metadata["tags"] == ["hide-input"]  # the run and plotting calls are collapsed
    assert removed.metadata["tags"] == ["remove-cell"] and plot.metadata["tags"] == ["hide-output"]
    _tag_injected(nb)  # twice changes nothing
    assert nb.cells[1].source.count(DEFAULTS_HEAD) == 1 and nb.cells[2].source.count(INJECTED_HEAD) == 1


def test_a_notebook_run_without_injected_parameters_shows_its_own():
    nb = _nb()
    del nb.cells[2]
    _tag_injected(nb)
    assert not nb.cells[1].source.startswith(DEFAULTS_HEAD) and "hide-input" not in nb.cells[1].metadata["tags"]
