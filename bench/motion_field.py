"""A detection-free motion field: each frame scored by how fast its fastest grid cell moves.

Every object the default scorer sees comes from the detector or from a moving region no detection
explains (:mod:`anograph.extraction.features.motion_boxes`); a cyclist behind a crowd is neither,
and it cannot be scored. This study asks what a score with no detection at all reads: the frame
is cut into square cells (side ``--cell-fraction`` of its height), each cell's flow is summarised
by the product's own box statistics (:class:`~anograph.extraction.features.flow_stats.FlowStatistics`,
on the product's DIS flow), and a cell's speed is scored by the one-sided ``speed`` density
(:class:`~anograph.attributes.speed.SpeedDensity`: ``-log P(S >= s)``), fitted on the training
cells pooled (one density for the whole frame) or per cell (each place its own). A cell with fewer
than ``--min-moving-share`` of its pixels moving reads speed 0. A frame takes its worst cell, and
the frame scores are calibrated as the attributes are: ``(s - low) / (high - low)`` with ``low``
the minimum and ``high`` the 99.9th percentile of held-out training frame scores (8 folds of
training videos). Printed: each variant alone, and the frame-wise max with the ``attributes``
scorer's ensemble of objects (refitted on the run's shards, seed 0; its motion field left out).
The product's motion field (:mod:`anograph.attributes.motion_field`) is the first variant, pooled
moving speed; this study keeps the others it was weighed against.

**A study on the test labels**, like ``bench/ped2_study.py``: none of these variants is a
product setting, and choosing one from these figures would be a choice made on test data.

    python bench/motion_field.py --store OUT/store --root ../shared/data/UCSD_Anomaly_Dataset.v1p2 \\
        --json bench/motion_field.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from anograph.attributes.ensemble import CALIBRATION_QUANTILE, MAX_FOLDS
from anograph.attributes.objects import (
    FLOW_P90,
    MOVING_FRACTION,
    MOVING_MAGNITUDE,
    ObjectAttributes,
    object_attributes,
)
from anograph.attributes.speed import SpeedDensity
from anograph.datasets import load_dataset
from anograph.evaluation import metrics
from anograph.extraction.features.cell_motion import grid_boxes
from anograph.extraction.features.flow_stats import FlowStatistics
from anograph.extraction.features.optical_flow import OpticalFlow
from anograph.graph.windows import frame_scores
from anograph.io.extraction_settings import fingerprint_of
from anograph.io.shards import read_shard
from anograph.io.storage import Storage
from anograph.io.video import open_video
from anograph.models.attribute_scoring import AttributeScoring

#: The cell statistics a variant may read as the cell's speed (columns of the ``flow_stats`` group).
STATISTICS = {"moving speed": MOVING_MAGNITUDE, "90th percentile": FLOW_P90}


def cell_statistics(path: Path, fps: float | None, cell_fraction: float) -> tuple[np.ndarray, np.ndarray, int]:
    """``(n_frames, n_cells, k)`` flow statistics of every cell of every frame, the cells, and the frame height.

    The flow is the extractor's: frame ``t``'s from ``t - 1``, the first frame's forward to the second.
    """
    flow, statistics = OpticalFlow(), FlowStatistics()
    flow.start_video(fps)
    greys = [flow.grey(frame) for frame in open_video(path)]
    height, width = greys[0].shape
    cells = grid_boxes(height, width, cell_fraction)
    per_frame = []
    for index, grey in enumerate(greys):
        if index:
            field = flow.at_current(greys[index - 1], grey, (height, width))
        else:
            field = flow.forward(grey, greys[1], (height, width)) if len(greys) > 1 else np.zeros((height, width, 2), np.float32)
        per_frame.append(statistics.columns(flow.frame_flow(field), cells))
    return np.stack(per_frame), cells, height


def cell_objects(name: str, statistics: np.ndarray, cells: np.ndarray, height: int, column: int,
                 min_moving_share: float) -> ObjectAttributes:
    """Every cell of every frame as one row, its speed (``column``) in the moving-speed column, 0 where too few pixels move."""
    n_frames, n_cells, width = statistics.shape
    flow = np.zeros((n_frames * n_cells, width), np.float32)
    speeds = statistics[:, :, column].reshape(-1)
    flow[:, MOVING_MAGNITUDE] = np.where(statistics[:, :, MOVING_FRACTION].reshape(-1) >= min_moving_share, speeds, 0.0)
    boxes = np.tile(cells, (n_frames, 1)) / height
    return ObjectAttributes(
        video=name, frames=np.repeat(np.arange(n_frames), n_cells), n_frames=n_frames,
        centres=(boxes[:, :2] + boxes[:, 2:]) / 2, sizes=boxes[:, 2:] - boxes[:, :2], flow=flow,
        class_scores=np.zeros((len(flow), 0), np.float32), appearance=None,
        tracks=np.tile(np.arange(n_cells), n_frames),  # a cell over time is one track
    )


class CellSpeedScorer:
    """Frame scores from cell speeds: one :class:`SpeedDensity` for all cells, or one per cell (``per_cell``)."""

    def __init__(self, per_cell: bool) -> None:
        self.per_cell = per_cell

    def fit(self, videos: list[ObjectAttributes]) -> CellSpeedScorer:
        if not self.per_cell:
            self.densities = [SpeedDensity().fit(videos)]
            return self
        n_cells = int(videos[0].tracks.max()) + 1
        self.densities = [SpeedDensity().fit([video.rows(video.tracks == cell) for video in videos])
                          for cell in range(n_cells)]
        return self

    def frame_scores(self, video: ObjectAttributes) -> np.ndarray:
        if self.per_cell:
            scores = np.empty(len(video))
            for cell, density in enumerate(self.densities):
                scores[video.tracks == cell] = density.score(video.rows(video.tracks == cell))
        else:
            scores = self.densities[0].score(video)
        return scores.reshape(video.n_frames, -1).max(axis=1)


def calibrated_test_scores(train: list[ObjectAttributes], test: list[ObjectAttributes], per_cell: bool) -> dict[str, np.ndarray]:
    """Test frame scores, calibrated on the held-out frame scores of the training videos (as the attributes are)."""
    folds = [train[start::MAX_FOLDS] for start in range(min(MAX_FOLDS, len(train)))]
    held_out = np.concatenate([
        CellSpeedScorer(per_cell).fit([other for other in train if all(other is not video for video in fold)])
        .frame_scores(video)
        for fold in folds for video in fold
    ])
    low, high = float(held_out.min()), float(np.quantile(held_out, CALIBRATION_QUANTILE))
    scorer = CellSpeedScorer(per_cell).fit(train)
    return {video.video: (scorer.frame_scores(video) - low) / (high - low) for video in test}


def auc_pair(scores: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> dict[str, float]:
    return {"micro": metrics.frame_auc_micro(scores, labels), "macro": metrics.frame_auc_macro(scores, labels)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, help="storage root of a plain run (its shards feed the default scorer)")
    parser.add_argument("--dataset", default="ucsd-ped2")
    parser.add_argument("--root", required=True)
    parser.add_argument("--cell-fraction", type=float, default=1 / 8, help="cell side, as a fraction of the frame height")
    parser.add_argument("--min-moving-share", type=float, default=0.01, help="a cell with fewer moving pixels reads speed 0")
    parser.add_argument("--json", type=Path, default=None)
    arguments = parser.parse_args()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)

    dataset = load_dataset(arguments.dataset, arguments.root)
    labels = {video.name: dataset.labels[video.name] for video in dataset.test}
    started, n_frames = time.process_time(), 0
    cells: dict[str, dict[str, ObjectAttributes]] = {name: {} for name in STATISTICS}
    for split in (dataset.train, dataset.test):
        for video in split:
            statistics, grid, height = cell_statistics(video.path, dataset.fps, arguments.cell_fraction)
            n_frames += len(statistics)
            for name, column in STATISTICS.items():
                cells[name][video.name] = cell_objects(video.name, statistics, grid, height, column,
                                                       arguments.min_moving_share)
    cpu_ms_per_frame = (time.process_time() - started) / n_frames * 1000

    storage = Storage(arguments.store)
    fingerprint = sorted({fingerprint_of(key) for key in storage.list("shards")})[-1]
    shards = {split: [read_shard(storage, key) for key in storage.list(f"shards/{fingerprint}/{split}")]
              for split in ("train", "test")}
    default = AttributeScoring.fit(shards["train"], seed=0)
    default_scores = metrics.fill_empty_frames({
        video.metadata.video: frame_scores(default.ensemble.score(object_attributes(video)), video.frame_offsets())
        for video in shards["test"]})  # the ensemble of objects alone, without any motion field
    rows = [{"variant": "the attribute ensemble of objects alone", **auc_pair(default_scores, labels)}]
    train_names, test_names = [video.name for video in dataset.train], [video.name for video in dataset.test]
    for name in STATISTICS:
        for per_cell in (False, True):
            scores = calibrated_test_scores([cells[name][video] for video in train_names],
                                            [cells[name][video] for video in test_names], per_cell)
            beside = {video: np.maximum(scores[video], default_scores[video]) for video in scores}
            variant = f"cell {name}, {'each cell its own density' if per_cell else 'one density for all cells'}"
            rows.append({"variant": variant, **auc_pair(scores, labels)})
            rows.append({"variant": f"max(default, {variant})", **auc_pair(beside, labels)})
    for row in rows:
        print(f"{row['variant']:75s} micro {row['micro']:.4f} macro {row['macro']:.4f}")
    print(f"cell statistics: {cpu_ms_per_frame:.1f} CPU ms a frame (flow included), "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}")
    if arguments.json:
        arguments.json.write_text(json.dumps({
            "command": "python bench/motion_field.py --store OUT/store --root ../shared/data/UCSD_Anomaly_Dataset.v1p2 "
                       "--json bench/motion_field.json",
            "dataset": arguments.dataset, "fingerprint": fingerprint, "cell_fraction": arguments.cell_fraction,
            "min_moving_share": arguments.min_moving_share,
            "metric": "frame AUC, micro and macro (pad), unsmoothed; test labels read (a study)",
            "machine": {"platform": platform.platform(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                        "threads": 1},
            "cell_statistics_cpu_ms_per_frame": round(cpu_ms_per_frame, 2), "rows": rows,
        }, indent=1))


if __name__ == "__main__":
    main()
