"""Per-object motion features: dense optical flow inside each box, and tracked box velocity.

Motion is where most UCSD-style anomalies show (bikers, skaters and carts move faster
than walkers), and a detector's boxes alone do not say how fast anything moves.

The features are stateful per video (the flow compares each frame with the one before,
the tracker links boxes across frames), so call :meth:`MotionFeatures.reset` before each
video. The flow comes from :mod:`.optical_flow` (DIS at full resolution by default); the
first frame of a video takes the flow towards the second when extracted through
:meth:`anograph.extraction.features.extractor.NodeFeatureExtractor.push`, and is 0 when
there is no later frame (or through the frame-at-a-time :meth:`MotionFeatures.features`).

Columns, in order (``n_orientation_bins = 8`` gives 21 columns). The ``motion`` group's
speeds are in pixels per frame divided by the object's box height in pixels, so that a
far (small) object and a near (large) one moving at the same real speed get similar
values under perspective; the ``frame_flow`` and ``track`` groups divide by the frame
height instead:

==========================  ====================================================================
column                      meaning
==========================  ====================================================================
``flow_dx``                 mean horizontal optical flow inside the box (+ = rightward) / height
``flow_dy``                 mean vertical optical flow inside the box (+ = downward) / height
``flow_magnitude``          mean flow magnitude inside the box / height
``flow_orientation_k``      k = 0..7: flow magnitude of the box pixels whose flow direction is
                            within 22.5 degrees of ``k * 45`` degrees (0 = rightward, 90 = downward
                            in image coordinates), summed and divided by the box's pixel count and
                            its height; the bins add up to ``flow_magnitude``
``velocity_x``              box-centre displacement from its matched box in the previous frame,
                            horizontal, / height; 0 when unmatched (:mod:`.tracks`)
``velocity_y``              the same, vertical (+ = downward)
``matched``                 1 when the box continues a track of the previous frame, else 0
``frame_flow_dx``           ``flow_dx``, ``flow_dy`` and ``flow_magnitude`` divided by the frame
``frame_flow_dy``           height instead of the box height: plain image-plane speed, which does
``frame_flow_magnitude``    not inherit the noise of fast objects' box heights
``track_velocity_x``        the track's mean box-centre displacement over its last ``track_window``
``track_velocity_y``        frames, horizontal and vertical, / frame height; 0 for a new track
``track_speed``             the track's mean box-centre speed over the same frames / frame height
``track_steps``             how many displacements those means average (0 .. ``track_window``)
==========================  ====================================================================
"""

from __future__ import annotations

from typing import Any

import numpy as np

from anograph.errors import InputError
from anograph.extraction.features.optical_flow import (
    DEFAULT_MIN_FLOW_HEIGHT,
    DEFAULT_MIN_MOVING_MAGNITUDE,
    DEFAULT_MIN_MOVING_SPEED,
    FrameFlow,
    OpticalFlow,
    box_pixel_bounds,
)
from anograph.extraction.features.tracks import BoxTracker, TrackStep

FRAME_FLOW_WIDTH = 3
TRACK_WIDTH = 4


