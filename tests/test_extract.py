"""extract_video end to end: video -> detections + node features -> shard -> back."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from anograph.errors import VideoReadError
from anograph.extraction.detectors.motion import MotionDetector
from anograph.extraction.detectors.yolox import COCO_CLASS_NAMES, YoloxDetector
from anograph.extraction.extract import extract_video
from anograph.extraction.features.extractor import NodeFeatureExtractor
from anograph.extraction.features.motion import MotionFeatures
from anograph.io.shards import read_shard, write_shard
from anograph.io.storage import Storage
from anograph.io.video import open_video

N_FRAMES, WIDTH, HEIGHT, SIDE = 16, 160, 120, 16


def write_moving_squares(path: Path) -> None:
    """Two textured squares crossing a static textured background (MJPG AVI)."""
    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8), (5, 5), 0)
    # Blocky textures: pixel noise would turn into large JPEG artefacts around the squares.
    first, second = (
        cv2.resize(
            rng.integers(0, 256, (4, 4, 3), dtype=np.uint8), (SIDE, SIDE), interpolation=cv2.INTER_NEAREST
        )
        for _ in range(2)
    )
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 12.5, (WIDTH, HEIGHT))
    for index in range(N_FRAMES):
        frame = background.copy()
        frame[20 : 20 + SIDE, 10 + 4 * index : 10 + 4 * index + SIDE] = first
        frame[80 : 80 + SIDE, 130 - 3 * index : 130 - 3 * index + SIDE] = second
        writer.write(frame)
    writer.release()


def test_extract_video_with_motion_detector_roundtrips_through_a_shard(tmp_path: Path) -> None:
    path = tmp_path / "squares.avi"
    write_moving_squares(path)
    reader = open_video(path)
    detector = MotionDetector()
    extractor = NodeFeatureExtractor()
    calls: list[tuple[int, int]] = []
    video = extract_video(
        reader, detector, extractor, progress=lambda done, total: calls.append((done, total))
    )

    metadata = video.metadata
    assert (metadata.video, metadata.n_frames, metadata.width, metadata.height) == (
        "squares",
        N_FRAMES,
        WIDTH,
        HEIGHT,
    )
    assert metadata.fps == pytest.approx(12.5)
    assert metadata.source == str(path)
    assert metadata.class_names == ["object"]
    assert metadata.detector == detector.describe()
    assert metadata.feature_layout == extractor.layout(("object",))
    assert metadata.feature_layout.names == (
        "appearance", "class", "confidence", "geometry", "motion", "frame_flow", "track", "flow_stats"
    )
    assert metadata.extraction["features"] == extractor.describe()
    assert metadata.extraction["seconds"] > 0 and metadata.extraction["frames_per_second"] > 0
    assert calls[-1] == (N_FRAMES, N_FRAMES) and [done for done, _ in calls] == list(range(1, N_FRAMES + 1))

    assert video.features.shape == (video.n_objects, metadata.feature_layout.width)
    assert np.all(np.diff(video.frames) >= 0)
    counts = np.diff(video.frame_offsets())
    assert len(counts) == N_FRAMES and counts[0] == 0, "the motion detector's first frame is empty"
    assert np.all(counts[6:] == 2), "both squares found once the background is learnt"
    # The class and confidence columns repeat the detector's scores.
    layout = metadata.feature_layout
    np.testing.assert_allclose(video.features[:, layout.slice("confidence")][:, 0], video.scores)
    # The square moving right has positive horizontal velocity and flow, the one moving left negative
    # (lossy compression makes single boxes jitter, so look at most of them).
    motion = video.features[:, layout.slice("motion")]
    late = video.frames >= 8
    upper = late & (video.boxes[:, 1] < 60)
    lower = late & ~upper
    for column in (0, 11):  # flow_dx, velocity_x
        assert np.mean(motion[upper, column] > 0) >= 0.75 and np.mean(motion[lower, column] < 0) >= 0.75

    storage = Storage(tmp_path / "store")
    write_shard(storage, "shards/squares.parquet", video)
    loaded = read_shard(storage, "shards/squares.parquet")
    assert loaded.metadata == metadata
    np.testing.assert_array_equal(loaded.frames, video.frames)
    np.testing.assert_array_equal(loaded.boxes, video.boxes)
    np.testing.assert_array_equal(loaded.class_ids, video.class_ids)
    # Features are stored as float16.
    np.testing.assert_allclose(loaded.features, video.features, rtol=1e-3, atol=1e-3)


def test_extract_video_resets_state_between_videos(tmp_path: Path) -> None:
    path = tmp_path / "squares.avi"
    write_moving_squares(path)
    detector, extractor = MotionDetector(), NodeFeatureExtractor(appearance=None)
    first = extract_video(open_video(path), detector, extractor)
    second = extract_video(open_video(path), detector, extractor)
    np.testing.assert_array_equal(first.frames, second.frames)
    np.testing.assert_array_equal(first.features, second.features)


def test_extract_video_names_the_undecodable_frame(tmp_path: Path) -> None:
    folder = tmp_path / "clip"
    folder.mkdir()
    for index in range(3):
        cv2.imwrite(str(folder / f"{index:03d}.png"), np.full((HEIGHT, WIDTH, 3), 40 * index, np.uint8))
    (folder / "003.png").write_bytes(b"garbage")
    with pytest.raises(VideoReadError) as caught:
        extract_video(open_video(folder), MotionDetector(), NodeFeatureExtractor(appearance=None))
    assert caught.value.path == str(folder / "003.png")


@pytest.mark.shared_data
def test_extract_real_ped2_frames_with_yolox(tmp_path: Path, ped2_root: Path, yolox_weights: Path) -> None:
    source = ped2_root / "UCSDped2" / "Test" / "Test001"
    clip = tmp_path / "Test001"
    clip.mkdir()
    for image in sorted(source.iterdir())[:8]:
        (clip / image.name).symlink_to(image)
    video = extract_video(
        open_video(clip, fps=10), YoloxDetector(weights=yolox_weights), NodeFeatureExtractor()
    )
    assert video.metadata.n_frames == 8 and video.metadata.fps == 10
    assert video.metadata.class_names == list(COCO_CLASS_NAMES)
    assert video.metadata.feature_layout.groups == (
        ("appearance", 96),
        ("class", 80),
        ("confidence", 1),
        ("geometry", 4),
        ("motion", 14),
        ("frame_flow", 3),
        ("track", 4),
        ("flow_stats", 15),
    )
    counts = np.diff(video.frame_offsets())
    assert np.all(counts >= 5), counts
    geometry = video.features[:, video.metadata.feature_layout.slice("geometry")]
    assert np.all((geometry >= 0) & (geometry <= 1))
    # Walkers are matched from frame to frame, so most later objects carry a velocity.
    motion = video.features[video.frames > 0][:, video.metadata.feature_layout.slice("motion")]
    assert motion[:, MotionFeatures().column_names.index("matched")].mean() > 0.6
