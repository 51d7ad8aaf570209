"""Tiled detection: run a detector on overlapping tiles as well as the whole frame, then merge.

A detector with a fixed input size sees a small, far object at a few pixels once the frame
is shrunk to its input; cropping the frame into tiles and enlarging each to the input
recovers such objects. Tiles split objects at their borders and the full frame finds many
objects again, so the views are merged:

1. **views**: the full frame, plus a ``tiles x tiles`` grid of tiles each ``tile_fraction``
   of the frame's width and height, spread evenly from edge to edge (with 2 tiles of 0.6,
   neighbours overlap by 20% of the frame);
2. **partial boxes**: a box touching a tile border inside the frame (within
   ``border_margin`` pixels) is cut by it. A cut box is dropped when a larger box of the
   same class from another view covers at least ``covered_fraction`` of it (the whole
   object is found there); a cut box nothing covers stays (the only sighting);
3. **duplicates**: class-aware non-maximum suppression over all views at the detector's
   NMS threshold, so no two same-class boxes overlap above it.
"""

from __future__ import annotations

import numpy as np
import torch
import torchvision

from anograph.errors import InputError

BORDER_MARGIN = 2.0
COVERED_FRACTION = 0.6


def tile_windows(height: int, width: int, tiles: int, tile_fraction: float) -> list[tuple[int, int, int, int]]:
    """``(x1, y1, x2, y2)`` pixel windows of the ``tiles x tiles`` grid, row by row (none for 1 tile)."""
    if tiles < 1:
        raise InputError(None, f"tiles must be at least 1, got {tiles}")
    if not 0.0 < tile_fraction <= 1.0:
        raise InputError(None, f"tile_fraction must be in (0, 1], got {tile_fraction}")
    if tiles == 1:
        return []
    tile_width, tile_height = max(1, round(width * tile_fraction)), max(1, round(height * tile_fraction))
    xs = np.rint(np.linspace(0, width - tile_width, tiles)).astype(int)
    ys = np.rint(np.linspace(0, height - tile_height, tiles)).astype(int)
    return [(int(x), int(y), int(x) + tile_width, int(y) + tile_height) for y in ys for x in xs]


def cut_by_border(
    boxes: np.ndarray, window: tuple[int, int, int, int], frame_size: tuple[int, int], margin: float = BORDER_MARGIN
) -> np.ndarray:
    """Which frame-pixel ``boxes`` found in ``window`` touch one of its borders inside the ``(height, width)`` frame."""
    x1, y1, x2, y2 = window
    height, width = frame_size
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    cut = np.zeros(len(boxes), bool)
    if x1 > 0:
        cut |= boxes[:, 0] <= x1 + margin
    if y1 > 0:
        cut |= boxes[:, 1] <= y1 + margin
    if x2 < width:
        cut |= boxes[:, 2] >= x2 - margin
    if y2 < height:
        cut |= boxes[:, 3] >= y2 - margin
    return cut


def merge_views(
    boxes: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    views: np.ndarray,
    cut: np.ndarray,
    nms_threshold: float,
    covered_fraction: float = COVERED_FRACTION,
) -> np.ndarray:
    """Indices of the boxes kept when merging detections of several views (steps 2 and 3 above).

    ``views`` says which view found each box, ``cut`` whether it touches an inner tile border.
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    areas = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    left_top = np.maximum(boxes[:, None, :2], boxes[None, :, :2])
    right_bottom = np.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    intersection = np.prod(np.clip(right_bottom - left_top, 0, None), axis=2)
    coverage = intersection / np.maximum(areas[:, None], 1e-6)  # [i, j]: share of box i inside box j
    covers = (
        (coverage >= covered_fraction)
        & (views[:, None] != views[None, :])
        & (class_ids[:, None] == class_ids[None, :])
        & (areas[None, :] > areas[:, None])
    )
    candidates = np.flatnonzero(~(np.asarray(cut, bool) & covers.any(axis=1)))
    kept = torchvision.ops.batched_nms(
        torch.from_numpy(boxes[candidates]),
        torch.from_numpy(np.asarray(scores, np.float32)[candidates]),
        torch.from_numpy(np.asarray(class_ids, np.int64)[candidates]),
        nms_threshold,
    ).numpy()
    return candidates[kept]
