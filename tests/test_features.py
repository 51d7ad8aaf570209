"""Node features: appearance (RoI pooling on one CNN pass), motion (flow + box velocity),
and the extractor that assembles the groups in their fixed order."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from anograph.errors import InputError, ModelArtifactError
from anograph.extraction.detectors.base import Detections
from anograph.extraction.features.appearance import AppearanceEmbedder
from anograph.extraction.features.extractor import NodeFeatureExtractor
from anograph.extraction.features.motion import MotionFeatures


@pytest.fixture(scope="module")
def embedder() -> AppearanceEmbedder:
    return AppearanceEmbedder()


def blocky_texture(height: int, width: int, block: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // block, width // block, 3), dtype=np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)


# ---------------------------------------------------------------- appearance


def test_appearance_shape_dtype_and_layers(embedder: AppearanceEmbedder) -> None:
    frame = blocky_texture(240, 360, 8, seed=0)
    boxes = np.array([[10, 20, 40, 80], [100, 100, 130, 160], [300, 180, 360, 240]], np.float32)
    vectors = embedder.embed(frame, boxes)
    assert vectors.shape == (3, embedder.width) == (3, 96)
    assert vectors.dtype == np.float32 and np.all(np.isfinite(vectors))
    assert embedder.embed(frame, np.zeros((0, 4), np.float32)).shape == (0, 96)
    deep = AppearanceEmbedder(layer="stride32")
    assert deep.embed(frame, boxes).shape == (3, 1280) and deep.width == 1280
    described = embedder.describe()
    assert described["layer"] == "stride16" and len(described["weights_sha256"]) == 64


def test_appearance_equal_for_identical_content_and_differs_otherwise(embedder: AppearanceEmbedder) -> None:
    frame = np.full((384, 640, 3), 90, np.uint8)
    patch, other = blocky_texture(48, 48, 6, seed=1), blocky_texture(48, 48, 6, seed=2)
    # Same patch twice, 256 px apart (a multiple of every stride), and a different patch between them.
    frame[160:208, 128:176] = patch
    frame[160:208, 384:432] = patch
    frame[160:208, 256:304] = other
    boxes = np.array([[128, 160, 176, 208], [384, 160, 432, 208], [256, 160, 304, 208]], np.float32)
    first, same, different = embedder.embed(frame, boxes)
    assert np.linalg.norm(first - same) * 4 < np.linalg.norm(first - different)
    # The very same frame and box give exactly the same vector (no hidden state).
    again = embedder.embed(frame.copy(), boxes[:1])[0]
    np.testing.assert_allclose(again, first, rtol=1e-5, atol=1e-6)


def test_appearance_pools_the_box_region_of_the_map(embedder: AppearanceEmbedder) -> None:
    frame = blocky_texture(384, 640, 16, seed=3)
    with torch.inference_mode():
        feature_map = embedder.feature_map(frame)[0].numpy()
    assert feature_map.shape == (96, 384 // 16, 640 // 16)
    row, col, cells = 10, 8, 3
    box = np.array([[col * 16, row * 16, (col + cells) * 16, (row + cells) * 16]], np.float32)
    vector = embedder.embed(frame, box)[0]
    rows, cols = feature_map.shape[1] - cells + 1, feature_map.shape[2] - cells + 1
    distances = np.array(
        [
            [
                np.linalg.norm(vector - feature_map[:, r : r + cells, c : c + cells].mean(axis=(1, 2)))
                for c in range(cols)
            ]
            for r in range(rows)
        ]
    )
    # Of all same-sized windows of the map, the box's own window is the one its vector matches.
    assert np.unravel_index(distances.argmin(), distances.shape) == (row, col)


def test_appearance_bright_box_differs_from_dark_box(embedder: AppearanceEmbedder) -> None:
    rng = np.random.default_rng(4)
    frame = np.full((240, 360, 3), 25.0)
    frame[:, 180:] = 230.0
    frame = np.clip(frame + rng.normal(0, 10, frame.shape), 0, 255).astype(np.uint8)
    dark, bright, dark_again = embedder.embed(
        frame, np.array([[40, 80, 80, 160], [260, 80, 300, 160], [100, 80, 140, 160]], np.float32)
    )
    assert np.linalg.norm(dark - dark_again) < np.linalg.norm(dark - bright)


def test_appearance_input_scale_maps_boxes_to_the_resized_frame(embedder: AppearanceEmbedder) -> None:
    frame = blocky_texture(240, 360, 12, seed=5)
    boxes = np.array([[60, 60, 120, 150], [200, 40, 280, 200]], np.float32)
    half = AppearanceEmbedder(input_scale=0.5).embed(frame, boxes)
    # Same as resizing the frame ourselves and halving the boxes.
    resized = cv2.resize(frame, (180, 120), interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(half, embedder.embed(resized, boxes / 2), rtol=1e-4, atol=1e-5)
    assert not np.allclose(half, embedder.embed(frame, boxes), atol=1e-3)


def test_appearance_of_frames_taller_than_max_height_is_that_of_the_frame_shrunk_to_it(
        embedder: AppearanceEmbedder) -> None:
    frame = blocky_texture(720, 1080, 36, seed=5)
    boxes = np.array([[180, 180, 360, 450], [600, 120, 840, 600]], np.float32)
    assert [embedder.input_factor(height) for height in (240, 480, 720)] == [1.0, 1.0, 480 / 720]
    assert embedder.network_input_size(1080, 720) == (720, 480)
    shrunk = cv2.resize(frame, (720, 480), interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(embedder.embed(frame, boxes), embedder.embed(shrunk, boxes * 480 / 720),
                               rtol=1e-4, atol=1e-5)
    uncapped = AppearanceEmbedder(max_height=0)
    assert uncapped.network_input_size(1080, 720) == (1080, 720)
    assert not np.allclose(uncapped.embed(frame, boxes), embedder.embed(frame, boxes), atol=1e-3)
    # The cap applies after input_scale: a 1200-pixel frame at half scale is 600 high, shrunk to 480.
    assert AppearanceEmbedder(input_scale=0.5).input_factor(1200) == 0.4
    with pytest.raises(InputError, match="max_height"):
        AppearanceEmbedder(max_height=-1)


def test_appearance_bad_settings_and_weights(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown appearance layer"):
        AppearanceEmbedder(layer="stride8")
    bogus = tmp_path / "weights.pt"
    bogus.write_bytes(b"not a state dict")
    with pytest.raises(ModelArtifactError, match="not a MobileNetV2 state dict") as caught:
        AppearanceEmbedder(weights=bogus)
    assert caught.value.path == str(bogus)


# ---------------------------------------------------------------- motion features


def square_frames(n_frames: int, step: int, side: int = 24) -> tuple[list[np.ndarray], list[np.ndarray]]:
    background = cv2.GaussianBlur(blocky_texture(120, 200, 4, seed=6), (3, 3), 0)
    patch = blocky_texture(side, side, 4, seed=7)
    frames, boxes = [], []
    for index in range(n_frames):
        frame = background.copy()
        x, y = 30 + step * index, 40
        frame[y : y + side, x : x + side] = patch
        frames.append(frame)
        boxes.append(np.array([[x, y, x + side, y + side]], np.float32))
    return frames, boxes


def test_motion_features_square_moving_right() -> None:
    motion = MotionFeatures(flow_scale=1.0)
    names = motion.column_names
    assert motion.width == len(names) == 21
    step, side = 3, 24
    frames, boxes = square_frames(4, step, side)
    first = motion.features(frames[0], boxes[0])
    assert first.shape == (1, 21) and np.all(first == 0), "frame at a time, the first frame has nothing to compare with"
    for frame, box in zip(frames[1:], boxes[1:], strict=True):
        row = dict(zip(names, motion.features(frame, box)[0], strict=True))
        expected_speed = step / side  # pixels per frame divided by box height
        assert row["flow_dx"] == pytest.approx(expected_speed, rel=0.35)
        assert abs(row["flow_dy"]) < 0.25 * row["flow_dx"]
        assert row["flow_magnitude"] >= row["flow_dx"] * 0.99
        histogram = np.array([row[f"flow_orientation_{k}"] for k in range(8)])
        assert histogram.argmax() == 0, "rightward flow lands in bin 0"
        assert histogram.sum() == pytest.approx(row["flow_magnitude"], rel=1e-4)
        assert row["velocity_x"] == pytest.approx(expected_speed, rel=1e-5)
        assert row["velocity_y"] == pytest.approx(0.0, abs=1e-6)
        assert row["matched"] == 1.0
        assert row["frame_flow_dx"] == pytest.approx(row["flow_dx"] * side / frame.shape[0], rel=1e-5)
        assert row["track_velocity_x"] == pytest.approx(step / frame.shape[0], rel=1e-5)
        assert row["track_speed"] == pytest.approx(step / frame.shape[0], rel=1e-5)


def test_motion_features_farneback_reduced_resolution_and_left_motion() -> None:
    motion = MotionFeatures(flow_method="farneback")  # Farneback's default flow_scale 0.5
    assert motion.flow_scale == 0.5 and MotionFeatures().flow_scale == 1.0
    frames, boxes = square_frames(3, step=-3)
    motion.features(frames[0], boxes[0])
    motion.features(frames[1], boxes[1])
    row = motion.features(frames[2], boxes[2])[0]
    assert row[0] < -0.05, "leftward motion gives negative dx"
    assert row[3 + 4] == row[3:11].max(), "leftward flow lands in bin 4 (180 degrees)"
    assert row[11] < 0 and row[13] == 1.0


def test_motion_features_matching_gate_and_reset() -> None:
    motion = MotionFeatures(max_match_distance=1.0)
    frames, boxes = square_frames(2, step=3)
    motion.features(frames[0], boxes[0])
    far = boxes[1] + np.array([80, 0, 80, 0], np.float32)  # 80 px away: more than one box height (24)
    near_and_far = np.concatenate([boxes[1], far])
    values = motion.features(frames[1], near_and_far)
    assert values[0, 13] == 1.0 and values[1, 13] == 0.0
    assert values[1, 11] == 0.0 and values[1, 12] == 0.0, "unmatched boxes have zero velocity"
    motion.reset()
    assert np.all(motion.features(frames[1], boxes[1]) == 0), "after reset the next frame is a first frame"


def test_motion_features_no_boxes_still_advances() -> None:
    motion = MotionFeatures(flow_scale=1.0)
    frames, boxes = square_frames(3, step=3)
    motion.features(frames[0], boxes[0])
    assert motion.features(frames[1], np.zeros((0, 4), np.float32)).shape == (0, 21)
    # Flow compares with frame 1 (seen without boxes); no box there, so no velocity match.
    row = motion.features(frames[2], boxes[2])[0]
    assert row[0] > 0.05 and row[13] == 0.0


# ---------------------------------------------------------------- extractor


def test_extractor_layout_order_and_disabled_groups(embedder: AppearanceEmbedder) -> None:
    full = NodeFeatureExtractor(appearance=embedder, motion=True)
    layout = full.layout(("a", "b", "c"))
    assert layout.groups == (
        ("appearance", 96),
        ("class", 3),
        ("confidence", 1),
        ("geometry", 4),
        ("motion", 14),
        ("frame_flow", 3),
        ("track", 4),
        ("flow_stats", 15),
    )
    bare = NodeFeatureExtractor(appearance=None, motion=False, flow_stats=False)
    assert bare.layout(("object",)).groups == (("class", 1), ("confidence", 1), ("geometry", 4))
    assert bare.describe()["groups"] == ["class", "confidence", "geometry"]
    with pytest.raises(InputError, match="appearance"):
        NodeFeatureExtractor(appearance="resnet")  # type: ignore[arg-type]


def test_extractor_columns_hold_what_the_layout_says(embedder: AppearanceEmbedder) -> None:
    extractor = NodeFeatureExtractor(appearance=embedder, motion=MotionFeatures(flow_scale=1.0))
    frames, boxes = square_frames(2, step=3)
    class_scores = np.array([[0.1, 0.7]], np.float32)
    detections = [
        Detections(box, np.array([0.7], np.float32), np.array([1], np.int32), class_scores) for box in boxes
    ]
    layout = extractor.layout(("first", "second"))
    extractor.reset()
    extractor.features(frames[0], detections[0])
    values = extractor.features(frames[1], detections[1])
    assert values.shape == (1, layout.width) and values.dtype == np.float32
    np.testing.assert_allclose(
        values[:, layout.slice("appearance")], embedder.embed(frames[1], boxes[1]), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_array_equal(values[:, layout.slice("class")], class_scores)
    assert values[0, layout.slice("confidence")].tolist() == pytest.approx([0.7])
    x1, y1, x2, y2 = boxes[1][0]
    height, width = frames[1].shape[:2]
    expected_geometry = [(x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height]
    assert values[0, layout.slice("geometry")].tolist() == pytest.approx(expected_geometry)
    motion = values[0, layout.slice("motion")]
    assert motion[0] > 0 and motion[MotionFeatures().column_names.index("matched")] == 1.0
    empty = extractor.features(frames[1], Detections.empty(2))
    assert empty.shape == (0, layout.width)
    extractor.reset()
    assert np.all(extractor.features(frames[1], detections[1])[:, layout.slice("motion")] == 0)
