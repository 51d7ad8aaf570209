"""A scorer's frame scores from its object scores: each frame's worst object, and the motion field beside.

:func:`fastest_places` says where the motion field read each frame: its worst cell.

Every scorer scores objects, and a frame takes its worst object. The ``attributes`` scorer may also
read the frame with no detection, its motion field (:mod:`anograph.attributes.motion_field`), and a
frame then takes the worse of the two. Evaluation, offline scoring and the alert calibration all get
a scorer's frame scores here, so that each reads the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from anograph.attributes.objects import cell_fraction_of
from anograph.extraction.features.cell_motion import grid_boxes
from anograph.graph.windows import frame_scores
from anograph.io.shards import VideoFeatures
from anograph.models.attribute_scoring import ATTRIBUTE_SCORER

if TYPE_CHECKING:
    from anograph.models.estimator import AnoGraph


def scorer_frame_scores(model: AnoGraph, video: VideoFeatures, scorer: str, object_scores: np.ndarray) -> np.ndarray:
    """``(n_frames,)`` ``scorer``'s frame scores of ``video`` from its ``object_scores`` (NaN where nothing is scored)."""
    scoring = getattr(model, "attribute_scoring_", None)
    if scorer == ATTRIBUTE_SCORER and scoring is not None:
        return scoring.frame_scores(video, object_scores)
    return frame_scores(object_scores, video.frame_offsets())


def fastest_places(model: AnoGraph, video: VideoFeatures, scorer: str) -> tuple[np.ndarray, np.ndarray] | None:
    """``(boxes (n_frames, 4) in pixels, scores (n_frames,))``: each frame's worst cell of the motion field
    and its calibrated score, where ``scorer`` reads one; ``None`` otherwise."""
    scoring = getattr(model, "attribute_scoring_", None)
    if scorer != ATTRIBUTE_SCORER or scoring is None:
        return None
    scoring = scoring.for_camera(video.metadata.camera)
    if scoring.motion_field is None:
        return None
    cells = grid_boxes(int(video.metadata.height), int(video.metadata.width), cell_fraction_of(video))
    return cells[scoring.motion_field.density.worst_cells(video.cell_speeds)], scoring.field_scores(video)
