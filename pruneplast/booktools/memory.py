"""Peak resident memory of a page's kernel while it executes (for the Compute appendix)."""

from __future__ import annotations

import time

from ._common import fmt_time, log


class PeakMemory:
    """Peak resident memory (MiB) of this process and all its descendants (the kernel) while active.

    Sampled every ``interval`` seconds in a thread with psutil; the sum over the process tree, so a
    kernel and whatever it starts are counted together.
    """

    def __init__(self, interval: float = 0.25, heartbeat: float | None = None, label: str = ""):
        self.interval = interval
        self.peak_mib = 0.0
        self.heartbeat, self.label = heartbeat, label  # a "still running" line every ``heartbeat`` s

    def _sample(self) -> None:
        import psutil

        me = psutil.Process()
        t0 = last = time.perf_counter()
        while not self._stop.wait(self.interval):
            total = 0
            for proc in [me] + me.children(recursive=True):
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    pass
            self.peak_mib = max(self.peak_mib, total / 2**20)
            now = time.perf_counter()
            if self.heartbeat and now - last >= self.heartbeat:
                last = now
                log(f"{self.label}: still running, {fmt_time(now - t0)} so far, {total / 2**20:.0f} MiB in use")

    def __enter__(self):
        import threading

        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        return False
