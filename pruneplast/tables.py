"""Tables for reading: numbered, captioned, with plain labels (rendered by the book as Sphinx tables).

:func:`captioned` turns a DataFrame (or Series) into a MyST ``{table}`` directive with a caption
and a name, emitted as a Markdown output; the book parses Markdown outputs as MyST
(``nb_render_markdown_format: myst`` in ``_config.yml``), so the table gets a number ("Table 3.2")
and the text can refer to it with ``{numref}`label```. Index levels become the first columns,
column levels are joined with ", ", numbers go through :func:`pruneplast.results.fmt_number`
(no "-0.0", NaN as "—") and counts print as integers.
"""

from __future__ import annotations

import math
import numbers
import re
from typing import Any

import pandas as pd

from .results import fmt_number
from .typeset import number

_LABEL = re.compile(r"^[a-z][a-z0-9-]*$")
_NEG_ZERO = re.compile(r"(?<![\d.])-(0\.0+)(?![\d])")  # "-0.0" in text made elsewhere
#: Readers' names of the metrics and identifiers that label rows and columns.
NAMES = {
    "weight_sparsity": "weight sparsity (%)",
    "parameter_sparsity": "parameter sparsity (%)",
    "kept_weights": "kept weights",
    "activation_magnitude": "activation magnitude (mean |h|)",
    "relapse_drop": "relapse drop (points)",
    "accuracy": "accuracy (%)",
    "biased_accuracy": "biased-test accuracy (%)",
    "pre_relapse": "before the second wave",
    "post_relapse": "after the second wave",
    "-": "all layers",
}


def plain(name: Any) -> Any:
    """The readers' name of an identifier, the one function for tables, figures and prose: an arm
    ('SSRI-like', from the registry), a stress condition ('internal noise SD 1.5', a tolerance
    point 'sigma_x' too), a study A regimen ('short chronic'), a metric, 'layer_2'; anything else
    unchanged."""
    if not isinstance(name, str) or " " in name:
        return name
    from . import arms, stress

    if name in arms.names():
        return arms.arm(name).shown
    if name.startswith("sigma_"):
        return f"internal noise SD {float(name.removeprefix('sigma_')):g}"
    if name in stress.LABELS:
        return stress.LABELS[name]
    from .protocols.regimen_tables import LABELS as REGIMENS

    if name in REGIMENS and name != "pruned":  # 'pruned' is the state, named below
        return REGIMENS[name]
    if re.fullmatch(r"layer_\d+", name):
        return name.replace("_", " ")
    return NAMES.get(name, name)


def _cell(v: Any, digits: int | None) -> str:
    if isinstance(v, str) and v == "":
        return " "
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, numbers.Integral):
        return number(int(v), 0)
    if isinstance(v, numbers.Real):
        x = float(v)
        if math.isnan(x):
            return "—"
        if x.is_integer() and abs(x) < 1e15 and (digits is None or abs(x) >= 1000):  # counts stay whole
            return number(x, 0)
        return fmt_number(x, 2 if digits is None else digits)
    text = _NEG_ZERO.sub(r"\1", str(v)).replace("\n", " ").replace("|", "\\|")
    return text if text.strip() else "—"


def _decimals(col: pd.Series) -> int | None:
    """Decimals to show a numeric column with: as few as its values need, at most 2 (None: whole
    numbers, or not a numeric column)."""
    vals = [float(v) for v in col if isinstance(v, numbers.Real) and not isinstance(v, bool)]
    vals = [v for v in vals if not math.isnan(v)]
    if not vals or all(v.is_integer() for v in vals):
        return None
    for d in (1, 2):
        if all(abs(round(v, d) - v) < 1e-9 for v in vals):
            return d
    return 2


def to_markdown(obj: pd.DataFrame | pd.Series, digits: int | None = None) -> str:
    """A pipe table of ``obj``: index levels as the first columns (a value repeated from the row
    above left blank, as in a grouped table), identifiers by their readers' names (:func:`plain`)."""
    df = obj.to_frame() if isinstance(obj, pd.Series) else obj
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"a table must be a DataFrame or a Series; got {type(obj).__name__}")
    df = df.copy()
    if isinstance(df.columns, pd.MultiIndex):
        df.columns = [", ".join(str(plain(p)) for p in c if str(p)) for c in df.columns]
    else:
        df.columns = [plain(c) for c in df.columns]
    has_index = not (isinstance(df.index, pd.RangeIndex) and df.index.name is None)
    if has_index:
        names = [plain(n) if n is not None else "" for n in df.index.names]
        levels = len(names)
        df = df.reset_index()
        df.columns = [*names, *df.columns[levels:]]
        df = df.astype({c: object for c in df.columns[:levels]})
        for j in range(levels):
            df.iloc[:, j] = [plain(v) for v in df.iloc[:, j]]
        if levels > 1:  # blank an outer level's value where it repeats the row above
            keys = df.iloc[:, : levels - 1].astype(str).to_numpy()
            for i in range(len(df) - 1, 0, -1):
                for j in range(levels - 1):
                    if (keys[i, : j + 1] == keys[i - 1, : j + 1]).all():
                        df.iat[i, j] = ""
    decimals = {j: digits if digits is not None else _decimals(df.iloc[:, j]) for j in range(df.shape[1])}
    header = [_cell(c, None) if str(c) else " " for c in df.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v, decimals[j]) for j, v in enumerate(row)) + " |")
    return "\n".join(lines)


def directive(obj: pd.DataFrame | pd.Series, caption: str, label: str, digits: int | None = None) -> str:
    """The MyST text of a numbered table: ``{table}`` directive, caption, ``:name:``, pipe table."""
    if not isinstance(caption, str) or not caption.strip():
        raise ValueError("a table needs a caption (one sentence saying what it shows, with units)")
    if not isinstance(label, str) or not _LABEL.match(label):
        raise ValueError(f"table label must be lower-case letters, digits and '-' (like 'tbl-main'); got {label!r}")
    caption = " ".join(caption.split())
    return f"```{{table}} {caption}\n:name: {label}\n:class: pruneplast-table\n\n{to_markdown(obj, digits)}\n```\n"


def captioned(obj: pd.DataFrame | pd.Series, caption: str, label: str, digits: int | None = None):
    """An IPython ``Markdown`` object holding :func:`directive` (display it, or pass it to
    :func:`pruneplast.checks.show` as ``display_obj``)."""
    from IPython.display import Markdown

    return Markdown(directive(obj, caption, label, digits))


def show(obj: pd.DataFrame | pd.Series, caption: str, label: str, digits: int | None = None) -> None:
    """Display ``obj`` as a numbered, captioned table."""
    from IPython.display import display

    display(captioned(obj, caption, label, digits))


def html(obj: pd.DataFrame, caption: str) -> str:
    """``obj`` as an escaped HTML table with a visible ``<caption>`` (for tables whose cells hold
    text that Markdown would read as markup: commands, file names, error messages)."""
    from html import escape

    if not isinstance(caption, str) or not caption.strip():
        raise ValueError("a table needs a caption (one sentence saying what it shows)")
    body = obj.to_html(index=False, escape=True, border=0, na_rep="—")
    cap = f'<caption style="caption-side:top;text-align:left">{escape(" ".join(caption.split()))}</caption>'
    return body.replace(">", ">" + cap, 1)
