"""How the alert threshold of ``anograph score`` fares on the test videos, for the report.

The threshold is never chosen here: it is the frame calibration's (the given quantile of
the frame scores of the normal training videos, each scored leave-one-out; see
:mod:`anograph.serving.calibration`). The report only counts, with the test labels, what that
threshold flags: frames over it, anomalous frames among them, false alarms, and how many
anomalous stretches (runs of consecutive anomalous frames) it touches at least once. It also
lists each normal training video's frames, held out, over the same quantile of the other
training videos' frames (no test label needed): one with many over looks unlike the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

#: Training videos listed in the report, those with the largest share of frames over first.
LISTED_TRAINING_VIDEOS = 10
#: A training video with more than this many times the expected share of frames over is marked.
UNLIKE_THE_OTHERS = 5.0


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
        "training_videos": threshold.get("training_videos"),
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
        *training_videos_markdown(summary),
    ]


def training_videos_markdown(summary: Mapping[str, Any]) -> list[str]:
    """Each training video's frames over the other training videos' quantile, held out (the calibration's counts)."""
    videos = summary.get("training_videos")
    if not videos:
        return []
    expected = 1.0 - float(summary["quantile"])
    shares = {video: over / frames if frames else 0.0 for video, (over, frames) in videos.items()}
    order = sorted(shares, key=lambda video: (-shares[video], video))
    lines = [
        "",
        "### Training videos, each held out",
        "",
        f"Each normal training video, scored by the model fitted without it, against the {summary['quantile']:g} "
        f"quantile of the other training videos' frame scores: a video like the others has about {expected:.0%} of "
        f"its frames over. One marked **unlike the others** has more than "
        f"{UNLIKE_THE_OTHERS:g} times that: it may hold an anomaly, or its camera may have moved; worth a look "
        "before the next training.",
        "",
        "| training video | frames over | frames | share |",
        "|---|---|---|---|",
    ]
    for video in order[:LISTED_TRAINING_VIDEOS]:
        over, frames = videos[video]
        mark = " **unlike the others**" if expected > 0 and shares[video] > UNLIKE_THE_OTHERS * expected else ""
        lines.append(f"| `{video}`{mark} | {over} | {frames} | {shares[video]:.1%} |")
    if len(order) > LISTED_TRAINING_VIDEOS:
        rest = order[LISTED_TRAINING_VIDEOS:]
        lines += ["", f"{len(rest)} more, each at or under {shares[rest[0]]:.1%}."]
    return lines
