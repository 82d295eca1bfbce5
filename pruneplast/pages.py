"""How a chapter opens and closes: one call each, the same for every page of the book.

A chapter's first code cell after its ``parameters`` cell calls :func:`open_chapter`::

    page = pages.open_chapter("02_pruning_cliff", globals())

which checks every papermill parameter (:func:`pruneplast.chapters.validate`: a bad value fails
there, naming the parameter and its range), builds the model choices of the chapters that take
them (``hidden`` to ``regrow_init_std``), starts the chapter's clock, sets the house style of the
figures and glues the studies' numbers the prose quotes. Its last code cells call
:meth:`Page.close` (save the results atomically, read them back, glue each claim's verdict and the
runtime) and :meth:`Page.why_differs` or :meth:`Page.chapter_verdicts` (the scorecard's reading of
this run).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from . import chapters, paper, plotting, results, scorecard
from .config import ModelChoices, RunConfig

#: The chapter parameters that make up :class:`pruneplast.config.ModelChoices`, in its order.
CHOICE_PARAMETERS = ("hidden", "task_sigma", "prune_scope", "lr_factor", "regrow_init_std")


def glue_hidden(values: Mapping[str, Any], markdown: Sequence[str] = ()) -> None:
    """Glue each value under its name without showing it (for the prose's ``{glue:text}``); the
    names in ``markdown`` are sentences, glued as Markdown (for ``{glue:md}``)."""
    from IPython.display import Markdown
    from myst_nb import glue

    unknown = [k for k in markdown if k not in values]
    if unknown:
        raise ValueError(f"markdown names {unknown} are not among the values glued ({list(values)})")
    for name, value in values.items():
        glue(name, Markdown(value) if name in markdown else value, display=False)


@dataclass
class Page:
    """One executing chapter: its name, validated parameters, model choices and clock."""

    notebook: str  # the chapter's name, as registered in pruneplast.chapters
    params: dict  # the validated parameters (chapters.validate), saved beside the results
    namespace: Mapping[str, Any] = field(repr=False)  # the notebook's globals: the parameters as given
    started: float = field(default_factory=time.perf_counter)  # time.perf_counter() at the opening
    choices: ModelChoices | None = None  # the model choices, for chapters that take them
    out: Path | None = None  # the results CSV, once close() has saved it
    saved: pd.DataFrame | None = None  # the results as read back from ``out``
    claims: dict[str, dict | None] = field(default_factory=dict)  # close()'s scorecard results, by claim id

    @property
    def profile(self) -> str:
        return self.params["profile"]

    def run_config(self, data_sets: str | None = None) -> RunConfig:
        """The replicates, device and task of the chapter's experiments.

        The task is the model choices' task on ``data_sets`` (default: the chapter's own
        ``data_sets`` parameter); a chapter without model choices gets the studies' task."""
        ns = self.namespace
        if self.choices is None:
            if data_sets is not None:
                raise ValueError(f"chapter {self.notebook} takes no model choices, so no data_sets={data_sets!r}")
            return RunConfig(seeds=tuple(ns["seeds"]), device=ns["device"])
        scheme = ns["data_sets"] if data_sets is None else data_sets
        return RunConfig(seeds=tuple(ns["seeds"]), device=ns["device"], task=self.choices.task(scheme))

    def runtime(self) -> float:
        """Seconds since the chapter opened."""
        return time.perf_counter() - self.started

    def close(self, df: pd.DataFrame | None, claims: Sequence[str] = (), say_where: bool = True) -> None:
        """Save the chapter's tidy results, glue each claim's verdict and the runtime.

        ``df`` is written atomically as ``<notebook>.csv`` / ``.json`` under the profile's results
        folder (:func:`pruneplast.results.save_results`) and read back (``saved``); ``None`` saves
        nothing (a page whose run leaves the results alone). Each claim id in ``claims`` is scored
        on the saved results and its verdict glued as ``verdict_<first two characters of the
        id>`` (bold Markdown); a claim the run cannot score (a rerun that lacks what it needs)
        says so instead; each claim's scorecard result is kept in ``claims`` (``None`` where it
        was not scored). ``runtime_s`` is glued last; with ``say_where`` the results' path is
        printed. Returns nothing, so a cell ending in it shows nothing."""
        from IPython.display import Markdown

        if df is not None:
            self.out = results.save_results(df, self.notebook, self.profile, self.params)
            self.saved = results.load_results(self.notebook, self.profile)
        elif claims:
            raise ValueError(f"chapter {self.notebook}: claims {list(claims)} need results to score; df is None")
        scored: dict[str, dict | None] = {}
        verdicts = {}
        for cid in claims:
            try:
                result = scorecard.evaluate(cid, self._saved())
            except ValueError as exc:  # e.g. a rerun whose sweep has no 90% or 93% level
                scored[cid], verdict = None, f"not scored here ({exc})"
            else:
                scored[cid], verdict = result, result["verdict"]
            verdicts[f"verdict_{cid[:2]}"] = Markdown(f"**{verdict}**")
        self.claims = scored
        glue_hidden(verdicts)
        glue_hidden({"runtime_s": self.runtime()})
        if say_where and self.out is not None:
            root = results.project_root()
            shown = self.out.relative_to(root) if self.out.is_relative_to(root) else self.out
            print(f"results written to {shown}")

    def _saved(self) -> pd.DataFrame:
        if self.saved is None:
            raise ValueError(f"chapter {self.notebook}: no results yet; call close(df) first")
        return self.saved

    def why_differs(self) -> None:
        """Show a paragraph under each claim this run does not reproduce (nothing when all are)."""
        from IPython.display import Markdown, display

        why = scorecard.why_differs(self.notebook, self._saved())
        if why:
            display(Markdown(why))

    def chapter_verdicts(self):
        """Markdown: every claim the chapter measures, scored on this run's saved results."""
        from IPython.display import Markdown

        return Markdown(scorecard.chapter_verdicts(self.notebook, self._saved()))


def open_chapter(notebook: str, namespace: Mapping[str, Any], *, study_numbers: bool = True) -> Page:
    """Open chapter ``notebook`` from its namespace (the notebook's ``globals()``).

    Validates every parameter (a ``ValueError`` naming the first bad one, before any work), builds
    the :class:`~pruneplast.config.ModelChoices` when the chapter takes them, starts the clock,
    sets the figures' house style and, with ``study_numbers``, glues the studies' numbers
    (``study_<name>``, :func:`pruneplast.paper.glue_numbers`)."""
    params = chapters.validate(notebook, dict(namespace))
    choices = None
    if all(k in params for k in CHOICE_PARAMETERS):
        hidden, *rest = (namespace[k] for k in CHOICE_PARAMETERS)
        choices = ModelChoices(tuple(hidden), *rest)
    page = Page(notebook, params, namespace, choices=choices)
    plotting.use_style()
    if study_numbers:
        paper.glue_numbers()
    return page
