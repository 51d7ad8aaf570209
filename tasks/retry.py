"""Retry policy shared by the tasks: retry transient faults, never bad input."""

from __future__ import annotations

from typing import Any

from anograph.errors import InputError


def retry_unless_bad_input(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: a bad video or file will not get better on retry."""
    try:
        state.result()
    except InputError:
        return False
    except Exception:
        return True
    return True
