"""Evaluation metrics: frame AUC (micro, macro), EER, Youden-threshold counts, RBDC / TBDC.

Frame level: AUC (micro and macro), equal error rate, score filling and smoothing, and the
confusion counts and accuracy at the threshold maximising TPR - FPR (:func:`youden_counts`).
Object level: the region- and track-based detection criteria of Street Scene
(:func:`detection_curves`, :func:`area_under_detection_curve`, :func:`detection_rate_at`).
ADOC's nlilo-accuracy is not here; :data:`NLILO_NOT_FOUND` says why.

Inputs are dictionaries keyed by test-video name: per-frame scores (higher = more
anomalous) and per-frame boolean labels. The conventions, stated because published
numbers differ by them:

* **Empty frames.** A frame in which the detector found no object has no score (NaN).
  :func:`fill_empty_frames` gives it the lowest finite score over *all* videos, so it
  ranks as the most normal frame anywhere.
* **Smoothing.** :func:`smooth_scores` applies a 1-D Gaussian along time per video
  (``scipy.ndimage.gaussian_filter1d``, ``mode="nearest"``); many video-anomaly papers
  report smoothed scores, so reports give both.
* **Micro AUC** pools every frame of every video into one ROC curve.
* **Macro AUC** is the mean of per-video AUCs. A video whose frames are all normal or all
  anomalous has no AUC of its own (several UCSD Ped2 test videos are anomalous from the
  first to the last frame). ``convention="pad"`` (default) follows a published convention:
  each video gets one extra normal frame scored at its minimum and one extra anomalous
  frame scored at its maximum, which defines every video's AUC. ``convention="skip"``
  leaves such videos out.

AUCs and ROC points come from scikit-learn. Undefined values (e.g. micro AUC when no
frame is anomalous) are returned as NaN; the report turns them into JSON ``null``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.ndimage import gaussian_filter1d
from sklearn.metrics import auc, confusion_matrix, roc_auc_score, roc_curve

from anograph.errors import InputError
from anograph.graph.build import paired_iou

MacroConvention = Literal["pad", "skip"]
MACRO_CONVENTIONS: tuple[str, ...] = ("pad", "skip")


@dataclass(frozen=True)
class VideoAUCs:
    """Per-video AUCs under a macro convention.

    Attributes
    ----------
    aucs:
        Video name -> AUC; ``None`` for a single-class video under ``"skip"``.
    n_single_class:
        How many videos are all normal or all anomalous.
    convention:
        ``"pad"`` or ``"skip"``.
    """

    aucs: dict[str, float | None]
    n_single_class: int
    convention: str


def fill_empty_frames(scores: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Replace NaN scores (frames without objects) by the lowest finite score over all videos.

    Parameters
    ----------
    scores:
        Video name -> per-frame scores, NaN where a frame has no object.

    Returns
    -------
    dict
        New float64 arrays; where no video has any finite score, NaNs become 0.
    """
    arrays = {name: np.asarray(values, dtype=np.float64) for name, values in scores.items()}
    finite = [values[np.isfinite(values)] for values in arrays.values()]
    finite = [values for values in finite if values.size]
    lowest = float(min(values.min() for values in finite)) if finite else 0.0
    return {name: np.where(np.isnan(values), lowest, values) for name, values in arrays.items()}


def smooth_scores(scores: Mapping[str, np.ndarray], sigma: float) -> dict[str, np.ndarray]:
    """Gaussian smoothing along time, per video.

    Parameters
    ----------
    scores:
        Video name -> per-frame scores without NaN (call :func:`fill_empty_frames` first).
    sigma:
        Standard deviation in frames; 0 returns unchanged copies.
    """
    if not np.isfinite(sigma) or sigma < 0:
        raise InputError(None, f"smoothing sigma must be 0 or more, got {sigma}")
    smoothed: dict[str, np.ndarray] = {}
    for name, values in scores.items():
        values = np.asarray(values, dtype=np.float64)
        if np.isnan(values).any():
            raise InputError(None, f"video {name}: scores contain NaN; fill empty frames before smoothing")
        smoothed[name] = (
            values.copy()
            if sigma == 0 or values.size == 0
            else gaussian_filter1d(values, sigma, mode="nearest")
        )
    return smoothed


