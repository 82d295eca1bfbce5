"""How the book prints a number: the one place that decides signs, rounding and the minus sign.

Every number a page shows goes through this module: the tables' formatters
(:func:`pruneplast.results.fmt_number` and the functions built on it) call :func:`number`, and the
book's Sphinx hook (:mod:`pruneplast.booktools.sphinxext`) passes the text of every glued value, every
paragraph and every table cell through :func:`typeset`, so a value typed or formatted elsewhere
(``{glue:text}`x:.1f```, an f-string in a claim's note) reads the same way:

* a negative number carries a true minus sign, U+2212 (``−0.3``), never a hyphen;
* a value that rounds to zero prints without a sign (``0.0``, never ``−0.0``);
* a signed difference (:func:`number` with ``signed=True``) shows ``+`` for a positive value;
* a missing value (NaN) prints as an em dash.

:func:`plain` turns such text back into what :func:`float` reads. The module imports nothing of the
package, so the Sphinx hook can load it without torch.
"""

from __future__ import annotations

import math
import re

#: The minus sign of typeset numbers (U+2212 MINUS SIGN).
MINUS = "\u2212"
#: What a missing value prints as.
MISSING = "\u2014"

#: A hyphen-minus (or a minus sign) that is a number's sign: not inside a word or after a digit
#: ("2-6", "x-1", "2026-01" keep their hyphens), followed by a digit or by a point and a digit.
_SIGN = re.compile(r"(?<![\w.\-\u2212])[-\u2212](?=\.?\d)")
#: A signed number whose digits are all zeros ("-0", "-0.0", "−0.00"), not followed by more digits.
_SIGNED_ZERO = re.compile(r"(?<![\w.\-\u2212])[-\u2212](0*\.?0*)(?![\d.]|\.\d)")


def _is_zero_token(s: str) -> bool:
    return bool(s) and any(c == "0" for c in s) and set(s) <= {"0", "."}


def typeset(text: str) -> str:
    """``text`` with every number's sign typeset: a minus sign (U+2212) for a hyphen-minus, and no
    sign on a value that reads as zero ("-0.0" -> "0.0")."""

    def zero(m: re.Match[str]) -> str:
        return m.group(1) if _is_zero_token(m.group(1)) else m.group(0)

    text = _SIGNED_ZERO.sub(zero, text)
    return _SIGN.sub(MINUS, text)


#: Nouns that follow a count in the book's prose ("2 replicate seeds", "5 epochs").
COUNTED = ("seed", "epoch", "cycle", "setting", "replicate", "cell", "claim", "value", "layer", "run", "arm", "point")
_ONE_PLURAL = re.compile(
    r"(?<![\w.,\u2212-])(1\s+(?:(?:replicate|changed|maintenance|training)\s+)?)(" + "|".join(COUNTED) + r")s\b"
)


def agree(text: str) -> str:
    """A count of one takes the singular: "1 replicate seeds" -> "1 replicate seed", "for 1 epochs"
    -> "for 1 epoch" (the nouns of :data:`COUNTED`, optionally after one qualifier)."""
    return _ONE_PLURAL.sub(r"\1\2", text)


def plain(text: str) -> str:
    """Typeset text back in ASCII (minus signs as hyphens, no thousands commas), e.g. for
    :func:`float`."""
    return text.replace(MINUS, "-").replace(",", "")


def number(x: float, digits: int = 1, signed: bool = False) -> str:
    """``x`` rounded to ``digits`` decimals, typeset (a minus sign, no negative zero, NaN as an em
    dash); ``signed`` adds ``+`` to a value that is positive once rounded. Thousands are grouped
    with commas from 10,000 on, in prose and in the book's tables alike."""
    x = float(x)
    if math.isnan(x):
        return MISSING
    if math.isinf(x):
        return ("+" if signed and x > 0 else "") + ("\u221e" if x > 0 else MINUS + "\u221e")
    grouped = "," if abs(round(x, digits)) >= 10_000 else ""
    s = f"{round(x, digits) + 0.0:{grouped}.{digits}f}"  # -0.0 + 0.0 is 0.0
    if s.startswith("-"):
        return MINUS + s[1:]
    if signed and float(s.replace(",", "")) != 0:
        return "+" + s
    return s


def difference(x: float, figures: int = 2) -> str:
    """A difference of rounding size (a weight or logit difference between two summation orders) to
    ``figures`` significant figures in scientific notation ("3.5e-06", a negative one with a minus
    sign); an exact zero reads "0" (the same bits), never "0.0e+00"."""
    x = float(x)
    if math.isnan(x):
        return MISSING
    if x == 0:
        return "0"
    return typeset(f"{x:.{max(figures, 1) - 1}e}")


def plural(n: int, word: str, words: str | None = None) -> str:
    """``"1 claim"``, ``"2 claims"`` (``words`` for an irregular plural)."""
    return f"{n} {word if n == 1 else (words or word + 's')}"


def listing(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
