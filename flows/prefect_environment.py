"""The environment a flow run from the command line starts Prefect in: no telemetry, a patient local server.

It also keeps the terminal readable (:func:`flow_log`): a failed run ends in one
``anograph: error: ...`` line, while every traceback goes to ``OUT/anograph.log``.
Only the standard :mod:`logging` module is used here, so importing it never imports Prefect.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from anograph.cli import LOG_FILE


def quiet_prefect() -> None:
    """Turn Prefect's analytics off and give its ephemeral server time to start, unless the user set otherwise."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")




class NoTracebacks(logging.Filter):
    """Keep records that carry a traceback off the terminal (they go to the log file)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.exc_info is None and "Traceback (most recent call last)" not in record.getMessage()


@contextmanager
def flow_log(out: Path) -> Iterator[Path]:
    """Send every log record of the run (Prefect's included) to ``out/anograph.log``, tracebacks only there.

    Enter it after Prefect is imported (its logging is configured at import): progress lines
    stay on the terminal, records with a traceback are kept off it, and an exception leaving
    the block is written to the log file with its traceback before it propagates.
    """
    path = Path(out) / LOG_FILE
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s | %(levelname)-7s | %(name)s - %(message)s"))
    root = logging.getLogger()
    quiet = NoTracebacks()
    consoles = [existing for existing in root.handlers if isinstance(existing, logging.StreamHandler)
                and not isinstance(existing, logging.FileHandler)]
    for console in consoles:
        console.addFilter(quiet)
    root.addHandler(handler)
    try:
        yield path
    except BaseException:
        handler.handle(logging.LogRecord("anograph", logging.ERROR, __file__, 0, "the run failed", None,
                                         sys.exc_info()))
        raise
    finally:
        root.removeHandler(handler)
        for console in consoles:
            console.removeFilter(quiet)
        handler.close()
