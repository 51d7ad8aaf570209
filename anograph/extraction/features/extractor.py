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
                                 column, the foreground fraction, for the motion detector);
                                 all 0 for a motion-blob object (class unknown)
``confidence``  1                the detector's score for the object (a motion-blob
                                 object: the moving fraction of its box)
``geometry``    4                box centre x / frame width, centre y / frame height,
                                 box width / frame width, box height / frame height
``motion``      14 (default)     mean optical flow dx, dy and magnitude in the box, an
                                 8-bin magnitude-weighted flow-direction histogram, box
                                 velocity x, y from the tracker, and a matched flag;
                                 speeds are pixels per frame divided by the box height
                                 (:mod:`.motion`)
``frame_flow``  3                the same mean flow dx, dy and magnitude divided by the
                                 frame height instead: image-plane speed without the
                                 perspective correction
``track``       4                the track's mean velocity x, y and speed over its last
                                 frames / frame height, and how many frames they average
``flow_stats``  15 (default)     box flow percentiles, and the mean flow, moving fraction
                                 and direction histogram of the box's moving pixels only,
                                 / frame height (:mod:`.flow_stats`)
==============  ===============  ==========================================================

A detector that makes its own per-object vectors puts them first, as the group
``detector_features`` (width ``detector.feature_width``): the box-head output of
``torchvision`` (1024) or ``detectron2`` (2048, the paper's node feature), or the vectors
a ``precomputed`` import brings along. A motion-blob object gets zeros there.

The optical flow (:mod:`.optical_flow`) is computed once per frame and shared by
``motion``, ``flow_stats`` and the motion-blob objects (:mod:`.motion_boxes`).

Values are raw (not standardised): models standardise on their training set, so the
stored vectors do not depend on which videos were used for training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from anograph.errors import InputError
from anograph.extraction.detectors.base import Detections
from anograph.extraction.features.appearance import AppearanceEmbedder
from anograph.extraction.features.cell_motion import CellMotion
from anograph.extraction.features.flow_stats import FlowStatistics
from anograph.extraction.features.layout import FeatureLayout
from anograph.extraction.features.motion import MotionFeatures
from anograph.extraction.features.motion_boxes import MotionBoxes
from anograph.extraction.features.optical_flow import FrameFlow, OpticalFlow

FEATURE_GROUPS = (
    "detector_features", "appearance", "class", "confidence", "geometry",
    "motion", "frame_flow", "track", "flow_stats",
)  # fmt: skip
MOTION_GROUPS = ("motion", "frame_flow", "track")
GEOMETRY_WIDTH = 4
SOURCE_DETECTOR, SOURCE_MOTION_BLOB = 0, 1  # indices into anograph.io.shards.OBJECT_SOURCES
NO_TRACK = -1


@dataclass
class FrameObjects:
    """One frame's objects and their node features, as :meth:`NodeFeatureExtractor.push` hands them out.

    Attributes
    ----------
    index:
        0-based frame index within the video.
    detections:
        The detector's objects, then the motion-blob objects.
    sources:
        ``(n,)`` int8: 0 = detector, 1 = motion blob.
    track_ids:
        ``(n,)`` int32 track id within the video (:mod:`.tracks`), -1 without motion features.
    features:
        ``(n, layout.width)`` float32 node features.
    cell_speeds:
        ``(n_cells,)`` float32 moving speed of each cell of the frame's grid (:mod:`.cell_motion`),
        or ``None`` without cell motion.
    """

    index: int
    detections: Detections
    sources: np.ndarray
    track_ids: np.ndarray
    features: np.ndarray
    cell_speeds: np.ndarray | None = None


@dataclass
class _PendingFrame:
    frame: np.ndarray
    detections: Detections
    grey: np.ndarray


class NodeFeatureExtractor:
    """Computes the node feature vector of every detected object, frame by frame.

    Parameters
    ----------
    appearance:
        The appearance embedder; ``"default"`` builds :class:`AppearanceEmbedder` with its
        defaults, ``None`` leaves the ``appearance`` group out.
    motion:
        ``True`` (default) computes the ``motion``, ``frame_flow`` and ``track`` groups
        with :class:`MotionFeatures` defaults, a :class:`MotionFeatures` instance uses
        those settings (its flow is the one every flow consumer shares), ``False`` leaves
        them out.
    flow_stats:
        ``True`` (default) computes the ``flow_stats`` group with :class:`FlowStatistics`
        defaults, an instance uses its settings, ``False`` leaves it out.
    motion_boxes:
        ``False`` (default) keeps the detector's objects only; ``True`` or a
        :class:`MotionBoxes` instance adds objects for moving regions the detector missed
        (through :meth:`push` only).
    cell_motion:
        ``False`` (default) reads no cell speeds; ``True`` or a :class:`CellMotion` instance gives
        every frame the moving speed of each cell of a fixed grid (:attr:`FrameObjects.cell_speeds`).
    """

    def __init__(
        self,
        appearance: AppearanceEmbedder | None | Literal["default"] = "default",
        motion: bool | MotionFeatures = True,
        flow_stats: bool | FlowStatistics = True,
        motion_boxes: bool | MotionBoxes = False,
        cell_motion: bool | CellMotion = False,
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
        if flow_stats is True:
            flow_stats = FlowStatistics()
        self.flow_stats = flow_stats if isinstance(flow_stats, FlowStatistics) else None
        if motion_boxes is True:
            motion_boxes = MotionBoxes()
        self.motion_boxes = motion_boxes if isinstance(motion_boxes, MotionBoxes) else None
        if cell_motion is True:
            cell_motion = CellMotion()
        self.cell_motion = cell_motion if isinstance(cell_motion, CellMotion) else None
        self.optical_flow: OpticalFlow | None = None
        if self.motion is not None:
            self.optical_flow = self.motion.optical_flow
        elif self.flow_stats is not None or self.motion_boxes is not None or self.cell_motion is not None:
            self.optical_flow = OpticalFlow()
        self.reset()

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
        if self.flow_stats is not None:
            groups.append(("flow_stats", self.flow_stats.width))
        return FeatureLayout.of(groups)

    def reset(self, frame_rate: float | None = None) -> None:
        """Forget per-video state (previous frame, tracks, a held first frame). Call before each video.

        ``frame_rate`` is the video's, which turns the flow's moving floor (a speed) into pixels
        per frame (:meth:`~anograph.extraction.features.optical_flow.OpticalFlow.start_video`);
        ``None`` assumes UCSD's 10 frames a second.
        """
        if self.motion is not None:
            self.motion.reset()
        if self.optical_flow is not None:
            self.optical_flow.start_video(frame_rate)
        self._previous_grey: np.ndarray | None = None
        self._pending: _PendingFrame | None = None
        self._next_index = 0

    def _needs_flow(self, detections: Detections) -> bool:
        return self.optical_flow is not None and (
            len(detections) > 0 or self.motion_boxes is not None or self.cell_motion is not None
        )

    def _current_flow(self, grey: np.ndarray | None, shape: tuple[int, int], detections: Detections) -> FrameFlow | None:
        """The flow at the current frame's pixels, from the previous frame (``None`` when there is none)."""
        previous = self._previous_grey
        if grey is None or previous is None or previous.shape != grey.shape or not self._needs_flow(detections):
            return None
        assert self.optical_flow is not None
        return self.optical_flow.frame_flow(self.optical_flow.at_current(previous, grey, shape))

    def push(self, frame: np.ndarray, detections: Detections) -> list[FrameObjects]:
        """Add the next frame of the video; return the frames whose objects are now final, in order.

        The first frame of a video is held until the second arrives, so that its flow can
        be the forward flow towards the second instead of none; every later frame comes
        back at once. Call :meth:`finish` after the last frame.
        """
        grey = None if self.optical_flow is None else self.optical_flow.grey(frame)
        shape = frame.shape[:2]
        done: list[FrameObjects] = []
        if self._next_index == 0 and grey is not None:
            self._pending = _PendingFrame(frame, detections, grey)
        else:
            if self._pending is not None:
                pending, self._pending = self._pending, None
                first_flow = None
                if grey is not None and pending.grey.shape == grey.shape and self._needs_flow(pending.detections):
                    assert self.optical_flow is not None
                    first_flow = self.optical_flow.frame_flow(self.optical_flow.forward(pending.grey, grey, shape))
                done.append(self._objects(0, pending.frame, pending.detections, first_flow, True))
            flow = self._current_flow(grey, shape, detections)
            done.append(self._objects(self._next_index, frame, detections, flow, True))
        self._previous_grey = grey
        self._next_index += 1
        return done

    def finish(self) -> list[FrameObjects]:
        """End of video: the frame still held (a one-frame video's only frame, without flow)."""
        done = []
        if self._pending is not None:
            pending, self._pending = self._pending, None
            done.append(self._objects(0, pending.frame, pending.detections, None, True))
        return done

    def features(self, frame: np.ndarray, detections: Detections) -> np.ndarray:
        """Node features ``(n, layout.width)`` float32 for the ``n`` detections in ``frame``, at once.

        Frame-at-a-time (for live use): call once per frame of a video, in order; nothing is
        held back, so the first frame's flow columns are 0, and no motion-blob objects are
        added (the rows are the detections'). Do not mix with :meth:`push` within a video.
        """
        grey = None if self.optical_flow is None else self.optical_flow.grey(frame)
        flow = self._current_flow(grey, frame.shape[:2], detections)
        objects = self._objects(self._next_index, frame, detections, flow, False)
        self._previous_grey = grey
        self._next_index += 1
        return objects.features

    def _objects(
        self, index: int, frame: np.ndarray, detections: Detections, flow: FrameFlow | None, add_blobs: bool
    ) -> FrameObjects:
        n_detected = len(detections)
        if add_blobs and self.motion_boxes is not None and flow is not None:
            detections = self.motion_boxes.add_to(detections, flow)
        height, width = frame.shape[:2]
        boxes = np.asarray(detections.boxes, np.float32).reshape(-1, 4)
        n = len(boxes)
        sources = np.full(n, SOURCE_DETECTOR, np.int8)
        sources[n_detected:] = SOURCE_MOTION_BLOB
        track_ids = np.full(n, NO_TRACK, np.int32)
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
            # Always stepped, even with no boxes, so tracks end where a frame has none.
            step = self.motion.tracker.update(boxes)
            track_ids = step.track_ids
            parts.append(self.motion.columns(flow, boxes, height, step))
        if self.flow_stats is not None:
            parts.append(self.flow_stats.columns(flow, boxes))
        features = np.concatenate(parts, axis=1).astype(np.float32, copy=False)
        cell_speeds = None if self.cell_motion is None else self.cell_motion.speeds(flow, height, width)
        return FrameObjects(index, detections, sources, track_ids, features, cell_speeds)

    def describe(self) -> dict[str, Any]:
        """Which groups are computed and how, for shard metadata."""
        return {
            "groups": [
                group
                for group in FEATURE_GROUPS
                if group != "detector_features"  # the detector's, recorded in its own description
                and (group != "appearance" or self.appearance is not None)
                and (group not in MOTION_GROUPS or self.motion is not None)
                and (group != "flow_stats" or self.flow_stats is not None)
            ],
            "appearance": None if self.appearance is None else self.appearance.describe(),
            "motion": None if self.motion is None else self.motion.describe(),
            "flow_stats": None if self.flow_stats is None else self.flow_stats.describe(),
            "flow": None if self.optical_flow is None else self.optical_flow.describe(),
            "motion_boxes": None if self.motion_boxes is None else self.motion_boxes.describe(),
            "geometry": ["centre_x / width", "centre_y / height", "box_width / width", "box_height / height"],
            # Only when on, so that extractors without it keep their description (and shard fingerprint).
            **({} if self.cell_motion is None else {"cell_motion": self.cell_motion.describe()}),
        }

    def __repr__(self) -> str:
        return (
            f"NodeFeatureExtractor(appearance={self.appearance!r}, motion={self.motion!r}, "
            f"flow_stats={self.flow_stats!r}, motion_boxes={self.motion_boxes!r})"
        )
