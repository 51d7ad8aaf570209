"""How the alert threshold of ``anograph score`` fares on the test videos, for the report.

The threshold is never chosen here: it is the frame calibration's (the given quantile of
the frame scores of the normal training videos, each scored leave-one-out; see
:mod:`anograph.serving.calibration`). The report only counts, with the test labels, what that
threshold flags: frames over it, anomalous frames among them, false alarms, and how many
anomalous stretches (runs of consecutive anomalous frames) it touches at least once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def _runs(label: np.ndarray) -> list[tuple[int, int]]:
    edges = np.diff(np.r_[0, label.astype(np.int8), 0])
    return list(zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0], strict=True))


def threshold_on_test(threshold: Mapping[str, Any] | None, frame_scores: Mapping[str, np.ndarray],
                      labels: Mapping[str, np.ndarray]) -> dict[str, Any] | None:
    """The threshold with its test-set counts, or ``None`` without a threshold.

    ``frame_scores`` are the threshold's scorer's per-frame scores (NaN where a frame has no
    object: never over the threshold).
    """
    if threshold is None:
        return None
    value = float(threshold["value"])
    flagged = caught = false_alarms = runs = runs_caught = frames = anomalous = 0
    for video, label in labels.items():
        label = np.asarray(label, bool)
        over = np.nan_to_num(np.asarray(frame_scores[video], np.float64), nan=-np.inf) > value
        frames += len(label)
        anomalous += int(label.sum())
        flagged += int(over.sum())
        caught += int((over & label).sum())
        false_alarms += int((over & ~label).sum())
        for start, stop in _runs(label):
            runs += 1
            runs_caught += int(over[start:stop].any())
    return {
        **{key: threshold[key] for key in ("value", "quantile", "scorer", "source")},
        "test_frames": frames, "test_anomalous_frames": anomalous, "frames_flagged": flagged,
        "anomalous_frames_flagged": caught, "normal_frames_flagged": false_alarms,
        "anomalous_runs": runs, "anomalous_runs_flagged": runs_caught,
    }


def threshold_markdown(summary: Mapping[str, Any] | None) -> list[str]:
    """The report's "Alert threshold" section."""
    if summary is None:
        return []
    return [
        "",
        "## Alert threshold",
        "",
        f"`anograph score` with this model alerts when a `{summary['scorer']}` frame score exceeds "
        f"**{summary['value']:.4g}**: the {summary['quantile']:g} quantile of the frame scores of the normal "
        "training videos, each scored leave-one-out (the model's frame calibration; no test label "
        "chose it). It is drawn as a dashed line on the per-video plots. On these test videos:",
        "",
        "| frames flagged | anomalous frames flagged | normal frames flagged | anomalous stretches touched |",
        "|---|---|---|---|",
        f"| {summary['frames_flagged']} of {summary['test_frames']} | {summary['anomalous_frames_flagged']} of "
        f"{summary['test_anomalous_frames']} | {summary['normal_frames_flagged']} of "
        f"{summary['test_frames'] - summary['test_anomalous_frames']} | {summary['anomalous_runs_flagged']} of "
        f"{summary['anomalous_runs']} |",
    ]
