"""The reproduction scorecard: every claim of the studies, the paper's number, ours, a verdict.

Each claim id of ``paper_results.yaml`` (see :mod:`pruneplast.paper`) that a chapter covers has a
function in :mod:`pruneplast.claims`, registered with ``@claim(claim_id, notebook=...)``. It
receives the chapter's tidy results (``results/<profile>/<notebook>.csv`` as a DataFrame) and
returns a dict with ``tests`` (one or more rule results of :mod:`pruneplast.verdicts`, by the kind
of the published value), ``mean`` and ``n`` (replicate seeds), ``ours`` (display text) and a short
``note``. The claim's verdict is the least favourable of its tests: *reproduced*, *consistent*
(not enough seeds to tell), or *differs*. This module scores every claim of the paper, covered or
not, and shows the table.

Study A's claims are scored on study A's own data set when the results hold it (column
``data_sets``, value ``'shared'``): like with like. :func:`stability` resamples the replicate
seeds (bootstrap) and reports the share of resamples giving the same verdict, and for a
qualitative statement the share in which it holds.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from . import paper
from .claims import CLAIMS, evaluate
from .plotting import VERDICTS
from .results import load_results
from .verdicts import CONSISTENT, DIFFERS, REPRODUCED, STABLE, VERDICT_ORDER

NOT_COVERED = "not yet covered"

__all__ = [
    "REPRODUCED",
    "CONSISTENT",
    "DIFFERS",
    "NOT_COVERED",
    "VERDICT_ORDER",
    "CLAIMS",
    "evaluate",
    "collect",
    "stability",
    "counts",
]


# --------------------------------------------------------------------------- stability
BOOTSTRAP = 200  # seed resamples per chapter for the verdicts' stability


def resample_seeds(df: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The results with their replicate seeds drawn with replacement (each draw a new seed id)."""
    groups = {s: g for s, g in df.groupby("seed", sort=True)}
    seeds = list(groups)
    pick = rng.integers(0, len(seeds), len(seeds))
    return pd.concat([groups[seeds[i]].assign(seed=k) for k, i in enumerate(pick)], ignore_index=True)


def stability(claim_ids, df: pd.DataFrame, verdicts: dict[str, dict], n: int = BOOTSTRAP, seed: int = 0) -> dict:
    """Per claim: the share of ``n`` seed resamples giving the verdict of ``verdicts[claim]`` and,
    per statement test, the share in which the statement holds. Deterministic (``seed``)."""
    rng = np.random.default_rng(seed)
    same = {c: 0 for c in claim_ids}
    holds = {c: np.zeros(sum(t["test"] == "statement" for t in verdicts[c]["tests"])) for c in claim_ids}
    valid = {c: 0 for c in claim_ids}
    for _ in range(n):
        b = resample_seeds(df, rng)
        for c in claim_ids:
            try:
                r = CLAIMS[c].func(b)
            except (ValueError, KeyError, ZeroDivisionError):
                continue  # a resample without the rows a claim needs (e.g. one distinct seed)
            valid[c] += 1
            same[c] += r["verdict"] == verdicts[c]["verdict"]
            holds[c] += [t["holds"] for t in r["tests"] if t["test"] == "statement"]
    return {
        c: {
            "stability": same[c] / valid[c] if valid[c] else math.nan,
            "holds": list(holds[c] / valid[c]) if valid[c] else [],
            "resamples": valid[c],
        }
        for c in claim_ids
    }


# --------------------------------------------------------------------------- the table
def paper_value(c: dict) -> str:
    """The paper's number(s) of a claim as display text."""
    if "value" in c:
        return str(c["value"])
    if "mean" in c:
        return f"{c['mean']} ± {c['sd']}" if "sd" in c else str(c["mean"])
    nums = {k: v for k, v in c.items() if k != "text" and isinstance(v, (int, float))}
    if nums:
        parts = []
        for k, v in nums.items():
            kind, _, level = k.partition("_")
            if kind == "at" and level.isdigit():
                parts.append(f"{v} at {level}%")
            elif kind == "drop" and level.isdigit():
                parts.append(f"drop {v} at {level} epochs")
            else:
                parts.append(f"{k.replace('_', ' ')}: {v}")
        return "; ".join(parts)
    return "qualitative"


def all_claims() -> list[tuple[str, str, dict]]:
    """(study, claim id, claim) for every claim of the paper, in file order."""
    data = paper.paper_results()
    return [(study[-1], cid, c) for study in ("study_A", "study_B") for cid, c in data[study]["claims"].items()]


