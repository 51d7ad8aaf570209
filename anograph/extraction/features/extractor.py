"""Node features: the vector stored for every detected object.

Each object (a graph node) gets one float vector made of named groups, always in this
order; a disabled group is left out, and the shard's :class:`FeatureLayout` records
which groups are present and how wide each is, so a model can pick groups by name:

==============  ===============  ==========================================================
group           width            content
==============  ===============  ==========================================================
``appearance``  96 (default)     ImageNet MobileNetV2 features of the object: one backbone
                                 pass over the whole frame, then RoIAlign over the box on
                                 the stride-16 map (96 channels; 1280 with the stride-32
                                 map), averaged to one vector (:mod:`.appearance`)
``class``       classes          the detector's per-class scores for the object (80 COCO
                                 classes for YOLOX: objectness x class probability; one
                                 column, the foreground fraction, for the motion detector)
``confidence``  1                the detector's score for the object
``geometry``    4                box centre x / frame width, centre y / frame height,
                                 box width / frame width, box height / frame height
``motion``      14 (default)     mean optical flow dx, dy and magnitude in the box, an
                                 8-bin magnitude-weighted flow-direction histogram, box
                                 velocity x, y from matching to the previous frame's boxes,
                                 and a matched flag; speeds are pixels per frame divided by
                                 the box height (:mod:`.motion`)
``frame_flow``  3                the same mean flow dx, dy and magnitude divided by the
                                 frame height instead: image-plane speed without the
                                 perspective correction
==============  ===============  ==========================================================

A detector that makes its own per-object vectors puts them first, as the group
``detector_features`` (width ``detector.feature_width``): the box-head output of
``torchvision`` (1024) or ``detectron2`` (2048, the paper's node feature), or the vectors
a ``precomputed`` import brings along.

Values are raw (not standardised): models standardise on their training set, so the
stored vectors do not depend on which videos were used for training.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from anograph.errors import InputError
from anograph.extraction.detectors.base import Detections
from anograph.extraction.features.appearance import AppearanceEmbedder
from anograph.extraction.features.layout import FeatureLayout
from anograph.extraction.features.motion import MotionFeatures

FEATURE_GROUPS = ("detector_features", "appearance", "class", "confidence", "geometry", "motion", "frame_flow")
GEOMETRY_WIDTH = 4


class NodeFeatureExtractor:
    """Computes the node feature vector of every detected object, frame by frame.

    Parameters
    ----------
    appearance:
        The appearance embedder; ``"default"`` builds :class:`AppearanceEmbedder` with its
        defaults, ``None`` leaves the ``appearance`` group out.
    motion:
        ``True`` (default) computes the ``motion`` group with :class:`MotionFeatures`
        defaults, a :class:`MotionFeatures` instance uses those settings, ``False``
        leaves the group out.
    """

    def __init__(
        self,
        appearance: AppearanceEmbedder | None | Literal["default"] = "default",
        motion: bool | MotionFeatures = True,
    ) -> None:
        if isinstance(appearance, str):
            if appearance != "default":
                raise InputError(
                    None, f"appearance must be an AppearanceEmbedder, None or 'default', got {appearance!r}"
                )
            appearance = AppearanceEmbedder()
        self.appearance = appearance
        if motion is True:
            motion = MotionFeatures()
        self.motion = motion if isinstance(motion, MotionFeatures) else None

    def layout(self, class_names: Sequence[str], detector_feature_width: int = 0) -> FeatureLayout:
        """The feature layout for a detector with ``class_names`` and ``detector_feature_width``-long vectors."""
        groups: list[tuple[str, int]] = []
        if detector_feature_width:
            groups.append(("detector_features", int(detector_feature_width)))
        if self.appearance is not None:
            groups.append(("appearance", self.appearance.width))
        groups += [("class", len(class_names)), ("confidence", 1), ("geometry", GEOMETRY_WIDTH)]
        if self.motion is not None:
            groups += self.motion.groups
        return FeatureLayout.of(groups)

    def reset(self) -> None:
        """Forget per-video state (the previous frame for motion). Call before each video."""
        if self.motion is not None:
            self.motion.reset()

    def features(self, frame: np.ndarray, detections: Detections) -> np.ndarray:
        """Node features ``(n, layout.width)`` float32 for the ``n`` detections in ``frame``.

        Call once per frame of a video, in order (motion compares with the previous call).
        """
        height, width = frame.shape[:2]
        boxes = np.asarray(detections.boxes, np.float32).reshape(-1, 4)
        n = len(boxes)
        parts: list[np.ndarray] = []
        if detections.features is not None:
            parts.append(np.asarray(detections.features, np.float32))
        if self.appearance is not None:
            parts.append(self.appearance.embed(frame, boxes))
        class_scores = np.asarray(detections.class_scores, np.float32)
        parts.append(class_scores if class_scores.ndim == 2 else class_scores.reshape(n, 1))
        parts.append(np.asarray(detections.scores, np.float32).reshape(n, 1))
        size = np.array([width, height], np.float32)
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2 / size
        extents = (boxes[:, 2:] - boxes[:, :2]) / size
        parts.append(np.concatenate([centres, extents], axis=1))
        if self.motion is not None:
            # Always called, even with no boxes, so the next frame's flow has its predecessor.
            parts.append(self.motion.features(frame, boxes))
        return np.concatenate(parts, axis=1).astype(np.float32, copy=False)

    def describe(self) -> dict[str, Any]:
        """Which groups are computed and how, for shard metadata."""
        return {
            "groups": [
                group
                for group in FEATURE_GROUPS
                if group != "detector_features"  # the detector's, recorded in its own description
                and (group != "appearance" or self.appearance is not None)
                and (group not in ("motion", "frame_flow") or self.motion is not None)
            ],
            "appearance": None if self.appearance is None else self.appearance.describe(),
            "motion": None if self.motion is None else self.motion.describe(),
            "geometry": ["centre_x / width", "centre_y / height", "box_width / width", "box_height / height"],
        }

    def __repr__(self) -> str:
        return f"NodeFeatureExtractor(appearance={self.appearance!r}, motion={self.motion!r})"
