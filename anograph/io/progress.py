"""Progress of long stages: a tqdm bar on a terminal, a log line every so often otherwise.

Why: extraction, training and scoring run for minutes; a terminal should show a bar, while a
log file or a Prefect UI wants a line now and then rather than a redrawn bar.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable


def progress_reporter(label: str, log: Callable[[str], None], unit: str = "frames",
                      every_seconds: float = 15.0) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback: a tqdm bar when stderr is a terminal, else ``log`` lines.

    ``log`` gets a line at most every ``every_seconds`` and at the end (``done == total``).
    """
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(desc=label, unit=unit, leave=False)

        def on_terminal(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)
            if done >= total:
                bar.close()

        return on_terminal
    started = time.perf_counter()
    last = [started]

    def in_log(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] > every_seconds or done >= total:
            last[0] = now
            log(f"{label}: {done}/{total} {unit} ({done / max(now - started, 1e-9):.1f} {unit}/s)")

    return in_log
