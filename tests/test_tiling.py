"""Tiled YOLOX detection: tile geometry, merging across views, and the merged set on a real Ped2 frame."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torchvision

from anograph.errors import InputError
from anograph.extraction.detectors.tiling import cut_by_border, merge_views, tile_windows
from anograph.extraction.detectors.yolox import YoloxDetector


def test_tile_windows_cover_the_frame_with_overlap() -> None:
    windows = tile_windows(240, 360, 2, 0.6)
    assert windows == [(0, 0, 216, 144), (144, 0, 360, 144), (0, 96, 216, 240), (144, 96, 360, 240)]
    assert tile_windows(240, 360, 1, 0.6) == []
    covered = np.zeros((240, 360), int)
    for x1, y1, x2, y2 in tile_windows(240, 360, 3, 0.5):
        covered[y1:y2, x1:x2] += 1
    assert covered.min() >= 1
    with pytest.raises(InputError, match="tiles"):
        tile_windows(240, 360, 0, 0.6)
    with pytest.raises(InputError, match="tile_fraction"):
        tile_windows(240, 360, 2, 1.5)


def test_cut_boxes_touch_inner_borders_only() -> None:
    window = (144, 0, 360, 144)  # the top-right tile: its left and bottom borders are inside the frame
    boxes = np.array([[144, 10, 170, 60], [200, 100, 230, 144], [300, 0, 360, 40], [200, 20, 230, 80]], np.float32)
    assert cut_by_border(boxes, window, (240, 360)).tolist() == [True, True, False, False]


def test_merge_drops_covered_partial_boxes_and_duplicates() -> None:
    boxes = np.array(
        [
            [100, 50, 130, 110],  # 0 full frame: a person
            [100, 50, 120, 110],  # 1 tile: the same person cut by a border, covered by 0 -> dropped
            [101, 51, 131, 111],  # 2 tile: the same person whole -> an NMS duplicate of 0 or dropped by it
            [10, 10, 30, 40],  # 3 tile: cut, but nothing covers it -> kept
            [100, 50, 130, 110],  # 4 tile: same box as 0 but another class -> kept (class-aware)
        ],
        np.float32,
    )
    scores = np.array([0.6, 0.9, 0.8, 0.5, 0.4], np.float32)
    class_ids = np.array([0, 0, 0, 0, 1])
    views = np.array([0, 1, 2, 1, 2])
    cut = np.array([False, True, False, True, False])
    kept = sorted(merge_views(boxes, scores, class_ids, views, cut, nms_threshold=0.45).tolist())
    assert kept == [2, 3, 4]
    assert merge_views(boxes[:0], scores[:0], class_ids[:0], views[:0], cut[:0], 0.45).size == 0


@pytest.mark.shared_data
def test_tiled_detection_keeps_every_full_frame_person_once(ped2_root: Path, yolox_weights: Path) -> None:
    frame = cv2.imread(str(sorted((ped2_root / "UCSDped2" / "Test" / "Test001").iterdir())[0]))
    full = YoloxDetector(weights=yolox_weights).detect(frame)
    tiled_detector = YoloxDetector(weights=yolox_weights, tiles=2)
    tiled = tiled_detector.detect(frame)
    assert tiled_detector.describe()["tiles"] == 2 and "tiles" not in YoloxDetector(weights=yolox_weights).describe()
    persons = full.select((full.class_ids == 0) & (full.scores >= 0.5))
    assert len(persons) >= 5
    merged_persons = tiled.select(tiled.class_ids == 0)
    assert len(merged_persons) > len(full.select(full.class_ids == 0)), "tiles find more (small) people"
    overlap = torchvision.ops.box_iou(torch.from_numpy(persons.boxes), torch.from_numpy(merged_persons.boxes)).numpy()
    assert np.all((overlap >= 0.5).sum(axis=1) == 1), "each confident full-frame person appears exactly once"
    # No two merged boxes of one class overlap above the NMS threshold.
    for class_id in np.unique(tiled.class_ids):
        same = tiled.boxes[tiled.class_ids == class_id]
        pairs = torchvision.ops.box_iou(torch.from_numpy(same), torch.from_numpy(same)).numpy()
        np.fill_diagonal(pairs, 0)
        assert pairs.max(initial=0) <= tiled_detector.nms_threshold
    assert np.all(tiled.boxes[:, 2] <= frame.shape[1]) and np.all(tiled.boxes[:, 3] <= frame.shape[0])
