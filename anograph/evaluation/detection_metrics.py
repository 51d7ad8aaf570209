"""Object-level detection criteria of Street Scene: RBDC and TBDC.

Ramachandra & Jones ("Street Scene: A new dataset and evaluation protocol for video anomaly
detection", WACV 2020) judge anomalies by *where* they are, not only *when*: a detected
region counts when it overlaps a ground-truth anomalous region, a ground-truth track counts
when enough of its regions are detected, and false positives are counted per frame.
:func:`detection_curves` traces region and track detection rates against false positives
per frame over all score thresholds; :func:`area_under_detection_curve` summarises a curve
as RBDC / TBDC (area for FPR 0 to 1) and :func:`detection_rate_at` reads one operating point.
Frame-level metrics live in :mod:`anograph.evaluation.metrics`; they are separate because
they need only per-frame scores, these need per-object boxes and region ground truth.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import auc

from anograph.errors import InputError
from anograph.graph.build import paired_iou

#: Columns of a ground-truth region array: 0-based frame, track id, box corners in pixels.
GROUND_TRUTH_COLUMNS = ("frame", "track_id", "x1", "y1", "x2", "y2")
#: Columns of a detected region array: 0-based frame, box corners in pixels, anomaly score.
DETECTION_COLUMNS = ("frame", "x1", "y1", "x2", "y2", "score")


@dataclass(frozen=True)
class DetectionCurves:
    """Region and track detection rates against false positives per frame, one point per threshold.

    Point 0 is "nothing detected" (threshold above every score); point ``k`` uses every
    detected region scoring at least ``thresholds[k]``. All arrays have the same length.

    Attributes
    ----------
    thresholds:
        Score thresholds, descending (``+inf`` first).
    false_positives_per_frame:
        False-positive regions divided by the number of test frames (the criteria's FPR).
    region_detection_rate:
        Ground-truth regions matched by a detection / all ground-truth regions.
    track_detection_rate:
        Ground-truth tracks with at least ``alpha`` of their regions matched / all tracks.
    n_frames, n_regions, n_tracks:
        Test frames, ground-truth regions and ground-truth tracks counted.
    """

    thresholds: np.ndarray
    false_positives_per_frame: np.ndarray
    region_detection_rate: np.ndarray
    track_detection_rate: np.ndarray
    n_frames: int
    n_regions: int
    n_tracks: int


def detection_curves(
    detections: Mapping[str, np.ndarray],
    ground_truth: Mapping[str, np.ndarray],
    n_frames: Mapping[str, int],
    beta: float = 0.1,
    alpha: float = 0.1,
) -> DetectionCurves:
    """Region- and track-based detection curves (RBDC / TBDC) of Ramachandra & Jones.

    Street Scene's criteria ("Street Scene: A new dataset and evaluation protocol for video
    anomaly detection", WACV 2020, Section 4):

    * a detected region is a **true positive** when its IoU with a ground-truth region of the
      same frame that no other detection has matched yet is at least ``beta``; otherwise it
      is a **false positive**;
    * a ground-truth **track** is detected when at least ``alpha`` of its regions are;
    * the **false-positive rate** is false-positive regions per frame, over all test frames.

    Matching is greedy in descending score: within a frame, each detection takes the
    unmatched ground-truth region it overlaps most. Because a lower threshold only adds
    detections of lower score, the matching at every threshold is a prefix of one pass,
    so the whole curve costs one sort and one pass.

    Parameters
    ----------
    detections:
        Video -> ``(n, 6)`` array, columns :data:`DETECTION_COLUMNS`. Our detections are the
        model's per-object boxes and scores.
    ground_truth:
        Video -> ``(m, 6)`` array, columns :data:`GROUND_TRUTH_COLUMNS`; track ids are per video.
    n_frames:
        Video -> number of test frames (the FPR denominator counts every frame, empty or not).
    beta:
        IoU needed for a region to count as detected. Default 0.1, as in the paper.
    alpha:
        Fraction of a track's regions that must be detected. Default 0.1, as in the paper.
    """
    if set(ground_truth) != set(n_frames):
        raise InputError(None, "ground truth and frame counts must name the same test videos")
    unknown = [name for name in detections if name not in ground_truth]
    if unknown:
        raise InputError(None, f"detections given for video(s) without ground truth: {', '.join(unknown)}")
    if not 0 < beta <= 1 or not 0 < alpha <= 1:
        raise InputError(None, f"beta and alpha must lie in (0, 1], got beta={beta}, alpha={alpha}")

    # One row per detection over all videos: (score, video index, frame, box).
    names = list(ground_truth)
    rows = []
    for index, name in enumerate(names):
        found = np.asarray(detections.get(name, np.zeros((0, 6))), np.float64).reshape(-1, 6)
        rows.append(np.column_stack([np.full(len(found), index), found]))
    table = np.concatenate(rows) if rows else np.zeros((0, 7))
    if not np.all(np.isfinite(table)):
        raise InputError(None, "detected regions must have finite frames, boxes and scores")
    order = np.argsort(-table[:, 6], kind="stable")
    table = table[order]

    # Ground-truth regions indexed by (video, frame); each region also knows its global track.
    regions_by_frame: dict[tuple[int, int], np.ndarray] = {}
    track_of_region, region_boxes, track_sizes = [], [], []
    for index, name in enumerate(names):
        truth = np.asarray(ground_truth[name], np.float64).reshape(-1, 6)
        _, local_track = np.unique(truth[:, 1], return_inverse=True)
        offset = len(track_sizes)
        track_sizes.extend(np.bincount(local_track).tolist() if len(truth) else [])
        first = len(region_boxes)
        region_boxes.extend(truth[:, 2:6])
        track_of_region.extend((offset + local_track).tolist())
        for frame in np.unique(truth[:, 0]).astype(int):
            regions_by_frame[(index, frame)] = first + np.flatnonzero(truth[:, 0] == frame)
    region_boxes_array = np.asarray(region_boxes, np.float64).reshape(-1, 4)
    track_of_region_array = np.asarray(track_of_region, np.int64)
    n_regions, n_tracks = len(region_boxes_array), len(track_sizes)
    total_frames = int(sum(int(count) for count in n_frames.values()))
    if total_frames <= 0:
        raise InputError(None, "no test frames to count false positives over")

    matched = np.zeros(n_regions, bool)
    is_true_positive = np.zeros(len(table), bool)
    track_hits = np.zeros(n_tracks, np.int64)
    needed = np.ceil(alpha * np.asarray(track_sizes, np.float64) - 1e-9).astype(np.int64)
    track_detected_at = np.full(n_tracks, len(table))  # detection index at which each track is detected
    for position, (video, frame, *box, _score) in enumerate(table):
        candidates = regions_by_frame.get((int(video), int(frame)))
        if candidates is None:
            continue
        free = candidates[~matched[candidates]]
        if not len(free):
            continue
        overlaps = paired_iou(np.asarray(box)[None, :], region_boxes_array[free])
        best = int(np.argmax(overlaps))
        if overlaps[best] >= beta:
            region = free[best]
            matched[region] = True
            is_true_positive[position] = True
            track = track_of_region_array[region]
            track_hits[track] += 1
            if track_hits[track] == needed[track]:
                track_detected_at[track] = position

    # Curve points at the last detection of each run of tied scores.
    scores = table[:, 6]
    last_of_tie = np.flatnonzero(np.append(scores[1:] != scores[:-1], True)) if len(scores) else np.zeros(0, int)
    true_positives = np.cumsum(is_true_positive)
    false_positives = np.arange(1, len(table) + 1) - true_positives
    tracks_detected = np.searchsorted(np.sort(track_detected_at), last_of_tie, side="right")
    return DetectionCurves(
        thresholds=np.concatenate([[np.inf], scores[last_of_tie]]),
        false_positives_per_frame=np.concatenate([[0.0], false_positives[last_of_tie] / total_frames]),
        region_detection_rate=np.concatenate(
            [[0.0], true_positives[last_of_tie] / n_regions if n_regions else np.full(len(last_of_tie), np.nan)]
        ),
        track_detection_rate=np.concatenate(
            [[0.0], tracks_detected / n_tracks if n_tracks else np.full(len(last_of_tie), np.nan)]
        ),
        n_frames=total_frames,
        n_regions=n_regions,
        n_tracks=n_tracks,
    )


def area_under_detection_curve(
    false_positives_per_frame: np.ndarray, detection_rate: np.ndarray, max_false_positive_rate: float = 1.0
) -> float:
    """Area under a detection-rate vs false-positives-per-frame curve over ``[0, max]``, divided by ``max``.

    This is how RBDC and TBDC are summarised (area for FPR from 0 to 1). Points are joined
    linearly (trapezoids, :func:`sklearn.metrics.auc`); the curve is cut at ``max`` by
    interpolation, and when the detections run out before ``max`` the last detection rate
    is held to ``max`` (no lower threshold exists that could detect more). The result lies
    in ``[0, 1]``; NaN when the rates are undefined (no ground truth).
    """
    fpr = np.asarray(false_positives_per_frame, np.float64)
    rate = np.asarray(detection_rate, np.float64)
    if max_false_positive_rate <= 0:
        raise InputError(None, f"the FPR limit must be positive, got {max_false_positive_rate}")
    if not rate.size or np.isnan(rate).any():
        return float("nan")
    inside = fpr <= max_false_positive_rate
    x, y = fpr[inside], rate[inside]
    if (~inside).any():  # the first point beyond the limit: interpolate the rate at the limit
        beyond = int(np.argmax(~inside))
        x0, x1, y0, y1 = fpr[beyond - 1], fpr[beyond], rate[beyond - 1], rate[beyond]
        y_end = y0 + (y1 - y0) * (max_false_positive_rate - x0) / (x1 - x0)
    else:
        y_end = y[-1]
    x = np.append(x, max_false_positive_rate)
    y = np.append(y, y_end)
    return float(auc(x, y) / max_false_positive_rate)


def detection_rate_at(
    false_positives_per_frame: np.ndarray, detection_rate: np.ndarray, false_positive_rate: float
) -> float:
    """Highest detection rate reached with at most ``false_positive_rate`` false positives per frame.

    An operating point: the lowest threshold whose false positives per frame stay within
    the budget (no interpolation). NaN when the rates are undefined.
    """
    fpr = np.asarray(false_positives_per_frame, np.float64)
    rate = np.asarray(detection_rate, np.float64)
    allowed = fpr <= false_positive_rate
    if not rate.size or np.isnan(rate).any() or not allowed.any():
        return float("nan")
    return float(rate[allowed].max())
