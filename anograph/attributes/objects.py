"""The per-object attributes the densities read, cut from a shard's feature columns by name.

A shard stores one feature vector per object in named groups (see
:class:`anograph.extraction.features.layout.FeatureLayout`). The attribute densities need
only a few of them, in physical units: the box flow statistics (``flow_stats``), the class
scores (``class``), the appearance vector (``appearance``) and the box geometry. This module
cuts those out once per video, so densities and pseudo-anomalies work on small named arrays
and never on column offsets.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from anograph.errors import InputError
from anograph.extraction.features.cell_motion import grid_shape
from anograph.extraction.features.layout import FeatureLayout
from anograph.io.shards import VideoFeatures

#: Columns of the ``flow_stats`` group the densities use, by position in the group
#: (:mod:`anograph.extraction.features.flow_stats`).
FLOW_MEAN, FLOW_P50, FLOW_P90, MOVING_DX, MOVING_DY, MOVING_MAGNITUDE, MOVING_FRACTION = range(7)
ORIENTATION_START = 7
#: A box edge this close to the frame's edge (in frame heights) is taken to be cut by it.
FRAME_EDGE_MARGIN = 0.01


@dataclass(frozen=True)
class ObjectAttributes:
    """One video's objects as the attribute densities see them.

    Attributes
    ----------
    video:
        The video's name.
    frames:
        ``(n,)`` 0-based frame index of each object (non-decreasing).
    n_frames:
        Frames in the video, objects or not.
    centres, sizes:
        ``(n, 2)`` box centre ``(x, y)`` and ``(width, height)``, in frame heights, so that
        distances and speeds share one unit whatever the frame's aspect ratio.
    flow:
        ``(n, k)`` the ``flow_stats`` group (speeds in frame heights per frame).
    class_scores:
        ``(n, c)`` the detector's per-class scores (all zero for motion-blob objects).
    appearance:
        ``(n, d)`` the appearance vector, or ``None`` where the shard has none.
    tracks:
        ``(n,)`` track id of each object within the video, -1 for an untracked one.
    sources:
        ``(n,)`` 0 for a detector's object, 1 for a moving region no detection explained (its box
        is the region's, not an object's outline).
    frame_width:
        The frame's width in frame heights (its aspect ratio), or ``None`` where unknown; then
        only the left, top and bottom edges are known to :meth:`cut_by_frame_edge`.
    cell_speeds:
        ``(n_frames, rows * columns)`` moving speed of each cell of each frame's grid, frame heights
        per frame (:mod:`anograph.extraction.features.cell_motion`), or ``None`` where the shard has none.
    cell_grid:
        ``(rows, columns)`` of that grid, or ``None``.
    """

    video: str
    frames: np.ndarray
    n_frames: int
    centres: np.ndarray
    sizes: np.ndarray
    flow: np.ndarray
    class_scores: np.ndarray
    appearance: np.ndarray | None
    tracks: np.ndarray | None = None
    sources: np.ndarray | None = None
    frame_width: float | None = None
    cell_speeds: np.ndarray | None = None
    cell_grid: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.tracks is None:
            object.__setattr__(self, "tracks", np.full(len(self.frames), -1, np.int64))
        if self.sources is None:
            object.__setattr__(self, "sources", np.zeros(len(self.frames), np.int8))

    def __len__(self) -> int:
        return int(len(self.frames))

    @property
    def velocity(self) -> np.ndarray:
        """``(n, 2)`` mean flow of the object's moving pixels, frame heights per frame."""
        return self.flow[:, [MOVING_DX, MOVING_DY]]

    def cut_by_frame_edge(self) -> np.ndarray:
        """``(n, 2)`` bool: whether the frame's edge cuts each box's width (left or right) and height (top or bottom).

        A cut box shows only the part of its object inside the frame, so its size along that
        axis (and its centre) says nothing about the object's build.
        """
        low = self.centres - self.sizes / 2
        high = self.centres + self.sizes / 2
        width_cut = low[:, 0] < FRAME_EDGE_MARGIN
        if self.frame_width is not None:
            width_cut |= high[:, 0] > self.frame_width - FRAME_EDGE_MARGIN
        height_cut = (low[:, 1] < FRAME_EDGE_MARGIN) | (high[:, 1] > 1.0 - FRAME_EDGE_MARGIN)
        return np.stack([width_cut, height_cut], axis=1)

    def with_changes(self, **changes: np.ndarray) -> ObjectAttributes:
        """A copy with some arrays replaced (the pseudo-anomaly generators use this)."""
        return replace(self, **changes)

    def rows(self, keep: np.ndarray) -> ObjectAttributes:
        """The objects selected by the boolean mask or index array ``keep``."""
        return replace(
            self, frames=self.frames[keep], centres=self.centres[keep], sizes=self.sizes[keep],
            flow=self.flow[keep], class_scores=self.class_scores[keep],
            appearance=None if self.appearance is None else self.appearance[keep], tracks=self.tracks[keep],
            sources=self.sources[keep],
        )


