"""How fast each place of the frame moves: the moving speed of every cell of a fixed grid, per frame.

Every object the attribute densities see comes from the detector or from a moving region no
detection explains (:mod:`.motion_boxes`). A cyclist passing behind a crowd is neither: the
detector misses it, and its moving pixels join those of walkers the detector did find. The flow
still sees it move. So, beside the objects, every frame is cut into a fixed grid of square cells,
about ``cell_fraction`` of the frame's height across, and each cell's speed is read from the
frame's flow exactly as an object's is: the mean flow magnitude of its moving pixels
(:class:`~anograph.extraction.features.flow_stats.FlowStatistics`' ``moving_flow_magnitude``, in
frame heights per frame). A cell with fewer than ``min_moving_share`` of its pixels moving reads 0
(a few pixels of flow noise are not a moving thing). The densities of
:mod:`anograph.attributes.motion_field` score these speeds with no detection at all.

The grid is a function of the frame's size alone, so training and test footage of one camera
share it: ``rows = round(1 / cell_fraction)`` cells down, ``round(width / (height * cell_fraction))``
across, cell edges at evenly spaced pixels (8 x 12 cells of 30 pixels on a 360 x 240 frame).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from anograph.errors import InputError
from anograph.extraction.features.flow_stats import FlowStatistics
from anograph.extraction.features.optical_flow import FrameFlow, box_pixel_bounds


def grid_shape(height: int, width: int, cell_fraction: float) -> tuple[int, int]:
    """``(rows, columns)`` of the grid of a ``height`` x ``width`` frame (see the module docstring)."""
    rows = max(1, round(1.0 / cell_fraction))
    columns = max(1, round(width / (height * cell_fraction))) if height else 1
    return rows, columns


def grid_boxes(height: int, width: int, cell_fraction: float) -> np.ndarray:
    """``(rows * columns, 4)`` float32 xyxy pixel boxes of the cells, row by row from the top left."""
    rows, columns = grid_shape(height, width, cell_fraction)
    ys, xs = np.linspace(0, height, rows + 1), np.linspace(0, width, columns + 1)
    top, left = np.meshgrid(ys[:-1], xs[:-1], indexing="ij")
    bottom, right = np.meshgrid(ys[1:], xs[1:], indexing="ij")
    return np.stack([left.ravel(), top.ravel(), right.ravel(), bottom.ravel()], axis=1).astype(np.float32)


class CellMotion:
    """Per-frame moving speed of each grid cell (see the module docstring).

    Parameters
    ----------
    cell_fraction:
        A cell's side, as a fraction of the frame's height. Default 1/8: about a walker's height
        on UCSD's footage, and a frame of 96 cells at 3:2.
    min_moving_share:
        A cell with fewer than this fraction of its pixels moving reads speed 0. Default 0.01.
    """

    def __init__(self, cell_fraction: float = 1 / 8, min_moving_share: float = 0.01) -> None:
        if not 0.0 < cell_fraction <= 1.0:
            raise InputError(None, f"cell_fraction must be in (0, 1], got {cell_fraction}")
        if not 0.0 <= min_moving_share < 1.0:
            raise InputError(None, f"min_moving_share must be in [0, 1), got {min_moving_share}")
        self.cell_fraction = float(cell_fraction)
        self.min_moving_share = float(min_moving_share)
        self._statistics = FlowStatistics()
        self._pixel_index: dict[tuple[int, int], np.ndarray] = {}

    def speeds(self, frame_flow: FrameFlow | None, height: int, width: int) -> np.ndarray:
        """``(n_cells,)`` float32 moving speed of each cell, frame heights per frame (0 without flow).

        The same figure as :class:`FlowStatistics`' ``moving_flow_magnitude`` of each cell's box,
        computed for every cell at once: a cell's pixels are gathered into one row (padded with NaN
        where cells differ in size), so the 90th percentile and the moving pixels' mean are row-wise.
        """
        pixels = self._pixels(height, width)
        if frame_flow is None:
            return np.zeros(len(pixels), np.float32)
        magnitude = np.append(frame_flow.magnitude.ravel(), np.nan)[pixels]  # index -1: the NaN padding
        ordered = np.sort(magnitude, axis=1)  # NaN last
        counts = np.count_nonzero(~np.isnan(magnitude), axis=1)
        position = 0.9 * (counts - 1)  # numpy's default (linear) percentile, row by row
        low = np.floor(position).astype(np.int64)
        high = np.minimum(low + 1, counts - 1)
        rows = np.arange(len(pixels))
        p90 = ordered[rows, low] + (position - low) * (ordered[rows, high] - ordered[rows, low])
        threshold = np.maximum(frame_flow.moving_threshold, self._statistics.object_fraction * p90)
        with np.errstate(invalid="ignore"):
            moving = magnitude > threshold[:, None]  # NaN padding never moves
        n_moving = moving.sum(axis=1)
        total = np.where(moving, magnitude, 0.0).sum(axis=1)
        speed = np.divide(total, n_moving, out=np.zeros(len(pixels)), where=n_moving > 0) / frame_flow.shape[0]
        return np.where(n_moving / counts >= self.min_moving_share, speed, 0.0).astype(np.float32)

    def _pixels(self, height: int, width: int) -> np.ndarray:
        """``(n_cells, largest cell)`` flat pixel indices of each cell's box, -1 past a smaller cell's end."""
        if (height, width) not in self._pixel_index:
            bounds = [box_pixel_bounds(box, (height, width)) for box in grid_boxes(height, width, self.cell_fraction)]
            size = max((bottom - top) * (right - left) for top, bottom, left, right in bounds)
            index = np.full((len(bounds), size), -1, np.int64)
            for cell, (top, bottom, left, right) in enumerate(bounds):
                rows, columns = np.mgrid[top:bottom, left:right]
                flat = (rows * width + columns).ravel()
                index[cell, : len(flat)] = flat
            self._pixel_index[(height, width)] = index
        return self._pixel_index[(height, width)]

    def describe(self) -> dict[str, Any]:
        """Settings, for shard metadata."""
        return {"cell_fraction": self.cell_fraction, "min_moving_share": self.min_moving_share,
                "speed": "mean flow magnitude of the cell's moving pixels, frame heights per frame "
                         "(flow_stats' moving_flow_magnitude); 0 under min_moving_share"}

    def __repr__(self) -> str:
        return f"CellMotion(cell_fraction={self.cell_fraction}, min_moving_share={self.min_moving_share})"
