"""Detectors: the registry, the motion detector on synthetic video, YOLOX on real Ped2 frames,
and YOLOX weights download and caching against a loopback HTTP server."""

from __future__ import annotations

import functools
import hashlib
import http.server
import re
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torchvision

from anograph.errors import InputError, ModelArtifactError
from anograph.extraction.detectors import Detections, Detector, create_detector
from anograph.extraction.detectors.motion import MotionDetector
from anograph.extraction.detectors.yolox import (
    COCO_CLASS_NAMES,
    YoloxDetector,
    download_weights,
    letterbox,
    yolox_grid,
)


def textured_background(height: int = 120, width: int = 160, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), (5, 5), 0)


def moving_square_frames(
    n_frames: int, side: int = 14, step: int = 3, seed: int = 0
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A textured square moving right over a static textured background, with sensor noise."""
    rng = np.random.default_rng(seed)
    background = textured_background(seed=seed)
    texture = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    frames, truths = [], []
    for index in range(n_frames):
        frame = background.astype(np.int16)
        x, y = 20 + step * index, 50
        frame[y : y + side, x : x + side] = texture
        frame = frame + rng.normal(0, 2, frame.shape)
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
        truths.append(np.array([x, y, x + side, y + side], np.float32))
    return frames, truths


def box_iou(first: np.ndarray, second: np.ndarray) -> float:
    return float(torchvision.ops.box_iou(torch.from_numpy(first[None]), torch.from_numpy(second[None]))[0, 0])


# ---------------------------------------------------------------- registry


def test_registry_builds_motion_and_rejects_unknown() -> None:
    detector = create_detector("motion", min_area=30)
    assert isinstance(detector, Detector)
    assert detector.describe()["min_area"] == 30
    with pytest.raises(InputError, match="unknown detector 'x'; choose from detectron2, motion, precomputed, torchvision, yolox"):
        create_detector("x")
    with pytest.raises(InputError, match="min_areaa"):
        create_detector("motion", min_areaa=3)


# ---------------------------------------------------------------- motion detector


def test_motion_detector_finds_moving_square() -> None:
    detector = MotionDetector()
    frames, truths = moving_square_frames(15)
    results = [detector.detect(frame) for frame in frames]
    assert len(results[0]) == 0, "the first frame has nothing to compare with"
    # After a short warm-up the square is found every frame, tightly, and nothing else is.
    for detections, truth in zip(results[5:], truths[5:], strict=True):
        assert len(detections) == 1
        assert box_iou(detections.boxes[0], truth) > 0.5
        assert detections.class_ids.tolist() == [0]
        assert detections.class_scores.shape == (1, 1)
        assert 0.5 < detections.scores[0] <= 1.0
    # Early frames may also show the square's starting spot, but must already overlap the square.
    for detections, truth in zip(results[1:5], truths[1:5], strict=True):
        assert max(box_iou(box, truth) for box in detections.boxes) > 0.3


def test_motion_detector_ignores_static_scene_and_small_noise() -> None:
    detector = MotionDetector(min_area=64)
    background = textured_background()
    rng = np.random.default_rng(3)
    for index in range(10):
        frame = background.copy()
        frame[rng.integers(0, 120), rng.integers(0, 160)] = 255  # single-pixel flicker
        detections = detector.detect(frame)
        assert len(detections) == 0, f"frame {index}"


def test_motion_detector_reset_forgets_background() -> None:
    detector = MotionDetector()
    frames, _ = moving_square_frames(8)
    for frame in frames:
        detector.detect(frame)
    detector.reset()
    # A fresh model sees its first frame: nothing to compare with, so no detections.
    assert len(detector.detect(frames[-1])) == 0
    assert detector.describe()["weights_sha256"] is None


# ---------------------------------------------------------------- YOLOX pieces without weights


def test_letterbox_keeps_aspect_and_pads_bottom_right() -> None:
    frame = np.full((240, 360, 3), 7, np.uint8)
    tensor, ratio = letterbox(frame, 416)
    assert tensor.shape == (1, 3, 416, 416) and tensor.dtype == np.float32
    assert ratio == pytest.approx(416 / 360)
    resized_height = round(240 * ratio)
    assert np.all(tensor[0, :, :resized_height, :] == 7)
    assert np.all(tensor[0, :, resized_height:, :] == 114)


def test_yolox_grid_matches_three_strides() -> None:
    cells, strides = yolox_grid(416)
    assert cells.shape == (52 * 52 + 26 * 26 + 13 * 13, 2)
    assert np.array_equal(np.unique(strides), [8, 16, 32])
    # Row 53 is the second row of the stride-8 grid: cell x=1, y=1; rows run x-fastest.
    assert cells[52 + 1].tolist() == [1, 1]
    assert cells[52 * 52].tolist() == [0, 0] and strides[52 * 52, 0] == 16


def test_non_onnx_weights_are_refused(tmp_path: Path) -> None:
    fake = tmp_path / "weights.onnx"
    fake.write_bytes(b"definitely not protobuf" * 50)
    with pytest.raises(InputError, match="not an ONNX model") as caught:
        YoloxDetector(weights=fake)
    assert caught.value.path == str(fake)
    with pytest.raises(ModelArtifactError, match="not found"):
        YoloxDetector(weights=tmp_path / "missing.onnx")


# ---------------------------------------------------------------- YOLOX weights download


def test_download_failures_name_the_url_or_cache(tmp_path: Path) -> None:
    # Nothing listens on a just-closed loopback port, so the download fails at once.
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{probe.getsockname()[1]}/yolox_nano.onnx"
    probe.close()
    with pytest.raises(InputError, match="cannot download") as caught:
        download_weights(url, tmp_path / "cache")
    assert caught.value.path == url
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()], "no partial file left"
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where the cache folder should be")
    with pytest.raises(InputError, match="cannot write to the weights cache"):
        download_weights(url, blocker)


class CountingHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        type(self).requests.append(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass


@pytest.fixture
def weights_server(tmp_path: Path, yolox_weights: Path) -> Iterator[tuple[str, type[CountingHandler]]]:
    """Serve a tmp copy of the real ONNX file on a free loopback port."""
    served = tmp_path / "served"
    served.mkdir()
    shutil.copyfile(yolox_weights, served / "yolox_nano.onnx")
    handler = type("Handler", (CountingHandler,), {"requests": []})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(served))
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.shared_data
def test_weights_download_once_then_cached(
    tmp_path: Path, yolox_weights: Path, weights_server: tuple[str, type[CountingHandler]]
) -> None:
    base_url, handler = weights_server
    url = f"{base_url}/yolox_nano.onnx"
    cache = tmp_path / "cache"
    expected = hashlib.sha256(yolox_weights.read_bytes()).hexdigest()

    detector = YoloxDetector(weights_url=url, cache_dir=cache)
    assert handler.requests == ["/yolox_nano.onnx"]
    assert detector.describe()["weights_sha256"] == expected
    assert detector.weights_path.is_relative_to(cache)
    record = detector.weights_path.with_name(detector.weights_path.name + ".sha256")
    assert record.read_text().strip() == expected
    assert not list(cache.rglob("*.part")), "no temporary download left behind"

    again = YoloxDetector(weights_url=url, cache_dir=cache)
    assert handler.requests == ["/yolox_nano.onnx"], "second use must come from the cache"
    assert again.weights_path == detector.weights_path

    # A damaged cached file no longer matches its recorded hash and is fetched again.
    detector.weights_path.write_bytes(b"truncated")
    assert download_weights(url, cache) == detector.weights_path
    assert len(handler.requests) == 2
    assert hashlib.sha256(detector.weights_path.read_bytes()).hexdigest() == expected


@pytest.mark.shared_data
def test_weights_download_errors(tmp_path: Path, weights_server: tuple[str, type[CountingHandler]]) -> None:
    base_url, _ = weights_server
    missing = f"{base_url}/no-such-file.onnx"
    with pytest.raises(InputError, match="cannot download") as caught:
        YoloxDetector(weights_url=missing, cache_dir=tmp_path / "cache")
    assert caught.value.path == missing
    with pytest.raises(ModelArtifactError, match="expected 0000"):
        download_weights(f"{base_url}/yolox_nano.onnx", tmp_path / "cache", expected_sha256="0000")
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()], (
        "nothing cached from a bad download"
    )


# ---------------------------------------------------------------- YOLOX on real Ped2


@pytest.fixture(scope="module")
def yolox(yolox_weights: Path) -> YoloxDetector:
    return YoloxDetector(weights=yolox_weights)


def read_frame(ped2_root: Path, video: str, frame_number: int) -> np.ndarray:
    """Frame ``frame_number`` (1-based, as in the UCSD labels) of a Ped2 test video."""
    folder = ped2_root / "UCSDped2" / "Test" / video
    path = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".tif", ".png"))[
        frame_number - 1
    ]
    frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert frame is not None
    return frame


def anomalous_frames(ped2_root: Path, video_index: int) -> list[int]:
    """1-based anomalous frames of test video ``video_index`` (1-based) from the official ``UCSDped2.m``."""
    text = (ped2_root / "UCSDped2" / "Test" / "UCSDped2.m").read_text()
    ranges = re.findall(r"gt_frame\s*=\s*\[(\d+):(\d+)\]", text)
    start, stop = map(int, ranges[video_index - 1])
    return list(range(start, stop + 1))


@pytest.mark.shared_data
def test_yolox_finds_pedestrians(yolox: YoloxDetector, ped2_root: Path) -> None:
    assert yolox.class_names == COCO_CLASS_NAMES and len(yolox.class_names) == 80
    for frame_number in (1, 40, 80):
        frame = read_frame(ped2_root, "Test001", frame_number)
        detections = yolox.detect(frame)
        assert isinstance(detections, Detections)
        people = detections.select(detections.class_ids == COCO_CLASS_NAMES.index("person"))
        assert len(people) >= 5, f"frame {frame_number}: {len(people)} people"
        boxes = detections.boxes
        assert np.all(boxes[:, :2] >= 0) and np.all(boxes[:, 2] <= 360) and np.all(boxes[:, 3] <= 240)
        assert np.all(boxes[:, 2:] > boxes[:, :2])
        heights, widths = people.boxes[:, 3] - people.boxes[:, 1], people.boxes[:, 2] - people.boxes[:, 0]
        # Ped2 pedestrians are roughly 10-25 px wide and 20-60 px tall, standing upright.
        assert np.all((heights > 12) & (heights < 90)), heights
        assert np.median(heights / widths) > 1.5
        assert np.all(detections.scores >= 0.3)
        assert np.allclose(detections.class_scores.max(axis=1), detections.scores)
        assert np.array_equal(detections.class_scores.argmax(axis=1), detections.class_ids)


@pytest.mark.shared_data
def test_yolox_sees_bicycles_in_anomalous_frames(yolox: YoloxDetector, ped2_root: Path) -> None:
    # Test002 contains a biker; its anomalous frames come from the official labels.
    anomalous = anomalous_frames(ped2_root, 2)
    normal = [number for number in range(1, anomalous[0]) if number % 10 == 1]
    vehicle_ids = [COCO_CLASS_NAMES.index(name) for name in ("bicycle", "motorcycle")]

    def share_with_vehicle(frame_numbers: list[int]) -> float:
        hits = [
            np.isin(yolox.detect(read_frame(ped2_root, "Test002", n)).class_ids, vehicle_ids).any()
            for n in frame_numbers
        ]
        return float(np.mean(hits))

    anomalous_share = share_with_vehicle(anomalous[10::10])
    assert anomalous_share >= 0.5
    assert anomalous_share > share_with_vehicle(normal)


@pytest.mark.shared_data
def test_yolox_describe_and_empty_frame(yolox: YoloxDetector, yolox_weights: Path) -> None:
    described = yolox.describe()
    assert described["name"] == "yolox"
    assert described["weights_sha256"] == hashlib.sha256(yolox_weights.read_bytes()).hexdigest()
    assert described["confidence_threshold"] == 0.3
    blank = yolox.detect(np.full((240, 360, 3), 128, np.uint8))
    assert len(blank) == 0 and blank.class_scores.shape == (0, 80)
    strict = YoloxDetector(weights=yolox_weights, confidence_threshold=0.99)
    assert strict.describe()["confidence_threshold"] == 0.99
