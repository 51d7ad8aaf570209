"""The torchvision Faster R-CNN detector, run for real with random weights on real Ped2 frames.

Random weights (no download in CI) at confidence 0 still exercise every step: proposals,
class probabilities, per-class NMS, and box-head features of the kept boxes. Frames are
shrunk (``min_size``) and proposals capped so the tests take seconds on a CPU.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from anograph.errors import InputError, ModelArtifactError
from anograph.extraction.detectors import create_detector
from anograph.extraction.detectors.faster_rcnn import (
    BOX_HEAD_WIDTH,
    COCO_CLASS_SLOTS,
    TORCHVISION_COCO_CATEGORIES,
    TorchvisionDetector,
    default_weights_path,
)
from anograph.extraction.detectors.yolox import COCO_CLASS_NAMES
from anograph.extraction.extract import extract_video
from anograph.io.content_hash import file_sha256
from anograph.io.extraction_settings import ExtractionSettings, extraction_fingerprint
from anograph.io.shards import read_shard, write_shard
from anograph.io.storage import Storage
from anograph.io.video import open_video

SMALL = {"min_size": 128, "max_size": 256, "max_proposals": 50, "max_detections": 20, "confidence_threshold": 0.0}


@pytest.fixture(scope="module")
def random_weights(random_faster_rcnn_weights: Path) -> Path:
    return random_faster_rcnn_weights


@pytest.fixture(scope="module")
def detector(random_weights: Path) -> TorchvisionDetector:
    return TorchvisionDetector(weights=random_weights, **SMALL)


@pytest.fixture(scope="module")
def ped2_frames(ped2_root: Path) -> list[np.ndarray]:
    folder = ped2_root / "UCSDped2" / "Test" / "Test001"
    return [cv2.imread(str(path)) for path in sorted(folder.iterdir())[:2]]


def test_torchvision_classes_map_onto_the_80_coco_names() -> None:
    assert len(TORCHVISION_COCO_CATEGORIES) == 91
    assert tuple(TORCHVISION_COCO_CATEGORIES[slot] for slot in COCO_CLASS_SLOTS) == COCO_CLASS_NAMES


@pytest.mark.shared_data
def test_detections_have_the_protocol_shapes_and_box_head_features(
    detector: TorchvisionDetector, ped2_frames: list[np.ndarray]
) -> None:
    frame = ped2_frames[0]
    height, width = frame.shape[:2]
    detections = detector.detect(frame)
    n = len(detections)
    assert n == SMALL["max_detections"], "random weights at confidence 0 fill the per-frame cap"
    assert detections.boxes.shape == (n, 4) and detections.boxes.dtype == np.float32
    assert detections.scores.shape == (n,) and detections.scores.dtype == np.float32
    assert detections.class_ids.shape == (n,) and detections.class_ids.dtype == np.int32
    assert detections.class_scores.shape == (n, 80) and detections.class_scores.dtype == np.float32
    assert detections.features.shape == (n, BOX_HEAD_WIDTH) and detections.features.dtype == np.float32
    assert np.all(detections.boxes[:, :2] >= 0) and np.all(detections.boxes[:, 2] <= width)
    assert np.all(detections.boxes[:, 3] <= height) and np.all(detections.boxes[:, 2:] > detections.boxes[:, :2])
    assert np.all(np.diff(detections.scores) <= 0), "sorted best first"
    # The score is the probability of the object's class within its proposal's distribution.
    np.testing.assert_array_equal(detections.scores, detections.class_scores[np.arange(n), detections.class_ids])
    assert np.all(detections.class_scores.sum(axis=1) <= 1 + 1e-5)
    assert np.isfinite(detections.features).all() and np.abs(detections.features).max() > 0

    # Each feature is the box head's output for that very box: pooling one box alone gives it back.
    for index in (0, n // 2, n - 1):
        alone = detector.box_features(frame, detections.boxes[index : index + 1])
        np.testing.assert_allclose(alone[0], detections.features[index], rtol=1e-3, atol=1e-3)
    # ... and not another box's.
    other = detector.box_features(frame, detections.boxes[1:2])[0]
    assert np.abs(other - detections.features[0]).max() > 1e-2


@pytest.mark.shared_data
def test_a_batch_of_frames_gives_what_one_frame_at_a_time_gives(
    detector: TorchvisionDetector, ped2_frames: list[np.ndarray]
) -> None:
    batched = detector.detect_batch(ped2_frames)
    assert len(batched) == len(ped2_frames)
    for frame, together in zip(ped2_frames, batched, strict=True):
        alone = detector.detect(frame)
        assert len(alone) == len(together)
        np.testing.assert_array_equal(alone.class_ids, together.class_ids)
        np.testing.assert_allclose(alone.boxes, together.boxes, atol=1e-2)
        np.testing.assert_allclose(alone.scores, together.scores, atol=1e-4)
        np.testing.assert_allclose(alone.features, together.features, rtol=1e-3, atol=1e-3)
    # The two frames differ, so a mix-up between them would show.
    assert not np.allclose(batched[0].features, batched[1].features, atol=1e-2)


@pytest.mark.shared_data
def test_a_high_threshold_keeps_nothing_with_the_right_empty_shapes(
    detector: TorchvisionDetector, ped2_frames: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(detector, "confidence_threshold", 1.0)  # rebuilding the model would cost seconds
    empty = detector.detect(ped2_frames[0])
    assert len(empty) == 0
    assert empty.class_scores.shape == (0, 80) and empty.features.shape == (0, BOX_HEAD_WIDTH)


@pytest.mark.shared_data
def test_shard_from_torchvision_puts_box_head_features_first(
    tmp_path: Path, random_weights: Path, ped2_root: Path, detector: TorchvisionDetector
) -> None:
    clip = tmp_path / "Test001"
    clip.mkdir()
    for image in sorted((ped2_root / "UCSDped2" / "Test" / "Test001").iterdir())[:3]:
        (clip / image.name).symlink_to(image)
    # The same weights at another path, through the settings the pipeline uses, in batches of 2.
    moved = tmp_path / "moved.pth"
    moved.symlink_to(random_weights)
    settings = ExtractionSettings(
        detector="torchvision", detector_options={"weights": str(moved), **SMALL, "batch_size": 2},
        appearance=False, motion=False, motion_boxes=False,
    )
    batched_detector, extractor = settings.build()
    # Neither the path nor the batch size changes what is extracted, so the fingerprint stays.
    assert extraction_fingerprint(batched_detector, extractor) == extraction_fingerprint(detector, extractor)
    assert batched_detector.describe()["weights_sha256"] == file_sha256(random_weights)

    video = extract_video(open_video(clip, fps=10), batched_detector, extractor)
    layout = video.metadata.feature_layout
    assert layout.names[0] == "detector_features" and layout.groups[0][1] == BOX_HEAD_WIDTH
    assert video.n_objects == 3 * SMALL["max_detections"]
    assert video.metadata.extraction["batch_size"] == 2 and video.metadata.extraction["device"] == "cpu"
    assert 0 < video.metadata.extraction["detector_seconds"] <= video.metadata.extraction["seconds"]
    np.testing.assert_allclose(video.features[:, layout.slice("confidence")][:, 0], video.scores)
    first_frame = detector.detect(cv2.imread(str(sorted(clip.iterdir())[0])))
    np.testing.assert_allclose(
        video.features[video.frames == 0][:, layout.slice("detector_features")], first_frame.features,
        rtol=1e-3, atol=1e-3,
    )

    storage = Storage(tmp_path / "store")
    write_shard(storage, "shards/x/test/Test001.parquet", video)
    loaded = read_shard(storage, "shards/x/test/Test001.parquet")
    np.testing.assert_allclose(loaded.features, video.features, rtol=1e-2, atol=1e-2)  # float16 on disk


def test_missing_or_foreign_weights_fail_naming_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(ModelArtifactError) as caught:
        TorchvisionDetector()
    assert caught.value.path == str(default_weights_path())
    assert str(tmp_path / "torch") in caught.value.path and "download" in caught.value.reason

    foreign = tmp_path / "foreign.pth"
    torch.save({"conv.weight": torch.zeros(3)}, foreign)
    with pytest.raises(ModelArtifactError) as caught:
        create_detector("torchvision", weights=str(foreign))
    assert caught.value.path == str(foreign) and "state dict" in caught.value.reason

    with pytest.raises(InputError, match="confidence_threshold"):
        TorchvisionDetector(weights=foreign, confidence_threshold=1.5)
    with pytest.raises(InputError, match="unknown device"):
        TorchvisionDetector(weights=foreign, device="tpu")