REQUIRED_GROUPS = ("flow_stats", "class")


def object_attributes(video: VideoFeatures) -> ObjectAttributes:
    """Cut a shard's objects into :class:`ObjectAttributes`.

    Raises
    ------
    InputError
        When the shard lacks the ``flow_stats`` or ``class`` group (extracted without
        motion statistics: re-extract with the default feature groups).
    """
    objects = cut_attributes(video.metadata.video, video.frames, int(video.metadata.n_frames), video.boxes,
                             video.features, video.metadata.feature_layout, float(video.metadata.height),
                             video.metadata.source or None, tracks=video.track_ids, sources=video.sources,
                             frame_width=float(video.metadata.width) or None)
    grid = cell_grid_of(video)
    return objects if grid is None else replace(objects, cell_speeds=video.cell_speeds, cell_grid=grid)


def cell_fraction_of(video: VideoFeatures) -> float:
    """The side of the video's grid cells as a fraction of its height, from its extraction settings (1 if unrecorded)."""
    settings = video.metadata.extraction.get("features", {}).get("cell_motion") or {}
    return float(settings.get("cell_fraction", 0.0)) or 1.0


def cell_grid_of(video: VideoFeatures) -> tuple[int, int] | None:
    """``(rows, columns)`` of the video's cell grid, from its extraction settings; ``None`` without cell speeds."""
    if video.cell_speeds is None:
        return None
    rows, columns = grid_shape(int(video.metadata.height), int(video.metadata.width), cell_fraction_of(video))
    if rows * columns != video.cell_speeds.shape[1]:
        raise InputError(video.metadata.source or None,
                         f"video {video.metadata.video!r} has {video.cell_speeds.shape[1]} cell speeds a frame, "
                         f"but its extraction settings give a grid of {rows} x {columns}")
    return rows, columns


def cut_attributes(name: str, frames: np.ndarray, n_frames: int, boxes: np.ndarray, features: np.ndarray,
                   layout: FeatureLayout, frame_height: float, source: str | None = None,
                   tracks: np.ndarray | None = None, sources: np.ndarray | None = None,
                   frame_width: float | None = None) -> ObjectAttributes:
    """:class:`ObjectAttributes` from raw shard-layout rows (also one live frame at a time).

    ``frame_height`` and ``frame_width`` are in pixels; the width may be ``None`` where unknown.
    """
    missing = [group for group in REQUIRED_GROUPS if group not in layout.names]
    if missing:
        raise InputError(
            source,
            f"video {name!r} has no feature group(s) {missing}, which the attribute "
            "scorer needs; extract it again with the default feature groups",
        )
    features = np.asarray(features).astype(np.float32, copy=False).reshape(-1, layout.width)
    height = float(frame_height) or 1.0
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1) / height
    sizes = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1) / height
    appearance = features[:, layout.slice("appearance")] if "appearance" in layout.names else None
    return ObjectAttributes(
        video=name,
        frames=np.asarray(frames).astype(np.int64),
        n_frames=int(n_frames),
        centres=centres,
        sizes=sizes,
        flow=features[:, layout.slice("flow_stats")],
        class_scores=features[:, layout.slice("class")],
        appearance=appearance,
        tracks=None if tracks is None else np.asarray(tracks).astype(np.int64),
        sources=None if sources is None else np.asarray(sources).astype(np.int8),
        frame_width=None if not frame_width else float(frame_width) / height,
    )