class MotionFeatures:
    """Optical-flow and tracked-velocity features of each object (see the module docstring).

    Parameters
    ----------
    flow_method:
        ``"dis"`` (default) or ``"farneback"`` (:class:`OpticalFlow`).
    flow_preset:
        DIS preset ``"ultrafast"``, ``"fast"`` or ``"medium"`` (default).
    flow_scale:
        Frame size factor at which the flow is computed; ``None`` (default): 1.0 for DIS,
        0.5 for Farneback.
    compensate_camera_motion:
        Subtract each frame's median flow vector, the camera's shake (:class:`OpticalFlow`).
        Default True.
    max_match_distance:
        Largest centre displacement, in current box heights, for a box to continue a
        track of the previous frame. Default 1.0.
    n_orientation_bins:
        Number of flow-direction histogram bins. Default 8 (45 degrees each).
    track_window:
        How many of a track's latest frames the ``track_*`` columns average. Default 5.
    min_moving_magnitude, min_moving_speed:
        The flow's moving floors (:class:`OpticalFlow`): half a pixel a frame, and 1/48 frame
        heights a second.
    min_flow_height:
        Frames less tall are enlarged to this many pixels for the flow (:class:`OpticalFlow`'s
        ``min_height``). Default 240.
    """

    def __init__(
        self,
        flow_scale: float | None = None,
        max_match_distance: float = 1.0,
        n_orientation_bins: int = 8,
        flow_method: str = "dis",
        flow_preset: str = "medium",
        track_window: int = 5,
        compensate_camera_motion: bool = True,
        min_moving_magnitude: float = DEFAULT_MIN_MOVING_MAGNITUDE,
        min_moving_speed: float = DEFAULT_MIN_MOVING_SPEED,
        min_flow_height: int = DEFAULT_MIN_FLOW_HEIGHT,
    ) -> None:
        if n_orientation_bins < 1:
            raise InputError(None, f"n_orientation_bins must be at least 1, got {n_orientation_bins}")
        self.optical_flow = OpticalFlow(flow_method, flow_preset, flow_scale, min_moving_magnitude, min_moving_speed,
                                        compensate_camera_motion=compensate_camera_motion, min_height=min_flow_height)
        self.tracker = BoxTracker(max_match_distance, track_window)
        self.n_orientation_bins = int(n_orientation_bins)
        self.reset()

    @property
    def flow_scale(self) -> float:
        return self.optical_flow.scale

    @property
    def max_match_distance(self) -> float:
        return self.tracker.max_match_distance

    @property
    def column_names(self) -> tuple[str, ...]:
        """Name of each column, in order."""
        bins = tuple(f"flow_orientation_{k}" for k in range(self.n_orientation_bins))
        return (
            "flow_dx", "flow_dy", "flow_magnitude", *bins, "velocity_x", "velocity_y", "matched",
            "frame_flow_dx", "frame_flow_dy", "frame_flow_magnitude",
            "track_velocity_x", "track_velocity_y", "track_speed", "track_steps",
        )  # fmt: skip

    @property
    def width(self) -> int:
        return len(self.column_names)

    @property
    def groups(self) -> list[tuple[str, int]]:
        """Feature groups of the columns: ``motion`` (box-height units), ``frame_flow`` (3), ``track`` (4)."""
        return [
            ("motion", self.width - FRAME_FLOW_WIDTH - TRACK_WIDTH),
            ("frame_flow", FRAME_FLOW_WIDTH),
            ("track", TRACK_WIDTH),
        ]

    def reset(self) -> None:
        """Forget the previous frame and every track (call before each video)."""
        self._previous_grey: np.ndarray | None = None
        self.tracker.reset()

    def flow_columns(self, frame_flow: FrameFlow, boxes: np.ndarray) -> np.ndarray:
        """Mean flow, magnitude and orientation histogram inside each box, in pixels per frame."""
        bin_width = 2 * np.pi / self.n_orientation_bins
        columns = np.zeros((len(boxes), 3 + self.n_orientation_bins), np.float32)
        for index, box in enumerate(boxes):
            top, bottom, left, right = box_pixel_bounds(box, frame_flow.shape)
            region_flow = frame_flow.flow[top:bottom, left:right].reshape(-1, 2)
            region_magnitude = frame_flow.magnitude[top:bottom, left:right].ravel()
            region_bin = np.rint(frame_flow.angle[top:bottom, left:right].ravel() / bin_width).astype(np.int64)
            histogram = np.bincount(
                region_bin % self.n_orientation_bins, weights=region_magnitude, minlength=self.n_orientation_bins
            )
            columns[index, :2] = region_flow.mean(axis=0)
            columns[index, 2] = region_magnitude.mean()
            columns[index, 3:] = histogram / len(region_magnitude)
        return columns

    def columns(
        self, frame_flow: FrameFlow | None, boxes: np.ndarray, frame_height: int, track: TrackStep
    ) -> np.ndarray:
        """The ``(n, width)`` columns of ``boxes`` from a frame's flow (``None``: no flow) and tracker step."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        heights = np.maximum(boxes[:, 3] - boxes[:, 1], 1.0)
        result = np.zeros((len(boxes), self.width), np.float32)
        n_flow = 3 + self.n_orientation_bins
        if frame_flow is not None and len(boxes):
            pixels = self.flow_columns(frame_flow, boxes)
            result[:, :n_flow] = pixels / heights[:, None]
            result[:, n_flow + 3 : n_flow + 6] = pixels[:, :3] / frame_height
        result[:, n_flow : n_flow + 2] = track.velocity / heights[:, None]
        result[:, n_flow + 2] = track.matched
        track_start = n_flow + 6
        result[:, track_start : track_start + 2] = track.mean_velocity / frame_height
        result[:, track_start + 2] = track.mean_speed / frame_height
        result[:, track_start + 3] = track.steps
        return result

    def features(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Motion features ``(n, width)`` float32 of the ``(n, 4)`` xyxy pixel ``boxes`` in ``frame``.

        Frame-at-a-time: call once per frame, in order; the first frame's flow columns are 0.
        """
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        grey = self.optical_flow.grey(frame)
        frame_flow = None
        previous = self._previous_grey
        if len(boxes) and previous is not None and previous.shape == grey.shape:
            frame_flow = self.optical_flow.frame_flow(self.optical_flow.at_current(previous, grey, frame.shape[:2]))
        self._previous_grey = grey
        return self.columns(frame_flow, boxes, frame.shape[0], self.tracker.update(boxes))

    def describe(self) -> dict[str, Any]:
        """Settings, for shard metadata."""
        return {
            "columns": list(self.column_names),
            "groups": [list(group) for group in self.groups],
            "flow": self.optical_flow.describe(),
            "max_match_distance": self.tracker.max_match_distance,
            "track_window": self.tracker.window,
            "speed_unit": "motion: pixels per frame / box height; frame_flow_*, track_*: / frame height",
        }

    def __repr__(self) -> str:
        return f"MotionFeatures(optical_flow={self.optical_flow!r}, tracker={self.tracker!r})"
