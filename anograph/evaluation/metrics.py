"""Frame-level evaluation metrics: frame AUC (micro, macro), EER, Youden-threshold counts.

Everything here needs only per-frame scores and labels: score filling and smoothing, AUC
(micro and macro), the equal error rate, and the confusion counts and accuracy at the
threshold maximising TPR - FPR (:func:`youden_counts`). The object-level region- and track-based criteria of Street Scene (RBDC / TBDC) are in
:mod:`anograph.evaluation.detection_metrics`. ADOC's nlilo-accuracy is not here;
:data:`NLILO_NOT_FOUND` says why.

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
from sklearn.metrics import confusion_matrix, roc_auc_score, roc_curve

from anograph.errors import InputError

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

