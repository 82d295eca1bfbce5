"""Notebook checks: named quantities of a chapter, each compared within its own stated tolerance.

A chapter shows a key table with :func:`show` instead of a bare display. The reader sees the same
table; the output also carries, in its metadata, every number of the table as a *quantity*
(``"<row> | <column>"``) with the tolerance the chapter states for it. ``make reference`` writes
the quantities of every chapter executed at the quick profile to ``tests/reference/<chapter>.yaml``
(plain text, reviewed like code), and the notebook checks compare a fresh execution with it.

Why tolerances. Training is chaotic: another CPU's matrix kernels (or another BLAS code path on
the same CPU, e.g. ``MKL_ENABLE_INSTRUCTIONS=AVX2``) round differently, and after a few hundred
Adam steps the same seeds give other weights. Counts, sparsities and parameters do not depend on
that and are compared exactly (:data:`EXACT`); accuracies are compared within a number of
percentage points chosen per table from the measured size of such changes, and never through the
bounds of a two-seed confidence interval. The tolerance of a quantity is part of the reference,
so a chapter that loosens a tolerance shows up in the reference's diff.
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable, Mapping

#: Output-metadata key under which a checked display carries its quantities.
META_KEY = "pruneplast_checks"
#: Tolerance of counts, sparsities set by construction and configuration values.
EXACT = 0.0


def _plain(v: Any) -> Any:
    """A JSON/YAML-able scalar: Python int/float/bool/str (numpy scalars converted)."""
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)  # nan / inf kept as text, compared exactly
    return str(v)


def _label(k: Any) -> str:
    if isinstance(k, tuple):
        return " / ".join(str(x) for x in k)
    return str(k)


def quantities(obj: Any, tol: float | Mapping[str, float], digits: int | None = None) -> dict[str, dict]:
    """Every entry of a DataFrame, Series or dict as ``{key: {"value": v, "tol": t}}``.

    ``tol`` is one tolerance for every number or a mapping from column label (Series: row label)
    to tolerance; a column not named in the mapping is compared exactly. Text is always compared
    exactly (``tol`` None). ``tol`` may also be a function of the quantity's key (see
    :func:`by_label`). ``digits`` rounds the stored numbers (the comparison is on the
    rounded values, within the tolerance).
    """
    import pandas as pd

    def tol_for(col_label: str, key: str) -> float:
        if callable(tol):
            return float(tol(key))
        if isinstance(tol, Mapping):
            return float(tol.get(col_label, EXACT))
        return float(tol)

    out: dict[str, dict] = {}

    def put(key: str, v: Any, col_label: str) -> None:
        v = _plain(v)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if digits is not None and isinstance(v, float):
                v = round(v, digits)
            out[key] = {"value": v, "tol": tol_for(col_label, key)}
        else:
            out[key] = {"value": v, "tol": None}

    if isinstance(obj, pd.DataFrame):
        for i, r in enumerate(obj.index):
            for j, c in enumerate(obj.columns):
                put(f"{_label(r)} | {_label(c)}", obj.iat[i, j], _label(c))  # each column keeps its dtype
    elif isinstance(obj, pd.Series):
        for r, v in obj.items():
            put(_label(r), v, _label(r))
    elif isinstance(obj, Mapping):
        for r, v in obj.items():
            put(_label(r), v, _label(r))
    else:
        raise TypeError(f"checks.quantities takes a DataFrame, Series or dict; got {type(obj).__name__}")
    if len(out) == 0:
        raise ValueError("a checked table must hold at least one value")
    return out


#: Tolerance, in percentage points, of the accuracies the chapters check at the quick profile
#: (means over its two seeds, or one seed). Another float path moved a quick-profile mean by at
#: most 1.7 points on the machines measured (book/methods.md, "What is bitwise reproducible"); a
#: broken operator moves the checked ones by far more (tests/book/test_float_paths.py).
ACCURACY_POINTS = 3.0


#: Tolerance of biased-stress accuracies (the manic-risk proxy). Gain above 1 plus a constant
#: offset in every hidden layer puts the test on a knife edge: one float path moved one
#: ketamine-like replicate's biased accuracy by 10.2 points while its other accuracies moved
#: by at most 1.5.
BIASED_POINTS = 20.0


def by_label(tolerances: Mapping[str, float], default: float) -> Callable[[str], float]:
    """A tolerance per quantity: the largest of ``tolerances`` whose label is a part of the
    quantity's key (``"ketamine / biased"`` has the parts ``ketamine`` and ``biased``), else
    ``default``."""

    def tol(key: str) -> float:
        parts = {p.strip() for chunk in key.split(" | ") for p in chunk.split(" / ")}
        hits = [t for label, t in tolerances.items() if label in parts]
        return max(hits) if hits else default

    return tol


#: Tolerance of the accuracies of a network pruned and regrown but not yet fine-tuned (chapter 3's
#: zero-epoch rows). Such a network sits near chance, where which quarter of the inputs it
#: happens to get right is decided by rounding: one float path moved one such quick-profile mean
#: by 7.4 points while the same chapter's fine-tuned accuracies moved by at most 1.7. Chapter 2's
#: sweep past 90% sparsity is the same case: a one-shot pruned network there keeps or loses whole
#: classes of the four-class task, so a seed's clean accuracy moves in steps of about 25 points
#: (a two-seed mean in steps of 12.5). The 93%-sparse clean mean was 47.3 on AMD EPYC and 61.0 on
#: Intel Xeon (there one seed at 47.4, the other at 74.7: one class more) while every other
#: quantity of that chapter agreed within 1 point.
UNREPAIRED_POINTS = 15.0


#: The accuracy tolerance of the chapters' checks: biased-stress rows get :data:`BIASED_POINTS`.
ACCURACY = by_label({"biased": BIASED_POINTS}, ACCURACY_POINTS)


def means(df, by, metric: str | None = "accuracy", digits: int = 1):
    """Mean ``value`` per group of ``by`` (rows of one ``metric``, or all rows when None), rounded."""
    rows = df if metric is None else df[df["metric"] == metric]
    if rows.empty:
        raise ValueError(f"no rows with metric {metric!r} to check")
    return rows.groupby(list(by), sort=False)["value"].mean().round(digits)


def show(
    obj: Any,
    name: str,
    tol: float | Mapping[str, float] = EXACT,
    unit: str = "",
    digits: int | None = None,
    display_obj: Any = None,
    caption: str | None = None,
    label: str | None = None,
) -> None:
    """Display ``display_obj`` (default ``obj``) and attach ``obj``'s numbers as checked quantities.

    name: the check's name, unique within the chapter (``"structure"``, ``"sweep combined"``).
    tol: absolute tolerance, in the values' own unit (accuracy: percentage points), one for all
        or per column; see :func:`quantities`.
    unit: what the numbers are (shown in a failed comparison).
    caption, label: show the table numbered and captioned (:func:`pruneplast.tables.captioned`),
        referable as ``{numref}`label```.
    """
    from IPython.display import display

    if not name or not isinstance(name, str):
        raise ValueError("a check needs a non-empty name")
    payload = {"name": name, "unit": unit, "quantities": quantities(obj, tol, digits)}
    shown = obj if display_obj is None else display_obj
    if caption is not None or label is not None:
        from .tables import captioned

        shown = captioned(shown, caption or "", label or "")
    display(shown, metadata={META_KEY: payload})


def collect(nb) -> dict[str, dict]:
    """The checks of an executed notebook: ``{name: {"unit": ..., "quantities": {...}}}``."""
    found: dict[str, dict] = {}
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        for o in cell.get("outputs", []):
            p = o.get("metadata", {}).get(META_KEY)
            if p is None:
                continue
            if p["name"] in found:
                raise ValueError(f"check {p['name']!r} appears twice in the notebook; names must be unique")
            plain = json.loads(json.dumps(p))  # notebook nodes as plain dicts
            found[plain["name"]] = {"unit": plain.get("unit", ""), "quantities": plain["quantities"]}
    return found


def _close(a: Any, b: Any, tol: float | None) -> bool:
    if tol is None or isinstance(a, (str, bool)) or isinstance(b, (str, bool)) or a is None or b is None:
        return a == b
    return abs(float(a) - float(b)) <= tol + 1e-9 * max(1.0, abs(float(a)))


def compare(reference: Mapping[str, dict], got: Mapping[str, dict]) -> list[str]:
    """Every difference between a reference's checks and an execution's, as readable lines.

    The reference's tolerance decides; a quantity whose stated tolerance changed, a check or a
    quantity missing on either side, or a value outside the tolerance is a failure.
    """
    failures: list[str] = []
    for name in sorted(set(reference) - set(got)):
        failures.append(f"check {name!r}: in the reference but not produced by this run")
    for name in sorted(set(got) - set(reference)):
        failures.append(f"check {name!r}: produced by this run but not in the reference (run `make reference`)")
    for name in [n for n in reference if n in got]:
        ref, new = reference[name]["quantities"], got[name]["quantities"]
        unit = reference[name].get("unit", "")
        for key in [k for k in ref if k not in new]:
            failures.append(f"{name} | {key}: missing from this run")
        for key in [k for k in new if k not in ref]:
            failures.append(f"{name} | {key}: new in this run (not in the reference)")
        for key in [k for k in ref if k in new]:
            r, g = ref[key], new[key]
            if r.get("tol") != g.get("tol"):
                failures.append(
                    f"{name} | {key}: the chapter states tolerance {g.get('tol')} but the "
                    f"reference holds {r.get('tol')} (run `make reference`)"
                )
            elif not _close(r["value"], g["value"], r.get("tol")):
                within = "exactly" if not r.get("tol") else f"within {r['tol']:g}"
                failures.append(
                    f"{name} | {key}: {g['value']!r} here, reference {r['value']!r} "
                    f"(must agree {within}{' ' + unit if unit else ''})"
                )
    return failures


def dump(checks: Mapping[str, Any], header: str) -> str:
    """The checks as the YAML text of a reference file (quantities in the chapter's order)."""
    import yaml

    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    body = yaml.safe_dump(dict(checks), sort_keys=False, allow_unicode=True, width=110)
    return "\n".join(lines) + "\n" + body


def load(text: str) -> dict[str, dict]:
    import yaml

    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ValueError("a checks reference must be a mapping of check names")
    return data
