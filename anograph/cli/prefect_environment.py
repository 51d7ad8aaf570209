"""The environment a flow run from the command line starts Prefect in: no telemetry, a patient local server."""

from __future__ import annotations

import os


def quiet_prefect() -> None:
    """Turn Prefect's analytics off and give its ephemeral server time to start, unless the user set otherwise."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
