"""The detector interface shared by every object detector.

A detector turns one BGR frame into :class:`Detections`. Node features are computed
afterwards by :mod:`anograph.features`, so detectors stay small and swappable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


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
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    class_scores: np.ndarray

    @classmethod
    def empty(cls, n_classes: int) -> Detections:
        return cls(
            boxes=np.zeros((0, 4), np.float32),
            scores=np.zeros((0,), np.float32),
            class_ids=np.zeros((0,), np.int32),
            class_scores=np.zeros((0, n_classes), np.float32),
        )

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def select(self, keep: np.ndarray) -> Detections:
        """Return the detections at ``keep`` (a boolean mask or index array)."""
        return Detections(self.boxes[keep], self.scores[keep], self.class_ids[keep], self.class_scores[keep])


@runtime_checkable
class Detector(Protocol):
    """What the pipeline needs from an object detector.

    ``describe()`` must return JSON-serialisable settings, including a ``weights_sha256``
    entry (``None`` for weight-free detectors): it is stored in shard metadata and is
    part of the shard's identity, so changing the weights re-extracts.
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
