"""Results I/O and summary statistics.

Every experiment writes a tidy CSV, ``results/<profile>/<notebook>.csv`` with at least the
columns ``experiment, condition, seed, metric, value`` (accuracies in %, sparsities in % of
weights unless the metric name says otherwise), and beside it ``<notebook>.json`` with the run's
parameters and the package and library versions. Files are written atomically (a temporary file
in the same folder, then ``os.replace``), so an interrupted run never leaves a partial file.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from . import typeset

REQUIRED_COLUMNS = ("experiment", "condition", "seed", "metric", "value")


def project_root(start: Path | None = None) -> Path:
    """The folder holding this project's ``pyproject.toml`` (searched upwards from ``start``)."""
    here = Path(start or Path.cwd()).resolve()
    for p in (here, *here.parents):
        if (p / "pyproject.toml").exists() and (p / "pruneplast").is_dir():
            return p
    return Path(__file__).resolve().parent.parent


def results_dir(profile: str, root: Path | str | None = None) -> Path:
    """``$PRUNEPLAST_RESULTS/<profile>`` if set, else ``<project>/results/<profile>``."""
    base = Path(root) if root is not None else Path(os.environ.get("PRUNEPLAST_RESULTS", project_root() / "results"))
    return base / profile


def file_mode() -> int:
    """The mode a new file gets under this process's umask (``0o644`` under the usual ``022``)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def cache_root() -> Path:
    """``$PRUNEPLAST_CACHE`` if set, else ``<project>/.cache`` (baselines, treated states, web assets).

    An empty ``$PRUNEPLAST_CACHE`` is refused (it would mean whatever folder the process is in)."""
    value = os.environ.get("PRUNEPLAST_CACHE")
    if value is not None and not value.strip():
        raise ValueError(
            "$PRUNEPLAST_CACHE is set but empty; unset it (the cache is then <project>/.cache) or name a folder"
        )
    return Path(value) if value is not None else project_root() / ".cache"


def atomic_write(path: Path, data: str | bytes | None = None, writer=None) -> None:
    """Write ``path`` through a temporary file in the same folder and ``os.replace``.

    ``data`` is text (UTF-8, ``\\n`` line ends) or bytes; or ``writer(file_object)`` writes binary
    content (``torch.save``, say). Readers see the old file or the new one, never a part; the
    file gets the umask's mode like any new file (temporary files are created ``0600``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            if writer is not None:
                writer(fh)
            elif isinstance(data, str):
                fh.write(data.encode("utf-8"))
            elif data is not None:
                fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_results(df: pd.DataFrame, notebook: str, profile: str, params: dict, root: Path | str | None = None) -> Path:
    """Write ``<notebook>.csv`` and ``<notebook>.json`` atomically; returns the CSV path."""
    from . import __version__

    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"results are missing the columns {missing}; required: {list(REQUIRED_COLUMNS)}")
    if not np.isfinite(df["value"].astype(float)).all():
        bad = df[~np.isfinite(df["value"].astype(float))].head()
        raise ValueError(f"results contain non-finite values, e.g.\n{bad}")
    cols = list(REQUIRED_COLUMNS) + sorted(c for c in df.columns if c not in REQUIRED_COLUMNS)
    out = df[cols].reset_index(drop=True)
    path = results_dir(profile, root) / f"{notebook}.csv"
    atomic_write(path, out.to_csv(index=False, float_format="%.6g", lineterminator="\n"))
    import torch

    from . import chapters
    from .machine import facts

    meta = {
        "notebook": notebook,
        "profile": profile,
        "parameters": params,
        # a run filed under a profile with other values says so (empty: the profile's own run)
        "differs_from_profile": (
            chapters.differs_from_profile(notebook, {**params, "profile": profile})
            if notebook in chapters.CHAPTERS
            else {}
        ),
        "pruneplast_version": __version__,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "machine": facts(),
        "columns": {
            "value": "accuracy in %; sparsities in %; kept_weights a count; gain and "
            "activation_magnitude unitless; relapse_drop in percentage points"
        },
    }
    atomic_write(path.with_suffix(".json"), json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
    return path


class DamagedResults(RuntimeError):
    """A results file that is there but is not a readable tidy table (it cannot be recomputed here)."""


def load_results(notebook: str, profile: str, root: Path | str | None = None) -> pd.DataFrame:
    """A notebook's tidy results table, checked: a readable CSV with the :data:`REQUIRED_COLUMNS`
    and numeric values; else :class:`DamagedResults` naming the file and the run that rewrites it."""
    path = results_dir(profile, root) / f"{notebook}.csv"
    if not path.exists():
        raise FileNotFoundError(f"no results at {path}; run the notebook {notebook} at profile {profile!r} first")
    redo = f"rerun the notebook to write it again (pruneplast run {notebook} --profile {profile})"
    try:
        df = pd.read_csv(path)
    except Exception as exc:  # empty, binary, truncated mid-quote: every way a damaged CSV fails
        raise DamagedResults(
            f"results file {path} is not a readable table ({type(exc).__name__}: {str(exc)[:200]}); {redo}"
        ) from None
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DamagedResults(
            f"results file {path} is not a tidy results table (no column {', '.join(missing)}); {redo}"
        )
    if len(df) and not pd.api.types.is_numeric_dtype(df["value"]):
        raise DamagedResults(f"results file {path} holds values that are not numbers; {redo}")
    return df


# --------------------------------------------------------------------------- statistics
_PERCENT = (0.0, 100.0)
_NON_NEGATIVE = (0.0, math.inf)
_UNBOUNDED = (-math.inf, math.inf)

#: The values each metric of the results files can take. A confidence interval of a metric's mean
#: is cut to this range: the true mean of a bounded quantity lies inside it, so cutting never
#: removes the true value and the interval keeps at least its coverage, while a plain t-interval
#: of, say, a relapse probability near 100% can reach past 100%. Metrics not named here (and
#: differences between conditions) get the plain t-interval.
METRIC_RANGE: dict[str, tuple[float, float]] = {
    "accuracy": _PERCENT,
    "accuracy_before": _PERCENT,
    "accuracy_after": _PERCENT,
    "relapse": _PERCENT,
    "relapse_probability": _PERCENT,
    "weight_sparsity": _PERCENT,
    "parameter_sparsity": _PERCENT,
    "sparsity_after": _PERCENT,
    "relapse_drop": (-100.0, 100.0),
    "kept_weights": _NON_NEGATIVE,
    "activation_magnitude": _NON_NEGATIVE,
    "gain": _NON_NEGATIVE,
}


def metric_range(metric: str | None) -> tuple[float, float]:
    """The (low, high) values ``metric`` can take; unbounded for other names and for None."""
    return _UNBOUNDED if metric is None else METRIC_RANGE.get(metric, _UNBOUNDED)


def t_ci(values: Sequence[float], level: float = 0.95, bounds: tuple[float, float] = _UNBOUNDED) -> tuple[float, float]:
    """Student-t confidence interval of the mean, cut to ``bounds`` (nan for fewer than two values)."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return (math.nan, math.nan)
    half = stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    lo, hi = bounds
    return (max(v.mean() - half, lo), min(v.mean() + half, hi))


def summarise(
    df: pd.DataFrame, by: Iterable[str], value: str = "value", bounds: tuple[float, float] | None = None
) -> pd.DataFrame:
    """Mean, population SD (as the studies report), n and a 95% t-interval per group.

    The interval is cut to ``bounds``; by default to :data:`METRIC_RANGE` of the group's metric
    when the frame has a ``metric`` column and the group holds one metric.
    """
    by = list(by)
    rows = []
    for key, g in df.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        v = g[value].astype(float).to_numpy()
        b: tuple[float, float] | None = bounds
        if b is None:
            metrics: Any = g["metric"].unique() if value == "value" and "metric" in g.columns else ()
            b = metric_range(metrics[0] if len(metrics) == 1 else None)
        lo, hi = t_ci(v, bounds=b)
        rows.append(dict(zip(by, key), mean=v.mean(), sd=v.std(ddof=0), n=len(v), ci_low=lo, ci_high=hi))
    return pd.DataFrame(rows)


def paired_difference(
    df: pd.DataFrame, column: str, a, b, by: Iterable[str] = (), pair_on: str = "seed"
) -> pd.DataFrame:
    """Per group in ``by``: mean of (a - b) over replicates paired on ``pair_on``, with 95% CI."""
    by = list(by)
    wide = df.pivot_table(index=by + [pair_on], columns=column, values="value", aggfunc="first").reset_index()
    wide["diff"] = wide[a] - wide[b]
    if by:
        out = summarise(wide, by, value="diff", bounds=_UNBOUNDED)
    else:
        wide["_all"] = "all"
        out = summarise(wide, ["_all"], value="diff", bounds=_UNBOUNDED).drop(columns="_all")
    out.insert(len(by), "comparison", f"{a} - {b}")
    return out


def fmt_number(x: float, digits: int = 1) -> str:
    """``x`` rounded to ``digits``, typeset by :func:`pruneplast.typeset.number` (a minus sign,
    U+2212, for a negative value; 0, never -0; NaN as "—").

    The one number formatter of the book's tables (every function below goes through it).
    """
    return typeset.number(x, digits)


def fmt_signed(x: float, digits: int = 1) -> str:
    """``x`` with its sign ('+0.3', '−0.2'); a value that rounds to zero prints as '0.0'."""
    return typeset.number(x, digits, signed=True)


def fmt_mean_ci(mean: float, lo: float, hi: float, digits: int = 1) -> str:
    """``mean [lo, hi]`` rounded to ``digits`` (only the mean when the interval is NaN, one seed)."""
    if math.isnan(lo):
        return fmt_number(mean, digits)
    return f"{fmt_number(mean, digits)} [{fmt_number(lo, digits)}, {fmt_number(hi, digits)}]"


def fmt_sd_ci(row, digits: int = 1) -> str:
    """``mean ± SD [low, high]`` of a :func:`summarise` row (population SD, 95% t-interval; no
    interval for one seed)."""
    s = f"{fmt_number(row['mean'], digits)} ± {fmt_number(row['sd'], digits)}"
    if row["n"] > 1:
        s += f" [{fmt_number(row['ci_low'], digits)}, {fmt_number(row['ci_high'], digits)}]"
    return s


def fmt_study(value, digits: int = 1) -> str:
    """A published value: ``mean ± SD`` for a [mean, sd] pair, the number alone, or "—" for none."""
    if value is None:
        return "—"
    if isinstance(value, (list, tuple)):
        return f"{fmt_number(value[0], digits)} ± {fmt_number(value[1], digits)}"
    return fmt_number(value, digits)
