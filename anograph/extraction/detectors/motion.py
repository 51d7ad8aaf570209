"""A weight-free detector for fixed cameras: moving regions from background subtraction.

It needs no model download, so the synthetic demo and any fixed-camera footage work on a
fresh machine with no network. It finds *moving* things only: an object that stands still
long enough becomes background.

Per frame:

1. OpenCV's MOG2 Gaussian-mixture background model (``cv2.createBackgroundSubtractorMOG2``,
   shadows off) marks foreground pixels and learns the frame. MOG2 keeps several modes
   per pixel, so the spot an object leaves is re-learnt within a few frames instead of
   lingering as a "ghost";
2. a morphological opening removes speckle noise, a closing joins the parts of one
   object (limbs, textured surfaces that partly match the background);
3. connected components of at least ``min_area`` pixels become boxes.

There is one class, ``"object"``. An object's score is the fraction of its box that is
foreground (a solid blob scores near 1, a thin diagonal streak lower).

Warm-up: the model starts from the first frame of each video (:meth:`reset` clears it),
so the first frame has no detections (everything is new), and for the next few frames
an object that was present in the first frame also leaves a ghost at its starting spot
that fades as MOG2 learns the uncovered background. A frame in which more than
``max_foreground_fraction`` of the pixels change at once (the first frame, a camera jump,
a lighting switch) yields no detections.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from anograph.errors import InputError
from anograph.extraction.detectors.base import Detections


class MotionDetector:
    """Moving-object detector for fixed cameras (MOG2 background subtraction).

    Parameters
    ----------
    min_area:
        Smallest foreground component kept, in pixels. Default 64 (an 8x8 patch): an
        object of 12 px or more passes, isolated noise does not.
    history:
        MOG2 history length in frames: how fast the background adapts. Default 200.
    variance_threshold:
        MOG2 squared Mahalanobis distance for a pixel to be foreground. Default 16
        (OpenCV's default); raise it for noisy footage.
    opening_size:
        Side of the square kernel that removes speckle. Default 3.
    closing_size:
        Side of the square kernel that joins parts of one object. Default 7.
    max_foreground_fraction:
        A frame with more changed pixels than this is treated as a scene change and
        yields no detections. Default 0.5.
    """

    name = "motion"
    class_names: tuple[str, ...] = ("object",)

    def __init__(
        self,
        min_area: int = 64,
        history: int = 200,
        variance_threshold: float = 16.0,
        opening_size: int = 3,
        closing_size: int = 7,
        max_foreground_fraction: float = 0.5,
    ) -> None:
        if min_area < 1:
            raise InputError(None, f"min_area must be at least 1 pixel, got {min_area}")
        if history < 1:
            raise InputError(None, f"history must be at least 1 frame, got {history}")
        if not 0.0 < max_foreground_fraction <= 1.0:
            raise InputError(
                None, f"max_foreground_fraction must be in (0, 1], got {max_foreground_fraction}"
            )
        self.min_area = int(min_area)
        self.history = int(history)
        self.variance_threshold = float(variance_threshold)
        self.opening_size = int(opening_size)
        self.closing_size = int(closing_size)
        self.max_foreground_fraction = float(max_foreground_fraction)
        self._opening = cv2.getStructuringElement(cv2.MORPH_RECT, (max(1, opening_size),) * 2)
        self._closing = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (max(1, closing_size),) * 2)
        self.reset()

    def reset(self) -> None:
        """Forget the background model (call before each video)."""
        self._background = cv2.createBackgroundSubtractorMOG2(
            history=self.history, varThreshold=self.variance_threshold, detectShadows=False
        )

    def foreground_mask(self, frame: np.ndarray) -> np.ndarray:
        """Update the background model with ``frame``; return its cleaned ``uint8`` 0/1 foreground mask."""
        mask = (self._background.apply(frame) > 0).astype(np.uint8)
        if self.opening_size > 1:
            mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._opening)
        if self.closing_size > 1:
            mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self._closing)
        return mask

    def detect(self, frame: np.ndarray) -> Detections:
        """Boxes around the moving regions of one ``(H, W, 3)`` uint8 BGR frame."""
        mask = self.foreground_mask(frame)
        if mask.mean() > self.max_foreground_fraction:
            return Detections.empty(1)
        _, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        stats = stats[1:]  # component 0 is the background
        stats = stats[stats[:, cv2.CC_STAT_AREA] >= self.min_area]
        if len(stats) == 0:
            return Detections.empty(1)
        x, y = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
        width, height = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
        boxes = np.stack([x, y, x + width, y + height], axis=1).astype(np.float32)
        scores = (stats[:, cv2.CC_STAT_AREA] / (width * height)).astype(np.float32)
        order = np.argsort(-scores, kind="stable")
        return Detections(
            boxes=boxes[order],
            scores=scores[order],
            class_ids=np.zeros(len(order), np.int32),
            class_scores=scores[order, None],
        )

    def describe(self) -> dict[str, Any]:
        """Name and settings; no weights."""
        return {
            "name": self.name,
            "weights_sha256": None,
            "method": "opencv-mog2",
            "min_area": self.min_area,
            "history": self.history,
            "variance_threshold": self.variance_threshold,
            "opening_size": self.opening_size,
            "closing_size": self.closing_size,
            "max_foreground_fraction": self.max_foreground_fraction,
        }

    def __repr__(self) -> str:
        return f"MotionDetector(min_area={self.min_area}, history={self.history})"
