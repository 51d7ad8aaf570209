"""Objects for moving regions the detector missed: boxes around blobs of moving pixels.

A COCO detector misses objects it was not trained on or sees too small (on UCSD Ped2,
bicycles, skateboarders and carts are often missed), and a missed object cannot be scored.
The optical flow sees them move. Per frame:

1. the frame's moving pixels (:attr:`anograph.extraction.features.optical_flow.FrameFlow.moving`)
   are cleaned by a morphological closing (joins the parts of one object) and an opening
   (removes speckle), and those within ``border_margin`` pixels of the frame's edge are
   dropped: DIS's patches are cut there and its flow is least reliable (when compressed
   footage changes its noise from one frame to the next, the flow along the edges passes the
   moving threshold in patches);
2. each connected component covering at least ``min_area_fraction`` and at most
   ``max_area_fraction`` of the frame becomes a candidate box (a component covering most
   of the frame is a camera move or lighting change, not an object);
3. a candidate is dropped when the detector already explains it: more than
   ``max_covered_fraction`` of its moving pixels lie inside detector boxes, or its box
   overlaps a detector box at IoU above ``max_iou``.

The surviving boxes become objects whose source is ``motion_blob``
(:data:`anograph.io.shards.OBJECT_SOURCES`): class id :data:`UNKNOWN_CLASS_ID` (-1),
every class score 0 (the class is unknown; 0 is not "surely not a person"), confidence =
the fraction of the box's pixels that are moving, and zero ``detector_features`` when the
detector makes its own vectors.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch
import torchvision

from anograph.errors import InputError
from anograph.extraction.detectors.base import Detections
from anograph.extraction.features.optical_flow import FrameFlow

UNKNOWN_CLASS_ID = -1


class MotionBoxes:
    """Proposes boxes for moving regions no detector box explains (see the module docstring).

    Parameters
    ----------
    min_area_fraction:
        Smallest moving component kept, as a fraction of the frame's pixels. Default 0.002
        (173 pixels of a 360 x 240 frame, a 9 x 19 px walker).
    max_area_fraction:
        Largest component kept, as a fraction of the frame. Default 0.25.
    max_covered_fraction:
        A component more than this fraction of whose pixels lie inside detector boxes is
        already detected. Default 0.25: on normal training footage with one detection hidden
        per frame, it halves the proposals that are fragments of detected objects for a small
        loss of recovered ones, the best F1 of the thresholds tried (``bench/motion_box_precision.py``).
    max_iou:
        A component whose box overlaps a detector box at more than this IoU is already
        detected. Default 0.3.
    closing_size, opening_size:
        Sides of the morphological kernels. Defaults 7 and 3.
    border_margin:
        Moving pixels this close to the frame's edge, in pixels, seed no region; an object
        entering the frame is found once it is further in (the detector finds the ones it knows
        at the edge too). Default 4: on normal training footage it has the best F1 of the margins
        tried, with fewer spurious proposals than none (``bench/motion_box_precision.py``; the
        figures are in docs/model-selection.md).
    """

    def __init__(
        self,
        min_area_fraction: float = 0.002,
        max_area_fraction: float = 0.25,
        max_covered_fraction: float = 0.25,
        max_iou: float = 0.3,
        closing_size: int = 7,
        opening_size: int = 3,
        border_margin: int = 4,
    ) -> None:
        if not 0.0 < min_area_fraction < max_area_fraction <= 1.0:
            raise InputError(
                None,
                f"need 0 < min_area_fraction < max_area_fraction <= 1, got {min_area_fraction}, {max_area_fraction}",
            )
        for name, value in (("max_covered_fraction", max_covered_fraction), ("max_iou", max_iou)):
            if not 0.0 <= value <= 1.0:
                raise InputError(None, f"{name} must be in [0, 1], got {value}")
        if border_margin < 0:
            raise InputError(None, f"border_margin must not be negative, got {border_margin}")
        self.min_area_fraction = float(min_area_fraction)
        self.max_area_fraction = float(max_area_fraction)
        self.max_covered_fraction = float(max_covered_fraction)
        self.max_iou = float(max_iou)
        self.closing_size = int(closing_size)
        self.opening_size = int(opening_size)
        self.border_margin = int(border_margin)
        self._closing = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (max(1, closing_size),) * 2)
        self._opening = cv2.getStructuringElement(cv2.MORPH_RECT, (max(1, opening_size),) * 2)

    def moving_mask(self, frame_flow: FrameFlow) -> np.ndarray:
        """The cleaned ``uint8`` 0/1 mask of moving pixels, the border margin cleared."""
        mask = frame_flow.moving.astype(np.uint8)
        if self.closing_size > 1:
            mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self._closing)
        if self.opening_size > 1:
            mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._opening)
        margin = self.border_margin
        if margin:
            mask[:margin], mask[-margin:], mask[:, :margin], mask[:, -margin:] = 0, 0, 0, 0
        return mask

    def propose(self, frame_flow: FrameFlow, detector_boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Boxes ``(m, 4)`` xyxy and scores ``(m,)`` of the moving regions the ``detector_boxes`` miss."""
        height, width = frame_flow.shape
        n_pixels = height * width
        detector_boxes = np.asarray(detector_boxes, np.float32).reshape(-1, 4)
        _, labels, stats, _ = cv2.connectedComponentsWithStats(self.moving_mask(frame_flow), connectivity=8)
        area = stats[1:, cv2.CC_STAT_AREA]
        candidates = np.flatnonzero(
            (area >= self.min_area_fraction * n_pixels) & (area <= self.max_area_fraction * n_pixels)
        )
        if candidates.size == 0:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        x, y = stats[1:, cv2.CC_STAT_LEFT], stats[1:, cv2.CC_STAT_TOP]
        box_width, box_height = stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT]
        boxes = np.stack([x, y, x + box_width, y + box_height], axis=1).astype(np.float32)[candidates]
        scores = (area / (box_width * box_height)).astype(np.float32)[candidates]
        if len(detector_boxes):
            inside = np.zeros((height, width), bool)
            for x1, y1, x2, y2 in np.rint(detector_boxes).astype(np.int64):
                inside[max(0, y1) : max(0, y2), max(0, x1) : max(0, x2)] = True
            covered = np.bincount(labels[inside].ravel(), minlength=len(stats))[1:][candidates]
            iou = torchvision.ops.box_iou(torch.from_numpy(boxes), torch.from_numpy(detector_boxes)).numpy()
            keep = (covered <= self.max_covered_fraction * area[candidates]) & (iou.max(axis=1) <= self.max_iou)
            boxes, scores = boxes[keep], scores[keep]
        return boxes, scores

    def add_to(self, detections: Detections, frame_flow: FrameFlow) -> Detections:
        """``detections`` followed by the motion-blob objects of ``frame_flow`` (see the module docstring)."""
        boxes, scores = self.propose(frame_flow, detections.boxes)
        if len(boxes) == 0:
            return detections
        class_scores = np.asarray(detections.class_scores, np.float32)
        class_scores = class_scores if class_scores.ndim == 2 else class_scores.reshape(len(detections), 1)
        n_classes = class_scores.shape[1]
        features = None
        if detections.features is not None:
            blank = np.zeros((len(boxes), detections.features.shape[1]), np.float32)
            features = np.concatenate([np.asarray(detections.features, np.float32), blank])
        return Detections(
            boxes=np.concatenate([np.asarray(detections.boxes, np.float32).reshape(-1, 4), boxes]),
            scores=np.concatenate([np.asarray(detections.scores, np.float32), scores]),
            class_ids=np.concatenate(
                [np.asarray(detections.class_ids, np.int32), np.full(len(boxes), UNKNOWN_CLASS_ID, np.int32)]
            ),
            class_scores=np.concatenate(
                [class_scores, np.zeros((len(boxes), n_classes), np.float32)]
            ),
            features=features,
        )

    def describe(self) -> dict[str, Any]:
        """Settings, for shard metadata."""
        return {
            "min_area_fraction": self.min_area_fraction,
            "max_area_fraction": self.max_area_fraction,
            "max_covered_fraction": self.max_covered_fraction,
            "max_iou": self.max_iou,
            "closing_size": self.closing_size,
            "opening_size": self.opening_size,
            "border_margin": self.border_margin,
            "class_scores": "all 0 (unknown class), class_id -1",
        }

    def __repr__(self) -> str:
        return f"MotionBoxes(min_area_fraction={self.min_area_fraction}, max_iou={self.max_iou})"
