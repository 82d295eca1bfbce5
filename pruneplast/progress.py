"""Progress bars for long phases.

Bars are shown on a terminal and hidden elsewhere (notebook executions, CI logs, redirected
output), unless asked for explicitly. ``PRUNEPLAST_PROGRESS=0`` or ``=1`` overrides the default.
"""

from __future__ import annotations

import os
import sys

from tqdm import tqdm

_forced: bool | None = None


def set_progress(enabled: bool | None) -> None:
    """Force progress bars on (True) or off (False); None restores the automatic choice."""
    global _forced
    _forced = enabled


def progress_enabled(enabled: bool | None = None) -> bool:
    if enabled is not None:
        return bool(enabled)
    if _forced is not None:
        return _forced
    env = os.environ.get("PRUNEPLAST_PROGRESS")
    if env is not None:
        return env.strip() not in ("", "0", "false", "False")
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def progress_bar(total: int | None, desc: str, enabled: bool | None = None, **kwargs) -> tqdm:
    return tqdm(
        total=total,
        desc=desc,
        disable=not progress_enabled(enabled),
        leave=False,
        file=sys.stderr,
        dynamic_ncols=True,
        **kwargs,
    )
