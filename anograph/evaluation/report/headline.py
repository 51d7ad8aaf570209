"""The headline of a report: the few numbers the CLI prints and a model version's record keeps."""

from __future__ import annotations

from typing import Any

HEADLINE_KEYS = ("dataset", "detector", "default_scorer", "frame_auc_micro", "frame_auc_macro", "n_test_frames",
                 "n_anomalous_frames")


def headline_metrics(report: dict[str, Any]) -> dict[str, Any]:
    """The headline entries of ``report`` (:data:`HEADLINE_KEYS`; ``None`` where absent)."""
    return {key: report.get(key) for key in HEADLINE_KEYS}