def _validated(
    scores: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray]
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, scores, labels) per labelled video, in label order, after checking they fit."""
    missing = [name for name in labels if name not in scores]
    if missing:
        raise InputError(None, f"no scores for test video(s) {', '.join(missing)}")
    unlabelled = [name for name in scores if name not in labels]
    if unlabelled:
        raise InputError(None, f"scores given for video(s) without labels: {', '.join(unlabelled)}")
    if not labels:
        raise InputError(None, "no test videos to evaluate")
    videos = []
    for name, label in labels.items():
        label = np.asarray(label).astype(bool)
        values = np.asarray(scores[name], dtype=np.float64)
        if values.shape != label.shape:
            raise InputError(None, f"video {name}: {values.size} scores for {label.size} labelled frames")
        if not np.isfinite(values).all():
            raise InputError(None, f"video {name}: scores must be finite (fill empty frames first)")
        videos.append((name, values, label))
    return videos


def _auc(values: np.ndarray, label: np.ndarray) -> float:
    if label.size == 0 or label.all() or not label.any():
        return float("nan")
    return float(roc_auc_score(label, values))


def frame_auc_micro(scores: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray]) -> float:
    """Area under the ROC curve of all test frames pooled (NaN when only one class is present)."""
    videos = _validated(scores, labels)
    return _auc(
        np.concatenate([values for _, values, _ in videos]), np.concatenate([label for _, _, label in videos])
    )


def video_aucs(
    scores: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray], convention: MacroConvention = "pad"
) -> VideoAUCs:
    """Each video's own AUC, and how many videos are single-class.

    Parameters
    ----------
    scores, labels:
        Per-video frame scores and boolean labels, same names and lengths.
    convention:
        ``"pad"`` (default): add one normal frame at the video's minimum score and one
        anomalous frame at its maximum, so every non-empty video has an AUC.
        ``"skip"``: single-class videos get ``None``.
    """
    if convention not in MACRO_CONVENTIONS:
        raise InputError(None, f"macro AUC convention must be one of {MACRO_CONVENTIONS}, got {convention!r}")
    aucs: dict[str, float | None] = {}
    n_single_class = 0
    for name, values, label in _validated(scores, labels):
        single_class = label.all() or not label.any()
        n_single_class += int(single_class)
        if convention == "pad" and values.size:
            padded_values = np.concatenate([values, [values.min(), values.max()]])
            padded_labels = np.concatenate([label, [False, True]])
            aucs[name] = _auc(padded_values, padded_labels)
        else:
            aucs[name] = None if single_class else _auc(values, label)
    return VideoAUCs(aucs=aucs, n_single_class=n_single_class, convention=convention)


def frame_auc_macro(
    scores: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray], convention: MacroConvention = "pad"
) -> float:
    """Mean of per-video AUCs (see :func:`video_aucs`); NaN when no video has one."""
    defined = [auc for auc in video_aucs(scores, labels, convention).aucs.values() if auc is not None]
    return float(np.mean(defined)) if defined else float("nan")


def roc_points(
    scores: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates of the pooled ROC curve (for plots)."""
    videos = _validated(scores, labels)
    label = np.concatenate([label for _, _, label in videos])
    if label.all() or not label.any():
        return np.array([0.0, 1.0]), np.array([0.0, 1.0])
    fpr, tpr, _ = roc_curve(label, np.concatenate([values for _, values, _ in videos]))
    return fpr, tpr


def equal_error_rate(scores: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray]) -> float:
    """Pooled equal error rate: where the false-positive rate equals the miss rate.

    The crossing is interpolated linearly between the two ROC points around it; NaN
    when only one class is present.
    """
    videos = _validated(scores, labels)
    label = np.concatenate([label for _, _, label in videos])
    if label.all() or not label.any():
        return float("nan")
    fpr, tpr, _ = roc_curve(
        label, np.concatenate([values for _, values, _ in videos]), drop_intermediate=False
    )
    gap = (1.0 - tpr) - fpr  # miss rate minus false-positive rate: falls from 1 to -1
    crossing = int(np.argmax(gap <= 0))
    if crossing == 0:
        return float(fpr[0])
    before, after = gap[crossing - 1], gap[crossing]
    weight = before / (before - after)
    return float(fpr[crossing - 1] + weight * (fpr[crossing] - fpr[crossing - 1]))