def tests_text(r: dict, holds: list[float] | None = None) -> str:
    """The tests of a claim's result as one line each (statements with their probability)."""
    out, k = [], 0
    for t in r["tests"]:
        line = f"{t['test']}: {t['text']} → {t['verdict']}"
        if t["test"] == "statement":
            line = f"statement “{t['text']}”: {'holds' if t['holds'] else 'does not hold'}"
            if holds:
                line += f" (in {100 * holds[k]:.0f}% of resamples)"
            k += 1
        out.append(line)
    return "; ".join(out)


def collect(profile: str, root=None, bootstrap: int = BOOTSTRAP) -> pd.DataFrame:
    """The scorecard at ``profile``: one row per claim id of the paper, covered or not.

    Columns: claim, study, statement, notebook, paper, ours, n, verdict, stability, tests, note.
    ``bootstrap`` seed resamples per chapter give the stability (0: not computed).
    """
    cache: dict[str, pd.DataFrame | None] = {}
    rows, results = [], {}
    for study, cid, c in all_claims():
        row = {
            "claim": cid,
            "study": study,
            "statement": c.get("text", ""),
            "notebook": "",
            "paper": paper_value(c),
            "ours": "",
            "n": None,
            "verdict": NOT_COVERED,
            "stability": math.nan,
            "tests": "",
            "note": "",
        }
        reg = CLAIMS.get(cid)
        if reg is not None:
            row["notebook"] = reg.notebook
            if reg.notebook not in cache:
                try:
                    cache[reg.notebook] = load_results(reg.notebook, profile, root)
                except FileNotFoundError:
                    cache[reg.notebook] = None
            df = cache[reg.notebook]
            if df is None:
                row["note"] = f"no results for {reg.notebook} at profile {profile!r}"
            else:
                r = reg.func(df)
                results[cid] = r
                row.update(ours=r["ours"], n=r["n"], verdict=r["verdict"], note=r.get("note", ""))
        rows.append(row)
    table = pd.DataFrame(rows)
    if bootstrap:
        by_nb: dict[str, list[str]] = {}
        for cid in results:
            by_nb.setdefault(CLAIMS[cid].notebook, []).append(cid)
        for nb, cids in by_nb.items():
            st = stability(cids, cache[nb], results, bootstrap)
            for cid in cids:
                i = table.index[table["claim"] == cid][0]
                table.at[i, "stability"] = st[cid]["stability"]
                table.at[i, "tests"] = tests_text(results[cid], st[cid]["holds"])
    else:
        for cid, r in results.items():
            table.loc[table["claim"] == cid, "tests"] = tests_text(r)
    return table


def shown_verdict(verdict: str, stability: float) -> str:
    """The verdict as shown: marked unstable when fewer than :data:`STABLE` of the resamples agree."""
    if verdict == NOT_COVERED or math.isnan(stability) or stability >= STABLE:
        return verdict
    return f"{verdict} (unstable)"


def counts(table: pd.DataFrame) -> dict:
    """How many claims got each verdict (including 'not yet covered'), and how many are unstable."""
    out = {v: int((table["verdict"] == v).sum()) for v in (*VERDICT_ORDER, NOT_COVERED)}
    st = table["stability"].astype(float)
    out["unstable"] = int(((table["verdict"] != NOT_COVERED) & (st < STABLE)).sum())
    return out


# --------------------------------------------------------------------------- the book page
VERDICT_COLOURS = {v: VERDICTS[v] for v in (REPRODUCED, CONSISTENT, DIFFERS, NOT_COVERED)}


#: Each verdict's symbol, so the scorecard reads without colour.
VERDICT_SYMBOLS = {REPRODUCED: "\u2713", CONSISTENT: "\u2248", DIFFERS: "\u2717", NOT_COVERED: "\u2013"}


def _verdict_badge(verdict: str, stability: float) -> str:
    from html import escape

    colour = VERDICT_COLOURS.get(verdict, "#333")
    symbol = VERDICT_SYMBOLS.get(verdict, "")
    return (
        f'<span class="verdict" style="color:{colour};font-weight:600">'
        f'<span aria-hidden="true">{symbol}</span> {escape(shown_verdict(verdict, stability))}</span>'
    )


def _stability_text(stability: float) -> str:
    return "" if math.isnan(float(stability)) else f"{100 * float(stability):.0f}%"


