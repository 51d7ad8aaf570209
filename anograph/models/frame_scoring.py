"""A scorer's frame scores from its object scores: each frame's worst object, and the motion field beside.

Every scorer scores objects, and a frame takes its worst object. The ``attributes`` scorer may also
read the frame with no detection, its motion field (:mod:`anograph.attributes.motion_field`), and a
frame then takes the worse of the two. Evaluation, offline scoring and the alert calibration all get
a scorer's frame scores here, so that each reads the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

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
