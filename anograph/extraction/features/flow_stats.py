"""Per-object flow statistics that the static background inside a box does not dilute.

A box mean (the ``motion`` group) mixes the object's flow with the background pixels
the box also covers: a thin cyclist in a wide box looks slow. These columns describe the
distribution of the box's flow instead, and the flow of its *moving* pixels alone. A box
pixel is moving when its magnitude is above both

* the frame's moving threshold
  (:attr:`anograph.extraction.features.optical_flow.FrameFlow.moving_threshold`: twice the
  frame's median magnitude, at least the flow's moving floor), which separates
  motion from the static background's flow noise, and
* ``object_fraction`` (default one half) of the box's 90th-percentile magnitude: dense flow
  smears an object's motion a few pixels onto the background around it, in a ramp that
  falls off from the object's speed; this keeps that ramp out, so the moving pixels are
  the object's own.

All speeds are in pixels per frame divided by the frame height (image-plane speed, no
perspective correction). Columns, in order (``n_orientation_bins = 8`` gives 15):

=============================  ================================================================
column                         meaning
=============================  ================================================================
``box_flow_mean``              mean flow magnitude of the box's pixels
``box_flow_p50``               median flow magnitude of the box's pixels
``box_flow_p90``               90th percentile of the box's flow magnitudes
``moving_flow_dx``             mean flow vector of the box's moving pixels, horizontal
                               (+ = rightward) and vertical (+ = downward); 0 without moving pixels
``moving_flow_dy``
``moving_flow_magnitude``      mean flow magnitude of the box's moving pixels; 0 without any
``moving_fraction``            fraction of the box's pixels that are moving (0 .. 1, no unit)
``moving_orientation_k``       k = 0..7: magnitude of the moving pixels whose flow direction is
                               within 22.5 degrees of ``k * 45`` degrees (0 = rightward, 90 =
                               downward), summed and divided by the number of moving pixels; the
                               bins add up to ``moving_flow_magnitude``
=============================  ================================================================

Every column is 0 for a frame without flow (a one-frame video).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from anograph.errors import InputError
from anograph.extraction.features.optical_flow import FrameFlow, box_pixel_bounds

SUMMARY_COLUMNS = (
    "box_flow_mean", "box_flow_p50", "box_flow_p90",
    "moving_flow_dx", "moving_flow_dy", "moving_flow_magnitude", "moving_fraction",
)  # fmt: skip


class FlowStatistics:
    """The ``flow_stats`` group (see the module docstring).

    Parameters
    ----------
    n_orientation_bins:
        Number of direction bins of the moving pixels' histogram. Default 8 (45 degrees each).
    object_fraction:
        A moving pixel's magnitude is above this fraction of the box's 90th percentile.
        Default 0.5; 0 keeps the frame's threshold alone.
    """

    def __init__(self, n_orientation_bins: int = 8, object_fraction: float = 0.5) -> None:
        if n_orientation_bins < 1:
            raise InputError(None, f"n_orientation_bins must be at least 1, got {n_orientation_bins}")
        if not 0.0 <= object_fraction < 1.0:
            raise InputError(None, f"object_fraction must be in [0, 1), got {object_fraction}")
        self.n_orientation_bins = int(n_orientation_bins)
        self.object_fraction = float(object_fraction)

    @property
    def column_names(self) -> tuple[str, ...]:
        return (*SUMMARY_COLUMNS, *(f"moving_orientation_{k}" for k in range(self.n_orientation_bins)))

    @property
    def width(self) -> int:
        return len(self.column_names)

    def columns(self, frame_flow: FrameFlow | None, boxes: np.ndarray) -> np.ndarray:
        """``(n, width)`` float32 statistics of the ``(n, 4)`` xyxy ``boxes`` in a frame's flow."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        result = np.zeros((len(boxes), self.width), np.float32)
        if frame_flow is None:
            return result
        bin_width = 2 * np.pi / self.n_orientation_bins
        n_summary = len(SUMMARY_COLUMNS)
        for index, box in enumerate(boxes):
            top, bottom, left, right = box_pixel_bounds(box, frame_flow.shape)
            magnitude = frame_flow.magnitude[top:bottom, left:right].ravel()
            result[index, 0] = magnitude.mean()
            result[index, 1:3] = np.percentile(magnitude, [50, 90])
            threshold = max(frame_flow.moving_threshold, self.object_fraction * float(result[index, 2]))
            moving = magnitude > threshold
            n_moving = int(moving.sum())
            result[index, 6] = n_moving / len(magnitude)
            if n_moving == 0:
                continue
            moving_magnitude = magnitude[moving]
            result[index, 3:5] = frame_flow.flow[top:bottom, left:right].reshape(-1, 2)[moving].mean(axis=0)
            result[index, 5] = moving_magnitude.mean()
            angle = frame_flow.angle[top:bottom, left:right].ravel()[moving]
            bins = np.rint(angle / bin_width).astype(np.int64) % self.n_orientation_bins
            histogram = np.bincount(bins, weights=moving_magnitude, minlength=self.n_orientation_bins)
            result[index, n_summary:] = histogram / n_moving
        speed_columns = np.ones(self.width, bool)
        speed_columns[6] = False  # the fraction has no unit
        result[:, speed_columns] /= frame_flow.shape[0]
        return result

    def describe(self) -> dict[str, Any]:
        """Settings, for shard metadata."""
        return {
            "columns": list(self.column_names),
            "speed_unit": "pixels per frame / frame height",
            "moving_pixels": "magnitude > max(min_moving_magnitude, 2 x frame median, object_fraction x box p90)",
            "object_fraction": self.object_fraction,
        }

    def __repr__(self) -> str:
        return f"FlowStatistics(n_orientation_bins={self.n_orientation_bins}, object_fraction={self.object_fraction})"