def to_html(table: pd.DataFrame, caption: str | None = None) -> str:
    """The scorecard's summary as a numbered HTML table, one row per claim: the claim in words
    (with its id), the study's number, ours, the replicate seeds, the verdict as a symbol and a
    coloured word (legible without colour), and its stability. At phone width each row becomes a
    block with labelled fields (``pruneplast.css``). The tests and notes are :func:`details_html`."""
    from html import escape

    rows = []
    for i, r in enumerate(table.itertuples(index=False), 1):
        n = "" if r.n is None or (isinstance(r.n, float) and math.isnan(r.n)) else str(int(r.n))
        rows.append(
            "<tr>"
            f'<td data-label="#">{i}</td>'
            f'<td data-label="claim">{escape(r.statement)} <small>({escape(r.claim.split("_")[0])})</small></td>'
            f'<td data-label="study">{escape(r.paper)}</td>'
            f'<td data-label="ours">{escape(r.ours) or "—"}</td>'
            f'<td data-label="seeds">{n or "—"}</td>'
            f'<td data-label="verdict">{_verdict_badge(r.verdict, float(r.stability))}</td>'
            f'<td data-label="stability">{_stability_text(r.stability) or "—"}</td>'
            "</tr>"
        )
    head = "".join(f"<th>{h}</th>" for h in ("#", "claim", "study", "ours", "seeds", "verdict", "stability"))
    cap = f'<caption style="caption-side:top;text-align:left">{escape(caption)}</caption>' if caption else ""
    return (
        f'<div class="scorecard-wrap"><table class="scorecard">{cap}'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def chapter_verdicts(notebook: str, df: pd.DataFrame) -> str:
    """Markdown: every claim measured by ``notebook``, in words, with the study's number, ours and
    the verdict (symbol and word), scored on this run's results ``df`` as the scorecard scores it."""
    data = {cid: c for _, cid, c in all_claims()}
    lines, why = [], []
    for cid, reg in CLAIMS.items():
        if reg.notebook != notebook:
            continue
        c = data.get(cid, {})
        try:
            r = reg.func(df)
        except ValueError as exc:  # a rerun that lacks what the claim needs
            lines.append(f"- **{c.get('text', cid)}** (claim {cid.split('_')[0]}): not scored in this run ({exc}).")
            continue
        verdict = f"{VERDICT_SYMBOLS.get(r['verdict'], '')} {r['verdict']}".strip()
        note = f" {r['note'][:1].upper()}{r['note'][1:]}." if r.get("note") else ""
        lines.append(
            f"- **{c.get('text', cid)}** (claim {cid.split('_')[0]}): study: {paper_value(c)}; ours: {r['ours']} "
            f"({r['n']} seed{'s' if r['n'] != 1 else ''}); **{verdict}**.{note}"
        )
        if r["verdict"] == DIFFERS:
            why.append(why_text(cid, r))
    return "\n".join(lines) + "".join(f"\n\n{w}" for w in why)


def why_text(claim_id: str, result: dict) -> str:
    """Markdown: the paragraph under a claim this run does not reproduce: the tests that fail, with
    their numbers, and what the claim's number depends on (:mod:`pruneplast.claims.reasons`)."""
    from .claims.reasons import reason

    failed = [t["text"] for t in result["tests"] if t.get("verdict") == DIFFERS and t.get("text")]
    tests = f"The test{'s' if len(failed) > 1 else ''} that fail{'' if len(failed) > 1 else 's'}: {'; '.join(failed)}. "
    return (
        f"**Why claim {claim_id.split('_')[0]} differs in this run.** " + (tests if failed else "") + reason(claim_id)
    )


def why_differs(notebook: str, df: pd.DataFrame) -> str:
    """Markdown: :func:`why_text` for each claim measured by ``notebook`` that this run's results
    ``df`` do not reproduce, one paragraph each; empty when every claim is reproduced or consistent."""
    out = []
    for cid, reg in CLAIMS.items():
        if reg.notebook != notebook:
            continue
        try:
            r = reg.func(df)
        except ValueError:  # not scored in this run: the chapter says so beside the claim
            continue
        if r["verdict"] == DIFFERS:
            out.append(why_text(cid, r))
    return "\n\n".join(out)


def details_html(table: pd.DataFrame) -> str:
    """Per claim, the tests behind its verdict and the notes, each in a collapsible block."""
    from html import escape

    out = []
    for i, r in enumerate(table.itertuples(index=False), 1):
        body = "".join(f"<li>{escape(t)}</li>" for t in str(r.tests).split("; ") if t)
        note = f"<p>{escape(r.note)}</p>" if r.note else ""
        out.append(
            f'<details class="scorecard-detail"><summary>{i}. {escape(r.claim.split("_")[0])}: '
            f"{escape(r.statement)} — {_verdict_badge(r.verdict, float(r.stability))}</summary>"
            f"<ul>{body or '<li>no test: the chapter has not run at this profile</li>'}</ul>{note}</details>"
        )
    return "".join(out)
