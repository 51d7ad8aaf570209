"""The detector interface shared by every object detector.

A detector turns one BGR frame into :class:`Detections`. Node features are computed
afterwards by :mod:`anograph.extraction.features`, so detectors stay small and swappable. A
detector may also hand over its own per-object feature vectors (a two-stage detector's
box-head output, or vectors imported from elsewhere); they become the node feature group
``detector_features``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from anograph.errors import InputError


@dataclass
class Detections:
    """Objects found in one frame.

    Attributes
    ----------
    boxes:
        ``(n, 4)`` float32, ``x1, y1, x2, y2`` in pixels of the original frame.
    scores:
        ``(n,)`` float32 detector confidence in ``[0, 1]``.
    class_ids:
        ``(n,)`` int32 index into the detector's ``class_names``.
    class_scores:
        ``(n, len(class_names))`` float32 per-class probabilities. For a detector
        without classes this is ``(n, 1)`` holding the confidence.
    features:
        ``(n, detector.feature_width)`` float32 per-object vectors computed by the
        detector itself, or ``None`` for a detector that makes none (``feature_width`` 0).
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    class_scores: np.ndarray
    features: np.ndarray | None = None

    @classmethod
    def empty(cls, n_classes: int, feature_width: int = 0) -> Detections:
        return cls(
            boxes=np.zeros((0, 4), np.float32),
            scores=np.zeros((0,), np.float32),
            class_ids=np.zeros((0,), np.int32),
            class_scores=np.zeros((0, n_classes), np.float32),
            features=np.zeros((0, feature_width), np.float32) if feature_width else None,
        )

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def select(self, keep: np.ndarray) -> Detections:
        """Return the detections at ``keep`` (a boolean mask or index array)."""
        features = None if self.features is None else self.features[keep]
        return Detections(
            self.boxes[keep], self.scores[keep], self.class_ids[keep], self.class_scores[keep], features
        )


@runtime_checkable
class Detector(Protocol):
    """What the pipeline needs from an object detector.

    ``describe()`` must return JSON-serialisable settings, including a ``weights_sha256``
    entry (``None`` for weight-free detectors): it is stored in shard metadata and is
    part of the shard's identity, so changing the weights re-extracts.

    Optional members, read through the helpers below so that a minimal detector needs none:

    * ``feature_width: int``: length of the vectors in :attr:`Detections.features`
      (absent or 0: the detector makes none);
    * ``batch_size: int``: how many frames :func:`detect_frames` hands over at once;
    * ``detect_batch(frames) -> list[Detections]``: detect in several frames of one video
      at once, in order (a GPU detector runs them as one batch);
    * ``start_video(name, n_frames)``: called after :meth:`reset` with the video's name
      and frame count, for a detector whose output depends on which video it is
      (:class:`anograph.extraction.detectors.precomputed.PrecomputedDetector`).
    """

    name: str
    class_names: tuple[str, ...]

    def reset(self) -> None:
        """Forget per-video state (a background model, say). Called before each video."""

    def detect(self, frame: np.ndarray) -> Detections:
        """Detect objects in one ``(H, W, 3)`` uint8 BGR frame."""

    def describe(self) -> dict[str, Any]:
        """Settings and weights hash, for shard metadata."""


@dataclass
class DetectorSpec:
    """How to build a detector: a registry name plus keyword options."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)


def feature_width(detector: Detector) -> int:
    """Length of the detector's own per-object feature vectors (0 when it makes none)."""
    return int(getattr(detector, "feature_width", 0))


def batch_size(detector: Detector) -> int:
    """How many frames the detector takes at once (1 unless it says otherwise)."""
    return max(1, int(getattr(detector, "batch_size", 1)))


def detect_frames(detector: Detector, frames: Sequence[np.ndarray]) -> list[Detections]:
    """Detections for consecutive ``frames`` of one video: one batch where the detector can."""
    detect_batch = getattr(detector, "detect_batch", None)
    if detect_batch is not None:
        return list(detect_batch(frames))
    return [detector.detect(frame) for frame in frames]


def check_confidence_threshold(confidence_threshold: float) -> None:
    """Every detector's ``confidence_threshold`` is a score in ``[0, 1]``; anything else is bad input."""
    if not 0.0 <= confidence_threshold <= 1.0:
        raise InputError(None, f"confidence_threshold must be in [0, 1], got {confidence_threshold}")


def check_nms_threshold(nms_threshold: float) -> None:
    """A non-maximum-suppression IoU threshold lies in ``(0, 1]``; anything else is bad input."""
    if not 0.0 < nms_threshold <= 1.0:
        raise InputError(None, f"nms_threshold must be in (0, 1], got {nms_threshold}")