# ---------------------------------------------------------------------------------------------
# Counts at the Youden threshold (the paper's ADOC protocol, Section 4.3 and Table 2)
# ---------------------------------------------------------------------------------------------

NLILO_NOT_FOUND = (
    "nlilo-accuracy is not computed: the ADOC paper (Pranav, Zhenggang & Shah, 'A Day on Campus - An "
    "Anomaly Detection Dataset for Events in a Single Camera', ACCV 2020) defines it, but its text could "
    "not be read from this machine (only its abstract was reachable), and the Ano-Graph paper names the "
    "metric without defining it. Rather than guess, it is left out."
)


@dataclass(frozen=True)
class ThresholdCounts:
    """Frame counts at one decision threshold (a frame is called anomalous when score >= threshold).

    Attributes
    ----------
    threshold:
        The score threshold.
    true_negatives, false_negatives, true_positives, false_positives:
        Frame counts, anomaly being the positive class.
    accuracy:
        ``(TP + TN) / all frames``.
    true_positive_rate, false_positive_rate:
        ``TP / (TP + FN)`` and ``FP / (FP + TN)``; NaN when the class is absent.
    """

    threshold: float
    true_negatives: int
    false_negatives: int
    true_positives: int
    false_positives: int
    accuracy: float
    true_positive_rate: float
    false_positive_rate: float


def counts_at_threshold(
    scores: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray], threshold: float
) -> ThresholdCounts:
    """Confusion counts and accuracy of all frames pooled, calling ``score >= threshold`` anomalous.

    Counts come from :func:`sklearn.metrics.confusion_matrix`.
    """
    videos = _validated(scores, labels)
    label = np.concatenate([label for _, _, label in videos])
    predicted = np.concatenate([values for _, values, _ in videos]) >= threshold
    negatives, false_positives, false_negatives, true_positives = (
        int(count) for count in confusion_matrix(label, predicted, labels=[False, True]).ravel()
    )
    total = label.size
    positives = true_positives + false_negatives
    normals = negatives + false_positives
    return ThresholdCounts(
        threshold=float(threshold),
        true_negatives=negatives,
        false_negatives=false_negatives,
        true_positives=true_positives,
        false_positives=false_positives,
        accuracy=(true_positives + negatives) / total if total else float("nan"),
        true_positive_rate=true_positives / positives if positives else float("nan"),
        false_positive_rate=false_positives / normals if normals else float("nan"),
    )


def youden_counts(scores: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray]) -> ThresholdCounts:
    """Counts at the threshold that maximises TPR − FPR (Youden's J) on the pooled ROC curve.

    This is the operating point the Ano-Graph paper uses for its ADOC table (Section 4.3:
    "the test time threshold in which the difference of TPR and FPR is maximized"). The
    threshold is chosen on the test labels by definition of the metric. Among thresholds
    with equal J the highest one (fewest frames called anomalous) is taken. With one class
    only, the threshold is the highest score.
    """
    videos = _validated(scores, labels)
    label = np.concatenate([label for _, _, label in videos])
    values = np.concatenate([values for _, values, _ in videos])
    if label.all() or not label.any():
        return counts_at_threshold(scores, labels, float(values.max()) if values.size else 0.0)
    fpr, tpr, thresholds = roc_curve(label, values, drop_intermediate=False)
    candidates = np.isfinite(thresholds)  # the first threshold is +inf (nothing called anomalous)
    best = int(np.argmax(np.where(candidates, tpr - fpr, -np.inf)))  # first maximum = highest threshold
    return counts_at_threshold(scores, labels, float(thresholds[best]))


# ---------------------------------------------------------------------------------------------
# Region- and track-based detection criteria (Ramachandra & Jones, Street Scene, WACV 2020)
# ---------------------------------------------------------------------------------------------

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
